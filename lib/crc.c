/* crc.c: zlib's CRC32 by folding with carry-less multiplication (PCLMULQDQ),
 * after Intel's "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ
 * Instruction" (2009), in the bit-reflected form zlib's CRC uses.
 *
 * A message is a polynomial over GF(2); its raw CRC is M(x)*x^32 mod P(x),
 * P = 0x104C11DB7. Reflected means the first bit of each byte is its lowest
 * bit, so a 128-bit little-endian lane holds degrees 127..0 in bits 0..127.
 * Folding replaces a lane A lying T bits before a lane B by a 96-bit value
 * congruent to A*x^T, XORed into B: with A = Ah*x^64 + Al, Ah in the low
 * qword, A*x^T = Ah*(x^(T+64) mod P) + Al*(x^T mod P). Multiplying a
 * reflected 64-bit qword by a constant K = x^(T+32) mod P (resp. x^(T-32))
 * reflected over 33 bits gives a product whose bit s is degree 95 - s, i.e.
 * the product times x^32 in B's 128-bit frame: exactly the terms above.
 * Four lanes fold 64 bytes per step (T = 512), then fold into one lane
 * (T = 128), which holds a 16-byte message with the same raw CRC as all
 * before it; zlib finishes those 16 bytes and the tail of under 16. The
 * initial CRC register enters by XOR into the first four bytes. Where the
 * CPU has VPCLMULQDQ and AVX2, four 256-bit registers (two lanes each) fold
 * 128 bytes per step (T = 1024), then into one (T = 256), its two lanes
 * into one (T = 128): twice the speed again. */
#include "config.h"
#include "crc.h"

#include <zlib.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define CRC_X86 1
#include <immintrin.h>
#endif

/* Shortest buffers for the folding paths; shorter ones are left to zlib. */
#define FOLD128_MIN 64
#define FOLD256_MIN 256

/* ES_CRC_ZLIB .. ES_CRC_FOLD256, or -1 until the first call picks one. */
static int path = -1;

static uint32_t crc_zlib(uint32_t crc, const unsigned char *buf, size_t n)
{
	return (uint32_t)crc32_z(crc, buf, n);
}

#ifdef CRC_X86

/* Fold constants for moving a 128-bit lane T bits forward: [0] multiplies
 * the lane's low qword (its high-degree half), [1] its high qword. */
static uint64_t k128[2], k256[2], k512[2], k1024[2];

/* x^n mod P, in normal bit order (bit d is the coefficient of x^d). */
static uint32_t xpow_mod(unsigned n)
{
	uint32_t r = 1;
	while (n--)
		r = (r & 0x80000000u) ? (r << 1) ^ 0x04C11DB7u : r << 1;
	return r;
}

/* x^n mod P reflected over 33 bits: the 32-bit reflection, shifted by one. */
static uint64_t fold_const(unsigned n)
{
	uint32_t v = xpow_mod(n), r = 0;
	for (int i = 0; i < 32; i++)
		r |= ((v >> i) & 1u) << (31 - i);
	return (uint64_t)r << 1;
}

static void set_consts(uint64_t k[2], unsigned t)
{
	k[0] = fold_const(t + 32);
	k[1] = fold_const(t - 32);
}

static void init_fold(void)
{
	set_consts(k128, 128);
	set_consts(k256, 256);
	set_consts(k512, 512);
	set_consts(k1024, 1024);
}

#define FOLD128 __attribute__((target("pclmul,sse2")))
#define FOLD256 __attribute__((target("vpclmulqdq,pclmul,avx2")))

FOLD128 static inline __m128i load(const void *p)
{
	return _mm_loadu_si128((const __m128i *)p);
}

/* The lane X moved forward by K's distance, XORed into NEXT. */
FOLD128 static inline __m128i fold(__m128i x, __m128i k, __m128i next)
{
	__m128i lo = _mm_clmulepi64_si128(x, k, 0x00);
	__m128i hi = _mm_clmulepi64_si128(x, k, 0x11);
	return _mm_xor_si128(_mm_xor_si128(lo, hi), next);
}

/* Fold the 16-byte blocks of p[0..n) into lane X, then finish with zlib:
 * register 0 (crc ~0) over the lane, then the tail of under 16 bytes. */
FOLD128 static uint32_t finish(__m128i x, const unsigned char *p, size_t n)
{
	unsigned char last[16];
	for (; n >= 16; p += 16, n -= 16)
		x = fold(x, load(k128), load(p));
	_mm_storeu_si128((__m128i *)(void *)last, x);
	return crc_zlib(crc_zlib(0xffffffffu, last, sizeof last), p, n);
}

