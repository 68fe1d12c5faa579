/* calib.c: measuring a medium's delta and full costs and fitting the model. */
#include "config.h"
#include "calib.h"
#include "apply.h"
#include "image.h"
#include "io.h"
#include "stream.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define FILL 0xa5 /* the byte every change writes over the zero base */
#define MAXPTS 64

/* A change pattern: COUNT runs of LEN bytes, STRIDE bytes apart. */
struct pattern {
	const char *what;
	uint64_t count, len, stride;
};

struct point {
	int full;
	uint64_t spots, bytes, blocks, size;
	double ns;
};

struct scratch {
	char *dir;
	char *target, *diff_fwd, *diff_back, *src_a, *src_b;
	uint64_t size, block;
	struct point pts[MAXPTS];
	int npts;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* CRC32 of n copies of byte b, by doubling with crc32_combine. */
static uint32_t crc_fill(unsigned char b, uint64_t n)
{
	uint32_t acc = 0, piece = (uint32_t)crc32(0, &b, 1);
	uint64_t plen = 1;
	int have = 0;
	while (n) {
		if (n & 1) {
			acc = have ? (uint32_t)crc32_combine(acc, piece, (z_off_t)plen) : piece;
			have = 1;
		}
		n >>= 1;
		if (n) {
			piece = (uint32_t)crc32_combine(piece, piece, (z_off_t)plen);
			plen *= 2;
		}
	}
	return have ? acc : (uint32_t)crc32(0, NULL, 0);
}

static uint32_t cat(uint32_t a, uint64_t alen, uint32_t b, uint64_t blen)
{
	if (alen == 0)
		return b;
	return blen ? (uint32_t)crc32_combine(a, b, (z_off_t)blen) : a;
}

/* CRC32 of the zero base with the pattern's runs set to FILL. */
static uint32_t pattern_crc(const struct pattern *p, uint64_t size)
{
	uint32_t crc = 0;
	uint64_t pos = 0;
	for (uint64_t i = 0; i < p->count; i++) {
		uint64_t off = i * p->stride;
		crc = cat(crc, pos, crc_fill(0, off - pos), off - pos);
		pos = off;
		crc = cat(crc, pos, crc_fill(FILL, p->len), p->len);
		pos += p->len;
	}
	return cat(crc, pos, crc_fill(0, size - pos), size - pos);
}

/* Write the raw diff stream for the pattern (its own inverse, CRCs swapped). */
static int write_diff(const char *path, const struct pattern *p, uint64_t size,
		      uint32_t base_crc, uint32_t result_crc)
{
	struct es_out out;
	struct es_writer w;
	if (es_out_open(&out, path, 1) < 0)
		return -1;
	es_writer_init(&w, out.fd, path);
	struct es_sink k = es_writer_sink(&w);
	struct es_dhdr h = {0, 1, 0, 0};
	struct es_ditem it;
	memset(&it, 0, sizeof it);
	strcpy(it.name, ES_RAW_NAME);
	it.presence = ES_IN_BASE | ES_IN_RESULT;
	it.base_size = it.result_size = size;
	struct es_dend d = {ES_DELTA, base_crc, result_crc, 0, p->count, p->count * p->len};
	int r = k.header(k.arg, &h) < 0 || k.item(k.arg, &it) < 0 ? -1 : 0;
	struct es_entry e;
	for (uint64_t i = 0; i < p->count && r == 0; i++) {
		uint64_t off = i * p->stride;
		e.flag = p->len <= 8 ? ES_DATA : ES_AREA;
		e.size = (uint32_t)p->len;
		e.offset = off;
		memset(e.data, 0, 8);
		memset(e.data, FILL, p->len < 8 ? p->len : 8);
		r = k.entry(k.arg, &it, &e);
		d.entries++;
		for (uint64_t rel = 8; p->len > 8 && rel < p->len && r == 0; rel += 8) {
			e.flag = ES_CONT;
			e.offset = rel;
			e.size = (uint32_t)(p->len - rel < 8 ? p->len - rel : 8);
			memset(e.data, 0, 8);
			memset(e.data, FILL, e.size);
			r = k.entry(k.arg, &it, &e);
			d.entries++;
		}
	}
	if (r == 0)
		r = k.end(k.arg, &it, &d);
	if (r == 0)
		r = k.finish(k.arg);
	if (r == 0)
		r = es_out_commit(&out);
	es_out_abort(&out);
	es_writer_free(&w);
	return r;
}

static char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *s = es_malloc(n);
	snprintf(s, n, "%s/%s", dir, name);
	return s;
}

