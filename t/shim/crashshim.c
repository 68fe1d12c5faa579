/* crashshim.c: an LD_PRELOAD shim for the crash tests: counts the calls that
 * change files (write, pwrite, fsync, fdatasync, rename, ftruncate, link,
 * unlink) and kills the process with SIGKILL at call number CRASH_AT, before
 * the call takes effect. With CRASH_SIG=N it sends signal N instead and lets
 * the call go on (an interrupt at a known point, not at a guessed time).
 * With CRASH_COUNT=FILE it writes the total at exit.
 * Test-only: the shipped binaries carry no hooks. */
/* a feature-test macro (for RTLD_NEXT), reserved for exactly this use */
#define _GNU_SOURCE /* NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp) */
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

static long calls, crash_at = -1;
static int crash_sig = SIGKILL;

__attribute__((constructor)) static void init(void)
{
	const char *s = getenv("CRASH_AT");
	if (s)
		crash_at = strtol(s, NULL, 10);
	s = getenv("CRASH_SIG");
	if (s)
		crash_sig = (int)strtol(s, NULL, 10);
}

__attribute__((destructor)) static void fini(void)
{
	const char *f = getenv("CRASH_COUNT");
	if (!f)
		return;
	int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		char buf[32];
		int n = snprintf(buf, sizeof buf, "%ld\n", calls);
		ssize_t (*real)(int, const void *, size_t) = dlsym(RTLD_NEXT, "write");
		(void)!real(fd, buf, (size_t)n);
		close(fd);
	}
}

static void tick(void)
{
	if (++calls == crash_at)
		kill(getpid(), crash_sig);
}

/* params and args are parenthesised lists: they cannot take more parentheses */
/* NOLINTBEGIN(bugprone-macro-parentheses) */
#define WRAP(ret, name, params, args)                                   \
	ret name params                                                 \
	{                                                               \
		static ret(*real) params;                               \
		if (!real)                                              \
			real = (ret(*) params)dlsym(RTLD_NEXT, #name);  \
		tick();                                                 \
		return real args;                                       \
	}
/* NOLINTEND(bugprone-macro-parentheses) */

WRAP(ssize_t, write, (int fd, const void *b, size_t n), (fd, b, n))
WRAP(ssize_t, pwrite, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o))
WRAP(ssize_t, pwrite64, (int fd, const void *b, size_t n, off64_t o), (fd, b, n, o))
WRAP(int, fsync, (int fd), (fd))
WRAP(int, fdatasync, (int fd), (fd))
WRAP(int, rename, (const char *a, const char *b), (a, b))
WRAP(int, ftruncate, (int fd, off_t n), (fd, n))
WRAP(int, ftruncate64, (int fd, off64_t n), (fd, n))
WRAP(int, link, (const char *a, const char *b), (a, b))
WRAP(int, unlink, (const char *a), (a))
