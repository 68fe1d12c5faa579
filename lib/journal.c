/* journal.c: crash-safe in-place writes: journal, replay, recovery, lock. */
#include "config.h"
#include "journal.h"
#include "crc.h"
#include "image.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define J_MAGIC "ENVSJRNL"
#define J_HDR 64
#define J_REC 16
#define J_TAIL 24
#define STATE_DIR "/var/lib/envsync"

static char *join(const char *dir, const char *base, const char *suffix)
{
	size_t n = strlen(dir) + strlen(base) + strlen(suffix) + 4;
	char *s = es_malloc(n);
	snprintf(s, n, "%s/.%s%s", dir, base, suffix);
	return s;
}

int es_tpaths_init(struct es_tpaths *p, const char *target, const char *jdir, int is_blk)
{
	memset(p, 0, sizeof *p);
	char *c1 = strdup(target), *c2 = strdup(target);
	if (!c1 || !c2) {
		free(c1);
		free(c2);
		es_err("out of memory");
		return -1;
	}
	const char *base = basename(c1), *tdir = dirname(c2);
	const char *dir = jdir ? jdir : is_blk ? STATE_DIR : tdir;
	if (is_blk && !jdir)
		mkdir(STATE_DIR, 0755);
	/* A shared state directory holds several targets' files: key them by
	 * the target's real path, not only its last component. */
	char key[ES_NAME_MAX * 4 + 16];
	snprintf(key, sizeof key, "%s", base);
	if (jdir || is_blk) {
		char *real = realpath(target, NULL);
		const char *id = real ? real : target;
		snprintf(key, sizeof key, "%.200s.%08lx", base,
			 crc32(0, (const unsigned char *)id, (uInt)strlen(id)));
		free(real);
	}
	p->target = strdup(target);
	p->journal = join(dir, key, ".envsync-journal");
	p->jtmp = join(dir, key, ".envsync-journal.new");
	p->last = join(dir, key, ".envsync-last");
	p->lock = join(dir, key, ".envsync-lock");
	p->prev = join(tdir, base, ".envsync-prev");
	p->fresh = join(tdir, base, ".envsync-new");
	p->verified = join(dir, key, ".envsync-verified");
	free(c1);
	free(c2);
	return 0;
}

void es_tpaths_free(struct es_tpaths *p)
{
	free(p->target);
	free(p->journal);
	free(p->jtmp);
	free(p->last);
	free(p->lock);
	free(p->prev);
	free(p->fresh);
	free(p->verified);
	memset(p, 0, sizeof *p);
}

int es_lock(const struct es_tpaths *p, double wait_s)
{
	int fd = open(p->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		es_errno("%s: cannot create lock file", p->lock);
		return -1;
	}
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			es_errno("%s: cannot lock", p->lock);
			close(fd);
			return -1;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		double waited = (double)(now.tv_sec - start.tv_sec) +
				(double)(now.tv_nsec - start.tv_nsec) / 1e9;
		if (waited >= wait_s) {
			es_err("%s: another envapply holds the target (waited %.1f s; see -w)",
			       p->target, wait_s);
			close(fd);
			return -2;
		}
		/* 50 ms between tries; nanosleep, as POSIX.1-2008 dropped usleep */
		nanosleep(&(struct timespec){0, 50000000}, NULL);
	}
}

/* ---- writing ---- */

static void enc_state(unsigned char *h, const struct es_jstate *st)
{
	memset(h, 0, J_HDR);
	memcpy(h, J_MAGIC, 8);
	put16(h + 8, 1);
	put16(h + 10, st->kind);
	put32(h + 12, st->old_crc);
	put32(h + 16, st->new_crc);
	put64(h + 24, st->old_size);
	put64(h + 32, st->new_size);
	put64(h + 40, st->old_rev);
	put64(h + 48, st->new_rev);
	put16(h + 56, st->image);
}

