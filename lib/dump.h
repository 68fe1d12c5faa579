/* dump.h: building env images from sources (envdump), listing them and
 * taking single items out. */
#ifndef ENVSYNC_DUMP_H
#define ENVSYNC_DUMP_H

#include <stdio.h>
#include "image.h"
#include "io.h"

struct es_source {
	const char *spec; /* NAME=PATH as given */
	const char *path;
	struct es_item item;
};

/* Parse NAME=PATH into src; names are validated. */
int es_source_parse(struct es_source *src, const char *spec);

/* Revision policy: a fixed revision, or PREV's (bumped when content differs). */
struct es_revpolicy {
	uint64_t rev;
	const char *prev; /* NULL: use rev */
};

/* Write an image of the sources to out; *rev_out receives the revision. */
int es_dump_build(struct es_source *srcs, uint32_t n, const struct es_revpolicy *pol,
		  struct es_out *out, uint64_t *rev_out);

/* Print the revision and items of env, verifying nothing but the directory. */
void es_dump_list(const struct es_env *env, FILE *f);

/* Write item NAME's bytes to out (after verifying its CRC32). */
int es_dump_extract(struct es_env *env, const char *name, struct es_out *out);

/* Copy env to out with a new revision, verifying every item's CRC32. */
int es_image_copy(struct es_env *env, struct es_out *out, uint64_t rev);

#endif
