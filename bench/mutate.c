/* mutate.c: bench helper: copy BASE to OUT, changing scattered bytes.
 *   mutate BASE OUT one        change the single byte in the middle
 *   mutate BASE OUT FRACTION   change about FRACTION of the bytes (0 < f <= 0.5),
 *                              at random positions (fixed seed), gaps uniform
 *                              in 1 .. 2/f-1 so their mean is 1/f
 * Every changed byte is XORed with a nonzero value, so it really differs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF (1u << 20)

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The next position after POS: a random gap, or never (one change only). */
static uint64_t advance(uint64_t pos, uint64_t span)
{
	return span ? pos + 1 + next_rand() % span : UINT64_MAX;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: mutate BASE OUT one|FRACTION\n");
		return 2;
	}
	FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
	if (!in || !out) {
		perror(in ? argv[2] : argv[1]);
		return 2;
	}
	fseek(in, 0, SEEK_END);
	uint64_t size = (uint64_t)ftell(in), span = 0, next;
	rewind(in);
	if (strcmp(argv[3], "one") == 0) {
		next = size / 2;
	} else {
		double f = atof(argv[3]);
		if (!(f > 0 && f <= 0.5)) {
			fprintf(stderr, "mutate: fraction must be in (0, 0.5]\n");
			return 2;
		}
		span = (uint64_t)(2 / f) - 1;
		next = advance(0, span) - 1;
	}
	unsigned char *buf = malloc(BUF);
	uint64_t pos = 0, changed = 0;
	size_t n;
	while (buf && (n = fread(buf, 1, BUF, in)) > 0) {
		for (; next < pos + n; next = advance(next, span), changed++)
			buf[next - pos] ^= (unsigned char)(1 + next_rand() % 255);
		if (fwrite(buf, 1, n, out) != n)
			break;
		pos += n;
	}
	if (!buf || ferror(in) || fclose(out) != 0 || pos != size) {
		fprintf(stderr, "mutate: %s: copy failed\n", argv[2]);
		return 2;
	}
	printf("%llu\n", (unsigned long long)changed);
	return 0;
}
