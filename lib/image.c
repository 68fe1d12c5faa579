/* image.c: reading, validating and serializing env images. */
#include "config.h"
#include "image.h"
#include "view.h"
#include "crc.h"
#include "util.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int es_name_check(const char *name, size_t len, const char *context)
{
	if (len == 0) {
		es_err("%s: empty item name", context);
		return -1;
	}
	if (len > ES_NAME_MAX) {
		es_err("%s: item name longer than %d bytes", context, ES_NAME_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		/* printable, no blank, no '=' (envdump's NAME=PATH separator) */
		if (c <= 0x20 || c >= 0x7f || c == '=') {
			es_err("%s: item name has a forbidden byte 0x%02x at position %zu",
			       context, c, i);
			return -1;
		}
	}
	return 0;
}

static const struct es_item *sort_base;

static int cmp_names(const void *a, const void *b)
{
	return strcmp(sort_base[*(const uint32_t *)a].name,
		      sort_base[*(const uint32_t *)b].name);
}

/* Build the name index (env->order, item indices sorted by name) and refuse
 * duplicate names. */
static int index_names(struct es_env *env)
{
	uint32_t n = env->nitems;
	env->order = es_calloc(n, sizeof *env->order);
	for (uint32_t i = 0; i < n; i++)
		env->order[i] = i;
	sort_base = env->items;
	qsort(env->order, n, sizeof *env->order, cmp_names);
	for (uint32_t i = 1; i < n; i++) {
		const struct es_item *x = &env->items[env->order[i - 1]];
		const struct es_item *y = &env->items[env->order[i]];
		if (strcmp(x->name, y->name) == 0) {
			unsigned later = (unsigned)(y > x ? y - env->items : x - env->items);
			es_err("%s: directory entry %u (byte %llu): duplicate item name '%s'",
			       env->in.name, later,
			       (unsigned long long)ES_IMG_HDR + (unsigned long long)later * ES_IMG_DIRENT,
			       y->name);
			return -1;
		}
	}
	return 0;
}

static int parse_dirent(const unsigned char *d, struct es_item *it, uint32_t i,
			const char *file)
{
	char ctx[600];
	uint16_t len = get16(d);
	snprintf(ctx, sizeof ctx, "%s: directory entry %u (byte %llu)", file, (unsigned)i,
		 (unsigned long long)ES_IMG_HDR + (unsigned long long)i * ES_IMG_DIRENT);
	if (get16(d + 2) != 0) {
		es_err("%s: reserved field is not zero", ctx);
		return -1;
	}
	if (es_name_check((const char *)d + 16, len > ES_NAME_MAX ? ES_NAME_MAX + 1 : len,
			  ctx) < 0)
		return -1;
	if (!es_allzero(d + 16 + len, ES_NAME_MAX - len)) {
		es_err("%s: name padding is not zero", ctx);
		return -1;
	}
	memcpy(it->name, d + 16, len);
	it->name[len] = 0;
	it->crc = get32(d + 4);
	it->crc_known = 1;
	it->size = get64(d + 8);
	return 0;
}

static int read_image(struct es_env *env)
{
	struct es_in *in = &env->in;
	unsigned char hdr[ES_IMG_HDR];
	ssize_t r = es_in_read(in, hdr, sizeof hdr);
	if (r < 0)
		return -1;
	if (r < 8 || memcmp(hdr, ES_IMG_MAGIC, 8) != 0) {
		if ((size_t)r < 8 && memcmp(hdr, ES_IMG_MAGIC, (size_t)r) == 0)
			es_err("%s: byte 0: truncated header (%zd of %d bytes)", in->name, r,
			       ES_IMG_HDR);
		else
			es_err("%s: byte 0: bad magic (not an env image)", in->name);
		return -1;
	}
	if (r < ES_IMG_HDR) {
		es_err("%s: byte %zd: truncated header (%zd of %d bytes)", in->name, r, r,
		       ES_IMG_HDR);
		return -1;
	}
	if (get16(hdr + 8) != ES_IMG_VERSION) {
		es_err("%s: byte 8: unsupported format version %u (this is version %d)",
		       in->name, get16(hdr + 8), ES_IMG_VERSION);
		return -1;
	}
	if (get16(hdr + 10) != 0 || get32(hdr + 24) != 0) {
		es_err("%s: byte 10: reserved header fields are not zero", in->name);
		return -1;
	}
	uint32_t n = get32(hdr + 12);
	if (n > ES_MAX_ITEMS) {
		es_err("%s: byte 12: item count %u exceeds the limit of %d", in->name, n,
		       ES_MAX_ITEMS);
		return -1;
	}
	uint64_t dirlen = (uint64_t)n * ES_IMG_DIRENT;
	if (in->size != ES_SIZE_UNKNOWN && ES_IMG_HDR + dirlen > in->size) {
		es_err("%s: byte 12: item count %u needs a %llu-byte directory but only %llu bytes follow the header",
		       in->name, n, (unsigned long long)dirlen,
		       (unsigned long long)(in->size - ES_IMG_HDR));
		return -1;
	}
	unsigned char *dir = es_malloc(dirlen);
	r = es_in_read(in, dir, dirlen);
	if (r < 0) {
		free(dir);
		return -1;
	}
	if ((uint64_t)r < dirlen) {
		es_err("%s: byte %llu: truncated directory (entry %llu of %u)", in->name,
		       (unsigned long long)(ES_IMG_HDR + r),
		       (unsigned long long)(r / ES_IMG_DIRENT), n);
		free(dir);
		return -1;
	}
	uint32_t crc = (uint32_t)crc32(0, hdr, 28);
	crc = (uint32_t)crc32(crc, dir, (uInt)dirlen);
	if (crc != get32(hdr + 28)) {
		es_err("%s: byte 28: header CRC32 mismatch (stored %08x, computed %08x)",
		       in->name, get32(hdr + 28), crc);
		free(dir);
		return -1;
	}
	env->rev = get64(hdr + 16);
	env->hdr_crc = crc;
	env->nitems = n;
	env->items = es_calloc(n, sizeof *env->items);
	uint64_t off = ES_IMG_HDR + dirlen;
	for (uint32_t i = 0; i < n; i++) {
		struct es_item *it = &env->items[i];
		if (parse_dirent(dir + (uint64_t)i * ES_IMG_DIRENT, it, i, in->name) < 0) {
			free(dir);
			return -1;
		}
		if (it->size > UINT64_MAX / 2 - off) {
			es_err("%s: directory entry %u (byte %llu): item '%s' size %llu is impossible",
			       in->name, i, (unsigned long long)ES_IMG_HDR + (unsigned long long)i * ES_IMG_DIRENT,
			       it->name, (unsigned long long)it->size);
			free(dir);
			return -1;
		}
		it->off = off;
		off += it->size;
	}
	free(dir);
	if (in->size != ES_SIZE_UNKNOWN && off > in->size) {
		uint32_t i = 0;
		while (env->items[i].off + env->items[i].size <= in->size)
			i++;
		const struct es_item *it = &env->items[i];
		es_err("%s: byte %llu: truncated: item '%s' (directory entry %u) ends at byte %llu",
		       in->name, (unsigned long long)in->size, it->name, (unsigned)i,
		       (unsigned long long)(it->off + it->size));
		return -1;
	}
	if (in->size != ES_SIZE_UNKNOWN && off < in->size) {
		es_err("%s: byte %llu: %llu byte%s after the last item's end", in->name,
		       (unsigned long long)off, (unsigned long long)(in->size - off),
		       in->size - off == 1 ? "" : "s");
		return -1;
	}
	return index_names(env);
}

static int open_raw(struct es_env *env)
{
	if (env->in.size == ES_SIZE_UNKNOWN) {
		es_err("%s: a raw input must be a regular file or block device", env->in.name);
		return -1;
	}
	env->is_image = 0;
	env->nitems = 1;
	env->items = es_calloc(1, sizeof *env->items);
	strcpy(env->items[0].name, ES_RAW_NAME);
	env->items[0].size = env->in.size;
	return index_names(env);
}

/* Does the file begin with the image magic (or, when shorter, a prefix of it)? */
static int looks_like_image(struct es_env *env)
{
	unsigned char m[8];
	if (env->in.size == ES_SIZE_UNKNOWN)
		return 1;
	ssize_t r = es_pread_full(env->in.fd, m, sizeof m, 0);
	if (r <= 0)
		return 0;
	return memcmp(m, ES_IMG_MAGIC, (size_t)r) == 0;
}

int es_env_open(struct es_env *env, const char *path, enum es_env_mode mode)
{
	memset(env, 0, sizeof *env);
	if (es_in_open(&env->in, path) < 0)
		return -1;
	int r;
	if (mode == ES_ENV_RAW || (mode == ES_ENV_AUTO && !looks_like_image(env)))
		r = open_raw(env);
	else {
		env->is_image = 1;
		r = read_image(env);
	}
	if (r < 0)
		es_env_close(env);
	return r;
}

void es_env_close(struct es_env *env)
{
	es_in_close(&env->in);
	free(env->items);
	free(env->order);
	env->items = NULL;
	env->order = NULL;
	env->nitems = 0;
}

int es_env_find(const struct es_env *env, const char *name)
{
	uint32_t lo = 0, hi = env->nitems;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(env->items[env->order[mid]].name, name);
		if (c == 0)
			return (int)env->order[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int skip_to(struct es_in *in, uint64_t off, unsigned char *buf)
{
	while (in->pos < off) {
		uint64_t want = off - in->pos;
		ssize_t r = es_in_read(in, buf, want < ES_CHUNK ? want : ES_CHUNK);
		if (r < 0)
			return -1;
		if (r == 0) {
			es_err("%s: byte %llu: unexpected end of file", in->name,
			       (unsigned long long)in->pos);
			return -1;
		}
	}
	if (in->pos > off) {
		es_err("%s: items must be read in order from a pipe", in->name);
		return -1;
	}
	return 0;
}

/* Bytes FROM..TO of item IT, read from V (else from the pipe into BUF):
 * their CRC32 into *CRC, each chunk to FN when not NULL. DATA: how many bytes
 * from FROM on are known not to be a hole; where none are known and only the
 * CRC is wanted, the holes are asked for and skipped. Errors are reported
 * unless the view is quiet. */
static int feed_zeros(es_chunk_fn fn, void *arg, const unsigned char *zeros, uint64_t n)
{
	while (n) {
		size_t k = n < ES_CHUNK ? (size_t)n : ES_CHUNK;
		if (fn(arg, zeros, k) < 0)
			return -1;
		n -= k;
	}
	return 0;
}

static int read_span(struct es_in *in, const struct es_item *it, struct es_view *v,
		     unsigned char *buf, uint64_t from, uint64_t to, uint64_t data,
		     es_chunk_fn fn, void *arg, uint32_t *crc_out)
{
	/* aligned, so a copy past the page cache writes it as it is (dwrite.h) */
	static const unsigned char zeros[ES_CHUNK] __attribute__((aligned(4096)));
	uint32_t crc = 0;
	uint64_t done = from;
	while (done < to) {
		uint64_t want = to - done;
		if (v && data == 0) {
			/* a hole's bytes are zeros, known without reading: mapping
			 * them made the page cache fill a zero page for each, the
			 * most of a calibration's 1 GiB full copy from its sparse
			 * source (3.1-4.0 s, against 0.6-1.3 s from real data) */
			uint64_t hole = es_view_hole(v, it->off + done, &data);
			if (hole) {
				hole = hole < want ? hole : want;
				if (fn && feed_zeros(fn, arg, zeros, hole) < 0)
					return -1;
				crc = es_crc32_zeros(crc, hole);
				done += hole;
				continue;
			}
		}
		if (v && data && data < want)
			want = data;
		/* a view hands out a window at a time; a pipe fills the buffer */
		size_t max = v ? ES_VIEW_ALIGN : ES_CHUNK;
		size_t n = want < max ? (size_t)want : max;
		const unsigned char *p = buf;
		ssize_t r = v ? es_view_get(v, it->off + done, n, &p) : es_in_read(in, buf, n);
		if (r < 0)
			return -1;
		if (v && r > 0)
			n = (size_t)r; /* the rest comes on the next round, or its end */
		if ((size_t)r < n) {
			if (!v || !v->quiet)
				es_err("%s: item '%s': truncated at byte %llu of %llu", in->name,
				       it->name, (unsigned long long)(done + (uint64_t)r),
				       (unsigned long long)it->size);
			return -1;
		}
		crc = es_crc32(crc, p, n);
		if (fn && fn(arg, p, n) < 0)
			return -1;
		done += n;
		data -= data < n ? data : n;
	}
	*crc_out = crc;
	return 0;
}

/* The second half of a large item's CRC, on another CPU. */
struct half {
	struct es_in *in;
	const struct es_item *it;
	struct es_view view; /* its own windows; quiet: the first thread reports */
	uint64_t from;
	uint32_t crc;
	int rc;
};

static void *crc_half(void *arg)
{
	struct half *h = arg;
	h->rc = read_span(h->in, h->it, &h->view, NULL, h->from, h->it->size,
			  h->it->size - h->from, NULL, NULL, &h->crc);
	if (h->view.shrunk)
		h->rc = -1;
	return NULL;
}

/* Items from this size on are read by two threads when the CPUs allow: one
 * thread's CRC of a 1 GiB target in the page cache took 96-106 ms here, two
 * threads' 61-75 ms (memory bandwidth is per core). */
#define PAR_MIN (64u << 20)

static int cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) < 0)
		return 1;
	return CPU_COUNT(&set);
}

