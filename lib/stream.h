/* stream.h: the diff stream (the patent's difference information, FIG. 5),
 * its records, a buffered writer and a validating reader. Layout: envsync(5). */
#ifndef ENVSYNC_STREAM_H
#define ENVSYNC_STREAM_H

#include <stdint.h>
#include "image.h"
#include "io.h"
#include "zstream.h"

#define ES_DIFF_MAGIC "ENVSDIFF"
#define ES_DIFF_VERSION 1
#define ES_DIFF_HDR 48
#define ES_REC_ENTRY 24
#define ES_REC_ITEM 96
#define ES_REC_END 48
#define ES_REC_TAIL 24

/* header flags */
#define ES_DF_BASE_REV 1u   /* base is an env image: base_rev is meaningful */
#define ES_DF_RESULT_REV 2u /* result is an env image */
#define ES_DF_JUDGED 4u     /* envjudge has recorded decisions */
#define ES_DF_ALL 7u

/* entry flags (the patent's four) */
enum es_flag { ES_INVALID = 0, ES_DATA = 1, ES_AREA = 2, ES_CONT = 3 };
/* item presence */
#define ES_IN_BASE 1u
#define ES_IN_RESULT 2u
/* decisions recorded in an item's end record */
enum es_decision { ES_UNJUDGED = 0, ES_DELTA = 1, ES_FULL = 2 };
#define ES_NO_INDEX 0xffffffffu

struct es_dhdr {
	uint16_t flags;
	uint32_t nitems;
	uint64_t base_rev, result_rev;
};

struct es_ditem {
	uint8_t presence;
	char name[ES_NAME_MAX + 1];
	uint32_t base_index, result_index;
	uint64_t base_size, result_size;
};

struct es_entry {
	uint8_t flag;
	uint32_t size;
	uint64_t offset;
	unsigned char data[8];
};

struct es_dend {
	uint8_t decision;
	uint32_t base_crc, result_crc;
	uint64_t entries, spots, bytes;
};

/* A consumer of stream records: the binary writer, the text listing, the
 * summary, the applier. Any callback may be NULL. */
struct es_sink {
	void *arg;
	int (*header)(void *arg, const struct es_dhdr *h);
	int (*item)(void *arg, const struct es_ditem *it);
	int (*entry)(void *arg, const struct es_ditem *it, const struct es_entry *e);
	int (*end)(void *arg, const struct es_ditem *it, const struct es_dend *d);
	int (*finish)(void *arg);
};

/* Binary writer. */
struct es_writer {
	int fd;
	const char *name;
	unsigned char *buf;
	size_t len;
	size_t crc_len;  /* bytes of buf already in crc: it is folded per buffer */
	uint32_t crc;
	uint64_t bytes;
	struct es_zout *z; /* NULL: plain; else the bytes go through deflate */
	uint64_t out;      /* plain bytes written to fd, for wb */
	struct es_wb wb;
};
void es_writer_init(struct es_writer *w, int fd, const char *name);
/* Write the stream compressed (envsync(5), COMPRESSION) at zlib LEVEL 1 to 9;
 * call before the first put. The CRCs and w->bytes stay those of the plain
 * stream, which is what the tail record describes. */
int es_writer_compress(struct es_writer *w, int level);
void es_writer_free(struct es_writer *w);
/* Append n raw bytes (counted in the CRC and w->bytes); flush the buffer. */
int es_writer_put(struct es_writer *w, const void *p, size_t n);
/* CRC32 of every byte put so far. */
uint32_t es_writer_crc(struct es_writer *w);
int es_writer_flush(struct es_writer *w);
/* A sink that writes records to w. */
struct es_sink es_writer_sink(struct es_writer *w);

/* A sink feeding pair[0] then pair[1]; pair must outlive it. */
struct es_sink es_tee_sink(struct es_sink *pair[2]);

/* Reader: validates every record against the header and the records before
 * it, and the trailing CRC32 of the whole stream. */
struct es_reader {
	struct es_in in;
	struct es_zin z;  /* in, decompressed if it is compressed */
	unsigned char *buf;
	size_t blen, bpos;
	size_t cpos;     /* bytes of buf already in crc: it is folded per buffer */
	uint32_t crc;
	uint64_t pos;
	struct es_dhdr hdr;
};
/* Either form; opening reads the first bytes to tell which. Byte offsets in
 * the reader's messages count the plain (decompressed) stream. */
int es_reader_open(struct es_reader *r, const char *path);
/* Read from the start of an open file (dup'ed; the caller keeps fd). */
int es_reader_open_fd(struct es_reader *r, int fd, const char *name);
/* Is the stream being read compressed? */
static inline int es_reader_compressed(const struct es_reader *r)
{
	return es_zin_compressed(&r->z);
}
void es_reader_close(struct es_reader *r);
/* Read the whole stream, feeding SINK; returns 0 or -1 (message recorded). */
int es_reader_run(struct es_reader *r, struct es_sink *sink);

/* Read and validate the whole stream at PATH (NULL or "-": stdin), feeding
 * COLLECT, and keep a plain copy of it in an unnamed temporary file: an
 * apply reads its entries a second time only once all of it has passed.
 * With DROP, an item DROP->full says goes full keeps no entries there (its
 * end record counts none): a full copy takes its bytes from the source, and
 * the entries of a dense item were most of the copy's time. DROP->full is
 * asked with at_end 0 before an entry (COLLECT has seen the entries before
 * it; the answer may only turn from 0 to 1 within an item) and with at_end 1
 * at the item's end (COLLECT has seen that end). Returns that file's
 * descriptor (at its end), or -1. */
struct es_spool_drop {
	int (*full)(void *arg, int at_end);
	void *arg;
};
int es_spool_stream(const char *path, struct es_sink *collect, const struct es_spool_drop *drop);

/* Encode/decode helpers shared by writer and reader. */
void es_enc_header(unsigned char *p, const struct es_dhdr *h);
void es_enc_item(unsigned char *p, const struct es_ditem *it);
void es_enc_entry(unsigned char *p, const struct es_entry *e);
void es_enc_end(unsigned char *p, const struct es_dend *d);

const char *es_flag_name(uint8_t flag);
const char *es_decision_name(uint8_t d);

#endif
