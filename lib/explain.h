/* explain.h: envdiff --explain: what changed between two firmware stores, in
 * the format's own terms (UEFI variables, U-Boot variables), not offsets. */
#ifndef ENVSYNC_EXPLAIN_H
#define ENVSYNC_EXPLAIN_H

#include <stdio.h>

enum es_explain_format { ES_EXPLAIN_AUTO, ES_EXPLAIN_UEFI, ES_EXPLAIN_UBOOT };

/* "auto", "uefi" or "uboot"; 0 on success. */
int es_explain_format_parse(const char *s, enum es_explain_format *f);

/* Parse and check both stores (raw files or block devices), then print on
 * OUT what turns BASE into RESULT. Returns ES_OK (byte-identical),
 * ES_DIFFERENT, or ES_TROUBLE with the reason recorded (nothing printed). */
int es_explain(const char *base, const char *result, enum es_explain_format fmt,
	       FILE *out);

#endif
