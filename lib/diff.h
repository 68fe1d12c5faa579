/* diff.h: the extraction unit: per-item bitwise XOR of two environments,
 * streamed in bounded chunks into diff stream records. */
#ifndef ENVSYNC_DIFF_H
#define ENVSYNC_DIFF_H

#include "image.h"
#include "stream.h"

/* Longest run buffered before it is emitted as an Area (longer changes are
 * emitted as adjacent runs, which readers count as one spot). */
#define ES_RUN_MAX (1u << 20)

struct es_diff_result {
	uint32_t items_changed; /* items whose bytes, size or presence differ */
	uint64_t spots, bytes, entries;
};

/* Feed SINK the complete stream turning BASE into RESULT. */
int es_diff_run(struct es_env *base, struct es_env *result, struct es_sink *sink,
		struct es_diff_result *res);

/* Images with equal revisions must have equal directories; if they do not,
 * record an error naming up to a few differing items and return 1 (0 when
 * they agree or either input has no revision). */
int es_diff_diverged(const struct es_env *a, const struct es_env *b);

/* Up to five item names, for messages. */
struct es_namelist {
	char buf[400];
	size_t len;
	int count;
};
void es_namelist_add(struct es_namelist *n, const char *name);
/* Record the "equal revisions, different contents" error. */
void es_diverged_err(const struct es_env *a, const struct es_env *b,
		     const struct es_namelist *n);

/* envdiff: BASE and RESULT into a stream (or its listing, or summary). */
struct es_diff_opts {
	const char *base, *result, *output;
	int force, stat, text, raw;
	int compress; /* 0: plain; else the zlib level of the written stream */
};
/* Returns an exit status: 0 same, 1 different, 2 trouble, 3 equal revisions
 * with different contents (refused unless force). */
int es_diff_files(const struct es_diff_opts *o);

#endif