/* A file of SIZE bytes: zeros, with the pattern's runs set when p is given. */
static int write_file(const char *path, uint64_t size, const struct pattern *p)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		es_errno("%s: cannot create scratch file", path);
		return -1;
	}
	unsigned char *buf = es_calloc(1, ES_CHUNK);
	int r = 0;
	for (uint64_t pos = 0; pos < size && r == 0; pos += ES_CHUNK) {
		size_t n = size - pos < ES_CHUNK ? (size_t)(size - pos) : ES_CHUNK;
		r = es_write_full(fd, buf, n);
	}
	free(buf);
	unsigned char fill[4096];
	memset(fill, FILL, sizeof fill);
	for (uint64_t i = 0; p && i < p->count && r == 0; i++)
		for (uint64_t done = 0; done < p->len && r == 0; done += sizeof fill) {
			uint64_t n = p->len - done < sizeof fill ? p->len - done : sizeof fill;
			r = es_pwrite_full(fd, fill, (size_t)n, i * p->stride + done);
		}
	if (r < 0 || fsync(fd) < 0) {
		es_errno("%s: cannot write scratch file", path);
		r = -1;
	}
	close(fd);
	return r;
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Time one envapply through its real code path; 0 on success. */
static int timed_apply(const char *target, const char *diff, const char *source,
		       double *ns)
{
	struct es_apply_opts o;
	memset(&o, 0, sizeof o);
	o.target = target;
	o.diff = diff;
	o.source = source;
	double t0 = now_ns();
	int rc = es_apply(&o);
	*ns = now_ns() - t0;
	return rc == ES_OK ? 0 : -1;
}

/* Distinct blocks of size BLOCK the pattern touches (runs start on multiples
 * of the stride, which is a multiple of the block when at least one block). */
static uint64_t blocks_of(const struct pattern *p, uint64_t block)
{
	if (p->stride >= block || p->count == 1)
		return p->count * ((p->len + block - 1) / block);
	return ((p->count - 1) * p->stride + p->len + block - 1) / block;
}

/* Delta pattern: apply forward and back REPS times, keep the median. */
static int measure_delta(struct scratch *s, const struct pattern *p, int reps)
{
	uint32_t zero = crc_fill(0, s->size), changed = pattern_crc(p, s->size);
	if (write_diff(s->diff_fwd, p, s->size, zero, changed) < 0 ||
	    write_diff(s->diff_back, p, s->size, changed, zero) < 0)
		return -1;
	double t[16], back;
	for (int i = 0; i < reps; i++) {
		if (interrupted || timed_apply(s->target, s->diff_fwd, NULL, &t[i]) < 0 ||
		    timed_apply(s->target, s->diff_back, NULL, &back) < 0)
			return -1;
	}
	qsort(t, (size_t)reps, sizeof t[0], cmp_double);
	struct point *pt = &s->pts[s->npts++];
	pt->full = 0;
	pt->spots = p->count;
	pt->bytes = p->count * p->len;
	pt->blocks = blocks_of(p, s->block);
	pt->size = s->size;
	pt->ns = t[reps / 2];
	return 0;
}

/* Full copies of SIZE bytes: to the one-spot file A and back to zeros B. */
static int measure_full(struct scratch *s, uint64_t size, int reps)
{
	struct pattern one = {"one spot", 1, 1, 1};
	uint32_t zero = crc_fill(0, size), changed = pattern_crc(&one, size);
	if (write_file(s->target, size, NULL) < 0 || write_file(s->src_a, size, &one) < 0 ||
	    write_file(s->src_b, size, NULL) < 0)
		return -1;
	struct pattern fwd = one;
	if (write_diff(s->diff_fwd, &fwd, size, zero, changed) < 0 ||
	    write_diff(s->diff_back, &fwd, size, changed, zero) < 0)
		return -1;
	/* mark both streams full: re-judge in place with a zero threshold */
	struct es_judge j;
	memset(&j, 0, sizeof j);
	j.policy = ES_P_FIXED;
	const char *paths[2] = {s->diff_fwd, s->diff_back};
	for (int k = 0; k < 2; k++) {
		struct es_reader r;
		struct es_out out;
		struct es_writer w;
		if (es_reader_open(&r, paths[k]) < 0)
			return -1;
		if (es_out_open(&out, paths[k], 1) < 0) {
			es_reader_close(&r);
			return -1;
		}
		es_writer_init(&w, out.fd, out.name);
		struct es_sink bin = es_writer_sink(&w);
		j.next = &bin;
		struct es_sink js = es_judge_sink(&j);
		int rr = es_reader_run(&r, &js);
		if (rr == 0)
			rr = es_out_commit(&out);
		es_out_abort(&out);
		es_writer_free(&w);
		es_reader_close(&r);
		if (rr < 0)
			return -1;
	}
	double t[16], back;
	for (int i = 0; i < reps; i++)
		if (interrupted || timed_apply(s->target, s->diff_fwd, s->src_a, &t[i]) < 0 ||
		    timed_apply(s->target, s->diff_back, s->src_b, &back) < 0)
			return -1;
	qsort(t, (size_t)reps, sizeof t[0], cmp_double);
	struct point *pt = &s->pts[s->npts++];
	memset(pt, 0, sizeof *pt);
	pt->full = 1;
	pt->size = size;
	pt->ns = t[reps / 2];
	return 0;
}

