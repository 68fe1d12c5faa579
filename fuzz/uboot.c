/* fuzz/uboot.c: the U-Boot environment parser (es_uboot_parse) in its three
 * layouts, and envdiff --explain on the input against a resealed copy with
 * one byte changed. */
#include "config.h"
#include "explain.h"
#include "fuzz.h"
#include "uboot.h"
#include "util.h"

#include <string.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct es_uboot_env e;
	FILE *o = fz_devnull();
	if (es_uboot_parse(&e, "fuzz", d, n) == 0) {
		FZ_ASSERT(es_uboot_probe(d, n));
		FZ_ASSERT(e.used <= e.copy_size);
		for (size_t i = 0; i < e.nvars; i++) {
			const struct es_uboot_var *v = &e.vars[i];
			FZ_ASSERT(v->name >= d && v->value + v->value_len <= d + n);
			FZ_ASSERT(i == 0 || v[-1].name_len != v->name_len ||
				  memcmp(v[-1].name, v->name, v->name_len) != 0);
			es_uboot_put_name(o, v->name, v->name_len);
			es_uboot_put_quoted(o, v->value, v->value_len);
		}
		es_uboot_free(&e);
	}
	if (n < 8 || n > (1u << 20))
		return 0;
	/* change one data byte and reseal it as a single copy */
	unsigned char *m = malloc(n);
	memcpy(m, d, n);
	m[4 + (n - 4) * 5 / 11] ^= 0x20;
	uint32_t crc = (uint32_t)crc32(0, m + 4, (uInt)(n - 4));
	put32(m, crc);
	struct fz_file a, b;
	fz_file(&a, d, n);
	fz_file(&b, m, n);
	(void)es_explain(a.path, b.path, ES_EXPLAIN_AUTO, o);
	(void)es_explain(b.path, a.path, ES_EXPLAIN_UBOOT, o);
	fz_close(&a);
	fz_close(&b);
	free(m);
	return 0;
}