static void dec_state(const unsigned char *h, struct es_jstate *st)
{
	st->kind = get16(h + 10);
	st->old_crc = get32(h + 12);
	st->new_crc = get32(h + 16);
	st->old_size = get64(h + 24);
	st->new_size = get64(h + 32);
	st->old_rev = get64(h + 40);
	st->new_rev = get64(h + 48);
	st->image = get16(h + 56);
}

int es_jw_open(struct es_jwriter *jw, const struct es_tpaths *p, int tfd,
	       uint64_t tsize, const struct es_jstate *st)
{
	memset(jw, 0, sizeof *jw);
	jw->fd = open(p->jtmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (jw->fd < 0) {
		es_errno("%s: cannot create journal", p->jtmp);
		return -1;
	}
	jw->tfd = tfd;
	jw->tsize = tsize;
	jw->tname = p->target;
	jw->newb = es_malloc(2 * (size_t)ES_JREC_MAX);
	jw->oldb = jw->newb + ES_JREC_MAX;
	es_view_init(&jw->tv, tfd, p->target);
	es_writer_init(&jw->w, jw->fd, p->jtmp);
	unsigned char h[J_HDR];
	enc_state(h, st);
	if (es_writer_put(&jw->w, h, sizeof h) < 0) {
		es_jw_abort(jw, p);
		return -1;
	}
	return 0;
}

/* Old bytes of the target at [off, off+n): zero past its current end. */
static int read_old(struct es_jwriter *jw, uint64_t off, unsigned char *buf, size_t n)
{
	size_t have = 0;
	if (off < jw->tsize) {
		have = jw->tsize - off < n ? (size_t)(jw->tsize - off) : n;
		if (es_view_read(&jw->tv, off, buf, have) < 0)
			return -1;
	}
	memset(buf + have, 0, n - have);
	return 0;
}

static int flush_rec(struct es_jwriter *jw)
{
	if (jw->len == 0)
		return 0;
	unsigned char h[J_REC];
	unsigned char *old = jw->oldb;
	memset(h, 0, sizeof h);
	put64(h, jw->off);
	put32(h + 8, (uint32_t)jw->len);
	int r = read_old(jw, jw->off, old, jw->len);
	if (r == 0 && jw->xor_mode)
		for (size_t i = 0; i < jw->len; i++)
			jw->newb[i] ^= old[i];
	if (r == 0)
		r = es_writer_put(&jw->w, h, sizeof h);
	if (r == 0)
		r = es_writer_put(&jw->w, old, jw->len);
	if (r == 0)
		r = es_writer_put(&jw->w, jw->newb, jw->len);
	jw->nrec++;
	jw->len = 0;
	return r;
}

/* Make room for n bytes at off in the pending record; returns where they go.
 * A record holds either new bytes or XOR bytes (turned into new bytes with one
 * read of the old ones when it is flushed). */
static unsigned char *slot(struct es_jwriter *jw, uint64_t off, size_t n, int xor_mode)
{
	uint64_t end = jw->off + jw->len;
	/* XOR spots a few bytes apart share a record, the gap XORed with zeros
	 * (its bytes rewritten as they are, in pages the spots dirty anyway):
	 * a dense diff then costs a read, a write and a read-back per record,
	 * not per spot. */
	if (jw->len && xor_mode && jw->xor_mode && off > end && es_j_joins(end, off) &&
	    jw->len + (off - end) + n <= ES_JREC_MAX) {
		memset(jw->newb + jw->len, 0, (size_t)(off - end));
		jw->len += (size_t)(off - end);
	}
	if (jw->len && (off != jw->off + jw->len || jw->len + n > ES_JREC_MAX ||
			xor_mode != jw->xor_mode))
		if (flush_rec(jw) < 0)
			return NULL;
	if (jw->len == 0) {
		jw->off = off;
		jw->xor_mode = xor_mode;
	}
	unsigned char *s = jw->newb + jw->len;
	jw->len += n;
	return s;
}

/* Queue n bytes at off: new bytes, or (xor_mode) bytes to XOR onto the old. */
static int queue(struct es_jwriter *jw, uint64_t off, const unsigned char *p, size_t n,
		 int xor_mode)
{
	while (n) {
		size_t k = n < ES_JREC_MAX ? n : ES_JREC_MAX;
		unsigned char *s = slot(jw, off, k, xor_mode);
		if (!s)
			return -1;
		memcpy(s, p, k);
		off += k;
		p += k;
		n -= k;
	}
	return 0;
}

int es_jw_put(struct es_jwriter *jw, uint64_t off, const unsigned char *newb, size_t n)
{
	return queue(jw, off, newb, n, 0);
}

int es_jw_xor(struct es_jwriter *jw, uint64_t off, const unsigned char *x, size_t n)
{
	return queue(jw, off, x, n, 1);
}

static int put_tail(struct es_writer *w, uint64_t nrec)
{
	unsigned char t[J_TAIL];
	memset(t, 0, sizeof t);
	memcpy(t, "JEND", 4);
	put64(t + 8, nrec);
	if (es_writer_put(w, t, 20) < 0)
		return -1;
	put32(t + 20, es_writer_crc(w));
	if (es_writer_put(w, t + 20, 4) < 0 || es_writer_flush(w) < 0)
		return -1;
	return 0;
}

/* fsync, close and rename a finished journal file into its slot. */
static int install(int fd, const char *tmp, const char *dest)
{
	if (fsync(fd) < 0) {
		es_errno("%s: cannot fsync", tmp);
		close(fd);
		return -1;
	}
	if (close(fd) < 0) {
		es_errno("%s: write error", tmp);
		return -1;
	}
	if (rename(tmp, dest) < 0) {
		es_errno("%s: cannot rename into place", dest);
		return -1;
	}
	return es_fsync_dir_of(dest);
}

int es_jw_commit(struct es_jwriter *jw, const struct es_tpaths *p)
{
	int r = flush_rec(jw);
	if (r == 0)
		r = put_tail(&jw->w, jw->nrec);
	es_writer_free(&jw->w);
	es_view_free(&jw->tv);
	free(jw->newb);
	jw->newb = NULL;
	if (r < 0) {
		close(jw->fd);
		unlink(p->jtmp);
		return -1;
	}
	r = install(jw->fd, p->jtmp, p->journal);
	if (r < 0)
		unlink(p->jtmp);
	return r;
}

void es_jw_abort(struct es_jwriter *jw, const struct es_tpaths *p)
{
	if (jw->newb) {
		es_writer_free(&jw->w);
		es_view_free(&jw->tv);
		free(jw->newb);
		jw->newb = NULL;
		close(jw->fd);
	}
	unlink(p->jtmp);
}

int es_journal_mark_renamed(const struct es_tpaths *p, const struct es_jstate *st)
{
	struct es_writer w;
	unsigned char h[J_HDR];
	int fd = open(p->jtmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		es_errno("%s: cannot create", p->jtmp);
		return -1;
	}
	es_writer_init(&w, fd, p->jtmp);
	enc_state(h, st);
	int r = es_writer_put(&w, h, sizeof h);
	if (r == 0)
		r = put_tail(&w, 0);
	es_writer_free(&w);
	if (r < 0) {
		close(fd);
		unlink(p->jtmp);
		return -1;
	}
	return install(fd, p->jtmp, p->last);
}

/* ---- reading ---- */

#define JBUF (64u << 10)

struct jreader {
	struct es_in in;
	struct es_jstate st;
	uint32_t crc;
	uint64_t nrec;
	unsigned char *buf; /* buffered: a record is three small reads */
	size_t bpos, blen;
	size_t cpos;        /* buf's bytes before this are in crc */
	uint64_t pos;       /* bytes consumed */
};

/* The CRC32 of every byte consumed so far. Taken over the buffer a stretch
 * at a time, not per piece read: pieces of 4 and 8 bytes left the CRC to
 * zlib's slow path, 13 % of a 66 804-spot delta's time. */
static uint32_t jcrc(struct jreader *j)
{
	j->crc = es_crc32(j->crc, j->buf + j->cpos, j->bpos - j->cpos);
	j->cpos = j->bpos;
	return j->crc;
}

/* Up to n bytes, through the buffer; fewer only at the end of the file. */
static ssize_t jget(struct jreader *j, unsigned char *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		if (j->bpos == j->blen) {
			jcrc(j);
			ssize_t k = es_in_read(&j->in, j->buf, JBUF);
			if (k <= 0) {
				j->pos += got;
				return k < 0 ? -1 : (ssize_t)got;
			}
			j->blen = (size_t)k;
			j->bpos = 0;
			j->cpos = 0;
		}
		size_t take = j->blen - j->bpos < n - got ? j->blen - j->bpos : n - got;
		memcpy(p + got, j->buf + j->bpos, take);
		j->bpos += take;
		got += take;
	}
	j->pos += got;
	return (ssize_t)got;
}

