/* fuzz/apply.c: envapply (es_apply) of a fuzzed diff stream to a small raw
 * file or env image in a private directory under /dev/shm. The harness can
 * reseal the stream (header and stream CRC32s, each item's base CRC32 and the
 * result CRC32 its entries really produce, by a simple XOR of its own), so
 * the fuzzer reaches the apply itself. The oracle: envapply either refuses,
 * leaving the target byte for byte as it was and no journal pending, or
 * succeeds, and the target is then exactly the result the stream promises.
 *
 * First input byte: bit 0 image base (else raw), bit 1 reseal, bit 2 give a
 * SOURCE (the promised result) for items judged full, bit 3 dry run. */
#include "config.h"
#include "apply.h"
#include "fuzz.h"
#include "image.h"
#include "stream.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define SIM_MAX 65536u
#define MAXIT 8

static char dir[64], target[96], source[96];
static unsigned char rawbase[200], *imgbase;
static size_t imglen;
static const char *const inames[2] = {"a", "b"};
static const size_t isizes[2] = {40, 100};
#define IMG_REV 7

static void write_file(const char *path, const void *d, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FZ_ASSERT(fd >= 0);
	FZ_ASSERT(write(fd, d, n) == (ssize_t)n);
	close(fd);
}

static unsigned char *read_file(const char *path, size_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	FZ_ASSERT(fd >= 0 && fstat(fd, &st) == 0);
	unsigned char *b = malloc((size_t)st.st_size + 1);
	FZ_ASSERT(pread(fd, b, (size_t)st.st_size, 0) == st.st_size);
	close(fd);
	*n = (size_t)st.st_size;
	return b;
}

static void clean(void);

/* The directory is per process: leave none behind in /dev/shm. */
static void remove_dir(void)
{
	clean();
	rmdir(dir);
}

static void init(void)
{
	snprintf(dir, sizeof dir, "/dev/shm/envsync-fuzz-apply.%d", (int)getpid());
	mkdir(dir, 0700);
	snprintf(target, sizeof target, "%s/t", dir);
	snprintf(source, sizeof source, "%s/src", dir);
	atexit(remove_dir);
	for (size_t i = 0; i < sizeof rawbase; i++)
		rawbase[i] = (unsigned char)(i * 37 + 11);
	struct es_item it[2];
	memset(it, 0, sizeof it);
	for (int i = 0; i < 2; i++) {
		strcpy(it[i].name, inames[i]);
		it[i].size = isizes[i];
		it[i].crc = (uint32_t)crc32(0, rawbase + 50 * i, (uInt)isizes[i]);
	}
	size_t hlen;
	unsigned char *h = es_image_header(IMG_REV, it, 2, &hlen);
	imglen = hlen + isizes[0] + isizes[1];
	imgbase = malloc(imglen);
	memcpy(imgbase, h, hlen);
	memcpy(imgbase + hlen, rawbase, isizes[0]);
	memcpy(imgbase + hlen + isizes[0], rawbase + 50, isizes[1]);
	free(h);
}

/* Empty the private directory: the target, its state files, the source. */
static void clean(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[400];
	FZ_ASSERT(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			unlink(p);
		}
	closedir(d);
}

/* What one item of the stream promises, by the harness's own reckoning. */
struct sim {
	char name[ES_NAME_MAX + 1];
	uint8_t presence;
	uint32_t result_index;
	uint64_t result_size;
	uint32_t result_crc;
	unsigned char *res; /* NULL: not simulated (too large) */
};

/* The base bytes of the item called NAME: the raw file, or an image item. */
static const unsigned char *base_item(int image, const char *name, size_t *n)
{
	if (!image) {
		*n = sizeof rawbase;
		return rawbase;
	}
	for (int i = 0; i < 2; i++)
		if (strcmp(name, inames[i]) == 0) {
			*n = isizes[i];
			return rawbase + 50 * i;
		}
	*n = 0;
	return NULL;
}

static void xor_at(unsigned char *res, uint64_t size, uint64_t off, const unsigned char *x,
		   uint64_t n)
{
	for (uint64_t i = 0; i < n && i < 8; i++)
		if (off + i < size && off + i >= off)
			res[off + i] ^= x[i];
}

