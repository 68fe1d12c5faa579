/* calib.c: measuring a medium's delta and full costs and fitting the model.
 *
 * Where the time goes decides the design: at 1 GiB a full copy takes seconds
 * and every delta apply reads the whole target twice (its CRC before and
 * after), so measuring each delta pattern on an item-sized scratch file costs
 * a second or more per apply, most of it the same fixed cost again. So:
 *  - at the item's own size only what depends on it: full copies, and
 *    one-spot deltas for the delta's fixed cost. Both are measured there, not
 *    extrapolated, because a full copy's cost grows faster than linearly on
 *    real disks (write caches fill up): 64 MiB and 256 MiB copies predict a
 *    1 GiB copy's time 1.5-2.5 x too low on a virtio disk. Up to RUN_MAX
 *    also the whole item changed, both ways (run_points);
 *  - the cost per entry of the stream, which every apply reads and checks
 *    (a 26 MiB one-run change once took 2.7 s to copy instead of 0.7 s):
 *    from those whole-item points, or full copies of a RUN_MAX file
 *    (entry_points);
 *  - on a "work" file of at most WORK_MAX bytes what does not depend on the
 *    item's size: the delta's per-spot, per-byte, per-block and per-record
 *    costs;
 *  - no scratch file is written just to exist: sources are sparse, and the
 *    scratch target becomes real (allocated, fsynced) zeros by being the
 *    target of the first full copies, which are measured anyway;
 *  - every apply is a sample: a pattern's forward apply and the back apply
 *    that undoes it cost the same work, so both count; points are measured
 *    in interleaved rounds and keep their fastest sample (see add_point).
 * The fit weights each point by 1/time (relative error), so the 20 ms and the
 * 2 s points count alike. */
#include "config.h"
#include "calib.h"
#include "apply.h"
#include "image.h"
#include "io.h"
#include "journal.h"
#include "stream.h"
#include "util.h"

#include <dirent.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define FILL 0xa5 /* the byte every change writes over the zero base */
#define MAXPTS 64
#define MAXSAMPLES 8
#define WORK_MAX (64ull << 20) /* the work file for size-independent costs */
#define WORK_QUICK (16ull << 20) /* the same with --quick */
/* At most this many changed bytes per pattern: 2 MiB is 262144 entries,
 * whose cost (about 1 us each in both paths since envapply checks every
 * entry's CRC contribution) already stands well above an apply's fixed cost;
 * 8 MiB made the work file's points take 25 s. */
#define RUN_MAX (2ull << 20)

/* A change pattern: COUNT runs of LEN bytes, STRIDE bytes apart. */
struct pattern {
	uint64_t count, len, stride;
};

struct point {
	int full;
	int at_item; /* measured at the item's size (else on the work file) */
	uint64_t spots, bytes, blocks, entries, size;
	uint64_t written; /* bytes a delta journals: with gaps up to ES_J_GAP */
	uint64_t records; /* the journal records they make */
	double ns; /* the fastest sample */
	int samples;
};

