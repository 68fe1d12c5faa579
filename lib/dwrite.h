/* dwrite.h: a new file written front to back past the page cache.
 *
 * A full copy writes the whole image into a file the page cache has never
 * held. Buffered, each of its pages is first allocated, and on this machine
 * (a VM that hands freed memory back to its host) allocating memory given
 * back costs the host's faults: envapply's full copy of 1 GiB took 1.8-3.3 s
 * so (1.6-2.9 s of it system time), 0.53-0.56 s past the cache. Written past
 * it, a copy costs what the disk costs, whatever the memory did before: what
 * calibration measures is what the failover gets.
 *
 * Bytes go straight from the caller's buffer when it, the length and the
 * offset are aligned (a raw image read through a view: every chunk is), else
 * through a bounce buffer. Writes must come in order of offset; a gap between
 * them is zeros (as ftruncate leaves it). A file system that refuses O_DIRECT
 * is written through the page cache as before. */
#ifndef ENVSYNC_DWRITE_H
#define ENVSYNC_DWRITE_H

#include "io.h"

#include <stddef.h>
#include <stdint.h>

/* Alignment of buffers, offsets and lengths for O_DIRECT: a 4096-byte
 * sector device needs it; a 512-byte one accepts it. */
#define ES_DW_ALIGN 4096u
/* Files smaller than this are written through the page cache: the few
 * pages cost little, and one synchronous write per chunk would not. */
#define ES_DW_MIN (8u << 20)

struct es_dw {
	int fd;
	const char *name;     /* the file, for messages */
	int direct;           /* O_DIRECT is set on fd */
	unsigned char *buf;   /* bounce buffer (aligned), allocated when needed */
	size_t len;           /* bytes held in buf */
	uint64_t at;          /* file offset of buf[0]: aligned while direct */
	struct es_wb wb;      /* writeback of buffered writes */
};

/* Write the file NAME open on FD, SIZE bytes in all, from offset 0. */
void es_dw_init(struct es_dw *w, int fd, const char *name, uint64_t size);
/* Write N bytes of P at OFF (at or after the end of the previous write). */
int es_dw_write(struct es_dw *w, const unsigned char *p, size_t n, uint64_t off);
/* Write what is held and leave FD as it was opened (O_DIRECT off), for the
 * reads and small writes that follow. Frees the buffer, even on error. */
int es_dw_finish(struct es_dw *w);

#endif
