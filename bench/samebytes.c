/* samebytes: are two files the same, byte for byte?
 *
 *   samebytes A B      exit 0: the same; 1: they differ; 2: trouble (said)
 *
 * bench/run checks every apply's result with it. cmp -s does the same job
 * through read(): 0.49-0.51 s for a warm 1 GiB pair here, where mapping
 * both files and comparing the pages in place took 0.14-0.17 s, and a full
 * bench run made 243 such checks at 1 GiB. (cmp -s stays the floor
 * measured for a diff: that is what a user would run.) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define WINDOW ((size_t)64 << 20) /* mapped at a time, per file */

static int trouble(const char *what, const char *name)
{
	fprintf(stderr, "samebytes: %s: %s: %s\n", name, what, strerror(errno));
	return 2;
}

/* 0 the same, 1 not, 2 trouble; both files already the same size */
static int compare(int a, int b, off_t size, char **names)
{
	for (off_t at = 0; at < size; at += (off_t)WINDOW) {
		size_t len = WINDOW;
		if (size - at < (off_t)WINDOW)
			len = (size_t)(size - at); /* > 0: at < size */
		void *p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, a, at);
		if (p == MAP_FAILED)
			return trouble("cannot map", names[0]);
		void *q = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, b, at);
		if (q == MAP_FAILED) {
			munmap(p, len);
			return trouble("cannot map", names[1]);
		}
		int differ = memcmp(p, q, len) != 0;
		munmap(p, len);
		munmap(q, len);
		if (differ)
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: samebytes A B\n");
		return 2;
	}
	int fd[2];
	struct stat st[2];
	for (int i = 0; i < 2; i++) {
		fd[i] = open(argv[i + 1], O_RDONLY | O_CLOEXEC);
		if (fd[i] < 0)
			return trouble("cannot open", argv[i + 1]);
		if (fstat(fd[i], &st[i]) < 0)
			return trouble("cannot stat", argv[i + 1]);
		if (!S_ISREG(st[i].st_mode)) {
			errno = EINVAL;
			return trouble("not a regular file", argv[i + 1]);
		}
	}
	if (st[0].st_size != st[1].st_size)
		return 1;
	return compare(fd[0], fd[1], st[0].st_size, argv + 1);
}
