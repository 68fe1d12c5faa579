/* uefi.c: parsing and checking edk2 UEFI variable stores; every field is
 * checked against the bytes really read before it is used. */
#include "config.h"
#include "uefi.h"
#include "util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FV_FIXED 56      /* firmware volume header up to its block map */
#define FV_MIN_HDR 72    /* ... plus one block run and the terminator */
#define STORE_HDR 28
#define VAR_HDR_PLAIN 32
#define VAR_HDR_AUTH 60
#define VAR_START_ID 0x55aa
#define STORE_FORMATTED 0x5a
#define STORE_HEALTHY 0xfe

/* The variable store signatures, as the GUIDs are laid out in memory. */
static const unsigned char guid_auth[16] = {0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94,
					    0x9a, 0x43, 0xa1, 0x80, 0x2e, 0x14,
					    0x4e, 0xc3, 0x77, 0x92};
static const unsigned char guid_plain[16] = {0x16, 0x36, 0xcf, 0xdd, 0x75, 0x32,
					     0x64, 0x41, 0x98, 0xb6, 0xfe, 0x85,
					     0x70, 0x7f, 0xfe, 0x7d};

static uint64_t align4(uint64_t x)
{
	return (x + 3) & ~(uint64_t)3;
}

int es_uefi_is_fv(const unsigned char *buf, size_t len)
{
	return len >= ES_FV_SIG_OFF + 4 && memcmp(buf + ES_FV_SIG_OFF, "_FVH", 4) == 0;
}

static int fv_sizes(struct es_uefi_store *st)
{
	const unsigned char *b = st->buf;
	st->fv_length = get64(b + 0x20);
	st->hdr_len = get16(b + 0x30);
	if (st->fv_length > st->len) {
		es_err("%s: byte 0x20: firmware volume length %" PRIu64
		       " but the file has %zu bytes (truncated?)",
		       st->file, st->fv_length, st->len);
		return -1;
	}
	if (st->hdr_len < FV_MIN_HDR || st->hdr_len % 2 || st->hdr_len > st->fv_length) {
		es_err("%s: byte 0x30: firmware volume header length %u is not an even "
		       "number from %d to the volume length %" PRIu64,
		       st->file, st->hdr_len, FV_MIN_HDR, st->fv_length);
		return -1;
	}
	return 0;
}

static int fv_checksum(const struct es_uefi_store *st)
{
	uint16_t sum = 0;
	for (unsigned i = 0; i < st->hdr_len; i += 2)
		sum = (uint16_t)(sum + get16(st->buf + i));
	if (sum != 0) {
		es_err("%s: byte 0x32: firmware volume header checksum fails "
		       "(the %u header bytes sum to 0x%04x, not 0)",
		       st->file, st->hdr_len, sum);
		return -1;
	}
	return 0;
}

/* Block map: {NumBlocks, Length} runs from byte 56, ended by {0, 0} inside
 * the header, covering exactly the volume. */
static int fv_block_map(struct es_uefi_store *st)
{
	uint64_t covered = 0;
	unsigned off;
	for (off = FV_FIXED; off + 8 <= st->hdr_len; off += 8) {
		uint32_t n = get32(st->buf + off), len = get32(st->buf + off + 4);
		if (n == 0 && len == 0)
			break;
		if (n == 0 || len == 0) {
			es_err("%s: byte 0x%x: block map run of %" PRIu32 " blocks of %" PRIu32
			       " bytes", st->file, off, n, len);
			return -1;
		}
		if (st->map_runs++ == 0) {
			st->nblocks = n;
			st->block_len = len;
		}
		covered += (uint64_t)n * len;
	}
	if (off + 8 > st->hdr_len || st->map_runs == 0) {
		es_err("%s: byte 0x%x: block map %s", st->file, off,
		       st->map_runs ? "has no terminating {0, 0} run inside the header"
				    : "is empty");
		return -1;
	}
	if (covered != st->fv_length) {
		es_err("%s: byte 0x%x: block map covers %" PRIu64
		       " bytes but the volume has %" PRIu64, st->file, FV_FIXED, covered,
		       st->fv_length);
		return -1;
	}
	return 0;
}

