/* rev.c: comparing environments by revision and content. */
#include "config.h"
#include "rev.h"
#include "diff.h"
#include "text.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int collect(void *arg, const struct es_ditem *it, const struct es_dend *d)
{
	if (strcmp(es_item_state(it, d), "same") != 0)
		es_namelist_add(arg, it->name);
	return 0;
}

int es_rev_compare(struct es_env *a, struct es_env *b)
{
	if (a->is_image && b->is_image && a->rev != b->rev)
		return ES_DIFFERENT;
	/* the contents are read side by side, which a pipe cannot do */
	struct es_env *pipe = a->in.size == ES_SIZE_UNKNOWN ? a
			    : b->in.size == ES_SIZE_UNKNOWN ? b : NULL;
	if (pipe) {
		es_err("%s: comparing the contents needs a file, not a pipe", pipe->in.name);
		return -1;
	}
	struct es_namelist n;
	memset(&n, 0, sizeof n);
	struct es_sink sink = {&n, NULL, NULL, NULL, collect, NULL};
	struct es_diff_result res;
	if (es_diff_run(a, b, &sink, &res) < 0)
		return -1;
	if (n.count == 0)
		return ES_OK;
	if (!a->is_image || !b->is_image)
		return ES_DIFFERENT;
	es_diverged_err(a, b, &n);
	return ES_DIVERGED;
}
