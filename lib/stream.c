/* stream.c: encoding, writing and validating reading of diff streams. */
#include "config.h"
#include "stream.h"
#include "crc.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define WBUF (1u << 16)

const char *es_flag_name(uint8_t flag)
{
	static const char *const n[] = {"Invalid", "Data", "Area", "Cont"};
	return flag < 4 ? n[flag] : "?";
}

const char *es_decision_name(uint8_t d)
{
	static const char *const n[] = {"unjudged", "delta", "full"};
	return d < 3 ? n[d] : "?";
}

void es_enc_header(unsigned char *p, const struct es_dhdr *h)
{
	memset(p, 0, ES_DIFF_HDR);
	memcpy(p, ES_DIFF_MAGIC, 8);
	put16(p + 8, ES_DIFF_VERSION);
	put16(p + 10, h->flags);
	put32(p + 12, h->nitems);
	put64(p + 16, h->base_rev);
	put64(p + 24, h->result_rev);
	put32(p + 44, (uint32_t)crc32(0, p, 44));
}

void es_enc_item(unsigned char *p, const struct es_ditem *it)
{
	size_t nl = strlen(it->name);
	memset(p, 0, ES_REC_ITEM);
	p[0] = 'I';
	p[1] = it->presence;
	put16(p + 2, (uint16_t)nl);
	put32(p + 4, it->base_index);
	put32(p + 8, it->result_index);
	put64(p + 16, it->base_size);
	put64(p + 24, it->result_size);
	memcpy(p + 32, it->name, nl);
}

void es_enc_entry(unsigned char *p, const struct es_entry *e)
{
	memset(p, 0, ES_REC_ENTRY);
	p[0] = e->flag;
	put32(p + 4, e->size);
	put64(p + 8, e->offset);
	memcpy(p + 16, e->data, 8);
}

void es_enc_end(unsigned char *p, const struct es_dend *d)
{
	memset(p, 0, ES_REC_END);
	p[0] = 'E';
	p[1] = d->decision;
	put32(p + 4, d->base_crc);
	put32(p + 8, d->result_crc);
	put64(p + 16, d->entries);
	put64(p + 24, d->spots);
	put64(p + 32, d->bytes);
}

/* ---- writer ---- */

void es_writer_init(struct es_writer *w, int fd, const char *name)
{
	memset(w, 0, sizeof *w);
	w->fd = fd;
	w->name = name;
	w->buf = es_malloc(WBUF);
	w->crc = 0;
	es_wb_init(&w->wb, fd);
}

int es_writer_compress(struct es_writer *w, int level)
{
	w->z = es_zout_new(w->fd, w->name, level);
	return w->z ? 0 : -1;
}

void es_writer_free(struct es_writer *w)
{
	free(w->buf);
	w->buf = NULL;
	es_zout_free(w->z);
	w->z = NULL;
}

/* Where the writer's bytes leave it: the file, or deflate on the way to it. */
static int wout(struct es_writer *w, const void *p, size_t n)
{
	if (w->z)
		return es_zout_write(w->z, p, n);
	if (es_write_full(w->fd, p, n) < 0) {
		es_errno("%s: write error", w->name);
		return -1;
	}
	es_wb_wrote(&w->wb, w->out, n);
	w->out += n;
	return 0;
}

/* The CRC is taken over whole buffers, not per 24-byte record: one call per
 * 64 KiB keeps the fast CRC fast. */
uint32_t es_writer_crc(struct es_writer *w)
{
	w->crc = es_crc32(w->crc, w->buf + w->crc_len, w->len - w->crc_len);
	w->crc_len = w->len;
	return w->crc;
}

int es_writer_flush(struct es_writer *w)
{
	es_writer_crc(w);
	if (w->len && wout(w, w->buf, w->len) < 0)
		return -1;
	w->len = 0;
	w->crc_len = 0;
	return 0;
}

/* Room for N (at most WBUF) bytes at the buffer's end, flushing it first
 * if need be: where they are to be put, or NULL after a write error. */
static unsigned char *wreserve(struct es_writer *w, size_t n)
{
	if (w->len + n > WBUF && es_writer_flush(w) < 0)
		return NULL;
	unsigned char *q = w->buf + w->len;
	w->len += n;
	w->bytes += n;
	return q;
}

