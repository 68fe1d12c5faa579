/* view.c: a file's bytes read in place (view.h). */
#include "config.h"
#include "view.h"
#include "io.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Windows of 4 MiB at offsets that are multiples of it: a window of 1 MiB
 * took twice as long per byte (mapping and unmapping), and an aligned one
 * lets the kernel map the page cache's large folios whole. The pages of a
 * window count in the tool's resident set while it is mapped: a diff's two
 * views with 8 MiB windows peaked at 17.6 MiB, over the 16 MiB the tools
 * are held to (bench/README); with 4 MiB, 9.6 MiB. */
#define WIN ES_VIEW_ALIGN

/* A file cut short under a mapping raises SIGBUS on the first access past
 * its new end. The handler maps zeros over the rest of that window, marks
 * the view and lets the access go on; the caller's es_view_check then
 * refuses what was computed. Faults outside every window go to whatever
 * handled SIGBUS before. */
#define SLOTS 4
static struct es_view *volatile slot[SLOTS];
static struct sigaction prev_bus;
static int bus_installed;

static void on_bus(int sig, siginfo_t *si, void *ctx)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	for (int i = 0; i < SLOTS; i++) {
		struct es_view *v = slot[i];
		if (!v || !v->win || a < (uintptr_t)v->win || a >= (uintptr_t)v->win + v->win_len)
			continue;
		/* the window starts on a page: round the offset in it down to one */
		size_t at = (size_t)(a - (uintptr_t)v->win) & ~(size_t)(page - 1);
		void *r = mmap(v->win + at, v->win_len - at, PROT_READ,
			       /* fd -1 is what an anonymous map takes (mmap(2)) */
			       // cppcheck-suppress invalidFunctionArg
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (r != MAP_FAILED) {
			v->shrunk = 1;
			return;
		}
	}
	if (prev_bus.sa_flags & SA_SIGINFO) {
		prev_bus.sa_sigaction(sig, si, ctx);
		return;
	}
	if (prev_bus.sa_handler != SIG_DFL && prev_bus.sa_handler != SIG_IGN) {
		prev_bus.sa_handler(sig);
		return;
	}
	/* the access faults again on return, now with the default action */
	signal(SIGBUS, SIG_DFL);
}

static int install_bus(void)
{
	if (bus_installed)
		return 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &prev_bus) < 0)
		return -1;
	bus_installed = 1;
	return 0;
}

static void enlist(struct es_view *v, int on)
{
	for (int i = 0; i < SLOTS; i++)
		if (on ? slot[i] == NULL : slot[i] == v) {
			slot[i] = on ? v : NULL;
			return;
		}
	if (on)
		v->map_ok = 0; /* more views than slots: this one reads instead */
}

void es_view_init(struct es_view *v, int fd, const char *name)
{
	struct stat st;
	memset(v, 0, sizeof *v);
	v->fd = fd;
	v->name = name;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && install_bus() == 0) {
		v->size = (uint64_t)st.st_size;
		v->map_ok = 1;
		enlist(v, 1);
	}
}

static void unmap(struct es_view *v)
{
	if (v->win)
		munmap(v->win, v->win_len);
	v->win = NULL;
	v->win_len = 0;
}

/* Map the window holding [off, off + n) (within the size), or fail. */
static int map_window(struct es_view *v, uint64_t off, size_t n)
{
	uint64_t start = off - off % WIN;
	if (off + n > start + WIN) /* straddles two aligned windows */
		start = off - off % (uint64_t)sysconf(_SC_PAGESIZE);
	size_t len = v->size - start < WIN ? (size_t)(v->size - start) : WIN;
	unmap(v);
	void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, v->fd, (off_t)start);
	if (m == MAP_FAILED)
		return -1;
	(void)madvise(m, len, MADV_SEQUENTIAL);
	v->win = m;
	v->win_off = start;
	v->win_len = len;
	return 0;
}

static ssize_t get_read(struct es_view *v, uint64_t off, size_t n, const unsigned char **p)
{
	if (n > ES_VIEW_MAX)
		n = ES_VIEW_MAX;
	if (!v->buf)
		v->buf = es_malloc(ES_VIEW_MAX);
	*p = v->buf;
	ssize_t r = es_pread_full(v->fd, v->buf, n, off);
	if (r < 0 && !v->quiet)
		es_errno("%s: read error at byte %llu", v->name, (unsigned long long)off);
	return r;
}

ssize_t es_view_get(struct es_view *v, uint64_t off, size_t n, const unsigned char **p)
{
	if (n > ES_VIEW_MAX) {
		/* more only as far as the aligned window OFF is in */
		size_t room = WIN - (size_t)(off % WIN);
		n = room < ES_VIEW_MAX ? ES_VIEW_MAX : room < n ? room : n;
	}
	if (!v->map_ok)
		return get_read(v, off, n, p);
	if (off >= v->size) {
		*p = NULL;
		return 0;
	}
	if (v->size - off < n)
		n = (size_t)(v->size - off);
	if (!v->win || off < v->win_off || off + n > v->win_off + v->win_len) {
		if (map_window(v, off, n) < 0) {
			/* no address space, a file system without mmap: read instead */
			v->map_ok = 0;
			return get_read(v, off, n, p);
		}
	}
	*p = v->win + (off - v->win_off);
	return (ssize_t)n;
}

int es_view_read(struct es_view *v, uint64_t off, unsigned char *buf, size_t n)
{
	while (n) {
		const unsigned char *p;
		ssize_t r = es_view_get(v, off, n, &p);
		if (r < 0)
			return -1;
		if (r == 0) {
			es_err("%s: the file ends at byte %llu, before the bytes to be read",
			       v->name, (unsigned long long)off);
			return -1;
		}
		memcpy(buf, p, (size_t)r);
		if (es_view_check(v, NULL) < 0)
			return -1;
		buf += r;
		off += (uint64_t)r;
		n -= (size_t)r;
	}
	return 0;
}

uint64_t es_view_hole(const struct es_view *v, uint64_t off, uint64_t *data)
{
	*data = off < v->size ? v->size - off : 0;
	if (!v->map_ok || off >= v->size)
		return 0;
	/* the descriptor's offset is someone else's: put it back */
	off_t was = lseek(v->fd, 0, SEEK_CUR);
	uint64_t hole = 0;
	off_t d = lseek(v->fd, (off_t)off, SEEK_DATA);
	if (d < 0) { /* ENXIO: a hole to the end; else holes are not told */
		hole = errno == ENXIO ? v->size - off : 0;
	} else if ((uint64_t)d > off) {
		hole = ((uint64_t)d < v->size ? (uint64_t)d : v->size) - off;
	} else {
		off_t h = lseek(v->fd, (off_t)off, SEEK_HOLE);
		if (h >= 0 && (uint64_t)h < v->size)
			*data = (uint64_t)h - off;
	}
	if (was >= 0)
		(void)lseek(v->fd, was, SEEK_SET);
	/* what follows a hole is not known yet: a caller that kept the size
	 * to the end read every later hole (a 3 GiB tmpfs target of data,
	 * hole, data, hole: 2.3 s and 1.1 GiB of zero pages to verify) */
	if (hole)
		*data = 0;
	return hole;
}

int es_view_check(const struct es_view *v, const char *item)
{
	if (!v->shrunk)
		return 0;
	if (item)
		es_err("%s: item '%s': the file was cut short while being read", v->name, item);
	else
		es_err("%s: the file was cut short while being read", v->name);
	return -1;
}

void es_view_free(struct es_view *v)
{
	unmap(v);
	enlist(v, 0);
	free(v->buf);
	v->buf = NULL;
}
