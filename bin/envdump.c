/* envdump.c: command line of envdump: build, list and take apart env images. */
#include "config.h"

#include <argp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "dump.h"
#include "efivars.h"
#include "io.h"
#include "tool.h"
#include "util.h"

const char *argp_program_version = "envdump (" PACKAGE_NAME ") " PACKAGE_VERSION;
const char *argp_program_bug_address = PACKAGE_BUGREPORT;

static const char doc[] =
	"Build an env image from sources (NAME=PATH, each a regular file or block "
	"device; or with -e, each variable file of an efivarfs directory), list an "
	"image's revision and items (-l), or write one item's bytes to stdout (-x "
	"NAME).\n\n"
	"Exit status: 0 success, 2 trouble.";

enum { OPT_REV_FROM = 256 };

static struct argp_option options[] = {
	{"revision", 'r', "REV", 0, "Stamp the image with revision REV (default 0)", 0},
	{"rev-from", OPT_REV_FROM, "PREV", 0, "PREV's revision if the content equals PREV's, else PREV's + 1", 0},
	{"output", 'o', "FILE", 0, "Write to FILE (atomically) instead of stdout", 0},
	{"list", 'l', 0, 0, "List revision and items (CRC32, size, name) of each IMAGE", 0},
	{"extract", 'x', "NAME", 0, "Write item NAME of IMAGE to stdout", 0},
	{"force", 'f', 0, 0, "Write binary output to a terminal", 0},
	{"efivarfs", 'e', "DIR", 0, "Build the image from DIR, an efivarfs directory: one item per variable file (Name-GUID), in name order", 0},
	{0}};

struct args {
	char **ops;
	int nops;
	int list, force, have_rev;
	const char *extract, *output, *rev_from, *efivarfs;
	uint64_t rev;
};

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;
	switch (key) {
	case 'r':
		if (es_parse_u64(arg, &a->rev) < 0)
			argp_error(state, "'%s': not a revision (0 to 2^64-1)", arg);
		a->have_rev = 1;
		break;
	case OPT_REV_FROM: a->rev_from = arg; break;
	case 'o': a->output = arg; break;
	case 'l': a->list = 1; break;
	case 'x': a->extract = arg; break;
	case 'f': a->force = 1; break;
	case 'e': a->efivarfs = arg; break;
	case ARGP_KEY_ARGS:
		a->ops = state->argv + state->next;
		a->nops = state->argc - state->next;
		break;
	case ARGP_KEY_END:
		if (a->list + !!a->extract > 1)
			argp_error(state, "-l and -x exclude each other");
		if (a->have_rev && a->rev_from)
			argp_error(state, "-r and --rev-from exclude each other");
		if (a->efivarfs && (a->nops || a->list || a->extract))
			argp_error(state, "-e takes no operands and excludes -l and -x");
		if (a->nops == 0 && !a->list && !a->extract && !a->efivarfs)
			argp_error(state, "missing operands: NAME=PATH...");
		if (a->extract && a->nops != 1)
			argp_error(state, "-x needs exactly one IMAGE");
		/* options that would be silently ignored */
		if ((a->list || a->extract) && (a->have_rev || a->rev_from))
			argp_error(state, "-r and --rev-from build an image: not with -l or -x");
		if (a->list && a->output)
			argp_error(state, "-l prints to stdout: no -o");
		break;
	default: return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static struct argp argp = {options, parse_opt,
			   "[-r REV|--rev-from PREV] NAME=PATH...\n[-r REV|--rev-from PREV] -e DIR\n"
			   "-l [IMAGE...]\n-x NAME IMAGE",
			   doc, 0, 0, 0};

static int list(const struct args *a)
{
	static char *dash[] = {"-"};
	char **ops = a->nops ? a->ops : dash;
	int n = a->nops ? a->nops : 1;
	for (int i = 0; i < n; i++) {
		struct es_env env;
		if (es_env_open(&env, ops[i], ES_ENV_IMAGE) < 0)
			return ES_TROUBLE;
		if (n > 1)
			printf("%s%s:\n", i ? "\n" : "", ops[i]);
		es_dump_list(&env, stdout);
		es_env_close(&env);
	}
	return ES_OK;
}

static int extract(const struct args *a)
{
	struct es_env env;
	struct es_out out;
	int rc = ES_TROUBLE;
	if (es_env_open(&env, a->ops[0], ES_ENV_IMAGE) < 0)
		return ES_TROUBLE;
	if (es_out_open(&out, a->output, a->force) == 0) {
		if (es_dump_extract(&env, a->extract, &out) == 0 && es_out_commit(&out) == 0)
			rc = ES_OK;
		es_out_abort(&out);
	}
	es_env_close(&env);
	return rc;
}

/* envdump -e DIR: one item per variable file. */
static int build_efivarfs(const struct args *a)
{
	struct es_revpolicy pol = {a->rev, a->rev_from};
	struct es_out out;
	uint64_t rev;
	int rc = ES_TROUBLE;
	if (es_out_open(&out, a->output, a->force) == 0 &&
	    es_efivars_dump(a->efivarfs, &pol, &out, &rev) == 0 && es_out_commit(&out) == 0)
		rc = ES_OK;
	es_out_abort(&out); /* also frees what a failed open kept */
	return rc;
}

static int build(const struct args *a)
{
	struct es_source *srcs = es_calloc((size_t)a->nops, sizeof *srcs);
	struct es_revpolicy pol = {a->rev, a->rev_from};
	struct es_out out;
	uint64_t rev;
	int rc = ES_TROUBLE;
	for (int i = 0; i < a->nops; i++)
		if (es_source_parse(&srcs[i], a->ops[i]) < 0)
			goto out;
	if (es_out_open(&out, a->output, a->force) < 0)
		goto out;
	if (es_dump_build(srcs, (uint32_t)a->nops, &pol, &out, &rev) == 0 &&
	    es_out_commit(&out) == 0)
		rc = ES_OK;
	es_out_abort(&out);
out:
	free(srcs);
	return rc;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	es_tool_start(argv[0]);
	argp_parse(&argp, argc, argv, 0, 0, &a);
	int rc = a.list		? list(&a)
		 : a.extract	? extract(&a)
		 : a.efivarfs	? build_efivarfs(&a)
				: build(&a);
	return es_tool_exit(rc);
}
