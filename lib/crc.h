/* crc.h: CRC32 as zlib computes it (reflected polynomial 0xEDB88320, initial
 * and final inversion), fast on x86-64 CPUs that have PCLMULQDQ. */
#ifndef ENVSYNC_CRC_H
#define ENVSYNC_CRC_H

#include <stddef.h>
#include <stdint.h>

/* Same result as zlib's crc32(crc, buf, n), for any n and alignment: a
 * carry-less multiplication folding loop where the CPU has it (checked at run
 * time), zlib otherwise. */
uint32_t es_crc32(uint32_t crc, const unsigned char *buf, size_t n);

/* The CRC32 CRC becomes after N more bytes that are all zero, without
 * reading them: a sparse file's holes (N is 64-bit for that reason). */
uint32_t es_crc32_zeros(uint32_t crc, uint64_t n);
/* The CRC32 of A's bytes followed by B's, from their CRC32s and B's length
 * (zlib's crc32_combine, for any 64-bit length). */
uint32_t es_crc32_combine(uint32_t a, uint32_t b, uint64_t len_b);

/* The ways to compute it, slowest first. */
#define ES_CRC_ZLIB 0    /* zlib's crc32_z */
#define ES_CRC_FOLD128 1 /* PCLMULQDQ, 128-bit lanes */
#define ES_CRC_FOLD256 2 /* VPCLMULQDQ with AVX2, 256-bit registers */
#define ES_CRC_BEST ES_CRC_FOLD256

/* Use the fastest way the CPU has, but none beyond MOST (the default is
 * ES_CRC_BEST); returns the way chosen. For tests and benchmarks. */
int es_crc32_path(int most);

#endif