int es_writer_put(struct es_writer *w, const void *p, size_t n)
{
	if (n <= WBUF) {
		unsigned char *q = wreserve(w, n);
		if (!q)
			return -1;
		memcpy(q, p, n);
		return 0;
	}
	if (es_writer_flush(w) < 0 || wout(w, p, n) < 0)
		return -1;
	w->crc = es_crc32(w->crc, p, n);
	w->bytes += n;
	return 0;
}

static int w_header(void *arg, const struct es_dhdr *h)
{
	unsigned char p[ES_DIFF_HDR];
	es_enc_header(p, h);
	return es_writer_put(arg, p, sizeof p);
}

static int w_item(void *arg, const struct es_ditem *it)
{
	unsigned char p[ES_REC_ITEM];
	es_enc_item(p, it);
	return es_writer_put(arg, p, sizeof p);
}

static int w_entry(void *arg, const struct es_ditem *it, const struct es_entry *e)
{
	(void)it;
	/* encoded in place: a dense stream is millions of entries */
	unsigned char *q = wreserve(arg, ES_REC_ENTRY);
	if (!q)
		return -1;
	es_enc_entry(q, e);
	return 0;
}

static int w_end(void *arg, const struct es_ditem *it, const struct es_dend *d)
{
	(void)it;
	unsigned char p[ES_REC_END];
	es_enc_end(p, d);
	return es_writer_put(arg, p, sizeof p);
}

static int w_finish(void *arg)
{
	struct es_writer *w = arg;
	unsigned char p[ES_REC_TAIL];
	memset(p, 0, sizeof p);
	p[0] = 'Z';
	put64(p + 8, w->bytes + ES_REC_TAIL);
	if (es_writer_put(w, p, 20) < 0)
		return -1;
	put32(p + 20, es_writer_crc(w));
	if (es_writer_put(w, p + 20, 4) < 0 || es_writer_flush(w) < 0)
		return -1;
	return w->z ? es_zout_finish(w->z) : 0;
}

struct es_sink es_writer_sink(struct es_writer *w)
{
	struct es_sink s = {w, w_header, w_item, w_entry, w_end, w_finish};
	return s;
}

/* ---- reader ---- */

/* Tell the form by the first bytes; callers do not close a reader whose open
 * failed, so a failure here releases what the open took. */
static int reader_start(struct es_reader *r)
{
	if (es_zin_open(&r->z, &r->in) == 0)
		return 0;
	es_reader_close(r);
	return -1;
}

int es_reader_open(struct es_reader *r, const char *path)
{
	memset(r, 0, sizeof *r);
	if (es_in_open(&r->in, path) < 0)
		return -1;
	r->buf = es_malloc(WBUF);
	r->crc = 0;
	return reader_start(r);
}

int es_reader_open_fd(struct es_reader *r, int fd, const char *name)
{
	memset(r, 0, sizeof *r);
	if (lseek(fd, 0, SEEK_SET) < 0 || (r->in.fd = dup(fd)) < 0) {
		es_errno("%s: cannot reread", name);
		return -1;
	}
	r->in.name = name;
	r->in.size = ES_SIZE_UNKNOWN;
	r->buf = es_malloc(WBUF);
	r->crc = 0;
	return reader_start(r);
}

void es_reader_close(struct es_reader *r)
{
	es_zin_close(&r->z);
	es_in_close(&r->in);
	free(r->buf);
	r->buf = NULL;
}

/* CRC32 of every byte consumed so far, folded per buffer like the writer's. */
static uint32_t reader_crc(struct es_reader *r)
{
	r->crc = es_crc32(r->crc, r->buf + r->cpos, r->bpos - r->cpos);
	r->cpos = r->bpos;
	return r->crc;
}

/* Read exactly n bytes; *got receives how many arrived before EOF. */
static int rget(struct es_reader *r, unsigned char *p, size_t n, size_t *got)
{
	*got = 0;
	while (*got < n) {
		if (r->bpos == r->blen) {
			reader_crc(r);
			r->cpos = 0;
			ssize_t k = es_zin_read(&r->z, r->buf, WBUF);
			if (k < 0)
				return -1;
			if (k == 0)
				return 0;
			r->blen = (size_t)k;
			r->bpos = 0;
		}
		size_t take = r->blen - r->bpos;
		if (take > n - *got)
			take = n - *got;
		memcpy(p + *got, r->buf + r->bpos, take);
		r->bpos += take;
		*got += take;
	}
	return 0;
}

