/* diff.c: per-item XOR of two environments into diff stream records. */
#include "config.h"
#include "diff.h"
#include "crc.h"
#include "text.h"
#include "util.h"
#include "view.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Bytes read per side at a time: small enough that both chunks stay in the
 * L2 cache from the read through the CRC to the comparison (measured by the
 * retired bench/diffbench; bench/run times envdiff against cmp -s now). */
#define DCHUNK (64u << 10)
#define BLOCK 4096u

struct differ {
	struct es_sink *sink;
	/* the item being diffed: kept here, not on diff_item's stack, so that no
	 * pointer to it outlives the call (it used to be a dangling d->it) */
	struct es_ditem it;
	struct es_dend end;
	unsigned char *run;  /* XOR bytes of the run being built */
	uint64_t run_off;
	size_t run_len;
	uint64_t last_end;
	struct es_view va, vb; /* the base's and the result's bytes */
};

static int emit_entry(struct differ *d, uint8_t flag, uint32_t size, uint64_t off,
		      const unsigned char *data, size_t n)
{
	struct es_entry e;
	e.flag = flag;
	e.size = size;
	e.offset = off;
	memset(e.data, 0, 8);
	memcpy(e.data, data, n);
	d->end.entries++;
	return d->sink->entry ? d->sink->entry(d->sink->arg, &d->it, &e) : 0;
}

/* Emit the buffered run as one Data entry, or an Area and its Conts. */
static int flush_run(struct differ *d)
{
	size_t len = d->run_len;
	if (len == 0)
		return 0;
	if (d->end.bytes == 0 || d->run_off != d->last_end)
		d->end.spots++;
	d->end.bytes += len;
	d->last_end = d->run_off + len;
	d->run_len = 0;
	if (len <= 8)
		return emit_entry(d, ES_DATA, (uint32_t)len, d->run_off, d->run, len);
	if (emit_entry(d, ES_AREA, (uint32_t)len, d->run_off, d->run, 8) < 0)
		return -1;
	for (size_t rel = 8; rel < len; rel += 8) {
		size_t n = len - rel < 8 ? len - rel : 8;
		if (emit_entry(d, ES_CONT, (uint32_t)n, rel, d->run + rel, n) < 0)
			return -1;
	}
	return 0;
}

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* Index, in memory order, of the first nonzero byte of the word X (X != 0). */
static inline size_t first_byte(uint64_t x)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return (size_t)__builtin_clzll(x) / 8;
#else
	return (size_t)__builtin_ctzll(x) / 8;
#endif
}

/* 0x80 in each byte of X that is zero, 0 in the others (exact, no borrows). */
static inline uint64_t zero_bytes(uint64_t x)
{
	const uint64_t low7 = 0x7f7f7f7f7f7f7f7full;
	return ~(((x & low7) + low7) | x | low7);
}

/* The first index in [i, end) where a and b differ, or end: 32, then 8, then
 * 1 byte at a time. */
static size_t diff_in(const unsigned char *a, const unsigned char *b, size_t i,
		      size_t end)
{
	for (; i + 32 <= end; i += 32)
		if ((load64(a + i) ^ load64(b + i)) | (load64(a + i + 8) ^ load64(b + i + 8)) |
		    (load64(a + i + 16) ^ load64(b + i + 16)) |
		    (load64(a + i + 24) ^ load64(b + i + 24)))
			break;
	for (; i + 8 <= end; i += 8) {
		uint64_t x = load64(a + i) ^ load64(b + i);
		if (x)
			return i + first_byte(x);
	}
	while (i < end && a[i] == b[i])
		i++;
	return i;
}

/* The first index from i on where a and b differ, or n; whole equal BLOCKs
 * are skipped with memcmp. */
static size_t next_diff(const unsigned char *a, const unsigned char *b, size_t i,
			size_t n)
{
	while (i < n) {
		while (i % BLOCK == 0 && i + BLOCK <= n && memcmp(a + i, b + i, BLOCK) == 0)
			i += BLOCK;
		size_t end = i - i % BLOCK + BLOCK < n ? i - i % BLOCK + BLOCK : n;
		i = diff_in(a, b, i, end);
		if (i < end)
			return i;
	}
	return n;
}

/* Append a[i..] ^ b[i..] to the run while the bytes differ, up to n and the
 * run's room, 8 bytes at a time; returns where it stopped. */