static int fv_header(struct es_uefi_store *st)
{
	if (!es_uefi_is_fv(st->buf, st->len)) {
		es_err("%s: byte 0x%x: no firmware volume signature \"_FVH\" "
		       "(not a UEFI variable store)", st->file, ES_FV_SIG_OFF);
		return -1;
	}
	if (st->len < FV_MIN_HDR) {
		es_err("%s: byte 0x%zx: truncated firmware volume header (%zu of at least %d bytes)",
		       st->file, st->len, st->len, FV_MIN_HDR);
		return -1;
	}
	if (fv_sizes(st) < 0 || fv_checksum(st) < 0)
		return -1;
	return fv_block_map(st);
}

static int store_header(struct es_uefi_store *st)
{
	uint64_t off = st->hdr_len;
	const unsigned char *h = st->buf + off;
	if (off + STORE_HDR > st->fv_length) {
		es_err("%s: byte 0x%" PRIx64 ": the variable store header (%d bytes) runs "
		       "past the end of the firmware volume", st->file, off, STORE_HDR);
		return -1;
	}
	st->auth = memcmp(h, guid_auth, 16) == 0;
	if (!st->auth && memcmp(h, guid_plain, 16) != 0) {
		char g[37];
		es_uefi_guid_str(h, g);
		es_err("%s: byte 0x%" PRIx64 ": not a variable store: signature %s",
		       st->file, off, g);
		return -1;
	}
	uint32_t size = get32(h + 16);
	if (size < STORE_HDR || off + size > st->fv_length) {
		es_err("%s: byte 0x%" PRIx64 ": variable store size %" PRIu32
		       " does not fit the firmware volume (%" PRIu64 " bytes from byte 0x%"
		       PRIx64 ")", st->file, off + 16, size, st->fv_length - off, off);
		return -1;
	}
	if (h[20] != STORE_FORMATTED || h[21] != STORE_HEALTHY) {
		es_err("%s: byte 0x%" PRIx64 ": variable store is not formatted and healthy "
		       "(format 0x%02x, state 0x%02x; expected 0x%02x, 0x%02x)",
		       st->file, off + 20, h[20], h[21], STORE_FORMATTED, STORE_HEALTHY);
		return -1;
	}
	st->store_off = off;
	st->store_end = off + size;
	st->vars_off = align4(off + STORE_HDR);
	return 0;
}

/* The fields of the header at V->off, known to lie inside the store. */
static void read_var_header(const struct es_uefi_store *st, struct es_uefi_var *v)
{
	const unsigned char *h = st->buf + v->off;
	v->state = h[2];
	v->attrs = get32(h + 4);
	if (st->auth) {
		v->monotonic = get64(h + 8);
		v->time = h + 16;
		v->pubkey_index = get32(h + 32);
		v->name_size = get32(h + 36);
		v->data_size = get32(h + 40);
		v->guid = h + 44;
	} else {
		v->name_size = get32(h + 8);
		v->data_size = get32(h + 12);
		v->guid = h + 16;
	}
}

static int var_err_name(const struct es_uefi_store *st, const struct es_uefi_var *v,
			const char *why)
{
	es_err("%s: record %" PRIu32 " at byte 0x%" PRIx64 ": NameSize %" PRIu32 ": %s",
	       st->file, v->index, v->off, v->name_size, why);
	return -1;
}

/* The name: UCS-2, not empty, one terminating 0 and no other. */
static int check_name(const struct es_uefi_store *st, const struct es_uefi_var *v)
{
	uint32_t units = v->name_size / 2;
	if (v->name_size % 2)
		return var_err_name(st, v, "odd size for a UCS-2 name");
	if (units < 2)
		return var_err_name(st, v, "empty name");
	if (get16(v->name + v->name_size - 2) != 0)
		return var_err_name(st, v, "name does not end in a 0 character");
	for (uint32_t i = 0; i + 1 < units; i++)
		if (get16(v->name + 2 * i) == 0)
			return var_err_name(st, v, "0 character inside the name");
	return 0;
}

