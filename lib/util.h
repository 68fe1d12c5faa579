/* util.h: error reporting, exit codes, little-endian fields, checked allocation.
 * Errors are recorded where they happen and printed once, by the tool's main. */
#ifndef ENVSYNC_UTIL_H
#define ENVSYNC_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Exit statuses shared by every tool (cmp/diff style). */
enum es_exit {
	ES_OK = 0,        /* same / success */
	ES_DIFFERENT = 1, /* different / the other expected outcome */
	ES_TROUBLE = 2,   /* bad input, I/O error, usage error */
	ES_DIVERGED = 3,  /* equal revisions but different contents */
	ES_WRONGBASE = 4, /* target is neither at the diff's base nor its result */
	ES_BUSY = 5,      /* target locked by another envapply */
	ES_RECOVERED = 6, /* unused: reserved */
};

/* Record an error message (printf style); the last one wins. */
void es_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Record an error message with ": strerror(errno)" appended. */
void es_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *es_errmsg(void);
/* Print "prog: message" for the recorded error. */
void es_report(void);
/* Print "prog: message" for a warning, now. */
void es_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void es_set_program(const char *name);
const char *es_program(void);

void *es_malloc(size_t n);
void *es_calloc(size_t n, size_t m);

static inline uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}
static inline void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}
static inline void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static inline void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* Is every byte of p[0..n) zero? */
int es_allzero(const unsigned char *p, size_t n);

/* Parse an unsigned decimal (or 0x hex) number; 0 on success. */
int es_parse_u64(const char *s, uint64_t *out);

#endif