static void jclose(struct jreader *j)
{
	es_in_close(&j->in);
	free(j->buf);
	j->buf = NULL;
}

static int jread(struct jreader *j, void *buf, size_t n, const char *what)
{
	ssize_t r = jget(j, buf, n);
	if (r < 0)
		return -1;
	if ((size_t)r < n) {
		es_err("%s: byte %llu: journal truncated in %s", j->in.name,
		       (unsigned long long)j->pos, what);
		return -1;
	}
	return 0;
}

static int jopen(struct jreader *j, const char *path)
{
	unsigned char h[J_HDR];
	memset(j, 0, sizeof *j);
	if (es_in_open(&j->in, path) < 0)
		return -1;
	j->buf = es_malloc(JBUF);
	if (jread(j, h, sizeof h, "its header") < 0)
		goto bad;
	if (memcmp(h, J_MAGIC, 8) != 0 || get16(h + 8) != 1) {
		es_err("%s: byte 0: not an envsync journal", path);
		goto bad;
	}
	dec_state(h, &j->st);
	if (j->st.kind < ES_J_RAW || j->st.kind > ES_J_RENAMED ||
	    j->st.old_size > (UINT64_MAX >> 2) || j->st.new_size > (UINT64_MAX >> 2)) {
		es_err("%s: byte 10: bad journal kind or sizes", path);
		goto bad;
	}
	return 0;
bad:
	jclose(j);
	return -1;
}