static size_t extend_run(struct differ *d, const unsigned char *a,
			 const unsigned char *b, size_t i, size_t n)
{
	size_t room = ES_RUN_MAX - d->run_len;
	size_t stop = n - i < room ? n : i + room, start = i;
	unsigned char *out = d->run + d->run_len;
	for (; i + 8 <= stop; i += 8) {
		uint64_t x = load64(a + i) ^ load64(b + i), z = zero_bytes(x);
		memcpy(out + (i - start), &x, 8); /* all 8 fit; the equal ones don't count */
		if (z) {
			i += first_byte(z);
			break;
		}
	}
	for (; i < stop && a[i] != b[i]; i++)
		out[i - start] = a[i] ^ b[i];
	d->run_len += i - start;
	return i;
}

/* XOR the differing bytes of a[0..n) ^ b[0..n) into runs; chunk starts at OFF. */
static int scan_chunk(struct differ *d, const unsigned char *a, const unsigned char *b,
		      size_t n, uint64_t off)
{
	size_t i = 0;
	while (i < n) {
		if (a[i] == b[i] || d->run_len == 0 || d->run_off + d->run_len != off + i) {
			if (flush_run(d) < 0)
				return -1;
			i = next_diff(a, b, i, n);
			if (i == n)
				break;
			d->run_off = off + i;
		}
		if (d->run_len == ES_RUN_MAX) {
			if (flush_run(d) < 0)
				return -1;
			d->run_off = off + i;
		}
		i = extend_run(d, a, b, i, n);
	}
	return 0;
}

/* Point *P at n bytes of item idx at pos: in place when the item has them
 * all, else copied into buf and zero-filled past its end. */
static int read_side(struct es_env *env, struct es_view *v, int idx, uint64_t pos,
		     unsigned char *buf, size_t n, uint32_t *crc, const unsigned char **p)
{
	size_t have = 0;
	*p = buf;
	if (idx >= 0) {
		struct es_item *it = &env->items[idx];
		if (pos < it->size)
			have = it->size - pos < n ? (size_t)(it->size - pos) : n;
		if (have) {
			const unsigned char *q;
			ssize_t r = es_view_get(v, it->off + pos, have, &q);
			if (r < 0)
				return -1;
			if ((size_t)r < have) {
				es_err("%s: item '%s': truncated at byte %llu of %llu",
				       env->in.name, it->name,
				       (unsigned long long)(pos + (uint64_t)r),
				       (unsigned long long)it->size);
				return -1;
			}
			*crc = es_crc32(*crc, q, have);
			if (have == n) {
				*p = q;
				return 0;
			}
			memcpy(buf, q, have);
		}
	}
	memset(buf + have, 0, n - have);
	return 0;
}

static int check_crc(struct es_env *env, int idx, uint32_t crc)
{
	struct es_item *it = &env->items[idx];
	if (it->crc_known && it->crc != crc) {
		es_err("%s: item '%s': CRC32 mismatch (directory says %08x, data has %08x)",
		       env->in.name, it->name, it->crc, crc);
		return -1;
	}
	it->crc = crc;
	it->crc_known = 1;
	return 0;
}

static int diff_item(struct differ *d, struct es_env *base, int bi,
		     struct es_env *result, int ri, unsigned char *a, unsigned char *b)
{
	const unsigned char *pa, *pb;
	struct es_ditem *it = &d->it;
	memset(it, 0, sizeof *it);
	const struct es_item *src = ri >= 0 ? &result->items[ri] : &base->items[bi];
	strcpy(it->name, src->name);
	it->presence = (bi >= 0 ? ES_IN_BASE : 0) | (ri >= 0 ? ES_IN_RESULT : 0);
	it->base_index = bi >= 0 ? (uint32_t)bi : ES_NO_INDEX;
	it->result_index = ri >= 0 ? (uint32_t)ri : ES_NO_INDEX;
	it->base_size = bi >= 0 ? base->items[bi].size : 0;
	it->result_size = ri >= 0 ? result->items[ri].size : 0;
	memset(&d->end, 0, sizeof d->end);
	d->run_len = 0;
	d->last_end = 0;
	if (d->sink->item && d->sink->item(d->sink->arg, it) < 0)
		return -1;
	uint64_t total = it->base_size > it->result_size ? it->base_size : it->result_size;
	uint32_t ca = (uint32_t)crc32(0, NULL, 0), cb = ca;
	for (uint64_t pos = 0; pos < total; pos += DCHUNK) {
		size_t n = total - pos < DCHUNK ? (size_t)(total - pos) : DCHUNK;
		if (read_side(base, &d->va, bi, pos, a, n, &ca, &pa) < 0 ||
		    read_side(result, &d->vb, ri, pos, b, n, &cb, &pb) < 0)
			return -1;
		if (memcmp(pa, pb, n) != 0 && scan_chunk(d, pa, pb, n, pos) < 0)
			return -1;
	}
	/* an input cut short while mapped was compared as zeros (view.h) */
	if (flush_run(d) < 0 || es_view_check(&d->va, NULL) < 0 ||
	    es_view_check(&d->vb, NULL) < 0)
		return -1;
	if ((bi >= 0 && check_crc(base, bi, ca) < 0) ||
	    (ri >= 0 && check_crc(result, ri, cb) < 0))
		return -1;
	d->end.base_crc = bi >= 0 ? ca : 0;
	d->end.result_crc = ri >= 0 ? cb : 0;
	return d->sink->end ? d->sink->end(d->sink->arg, it, &d->end) : 0;
}

