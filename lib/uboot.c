/* uboot.c: finding, checking and parsing U-Boot environments (single,
 * redundant copy, redundant pair), bounds-checked against the bytes read. */
#include "config.h"
#include "uboot.h"
#include "util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define HDR_SINGLE 4    /* CRC32 */
#define HDR_REDUNDANT 5 /* CRC32, flags */
#define MIN_COPY 8

static uint32_t data_crc(const unsigned char *copy, size_t size, size_t hdr)
{
	return (uint32_t)crc32(0, copy + hdr, (uInt)(size - hdr));
}

/* Is COPY (SIZE bytes, HDR bytes of header) sealed by its CRC32? */
static int copy_ok(const unsigned char *copy, size_t size, size_t hdr)
{
	return size >= MIN_COPY && data_crc(copy, size, hdr) == get32(copy);
}

/* U-Boot's rule for two good copies: the higher flags byte wins, except
 * that 0 follows 255; on a tie, the first. */
static int newer_copy(uint8_t f0, uint8_t f1)
{
	if (f0 == 255 && f1 == 0)
		return 1;
	if (f1 == 255 && f0 == 0)
		return 0;
	return f1 > f0;
}

static int find_pair(struct es_uboot_env *e, const unsigned char *buf, size_t len)
{
	size_t half = len / 2;
	if (len % 2 || half < MIN_COPY)
		return -1;
	e->valid[0] = copy_ok(buf, half, HDR_REDUNDANT);
	e->valid[1] = copy_ok(buf + half, half, HDR_REDUNDANT);
	if (!e->valid[0] && !e->valid[1])
		return -1;
	e->layout = ES_UBOOT_PAIR;
	e->copy_size = half;
	e->flags[0] = buf[4];
	e->flags[1] = buf[half + 4];
	e->active = !e->valid[0] || (e->valid[1] && newer_copy(e->flags[0], e->flags[1]));
	return 0;
}

static int bad_crc(const struct es_uboot_env *e, const unsigned char *buf, size_t len)
{
	if (len < MIN_COPY) {
		es_err("%s: %zu bytes: too short for a U-Boot environment", e->file, len);
		return -1;
	}
	es_err("%s: byte 0: bad CRC32: stored %08" PRIx32 ", computed %08" PRIx32
	       " over bytes 4-%zu (single copy), %08" PRIx32
	       " over bytes 5-%zu (redundant copy)%s", e->file, get32(buf),
	       data_crc(buf, len, HDR_SINGLE), len - 1, data_crc(buf, len, HDR_REDUNDANT),
	       len - 1, len % 2 || len / 2 < MIN_COPY ? "" : "; no half is a valid redundant copy");
	return -1;
}

static int find_layout(struct es_uboot_env *e, const unsigned char *buf, size_t len)
{
	e->copy_size = len;
	e->valid[0] = 1;
	if (copy_ok(buf, len, HDR_SINGLE)) {
		e->layout = ES_UBOOT_SINGLE;
		return 0;
	}
	if (copy_ok(buf, len, HDR_REDUNDANT)) {
		e->layout = ES_UBOOT_REDUNDANT;
		e->flags[0] = buf[4];
		return 0;
	}
	if (find_pair(e, buf, len) == 0)
		return 0;
	return bad_crc(e, buf, len);
}

int es_uboot_probe(const unsigned char *buf, size_t len)
{
	struct es_uboot_env e = {0};
	return copy_ok(buf, len, HDR_SINGLE) || copy_ok(buf, len, HDR_REDUNDANT) ||
	       find_pair(&e, buf, len) == 0;
}

static void push_var(struct es_uboot_env *e, const struct es_uboot_var *v)
{
	if (e->nvars == e->cap) {
		e->cap = e->cap ? 2 * e->cap : 64;
		struct es_uboot_var *n = es_calloc(e->cap, sizeof *n);
		if (e->nvars)
			memcpy(n, e->vars, e->nvars * sizeof *n);
		free(e->vars);
		e->vars = n;
	}
	e->vars[e->nvars++] = *v;
}

