/* fuzz.h: what the libFuzzer targets share: the fuzzed bytes as a file the
 * path-taking parsers can open (a memfd, named by /proc/self/fd/N). */
#ifndef ENVSYNC_FUZZ_H
#define ENVSYNC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

struct fz_file {
	int fd;
	char path[64];
};

/* A memfd holding N bytes of D; abort on failure (the harness is broken). */
static inline void fz_file(struct fz_file *f, const void *d, size_t n)
{
	f->fd = memfd_create("envsync-fuzz", MFD_CLOEXEC);
	if (f->fd < 0) {
		perror("memfd_create");
		abort();
	}
	const char *p = d;
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(f->fd, p + done, n - done);
		if (w <= 0) {
			perror("write memfd");
			abort();
		}
		done += (size_t)w;
	}
	snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

static inline void fz_close(struct fz_file *f)
{
	close(f->fd);
	f->fd = -1;
}

/* A harness check that failed: a finding, reported as a crash. */
#define FZ_ASSERT(c)                                                               \
	do {                                                                       \
		if (!(c)) {                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,     \
				__LINE__, #c);                                     \
			abort();                                                   \
		}                                                                  \
	} while (0)

static inline FILE *fz_devnull(void)
{
	static FILE *f;
	if (!f)
		f = fopen("/dev/null", "w");
	if (!f)
		abort();
	return f;
}

#endif