/* Reseal M (N bytes) in place; returns the new length. */
static size_t reseal(unsigned char *m, size_t n, int image, struct sim *sims, unsigned *nsims)
{
	*nsims = 0;
	if (n < ES_DIFF_HDR || memcmp(m, ES_DIFF_MAGIC, 8) != 0)
		return n;
	put32(m + 44, (uint32_t)crc32(0, m, 44));
	uint32_t nitems = get32(m + 12);
	size_t pos = ES_DIFF_HDR;
	for (uint32_t i = 0; i < nitems && pos + ES_REC_ITEM <= n; i++) {
		const unsigned char *p = m + pos;
		struct sim s;
		memset(&s, 0, sizeof s);
		uint16_t nl = get16(p + 2);
		memcpy(s.name, p + 32, nl < ES_NAME_MAX ? nl : ES_NAME_MAX);
		s.presence = p[1];
		s.result_index = get32(p + 8);
		s.result_size = get64(p + 24);
		pos += ES_REC_ITEM;
		size_t bn;
		const unsigned char *b = base_item(image, s.name, &bn);
		if (!(s.presence & ES_IN_BASE))
			bn = 0;
		if (!(s.presence & ES_IN_RESULT))
			s.result_size = 0;
		if (s.result_size <= SIM_MAX) {
			s.res = calloc(1, s.result_size + 1);
			if (b)
				memcpy(s.res, b, bn < s.result_size ? bn : s.result_size);
		}
		uint64_t run_off = 0;
		while (pos + ES_REC_ENTRY <= n && m[pos] != 'E') {
			const unsigned char *e = m + pos;
			uint32_t size = get32(e + 4);
			uint64_t off = get64(e + 8);
			if (s.res && e[0] == ES_DATA)
				xor_at(s.res, s.result_size, off, e + 16, size);
			else if (s.res && e[0] == ES_AREA) {
				run_off = off;
				xor_at(s.res, s.result_size, off, e + 16, 8);
			} else if (s.res && e[0] == ES_CONT)
				xor_at(s.res, s.result_size, run_off + off, e + 16, size);
			pos += ES_REC_ENTRY;
		}
		if (pos + ES_REC_END > n) {
			free(s.res);
			break;
		}
		put32(m + pos + 4, b && bn ? (uint32_t)crc32(0, b, (uInt)bn) : 0);
		if (s.res) {
			s.result_crc = (uint32_t)crc32(0, s.res, (uInt)s.result_size);
			put32(m + pos + 8, s.result_crc);
		} else
			s.result_crc = get32(m + pos + 8);
		pos += ES_REC_END;
		if (*nsims < MAXIT)
			sims[(*nsims)++] = s;
		else
			free(s.res);
	}
	if (pos + ES_REC_TAIL > n)
		return n;
	memset(m + pos, 0, ES_REC_TAIL);
	m[pos] = 'Z';
	put64(m + pos + 8, pos + ES_REC_TAIL);
	put32(m + pos + 20, (uint32_t)crc32(0, m, (uInt)(pos + 20)));
	return pos + ES_REC_TAIL;
}

/* SOURCE: the promised result, for items judged full. */
static void write_source(int image, uint64_t rev, const struct sim *s, unsigned n)
{
	if (!image) {
		if (n && s[0].res)
			write_file(source, s[0].res, s[0].result_size);
		return;
	}
	struct es_item it[MAXIT];
	unsigned k = 0;
	uint64_t total = 0;
	memset(it, 0, sizeof it);
	for (unsigned i = 0; i < n; i++) {
		if (!(s[i].presence & ES_IN_RESULT) || !s[i].res || !s[i].name[0])
			continue;
		strcpy(it[k].name, s[i].name);
		it[k].size = s[i].result_size;
		it[k].crc = s[i].result_crc;
		total += s[i].result_size;
		k++;
	}
	size_t hlen;
	unsigned char *h = es_image_header(rev, it, k, &hlen);
	unsigned char *all = malloc(hlen + total + 1);
	memcpy(all, h, hlen);
	size_t at = hlen;
	for (unsigned i = 0; i < n; i++)
		if ((s[i].presence & ES_IN_RESULT) && s[i].res && s[i].name[0]) {
			memcpy(all + at, s[i].res, s[i].result_size);
			at += s[i].result_size;
		}
	write_file(source, all, at);
	free(all);
	free(h);
}