/* One "name=value" string at D[P], N data bytes in all; FOFF is D's offset
 * in the file. Returns the string's length or -1. */
static long parse_string(struct es_uboot_env *e, const unsigned char *d, size_t n,
			 size_t p, uint64_t foff)
{
	const unsigned char *end = memchr(d + p, 0, n - p);
	if (!end) {
		es_err("%s: byte %" PRIu64 ": variable runs past the end of the environment "
		       "(no terminating 0 byte; the end marker is missing)", e->file, foff + p);
		return -1;
	}
	size_t len = (size_t)(end - (d + p));
	const unsigned char *eq = memchr(d + p, '=', len);
	if (!eq || eq == d + p) {
		es_err("%s: byte %" PRIu64 ": a %zu-byte string that is not name=value (%s)",
		       e->file, foff + p, len, eq ? "empty name" : "no '='");
		return -1;
	}
	struct es_uboot_var v = {d + p, eq + 1, (size_t)(eq - (d + p)),
				 len - (size_t)(eq - (d + p)) - 1, foff + p};
	push_var(e, &v);
	return (long)len;
}

static int parse_data(struct es_uboot_env *e, const unsigned char *d, size_t n,
		      uint64_t foff)
{
	size_t p = 0;
	while (p < n && d[p] != 0) {
		long len = parse_string(e, d, n, p, foff);
		if (len < 0)
			return -1;
		p += (size_t)len + 1;
	}
	if (p >= n) {
		es_err("%s: byte %" PRIu64 ": no end marker (an empty string) before the end "
		       "of the environment", e->file, foff + n);
		return -1;
	}
	e->used = p + 1;
	return 0;
}

static int cmp_var(const void *a, const void *b)
{
	const struct es_uboot_var *x = a, *y = b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);
	if (c)
		return c;
	if (x->name_len != y->name_len)
		return x->name_len < y->name_len ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int same_name(const struct es_uboot_var *x, const struct es_uboot_var *y)
{
	return x->name_len == y->name_len && memcmp(x->name, y->name, x->name_len) == 0;
}

/* Sort by name; of a name set twice, keep the later setting, as U-Boot does. */
static void sort_vars(struct es_uboot_env *e)
{
	size_t k = 0;
	if (e->nvars)
		qsort(e->vars, e->nvars, sizeof *e->vars, cmp_var);
	for (size_t i = 0; i < e->nvars; i++) {
		if (k && same_name(&e->vars[k - 1], &e->vars[i]))
			k--;
		e->vars[k++] = e->vars[i];
	}
	e->nvars = k;
}

int es_uboot_parse(struct es_uboot_env *e, const char *file,
		   const unsigned char *buf, size_t len)
{
	memset(e, 0, sizeof *e);
	e->file = file;
	if (find_layout(e, buf, len) < 0)
		return -1;
	size_t hdr = e->layout == ES_UBOOT_SINGLE ? HDR_SINGLE : HDR_REDUNDANT;
	uint64_t copy_off = (uint64_t)e->active * e->copy_size;
	const unsigned char *copy = buf + copy_off;
	e->crc = get32(copy);
	if (parse_data(e, copy + hdr, e->copy_size - hdr, copy_off + hdr) < 0) {
		es_uboot_free(e);
		return -1;
	}
	sort_vars(e);
	return 0;
}

void es_uboot_free(struct es_uboot_env *e)
{
	free(e->vars);
	e->vars = NULL;
	e->nvars = e->cap = 0;
}

void es_uboot_put_name(FILE *f, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"' || p[i] == '\\')
			fprintf(f, "\\%c", p[i]);
		else if (p[i] >= 0x20 && p[i] < 0x7f)
			fputc(p[i], f);
		else
			fprintf(f, "\\x%02x", p[i]);
	}
}

void es_uboot_put_quoted(FILE *f, const unsigned char *p, size_t n)
{
	fputc('"', f);
	es_uboot_put_name(f, p, n);
	fputc('"', f);
}
