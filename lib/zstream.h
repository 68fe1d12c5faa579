/* zstream.h: the compressed form of a diff stream (envsync(5), COMPRESSION):
 * the whole stream in a gzip container. A deflate stage between the stream
 * writer and its file, and an input that tells the two forms apart by their
 * first bytes and inflates a compressed one; both use fixed-size buffers, so
 * memory does not grow with what the compressed data expands to. */
#ifndef ENVSYNC_ZSTREAM_H
#define ENVSYNC_ZSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "io.h"

/* The level envdiff -z and envjudge use when none is given (zlib's 1 to 9).
 * 1, not zlib's usual 6: on diff streams level 1 is the smallest or within 2 %
 * of it on every pattern measured (random changed bytes do not shrink, and
 * the lazy matching of 4 and up finds little more in the entries' structure),
 * and 3 to 5 times faster where the stream is large: a 10 % run of a 1 GiB
 * image took envdiff -z6 35 s against 2 s plain (bench/compress.md). A
 * stream of at most 4 KiB is deflated at level 9 whatever the level
 * (zstream.c). */
#define ES_Z_LEVEL 1
#define ES_Z_LEVEL_MIN 1
#define ES_Z_LEVEL_MAX 9

/* The LEVEL of a --compress[=LEVEL] option: NULL gives ES_Z_LEVEL; 0 when
 * ARG is a level 1 to 9, -1 otherwise. */
int es_z_level_parse(const char *arg, int *level);

/* Do P[0..n) begin a gzip (1f 8b) or zlib (78 xx style) container? n >= 2. */
int es_z_magic(const unsigned char *p, size_t n);

/* ---- output: deflate into a gzip container on fd ---- */
struct es_zout;
struct es_zout *es_zout_new(int fd, const char *name, int level);
/* Compress n bytes; full output buffers are written as they fill. */
int es_zout_write(struct es_zout *z, const void *p, size_t n);
/* End the deflate data and write the gzip trailer. */
int es_zout_finish(struct es_zout *z);
void es_zout_free(struct es_zout *z);

/* ---- input: either form, read as the plain stream ---- */
struct es_zinf;
struct es_zin {
	struct es_in *in;
	unsigned char *ibuf;  /* input read ahead: the detection's, then deflate data */
	size_t ipos, ilen;    /* plain form: read-ahead bytes not yet handed out */
	struct es_zinf *inf;  /* NULL for the plain form */
};
/* Read the first bytes of IN to tell the form. */
int es_zin_open(struct es_zin *z, struct es_in *in);
/* Read up to n bytes of the plain stream (at most 64 KiB a call when it is
 * compressed; 0 at its end); -1 (message
 * recorded, "NAME: compressed byte N: ...") when the compressed data is
 * truncated, corrupt or followed by other bytes. */
ssize_t es_zin_read(struct es_zin *z, void *buf, size_t n);
/* Is the input compressed? */
static inline int es_zin_compressed(const struct es_zin *z)
{
	return z->inf != NULL;
}
void es_zin_close(struct es_zin *z);

#endif