/* The CRC32 of item IT (all data, no holes) read by two threads: 0, -1
 * after an error (reported), or 1 when the caller is to read it alone (the
 * thread could not start, or its quiet half failed: the lone read reports
 * why). */
static int crc_parallel(struct es_in *in, const struct es_item *it, struct es_view *v,
			uint32_t *crc)
{
	struct half h = {in, it, {0}, 0, 0, 0};
	/* the second half starts on a window of the first's view */
	h.from = ((it->off + it->size / 2) & ~(uint64_t)(ES_VIEW_ALIGN - 1)) - it->off;
	es_view_init(&h.view, in->fd, in->name);
	h.view.quiet = 1;
	(void)es_crc32(0, NULL, 0); /* picks the CRC's way before two threads use it */
	pthread_t t;
	if (pthread_create(&t, NULL, crc_half, &h) != 0) {
		es_view_free(&h.view);
		return 1;
	}
	uint32_t first;
	int rc = read_span(in, it, v, NULL, 0, h.from, h.from, NULL, NULL, &first);
	pthread_join(t, NULL);
	es_view_free(&h.view);
	if (rc < 0)
		return -1;
	if (h.rc < 0)
		return 1;
	*crc = es_crc32_combine(first, h.crc, it->size - h.from);
	return 0;
}

