/* fuzz/image.c: the env image parser (es_env_open, es_env_read_item) on
 * fuzzed files and pipes; an accepted image must serialize back to the very
 * header and directory it was read from, and find every item by name. */
#include "config.h"
#include "fuzz.h"
#include "image.h"

#include <fcntl.h>
#include <string.h>

static void check(const char *path, const uint8_t *d, size_t n, enum es_env_mode mode,
		  int pipe_input)
{
	struct es_env env;
	if (es_env_open(&env, path, mode) < 0)
		return;
	int all_read = 1;
	for (uint32_t i = 0; i < env.nitems; i++) {
		uint32_t crc;
		FZ_ASSERT(es_env_find(&env, env.items[i].name) == (int)i);
		if (es_env_item_crc(&env, i, &crc) < 0)
			all_read = 0;
	}
	if (env.is_image) {
		size_t hlen;
		unsigned char *h = es_image_header(env.rev, env.items, env.nitems, &hlen);
		FZ_ASSERT(hlen <= n && memcmp(h, d, hlen) == 0);
		free(h);
		if (all_read && !pipe_input) {
			uint64_t end = hlen;
			for (uint32_t i = 0; i < env.nitems; i++)
				end += env.items[i].size;
			FZ_ASSERT(end == n);
		}
	} else {
		FZ_ASSERT(env.nitems == 1 && env.items[0].size == n);
	}
	es_env_close(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct fz_file f;
	fz_file(&f, d, n);
	check(f.path, d, n, ES_ENV_AUTO, 0);
	check(f.path, d, n, ES_ENV_IMAGE, 0);
	fz_close(&f);

	/* from a pipe (size unknown): what envdiff reads from stdin */
	int p[2];
	if (n <= 65536 && pipe2(p, O_CLOEXEC) == 0) {
		if (fcntl(p[1], F_SETPIPE_SZ, 65536) >= 0 &&
		    write(p[1], d, n) == (ssize_t)n) {
			char path[64];
			close(p[1]);
			p[1] = -1;
			snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
			check(path, d, n, ES_ENV_AUTO, 1);
		}
		if (p[1] >= 0)
			close(p[1]);
		close(p[0]);
	}
	return 0;
}