/* Read a record of n bytes or fail naming what was being read. */
static inline int rrec(struct es_reader *r, unsigned char *p, size_t n, const char *what)
{
	size_t got = n;
	if (r->blen - r->bpos >= n) {
		/* whole in the buffer, the usual case: a fixed-size copy */
		memcpy(p, r->buf + r->bpos, n);
		r->bpos += n;
	} else if (rget(r, p, n, &got) < 0) {
		return -1;
	}
	if (got < n) {
		es_err("%s: byte %llu: truncated stream (%s: %zu of %zu bytes)", r->in.name,
		       (unsigned long long)(r->pos + got), what, got, n);
		return -1;
	}
	r->pos += n;
	return 0;
}

static int read_header(struct es_reader *r)
{
	unsigned char p[ES_DIFF_HDR];
	size_t got;
	if (rget(r, p, sizeof p, &got) < 0)
		return -1;
	if (got < 8 || memcmp(p, ES_DIFF_MAGIC, 8) != 0) {
		if (memcmp(p, ES_DIFF_MAGIC, got < 8 ? got : 8) == 0)
			es_err("%s: byte %zu: truncated stream (header: %zu of %d bytes)",
			       r->in.name, got, got, ES_DIFF_HDR);
		else
			es_err("%s: byte 0: bad signature (not an envsync diff stream)",
			       r->in.name);
		return -1;
	}
	if (got < sizeof p) {
		es_err("%s: byte %zu: truncated stream (header: %zu of %d bytes)", r->in.name,
		       got, got, ES_DIFF_HDR);
		return -1;
	}
	r->pos = sizeof p;
	if (get16(p + 8) != ES_DIFF_VERSION) {
		es_err("%s: byte 8: unsupported stream version %u (this is version %d)",
		       r->in.name, get16(p + 8), ES_DIFF_VERSION);
		return -1;
	}
	if (get32(p + 44) != (uint32_t)crc32(0, p, 44)) {
		es_err("%s: byte 44: header CRC32 mismatch", r->in.name);
		return -1;
	}
	r->hdr.flags = get16(p + 10);
	r->hdr.nitems = get32(p + 12);
	r->hdr.base_rev = get64(p + 16);
	r->hdr.result_rev = get64(p + 24);
	if (r->hdr.flags & ~ES_DF_ALL || !es_allzero(p + 32, 12)) {
		es_err("%s: byte 10: unknown flags or reserved fields not zero", r->in.name);
		return -1;
	}
	if (r->hdr.nitems > 2 * ES_MAX_ITEMS) {
		es_err("%s: byte 12: item count %u exceeds the limit of %d", r->in.name,
		       r->hdr.nitems, 2 * ES_MAX_ITEMS);
		return -1;
	}
	return 0;
}

/* Per-item validation state. */
struct rstate {
	struct es_ditem it;
	uint64_t max_size;  /* entries address [0, max(base, result)) */
	uint64_t next_off;  /* the next run may not start before this */
	uint64_t run_off, run_size, run_done; /* current Area run */
	uint64_t last_end;  /* end of the last run, for counting spots */
	int have_run;
	uint64_t entries, spots, bytes;
};

