/* explain.c: envdiff --explain: compare the parsed variables of two UEFI
 * variable stores or two U-Boot environments and say what changed. */
#include "config.h"
#include "explain.h"
#include "io.h"
#include "uboot.h"
#include "uefi.h"
#include "util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Firmware stores are small; refuse to load anything larger than this. */
#define EXPLAIN_MAX ((size_t)64 << 20)

struct blob {
	const char *name;
	unsigned char *buf;
	size_t len;
};

int es_explain_format_parse(const char *s, enum es_explain_format *f)
{
	if (strcmp(s, "auto") == 0)
		*f = ES_EXPLAIN_AUTO;
	else if (strcmp(s, "uefi") == 0)
		*f = ES_EXPLAIN_UEFI;
	else if (strcmp(s, "uboot") == 0)
		*f = ES_EXPLAIN_UBOOT;
	else
		return -1;
	return 0;
}

/* Read all of IN into B, at most EXPLAIN_MAX bytes. */
static int read_all(struct es_in *in, struct blob *b)
{
	size_t cap = in->size != ES_SIZE_UNKNOWN ? (size_t)in->size + 1 : 65536;
	b->buf = es_malloc(cap);
	for (;;) {
		ssize_t r = es_in_read(in, b->buf + b->len, cap - b->len);
		if (r < 0)
			return -1;
		b->len += (size_t)r;
		if (b->len > EXPLAIN_MAX) {
			es_err("%s: more than %zu bytes: too large for a firmware store",
			       b->name, EXPLAIN_MAX);
			return -1;
		}
		if (b->len < cap)
			return 0;
		unsigned char *n = es_malloc(2 * cap);
		memcpy(n, b->buf, b->len);
		free(b->buf);
		b->buf = n;
		cap *= 2;
	}
}

static int load(const char *path, struct blob *b)
{
	struct es_in in;
	memset(b, 0, sizeof *b);
	b->name = path;
	if (es_in_open(&in, path) < 0)
		return -1;
	b->name = in.name;
	if (in.size != ES_SIZE_UNKNOWN && in.size > EXPLAIN_MAX) {
		es_err("%s: %" PRIu64 " bytes: too large for a firmware store (limit %zu)",
		       in.name, in.size, EXPLAIN_MAX);
		es_in_close(&in);
		return -1;
	}
	int rc = read_all(&in, b);
	es_in_close(&in);
	return rc;
}

static uint64_t count_diff(const unsigned char *a, const unsigned char *b, uint64_t from,
			   uint64_t to)
{
	uint64_t n = 0;
	for (uint64_t i = from; i < to; i++)
		n += a[i] != b[i];
	return n;
}

static int same_bytes(const struct blob *a, const struct blob *b)
{
	return a->len == b->len && memcmp(a->buf, b->buf, a->len) == 0;
}

/* "bytes: N of M differ" or the two sizes. */
static void put_bytes_line(FILE *out, const struct blob *a, const struct blob *b)
{
	if (a->len == b->len)
		fprintf(out, "bytes: %" PRIu64 " of %zu differ\n",
			count_diff(a->buf, b->buf, 0, a->len), a->len);
	else
		fprintf(out, "bytes: the sizes differ, %zu -> %zu\n", a->len, b->len);
}

/* ---- UEFI ---- */

static int var_key_cmp(const struct es_uefi_var *x, const struct es_uefi_var *y)
{
	uint32_t n = x->name_size < y->name_size ? x->name_size : y->name_size;
	for (uint32_t i = 0; i < n; i += 2) {
		uint16_t a = get16(x->name + i), b = get16(y->name + i);
		if (a != b)
			return a < b ? -1 : 1;
	}
	if (x->name_size != y->name_size)
		return x->name_size < y->name_size ? -1 : 1;
	return memcmp(x->guid, y->guid, 16);
}

/* By name and GUID; of one variable's live records, edk2 takes the first
 * fully added one, else the first in deleted transition. */