int es_env_read_item(struct es_env *env, uint32_t idx, es_chunk_fn fn, void *arg,
		     uint32_t *crc_out)
{
	struct es_item *it = &env->items[idx];
	struct es_in *in = &env->in;
	struct es_view view, *v = NULL;
	unsigned char *buf = NULL;
	uint32_t crc = 0;
	uint64_t data = 0; /* bytes from the item's start known not to be a hole */
	int rc = -1;
	if (in->size != ES_SIZE_UNKNOWN) {
		es_view_init(&view, in->fd, in->name);
		v = &view;
	} else {
		buf = es_malloc(ES_CHUNK);
		if (skip_to(in, it->off, buf) < 0)
			goto out;
	}
	if (v && !fn) /* starting in a hole, data is 0: read_span skips it */
		(void)es_view_hole(v, it->off, &data);
	/* a large item without holes: two threads, else (or if that failed:
	 * the lone read then reports why) one */
	int alone = 1;
	if (data >= it->size && it->size >= PAR_MIN && cpus() > 1)
		alone = crc_parallel(in, it, v, &crc);
	if (alone < 0 || (alone && read_span(in, it, v, buf, 0, it->size, data, fn, arg, &crc) < 0))
		goto out;
	if (v && es_view_check(v, it->name) < 0)
		goto out;
	if (it->crc_known && crc != it->crc) {
		es_err("%s: item '%s': CRC32 mismatch (directory says %08x, data has %08x)",
		       in->name, it->name, it->crc, crc);
		goto out;
	}
	if (crc_out)
		*crc_out = crc;
	rc = 0;
out:
	if (v)
		es_view_free(v);
	free(buf);
	return rc;
}