static int bad(struct es_reader *r, const char *what, uint64_t recno, size_t rlen,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int bad(struct es_reader *r, const char *what, uint64_t recno, size_t rlen,
	       const char *fmt, ...)
{
	char reason[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	es_err("%s: %s %llu (byte %llu): %s", r->in.name, what,
	       (unsigned long long)recno, (unsigned long long)(r->pos - rlen), reason);
	return -1;
}

static int parse_item(struct es_reader *r, const unsigned char *p, uint64_t recno,
		      struct es_ditem *it)
{
	char ctx[600];
	uint16_t nl = get16(p + 2);
	memset(it, 0, sizeof *it);
	it->presence = p[1];
	it->base_index = get32(p + 4);
	it->result_index = get32(p + 8);
	it->base_size = get64(p + 16);
	it->result_size = get64(p + 24);
	snprintf(ctx, sizeof ctx, "%s: item %llu (byte %llu)", r->in.name,
		 (unsigned long long)recno, (unsigned long long)(r->pos - ES_REC_ITEM));
	if (it->presence == 0 || it->presence > 3 || get32(p + 12) != 0) {
		es_err("%s: bad presence %u or reserved field not zero", ctx, it->presence);
		return -1;
	}
	if (es_name_check((const char *)p + 32, nl > ES_NAME_MAX ? ES_NAME_MAX + 1 : nl,
			  ctx) < 0)
		return -1;
	if (!es_allzero(p + 32 + nl, ES_NAME_MAX - nl)) {
		es_err("%s: name padding is not zero", ctx);
		return -1;
	}
	memcpy(it->name, p + 32, nl);
	if (!(it->presence & ES_IN_BASE) &&
	    (it->base_size != 0 || it->base_index != ES_NO_INDEX)) {
		es_err("%s: '%s' is absent from the base but has a base size or index", ctx,
		       it->name);
		return -1;
	}
	if (!(it->presence & ES_IN_RESULT) &&
	    (it->result_size != 0 || it->result_index != ES_NO_INDEX)) {
		es_err("%s: '%s' is absent from the result but has a result size or index",
		       ctx, it->name);
		return -1;
	}
	if ((it->presence & ES_IN_BASE && it->base_index >= ES_MAX_ITEMS) ||
	    (it->presence & ES_IN_RESULT && it->result_index >= ES_MAX_ITEMS)) {
		es_err("%s: '%s' has an index beyond %d", ctx, it->name, ES_MAX_ITEMS);
		return -1;
	}
	if (it->base_size > (UINT64_MAX >> 2) || it->result_size > (UINT64_MAX >> 2)) {
		es_err("%s: '%s' has an impossible size", ctx, it->name);
		return -1;
	}
	return 0;
}

/* Whether an entry's data bytes past its first SIZE (1 to 8) are zero: one
 * load, not a call per entry (es_allzero was an eighth of a dense apply). */
static inline int pad_zero(const unsigned char d[8], uint64_t size)
{
	return size >= 8 || get64(d) >> (8 * size) == 0;
}

static int check_entry(struct es_reader *r, struct rstate *s, const struct es_entry *e,
		       const unsigned char *p, uint64_t recno)
{
	const char *w = "entry";
	if (e->flag > ES_CONT || p[1] || p[2] || p[3])
		return bad(r, w, recno, ES_REC_ENTRY, "unknown flag %llu", (unsigned long long)(p[0]));
	if (e->flag == ES_INVALID) {
		if (e->size || e->offset || !es_allzero(e->data, 8))
			return bad(r, w, recno, ES_REC_ENTRY, "Invalid entry carries data (size %llu, offset %llu)", (unsigned long long)(e->size), (unsigned long long)(e->offset));
		if (s->have_run)
			return bad(r, w, recno, ES_REC_ENTRY, "Invalid entry inside an Area run at %llu", (unsigned long long)(s->run_off));
		return 0;
	}
	if (e->flag == ES_CONT) {
		if (!s->have_run)
			return bad(r, w, recno, ES_REC_ENTRY, "Cont entry at relative offset %llu without its Area", (unsigned long long)(e->offset));
		uint64_t want = s->run_size - s->run_done;
		if (want > 8)
			want = 8;
		if (e->offset != s->run_done || e->size != want)
			return bad(r, w, recno, ES_REC_ENTRY,
				   "Cont entry out of sequence (relative offset %llu, size %llu)",
				   (unsigned long long)e->offset, (unsigned long long)e->size);
		if (!pad_zero(e->data, e->size))
			return bad(r, w, recno, ES_REC_ENTRY, "unused data bytes not zero (size %llu)", (unsigned long long)(e->size));
		s->run_done += e->size;
		if (s->run_done == s->run_size)
			s->have_run = 0;
		return 0;
	}
	/* Data or Area: a new run */
	if (s->have_run)
		return bad(r, w, recno, ES_REC_ENTRY, "Area run at %llu ends early (%llu bytes missing)", (unsigned long long)(s->run_off), (unsigned long long)(s->run_size - s->run_done));
	if (e->flag == ES_DATA && (e->size == 0 || e->size > 8))
		return bad(r, w, recno, ES_REC_ENTRY, "Data entry size %llu not in 1..8", (unsigned long long)(e->size));
	if (e->flag == ES_AREA && e->size <= 8)
		return bad(r, w, recno, ES_REC_ENTRY, "Area entry size %llu not above 8", (unsigned long long)(e->size));
	if (e->offset < s->next_off)
		return bad(r, w, recno, ES_REC_ENTRY, "offset %llu overlaps or precedes the previous run (ends at %llu)", (unsigned long long)(e->offset), (unsigned long long)(s->next_off));
	if (e->offset > s->max_size || e->size > s->max_size - e->offset)
		return bad(r, w, recno, ES_REC_ENTRY, "offset %llu + size %llu beyond the item", (unsigned long long)(e->offset), (unsigned long long)(e->size));
	if (e->flag == ES_DATA && !pad_zero(e->data, e->size))
		return bad(r, w, recno, ES_REC_ENTRY, "unused data bytes not zero (size %llu)", (unsigned long long)(e->size));
	if (!(s->bytes || s->spots) || e->offset != s->last_end)
		s->spots++;
	s->bytes += e->size;
	s->next_off = s->last_end = e->offset + e->size;
	if (e->flag == ES_AREA) {
		s->have_run = 1;
		s->run_off = e->offset;
		s->run_size = e->size;
		s->run_done = 8;
	}
	return 0;
}

static int check_end(struct es_reader *r, struct rstate *s, const struct es_dend *d,
		     const unsigned char *p, uint64_t recno)
{
	const char *w = "item end";
	if (s->have_run)
		return bad(r, w, recno, ES_REC_END, "Area run at %llu ends early (%llu bytes missing)", (unsigned long long)(s->run_off), (unsigned long long)(s->run_size - s->run_done));
	if (d->decision > ES_FULL || p[2] || p[3] || !es_allzero(p + 12, 4) ||
	    !es_allzero(p + 40, 8))
		return bad(r, w, recno, ES_REC_END, "bad decision %llu or reserved field not zero", (unsigned long long)(d->decision));
	if (d->entries != s->entries || d->spots != s->spots || d->bytes != s->bytes) {
		char reason[256];
		snprintf(reason, sizeof reason,
			 "counts (%llu entries, %llu spots, %llu bytes) disagree with the entries (%llu, %llu, %llu)",
			 (unsigned long long)d->entries, (unsigned long long)d->spots,
			 (unsigned long long)d->bytes, (unsigned long long)s->entries,
			 (unsigned long long)s->spots, (unsigned long long)s->bytes);
		es_err("%s: item '%s' end (byte %llu): %s", r->in.name, s->it.name,
		       (unsigned long long)(r->pos - ES_REC_END), reason);
		return -1;
	}
	return 0;
}

static int read_tail(struct es_reader *r)
{
	unsigned char p[ES_REC_TAIL];
	uint32_t crc_before;
	if (rrec(r, p, 20, "stream end") < 0)
		return -1;
	crc_before = reader_crc(r);
	if (rrec(r, p + 20, 4, "stream end") < 0)
		return -1;
	if (p[0] != 'Z') {
		es_err("%s: byte %llu: expected the stream end record, found 0x%02x",
		       r->in.name, (unsigned long long)(r->pos - ES_REC_TAIL), p[0]);
		return -1;
	}
	if (!es_allzero(p + 1, 7) || !es_allzero(p + 16, 4) || get64(p + 8) != r->pos) {
		es_err("%s: byte %llu: stream end record disagrees with the stream length %llu",
		       r->in.name, (unsigned long long)(r->pos - ES_REC_TAIL),
		       (unsigned long long)r->pos);
		return -1;
	}
	if (get32(p + 20) != crc_before) {
		es_err("%s: byte %llu: stream CRC32 mismatch (stored %08x, computed %08x)",
		       r->in.name, (unsigned long long)(r->pos - 4), get32(p + 20), crc_before);
		return -1;
	}
	size_t got;
	unsigned char extra;
	if (rget(r, &extra, 1, &got) < 0)
		return -1;
	if (got) {
		es_err("%s: byte %llu: data after the end of the stream", r->in.name,
		       (unsigned long long)r->pos);
		return -1;
	}
	return 0;
}

/* Item names must be unique within a stream: an open-addressing hash set. */
struct nameset {
	char (*v)[ES_NAME_MAX + 1];
	uint32_t mask;
};

static void nameset_init(struct nameset *ns, uint32_t n)
{
	uint32_t size = 16;
	while (size < 2 * n)
		size *= 2;
	ns->v = es_calloc(size, sizeof ns->v[0]);
	ns->mask = size - 1;
}

static int nameset_add(struct nameset *ns, const char *name)
{
	uint32_t h = 2166136261u;
	for (const char *c = name; *c; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	for (;; h++) {
		char *slot = ns->v[h & ns->mask];
		if (!slot[0]) {
			strcpy(slot, name);
			return 0;
		}
		if (strcmp(slot, name) == 0)
			return -1;
	}
}

static int read_item(struct es_reader *r, struct es_sink *k, uint64_t itemno,
		     uint64_t *entryno, struct nameset *ns)
{
	unsigned char p[ES_REC_ITEM];
	struct rstate s;
	memset(&s, 0, sizeof s);
	if (rrec(r, p, ES_REC_ITEM, "item") < 0)
		return -1;
	if (p[0] != 'I') {
		es_err("%s: byte %llu: expected item %llu of %u, found record type 0x%02x",
		       r->in.name, (unsigned long long)(r->pos - ES_REC_ITEM),
		       (unsigned long long)itemno, r->hdr.nitems, p[0]);
		return -1;
	}
	if (parse_item(r, p, itemno, &s.it) < 0)
		return -1;
	if (nameset_add(ns, s.it.name) < 0) {
		es_err("%s: item %llu: duplicate item name '%s'", r->in.name,
		       (unsigned long long)itemno, s.it.name);
		return -1;
	}
	s.max_size = s.it.base_size > s.it.result_size ? s.it.base_size : s.it.result_size;
	if (k->item && k->item(k->arg, &s.it) < 0)
		return -1;
	for (;;) {
		if (rrec(r, p, ES_REC_ENTRY, "entry") < 0)
			return -1;
		if (p[0] == 'E')
			break;
		struct es_entry e;
		e.flag = p[0];
		e.size = get32(p + 4);
		e.offset = get64(p + 8);
		memcpy(e.data, p + 16, 8);
		++*entryno;
		if (check_entry(r, &s, &e, p, *entryno) < 0)
			return -1;
		s.entries++;
		if (k->entry && k->entry(k->arg, &s.it, &e) < 0)
			return -1;
	}
	if (rrec(r, p + ES_REC_ENTRY, ES_REC_END - ES_REC_ENTRY, "item end") < 0)
		return -1;
	struct es_dend d;
	d.decision = p[1];
	d.base_crc = get32(p + 4);
	d.result_crc = get32(p + 8);
	d.entries = get64(p + 16);
	d.spots = get64(p + 24);
	d.bytes = get64(p + 32);
	if (check_end(r, &s, &d, p, itemno) < 0)
		return -1;
	return k->end ? k->end(k->arg, &s.it, &d) : 0;
}

int es_reader_run(struct es_reader *r, struct es_sink *k)
{
	if (read_header(r) < 0)
		return -1;
	if (k->header && k->header(k->arg, &r->hdr) < 0)
		return -1;
	struct nameset ns;
	nameset_init(&ns, r->hdr.nitems);
	uint64_t entryno = 0;
	int rc = 0;
	for (uint32_t i = 0; i < r->hdr.nitems && rc == 0; i++)
		rc = read_item(r, k, i + 1, &entryno, &ns);
	free(ns.v);
	if (rc < 0 || read_tail(r) < 0)
		return -1;
	return k->finish ? k->finish(k->arg) : 0;
}

/* ---- tee: feed two sinks ---- */

#define TEE(call, ...)                                                              \
	do {                                                                        \
		struct es_sink *const *k = arg;                                     \
		for (int i = 0; i < 2; i++)                                         \
			if (k[i]->call && k[i]->call(k[i]->arg, __VA_ARGS__) < 0)   \
				return -1;                                          \
		return 0;                                                           \
	} while (0)

static int tee_header(void *arg, const struct es_dhdr *h) { TEE(header, h); }
static int tee_item(void *arg, const struct es_ditem *it) { TEE(item, it); }
static int tee_entry(void *arg, const struct es_ditem *it, const struct es_entry *e)
{
	TEE(entry, it, e);
}
static int tee_end(void *arg, const struct es_ditem *it, const struct es_dend *d)
{
	TEE(end, it, d);
}
static int tee_finish(void *arg)
{
	struct es_sink *const *k = arg;
	for (int i = 0; i < 2; i++)
		if (k[i]->finish && k[i]->finish(k[i]->arg) < 0)
			return -1;
	return 0;
}

struct es_sink es_tee_sink(struct es_sink *pair[2])
{
	struct es_sink s = {pair, tee_header, tee_item, tee_entry, tee_end, tee_finish};
	return s;
}

/* The spool's writer, leaving out the entries of items that go full (with
 * a drop; without one it writes the stream as it comes). */
struct spooler {
	struct es_writer *w;
	const struct es_spool_drop *drop;
	uint64_t out, bytes; /* where the item's entries began: file offset, */
	uint32_t crc;        /* stream length and CRC32 there */
	int left_out;        /* entries of this item not written */
};

static int sp_header(void *arg, const struct es_dhdr *h)
{
	struct spooler *s = arg;
	return w_header(s->w, h);
}

/* With a drop, the point the item's entries may be taken back to:
 * everything before it written out, its CRC32 folded. */
static int sp_item(void *arg, const struct es_ditem *it)
{
	struct spooler *s = arg;
	if (w_item(s->w, it) < 0)
		return -1;
	if (!s->drop)
		return 0;
	if (es_writer_flush(s->w) < 0)
		return -1;
	s->out = s->w->out;
	s->bytes = s->w->bytes;
	s->crc = s->w->crc;
	s->left_out = 0;
	return 0;
}

static int sp_entry(void *arg, const struct es_ditem *it, const struct es_entry *e)
{
	struct spooler *s = arg;
	if (!s->left_out && s->drop && s->drop->full(s->drop->arg, 0))
		s->left_out = 1;
	return s->left_out ? 0 : w_entry(s->w, it, e);
}

/* Take back the entries written since sp_item. */
static int sp_rewind(struct spooler *s)
{
	struct es_writer *w = s->w;
	if (w->out != s->out &&
	    (ftruncate(w->fd, (off_t)s->out) < 0 || lseek(w->fd, (off_t)s->out, SEEK_SET) < 0)) {
		es_errno("%s: cannot truncate", w->name);
		return -1;
	}
	w->out = s->out;
	w->bytes = s->bytes;
	w->crc = s->crc;
	w->len = w->crc_len = 0;
	return 0;
}

static int sp_end(void *arg, const struct es_ditem *it, const struct es_dend *d)
{
	struct spooler *s = arg;
	if (!s->drop || !s->drop->full(s->drop->arg, 1)) {
		if (s->left_out) {
			es_err("%s: item '%s': entries left out of an item that does not go full",
			       s->w->name, it->name);
			return -1;
		}
		return w_end(s->w, it, d);
	}
	struct es_dend none = *d;
	none.entries = none.spots = none.bytes = 0;
	return sp_rewind(s) < 0 ? -1 : w_end(s->w, it, &none);
}

static int sp_finish(void *arg)
{
	struct spooler *s = arg;
	return w_finish(s->w);
}

int es_spool_stream(const char *path, struct es_sink *collect, const struct es_spool_drop *drop)
{
	struct es_reader r;
	struct es_writer w;
	/* tmpfile(3) ignores TMPDIR; the stream may need more room than /tmp */
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
		/* a filesystem without O_TMPFILE: a named file, unlinked at once */
		size_t n = strlen(dir) + sizeof "/envsync-spool.XXXXXX";
		char *name = es_malloc(n);
		snprintf(name, n, "%s/envsync-spool.XXXXXX", dir);
		fd = mkostemp(name, O_CLOEXEC);
		if (fd >= 0)
			unlink(name);
		free(name);
	}
	if (fd < 0) {
		es_errno("%s: cannot create a temporary file for the diff", dir);
		return -1;
	}
	if (es_reader_open(&r, path ? path : "-") < 0) {
		close(fd);
		return -1;
	}
	char wname[PATH_MAX + 40];
	snprintf(wname, sizeof wname, "%s (the diff's temporary copy)", dir);
	es_writer_init(&w, fd, wname);
	/* a temporary file, read back soon and never kept: writing it to the
	 * disk only takes the disk from the apply (a 64 MiB full copy's 145 MB
	 * spool was written back in 8 MiB chunks while the copy ran) */
	es_wb_init(&w.wb, -1);
	struct spooler sp = {&w, drop, 0, 0, 0, 0};
	struct es_sink spool = {&sp, sp_header, sp_item, sp_entry, sp_end, sp_finish};
	struct es_sink *pair[2] = {collect, &spool};
	struct es_sink both = es_tee_sink(pair);
	int rc = es_reader_run(&r, &both);
	es_writer_free(&w);
	es_reader_close(&r);
	if (rc < 0) {
		close(fd);
		return -1;
	}
	return fd;
}
