/* judgegen: the data bench/judgebench measures envjudge's choices on.
 *
 *   judgegen base SIZE SEED OUT          SIZE pseudo-random bytes
 *   judgegen change PATTERN SEED IN OUT  IN with PATTERN's bytes changed
 *
 * PATTERN: spots:N      N distinct single bytes, uniformly scattered
 *          frac:P       every byte changed with probability P (0 < P <= 1)
 *          run:P        one run of P x SIZE bytes at a random offset
 *          runs:LEN:P   runs of LEN bytes on LEN-aligned offsets, chosen
 *                       without repetition, covering P x SIZE bytes
 * A changed byte is XORed with a random nonzero byte, so it really changes.
 * change prints "BYTES SPOTS": bytes changed and maximal runs of them.
 * Deterministic in SEED; whole files in memory (a benchmark helper). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rs;

static uint64_t rnd(void) /* splitmix64 */
{
	uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t n) /* uniform in [0, n) */
{
	return (uint64_t)(((unsigned __int128)rnd() * n) >> 64);
}

static unsigned char nonzero(void)
{
	return (unsigned char)(1 + below(255));
}

__attribute__((noreturn)) static void fail(const char *what, const char *name, int e)
{
	fprintf(stderr, "judgegen: %s%s%s%s%s\n", name ? name : "", name ? ": " : "", what,
		e ? ": " : "", e ? strerror(e) : "");
	exit(2);
}

__attribute__((noreturn)) static void die(const char *what, const char *name)
{
	fail(what, name, 0);
}

__attribute__((noreturn)) static void die_sys(const char *what, const char *name)
{
	fail(what, name, errno ? errno : EIO);
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		die_sys("out of memory", NULL);
	return p;
}

static void write_out(const char *path, const unsigned char *b, uint64_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0)
		die_sys("cannot write", path);
}

static unsigned char *read_in(const char *path, uint64_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f || fseeko(f, 0, SEEK_END) < 0)
		die_sys("cannot read", path);
	*n = (uint64_t)ftello(f);
	rewind(f);
	unsigned char *b = xmalloc(*n);
	if (fread(b, 1, *n, f) != *n)
		die_sys("short read", path);
	fclose(f);
	return b;
}

static uint64_t parse_u64(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || end == s)
		die("not a number", s);
	return v;
}

static double parse_frac(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (*end || end == s || !(v > 0) || v > 1)
		die("not a fraction in (0, 1]", s);
	return v;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "base") == 0) {
		uint64_t n = parse_u64(argv[2]);
		rs = parse_u64(argv[3]);
		unsigned char *b = xmalloc(n + 8);
		for (uint64_t i = 0; i < n; i += 8) {
			uint64_t r = rnd();
			memcpy(b + i, &r, 8);
		}
		write_out(argv[4], b, n);
		free(b);
		return 0;
	}
	if (argc != 6 || strcmp(argv[1], "change") != 0) {
		fprintf(stderr, "usage: judgegen base SIZE SEED OUT\n"
				"       judgegen change PATTERN SEED IN OUT\n");
		return 2;
	}
	const char *pat = argv[2];
	rs = parse_u64(argv[3]);
	uint64_t n;
	unsigned char *b = read_in(argv[4], &n);
	unsigned char *mark = xmalloc(n); /* 1: byte changed */
	if (n == 0)
		die("empty input", argv[4]);
	if (strncmp(pat, "spots:", 6) == 0) {
		uint64_t k = parse_u64(pat + 6);
		if (k > n)
			die("more spots than bytes", pat);
		for (uint64_t done = 0; done < k;) {
			uint64_t at = below(n);
			if (!mark[at]) {
				mark[at] = 1;
				done++;
			}
		}
	} else if (strncmp(pat, "frac:", 5) == 0) {
		double p = parse_frac(pat + 5);
		if (p >= 1)
			memset(mark, 1, n);
		else {
			uint32_t lim = (uint32_t)(p * 4294967296.0);
			for (uint64_t i = 0; i < n; i += 2) {
				uint64_t r = rnd();
				mark[i] = (uint32_t)r < lim;
				if (i + 1 < n)
					mark[i + 1] = (uint32_t)(r >> 32) < lim;
			}
		}
	} else if (strncmp(pat, "run:", 4) == 0) {
		uint64_t len = (uint64_t)(parse_frac(pat + 4) * (double)n);
		len = len ? len : 1;
		uint64_t at = below(n - len + 1);
		memset(mark + at, 1, len);
	} else if (strncmp(pat, "runs:", 5) == 0) {
		char *colon = strchr(pat + 5, ':');
		if (!colon)
			die("expected runs:LEN:P", pat);
		*colon = 0;
		uint64_t len = parse_u64(pat + 5);
		double p = parse_frac(colon + 1);
		if (len == 0) /* checked before it divides */
			die("runs do not fit", argv[2]);
		uint64_t slots = n / len, k = (uint64_t)(p * (double)n) / len;
		if (k > slots)
			die("runs do not fit", argv[2]);
		k = k ? k : 1;
		for (uint64_t done = 0; done < k;) {
			uint64_t s = below(slots);
			if (!mark[s * len]) {
				memset(mark + s * len, 1, len);
				done++;
			}
		}
	} else
		die("unknown pattern (spots:N, frac:P, run:P, runs:LEN:P)", pat);
	uint64_t bytes = 0, spots = 0;
	for (uint64_t i = 0; i < n; i++)
		if (mark[i]) {
			b[i] ^= nonzero();
			bytes++;
			spots += i == 0 || !mark[i - 1];
		}
	write_out(argv[5], b, n);
	free(mark);
	free(b);
	printf("%llu %llu\n", (unsigned long long)bytes, (unsigned long long)spots);
	return 0;
}
