/* envapply.c: command line of envapply: apply a (judged) diff stream to a target. */
#include "config.h"

#include <argp.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "apply.h"
#include "io.h"
#include "tool.h"
#include "util.h"

const char *argp_program_version = "envapply (" PACKAGE_NAME ") " PACKAGE_VERSION;
const char *argp_program_bug_address = PACKAGE_BUGREPORT;

static const char doc[] =
	"Apply a diff stream (DIFF or stdin) to TARGET, an env image, a raw file or a "
	"block device, after checking TARGET is at the diff's base: items judged "
	"delta are patched in place through a journal, items judged full are copied "
	"from SOURCE; the result is verified. A crash at any instant leaves TARGET "
	"old or new: the next run (or --recover) finishes an interrupted apply.\n\n"
	"Exit status: 0 applied or already at the result, 2 trouble (target "
	"unchanged), 4 TARGET is at neither the diff's base nor its result, 5 "
	"another envapply holds TARGET.";

enum { OPT_RECOVER = 256, OPT_ROLLBACK, OPT_CHECK };

static struct argp_option options[] = {
	{"source", 's', "SOURCE", 0, "Where items judged full are copied from (the active's image or raw file)", 0},
	{"calibration", 'c', "CALFILE", 0, "Judge each item here, as envjudge -c CALFILE would, whatever the stream says (the failover in one step)", 0},
	{"dry-run", 'n', 0, 0, "Print what would change; write nothing", 0},
	{"wait", 'w', "SECONDS", 0, "Wait up to SECONDS for another envapply on TARGET (default 0)", 0},
	{"state-dir", 'J', "DIR", 0, "Keep journal, lock and rollback data in DIR (default: beside TARGET; /var/lib/envsync for block devices)", 0},
	{"verbose", 'v', 0, 0, "Say what is done and verified", 0},
	{"check", OPT_CHECK, 0, 0, "Only check that TARGET is at the diff's base (or result), reading it whole, and record that in the state directory: while TARGET is unchanged, an apply then reads only what it changes", 0},
	{"recover", OPT_RECOVER, 0, 0, "Only finish an interrupted apply on TARGET", 0},
	{"rollback", OPT_ROLLBACK, 0, 0, "Return TARGET to what it was before the last apply", 0},
	{0}};

struct args {
	struct es_apply_opts o;
	int nops, recover, rollback;
};

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;
	char *end;
	switch (key) {
	case 's': a->o.source = arg; break;
	case 'c': a->o.calfile = arg; break;
	case 'n': a->o.dry_run = 1; break;
	case 'w':
		errno = 0;
		a->o.wait = strtod(arg, &end);
		if (errno || *end || end == arg || !isfinite(a->o.wait) || a->o.wait < 0)
			argp_error(state, "'%s': not a number of seconds", arg);
		break;
	case 'J': a->o.jdir = arg; break;
	case 'v': a->o.verbose = 1; break;
	case OPT_CHECK: a->o.check = a->o.dry_run = 1; break;
	case OPT_RECOVER: a->recover = 1; break;
	case OPT_ROLLBACK: a->rollback = 1; break;
	case ARGP_KEY_ARG:
		if (a->nops == 2)
			argp_error(state, "too many operands");
		if (a->nops++ == 0)
			a->o.target = arg;
		else
			a->o.diff = arg;
		break;
	case ARGP_KEY_END:
		if (a->nops == 0)
			argp_error(state, "missing operand: TARGET");
		if (a->recover + a->rollback > 1)
			argp_error(state, "--recover and --rollback exclude each other");
		if ((a->recover || a->rollback) &&
		    (a->nops > 1 || a->o.dry_run || a->o.source || a->o.calfile))
			argp_error(state, "--recover and --rollback take only TARGET");
		break;
	default: return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static struct argp argp = {options, parse_opt,
			   "[-c CALFILE] [-s SOURCE] [-n] TARGET [DIFF]\n--check TARGET [DIFF]\n--recover TARGET\n--rollback TARGET",
			   doc, 0, 0, 0};

int main(int argc, char **argv)
{
	struct args a = {0};
	es_tool_start(argv[0]);
	argp_parse(&argp, argc, argv, 0, 0, &a);
	int rc = a.recover ? es_apply_recover(&a.o)
		 : a.rollback ? es_apply_rollback(&a.o)
			      : es_apply(&a.o);
	return es_tool_exit(rc);
}
