/* envdiff.c: command line of envdiff: make, list or summarize diff streams. */
#include "config.h"

#include <argp.h>
#include <stdio.h>
#include <stdlib.h>

#include "diff.h"
#include "explain.h"
#include "io.h"
#include "stream.h"
#include "text.h"
#include "tool.h"
#include "util.h"
#include "zstream.h"

const char *argp_program_version = "envdiff (" PACKAGE_NAME ") " PACKAGE_VERSION;
const char *argp_program_bug_address = PACKAGE_BUGREPORT;

static const char doc[] =
	"Write the diff stream that turns BASE (the standby's environment) into "
	"RESULT (the active's): per item, the bitwise XOR of the two, as Data, Area "
	"and Cont entries (envsync(5)). BASE and RESULT are env images, or raw files "
	"or block devices standing for one-item images.\n"
	"With one operand, read an existing diff stream and list it (-t) or "
	"summarize it (--stat).\n"
	"With --explain, parse BASE and RESULT as UEFI variable stores or U-Boot "
	"environments and say which variables changed (envsync-formats(7)).\n\n"
	"Exit status: 0 no difference, 1 differences, 2 trouble, 3 equal revisions "
	"with different contents (refused without --force).";

enum { OPT_EXPLAIN = 256 };

static struct argp_option options[] = {
	{"output", 'o', "FILE", 0, "Write the stream to FILE (atomically) instead of stdout", 0},
	{"force", 'f', 0, 0, "Diff images with equal revisions but different contents; write binary to a terminal", 0},
	{"stat", 'S', 0, 0, "Print a summary per item and in total instead of the stream", 0},
	{"text", 't', 0, 0, "Print a readable listing of every entry instead of the stream", 0},
	{"compress", 'z', "LEVEL", OPTION_ARG_OPTIONAL, "Write the stream gzip-compressed at zlib LEVEL, 1 (fastest, the default) to 9; every reader of streams takes both forms", 0},
	{"raw", 'R', 0, 0, "Treat BASE and RESULT as raw bytes even if they look like images", 0},
	{"explain", OPT_EXPLAIN, "FORMAT", 0, "Say which variables changed: FORMAT uefi, uboot or auto; exit 2 on a damaged store", 0},
	{0}};

struct args {
	const char *ops[2];
	int nops;
	const char *output;
	int force, stat, text, raw, compress;
	const char *explain;
	enum es_explain_format format;
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
	case 'z':
		if (es_z_level_parse(arg, &a->compress) < 0)
			argp_error(state, "--compress: '%s' is not a level 1 to 9", arg);
		break;
	case OPT_EXPLAIN:
		if (es_explain_format_parse(arg, &a->format) < 0)
			argp_error(state, "--explain: unknown format '%s' (uefi, uboot or auto)", arg);
		a->explain = arg;
		break;
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
		if (a->nops == 1 && (a->output || a->raw || a->compress))
			argp_error(state, "-o, -R and -z need BASE RESULT, not an existing stream");
		if (a->compress && (a->stat || a->text) && !a->output)
			argp_error(state, "-z compresses the stream that -o writes beside -t or --stat");
		if (a->explain && (a->nops != 2 || a->stat || a->text || a->output || a->compress))
			argp_error(state, "--explain takes BASE RESULT, without -t, --stat, -o or -z");
		break;
	default: return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static struct argp argp = {options, parse_opt, "BASE RESULT\n-t|--stat DIFF", doc, 0, 0, 0};

int main(int argc, char **argv)
{
	struct args a = {0};
	es_tool_start(argv[0]);
	argp_parse(&argp, argc, argv, 0, 0, &a);
	struct es_diff_opts o = {a.ops[0], a.ops[1], a.output, a.force, a.stat, a.text, a.raw,
				 a.compress};
	int rc = a.explain ? es_explain(a.ops[0], a.ops[1], a.format, stdout) :
		 a.nops == 1 ? es_text_show(a.ops[0], a.stat, stdout) : es_diff_files(&o);
	return es_tool_exit(rc);
}
