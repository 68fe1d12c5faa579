/* fuzz/stream.c: the diff stream reader (es_reader_run) with every sink the
 * tools put behind it: the binary writer, the listing, the summary and the
 * judge. A stream the reader accepts must be written back byte for byte. */
#include "config.h"
#include "fuzz.h"
#include "judge.h"
#include "stream.h"
#include "text.h"

#include <string.h>

static int run(const char *path, struct es_sink *k)
{
	struct es_reader r;
	if (es_reader_open(&r, path) < 0)
		return -1;
	int rc = es_reader_run(&r, k);
	es_reader_close(&r);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct fz_file in, out;
	fz_file(&in, d, n);
	fz_file(&out, "", 0);

	/* the listing and the writer, as envdiff -t and envjudge do */
	struct es_writer w;
	struct es_text t;
	es_writer_init(&w, out.fd, "(out)");
	struct es_sink ws = es_writer_sink(&w);
	struct es_sink ts = es_text_sink(&t, 0, fz_devnull());
	struct es_sink *pair[2] = {&ts, &ws};
	struct es_sink tee = es_tee_sink(pair);
	int rc = run(in.path, &tee);
	es_writer_free(&w);
	if (rc == 0) {
		FZ_ASSERT(w.bytes == n);
		unsigned char *back = malloc(n ? n : 1);
		FZ_ASSERT(pread(out.fd, back, n, 0) == (ssize_t)n);
		FZ_ASSERT(memcmp(back, d, n) == 0);
		free(back);

		/* the judge, by ratio and by a calibration, into the summary */
		static const struct es_calib cal = {4096, 1 << 20, 1e5, 1e3, 1.0, 2e4, 1e5, 2.0};
		for (int policy = 0; policy < 2; policy++) {
			struct es_text sum;
			struct es_sink ss = es_text_sink(&sum, 1, fz_devnull());
			struct es_judge j;
			memset(&j, 0, sizeof j);
			j.policy = policy ? ES_P_CALIB : ES_P_RATIO;
			j.measure = (enum es_measure)(n % 4);
			j.ratio = 0.5;
			j.cal = cal;
			j.verbose = fz_devnull();
			j.next = &ss;
			struct es_sink js = es_judge_sink(&j);
			FZ_ASSERT(run(in.path, &js) == 0);
		}
	}
	fz_close(&out);
	fz_close(&in);
	return 0;
}
