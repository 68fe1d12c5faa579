/* envjudge.c: command line of envjudge: record delta/full decisions in a diff stream. */
#include "config.h"

#include <argp.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "calib.h"
#include "io.h"
#include "judge.h"
#include "stream.h"
#include "tool.h"
#include "util.h"
#include "zstream.h"

const char *argp_program_version = "envjudge (" PACKAGE_NAME ") " PACKAGE_VERSION;
const char *argp_program_bug_address = PACKAGE_BUGREPORT;

static const char doc[] =
	"Read a diff stream (DIFF or stdin), decide per item whether applying the "
	"difference (delta) or copying the whole item (full) is faster, and write "
	"the stream on with the decisions recorded in it. The amount of difference "
	"(differing bytes by default, see -m) is compared with a threshold: a fixed "
	"amount (-t), a fraction of the item's size (-r, default 0.5), or the costs "
	"measured on the target medium (-c), which --calibrate writes.\n\n"
	"Exit status: 0 success (with -q: every item goes delta), 1 (with -q only) "
	"some item goes full, 2 trouble.";

enum { OPT_SIZE = 256 };

static struct argp_option options[] = {
	{"threshold", 't', "AMOUNT", 0, "Delta when the amount is at most AMOUNT", 0},
	{"ratio", 'r', "RATIO", 0, "Delta when the amount is at most RATIO x the item's size (default 0.5)", 0},
	{"calibration", 'c', "CALFILE", 0, "Delta when its predicted time is at most a full copy's", 0},
	{"measure", 'm', "WHAT", 0, "Amount compared by -t and -r: bytes (default), spots, entries, stream", 0},
	{"calibrate", 'C', "TARGET", 0, "Measure TARGET's medium (scratch files beside it) and write a calibration (-o CALFILE or stdout)", 1},
	{"quick", 'Q', 0, 0, "With --calibrate: a coarser, few-second run", 1},
	{"size", OPT_SIZE, "BYTES", 0, "With --calibrate: calibrate for items of BYTES (default: TARGET's size)", 1},
	{"verbose", 'v', 0, 0, "Print per item the numbers and the decision on stderr (with --calibrate: each measured point)", 0},
	{"quiet", 'q', 0, 0, "Write nothing; exit 0 if every item goes delta, 1 if any goes full", 0},
	{"output", 'o', "FILE", 0, "Write the judged stream to FILE (atomically)", 0},
	{"force", 'f', 0, 0, "Write binary output to a terminal", 0},
	{"compress", 'z', "LEVEL", OPTION_ARG_OPTIONAL, "Write the stream gzip-compressed at zlib LEVEL 1 to 9 (default 1); without -z or -d the output keeps the input's form", 0},
	{"decompress", 'd', 0, 0, "Write the stream uncompressed, whatever the input's form", 0},
	{0}};

struct args {
	struct es_judge j;
	struct es_calib_opts cal;
	const char *input, *output, *calfile;
	int quiet, force, npolicy;
	int compress; /* -1 keep the input's form, 0 plain, else the zlib level */
};

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;
	char *end;
	switch (key) {
	case 't':
		if (es_parse_u64(arg, &a->j.threshold) < 0)
			argp_error(state, "'%s': not an amount", arg);
		a->j.policy = ES_P_FIXED;
		a->npolicy++;
		break;
	case 'r':
		errno = 0;
		a->j.ratio = strtod(arg, &end);
		if (errno || *end || end == arg || !isfinite(a->j.ratio) || a->j.ratio < 0)
			argp_error(state, "'%s': not a ratio (a number >= 0)", arg);
		a->j.policy = ES_P_RATIO;
		a->npolicy++;
		break;
	case 'c':
		a->calfile = arg;
		a->j.policy = ES_P_CALIB;
		a->npolicy++;
		break;
	case 'm':
		if (es_measure_parse(arg, &a->j.measure) < 0)
			argp_error(state, "'%s': not one of bytes, spots, entries, stream", arg);
		break;
	case 'C': a->cal.target = arg; break;
	case 'Q': a->cal.quick = 1; break;
	case 'z':
		if (es_z_level_parse(arg, &a->compress) < 0)
			argp_error(state, "--compress: '%s' is not a level 1 to 9", arg);
		break;
	case 'd': a->compress = 0; break;
	case OPT_SIZE:
		if (es_parse_u64(arg, &a->cal.size) < 0 || a->cal.size == 0)
			argp_error(state, "'%s': not a size in bytes", arg);
		break;
	case 'v':
		a->j.verbose = stderr;
		a->cal.verbose = 1;
		break;
	case 'q': a->quiet = 1; break;
	case 'o': a->output = arg; break;
	case 'f': a->force = 1; break;
	case ARGP_KEY_ARG:
		if (a->input)
			argp_error(state, "too many operands");
		a->input = arg;
		break;
	case ARGP_KEY_END:
		if (a->npolicy > 1)
			argp_error(state, "-t, -r and -c exclude each other");
		if (a->quiet && a->output)
			argp_error(state, "-q and -o exclude each other");
		/* -z was --size's short form once: say so rather than mistake the
		 * old "--calibrate T -z BYTES" for an operand */
		if (a->cal.target && a->compress >= 0)
			argp_error(state, "--calibrate writes no stream: -z and -d do not apply (the item size is --size BYTES)");
		if (a->quiet && a->compress >= 0)
			argp_error(state, "-q writes no stream: -z and -d do not apply");
		if (a->cal.target && (a->npolicy || a->input || a->quiet))
			argp_error(state, "--calibrate takes only -o, --quick, --size, -v");
		if (!a->cal.target && (a->cal.quick || a->cal.size))
			argp_error(state, "--quick and --size need --calibrate");
		break;
	default: return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static struct argp argp = {options, parse_opt, "[DIFF]\n--calibrate TARGET [--quick] [-o CALFILE]", doc, 0, 0, 0};

static int judge(struct args *a)
{
	struct es_reader r;
	struct es_writer w;
	struct es_out out;
	struct es_sink bin;
	int rc = ES_TROUBLE;
	if (a->calfile && es_calib_load(&a->j.cal, a->calfile) < 0)
		return ES_TROUBLE;
	if (es_reader_open(&r, a->input ? a->input : "-") < 0)
		return ES_TROUBLE;
	if (!a->quiet) {
		if (es_out_open(&out, a->output, a->force) < 0) {
			es_reader_close(&r);
			return ES_TROUBLE;
		}
		es_writer_init(&w, out.fd, out.name);
		int level = a->compress >= 0	       ? a->compress :
			    es_reader_compressed(&r) ? ES_Z_LEVEL :
						       0;
		if (level && es_writer_compress(&w, level) < 0) {
			es_out_abort(&out);
			es_writer_free(&w);
			es_reader_close(&r);
			return ES_TROUBLE;
		}
		bin = es_writer_sink(&w);
		a->j.next = &bin;
	}
	struct es_sink sink = es_judge_sink(&a->j);
	if (es_reader_run(&r, &sink) == 0 && (a->quiet || es_out_commit(&out) == 0))
		rc = a->quiet && a->j.any_full ? ES_DIFFERENT : ES_OK;
	if (!a->quiet) {
		es_out_abort(&out);
		es_writer_free(&w);
	}
	es_reader_close(&r);
	return rc;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	a.j.ratio = 0.5;
	a.compress = -1;
	es_tool_start(argv[0]);
	argp_parse(&argp, argc, argv, 0, 0, &a);
	a.cal.output = a.output;
	int rc = a.cal.target ? es_calibrate(&a.cal) : judge(&a);
	return es_tool_exit(rc);
}
