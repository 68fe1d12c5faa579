/* crccheck.c: test helper for t/crc.bats: es_crc32 (lib/crc.c) against zlib.
 *   crccheck path            print the way es_crc32 computes: 0 zlib, 1 128-bit
 *                            folding (PCLMULQDQ), 2 256-bit (VPCLMULQDQ)
 *   crccheck all [MOST]      every length 0..4200 at every alignment 0..63, and
 *                            long buffers, from several initial CRCs
 *   crccheck pieces [MOST]   long buffers fed in random pieces, and the
 *                            pieces' own CRC32s combined (es_crc32_combine)
 *   crccheck file FILE       print the CRC32 of FILE by zlib and by es_crc32
 *   crccheck zeros           es_crc32_zeros against zlib over zero bytes, for
 *                            lengths 0..5000, around 64 KiB and past 4 GiB
 * MOST (0, 1, 2) is the fastest way es_crc32 may use; the program says which
 * it got. Prints the first mismatches and exits 1 if there are any. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "crc.h"

#define BIG (3u << 20)

static unsigned char *buf;
static unsigned long bad, checked;

static uint64_t rng = 88172645463325252u;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void check(uint32_t init, size_t off, size_t n)
{
	uint32_t want = (uint32_t)crc32_z(init, buf + off, n);
	uint32_t got = es_crc32(init, buf + off, n);
	checked++;
	if (got != want && bad++ < 10)
		printf("mismatch: init %08x offset %zu length %zu: %08x, zlib %08x\n",
		       init, off, n, got, want);
}

static void all(void)
{
	static const uint32_t inits[] = {0, 0xffffffffu, 0x12345678u, 0x80000001u};
	for (size_t k = 0; k < sizeof inits / sizeof inits[0]; k++) {
		for (size_t off = 0; off < 64; off++)
			for (size_t n = 0; n <= 4200; n++)
				check(inits[k], off, n);
		for (size_t n = 65536 - 70; n < 65536 + 70; n++)
			check(inits[k], k, n);
		check(inits[k], 0, BIG);
		check(inits[k], 13, BIG - 13);
	}
}

static void pieces(void)
{
	for (int round = 0; round < 200; round++) {
		size_t total = 1 + next_rand() % (BIG - 64), off = next_rand() % 64;
		uint32_t got = 0, comb = 0;
		for (size_t done = 0; done < total;) {
			size_t n = next_rand() % (next_rand() % 2 ? 300 : 70000);
			if (n > total - done)
				n = total - done;
			got = es_crc32(got, buf + off + done, n);
			/* the same from each piece's own CRC32, combined */
			comb = es_crc32_combine(comb, es_crc32(0, buf + off + done, n), n);
			done += n;
		}
		uint32_t want = (uint32_t)crc32_z(0, buf + off, total);
		checked++;
		if ((got != want || comb != want) && bad++ < 10)
			printf("mismatch in pieces: offset %zu length %zu: %08x, combined %08x, "
			       "zlib %08x\n", off, total, got, comb, want);
	}
}

static void check_zeros(const unsigned char *zero, uint32_t init, uint64_t n)
{
	uint32_t want = init;
	for (uint64_t done = 0; done < n;) {
		size_t k = n - done < BIG ? (size_t)(n - done) : BIG;
		/* past 4 GiB, the folding CRC: zlib alone would take seconds */
		want = n > BIG ? es_crc32(want, zero, k) : (uint32_t)crc32_z(want, zero, k);
		done += k;
	}
	uint32_t got = es_crc32_zeros(init, n);
	checked++;
	if (got != want && bad++ < 10)
		printf("mismatch in zeros: init %08x length %llu: %08x, want %08x\n", init,
		       (unsigned long long)n, got, want);
}

static void zeros(void)
{
	static const uint32_t inits[] = {0, 0xffffffffu, 0x12345678u};
	unsigned char *zero = calloc(1, BIG);
	if (!zero)
		exit(2);
	for (size_t k = 0; k < sizeof inits / sizeof inits[0]; k++) {
		for (uint64_t n = 0; n <= 5000; n++)
			check_zeros(zero, inits[k], n);
		for (uint64_t n = 65536 - 3; n < 65536 + 3; n++)
			check_zeros(zero, inits[k], n);
	}
	check_zeros(zero, 0x9abcdef0u, ((uint64_t)5 << 30) + 7);
	free(zero);
}

static int file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint32_t z = 0, e = 0;
	size_t n;
	if (!f) {
		perror(path);
		return 2;
	}
	while ((n = fread(buf, 1, BIG, f)) > 0) {
		z = (uint32_t)crc32_z(z, buf, n);
		e = es_crc32(e, buf, n);
	}
	fclose(f);
	printf("%08x %08x\n", z, e);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: crccheck path | all [MOST] | pieces [MOST] | zeros | file FILE\n");
		return 2;
	}
	buf = malloc(BIG);
	if (!buf)
		return 2;
	for (size_t i = 0; i < BIG; i++)
		buf[i] = (unsigned char)(next_rand() >> 56);
	if (strcmp(argv[1], "file") == 0 && argc == 3)
		return file(argv[2]);
	if (strcmp(argv[1], "path") == 0) {
		printf("%d\n", es_crc32_path(ES_CRC_BEST));
		return 0;
	}
	int way = es_crc32_path(argc == 3 ? (int)strtol(argv[2], NULL, 10) : ES_CRC_BEST);
	if (strcmp(argv[1], "all") == 0)
		all();
	else if (strcmp(argv[1], "pieces") == 0)
		pieces();
	else if (strcmp(argv[1], "zeros") == 0)
		zeros();
	else
		return 2;
	printf("way %d: %lu checked, %lu mismatches\n", way, checked, bad);
	return bad != 0;
}
