/* fuzz/stream.c: the diff stream reader (es_reader_run) with every sink the
 * tools put behind it: the binary writer, the listing, the summary and the
 * judge. A stream the reader accepts must be written back byte for byte: the
 * plain form as it came, a compressed one as zlib inflates it; and written
 * compressed, it must read back as the same plain bytes. */
#include "config.h"
#include "fuzz.h"
#include "judge.h"
#include "stream.h"
#include "text.h"

#include <string.h>
#include <zlib.h>

static int run(const char *path, struct es_sink *k);

/* The plain stream D[0..n) holds, for a compressed input: zlib's own inflate,
 * to check the reader's against; NULL if it does not inflate to PLAIN bytes. */
static unsigned char *inflate_all(const uint8_t *d, size_t n, uint64_t plain)
{
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	unsigned char *out = malloc(plain + 1);
	FZ_ASSERT(out && inflateInit2(&zs, 15 + 32) == Z_OK);
	zs.next_in = (unsigned char *)d;
	zs.avail_in = (uInt)n;
	zs.next_out = out;
	zs.avail_out = (uInt)plain + 1;
	int rc = inflate(&zs, Z_FINISH);
	int ok = rc == Z_STREAM_END && zs.total_out == plain && zs.avail_in == 0;
	inflateEnd(&zs);
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}

/* Read the stream at PATH into a writer on OUT, compressed at LEVEL (0: plain). */
static int copy(const char *path, int fd, int level, uint64_t *bytes)
{
	struct es_writer w;
	es_writer_init(&w, fd, "(copy)");
	FZ_ASSERT(!level || es_writer_compress(&w, level) == 0);
	struct es_sink ws = es_writer_sink(&w);
	int rc = run(path, &ws);
	*bytes = w.bytes;
	es_writer_free(&w);
	return rc;
}

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
		int z = es_z_magic(d, n);
		const unsigned char *want = d;
		unsigned char *plain = NULL;
		if (z) {
			/* accepted: zlib agrees it inflates to what was written */
			FZ_ASSERT(w.bytes < (1u << 30));
			want = plain = inflate_all(d, n, w.bytes);
			FZ_ASSERT(plain);
		} else {
			FZ_ASSERT(w.bytes == n);
		}
		size_t m = (size_t)w.bytes;
		unsigned char *back = malloc(m ? m : 1);
		FZ_ASSERT(pread(out.fd, back, m, 0) == (ssize_t)m);
		FZ_ASSERT(memcmp(back, want, m) == 0);

		/* compressed by the writer, read back to the same plain bytes */
		struct fz_file zf, pf;
		uint64_t zb, pb;
		fz_file(&zf, "", 0);
		fz_file(&pf, "", 0);
		FZ_ASSERT(copy(in.path, zf.fd, 1 + (int)(n % 9), &zb) == 0 && zb == m);
		FZ_ASSERT(copy(zf.path, pf.fd, 0, &pb) == 0 && pb == m);
		FZ_ASSERT(pread(pf.fd, back, m, 0) == (ssize_t)m);
		FZ_ASSERT(memcmp(back, want, m) == 0);
		fz_close(&pf);
		fz_close(&zf);
		free(back);
		free(plain);

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
