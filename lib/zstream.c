/* zstream.c: gzip-wrapped diff streams: deflate on the way out, detection and
 * streaming inflate on the way in. Memory is two fixed buffers and zlib's
 * state (its 32 KiB window): an input that claims or expands to gigabytes
 * costs time, never memory, and the stream reader behind it still checks
 * every record as it arrives. */
#include "config.h"
#include "zstream.h"
#include "util.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Compressed bytes per read or write: as large as the stream's own buffer. */
#define ZBUF (1u << 16)

int es_z_level_parse(const char *arg, int *level)
{
	uint64_t v;
	if (!arg) {
		*level = ES_Z_LEVEL;
		return 0;
	}
	if (es_parse_u64(arg, &v) < 0 || v < ES_Z_LEVEL_MIN || v > ES_Z_LEVEL_MAX)
		return -1;
	*level = (int)v;
	return 0;
}

int es_z_magic(const unsigned char *p, size_t n)
{
	if (n < 2)
		return 0;
	if (p[0] == 0x1f && p[1] == 0x8b)
		return 1;
	/* zlib (RFC 1950): method 8 (deflate), window at most 32 KiB, and the
	 * first two bytes a multiple of 31; "EN" of ENVSDIFF is none of these */
	return (p[0] & 0x0f) == 8 && p[0] >> 4 <= 7 && ((p[0] << 8) | p[1]) % 31 == 0;
}

/* ---- output ---- */

/* A stream of at most SMALL plain bytes is deflated at level 9 whatever the
 * level asked for: a small stream is mostly its fixed records (a one-byte
 * change: 240 bytes, four CRC32s), and level 9 takes 7-9 % off them (97 ->
 * 90 bytes); on 4 KiB of a dense stream it costs 0.45 ms (level 1 0.1 ms),
 * but 24 ms on 64 KiB, so larger streams keep the level. The first SMALL
 * bytes are held until the stream is known to be longer: switching a
 * started stream from level 9 to 1 (deflateParams) made zlib's level 1
 * compress the rest 40 % worse (16 091 -> 22 604 bytes). */
#define SMALL 4096u
#define SMALL_LEVEL 9

struct es_zout {
	int fd;
	const char *name;
	z_stream zs;
	size_t held;    /* plain bytes in hold; deflate has had none yet */
	int started;    /* deflate has had bytes */
	unsigned char hold[SMALL];
	unsigned char out[ZBUF];
};

