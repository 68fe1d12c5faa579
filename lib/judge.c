/* judge.c: deciding delta or full per item. */
#include "config.h"
#include "judge.h"
#include "journal.h"
#include "util.h"

#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const measures[] = {"bytes", "spots", "entries", "stream"};

const char *es_measure_name(enum es_measure m)
{
	return measures[m];
}

int es_measure_parse(const char *s, enum es_measure *m)
{
	for (unsigned i = 0; i < 4; i++)
		if (strcmp(s, measures[i]) == 0) {
			*m = (enum es_measure)i;
			return 0;
		}
	return -1;
}

/* ---- calibration file: "key value" lines, '#' comments ---- */

struct calkey {
	const char *name;
	size_t off;
	int integer;
	int optional; /* added after version 1 went out: older files lack it */
};

#define K(n, f, i) {n, offsetof(struct es_calib, f), i, 0}
static const struct calkey calkeys[] = {
	K("block_size", block_size, 1),   K("item_size", item_size, 1),
	K("delta_fixed_ns", delta_fixed, 0), K("delta_per_spot_ns", per_spot, 0),
	K("delta_per_byte_ns", per_byte, 0), K("delta_per_block_ns", per_block, 0),
	K("full_fixed_ns", full_fixed, 0), K("full_per_byte_ns", full_per_byte, 0),
	{"full_per_entry_ns", offsetof(struct es_calib, full_per_entry), 0, 1},
	{"delta_per_record_ns", offsetof(struct es_calib, per_record), 0, 1},
};
#define NKEYS (sizeof calkeys / sizeof calkeys[0])

static int cal_value(struct es_calib *c, const struct calkey *k, const char *v,
		     const char *path, unsigned line)
{
	char *end;
	errno = 0;
	if (k->integer) {
		uint64_t x;
		if (es_parse_u64(v, &x) < 0 || x == 0 || x > (1ull << 50)) {
			es_err("%s: line %u: %s: '%s' is not a positive integer", path, line,
			       k->name, v);
			return -1;
		}
		*(uint64_t *)((char *)c + k->off) = x;
		return 0;
	}
	double d = strtod(v, &end);
	if (errno || *end || !isfinite(d) || d < 0 || d > 1e15) {
		es_err("%s: line %u: %s: '%s' is not a non-negative number", path, line,
		       k->name, v);
		return -1;
	}
	/* c + k->off is a double member of struct es_calib (offsetof), not char data */
	/* cppcheck-suppress invalidPointerCast */
	*(double *)((char *)c + k->off) = d;
	return 0;
}

static int cal_line(struct es_calib *c, char *s, const char *path, unsigned line,
		    unsigned *seen, int *format_ok)
{
	char *key = strtok(s, " \t\r\n");
	if (!key || key[0] == '#')
		return 0;
	char *val = strtok(NULL, " \t\r\n");
	if (strcmp(key, "point") == 0 || strcmp(key, "medium") == 0 ||
	    strcmp(key, "date") == 0)
		return 0; /* informative: measured points, where, when */
	if (!val || strtok(NULL, " \t\r\n")) {
		es_err("%s: line %u: expected 'key value'", path, line);
		return -1;
	}
	if (strcmp(key, "envsync-calibration") == 0) {
		if (strcmp(val, "1") != 0) {
			es_err("%s: line %u: unsupported calibration format %s", path, line, val);
			return -1;
		}
		*format_ok = 1;
		return 0;
	}
	for (unsigned i = 0; i < NKEYS; i++)
		if (strcmp(key, calkeys[i].name) == 0) {
			*seen |= 1u << i;
			return cal_value(c, &calkeys[i], val, path, line);
		}
	es_err("%s: line %u: unknown key '%s'", path, line, key);
	return -1;
}

int es_calib_load(struct es_calib *c, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		es_errno("%s: cannot open calibration", path);
		return -1;
	}
	memset(c, 0, sizeof *c);
	char buf[512];
	unsigned line = 0, seen = 0;
	int format_ok = 0, rc = 0;
	while (rc == 0 && fgets(buf, sizeof buf, f)) {
		line++;
		if (!strchr(buf, '\n') && !feof(f)) {
			es_err("%s: line %u: line too long", path, line);
			rc = -1;
		} else
			rc = cal_line(c, buf, path, line, &seen, &format_ok);
	}
	if (rc == 0 && ferror(f)) {
		es_errno("%s: read error", path);
		rc = -1;
	}
	fclose(f);
	if (rc < 0)
		return -1;
	if (!format_ok) {
		es_err("%s: line 1: not an envsync calibration (missing 'envsync-calibration 1')",
		       path);
		return -1;
	}
	for (unsigned i = 0; i < NKEYS; i++)
		if (!(seen & 1u << i) && !calkeys[i].optional) {
			es_err("%s: missing key '%s'", path, calkeys[i].name);
			return -1;
		}
	return 0;
}