int es_env_item_crc(struct es_env *env, uint32_t idx, uint32_t *crc)
{
	if (es_env_read_item(env, idx, NULL, NULL, crc) < 0)
		return -1;
	env->items[idx].crc = *crc;
	env->items[idx].crc_known = 1;
	return 0;
}

unsigned char *es_image_header(uint64_t rev, const struct es_item *items, uint32_t n,
			       size_t *len)
{
	size_t total = ES_IMG_HDR + (size_t)n * ES_IMG_DIRENT;
	unsigned char *h = es_calloc(1, total);
	memcpy(h, ES_IMG_MAGIC, 8);
	put16(h + 8, ES_IMG_VERSION);
	put32(h + 12, n);
	for (uint32_t i = 0; i < n; i++) {
		unsigned char *d = h + ES_IMG_HDR + (size_t)i * ES_IMG_DIRENT;
		size_t nl = strlen(items[i].name);
		put16(d, (uint16_t)nl);
		put32(d + 4, items[i].crc);
		put64(d + 8, items[i].size);
		memcpy(d + 16, items[i].name, nl);
	}
	es_image_restamp(h, total, rev);
	*len = total;
	return h;
}

void es_image_restamp(unsigned char *hdr, size_t len, uint64_t rev)
{
	put64(hdr + 16, rev);
	uint32_t crc = (uint32_t)crc32(0, hdr, 28);
	crc = (uint32_t)crc32(crc, hdr + ES_IMG_HDR, (uInt)(len - ES_IMG_HDR));
	put32(hdr + 28, crc);
}