/* n >= FOLD128_MIN. */
FOLD128 static uint32_t crc_fold128(uint32_t crc, const unsigned char *p, size_t n)
{
	__m128i k4 = load(k512), k1 = load(k128);
	__m128i x0 = _mm_xor_si128(load(p), _mm_cvtsi32_si128((int)~crc));
	__m128i x1 = load(p + 16), x2 = load(p + 32), x3 = load(p + 48);
	for (p += 64, n -= 64; n >= 64; p += 64, n -= 64) {
		x0 = fold(x0, k4, load(p));
		x1 = fold(x1, k4, load(p + 16));
		x2 = fold(x2, k4, load(p + 32));
		x3 = fold(x3, k4, load(p + 48));
	}
	return finish(fold(fold(fold(x0, k1, x1), k1, x2), k1, x3), p, n);
}

FOLD256 static inline __m256i wload(const void *p)
{
	return _mm256_loadu_si256((const __m256i *)p);
}

/* Both lanes of X moved forward by K's distance, XORed into NEXT. */
FOLD256 static inline __m256i wfold(__m256i x, __m256i k, __m256i next)
{
	__m256i lo = _mm256_clmulepi64_epi128(x, k, 0x00);
	__m256i hi = _mm256_clmulepi64_epi128(x, k, 0x11);
	return _mm256_xor_si256(_mm256_xor_si256(lo, hi), next);
}

/* n >= FOLD256_MIN. */
FOLD256 static uint32_t crc_fold256(uint32_t crc, const unsigned char *p, size_t n)
{
	__m256i k4 = _mm256_broadcastsi128_si256(load(k1024));
	__m256i k1 = _mm256_broadcastsi128_si256(load(k256));
	__m256i c = _mm256_inserti128_si256(_mm256_setzero_si256(),
					    _mm_cvtsi32_si128((int)~crc), 0);
	__m256i y0 = _mm256_xor_si256(wload(p), c);
	__m256i y1 = wload(p + 32), y2 = wload(p + 64), y3 = wload(p + 96);
	for (p += 128, n -= 128; n >= 128; p += 128, n -= 128) {
		y0 = wfold(y0, k4, wload(p));
		y1 = wfold(y1, k4, wload(p + 32));
		y2 = wfold(y2, k4, wload(p + 64));
		y3 = wfold(y3, k4, wload(p + 96));
	}
	y3 = wfold(wfold(wfold(y0, k1, y1), k1, y2), k1, y3);
	__m128i x = fold(_mm256_castsi256_si128(y3), load(k128),
			 _mm256_extracti128_si256(y3, 1));
	return finish(x, p, n);
}

static int best_path(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("avx2"))
		return ES_CRC_FOLD256;
	return __builtin_cpu_supports("pclmul") ? ES_CRC_FOLD128 : ES_CRC_ZLIB;
}

static uint32_t crc_fold(uint32_t crc, const unsigned char *p, size_t n)
{
	if (path == ES_CRC_FOLD256 && n >= FOLD256_MIN)
		return crc_fold256(crc, p, n);
	if (n >= FOLD128_MIN)
		return crc_fold128(crc, p, n);
	return crc_zlib(crc, p, n);
}

#else

static void init_fold(void)
{
}

static int best_path(void)
{
	return ES_CRC_ZLIB;
}

static uint32_t crc_fold(uint32_t crc, const unsigned char *p, size_t n)
{
	return crc_zlib(crc, p, n);
}

#endif

uint32_t es_crc32_combine(uint32_t a, uint32_t b, uint64_t len_b)
{
	/* crc32_combine takes a z_off_t: a long, signed, 32-bit on some ABIs;
	 * A's part is only shifted, so a long B can be passed in pieces */
	const uint64_t most = sizeof(z_off_t) >= 8 ? (uint64_t)1 << 62 : (uint64_t)1 << 30;
	for (; len_b > most; len_b -= most)
		a = (uint32_t)crc32_combine(a, 0, (z_off_t)most);
	return (uint32_t)crc32_combine(a, b, (z_off_t)len_b);
}

/* Zeros only shift the register: with zlib's inversions, the raw CRC of
 * ~CRC followed by N zero bytes is ~CRC * x^(8N) mod P, which is what
 * crc32_combine computes for a second part whose CRC is 0. */
uint32_t es_crc32_zeros(uint32_t crc, uint64_t n)
{
	return ~es_crc32_combine(~crc, 0, n);
}

int es_crc32_path(int most)
{
	int best = best_path();
	path = most < best ? most : best;
	if (path < ES_CRC_ZLIB)
		path = ES_CRC_ZLIB;
	if (path != ES_CRC_ZLIB)
		init_fold();
	return path;
}

uint32_t es_crc32(uint32_t crc, const unsigned char *buf, size_t n)
{
	if (path < 0)
		es_crc32_path(ES_CRC_BEST);
	if (path == ES_CRC_ZLIB || n < FOLD128_MIN)
		return crc_zlib(crc, buf, n);
	return crc_fold(crc, buf, n);
}
