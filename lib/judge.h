/* judge.h: the judgment unit: per item, apply the difference (delta) or copy
 * the whole item (full), by a fixed threshold, a fraction of the item's size,
 * or a calibration of the target medium. */
#ifndef ENVSYNC_JUDGE_H
#define ENVSYNC_JUDGE_H

#include <stdio.h>
#include "stream.h"

/* What "amount of difference" means for -t and -r. */
enum es_measure { ES_M_BYTES, ES_M_SPOTS, ES_M_ENTRIES, ES_M_STREAM };

/* A calibration file (envsync(5)): costs in nanoseconds. */
struct es_calib {
	uint64_t block_size, item_size;
	double delta_fixed, per_spot, per_byte, per_block;
	double full_fixed, full_per_byte;
	double full_per_entry; /* optional in the file: 0 when absent */
	double per_record;     /* optional too: a delta's cost per journal record */
};

enum es_policy { ES_P_RATIO, ES_P_FIXED, ES_P_CALIB };

struct es_judge {
	enum es_policy policy;
	enum es_measure measure;
	double ratio;        /* ES_P_RATIO: fraction of the item's result size */
	uint64_t threshold;  /* ES_P_FIXED */
	struct es_calib cal; /* ES_P_CALIB */
	FILE *verbose;       /* per-item explanation, or NULL */
	int any_full;
	/* per item, while its entries pass */
	uint64_t blocks, last_block, run_off;
	uint64_t rbytes; /* differing bytes inside the result's size */
	/* bytes a delta journals and writes: the spots with the gaps of at most
	 * ES_J_GAP between them (span_*: the stretch being built) */
	uint64_t written, span_start, span_end;
	uint64_t records; /* the journal's records, of the stretches closed */
	int have_block;
	/* ES_P_CALIB: the item is sure to go full before its last entry (what
	 * a delta costs only grows), so the rest are not counted */
	int settled;
	uint32_t unchecked; /* entries since the last look */
	struct es_sink *next; /* where the judged stream goes, or NULL */
};

/* Read and validate a calibration file; errors name the line. */
int es_calib_load(struct es_calib *c, const char *path);
/* Write one to f (the format es_calib_load reads). */
void es_calib_write(const struct es_calib *c, FILE *f, const char *medium);

/* A sink recording decisions in the stream and passing it on to j->next. */
struct es_sink es_judge_sink(struct es_judge *j);
/* J set up to judge by CAL and pass on to NEXT; its sink. */
struct es_sink es_judge_calib_sink(struct es_judge *j, const struct es_calib *cal,
				   struct es_sink *next);

const char *es_measure_name(enum es_measure m);
int es_measure_parse(const char *s, enum es_measure *m);

#endif