struct es_zout *es_zout_new(int fd, const char *name, int level)
{
	struct es_zout *z = es_calloc(1, sizeof *z);
	z->fd = fd;
	z->name = name;
	/* windowBits 15 + 16: a gzip container, so gzip -d and zcat read it too */
	if (deflateInit2(&z->zs, level, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
		es_err("%s: cannot start compression (level %d)", name, level);
		free(z);
		return NULL;
	}
	z->zs.next_out = z->out;
	z->zs.avail_out = ZBUF;
	return z;
}

static int zout_drain(struct es_zout *z, int all)
{
	size_t n = ZBUF - z->zs.avail_out;
	if (!(all ? n : z->zs.avail_out == 0))
		return 0;
	if (es_write_full(z->fd, z->out, n) < 0) {
		es_errno("%s: write error", z->name);
		return -1;
	}
	z->zs.next_out = z->out;
	z->zs.avail_out = ZBUF;
	return 0;
}

static int deflate_in(struct es_zout *z, const unsigned char *c, size_t n)
{
	z->started = 1;
	while (n) {
		uInt take = n > UINT_MAX ? UINT_MAX : (uInt)n;
		z->zs.next_in = (unsigned char *)c;
		z->zs.avail_in = take;
		while (z->zs.avail_in) {
			if (deflate(&z->zs, Z_NO_FLUSH) == Z_STREAM_ERROR) {
				es_err("%s: compression failed", z->name);
				return -1;
			}
			if (zout_drain(z, 0) < 0)
				return -1;
		}
		c += take;
		n -= take;
	}
	return 0;
}

int es_zout_write(struct es_zout *z, const void *p, size_t n)
{
	if (!z->started && n <= SMALL - z->held) {
		memcpy(z->hold + z->held, p, n);
		z->held += n;
		return 0;
	}
	if (!z->started && deflate_in(z, z->hold, z->held) < 0)
		return -1;
	return deflate_in(z, p, n);
}

int es_zout_finish(struct es_zout *z)
{
	int rc;
	if (!z->started) {
		/* before any deflate() call the new level applies from the start */
		if (deflateParams(&z->zs, SMALL_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK) {
			es_err("%s: compression failed", z->name);
			return -1;
		}
		if (deflate_in(z, z->hold, z->held) < 0)
			return -1;
	}
	z->zs.avail_in = 0;
	do {
		rc = deflate(&z->zs, Z_FINISH);
		if (rc == Z_STREAM_ERROR) {
			es_err("%s: compression failed", z->name);
			return -1;
		}
		if (zout_drain(z, rc == Z_STREAM_END) < 0)
			return -1;
	} while (rc != Z_STREAM_END);
	return 0;
}

void es_zout_free(struct es_zout *z)
{
	if (!z)
		return;
	deflateEnd(&z->zs);
	free(z);
}

/* ---- input ---- */

struct es_zinf {
	z_stream zs;
	int ended;
};

int es_zin_open(struct es_zin *z, struct es_in *in)
{
	memset(z, 0, sizeof *z);
	z->in = in;
	z->ibuf = es_malloc(ZBUF);
	/* two bytes tell the forms apart: "EN" of ENVSDIFF, 1f 8b of gzip, or a
	 * zlib header; reading no more keeps the plain form's reads as they were */
	ssize_t k = es_in_read(in, z->ibuf, 2);
	if (k < 0)
		return -1;
	z->ilen = (size_t)k;
	if (!es_z_magic(z->ibuf, z->ilen))
		return 0;
	z->inf = es_calloc(1, sizeof *z->inf);
	/* windowBits 15 + 32: gzip or zlib, told by the header */
	if (inflateInit2(&z->inf->zs, 15 + 32) != Z_OK) {
		es_err("%s: cannot start decompression", in->name);
		free(z->inf);
		z->inf = NULL;
		return -1;
	}
	z->inf->zs.next_in = z->ibuf;
	z->inf->zs.avail_in = (uInt)z->ilen;
	return 0;
}

static ssize_t zerr(struct es_zin *z, uint64_t at, const char *why, const char *detail)
{
	es_err("%s: compressed byte %llu: %s%s%s%s", z->in->name, (unsigned long long)at,
	       why, detail ? " (zlib: " : "", detail ? detail : "", detail ? ")" : "");
	return -1;
}

/* After the container's end (its CRC32 and length checked by zlib): nothing
 * may follow, so a second member or appended bytes are not silently ignored. */
static ssize_t zin_ended(struct es_zin *z)
{
	struct es_zinf *f = z->inf;
	f->ended = 1;
	if (f->zs.avail_in)
		return zerr(z, f->zs.total_in, "data after the end of the compressed stream", NULL);
	ssize_t k = es_in_read(z->in, z->ibuf, 1);
	if (k < 0)
		return -1;
	if (k)
		return zerr(z, f->zs.total_in, "data after the end of the compressed stream", NULL);
	return 0;
}

ssize_t es_zin_read(struct es_zin *z, void *buf, size_t n)
{
	struct es_zinf *f = z->inf;
	if (!f) {
		size_t got = z->ilen - z->ipos;
		if (got > n)
			got = n;
		memcpy(buf, z->ibuf + z->ipos, got);
		z->ipos += got;
		if (got == n)
			return (ssize_t)n;
		ssize_t k = es_in_read(z->in, (unsigned char *)buf + got, n - got);
		return k < 0 ? -1 : (ssize_t)got + k;
	}
	if (n > ZBUF)
		n = ZBUF; /* callers read in chunks; keeps avail_out in range */
	f->zs.next_out = buf;
	f->zs.avail_out = (uInt)n;
	while (f->zs.avail_out && !f->ended) {
		if (f->zs.avail_in == 0) {
			ssize_t k = es_in_read(z->in, z->ibuf, ZBUF);
			if (k < 0)
				return -1;
			if (k == 0)
				return zerr(z, z->in->pos,
					    "truncated compressed stream (it ends before its gzip trailer)",
					    NULL);
			f->zs.next_in = z->ibuf;
			f->zs.avail_in = (uInt)k;
		}
		int rc = inflate(&f->zs, Z_NO_FLUSH);
		switch (rc) {
		case Z_OK:
		case Z_BUF_ERROR: /* no progress without more input: read on */
			break;
		case Z_STREAM_END:
			if (zin_ended(z) < 0)
				return -1;
			break;
		case Z_NEED_DICT:
			return zerr(z, f->zs.total_in,
				    "compressed with a preset dictionary (not an envsync stream)", NULL);
		case Z_MEM_ERROR:
			return zerr(z, f->zs.total_in, "out of memory while decompressing", NULL);
		default:
			return zerr(z, f->zs.total_in, "corrupt compressed stream", f->zs.msg);
		}
	}
	return (ssize_t)(n - f->zs.avail_out);
}

void es_zin_close(struct es_zin *z)
{
	if (z->inf) {
		inflateEnd(&z->inf->zs);
		free(z->inf);
		z->inf = NULL;
	}
	free(z->ibuf);
	z->ibuf = NULL;
}
