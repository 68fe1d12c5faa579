/* dwrite.c: a new file written front to back past the page cache (dwrite.h). */
#include "config.h"
#include "dwrite.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The bounce buffer: one chunk of a copy */
#define BUF (1u << 20)
#define A ES_DW_ALIGN

static int aligned(uint64_t x)
{
	return x % A == 0;
}

static void set_direct(struct es_dw *w, int on)
{
	int fl = fcntl(w->fd, F_GETFL);
	if (fl < 0 || fcntl(w->fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) < 0) {
		w->direct = 0;
		return;
	}
	w->direct = on;
}

void es_dw_init(struct es_dw *w, int fd, const char *name, uint64_t size)
{
	memset(w, 0, sizeof *w);
	w->fd = fd;
	w->name = name;
	es_wb_init(&w->wb, fd);
	if (size >= ES_DW_MIN)
		set_direct(w, 1); /* refused (a file system without it): buffered */
}

static int buffered(struct es_dw *w, const unsigned char *p, size_t n, uint64_t off)
{
	if (es_pwrite_full(w->fd, p, n, off) < 0) {
		es_errno("%s: write error", w->name);
		return -1;
	}
	es_wb_wrote(&w->wb, off, n);
	return 0;
}

/* An aligned write past the cache. One the file system refuses for its
 * alignment (EINVAL), or cuts short, is finished through the cache, and so
 * is the rest of the file. */
static int direct(struct es_dw *w, const unsigned char *p, size_t n, uint64_t off)
{
	ssize_t r = pwrite(w->fd, p, n, (off_t)off);
	if (r == (ssize_t)n)
		return 0;
	if (r < 0 && errno != EINVAL) {
		es_errno("%s: write error", w->name);
		return -1;
	}
	size_t done = r > 0 ? (size_t)r : 0;
	set_direct(w, 0);
	return buffered(w, p + done, n - done, off + done);
}

/* Write the bounce buffer's whole blocks; the partial one stays, moved to
 * the buffer's start. */
static int flush_blocks(struct es_dw *w)
{
	size_t k = w->len - w->len % A;
	if (!k)
		return 0;
	if (direct(w, w->buf, k, w->at) < 0)
		return -1;
	memmove(w->buf, w->buf + k, w->len - k);
	w->len -= k;
	w->at += k;
	return 0;
}

/* Append N bytes of P to the bounce buffer (zeros when P is NULL). */
static int hold(struct es_dw *w, const unsigned char *p, size_t n)
{
	if (!w->buf) {
		void *b;
		if (posix_memalign(&b, A, BUF) != 0) {
			es_err("%s: out of memory", w->name);
			return -1;
		}
		w->buf = b;
	}
	while (n) {
		size_t k = BUF - w->len < n ? BUF - w->len : n;
		if (p) {
			memcpy(w->buf + w->len, p, k);
			p += k;
		} else {
			memset(w->buf + w->len, 0, k);
		}
		w->len += k;
		n -= k;
		if (w->len == BUF && flush_blocks(w) < 0)
			return -1;
	}
	return 0;
}

/* Bring the held bytes up to OFF: the gap is zeros. A gap reaching past the
 * next block is left a hole, as ftruncate made it. */
static int fill_gap(struct es_dw *w, uint64_t off)
{
	uint64_t end = w->at + w->len;
	uint64_t next = end + (A - end % A) % A;
	if (off - off % A >= next) {
		if (hold(w, NULL, (size_t)(next - end)) < 0 || flush_blocks(w) < 0)
			return -1;
		w->at = off - off % A;
		return hold(w, NULL, (size_t)(off - w->at));
	}
	return hold(w, NULL, (size_t)(off - end));
}

int es_dw_write(struct es_dw *w, const unsigned char *p, size_t n, uint64_t off)
{
	if (!w->direct)
		return buffered(w, p, n, off);
	if (off < w->at + w->len) {
		/* out of order: finish what is held, then through the cache */
		if (es_dw_finish(w) < 0)
			return -1;
		return buffered(w, p, n, off);
	}
	if (off > w->at + w->len && fill_gap(w, off) < 0)
		return -1;
	if (w->len == 0 && aligned(off) && aligned((uintptr_t)p) && n >= A) {
		size_t k = n - n % A;
		if (direct(w, p, k, off) < 0)
			return -1;
		w->at = off + k;
		p += k;
		n -= k;
		if (!w->direct)
			return buffered(w, p, n, w->at);
	}
	if (hold(w, p, n) < 0)
		return -1;
	/* whole blocks held: written now, so the next aligned chunk can go
	 * straight from its buffer */
	return w->len % A == 0 ? flush_blocks(w) : 0;
}

int es_dw_finish(struct es_dw *w)
{
	int rc = 0;
	if (w->len && w->direct)
		rc = flush_blocks(w);
	if (w->direct)
		set_direct(w, 0);
	if (rc == 0 && w->len)
		rc = buffered(w, w->buf, w->len, w->at);
	w->at += w->len;
	w->len = 0;
	free(w->buf);
	w->buf = NULL;
	return rc;
}