/* Next record header; 0 = a record, 1 = the tail reached (and checked). */
static int jnext(struct jreader *j, uint64_t *off, uint32_t *len)
{
	unsigned char h[J_REC + J_TAIL];
	if (jread(j, h, 4, "a record") < 0)
		return -1;
	if (memcmp(h, "JEND", 4) == 0) {
		uint32_t crc_before;
		if (jread(j, h + 4, 16, "its tail") < 0)
			return -1;
		crc_before = jcrc(j);
		if (jread(j, h + 20, 4, "its tail") < 0)
			return -1;
		if (get32(h + 20) != crc_before || get64(h + 8) != j->nrec) {
			es_err("%s: byte %llu: journal CRC32 or record count mismatch",
			       j->in.name, (unsigned long long)j->pos);
			return -1;
		}
		unsigned char extra;
		if (jget(j, &extra, 1) != 0) {
			es_err("%s: data after the journal's end", j->in.name);
			return -1;
		}
		return 1;
	}
	if (jread(j, h + 4, J_REC - 4, "a record") < 0)
		return -1;
	*off = get64(h);
	*len = get32(h + 8);
	uint64_t max = j->st.old_size > j->st.new_size ? j->st.old_size : j->st.new_size;
	if (*len == 0 || *len > ES_JREC_MAX || *off > max || *len > max - *off) {
		es_err("%s: record %llu: offset %llu + %u beyond the target (%llu bytes)",
		       j->in.name, (unsigned long long)j->nrec, (unsigned long long)*off,
		       *len, (unsigned long long)max);
		return -1;
	}
	j->nrec++;
	return 0;
}