void es_calib_write(const struct es_calib *c, FILE *f, const char *medium)
{
	fprintf(f, "envsync-calibration 1\n");
	if (medium)
		fprintf(f, "medium %s\n", medium);
	for (unsigned i = 0; i < NKEYS; i++) {
		const char *p = (const char *)c + calkeys[i].off;
		if (calkeys[i].integer)
			fprintf(f, "%s %" PRIu64 "\n", calkeys[i].name, *(const uint64_t *)p);
		else /* p is a double member of struct es_calib (offsetof) */
			/* cppcheck-suppress invalidPointerCast */
			fprintf(f, "%s %.6g\n", calkeys[i].name, *(const double *)p);
	}
}

/* ---- the decision ---- */

static uint64_t amount(const struct es_judge *j, const struct es_dend *d)
{
	switch (j->measure) {
	case ES_M_SPOTS: return d->spots;
	case ES_M_ENTRIES: return d->entries;
	case ES_M_STREAM: return d->entries * ES_REC_ENTRY;
	default: return j->rbytes; /* a shrunk item's dropped tail costs no write */
	}
}

/* A delta journals and writes the gaps between near spots too. */
static uint64_t written_of(const struct es_judge *j)
{
	return j->written + (j->span_end - j->span_start);
}

static uint64_t records_of(const struct es_judge *j)
{
	return j->records + es_j_records(j->span_end - j->span_start);
}

/* A delta's predicted cost beyond the entries'. Every term only grows as
 * entries pass (es_calib_load refuses negative costs), and so does a
 * floating-point sum of them: what it gives before the last entry is never
 * more than what it gives after. */
static double delta_ns(const struct es_judge *j, uint64_t spots)
{
	const struct es_calib *c = &j->cal;
	return c->delta_fixed + c->per_spot * (double)spots + c->per_byte * (double)written_of(j) +
	       c->per_block * (double)j->blocks + c->per_record * (double)records_of(j);
}

/* A full copy's, likewise. */
static double full_ns(const struct es_judge *j, uint64_t size)
{
	return j->cal.full_fixed + j->cal.full_per_byte * (double)size;
}

static uint8_t decide(struct es_judge *j, const struct es_ditem *it, const struct es_dend *d)
{
	uint64_t size = it->result_size;
	if (d->spots == 0 || !(it->presence & ES_IN_RESULT))
		return ES_DELTA; /* nothing to write (a removed item is only dropped) */
	if (j->policy == ES_P_CALIB) {
		const struct es_calib *c = &j->cal;
		if (size > 4 * c->item_size || 4 * size < c->item_size)
			es_warn("%s: item of %" PRIu64 " bytes judged with a calibration made for %" PRIu64
				" bytes: predictions may be off; calibrate for this size",
				it->name, size, c->item_size);
		if (j->settled)
			return ES_FULL;
		/* either apply reads the item's entries (validated, spooled, read
		 * again), which costs seconds for millions of entries: the same
		 * on both sides, it decides nothing */
		double entries = c->full_per_entry * (double)d->entries;
		double delta = delta_ns(j, d->spots), full = full_ns(j, size);
		if (j->verbose)
			fprintf(j->verbose,
				"%s: %" PRIu64 " spots, %" PRIu64 " bytes (%" PRIu64
				" written, %" PRIu64 " records), %" PRIu64 " blocks of %" PRIu64
				", %" PRIu64 " entries, size %" PRIu64
				": predicted delta %.3f ms, full %.3f ms, margin %.3f ms -> %s\n",
				it->name, d->spots, d->bytes, written_of(j), records_of(j),
				j->blocks, c->block_size, d->entries, size, (delta + entries) / 1e6,
				(full + entries) / 1e6, fabs(full - delta) / 1e6,
				delta <= full ? "delta" : "full");
		return delta <= full ? ES_DELTA : ES_FULL;
	}
	uint64_t limit = j->policy == ES_P_FIXED ? j->threshold
						 : (uint64_t)(j->ratio * (double)size);
	uint64_t a = amount(j, d);
	uint8_t dec = a <= limit ? ES_DELTA : ES_FULL;
	if (j->verbose)
		fprintf(j->verbose,
			"%s: %" PRIu64 " spots, %" PRIu64 " bytes, %" PRIu64
			" entries, size %" PRIu64 ", %s %" PRIu64 " vs threshold %" PRIu64
			" -> %s\n",
			it->name, d->spots, d->bytes, d->entries, size,
			es_measure_name(j->measure), a, limit, es_decision_name(dec));
	return dec;
}

