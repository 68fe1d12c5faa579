/* uboot.h: U-Boot environments as mkenvimage, fw_setenv and U-Boot itself
 * write them: a CRC32, a flags byte when redundant, then name=value strings. */
#ifndef ENVSYNC_UBOOT_H
#define ENVSYNC_UBOOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum es_uboot_layout {
	ES_UBOOT_SINGLE,    /* the file is one copy: CRC32, data */
	ES_UBOOT_REDUNDANT, /* the file is one copy of a redundant pair: CRC32, flags, data */
	ES_UBOOT_PAIR,      /* the file holds both copies of a redundant pair, one per half */
};

struct es_uboot_var {
	const unsigned char *name, *value; /* into the parsed buffer, not terminated */
	size_t name_len, value_len;
	uint64_t off; /* where "name=value" starts in the file */
};

struct es_uboot_env {
	const char *file;
	enum es_uboot_layout layout;
	size_t copy_size;     /* bytes of one copy (the whole file but for a pair) */
	int active;           /* the copy in use: 0 or 1 (1 only for a pair) */
	int valid[2];         /* which copies have a good CRC32 (pair) */
	uint8_t flags[2];     /* flags bytes (redundant layouts) */
	uint32_t crc;         /* of the active copy */
	uint64_t used;        /* data bytes up to and including the end marker */
	struct es_uboot_var *vars; /* sorted by name; the later of duplicates kept */
	size_t nvars, cap;
};

/* Does some layout of BUF have a good CRC32? */
int es_uboot_probe(const unsigned char *buf, size_t len);

/* Find the layout (single, redundant copy, redundant pair) whose CRC32 holds,
 * pick the active copy and parse its variables. On a bad CRC32 or damaged
 * data, record where and why (naming FILE) and return -1. */
int es_uboot_parse(struct es_uboot_env *e, const char *file,
		   const unsigned char *buf, size_t len);
void es_uboot_free(struct es_uboot_env *e);

/* Print N bytes quoted: printable ASCII as is, '"' and '\' escaped, every
 * other byte as \xNN. */
void es_uboot_put_quoted(FILE *f, const unsigned char *p, size_t n);
/* Print N bytes of a name: like es_uboot_put_quoted, without the quotes. */
void es_uboot_put_name(FILE *f, const unsigned char *p, size_t n);

#endif
