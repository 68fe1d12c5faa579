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

/* Force zlib (0) or allow the fast path (1, the default); returns whether the
 * fast path will be used. For tests and benchmarks. */
int es_crc32_fast(int allow);

#endif
