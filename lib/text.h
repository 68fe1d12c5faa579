/* text.h: what a person reads about a diff stream: the entry listing
 * (envdiff -t) and the summary (envdiff --stat). */
#ifndef ENVSYNC_TEXT_H
#define ENVSYNC_TEXT_H

#include <stdio.h>
#include "stream.h"

struct es_text {
	FILE *out;
	uint32_t nitems, changed;
	uint64_t entries, spots, bytes, stream_bytes;
	int summary_only; /* --stat: per-item lines and a total, no entries */
};

/* A sink printing to t->out; t must outlive it. */
struct es_sink es_text_sink(struct es_text *t, int summary_only, FILE *out);

/* "added", "removed", "resized", "changed" or "same". */
const char *es_item_state(const struct es_ditem *it, const struct es_dend *d);

/* Read the stream at PATH and print its listing (or summary) to out; returns
 * an exit status: 0 nothing changes, 1 changes, 2 trouble. */
int es_text_show(const char *path, int summary, FILE *out);

#endif