int es_journal_check(const char *path, struct es_jstate *st)
{
	struct jreader j;
	if (jopen(&j, path) < 0)
		return -1;
	unsigned char *buf = es_malloc(2 * ES_JREC_MAX);
	uint64_t off;
	uint32_t len;
	int r;
	while ((r = jnext(&j, &off, &len)) == 0)
		if (jread(&j, buf, 2 * (size_t)len, "record data") < 0) {
			r = -1;
			break;
		}
	free(buf);
	*st = j.st;
	jclose(&j);
	return r < 0 ? -1 : 0;
}

static int resize(int tfd, const char *tname, uint64_t size)
{
	uint64_t cur;
	int blk, reg;
	if (es_fd_size(tfd, tname, &cur, &blk, &reg) < 0)
		return -1;
	if (cur == size)
		return 0;
	if (ftruncate(tfd, (off_t)size) < 0) {
		es_errno("%s: cannot resize to %llu bytes", tname, (unsigned long long)size);
		return -1;
	}
	return 0;
}

static int size_is(int tfd, const char *tname, uint64_t want)
{
	uint64_t size;
	int blk, reg;
	if (es_fd_size(tfd, tname, &size, &blk, &reg) < 0)
		return -1;
	if (size != want) {
		es_err("%s: is %llu bytes, expected %llu", tname, (unsigned long long)size,
		       (unsigned long long)want);
		return -1;
	}
	return 0;
}

/* Records' bytes on their way to the target, joined into one write while
 * they lie on the same or neighbouring pages: the bytes between them are
 * written back as they are. Those bytes are the same before, during and
 * after the apply, so a write cut short by a crash leaves them as they
 * were, and the records' own bytes are put right by replaying the journal
 * as ever. One write call per record was a third of a dense delta's system
 * calls (625 records in 1 MiB). */
#define WP_MAX (1u << 20)
#define WP_PAGE 4096u

struct wpend {
	int fd;
	const char *name;
	struct es_view *v; /* where the bytes between records are read */
	unsigned char *buf;
	uint64_t off;
	size_t len;
	struct es_wb wb;
};

static int wp_flush(struct wpend *w)
{
	if (w->len && es_pwrite_full(w->fd, w->buf, w->len, w->off) < 0) {
		es_errno("%s: write error at byte %llu", w->name, (unsigned long long)w->off);
		return -1;
	}
	es_wb_wrote(&w->wb, w->off, w->len);
	w->len = 0;
	return 0;
}

