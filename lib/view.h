/* view.h: a file's bytes read in place. Reading a large image through
 * read(2) spends most of its time copying it out of the page cache: a
 * 1 GiB target's CRC32 took 190 ms so and 45 ms mapped, here. A
 * view maps a regular file a window at a time (mmap) and hands out pointers
 * into it; anything else (a pipe, a block device, a failed mmap) is read
 * into a buffer, so callers need one path only. */
#ifndef ENVSYNC_VIEW_H
#define ENVSYNC_VIEW_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Windows are mapped at multiples of this: a reader splitting a file
 * between views splits it here. */
#define ES_VIEW_ALIGN (4u << 20)

/* The most bytes one es_view_get returns from a buffer, or across a window's
 * end. */
#define ES_VIEW_MAX (1u << 20)

struct es_view {
	int fd;
	const char *name;       /* the file, for messages */
	uint64_t size;          /* the file's size at init: no map goes past it */
	int map_ok;             /* a regular file, mapped so far without failure */
	unsigned char *win;     /* the mapped window, or NULL */
	uint64_t win_off;
	size_t win_len;
	unsigned char *buf;     /* for reads that are not mapped */
	volatile sig_atomic_t shrunk; /* the file shrank under the window */
	int quiet;              /* report no read error: the caller will */
};

/* A view of the file NAME open on FD (not taken over: the caller closes it). */
void es_view_init(struct es_view *v, int fd, const char *name);
/* Point *P at up to N bytes of the file at OFF. Returns how many: N, fewer
 * at the end of the file, or -1 after a read error (reported, naming the
 * file and the byte). Asked for more than ES_VIEW_MAX, it may give that
 * much only, or, mapped, up to the end of the aligned window OFF is in:
 * a whole window at a time lets a copy past the page cache (dwrite.h)
 * write 4 MiB a call, 0.41-0.50 s a GiB against 0.59-0.63 in 1 MiB writes.
 * The bytes stay valid until the next call. */
ssize_t es_view_get(struct es_view *v, uint64_t off, size_t n, const unsigned char **p);
/* Copy N bytes of the file at OFF into BUF: 0, or -1 when they cannot all
 * be read (reported: a read error, or the file ends or was cut short). */
int es_view_read(struct es_view *v, uint64_t off, unsigned char *buf, size_t n);
/* Whether the file's bytes at OFF are a hole (unstored, read as zeros):
 * returns how many bytes from OFF on are, 0 when OFF is in data or the file
 * is not a regular one whose holes the system tells. *DATA gets how many
 * bytes from OFF on are data before the next hole (to the size at init when
 * there is none), or 0 when a hole is returned: ask again at its end. Lets a
 * reader skip a sparse file's holes instead of reading gigabytes of zeros. */
uint64_t es_view_hole(const struct es_view *v, uint64_t off, uint64_t *data);
/* Whether bytes handed out so far can be trusted: 0, or -1 when the file was
 * cut short while mapped (those of its bytes read as zeros), reported with
 * ITEM's name when not NULL. Check it before using what was computed from
 * them. */
int es_view_check(const struct es_view *v, const char *item);
void es_view_free(struct es_view *v);

#endif
