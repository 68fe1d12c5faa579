/* image.h: the env image (revision + ordered named items), and a raw file or
 * block device standing for a one-item image. Layout: envsync(5). */
#ifndef ENVSYNC_IMAGE_H
#define ENVSYNC_IMAGE_H

#include <stdint.h>
#include "io.h"

#define ES_IMG_MAGIC "ENVIMAGE"
#define ES_IMG_VERSION 1
#define ES_IMG_HDR 32
#define ES_IMG_DIRENT 80
#define ES_NAME_MAX 64
#define ES_MAX_ITEMS 65536
#define ES_RAW_NAME "raw"

struct es_item {
	char name[ES_NAME_MAX + 1];
	uint64_t size;
	uint32_t crc;
	int crc_known;   /* 0 for a raw input until it has been read */
	uint64_t off;    /* where the item's bytes start in the file */
};

enum es_env_mode { ES_ENV_AUTO, ES_ENV_IMAGE, ES_ENV_RAW };

struct es_env {
	struct es_in in;
	int is_image;
	uint64_t rev;
	uint32_t hdr_crc;  /* an image's header + directory CRC32 */
	uint32_t nitems;
	struct es_item *items;
	uint32_t *order; /* item indices sorted by name */
};

/* Open and validate PATH. In AUTO mode a file starting with the image magic
 * is an image, anything else raw (a one-item image named "raw"). */
int es_env_open(struct es_env *env, const char *path, enum es_env_mode mode);
void es_env_close(struct es_env *env);
/* Index of the item called NAME, or -1. */
int es_env_find(const struct es_env *env, const char *name);

/* Validate an item name; on failure record why (prefixed by CONTEXT). */
int es_name_check(const char *name, size_t len, const char *context);

/* Stream item IDX through FN in chunks of at most ES_VIEW_ALIGN, verifying its CRC32 when one
 * is recorded, and store the computed CRC in *crc_out (if not NULL). */
typedef int (*es_chunk_fn)(void *arg, const unsigned char *buf, size_t n);
int es_env_read_item(struct es_env *env, uint32_t idx, es_chunk_fn fn, void *arg,
		     uint32_t *crc_out);

/* CRC32 of item IDX, reading it (for raw inputs, or to verify an image). */
int es_env_item_crc(struct es_env *env, uint32_t idx, uint32_t *crc);

/* Serialize the header + directory for the given items into a new buffer
 * (caller frees); *len receives its size. */
unsigned char *es_image_header(uint64_t rev, const struct es_item *items,
			       uint32_t n, size_t *len);

/* Update the revision in a serialized header + directory and its CRC. */
void es_image_restamp(unsigned char *hdr, size_t len, uint64_t rev);

#define ES_CHUNK (1u << 20)

#endif