static int wp_add(struct wpend *w, uint64_t off, const unsigned char *p, size_t n)
{
	uint64_t end = w->off + w->len;
	if (w->len && off >= end && off / WP_PAGE <= (end - 1) / WP_PAGE + 1 &&
	    off + n - w->off <= WP_MAX) {
		size_t gap = (size_t)(off - end);
		if (gap && es_view_read(w->v, end, w->buf + w->len, gap) < 0)
			return -1;
		w->len += gap;
	} else {
		if (wp_flush(w) < 0)
			return -1;
		w->off = off;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

/* Write each record's side (or, CHECK, compare it with the target). A
 * journal is written only after the whole of it has been checked; reading
 * it back needs no second check (its CRC32 is still checked at its end). */
static int each_record(const char *path, int tfd, const char *tname, int backward,
		       int check)
{
	struct es_jstate st;
	if (!check && es_journal_check(path, &st) < 0)
		return -1;
	struct jreader j;
	if (jopen(&j, path) < 0)
		return -1;
	st = j.st;
	uint64_t to = backward ? st.old_size : st.new_size;
	unsigned char *buf = es_malloc(3 * ES_JREC_MAX);
	unsigned char *have = buf + 2 * ES_JREC_MAX;
	uint64_t off;
	uint32_t len;
	int r = 0;
	/* Size first, then only bytes inside it: shrinking never needs space,
	 * so a full disk can always go back to a smaller old state. */
	if (!check)
		r = resize(tfd, tname, to);
	else
		r = size_is(tfd, tname, to);
	/* the target mapped, for the read-back and for the bytes between
	 * joined records: a read call per record was a third of a dense
	 * delta's system calls */
	struct es_view tv;
	es_view_init(&tv, tfd, tname);
	struct wpend w = {tfd, tname, &tv, check ? NULL : es_malloc(WP_MAX), 0, 0, {0}};
	es_wb_init(&w.wb, tfd);
	while (r == 0 && (r = jnext(&j, &off, &len)) == 0) {
		if (jread(&j, buf, 2 * (size_t)len, "record data") < 0) {
			r = -1;
			break;
		}
		if (off >= to)
			continue;
		size_t n = to - off < len ? (size_t)(to - off) : len;
		const unsigned char *want = buf + (backward ? 0 : len);
		if (check) {
			if (es_view_read(&tv, off, have, n) < 0 || memcmp(have, want, n) != 0) {
				es_err("%s: bytes %llu to %llu do not read back as written", tname,
				       (unsigned long long)off, (unsigned long long)(off + n - 1));
				r = -1;
			}
		} else if (wp_add(&w, off, want, n) < 0) {
			r = -1;
		}
	}
	if (r >= 0 && !check && wp_flush(&w) < 0)
		r = -1;
	free(w.buf);
	es_view_free(&tv);
	free(buf);
	jclose(&j);
	return r < 0 ? -1 : 0;
}

int es_journal_readback(const char *path, int tfd, const char *tname, int backward)
{
	return each_record(path, tfd, tname, backward, 1);
}

int es_journal_replay(const char *path, int tfd, const char *tname, int backward)
{
	if (each_record(path, tfd, tname, backward, 0) < 0)
		return -1;
	if (fsync(tfd) < 0) {
		es_errno("%s: cannot fsync", tname);
		return -1;
	}
	return 0;
}

int es_journal_invert(const char *src, const struct es_tpaths *p)
{
	struct es_jstate st, inv;
	if (es_journal_check(src, &st) < 0)
		return -1;
	inv = st;
	inv.old_size = st.new_size;
	inv.new_size = st.old_size;
	inv.old_crc = st.new_crc;
	inv.new_crc = st.old_crc;
	inv.old_rev = st.new_rev;
	inv.new_rev = st.old_rev;
	struct jreader j;
	if (jopen(&j, src) < 0)
		return -1;
	int fd = open(p->jtmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		es_errno("%s: cannot create journal", p->jtmp);
		jclose(&j);
		return -1;
	}
	struct es_writer w;
	es_writer_init(&w, fd, p->jtmp);
	unsigned char h[J_HDR], rh[J_REC];
	enc_state(h, &inv);
	unsigned char *buf = es_malloc(2 * ES_JREC_MAX);
	uint64_t off;
	uint32_t len;
	int r = es_writer_put(&w, h, sizeof h);
	while (r == 0 && (r = jnext(&j, &off, &len)) == 0) {
		memset(rh, 0, sizeof rh);
		put64(rh, off);
		put32(rh + 8, len);
		if (jread(&j, buf, 2 * (size_t)len, "record data") < 0 ||
		    es_writer_put(&w, rh, sizeof rh) < 0 ||
		    es_writer_put(&w, buf + len, len) < 0 || es_writer_put(&w, buf, len) < 0)
			r = -1;
	}
	if (r == 1)
		r = put_tail(&w, j.nrec);
	free(buf);
	es_writer_free(&w);
	jclose(&j);
	if (r < 0) {
		close(fd);
		unlink(p->jtmp);
		return -1;
	}
	return install(fd, p->jtmp, p->journal);
}

/* ---- verification and recovery ---- */

static int verify_image(const struct es_tpaths *p, uint64_t rev)
{
	struct es_env env;
	if (es_env_open(&env, p->target, ES_ENV_IMAGE) < 0)
		return -1;
	int r = 0;
	uint32_t crc;
	for (uint32_t i = 0; i < env.nitems && r == 0; i++)
		r = es_env_item_crc(&env, i, &crc);
	if (r == 0 && env.rev != rev) {
		es_err("%s: at revision %llu, expected %llu", p->target,
		       (unsigned long long)env.rev, (unsigned long long)rev);
		r = -1;
	}
	es_env_close(&env);
	return r;
}

static int verify_raw(const struct es_tpaths *p, uint64_t size, uint32_t crc)
{
	struct es_env env;
	uint32_t got;
	if (es_env_open(&env, p->target, ES_ENV_RAW) < 0)
		return -1;
	int r = env.items[0].size == size ? es_env_item_crc(&env, 0, &got) : -1;
	if (r == 0 && got != crc)
		r = -1;
	if (r < 0)
		es_err("%s: content is not the expected %llu bytes with CRC32 %08x",
		       p->target, (unsigned long long)size, crc);
	es_env_close(&env);
	return r;
}

int es_target_verify(const struct es_tpaths *p, int tfd, const struct es_jstate *st,
		     int old_side)
{
	(void)tfd;
	if (st->image)
		return verify_image(p, old_side ? st->old_rev : st->new_rev);
	return verify_raw(p, old_side ? st->old_size : st->new_size,
			  old_side ? st->old_crc : st->new_crc);
}

int es_journal_settle(const struct es_tpaths *p, int tfd, const struct es_jstate *st,
		      int spots)
{
	if (es_journal_replay(p->journal, tfd, p->target, 0) == 0 &&
	    (spots ? es_journal_readback(p->journal, tfd, p->target, 0)
		   : es_target_verify(p, tfd, st, 0)) == 0) {
		if (rename(p->journal, p->last) < 0) {
			es_errno("%s: cannot keep the journal as %s", p->journal, p->last);
			return -1;
		}
		return es_fsync_dir_of(p->last);
	}
	char msg[1024];
	snprintf(msg, sizeof msg, "%s", es_errmsg());
	if (es_journal_replay(p->journal, tfd, p->target, 1) == 0 &&
	    es_target_verify(p, tfd, st, 1) == 0) {
		unlink(p->journal);
		es_fsync_dir_of(p->journal);
		es_err("%s (the target is back at its previous state)", msg);
		return -1;
	}
	es_err("%s; putting the previous state back failed too: the journal %s is kept for envapply --recover",
	       msg, p->journal);
	return -1;
}

int es_recover(const struct es_tpaths *p, int verbose)
{
	/* a journal or new file never renamed into place: the target is untouched */
	unlink(p->jtmp);
	unlink(p->fresh);
	if (access(p->journal, F_OK) != 0)
		return 0;
	struct es_jstate st;
	if (es_journal_check(p->journal, &st) < 0)
		return -1;
	int tfd = open(p->target, O_RDWR | O_CLOEXEC);
	if (tfd < 0) {
		es_errno("%s: cannot open for recovery", p->target);
		return -1;
	}
	int r = es_journal_settle(p, tfd, &st, 0);
	close(tfd);
	if (r == 0 && verbose)
		es_warn("%s: finished an interrupted apply from its journal", p->target);
	return r < 0 ? -1 : 1;
}

int es_journal_pending(const struct es_tpaths *p)
{
	if (access(p->journal, F_OK) != 0)
		return 0;
	es_err("%s: an interrupted apply is pending: run envapply --recover first", p->target);
	return 1;
}