struct scratch {
	char *dir;
	char *target, *src_b; /* the scratch target, a source of zeros */
	uint64_t size, block;
	uint64_t cur; /* the size of the scratch files in use */
	uint64_t other; /* the second size full copies are measured at */
	int verbose;
	double t0;
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

/* Entries the stream holds for the pattern: an Area or Data entry carries
 * the first 8 bytes of a run, a Cont entry each further 8. */
static uint64_t entries_of(const struct pattern *p)
{
	return p->count * ((p->len + 7) / 8);
}

/* Write the raw diff stream for the pattern (its own inverse, CRCs swapped),
 * judged DECISION. */
static int write_diff(const char *path, const struct pattern *p, uint64_t size,
		      uint32_t base_crc, uint32_t result_crc, uint8_t decision)
{
	struct es_out out;
	struct es_writer w;
	if (es_out_open(&out, path, 1) < 0)
		return -1;
	es_writer_init(&w, out.fd, path);
	struct es_sink k = es_writer_sink(&w);
	struct es_dhdr h = {decision == ES_FULL ? ES_DF_JUDGED : 0, 1, 0, 0};
	struct es_ditem it;
	memset(&it, 0, sizeof it);
	strcpy(it.name, ES_RAW_NAME);
	it.presence = ES_IN_BASE | ES_IN_RESULT;
	it.base_size = it.result_size = size;
	struct es_dend d = {decision, base_crc, result_crc, 0, p->count, p->count * p->len};
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

/* A sparse file of SIZE zero bytes, with the pattern's runs set when p is
 * given: a source to copy from, read as fast as a source in the page cache,
 * without writing SIZE bytes to the medium first. */
static int sparse_file(const char *path, uint64_t size, const struct pattern *p)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		es_errno("%s: cannot create scratch file", path);
		return -1;
	}
	int r = ftruncate(fd, (off_t)size);
	unsigned char fill[65536];
	memset(fill, FILL, sizeof fill);
	for (uint64_t i = 0; p && i < p->count && r == 0; i++)
		for (uint64_t done = 0; done < p->len && r == 0; done += sizeof fill) {
			uint64_t n = p->len - done < sizeof fill ? p->len - done : sizeof fill;
			r = es_pwrite_full(fd, fill, (size_t)n, i * p->stride + done);
		}
	/* durable now, so that writeback does not run during the timed applies */
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

/* Run one apply in a child process and wait for it: its exit status, or -1.
 * A failover's envapply is a fresh process, which pays a page fault for
 * every buffer page it touches; a process that has applied before has them
 * already. In-process, the calibration missed that: at 64 KiB a dense delta
 * touched 115 pages more than a full copy, the bench measured it 0.6 ms
 * slower, and eight quick calibrations predicted it faster in five. */
static int child_apply(const struct es_apply_opts *o)
{
	pid_t pid = fork();
	if (pid < 0) {
		es_errno("cannot start a measured apply");
		return -1;
	}
	if (pid == 0) {
		/* an interrupt stops the measurement now, not after the copy */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		_exit(es_apply(o));
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			es_errno("cannot wait for a measured apply");
			return -1;
		}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WTERMSIG(st) == SIGINT || WTERMSIG(st) == SIGTERM)
		interrupted = 1;
	else
		es_err("a measured apply was killed by signal %d", WTERMSIG(st));
	return -1;
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
	if (interrupted)
		return -1;
	double t0 = now_ns();
	int rc = child_apply(&o);
	*ns = now_ns() - t0;
	return rc == ES_OK && !interrupted ? 0 : -1;
}

/* Distinct blocks of size BLOCK the pattern touches (runs start on multiples
 * of the stride, which is a multiple of the block when at least one block). */
static uint64_t blocks_of(const struct pattern *p, uint64_t block)
{
	if (p->stride >= block || p->count == 1)
		return p->count * ((p->len + block - 1) / block);
	return ((p->count - 1) * p->stride + p->len + block - 1) / block;
}

/* One point to measure: a pattern applied forward and back (a delta), or
 * copied in full from a source holding it and back from zeros (a full copy);
 * both directions do the same work, so every apply is a sample. */
struct job {
	int full;
	struct pattern p;
	char *fwd, *back, *src;
	double t[MAXSAMPLES];
	int n;
};

static void add_point(struct scratch *s, const struct job *j)
{
	double t[MAXSAMPLES];
	int n = j->n;
	memcpy(t, j->t, sizeof t);
	qsort(t, (size_t)n, sizeof t[0], cmp_double);
	struct point *pt = &s->pts[s->npts++];
	memset(pt, 0, sizeof *pt);
	pt->full = j->full;
	pt->at_item = s->cur == s->size;
	pt->spots = j->p.count;
	pt->bytes = j->p.count * j->p.len;
	int joined = j->p.count > 1 && es_j_joins(j->p.len, j->p.stride);
	pt->written = joined ? (j->p.count - 1) * j->p.stride + j->p.len : pt->bytes;
	pt->records = joined ? es_j_records(pt->written) : j->p.count * es_j_records(j->p.len);
	pt->blocks = blocks_of(&j->p, s->block);
	pt->entries = entries_of(&j->p);
	pt->size = s->cur;
	/* the fastest sample: load from elsewhere only ever adds time, and on
	 * a shared machine a burst can outlast all of a point's samples (256
	 * MiB copies measured at 1.9 s that take 0.7 s) */
	pt->ns = t[0];
	pt->samples = n;
	if (!s->verbose)
		return;
	fprintf(stderr,
		"%s: calibrate: %s %" PRIu64 " spots, %" PRIu64 " bytes, %" PRIu64
		" blocks, %" PRIu64 " entries on %.1f MiB: %.1f ms, fastest of",
		es_program(), j->full ? "full" : "delta", pt->spots, pt->bytes, pt->blocks,
		pt->entries, (double)s->cur / 1048576, pt->ns / 1e6);
	for (int i = 0; i < n; i++)
		fprintf(stderr, " %.1f", t[i] / 1e6);
	fprintf(stderr, "; %.1f s so far\n", (now_ns() - s->t0) / 1e9);
}

