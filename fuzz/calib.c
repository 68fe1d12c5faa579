/* fuzz/calib.c: the calibration file parser (es_calib_load); an accepted
 * calibration is written back and must load again, and its crossover words
 * must be printable for any item size. */
#include "config.h"
#include "calib.h"
#include "fuzz.h"
#include "judge.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct fz_file f;
	struct es_calib c, c2;
	fz_file(&f, d, n);
	if (es_calib_load(&c, f.path) == 0) {
		static const uint64_t sizes[] = {0, 1, 4096, 1ull << 30, UINT64_MAX};
		for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
			es_calib_crossover(&c, sizes[i], fz_devnull());
		es_calib_crossover(&c, c.item_size, fz_devnull());
		struct fz_file g;
		fz_file(&g, "", 0);
		FILE *o = fdopen(dup(g.fd), "w");
		FZ_ASSERT(o);
		es_calib_write(&c, o, "fuzz");
		FZ_ASSERT(fclose(o) == 0);
		FZ_ASSERT(es_calib_load(&c2, g.path) == 0);
		FZ_ASSERT(c2.block_size == c.block_size && c2.item_size == c.item_size);
		fz_close(&g);
	}
	fz_close(&f);
	return 0;
}
