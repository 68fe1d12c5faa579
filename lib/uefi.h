/* uefi.h: UEFI variable stores as edk2 keeps them in flash (OVMF_VARS*.fd):
 * the firmware volume header, the variable store header and its records. */
#ifndef ENVSYNC_UEFI_H
#define ENVSYNC_UEFI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ES_FV_SIG_OFF 0x28 /* where "_FVH" sits in a firmware volume header */

/* A record's State byte: flash bits only clear, one step at a time. */
#define ES_VAR_HEADER_VALID_ONLY 0x7f
#define ES_VAR_ADDED 0x3f
#define ES_VAR_IN_DELETED_TRANSITION 0xfe /* ANDed in */
#define ES_VAR_DELETED 0xfd               /* ANDed in */

/* One variable record. Pointers point into the parsed buffer. */
struct es_uefi_var {
	uint32_t index;           /* record number in the store, from 0 */
	uint64_t off;             /* where the record's header starts */
	uint32_t hdr_size;        /* 32 (plain) or 60 (authenticated) */
	uint8_t state;
	uint32_t attrs;
	uint64_t monotonic;       /* authenticated stores only */
	const unsigned char *time; /* EFI_TIME, 16 bytes; NULL in plain stores */
	uint32_t pubkey_index;
	const unsigned char *guid; /* 16 bytes */
	const unsigned char *name; /* UCS-2LE, name_size bytes, ending in 0 */
	uint32_t name_size;
	const unsigned char *data;
	uint32_t data_size;
};

struct es_uefi_store {
	const char *file;
	const unsigned char *buf;
	size_t len;
	uint64_t fv_length;
	uint16_t hdr_len;
	uint32_t map_runs;            /* block map entries before the terminator */
	uint32_t nblocks, block_len;  /* of the first run */
	int auth;                     /* authenticated variable store */
	uint64_t store_off, store_end; /* the store, header included */
	uint64_t vars_off, vars_end;  /* the records: first byte, end of the last */
	struct es_uefi_var *vars;     /* in store order */
	uint32_t nvars, cap;
};

/* Does BUF look like a firmware volume ("_FVH" at 0x28)? */
int es_uefi_is_fv(const unsigned char *buf, size_t len);

/* Parse and check a whole store; on damage record where and why (naming
 * FILE) and return -1. ST points into BUF, which must outlive it. */
int es_uefi_parse(struct es_uefi_store *st, const char *file,
		  const unsigned char *buf, size_t len);
void es_uefi_free(struct es_uefi_store *st);

/* Is a record in this state the variable's current value (edk2's rule)? */
int es_uefi_live(uint8_t state);
/* "added", "in deleted transition", "deleted", "header valid only", ... */
const char *es_uefi_state_name(uint8_t state);
/* "NV,BS,RT,AT" (unknown bits as 0x...); "none" for 0. */
void es_uefi_attr_str(uint32_t attrs, char *out, size_t n);
/* The registry form of a GUID, 36 characters. */
void es_uefi_guid_str(const unsigned char *g, char out[37]);
/* "2025-03-10 02:53:39" (nanoseconds when not 0); "none" when all zero. */
void es_uefi_time_str(const unsigned char *t, char *out, size_t n);
/* Print NAME-GUID (efivarfs style), the name as UTF-8, control characters
 * and unpaired surrogates as \uXXXX. */
void es_uefi_put_id(FILE *f, const struct es_uefi_var *v);

#endif
