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
 * initial CRC register enters by XOR into the first four bytes. */
#include "config.h"
#include "crc.h"

#include <zlib.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define ES_CRC_FOLD 1
#include <immintrin.h>
#endif

/* Shorter buffers are left to zlib. */
#define FOLD_MIN 64

/* -1 until the first call looks at the CPU, then 0 (zlib) or 1 (folding). */
static int fast = -1;

static uint32_t es_crc32_zlib(uint32_t crc, const unsigned char *buf, size_t n)
{
	return (uint32_t)crc32_z(crc, buf, n);
}

#ifdef ES_CRC_FOLD

/* Fold constants: low qword for the lane's high half, high qword for its low
 * half; for T = 512 (four lanes ahead) and T = 128 (one lane ahead). */
static uint64_t k512[2], k128[2];

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

static void init_fold(void)
{
	k512[0] = fold_const(512 + 32);
	k512[1] = fold_const(512 - 32);
	k128[0] = fold_const(128 + 32);
	k128[1] = fold_const(128 - 32);
}

#define FOLD_TARGET __attribute__((target("pclmul,sse2")))

FOLD_TARGET static inline __m128i load(const unsigned char *p)
{
	return _mm_loadu_si128((const __m128i *)(const void *)p);
}

/* The lane X moved forward by the constants' distance, XORed into NEXT. */
FOLD_TARGET static inline __m128i fold(__m128i x, __m128i k, __m128i next)
{
	__m128i lo = _mm_clmulepi64_si128(x, k, 0x00);
	__m128i hi = _mm_clmulepi64_si128(x, k, 0x11);
	return _mm_xor_si128(_mm_xor_si128(lo, hi), next);
}

/* n >= FOLD_MIN. */
FOLD_TARGET static uint32_t crc_fold(uint32_t crc, const unsigned char *p, size_t n)
{
	__m128i k4 = load((const unsigned char *)k512);
	__m128i k1 = load((const unsigned char *)k128);
	__m128i x0 = _mm_xor_si128(load(p), _mm_cvtsi32_si128((int)~crc));
	__m128i x1 = load(p + 16), x2 = load(p + 32), x3 = load(p + 48);
	for (p += 64, n -= 64; n >= 64; p += 64, n -= 64) {
		x0 = fold(x0, k4, load(p));
		x1 = fold(x1, k4, load(p + 16));
		x2 = fold(x2, k4, load(p + 32));
		x3 = fold(x3, k4, load(p + 48));
	}
	x3 = fold(fold(fold(x0, k1, x1), k1, x2), k1, x3);
	for (; n >= 16; p += 16, n -= 16)
		x3 = fold(x3, k1, load(p));
	unsigned char last[16];
	_mm_storeu_si128((__m128i *)(void *)last, x3);
	/* zlib with register 0 (crc ~0) over the folded lane, then the tail */
	crc = es_crc32_zlib(0xffffffffu, last, sizeof last);
	return es_crc32_zlib(crc, p, n);
}

static int cpu_can_fold(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse2");
}

#else

static void init_fold(void)
{
}

static int cpu_can_fold(void)
{
	return 0;
}

static uint32_t crc_fold(uint32_t crc, const unsigned char *p, size_t n)
{
	return es_crc32_zlib(crc, p, n);
}

#endif

int es_crc32_fast(int allow)
{
	fast = allow && cpu_can_fold();
	if (fast)
		init_fold();
	return fast;
}

uint32_t es_crc32(uint32_t crc, const unsigned char *buf, size_t n)
{
	if (fast < 0)
		es_crc32_fast(1);
	if (!fast || n < FOLD_MIN)
		return es_crc32_zlib(crc, buf, n);
	return crc_fold(crc, buf, n);
}
