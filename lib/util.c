/* util.c: error reporting, checked allocation, small parsing helpers. */
#include "config.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char errbuf[1024];
static const char *program = "envsync";

void es_set_program(const char *name)
{
	const char *slash = strrchr(name, '/');
	program = slash ? slash + 1 : name;
}

const char *es_program(void)
{
	return program;
}

void es_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
}

void es_errno(const char *fmt, ...)
{
	int e = errno;
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(errbuf, sizeof errbuf, "%s: %s", msg, strerror(e));
}

const char *es_errmsg(void)
{
	return errbuf[0] ? errbuf : "unknown error";
}

void es_report(void)
{
	fprintf(stderr, "%s: %s\n", program, es_errmsg());
}

void es_warn(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", program);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void out_of_memory(size_t n)
{
	fprintf(stderr, "%s: out of memory (%zu bytes)\n", program, n);
	exit(ES_TROUBLE);
}

void *es_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		out_of_memory(n);
	return p;
}

void *es_calloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p)
		out_of_memory(n * m);
	return p;
}

int es_allzero(const unsigned char *p, size_t n)
{
	/* most calls are a stream record's few padding bytes, where a call to
	 * memcmp cost more than the loop: a fifth of reading a dense diff */
	if (n <= 64) {
		unsigned char acc = 0;
		for (size_t i = 0; i < n; i++)
			acc |= p[i];
		return acc == 0;
	}
	return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

int es_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	unsigned long long v = strtoull(hex ? s + 2 : s, &end, hex ? 16 : 10);
	if (hex && (!s[2] || s[2] == '-' || s[2] == '+'))
		return -1;
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}
