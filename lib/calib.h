/* calib.h: calibration: measure, on the target's own medium and through
 * envapply's own code, what a delta apply and a full copy cost, and fit the
 * cost model envjudge -c predicts with (claim 3 of the patent). */
#ifndef ENVSYNC_CALIB_H
#define ENVSYNC_CALIB_H

#include <stdint.h>
#include <stdio.h>
#include "judge.h"

struct es_calib_opts {
	const char *target; /* whose medium and size are calibrated */
	const char *output; /* CALFILE, NULL: stdout */
	uint64_t size;      /* item size, 0: TARGET's size */
	int quick;
	int verbose;
};

/* Measure, fit and write the calibration; print the crossover in words on
 * stderr. Returns an exit status. TARGET itself is only read (its size). */
int es_calibrate(const struct es_calib_opts *o);

/* Words for the crossover the model implies for an item of SIZE bytes. */
void es_calib_crossover(const struct es_calib *c, uint64_t size, FILE *f);

#endif