/* The stream's own promises, read by the validating reader. */
struct promise {
	struct es_dhdr h;
	struct es_ditem it[MAXIT];
	struct es_dend d[MAXIT];
	unsigned n;
};

static int p_header(void *arg, const struct es_dhdr *h)
{
	((struct promise *)arg)->h = *h;
	return 0;
}

static int p_end(void *arg, const struct es_ditem *it, const struct es_dend *d)
{
	struct promise *p = arg;
	if (p->n < MAXIT) {
		p->it[p->n] = *it;
		p->d[p->n] = *d;
	}
	p->n++;
	return 0;
}

static void check_result(const char *diff, int image)
{
	struct promise pr;
	struct es_reader r;
	memset(&pr, 0, sizeof pr);
	struct es_sink k = {&pr, p_header, NULL, NULL, p_end, NULL};
	FZ_ASSERT(es_reader_open(&r, diff) == 0);
	FZ_ASSERT(es_reader_run(&r, &k) == 0);
	es_reader_close(&r);
	if (pr.n > MAXIT)
		return;
	struct es_env env;
	FZ_ASSERT(es_env_open(&env, target, image ? ES_ENV_IMAGE : ES_ENV_RAW) == 0);
	uint32_t crc, nres = 0;
	if (image)
		FZ_ASSERT(env.rev == pr.h.result_rev);
	for (unsigned i = 0; i < pr.n; i++) {
		if (!(pr.it[i].presence & ES_IN_RESULT))
			continue;
		nres++;
		uint32_t idx = image ? pr.it[i].result_index : 0;
		FZ_ASSERT(idx < env.nitems);
		FZ_ASSERT(!image || strcmp(env.items[idx].name, pr.it[i].name) == 0);
		FZ_ASSERT(env.items[idx].size == pr.it[i].result_size);
		FZ_ASSERT(es_env_item_crc(&env, idx, &crc) == 0);
		FZ_ASSERT(crc == pr.d[i].result_crc);
	}
	FZ_ASSERT(nres == env.nitems);
	es_env_close(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (!dir[0])
		init();
	if (n < 1)
		return 0;
	unsigned mode = d[0];
	int image = (mode & 1) != 0;
	unsigned char *m = malloc(n);
	size_t len = n - 1;
	memcpy(m, d + 1, len);
	struct sim sims[MAXIT];
	unsigned nsims = 0;
	clean();
	if (mode & 2)
		len = reseal(m, len, image, sims, &nsims);
	const unsigned char *base = image ? imgbase : rawbase;
	size_t blen = image ? imglen : sizeof rawbase;
	write_file(target, base, blen);
	if (mode & 4)
		write_source(image, len >= 32 ? get64(m + 24) : 0, sims, nsims);
	struct fz_file diff;
	fz_file(&diff, m, len);

	struct es_apply_opts o;
	memset(&o, 0, sizeof o);
	o.target = target;
	o.diff = diff.path;
	o.source = mode & 4 ? source : NULL;
	o.dry_run = (mode & 8) != 0;
	int rc = es_apply(&o);

	char jpath[400];
	snprintf(jpath, sizeof jpath, "%s/.t.envsync-journal", dir);
	FZ_ASSERT(access(jpath, F_OK) != 0);
	if (rc == ES_OK && !o.dry_run) {
		check_result(diff.path, image);
	} else {
		size_t tn;
		unsigned char *t = read_file(target, &tn);
		FZ_ASSERT(tn == blen && memcmp(t, base, blen) == 0);
		free(t);
	}
	fz_close(&diff);
	for (unsigned i = 0; i < nsims; i++)
		free(sims[i].res);
	free(m);
	return 0;
}
