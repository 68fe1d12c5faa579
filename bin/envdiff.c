/* envdiff.c: command line of envdiff: make, list or summarize diff streams. */
#include "config.h"

#include <argp.h>
#include <stdio.h>
#include <stdlib.h>

#include "diff.h"
#include "io.h"
#include "stream.h"
#include "text.h"
#include "tool.h"
#include "util.h"

const char *argp_program_version = "envdiff (" PACKAGE_NAME ") " PACKAGE_VERSION;
const char *argp_program_bug_address = PACKAGE_BUGREPORT;

static const char doc[] =
	"Write the diff stream that turns BASE (the standby's environment) into "
	"RESULT (the active's): per item, the bitwise XOR of the two, as Data, Area "
	"and Cont entries (envsync(5)). BASE and RESULT are env images, or raw files "
	"or block devices standing for one-item images.\n"
	"With one operand, read an existing diff stream and list it (-t) or "
	"summarize it (--stat).\n\n"
	"Exit status: 0 no difference, 1 differences, 2 trouble, 3 equal revisions "
	"with different contents (refused without --force).";

static struct argp_option options[] = {
	{"output", 'o', "FILE", 0, "Write the stream to FILE (atomically) instead of stdout", 0},
	{"force", 'f', 0, 0, "Diff images with equal revisions but different contents; write binary to a terminal", 0},
	{"stat", 'S', 0, 0, "Print a summary per item and in total instead of the stream", 0},
	{"text", 't', 0, 0, "Print a readable listing of every entry instead of the stream", 0},
	{"raw", 'R', 0, 0, "Treat BASE and RESULT as raw bytes even if they look like images", 0},
	{0}};

struct args {
	const char *ops[2];
	int nops;
	const char *output;
	int force, stat, text, raw;
};

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;
	switch (key) {
	case 'o': a->output = arg; break;
	case 'f': a->force = 1; break;
	case 'S': a->stat = 1; break;
	case 't': a->text = 1; break;
	case 'R': a->raw = 1; break;
	case ARGP_KEY_ARG:
		if (a->nops == 2)
			argp_error(state, "too many operands");
		a->ops[a->nops++] = arg;
		break;
	case ARGP_KEY_END:
		if (a->nops == 0)
			argp_error(state, "missing operands: BASE RESULT");
		if (a->nops == 1 && !a->stat && !a->text)
			argp_error(state, "one operand (a diff stream) needs -t or --stat");
		if (a->stat && a->text)
			argp_error(state, "-t and --stat exclude each other");
		break;
	default: return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static struct argp argp = {options, parse_opt, "BASE RESULT\n-t|--stat DIFF", doc, 0, 0, 0};

static int show_stream(const char *path, int summary)
{
	struct es_reader r;
	struct es_text t;
	if (es_reader_open(&r, path) < 0)
		return ES_TROUBLE;
	struct es_sink sink = es_text_sink(&t, summary, stdout);
	int rc = es_reader_run(&r, &sink);
	es_reader_close(&r);
	if (rc < 0)
		return ES_TROUBLE;
	return t.changed ? ES_DIFFERENT : ES_OK;
}

/* Equal revisions promise equal contents. es_diff_diverged compares the
 * directories (sizes and CRC32s), but equal CRC32s are no proof: in front of
 * the real sink, this one turns any entry into the exit-3 refusal, naming the
 * items, and holds back everything from the first entry on. */
struct guard {
	struct es_sink *next;
	struct es_namelist names;
	int hit;     /* the current item has entries */
	int refused; /* the run ended in the refusal (not in other trouble) */
};

static int g_header(void *arg, const struct es_dhdr *h)
{
	struct guard *g = arg;
	return g->next->header ? g->next->header(g->next->arg, h) : 0;
}

static int g_item(void *arg, const struct es_ditem *it)
{
	struct guard *g = arg;
	g->hit = 0;
	if (g->names.count || !g->next->item)
		return 0;
	return g->next->item(g->next->arg, it);
}

static int g_entry(void *arg, const struct es_ditem *it, const struct es_entry *e)
{
	struct guard *g = arg;
	(void)e;
	if (!g->hit)
		es_namelist_add(&g->names, it->name);
	g->hit = 1;
	return 0;
}

static int g_end(void *arg, const struct es_ditem *it, const struct es_dend *d)
{
	struct guard *g = arg;
	if (g->names.count || !g->next->end)
		return 0;
	return g->next->end(g->next->arg, it, d);
}

static int g_finish(void *arg)
{
	struct guard *g = arg;
	if (g->names.count) {
		g->refused = 1;
		return -1;
	}
	return g->next->finish ? g->next->finish(g->next->arg) : 0;
}

static int make_diff(const struct args *a)
{
	enum es_env_mode mode = a->raw ? ES_ENV_RAW : ES_ENV_AUTO;
	struct es_env base, result;
	struct es_out out;
	struct es_writer w;
	struct es_text t;
	int rc = ES_TROUBLE, listing = a->stat || a->text;
	if (es_env_open(&base, a->ops[0], mode) < 0)
		return ES_TROUBLE;
	if (es_env_open(&result, a->ops[1], mode) < 0) {
		es_env_close(&base);
		return ES_TROUBLE;
	}
	if (!a->force && es_diff_diverged(&base, &result)) {
		es_env_close(&base);
		es_env_close(&result);
		return ES_DIVERGED;
	}
	struct es_sink text = es_text_sink(&t, a->stat, stdout);
	int writing = !listing || a->output;
	if (writing && es_out_open(&out, a->output, a->force) < 0)
		goto close;
	es_writer_init(&w, writing ? out.fd : -1, writing ? out.name : "");
	struct es_sink bin = es_writer_sink(&w);
	struct es_sink *pair[2] = {&bin, &text};
	struct es_sink both = es_tee_sink(pair);
	struct es_sink *sink = listing ? (writing ? &both : &text) : &bin;
	struct guard g = {sink, {{0}, 0, 0}, 0, 0};
	struct es_sink guarded = {&g, g_header, g_item, g_entry, g_end, g_finish};
	if (!a->force && base.is_image && result.is_image && base.rev == result.rev)
		sink = &guarded;
	struct es_diff_result res;
	if (es_diff_run(&base, &result, sink, &res) == 0 && (!writing || es_out_commit(&out) == 0))
		rc = res.items_changed ? ES_DIFFERENT : ES_OK;
	else if (g.refused) {
		es_diverged_err(&base, &result, &g.names);
		rc = ES_DIVERGED;
	}
	if (writing)
		es_out_abort(&out); /* after a commit this only frees */
	es_writer_free(&w);
close:
	es_env_close(&base);
	es_env_close(&result);
	return rc;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	es_tool_start(argv[0]);
	argp_parse(&argp, argc, argv, 0, 0, &a);
	int rc = a.nops == 1 ? show_stream(a.ops[0], a.stat) : make_diff(&a);
	return es_tool_exit(rc);
}