/* Parse the record at V->off (StartId already seen): bounds first. */
static int parse_var(const struct es_uefi_store *st, struct es_uefi_var *v)
{
	uint64_t end = st->store_end;
	v->hdr_size = st->auth ? VAR_HDR_AUTH : VAR_HDR_PLAIN;
	if (v->off + v->hdr_size > end) {
		es_err("%s: record %" PRIu32 " at byte 0x%" PRIx64 ": its %" PRIu32
		       "-byte header runs past the end of the variable store at byte 0x%"
		       PRIx64, st->file, v->index, v->off, v->hdr_size, end);
		return -1;
	}
	read_var_header(st, v);
	uint64_t name_off = v->off + v->hdr_size;
	if (name_off + v->name_size > end) {
		es_err("%s: record %" PRIu32 " at byte 0x%" PRIx64 ": NameSize %" PRIu32
		       " runs past the end of the variable store at byte 0x%" PRIx64,
		       st->file, v->index, v->off, v->name_size, end);
		return -1;
	}
	if (name_off + v->name_size + v->data_size > end) {
		es_err("%s: record %" PRIu32 " at byte 0x%" PRIx64 ": DataSize %" PRIu32
		       " runs past the end of the variable store at byte 0x%" PRIx64,
		       st->file, v->index, v->off, v->data_size, end);
		return -1;
	}
	v->name = st->buf + name_off;
	v->data = v->name + v->name_size;
	return check_name(st, v);
}

static void push_var(struct es_uefi_store *st, const struct es_uefi_var *v)
{
	if (st->nvars == st->cap) {
		st->cap = st->cap ? 2 * st->cap : 64;
		struct es_uefi_var *n = es_calloc(st->cap, sizeof *n);
		if (st->nvars)
			memcpy(n, st->vars, st->nvars * sizeof *n);
		free(st->vars);
		st->vars = n;
	}
	st->vars[st->nvars++] = *v;
}

/* After the last record the store must be erased (0xff) to its end: else a
 * size field before lied, or the store is damaged. */
static int check_free(const struct es_uefi_store *st, uint64_t off)
{
	for (uint64_t i = off; i < st->store_end; i++) {
		if (st->buf[i] == 0xff)
			continue;
		if (i == off && off + 2 <= st->store_end)
			es_err("%s: byte 0x%" PRIx64 ": after record %" PRIu32
			       " neither a variable header (StartId 0x%04x, not 0x%04x) nor "
			       "erased free space: a size before it is wrong or the store is damaged",
			       st->file, off, st->nvars ? st->nvars - 1 : 0, get16(st->buf + off),
			       VAR_START_ID);
		else
			es_err("%s: byte 0x%" PRIx64 ": free space after the last variable is not "
			       "erased (0x%02x, not 0xff)", st->file, i, st->buf[i]);
		return -1;
	}
	return 0;
}

static int walk_vars(struct es_uefi_store *st)
{
	uint64_t off = st->vars_off;
	while (off + 2 <= st->store_end && get16(st->buf + off) == VAR_START_ID) {
		struct es_uefi_var v = {0};
		v.index = st->nvars;
		v.off = off;
		if (parse_var(st, &v) < 0)
			return -1;
		push_var(st, &v);
		st->vars_end = off + v.hdr_size + v.name_size + v.data_size;
		off = align4(st->vars_end);
	}
	if (st->nvars == 0)
		st->vars_end = st->vars_off;
	return check_free(st, off < st->store_end ? off : st->store_end);
}