/* ---- fitting ---- */

/* Least squares for y = X b with nonnegative b (columns dropped while any
 * coefficient comes out negative). n unknowns, up to 4. */
static void fit(double X[][4], const double *y, int m, int n, double *b)
{
	int active[4] = {1, 1, 1, 1};
	for (int round = 0; round < n; round++) {
		double A[4][5];
		memset(A, 0, sizeof A);
		for (int i = 0; i < n; i++) {
			for (int k = 0; k < n; k++)
				for (int r = 0; r < m; r++)
					A[i][k] += active[i] && active[k] ? X[r][i] * X[r][k] : 0;
			for (int r = 0; r < m; r++)
				A[i][n] += active[i] ? X[r][i] * y[r] : 0;
			if (!active[i])
				A[i][i] = 1;
		}
		for (int c = 0; c < n; c++) { /* Gauss-Jordan with partial pivoting */
			int piv = c;
			for (int r = c + 1; r < n; r++)
				if (fabs(A[r][c]) > fabs(A[piv][c]))
					piv = r;
			for (int k = 0; k <= n; k++) {
				double tmp = A[c][k];
				A[c][k] = A[piv][k];
				A[piv][k] = tmp;
			}
			if (fabs(A[c][c]) < 1e-30)
				continue;
			for (int r = 0; r < n; r++) {
				if (r == c)
					continue;
				double f = A[r][c] / A[c][c];
				for (int k = c; k <= n; k++)
					A[r][k] -= f * A[c][k];
			}
		}
		int neg = -1;
		for (int i = 0; i < n; i++) {
			b[i] = active[i] && fabs(A[i][i]) > 1e-30 ? A[i][n] / A[i][i] : 0;
			if (b[i] < 0 && (neg < 0 || b[i] < b[neg]))
				neg = i;
		}
		if (neg < 0)
			return;
		active[neg] = 0;
	}
	for (int i = 0; i < n; i++)
		if (b[i] < 0)
			b[i] = 0;
}

static void fit_model(const struct scratch *s, struct es_calib *c)
{
	double X[MAXPTS][4] = {{0}}, y[MAXPTS] = {0}, b[4] = {0};
	int m = 0;
	for (int i = 0; i < s->npts; i++)
		if (!s->pts[i].full) {
			X[m][0] = 1;
			X[m][1] = (double)s->pts[i].spots;
			X[m][2] = (double)s->pts[i].bytes;
			X[m][3] = (double)s->pts[i].blocks;
			y[m++] = s->pts[i].ns;
		}
	fit(X, y, m, 4, b);
	c->delta_fixed = b[0];
	c->per_spot = b[1];
	c->per_byte = b[2];
	c->per_block = b[3];
	m = 0;
	for (int i = 0; i < s->npts; i++)
		if (s->pts[i].full) {
			X[m][0] = 1;
			X[m][1] = (double)s->pts[i].size;
			y[m++] = s->pts[i].ns;
		}
	fit(X, y, m, 2, b);
	c->full_fixed = b[0];
	c->full_per_byte = b[1];
}

void es_calib_crossover(const struct es_calib *c, uint64_t size, FILE *f)
{
	double full = c->full_fixed + c->full_per_byte * (double)size;
	double scattered = c->per_spot + c->per_byte + c->per_block;
	double runs = c->per_spot + c->per_byte * (double)c->block_size + c->per_block;
	double room = full - c->delta_fixed;
	fprintf(f, "for a %.1f MiB item (full copy %.1f ms), delta is faster below ",
		(double)size / 1048576, full / 1e6);
	if (room <= 0) {
		fprintf(f, "any change: a delta's fixed cost alone exceeds a full copy\n");
		return;
	}
	fprintf(f, "%.0f scattered spots, or %.1f MiB changed in %" PRIu64 "-byte runs\n",
		scattered > 0 ? room / scattered : INFINITY,
		runs > 0 ? room / runs * (double)c->block_size / 1048576 : INFINITY,
		c->block_size);
}

/* ---- the whole calibration ---- */

static void cleanup(struct scratch *s)
{
	const char *names[] = {"t", "d.fwd", "d.back", "a", "b", ".t.envsync-journal",
			       ".t.envsync-journal.new", ".t.envsync-last",
			       ".t.envsync-lock", ".t.envsync-prev", ".t.envsync-new"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char *p = path_in(s->dir, names[i]);
		unlink(p);
		free(p);
	}
	rmdir(s->dir);
	free(s->dir);
	free(s->target);
	free(s->diff_fwd);
	free(s->diff_back);
	free(s->src_a);
	free(s->src_b);
}

