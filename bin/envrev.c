/* envrev.c: command line of envrev: print, compare and restamp revisions. */
#include "config.h"

#include <argp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "dump.h"
#include "io.h"
#include "rev.h"
#include "tool.h"
#include "util.h"

const char *argp_program_version = "envrev (" PACKAGE_NAME ") " PACKAGE_VERSION;
const char *argp_program_bug_address = PACKAGE_BUGREPORT;

static const char doc[] =
	"Print the revision of an env image, compare two environments (-c), or "
	"restamp an image with a new revision (-s, --bump), from stdin to stdout, "
	"to -o FILE, or in place (-i); output files are replaced atomically.\n\n"
	"Exit status: 0 success / same, 1 revisions (or raw contents) differ, 2 "
	"trouble, 3 equal revisions but different contents.";

enum { OPT_BUMP = 256 };

static struct argp_option options[] = {
	{"compare", 'c', 0, 0, "Compare A and B: revisions, then contents", 0},
	{"set", 's', "N", 0, "Restamp the image with revision N", 0},
	{"bump", OPT_BUMP, 0, 0, "Restamp the image with its revision + 1", 0},
	{"in-place", 'i', 0, 0, "Restamp IMAGE itself (atomically)", 0},
	{"output", 'o', "FILE", 0, "Write the restamped image to FILE", 0},
	{"force", 'f', 0, 0, "Write binary output to a terminal", 0},
	{0}};

struct args {
	const char *ops[2];
	int nops;
	int compare, set, bump, inplace, force;
	uint64_t rev;
	const char *output;
};

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;
	switch (key) {
	case 'c': a->compare = 1; break;
	case 's':
		if (es_parse_u64(arg, &a->rev) < 0)
			argp_error(state, "'%s': not a revision (0 to 2^64-1)", arg);
		a->set = 1;
		break;
	case OPT_BUMP: a->bump = 1; break;
	case 'i': a->inplace = 1; break;
	case 'o': a->output = arg; break;
	case 'f': a->force = 1; break;
	case ARGP_KEY_ARG:
		if (a->nops == 2)
			argp_error(state, "too many operands");
		a->ops[a->nops++] = arg;
		break;
	case ARGP_KEY_END:
		if (a->compare + a->set + a->bump > 1)
			argp_error(state, "-c, -s and --bump exclude each other");
		if (a->compare && a->nops != 2)
			argp_error(state, "-c needs two operands: A B");
		if (!a->compare && a->nops > 1)
			argp_error(state, "too many operands");
		if (!a->compare && !a->set && !a->bump && a->nops != 1)
			argp_error(state, "missing operand: IMAGE");
		if (a->inplace && (a->nops != 1 || a->output || !(a->set || a->bump)))
			argp_error(state, "-i needs -s or --bump, one IMAGE and no -o");
		if (a->output && !(a->set || a->bump))
			argp_error(state, "-o writes a restamped image: it needs -s or --bump");
		break;
	default: return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static struct argp argp = {options, parse_opt,
			   "IMAGE\n-c A B\n-s N|--bump [-i] [-o FILE] [IMAGE]", doc, 0, 0, 0};

static int print_rev(const char *path)
{
	struct es_env env;
	if (es_env_open(&env, path, ES_ENV_IMAGE) < 0)
		return ES_TROUBLE;
	printf("%" PRIu64 "\n", env.rev);
	es_env_close(&env);
	return ES_OK;
}

static int compare(const char *pa, const char *pb)
{
	struct es_env a, b;
	if (es_env_open(&a, pa, ES_ENV_AUTO) < 0)
		return ES_TROUBLE;
	if (es_env_open(&b, pb, ES_ENV_AUTO) < 0) {
		es_env_close(&a);
		return ES_TROUBLE;
	}
	int rc = es_rev_compare(&a, &b);
	es_env_close(&a);
	es_env_close(&b);
	return rc < 0 ? ES_TROUBLE : rc;
}

static int restamp(const struct args *a)
{
	const char *in = a->nops ? a->ops[0] : "-";
	struct es_env env;
	struct es_out out;
	int rc = ES_TROUBLE;
	if (es_env_open(&env, in, ES_ENV_IMAGE) < 0)
		return ES_TROUBLE;
	uint64_t rev = a->set ? a->rev : env.rev + 1;
	if (a->bump && env.rev == UINT64_MAX)
		es_err("%s: revision %" PRIu64 " cannot be bumped", env.in.name, env.rev);
	else if (es_out_open(&out, a->inplace ? in : a->output, a->force) == 0) {
		if (es_image_copy(&env, &out, rev) == 0 && es_out_commit(&out) == 0)
			rc = ES_OK;
		es_out_abort(&out);
	}
	es_env_close(&env);
	return rc;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	es_tool_start(argv[0]);
	argp_parse(&argp, argc, argv, 0, 0, &a);
	int rc;
	if (a.compare)
		rc = compare(a.ops[0], a.ops[1]);
	else if (a.set || a.bump)
		rc = restamp(&a);
	else
		rc = print_rev(a.ops[0]);
	return es_tool_exit(rc);
}
