/* shrinkshim.c: an LD_PRELOAD shim that cuts a file short while a tool has
 * it mapped (lib/view.c), the moment another writer could: right after the
 * tool's first mmap of SHRINK_PATH, the file is truncated to SHRINK_TO bytes,
 * so the tool's next access past that takes SIGBUS.
 * Test-only: the shipped binaries carry no hooks. */
/* a feature-test macro (for RTLD_NEXT), reserved for exactly this use */
#define _GNU_SOURCE /* NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp) */
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static int done;

static void maybe_shrink(int fd)
{
	const char *path = getenv("SHRINK_PATH"), *to = getenv("SHRINK_TO");
	struct stat a, b;
	if (done || !path || !to || fd < 0 || fstat(fd, &a) < 0 || stat(path, &b) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return;
	done = 1;
	if (truncate(path, (off_t)strtoll(to, NULL, 10)) < 0)
		abort();
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	static void *(*real)(void *, size_t, int, int, int, off_t);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "mmap");
	void *m = real(addr, len, prot, flags, fd, off);
	if (m != MAP_FAILED && !(flags & MAP_ANONYMOUS))
		maybe_shrink(fd);
	return m;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}