static int setup(struct scratch *s, const struct es_calib_opts *o)
{
	struct es_in in;
	struct statvfs vfs;
	memset(s, 0, sizeof *s);
	if (es_in_open(&in, o->target) < 0)
		return -1;
	s->size = o->size ? o->size : in.size;
	int blk = in.is_blk;
	es_in_close(&in);
	if (blk) {
		es_err("%s: calibrating on a block device is not supported yet: calibrate on a file in a filesystem of the same medium",
		       o->target);
		return -1;
	}
	if (s->size == 0 || s->size == ES_SIZE_UNKNOWN || s->size > (64ull << 30)) {
		es_err("%s: cannot calibrate for an item of %" PRIu64 " bytes", o->target,
		       s->size);
		return -1;
	}
	char *copy = strdup(o->target);
	char tmpl[4096];
	snprintf(tmpl, sizeof tmpl, "%s/.envsync-calib.XXXXXX", dirname(copy));
	free(copy);
	if (statvfs(o->target, &vfs) < 0 || !mkdtemp(tmpl)) {
		es_errno("%s: cannot create a scratch directory beside it", o->target);
		return -1;
	}
	s->dir = strdup(tmpl);
	s->block = vfs.f_bsize ? vfs.f_bsize : 4096;
	s->target = path_in(s->dir, "t");
	s->diff_fwd = path_in(s->dir, "d.fwd");
	s->diff_back = path_in(s->dir, "d.back");
	s->src_a = path_in(s->dir, "a");
	s->src_b = path_in(s->dir, "b");
	return 0;
}

static int run_points(struct scratch *s, int quick)
{
	int reps = quick ? 1 : 3;
	uint64_t S = s->size, B = s->block;
	if (measure_full(s, S, reps) < 0 || measure_full(s, S / 4 ? S / 4 : 1, reps) < 0)
		return -1;
	if (write_file(s->target, S, NULL) < 0) /* the delta base: zeros */
		return -1;
	static const uint64_t counts[] = {1, 16, 256, 4096, 65536};
	int nc = quick ? 4 : 5;
	for (int i = 0; i < nc; i++) {
		uint64_t k = counts[i];
		struct pattern scattered = {"1 byte per block", k, 1, B};
		struct pattern packed = {"1 byte in 2", k, 1, 2};
		struct pattern pages = {"whole blocks", k, B, 2 * B};
		if (k * B <= S && measure_delta(s, &scattered, reps) < 0)
			return -1;
		if (2 * k <= S && k >= 16 && measure_delta(s, &packed, reps) < 0)
			return -1;
		if (2 * k * B <= S && k <= 4096 && measure_delta(s, &pages, reps) < 0)
			return -1;
	}
	struct pattern run = {"one run", 1, S / 8 ? S / 8 : 1, S};
	return measure_delta(s, &run, reps);
}

static int write_calfile(const struct scratch *s, const struct es_calib *c,
			 const struct es_calib_opts *o)
{
	struct es_out out;
	if (es_out_open(&out, o->output, 1) < 0)
		return -1;
	FILE *f = fdopen(dup(out.fd), "w");
	if (!f) {
		es_errno("%s: cannot write", out.name);
		es_out_abort(&out);
		return -1;
	}
	char date[64];
	time_t now = time(NULL);
	strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	es_calib_write(c, f, o->target);
	fprintf(f, "date %s\n", date);
	fprintf(f, "# measured points: kind spots bytes blocks size ns (median)\n");
	for (int i = 0; i < s->npts; i++) {
		const struct point *p = &s->pts[i];
		fprintf(f, "point %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %.0f\n",
			p->full ? "full" : "delta", p->spots, p->bytes, p->blocks, p->size,
			p->ns);
	}
	int r = fclose(f) == 0 ? 0 : -1;
	if (r < 0)
		es_errno("%s: write error", out.name);
	if (r == 0)
		r = es_out_commit(&out);
	es_out_abort(&out);
	return r;
}

int es_calibrate(const struct es_calib_opts *o)
{
	struct scratch s;
	struct es_calib c;
	if (setup(&s, o) < 0)
		return ES_TROUBLE;
	struct sigaction sa, old_int, old_term;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	int r = run_points(&s, o->quick);
	if (interrupted) {
		es_err("interrupted: scratch files removed, nothing written");
		r = -1;
	}
	if (r == 0) {
		memset(&c, 0, sizeof c);
		c.block_size = s.block;
		c.item_size = s.size;
		fit_model(&s, &c);
		r = write_calfile(&s, &c, o);
	}
	cleanup(&s);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (r < 0)
		return ES_TROUBLE;
	es_calib_crossover(&c, c.item_size, stderr);
	return ES_OK;
}
