/* rev.h: revisions: comparing two environments the way the patent's
 * "equal revision means nothing to do" rule needs (envrev -c). */
#ifndef ENVSYNC_REV_H
#define ENVSYNC_REV_H

#include "image.h"

/* ES_OK when revisions (if any) and contents agree, ES_DIFFERENT when they
 * differ, ES_DIVERGED (message recorded) when two images have equal revisions
 * but different contents, -1 on error. */
int es_rev_compare(struct es_env *a, struct es_env *b);

#endif