static int live_cmp(const void *a, const void *b)
{
	const struct es_uefi_var *x = *(const struct es_uefi_var *const *)a;
	const struct es_uefi_var *y = *(const struct es_uefi_var *const *)b;
	int c = var_key_cmp(x, y);
	if (c)
		return c;
	if (x->state != y->state)
		return x->state == ES_VAR_ADDED ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* The current record of every variable, sorted by name and GUID. */
static const struct es_uefi_var **live_list(const struct es_uefi_store *st, uint32_t *n)
{
	/* l is an array of pointers: sizeof *l is a pointer's size, as meant */
	/* NOLINTNEXTLINE(bugprone-sizeof-expression) */
	const struct es_uefi_var **l = es_calloc(st->nvars, sizeof *l);
	uint32_t k = 0;
	for (uint32_t i = 0; i < st->nvars; i++)
		if (es_uefi_live(st->vars[i].state))
			l[k++] = &st->vars[i];
	if (k)
		qsort(l, k, sizeof *l, live_cmp); /* NOLINT(bugprone-sizeof-expression): as above */
	uint32_t m = 0;
	for (uint32_t i = 0; i < k; i++)
		if (m == 0 || var_key_cmp(l[m - 1], l[i]) != 0)
			l[m++] = l[i];
	*n = m;
	return l;
}

/* A record's bytes: header, name, data and the padding to the next one. */
static uint64_t rec_span(const struct es_uefi_store *st, const struct es_uefi_var *v)
{
	uint64_t end = v->off + v->hdr_size + v->name_size + v->data_size;
	end = (end + 3) & ~(uint64_t)3;
	return (end < st->store_end ? end : st->store_end) - v->off;
}

/* The record of ST that starts at OFF, or NULL. */
static const struct es_uefi_var *rec_at(const struct es_uefi_store *st, uint64_t off)
{
	uint32_t lo = 0, hi = st->nvars;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (st->vars[mid].off == off)
			return &st->vars[mid];
		if (st->vars[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

enum rec_cmp { REC_SAME, REC_STATE, REC_OTHER };

static enum rec_cmp rec_compare(const struct es_uefi_store *a, const struct es_uefi_var *x,
				const struct es_uefi_store *b, const struct es_uefi_var *y)
{
	uint64_t n = rec_span(a, x);
	if (n != rec_span(b, y) || memcmp(a->buf + x->off, b->buf + y->off, 2) != 0 ||
	    memcmp(a->buf + x->off + 3, b->buf + y->off + 3, n - 3) != 0)
		return REC_OTHER;
	return x->state == y->state ? REC_SAME : REC_STATE;
}

struct uefi_cmp {
	FILE *out;
	const struct es_uefi_store *a, *b;
	unsigned char *told; /* per result record: its State change was shown */
	uint32_t added, deleted, changed, unchanged;
};

static void put_state_change(struct uefi_cmp *c, const struct es_uefi_var *x,
			     const struct es_uefi_var *y)
{
	fprintf(c->out, "record 0x%" PRIx64 " 0x%02x %s -> 0x%02x %s", y->off, x->state,
		es_uefi_state_name(x->state), y->state, es_uefi_state_name(y->state));
	if (y->state & ~x->state)
		fputs(" (sets bits: flash needs an erase for that)", c->out);
	c->told[y - c->b->vars] = 1;
}

static void put_summary(FILE *out, const struct es_uefi_store *st,
			const struct es_uefi_var *v)
{
	char attrs[80];
	es_uefi_attr_str(v->attrs, attrs, sizeof attrs);
	fprintf(out, "%s, %" PRIu32 " byte%s", attrs, v->data_size, v->data_size == 1 ? "" : "s");
	if (st->auth && !es_allzero(v->time, 16)) {
		char t[48];
		es_uefi_time_str(v->time, t, sizeof t);
		fprintf(out, ", time %s", t);
	}
}

/* X live in the base, gone from the result: by a State change alone? */
static void uefi_deleted(struct uefi_cmp *c, const struct es_uefi_var *x)
{
	const struct es_uefi_var *y = rec_at(c->b, x->off);
	c->deleted++;
	fputs("deleted ", c->out);
	es_uefi_put_id(c->out, x);
	fputs(": ", c->out);
	put_summary(c->out, c->a, x);
	if (y && rec_compare(c->a, x, c->b, y) == REC_STATE) {
		fputs("; state only: ", c->out);
		put_state_change(c, x, y);
	}
	fputc('\n', c->out);
}

static void uefi_added(struct uefi_cmp *c, const struct es_uefi_var *y)
{
	const struct es_uefi_var *x = rec_at(c->a, y->off);
	c->added++;
	fputs("added   ", c->out);
	es_uefi_put_id(c->out, y);
	fputs(": ", c->out);
	put_summary(c->out, c->b, y);
	if (x && rec_compare(c->a, x, c->b, y) == REC_STATE) {
		fputs("; state only: ", c->out);
		put_state_change(c, x, y);
	}
	fputc('\n', c->out);
}

/* Data this short is shown in hex when it changes. */
#define SHOW_DATA 16

static void put_hex(FILE *out, const unsigned char *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		fprintf(out, "%02x", p[i]);
}

static void put_data_change(FILE *out, const struct es_uefi_var *x,
			    const struct es_uefi_var *y)
{
	if (x->data_size != y->data_size) {
		fprintf(out, "data %" PRIu32 " -> %" PRIu32 " bytes", x->data_size, y->data_size);
		return;
	}
	uint64_t n = 0;
	for (uint32_t i = 0; i < x->data_size; i++)
		n += x->data[i] != y->data[i];
	if (!n) {
		fprintf(out, "data unchanged (%" PRIu32 " bytes)", x->data_size);
		return;
	}
	fprintf(out, "data %" PRIu32 " bytes, %" PRIu64 " differ%s", x->data_size, n,
		n == 1 ? "s" : "");
	if (x->data_size > SHOW_DATA)
		return;
	fputs(": ", out);
	put_hex(out, x->data, x->data_size);
	fputs(" -> ", out);
	put_hex(out, y->data, y->data_size);
}

static void put_auth_change(FILE *out, const struct es_uefi_var *x,
			    const struct es_uefi_var *y)
{
	if (memcmp(x->time, y->time, 16) != 0) {
		char t1[48], t2[48];
		es_uefi_time_str(x->time, t1, sizeof t1);
		es_uefi_time_str(y->time, t2, sizeof t2);
		fprintf(out, "; time %s -> %s", t1, t2);
	}
	if (x->monotonic != y->monotonic)
		fprintf(out, "; monotonic count %" PRIu64 " -> %" PRIu64, x->monotonic,
			y->monotonic);
	if (x->pubkey_index != y->pubkey_index)
		fprintf(out, "; public key index %" PRIu32 " -> %" PRIu32, x->pubkey_index,
			y->pubkey_index);
}

static int var_same(const struct uefi_cmp *c, const struct es_uefi_var *x,
		    const struct es_uefi_var *y)
{
	if (x->attrs != y->attrs || x->data_size != y->data_size ||
	    memcmp(x->data, y->data, x->data_size) != 0)
		return 0;
	if (c->a->auth != c->b->auth)
		return 0;
	return !c->a->auth || (memcmp(x->time, y->time, 16) == 0 &&
			       x->monotonic == y->monotonic &&
			       x->pubkey_index == y->pubkey_index);
}

static void uefi_both(struct uefi_cmp *c, const struct es_uefi_var *x,
		      const struct es_uefi_var *y)
{
	if (var_same(c, x, y)) {
		c->unchanged++;
		return;
	}
	c->changed++;
	fputs("changed ", c->out);
	es_uefi_put_id(c->out, x);
	fputs(": ", c->out);
	put_data_change(c->out, x, y);
	if (x->attrs != y->attrs) {
		char a1[80], a2[80];
		es_uefi_attr_str(x->attrs, a1, sizeof a1);
		es_uefi_attr_str(y->attrs, a2, sizeof a2);
		fprintf(c->out, "; attributes %s -> %s", a1, a2);
	}
	if (c->a->auth && c->b->auth)
		put_auth_change(c->out, x, y);
	if (x->off != y->off)
		fprintf(c->out, "; record 0x%" PRIx64 " -> 0x%" PRIx64, x->off, y->off);
	fputc('\n', c->out);
}

static void uefi_vars(struct uefi_cmp *c)
{
	uint32_t na, nb, i = 0, j = 0;
	const struct es_uefi_var **la = live_list(c->a, &na), **lb = live_list(c->b, &nb);
	while (i < na || j < nb) {
		int k = i == na ? 1 : j == nb ? -1 : var_key_cmp(la[i], lb[j]);
		if (k < 0)
			uefi_deleted(c, la[i++]);
		else if (k > 0)
			uefi_added(c, lb[j++]);
		else
			uefi_both(c, la[i++], lb[j++]);
	}
	free(la);
	free(lb);
}

/* Records at the same place whose State alone changed, not yet shown; and
 * the counts of records alike, changed in State only, rewritten or new. */
static void uefi_records(struct uefi_cmp *c)
{
	uint32_t n[4] = {0, 0, 0, 0}; /* same, state only, rewritten, new */
	for (uint32_t i = 0; i < c->b->nvars; i++) {
		const struct es_uefi_var *y = &c->b->vars[i], *x = rec_at(c->a, y->off);
		enum rec_cmp r = x ? rec_compare(c->a, x, c->b, y) : REC_OTHER;
		n[x ? r : 3]++;
		if (r != REC_STATE || c->told[i])
			continue;
		fputs("state   ", c->out);
		es_uefi_put_id(c->out, y);
		fputs(": ", c->out);
		put_state_change(c, x, y);
		fputc('\n', c->out);
	}
	fprintf(c->out,
		"variables: %" PRIu32 " added, %" PRIu32 " deleted, %" PRIu32 " changed, %" PRIu32
		" unchanged; records: %" PRIu32 " -> %" PRIu32 ", %" PRIu32 " same, %" PRIu32
		" state only, %" PRIu32 " rewritten, %" PRIu32 " new\n",
		c->added, c->deleted, c->changed, c->unchanged, c->a->nvars, c->b->nvars, n[0],
		n[1], n[2], n[3]);
}

static void uefi_header_line(FILE *out, const char *side, const struct es_uefi_store *st)
{
	uint32_t live = 0;
	for (uint32_t i = 0; i < st->nvars; i++)
		live += es_uefi_live(st->vars[i].state);
	fprintf(out, "%s %s: firmware volume of %" PRIu64 " bytes", side, st->file,
		st->fv_length);
	if (st->map_runs == 1)
		fprintf(out, " (%" PRIu32 " blocks of %" PRIu32 ")", st->nblocks, st->block_len);
	fprintf(out, ", %s variable store at 0x%" PRIx64 " of %" PRIu64 " bytes: %" PRIu32
		" records, %" PRIu32 " live, %" PRIu64 " bytes free\n",
		st->auth ? "authenticated" : "plain", st->store_off,
		st->store_end - st->store_off, st->nvars, live, st->store_end - st->vars_end);
}

/* Differing bytes that no record accounts for, when both files share one
 * layout: headers, and everything after the store. */
static void uefi_other_bytes(FILE *out, const struct blob *ba, const struct blob *bb,
			     const struct es_uefi_store *a, const struct es_uefi_store *b)
{
	if (ba->len != bb->len || a->fv_length != b->fv_length ||
	    a->store_off != b->store_off || a->store_end != b->store_end) {
		fputs("layout: the volumes differ in size or layout\n", out);
		return;
	}
	uint64_t fv = count_diff(ba->buf, bb->buf, 0, a->hdr_len);
	uint64_t sh = count_diff(ba->buf, bb->buf, a->store_off, a->vars_off);
	uint64_t after = count_diff(ba->buf, bb->buf, a->store_end, a->fv_length);
	uint64_t beyond = count_diff(ba->buf, bb->buf, a->fv_length, ba->len);
	if (fv + sh + after + beyond == 0)
		return;
	fprintf(out, "outside the records: %" PRIu64 " bytes differ in the firmware volume "
		"header, %" PRIu64 " in the variable store header, %" PRIu64
		" after the variable store, %" PRIu64 " after the firmware volume\n",
		fv, sh, after, beyond);
}

static int explain_uefi(const struct blob *ba, const struct blob *bb, FILE *out)
{
	struct es_uefi_store a, b;
	if (es_uefi_parse(&a, ba->name, ba->buf, ba->len) < 0)
		return ES_TROUBLE;
	if (es_uefi_parse(&b, bb->name, bb->buf, bb->len) < 0) {
		es_uefi_free(&a);
		return ES_TROUBLE;
	}
	struct uefi_cmp c = {out, &a, &b, es_calloc(b.nvars, 1), 0, 0, 0, 0};
	uefi_header_line(out, "base", &a);
	uefi_header_line(out, "result", &b);
	uefi_vars(&c);
	uefi_records(&c);
	uefi_other_bytes(out, ba, bb, &a, &b);
	put_bytes_line(out, ba, bb);
	free(c.told);
	es_uefi_free(&a);
	es_uefi_free(&b);
	return same_bytes(ba, bb) ? ES_OK : ES_DIFFERENT;
}

/* ---- U-Boot ---- */

static int uvar_cmp(const struct es_uboot_var *x, const struct es_uboot_var *y)
{
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);
	if (c)
		return c;
	return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

static void uboot_put_var(FILE *out, const char *what, const struct es_uboot_var *v)
{
	fputs(what, out);
	es_uboot_put_name(out, v->name, v->name_len);
	fputc('=', out);
	es_uboot_put_quoted(out, v->value, v->value_len);
	fputc('\n', out);
}

static void uboot_header_line(FILE *out, const char *side, const struct es_uboot_env *e)
{
	size_t hdr = e->layout == ES_UBOOT_SINGLE ? 4 : 5;
	fprintf(out, "%s %s: U-Boot environment, ", side, e->file);
	if (e->layout == ES_UBOOT_SINGLE)
		fprintf(out, "single copy of %zu bytes", e->copy_size);
	else if (e->layout == ES_UBOOT_REDUNDANT)
		fprintf(out, "redundant copy of %zu bytes, flags %u", e->copy_size, e->flags[0]);
	else if (e->valid[0] && e->valid[1])
		fprintf(out, "redundant pair of 2 x %zu bytes, copy %d active (flags %u; copy %d "
			"flags %u)", e->copy_size, e->active + 1, e->flags[e->active],
			2 - e->active, e->flags[!e->active]);
	else
		fprintf(out, "redundant pair of 2 x %zu bytes, copy %d active (flags %u; copy %d "
			"has a bad CRC32, ignored)", e->copy_size, e->active + 1,
			e->flags[e->active], 2 - e->active);
	fprintf(out, ", CRC32 %08" PRIx32 ", %zu variables, %" PRIu64 " of %zu data bytes used\n",
		e->crc, e->nvars, e->used, e->copy_size - hdr);
}

static void uboot_vars(FILE *out, const struct es_uboot_env *a, const struct es_uboot_env *b)
{
	size_t i = 0, j = 0, n[4] = {0, 0, 0, 0}; /* added, removed, changed, unchanged */
	while (i < a->nvars || j < b->nvars) {
		const struct es_uboot_var *x = i < a->nvars ? &a->vars[i] : NULL;
		const struct es_uboot_var *y = j < b->nvars ? &b->vars[j] : NULL;
		/* decided on the indices, not on x and y, so the analyzers see that
		 * the side printed is never the missing one */
		int k = i >= a->nvars ? 1 : j >= b->nvars ? -1 : uvar_cmp(x, y);
		if (k < 0) {
			uboot_put_var(out, "removed ", x);
			n[1]++, i++;
		} else if (k > 0) {
			uboot_put_var(out, "added   ", y);
			n[0]++, j++;
		} else if (x->value_len == y->value_len &&
			   memcmp(x->value, y->value, x->value_len) == 0) {
			n[3]++, i++, j++;
		} else {
			fputs("changed ", out);
			es_uboot_put_name(out, x->name, x->name_len);
			fputs(": ", out);
			es_uboot_put_quoted(out, x->value, x->value_len);
			fputs(" -> ", out);
			es_uboot_put_quoted(out, y->value, y->value_len);
			fputc('\n', out);
			n[2]++, i++, j++;
		}
	}
	fprintf(out, "variables: %zu added, %zu removed, %zu changed, %zu unchanged\n", n[0],
		n[1], n[2], n[3]);
}

static int explain_uboot(const struct blob *ba, const struct blob *bb, FILE *out)
{
	struct es_uboot_env a, b;
	if (es_uboot_parse(&a, ba->name, ba->buf, ba->len) < 0)
		return ES_TROUBLE;
	if (es_uboot_parse(&b, bb->name, bb->buf, bb->len) < 0) {
		es_uboot_free(&a);
		return ES_TROUBLE;
	}
	uboot_header_line(out, "base", &a);
	uboot_header_line(out, "result", &b);
	uboot_vars(out, &a, &b);
	put_bytes_line(out, ba, bb);
	es_uboot_free(&a);
	es_uboot_free(&b);
	return same_bytes(ba, bb) ? ES_OK : ES_DIFFERENT;
}

/* ---- the format, and the whole run ---- */

static int detect(const struct blob *a, const struct blob *b, enum es_explain_format *f)
{
	if (es_uefi_is_fv(a->buf, a->len) || es_uefi_is_fv(b->buf, b->len))
		*f = ES_EXPLAIN_UEFI;
	else if (es_uboot_probe(a->buf, a->len) || es_uboot_probe(b->buf, b->len))
		*f = ES_EXPLAIN_UBOOT;
	else {
		es_err("%s, %s: unknown format: no UEFI firmware volume (\"_FVH\" at byte 0x%x) "
		       "and no U-Boot environment with a good CRC32; try --explain=uefi or "
		       "--explain=uboot", a->name, b->name, ES_FV_SIG_OFF);
		return -1;
	}
	return 0;
}

int es_explain(const char *base, const char *result, enum es_explain_format fmt,
	       FILE *out)
{
	struct blob a, b;
	int rc = ES_TROUBLE;
	if (load(base, &a) < 0) {
		free(a.buf);
		return ES_TROUBLE;
	}
	if (load(result, &b) < 0)
		goto done;
	if (fmt == ES_EXPLAIN_AUTO && detect(&a, &b, &fmt) < 0)
		goto done;
	rc = fmt == ES_EXPLAIN_UEFI ? explain_uefi(&a, &b, out) : explain_uboot(&a, &b, out);
done:
	free(a.buf);
	free(b.buf);
	return rc;
}