/* Remove every file in the scratch directory (scratch files, streams, and
 * the state files envapply keeps beside the scratch target). */
static void remove_files(struct scratch *s)
{
	DIR *d = opendir(s->dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
}

static char *job_path(const struct scratch *s, int i, const char *what)
{
	char name[32];
	snprintf(name, sizeof name, "%d.%s", i, what);
	return path_in(s->dir, name);
}

/* Measure the jobs on scratch files of SIZE bytes, in ROUNDS rounds of one
 * forward and one back apply each, the jobs in turn (reversed every other
 * round), so that a burst of load from elsewhere spoils one sample of many
 * points rather than every sample of one. The target starts as job 0's
 * pattern, sparse, when job 0 is a full copy, whose first round then only
 * copies back: the copy makes the target real, allocated zeros, the base of
 * every pattern. */
static int measure(struct scratch *s, uint64_t size, struct job *jobs, int njobs, int rounds)
{
	int r = -1;
	remove_files(s);
	s->cur = size;
	uint32_t zero = crc_fill(0, size);
	if (sparse_file(s->src_b, size, NULL) < 0 ||
	    sparse_file(s->target, size, jobs[0].full ? &jobs[0].p : NULL) < 0)
		return -1;
	for (int i = 0; i < njobs; i++) {
		struct job *j = &jobs[i];
		uint8_t how = j->full ? ES_FULL : ES_DELTA;
		uint32_t changed = pattern_crc(&j->p, size);
		j->n = 0;
		j->fwd = job_path(s, i, "fwd");
		j->back = job_path(s, i, "back");
		j->src = j->full ? job_path(s, i, "src") : NULL;
		if (write_diff(j->fwd, &j->p, size, zero, changed, how) < 0 ||
		    write_diff(j->back, &j->p, size, changed, zero, how) < 0 ||
		    (j->full && sparse_file(j->src, size, &j->p) < 0))
			goto out;
	}
	for (int round = 0; round < rounds; round++)
		for (int k = 0; k < njobs; k++) {
			struct job *j = &jobs[round % 2 ? njobs - 1 - k : k];
			int skip_fwd = round == 0 && j == &jobs[0] && j->full;
			if ((!skip_fwd && timed_apply(s->target, j->fwd, j->src, &j->t[j->n++]) < 0) ||
			    timed_apply(s->target, j->back, j->full ? s->src_b : NULL,
					&j->t[j->n++]) < 0)
				goto out;
		}
	for (int i = 0; i < njobs; i++)
		add_point(s, &jobs[i]);
	r = 0;
out:
	for (int i = 0; i < njobs; i++) {
		free(jobs[i].fwd);
		free(jobs[i].back);
		free(jobs[i].src);
		jobs[i].fwd = jobs[i].back = jobs[i].src = NULL;
	}
	return r;
}

/* ---- fitting ---- */

#define MAXCOL 7

/* Solve the n x n system A x = v (Gauss-Jordan, partial pivoting); -1 when
 * singular. */
static int solve(double A[MAXCOL][MAXCOL], double *v, int n, double *x)
{
	for (int c = 0; c < n; c++) {
		int piv = c;
		for (int r = c + 1; r < n; r++)
			if (fabs(A[r][c]) > fabs(A[piv][c]))
				piv = r;
		if (fabs(A[piv][c]) < 1e-300)
			return -1;
		for (int k = 0; k < n; k++) {
			double tmp = A[c][k];
			A[c][k] = A[piv][k];
			A[piv][k] = tmp;
		}
		double tv = v[c];
		v[c] = v[piv];
		v[piv] = tv;
		for (int r = 0; r < n; r++) {
			if (r == c)
				continue;
			double f = A[r][c] / A[c][c];
			for (int k = c; k < n; k++)
				A[r][k] -= f * A[c][k];
			v[r] -= f * v[c];
		}
	}
	for (int i = 0; i < n; i++)
		x[i] = v[i] / A[i][i];
	return 0;
}

/* Non-negative least squares for y = X b, each row weighted by 1/y (the
 * relative error counts, so that the long applies do not drown the short
 * ones). With at most MAXCOL unknowns every subset of columns is tried: the
 * best fit among those with all coefficients >= 0 is the exact NNLS
 * solution. Columns are scaled to unit norm first, for a sane condition. */
static void fit(double X[][MAXCOL], const double *y, int m, int n, double *b)
{
	double scale[MAXCOL], best = INFINITY;
	for (int k = 0; k < n; k++) {
		double s = 0;
		for (int r = 0; r < m; r++)
			s += X[r][k] / y[r] * X[r][k] / y[r];
		scale[k] = s > 0 ? sqrt(s) : 1;
		b[k] = 0;
	}
	for (unsigned set = 1; set < 1u << n; set++) {
		int idx[MAXCOL], p = 0;
		for (int k = 0; k < n; k++)
			if (set & 1u << k)
				idx[p++] = k;
		double A[MAXCOL][MAXCOL] = {{0}}, v[MAXCOL] = {0}, x[MAXCOL];
		for (int r = 0; r < m; r++) {
			double w = 1 / y[r];
			for (int i = 0; i < p; i++) {
				double xi = X[r][idx[i]] * w / scale[idx[i]];
				v[i] += xi; /* y[r] * w == 1 */
				for (int k = 0; k < p; k++)
					A[i][k] += xi * X[r][idx[k]] * w / scale[idx[k]];
			}
		}
		if (solve(A, v, p, x) < 0)
			continue;
		int ok = 1;
		for (int i = 0; i < p; i++)
			ok &= x[i] >= 0;
		if (!ok)
			continue;
		double res = 0;
		for (int r = 0; r < m; r++) {
			double pred = 0;
			for (int i = 0; i < p; i++)
				pred += X[r][idx[i]] * x[i] / scale[idx[i]];
			res += (pred / y[r] - 1) * (pred / y[r] - 1);
		}
		if (res < best) {
			best = res;
			for (int k = 0; k < n; k++)
				b[k] = 0;
			for (int i = 0; i < p; i++)
				b[idx[i]] = x[i] / scale[idx[i]];
		}
	}
}

/* The full copies' costs: one per size measured (the item's, the other
 * one and RUN_MAX's), and one per entry of the diff stream. */
static void fit_full(const struct scratch *s, struct es_calib *c)
{
	double X[MAXPTS][MAXCOL] = {{0}}, y[MAXPTS] = {0}, b[MAXCOL] = {0};
	int m = 0;
	for (int i = 0; i < s->npts; i++) {
		const struct point *p = &s->pts[i];
		if (!p->full)
			continue;
		int col = p->size == s->size ? 0 : p->size == s->other ? 1 : 2;
		X[m][col] = 1;
		X[m][3] = (double)p->entries;
		y[m++] = p->ns;
	}
	fit(X, y, m, 4, b);
	/* The line through both sizes' costs, exact at the item's size; when
	 * the cost grows faster than the size (a negative intercept), the line
	 * through the origin and the item's size instead. */
	double at = b[0], slope = (b[0] - b[1]) / ((double)s->size - (double)s->other);
	if (slope < 0)
		slope = 0;
	if (at - slope * (double)s->size < 0)
		slope = at / (double)s->size;
	c->full_per_byte = slope;
	c->full_fixed = at - slope * (double)s->size;
	c->full_per_entry = b[3];
}

/* The delta applies' costs beyond the entries' (the full fit's per-entry
 * cost, which a delta pays as well): a fixed cost at the item's size and one
 * on the work file (the whole-target CRC reads make it grow with the size),
 * shared per-spot, per-block and per-record costs, and a cost per byte:
 * the item's own when it was measured changed whole, else the work
 * file's. */
static void fit_delta(const struct scratch *s, struct es_calib *c)
{
	double X[MAXPTS][MAXCOL] = {{0}}, y[MAXPTS] = {0}, b[MAXCOL] = {0};
	/* an item changed whole was measured: its cost per byte written is
	 * the item's own, the work file's does not carry over (a 64 KiB item's
	 * whole-item delta cost more than the work file's costs said, and
	 * fitted as one, the excess went into the fixed cost: every one-byte
	 * change went full, 3-6 % slower) */
	int whole = s->size <= RUN_MAX && s->size >= s->block;
	int m = 0;
	for (int i = 0; i < s->npts; i++) {
		const struct point *p = &s->pts[i];
		if (p->full)
			continue;
		X[m][0] = p->at_item;
		X[m][1] = !p->at_item;
		X[m][2] = (double)p->spots;
		X[m][3] = (double)p->written * !(p->at_item && whole);
		X[m][4] = (double)p->blocks;
		X[m][5] = (double)p->records;
		X[m][6] = (double)p->written * (p->at_item && whole);
		double rest = p->ns - c->full_per_entry * (double)p->entries;
		/* the weights are 1/y: keep y positive where noise made the
		 * entries' share look bigger than the whole */
		y[m++] = rest > p->ns / 10 ? rest : p->ns / 10;
	}
	fit(X, y, m, whole ? 7 : 6, b);
	c->delta_fixed = b[0];
	c->per_spot = b[2];
	c->per_byte = whole ? b[6] : b[3];
	c->per_block = b[4];
	c->per_record = b[5];
}

static void fit_model(const struct scratch *s, struct es_calib *c)
{
	fit_full(s, c);
	fit_delta(s, c);
}

void es_calib_crossover(const struct es_calib *c, uint64_t size, FILE *f)
{
	double full = c->full_fixed + c->full_per_byte * (double)size;
	double B = (double)c->block_size;
	/* what one more spot adds to a delta beyond a full copy: both read
	 * its entries, so only the per-spot, per-byte, per-block and
	 * per-record costs (a lone spot is a record of its own) */
	double scattered = c->per_spot + c->per_byte + c->per_block + c->per_record;
	double runs = c->per_spot + c->per_byte * B + c->per_block + c->per_record;
	double room = full - c->delta_fixed;
	fprintf(f, "for a %.1f MiB item (full copy %.1f ms), delta is faster below ",
		(double)size / 1048576, full / 1e6);
	if (room <= 0) {
		fprintf(f, "any change: a delta's fixed cost alone exceeds a full copy\n");
		return;
	}
	if (scattered > 0)
		fprintf(f, "%.0f scattered spots", room / scattered);
	else
		fprintf(f, "any number of scattered spots");
	if (runs > 0)
		fprintf(f, ", or %.1f MiB changed in %" PRIu64 "-byte runs\n",
			room / runs * B / 1048576, c->block_size);
	else
		fprintf(f, ", and for any amount changed in %" PRIu64 "-byte runs\n", c->block_size);
}

/* ---- the whole calibration ---- */

static void cleanup(struct scratch *s)
{
	remove_files(s);
	rmdir(s->dir);
	free(s->dir);
	free(s->target);
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
	s->src_b = path_in(s->dir, "zeros");
	s->verbose = o->verbose;
	s->t0 = now_ns();
	return 0;
}

/* Rounds of every measurement, --quick too. With one, five quick 1 MiB
 * calibrations put the cost per entry at 53-168 ns (a slow sample of the
 * long-run full copy), two of them left the delta's cost per byte at 0, and
 * the bench's 1 MiB dense pairs went delta, 1.4 x slower than full; with
 * two, eight put it at 47-60 ns and the crossover at 224-296 spots, in 0.8 s
 * each. At the item's size the first full copy also turns the sparse
 * scratch target into allocated blocks: alone it read 150 ms at 64 MiB where
 * later copies took 75 (a 64 MiB bench pair with 0.1 % changed went delta,
 * 2.5 x slower). */
#define ROUNDS 2

/* The size-independent costs, on scratch files of W bytes; when W is the
 * item's size, its full copies and one-spot delta are among them. */
static int work_points(struct scratch *s, uint64_t W, int quick)
{
	struct job jobs[MAXPTS];
	int n = 0;
	uint64_t B = s->block;
	memset(jobs, 0, sizeof jobs);
	/* a full copy: the cost per byte, with the item's */
	jobs[n++] = (struct job){1, {1, 1, W}, NULL, NULL, NULL, {0}, 0};
	static const uint64_t counts[] = {1, 16, 256, 4096, 16384};
	int nc = quick ? 4 : 5;
	for (int i = 0; i < nc; i++) {
		uint64_t k = counts[i];
		struct pattern scattered = {k, 1, B}; /* one byte per block */
		struct pattern packed = {k, 1, 2};    /* one byte in two */
		struct pattern pages = {k, B, 2 * B}; /* every other block, whole */
		/* four bytes a block, too far apart to share a journal record: the
		 * cost per record apart from the cost per block (a 1 MiB change
		 * with 2.5 records a block was predicted as fast as a full copy
		 * and took 1.4 x as long) */
		struct pattern quarters = {k, 1, B / 4};
		if (k * B <= W)
			jobs[n++] = (struct job){0, scattered, NULL, NULL, NULL, {0}, 0};
		if (k >= 256 && k * (B / 4) <= W && B / 4 > ES_J_GAP)
			jobs[n++] = (struct job){0, quarters, NULL, NULL, NULL, {0}, 0};
		if (2 * k <= W && k >= 16)
			jobs[n++] = (struct job){0, packed, NULL, NULL, NULL, {0}, 0};
		if (2 * k * B <= W && k * B <= RUN_MAX)
			jobs[n++] = (struct job){0, pages, NULL, NULL, NULL, {0}, 0};
	}
	uint64_t dl = W / 8 < RUN_MAX ? W / 8 : RUN_MAX;
	jobs[n++] = (struct job){0, {1, dl, W}, NULL, NULL, NULL, {0}, 0};
	/* a dense scatter, one byte in 16 over half the file (at most 2 MiB):
	 * the journal writes it whole, gaps included; without it the cost per
	 * byte written comes from runs alone, and a change to every tenth byte
	 * was predicted several times too cheap */
	uint64_t dense = (W / 2 < RUN_MAX ? W / 2 : RUN_MAX) / 16;
	if (dense >= 16)
		jobs[n++] = (struct job){0, {dense, 1, 16}, NULL, NULL, NULL, {0}, 0};
	return measure(s, W, jobs, n, ROUNDS);
}

/* The cost per entry of the diff stream, which every apply reads, checks
 * and spools: full copies of a RUN_MAX file, unchanged but for one byte and
 * changed whole. Measured where the copy itself costs little: from full
 * copies of the 16 MiB work file, one of them carrying a 2 MiB run, it came
 * out at 54-83 ns an entry, where 64 MiB and 1 GiB full copies in the bench
 * paid 43-60; it is subtracted from every delta point, so the deltas' cost
 * per byte came out too low (a 1 GiB item with a 100 MiB run went delta,
 * 1.09 x slower than its full copy). */
static int entry_points(struct scratch *s)
{
	struct job jobs[2] = {{1, {1, 1, RUN_MAX}, NULL, NULL, NULL, {0}, 0},
			      {1, {1, RUN_MAX, RUN_MAX}, NULL, NULL, NULL, {0}, 0}};
	return measure(s, RUN_MAX, jobs, 2, ROUNDS);
}

static int run_points(struct scratch *s, int quick)
{
	uint64_t S = s->size, W = quick ? WORK_QUICK : WORK_MAX;
	int r;
	/* at the item's size: full copies, one-spot deltas; the rest on the
	 * work file, also for a smaller item: on a few MiB the per-spot and
	 * per-byte costs drown in fsync latency (a 1 MiB fit left them at 0,
	 * and every dense change there went delta, 1.5 x slow) */
	if (S != W) {
		struct job at_size[4] = {{1, {1, 1, S}, NULL, NULL, NULL, {0}, 0},
					 {0, {1, 1, S}, NULL, NULL, NULL, {0}, 0},
					 {1, {1, S, S}, NULL, NULL, NULL, {0}, 0},
					 {0, {1, S, S}, NULL, NULL, NULL, {0}, 0}};
		/* up to 2 MiB also the whole item changed, by either path: the
		 * densest change it can have, and the cost per entry where it is
		 * paid. From the work file's points alone, four of eight quick
		 * calibrations predicted a 64 KiB item's whole-item delta faster
		 * than its full copy; it was 0.6 ms slower (with these points:
		 * none of eight) */
		s->other = W;
		r = measure(s, S, at_size, S <= RUN_MAX ? 4 : 2, ROUNDS);
	} else {
		/* the work file's size: full copies of a quarter too, for the
		 * cost per byte */
		struct job quarter = {1, {1, 1, S / 4}, NULL, NULL, NULL, {0}, 0};
		s->other = S / 4;
		r = measure(s, S / 4, &quarter, 1, ROUNDS);
	}
	if (r == 0 && S > RUN_MAX)
		r = entry_points(s);
	return r < 0 ? -1 : work_points(s, W, quick);
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
	fprintf(f, "# measured points: kind spots bytes blocks entries size ns (fastest)\n");
	for (int i = 0; i < s->npts; i++) {
		const struct point *p = &s->pts[i];
		fprintf(f,
			"point %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
			" %.0f\n",
			p->full ? "full" : "delta", p->spots, p->bytes, p->blocks, p->entries,
			p->size, p->ns);
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
	if (o->verbose)
		fprintf(stderr, "%s: calibrate: %.1f s\n", es_program(), (now_ns() - s.t0) / 1e9);
	es_calib_crossover(&c, c.item_size, stderr);
	return ES_OK;
}