static int j_header(void *arg, const struct es_dhdr *h)
{
	struct es_judge *j = arg;
	struct es_dhdr judged = *h;
	judged.flags |= ES_DF_JUDGED;
	return j->next && j->next->header ? j->next->header(j->next->arg, &judged) : 0;
}

static int j_item(void *arg, const struct es_ditem *it)
{
	struct es_judge *j = arg;
	j->blocks = 0;
	j->rbytes = 0;
	j->written = 0;
	j->records = 0;
	j->span_start = j->span_end = 0;
	j->have_block = 0;
	j->settled = 0;
	j->unchecked = 0;
	return j->next && j->next->item ? j->next->item(j->next->arg, it) : 0;
}

/* Add [start, start + n) to the bytes written: a spot near the stretch
 * being built joins it with the gap, as the journal's records do. */
static void add_written(struct es_judge *j, uint64_t start, uint64_t n)
{
	if (j->have_block && es_j_joins(j->span_end, start)) {
		j->span_end = start + n;
		return;
	}
	j->written += j->span_end - j->span_start;
	j->records += es_j_records(j->span_end - j->span_start);
	j->span_start = start;
	j->span_end = start + n;
}

/* The block holding byte OFF: a shift for the usual power-of-two block, as
 * the two divisions per entry were half the judge's time on a dense diff. */
static inline uint64_t block_of(uint64_t off, uint64_t bs)
{
	return (bs & (bs - 1)) == 0 ? off >> __builtin_ctzll(bs) : off / bs;
}

/* Entries between two looks at whether an item is settled full. */
#define SETTLE_EVERY 4096u

/* Count distinct medium blocks the item's runs touch, and the bytes a delta
 * writes. */
static int j_entry(void *arg, const struct es_ditem *it, const struct es_entry *e)
{
	struct es_judge *j = arg;
	if (e->flag == ES_DATA || e->flag == ES_AREA)
		j->run_off = e->offset;
	uint64_t start = e->flag == ES_CONT ? j->run_off + e->offset : e->offset;
	uint64_t n = e->flag == ES_AREA ? 8 : e->size;
	if (e->flag != ES_INVALID && start < it->result_size)
		j->rbytes += it->result_size - start < n ? it->result_size - start : n;
	if (e->flag != ES_INVALID && j->policy == ES_P_CALIB && !j->settled) {
		add_written(j, start, n);
		uint64_t b0 = block_of(start, j->cal.block_size);
		uint64_t b1 = block_of(start + n - 1, j->cal.block_size);
		if (j->have_block && b0 == j->last_block)
			b0++;
		if (b1 >= b0)
			j->blocks += b1 - b0 + 1;
		j->last_block = b1;
		j->have_block = 1;
		/* a dense item's millions of entries: once a delta already costs
		 * more than a full copy, counting the rest was 5 % of a full
		 * apply's time; -v shows every count */
		if (++j->unchecked >= SETTLE_EVERY && !j->verbose) {
			j->unchecked = 0;
			j->settled = delta_ns(j, 0) > full_ns(j, it->result_size);
		}
	}
	return j->next && j->next->entry ? j->next->entry(j->next->arg, it, e) : 0;
}

static int j_end(void *arg, const struct es_ditem *it, const struct es_dend *d)
{
	struct es_judge *j = arg;
	struct es_dend out = *d;
	out.decision = decide(j, it, d);
	if (out.decision == ES_FULL)
		j->any_full = 1;
	return j->next && j->next->end ? j->next->end(j->next->arg, it, &out) : 0;
}

static int j_finish(void *arg)
{
	struct es_judge *j = arg;
	return j->next && j->next->finish ? j->next->finish(j->next->arg) : 0;
}

struct es_sink es_judge_sink(struct es_judge *j)
{
	struct es_sink s = {j, j_header, j_item, j_entry, j_end, j_finish};
	return s;
}

struct es_sink es_judge_calib_sink(struct es_judge *j, const struct es_calib *cal,
				   struct es_sink *next)
{
	memset(j, 0, sizeof *j);
	j->policy = ES_P_CALIB;
	j->cal = *cal;
	j->next = next;
	return es_judge_sink(j);
}