int es_uefi_parse(struct es_uefi_store *st, const char *file,
		  const unsigned char *buf, size_t len)
{
	memset(st, 0, sizeof *st);
	st->file = file;
	st->buf = buf;
	st->len = len;
	if (fv_header(st) < 0 || store_header(st) < 0 || walk_vars(st) < 0) {
		es_uefi_free(st);
		return -1;
	}
	return 0;
}

void es_uefi_free(struct es_uefi_store *st)
{
	free(st->vars);
	st->vars = NULL;
	st->nvars = st->cap = 0;
}

int es_uefi_live(uint8_t state)
{
	return state == ES_VAR_ADDED ||
	       state == (ES_VAR_ADDED & ES_VAR_IN_DELETED_TRANSITION);
}

const char *es_uefi_state_name(uint8_t s)
{
	if (s & 0x80)
		return "header not valid";
	if (s & 0x40)
		return "header valid only";
	if (!(s & 0x02))
		return "deleted";
	if (!(s & 0x01))
		return "in deleted transition";
	return "added";
}

void es_uefi_attr_str(uint32_t attrs, char *out, size_t n)
{
	static const char *const bit[] = {"NV", "BS", "RT", "HR", "AW", "AT", "AP", "EA"};
	size_t len = 0;
	out[0] = 0;
	for (unsigned i = 0; i < 8; i++)
		if (attrs & (1u << i) && len < n)
			len += (size_t)snprintf(out + len, n - len, "%s%s", len ? "," : "", bit[i]);
	/* the last field: nothing follows, so its length is not added to len */
	if (attrs >> 8 && len < n)
		snprintf(out + len, n - len, "%s0x%" PRIx32, len ? "," : "",
			 attrs & ~(uint32_t)0xff);
	if (!attrs)
		snprintf(out, n, "none");
}

void es_uefi_guid_str(const unsigned char *g, char out[37])
{
	snprintf(out, 37, "%08" PRIx32 "-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 get32(g), get16(g + 4), get16(g + 6), g[8], g[9], g[10], g[11], g[12],
		 g[13], g[14], g[15]);
}

void es_uefi_time_str(const unsigned char *t, char *out, size_t n)
{
	uint32_t ns = get32(t + 8);
	if (es_allzero(t, 16)) {
		snprintf(out, n, "none");
		return;
	}
	int len = snprintf(out, n, "%04u-%02u-%02u %02u:%02u:%02u", get16(t), t[2], t[3],
			   t[4], t[5], t[6]);
	if (ns && len > 0 && (size_t)len < n)
		snprintf(out + len, n - (size_t)len, ".%09" PRIu32, ns);
}

static void put_utf8(FILE *f, unsigned c)
{
	if (c < 0x20 || c == 0x7f || (c >= 0xd800 && c < 0xe000))
		fprintf(f, "\\u%04x", c);
	else if (c < 0x80)
		fputc((int)c, f);
	else if (c < 0x800)
		fprintf(f, "%c%c", 0xc0 | c >> 6, 0x80 | (c & 0x3f));
	else
		fprintf(f, "%c%c%c", 0xe0 | c >> 12, 0x80 | (c >> 6 & 0x3f), 0x80 | (c & 0x3f));
}

void es_uefi_put_id(FILE *f, const struct es_uefi_var *v)
{
	char g[37];
	uint32_t units = v->name_size / 2;
	for (uint32_t i = 0; i + 1 < units; i++) {
		unsigned c = get16(v->name + 2 * i);
		unsigned lo = i + 2 < units ? get16(v->name + 2 * i + 2) : 0;
		if (c >= 0xd800 && c < 0xdc00 && lo >= 0xdc00 && lo < 0xe000) {
			unsigned cp = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
			fprintf(f, "%c%c%c%c", 0xf0 | cp >> 18, 0x80 | (cp >> 12 & 0x3f),
				0x80 | (cp >> 6 & 0x3f), 0x80 | (cp & 0x3f));
			i++;
			continue;
		}
		put_utf8(f, c);
	}
	es_uefi_guid_str(v->guid, g);
	fprintf(f, "-%s", g);
}
