/* fuzz/uefi.c: the UEFI variable store parser (es_uefi_parse) and the
 * printing of what it found; envdiff --explain on the input against itself
 * and against a copy with one byte changed. */
#include "config.h"
#include "explain.h"
#include "fuzz.h"
#include "uefi.h"
#include "util.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct es_uefi_store st;
	FILE *o = fz_devnull();
	if (es_uefi_parse(&st, "fuzz", d, n) == 0) {
		FZ_ASSERT(st.store_end <= st.fv_length && st.fv_length <= n);
		for (uint32_t i = 0; i < st.nvars; i++) {
			const struct es_uefi_var *v = &st.vars[i];
			char s[128];
			FZ_ASSERT(v->data + v->data_size <= d + st.store_end);
			es_uefi_put_id(o, v);
			es_uefi_attr_str(v->attrs, s, sizeof s);
			fputs(es_uefi_state_name(v->state), o);
			if (v->time)
				es_uefi_time_str(v->time, s, sizeof s);
			(void)es_uefi_live(v->state);
		}
		es_uefi_free(&st);
	}
	if (n == 0 || n > (1u << 20))
		return 0;
	unsigned char *m = malloc(n);
	memcpy(m, d, n);
	m[(n * 7) / 13] ^= 0x01;
	struct fz_file a, b;
	fz_file(&a, d, n);
	fz_file(&b, m, n);
	int r = es_explain(a.path, a.path, ES_EXPLAIN_UEFI, o);
	FZ_ASSERT(r == ES_OK || r == ES_TROUBLE);
	(void)es_explain(a.path, b.path, ES_EXPLAIN_UEFI, o);
	(void)es_explain(b.path, a.path, ES_EXPLAIN_AUTO, o);
	fz_close(&a);
	fz_close(&b);
	free(m);
	return 0;
}