/* Both inputs are read front to back, once: let the kernel read ahead further
 * when they are not cached (pipes and failures do not matter). */
static void advise_sequential(const struct es_env *env)
{
	(void)posix_fadvise(env->in.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
}

int es_diff_run(struct es_env *base, struct es_env *result, struct es_sink *sink,
		struct es_diff_result *res)
{
	struct es_dhdr h;
	memset(res, 0, sizeof *res);
	h.flags = (base->is_image ? ES_DF_BASE_REV : 0) |
		  (result->is_image ? ES_DF_RESULT_REV : 0);
	h.base_rev = base->is_image ? base->rev : 0;
	h.result_rev = result->is_image ? result->rev : 0;
	h.nitems = result->nitems;
	for (uint32_t i = 0; i < base->nitems; i++)
		if (es_env_find(result, base->items[i].name) < 0)
			h.nitems++;
	if (sink->header && sink->header(sink->arg, &h) < 0)
		return -1;

	advise_sequential(base);
	advise_sequential(result);
	struct differ d;
	memset(&d, 0, sizeof d);
	d.sink = sink;
	d.run = es_malloc(ES_RUN_MAX);
	es_view_init(&d.va, base->in.fd, base->in.name);
	es_view_init(&d.vb, result->in.fd, result->in.name);
	unsigned char *a = es_malloc(DCHUNK), *b = es_malloc(DCHUNK);
	int rc = 0;
	/* result order first, then items only the base has, in base order */
	for (uint32_t i = 0; i < result->nitems + base->nitems && rc == 0; i++) {
		int ri = -1, bi;
		if (i < result->nitems) {
			ri = (int)i;
			bi = es_env_find(base, result->items[i].name);
		} else {
			bi = (int)(i - result->nitems);
			if (es_env_find(result, base->items[bi].name) >= 0)
				continue;
		}
		rc = diff_item(&d, base, bi, result, ri, a, b);
		if (rc == 0 && (d.end.spots || bi < 0 || ri < 0 ||
				base->items[bi].size != result->items[ri].size))
			res->items_changed++;
		res->spots += d.end.spots;
		res->bytes += d.end.bytes;
		res->entries += d.end.entries;
	}
	free(a);
	free(b);
	free(d.run);
	es_view_free(&d.va);
	es_view_free(&d.vb);
	if (rc < 0)
		return -1;
	return sink->finish ? sink->finish(sink->arg) : 0;
}

void es_namelist_add(struct es_namelist *n, const char *name)
{
	if (n->count++ < 5 && n->len < sizeof n->buf - 80)
		n->len += (size_t)snprintf(n->buf + n->len, sizeof n->buf - n->len, "%s'%s'",
					   n->len ? ", " : "", name);
}

void es_diverged_err(const struct es_env *a, const struct es_env *b,
		     const struct es_namelist *n)
{
	es_err("%s and %s: both at revision %llu but contents differ (%d item%s: %s%s)",
	       a->in.name, b->in.name, (unsigned long long)a->rev, n->count,
	       n->count == 1 ? "" : "s", n->buf, n->count > 5 ? ", ..." : "");
}

int es_diff_diverged(const struct es_env *a, const struct es_env *b)
{
	if (!a->is_image || !b->is_image || a->rev != b->rev)
		return 0;
	struct es_namelist n;
	memset(&n, 0, sizeof n);
	for (uint32_t i = 0; i < b->nitems + a->nitems; i++) {
		const struct es_item *x, *y;
		if (i < b->nitems) {
			y = &b->items[i];
			int j = es_env_find(a, y->name);
			x = j >= 0 ? &a->items[j] : NULL;
		} else {
			x = &a->items[i - b->nitems];
			if (es_env_find(b, x->name) >= 0)
				continue;
			y = NULL;
		}
		if (!x || !y || x->size != y->size || x->crc != y->crc)
			es_namelist_add(&n, y ? y->name : x->name);
	}
	if (n.count == 0)
		return 0;
	es_diverged_err(a, b, &n);
	return 1;
}

/* Equal revisions promise equal contents. es_diff_diverged compares the
 * directories (sizes and CRC32s), but equal CRC32s are no proof: in front of
 * the real sink, this one turns any entry into the exit-3 refusal, naming the
 * items, and holds back everything from the first entry on. */
struct guard {
	struct es_sink *next;
	struct es_namelist names;
	int hit;     /* the current item has entries */
	int refused; /* the run ended in the refusal (not in other trouble) */
};

static int g_header(void *arg, const struct es_dhdr *h)
{
	struct guard *g = arg;
	return g->next->header ? g->next->header(g->next->arg, h) : 0;
}

static int g_item(void *arg, const struct es_ditem *it)
{
	struct guard *g = arg;
	g->hit = 0;
	if (g->names.count || !g->next->item)
		return 0;
	return g->next->item(g->next->arg, it);
}

static int g_entry(void *arg, const struct es_ditem *it, const struct es_entry *e)
{
	struct guard *g = arg;
	(void)e;
	if (!g->hit)
		es_namelist_add(&g->names, it->name);
	g->hit = 1;
	return 0;
}

static int g_end(void *arg, const struct es_ditem *it, const struct es_dend *d)
{
	struct guard *g = arg;
	if (g->names.count || !g->next->end)
		return 0;
	return g->next->end(g->next->arg, it, d);
}

static int g_finish(void *arg)
{
	struct guard *g = arg;
	if (g->names.count) {
		g->refused = 1;
		return -1;
	}
	return g->next->finish ? g->next->finish(g->next->arg) : 0;
}

/* The two inputs are read side by side, item by item at their offsets: a
 * pipe cannot be read so, and is refused before any output. */
static int refuse_pipe(const struct es_env *env)
{
	if (env->in.size != ES_SIZE_UNKNOWN)
		return 0;
	es_err("%s: a pipe cannot be diffed (both inputs are read side by side): save it to a file first",
	       env->in.name);
	return -1;
}

int es_diff_files(const struct es_diff_opts *a)
{
	enum es_env_mode mode = a->raw ? ES_ENV_RAW : ES_ENV_AUTO;
	struct es_env base, result;
	struct es_out out;
	struct es_writer w;
	struct es_text t;
	int rc = ES_TROUBLE, listing = a->stat || a->text;
	if (es_env_open(&base, a->base, mode) < 0)
		return ES_TROUBLE;
	if (es_env_open(&result, a->result, mode) < 0) {
		es_env_close(&base);
		return ES_TROUBLE;
	}
	if (refuse_pipe(&base) < 0 || refuse_pipe(&result) < 0) {
		es_env_close(&base);
		es_env_close(&result);
		return ES_TROUBLE;
	}
	if (!a->force && es_diff_diverged(&base, &result)) {
		es_env_close(&base);
		es_env_close(&result);
		return ES_DIVERGED;
	}
	struct es_sink text = es_text_sink(&t, a->stat, stdout);
	int writing = !listing || a->output;
	if (writing && es_out_open(&out, a->output, a->force) < 0)
		goto close;
	es_writer_init(&w, writing ? out.fd : -1, writing ? out.name : "");
	if (writing && a->compress && es_writer_compress(&w, a->compress) < 0) {
		es_out_abort(&out);
		es_writer_free(&w);
		goto close;
	}
	struct es_sink bin = es_writer_sink(&w);
	struct es_sink *pair[2] = {&bin, &text};
	struct es_sink both = es_tee_sink(pair);
	struct es_sink *sink = listing ? (writing ? &both : &text) : &bin;
	struct guard g = {sink, {{0}, 0, 0}, 0, 0};
	struct es_sink guarded = {&g, g_header, g_item, g_entry, g_end, g_finish};
	if (!a->force && base.is_image && result.is_image && base.rev == result.rev)
		sink = &guarded;
	struct es_diff_result res;
	if (es_diff_run(&base, &result, sink, &res) == 0 && (!writing || es_out_commit(&out) == 0))
		rc = res.items_changed ? ES_DIFFERENT : ES_OK;
	else if (g.refused) {
		es_diverged_err(&base, &result, &g.names);
		rc = ES_DIVERGED;
	}
	if (writing)
		es_out_abort(&out); /* after a commit this only frees */
	es_writer_free(&w);
close:
	es_env_close(&base);
	es_env_close(&result);
	return rc;
}
