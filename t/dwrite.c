/* dwrite.c: test helper for lib/dwrite.c. Writes FILE through es_dw as a
 * copy does, in pieces of random lengths, alignments and gaps (some only
 * made by ftruncate, as build_items pads an item), the same bytes into
 * memory, and compares the two. Prints whether O_DIRECT was on; exits 0
 * when the file is exact, 1 when not, 2 on trouble.
 *
 *   dwrite FILE SEED [ooo]    ooo: one write goes back before the last */
#include "dwrite.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t state;

static uint64_t rnd(uint64_t n)
{
	state = state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (state >> 33) % n;
}

static size_t pick_len(void)
{
	switch (rnd(4)) {
	case 0:
		return 1u << 20; /* a view's chunk */
	case 1:
		return 4u << 20; /* a view's window */
	case 2:
		return 1 + (size_t)rnd(8192);
	default:
		return 1 + (size_t)rnd(2u << 20);
	}
}

static uint64_t pick_gap(void)
{
	switch (rnd(10)) {
	case 0:
		return 1 + rnd(5000);
	case 1:
		return 1 + rnd(3u << 20); /* past blocks: a hole */
	default:
		return 0;
	}
}

/* Write FILE (open on FD) as described at the top; 0 exact, 1 not, 2 trouble. */
static int check(int fd, const char *file, int ooo, const unsigned char *pool, unsigned char *want,
		 unsigned char *got, uint64_t total)
{
	struct es_dw w;
	es_dw_init(&w, fd, file, total);
	printf("%s\n", w.direct ? "direct" : "buffered");
	uint64_t off = 0, last = 0;
	int went_back = 0;
	while (off < total) {
		off += pick_gap();
		if (off >= total)
			break;
		if (rnd(8) == 0 && ftruncate(fd, (off_t)off) < 0)
			return 2; /* padding, as build_items makes it */
		if (ooo && !went_back && off > (8u << 20)) {
			off = last + rnd(off - last); /* back into the last write */
			went_back = 1;
		}
		size_t n = pick_len();
		if (n > total - off)
			n = (size_t)(total - off);
		/* aligned in memory, or not, independently of the offset */
		const unsigned char *p = pool + (rnd(2) ? 0 : 1 + rnd(8191));
		memcpy(want + off, p, n);
		if (es_dw_write(&w, p, n, off) < 0) {
			es_report();
			(void)es_dw_finish(&w);
			return 2;
		}
		last = off;
		off += n;
	}
	if (es_dw_finish(&w) < 0 || ftruncate(fd, (off_t)total) < 0) {
		es_report();
		return 2;
	}
	for (uint64_t at = 0; at < total;) {
		size_t k = total - at < (1u << 20) ? (size_t)(total - at) : 1u << 20;
		if (pread(fd, got, k, (off_t)at) != (ssize_t)k) {
			perror("pread");
			return 2;
		}
		for (size_t i = 0; i < k; i++)
			if (got[i] != want[at + i]) {
				printf("differs at byte %llu\n", (unsigned long long)(at + i));
				return 1;
			}
		at += k;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: dwrite FILE SEED [ooo]\n");
		return 2;
	}
	es_set_program("dwrite");
	state = strtoull(argv[2], NULL, 10);
	uint64_t total = (24u << 20) + rnd(100000);
	size_t pool_len = (5u << 20) + 8192;
	void *pool;
	if (posix_memalign(&pool, ES_DW_ALIGN, pool_len) != 0)
		return 2;
	for (size_t i = 0; i < pool_len; i++)
		((unsigned char *)pool)[i] = (unsigned char)rnd(256);
	unsigned char *want = es_calloc(total, 1), *got = es_malloc(1u << 20);
	int rc = 2;
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		perror(argv[1]);
	else
		rc = check(fd, argv[1], argc > 3 && strcmp(argv[3], "ooo") == 0, pool, want, got,
			   total);
	if (fd >= 0)
		close(fd);
	free(want);
	free(got);
	free(pool);
	return rc;
}
