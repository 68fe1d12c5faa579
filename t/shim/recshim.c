/* recshim.c: an LD_PRELOAD shim for the power-loss test (t/powerloss.bats):
 * records every call that changes a file in one watched directory, so that
 * t/pwrreplay can rebuild what a power loss at any point could have left.
 *
 * Environment: PWR_DIR, the watched directory; PWR_LOG, the log to write
 * (text, one operation a line) with the written bytes in PWR_LOG.data.
 * Log lines ("ino" is the file's inode number at the time of the call):
 *   I ino name           a file that was in the directory at start
 *   C ino name           open(O_CREAT) created name
 *   W ino off len doff   len bytes written at off; the bytes are at doff in .data
 *   T ino len            the file was truncated or extended to len (ftruncate, O_TRUNC)
 *   S ino                fsync/fdatasync of the file completed
 *   D                    fsync of the watched directory itself completed
 *   R ino src dst        rename(src, dst) of inode ino
 *   L ino src dst        link(src, dst)
 *   U ino name           unlink(name)
 *   X what               a call the replayer cannot model touched the directory
 * Only calls that succeed are logged, after they return (an fsync counts as a
 * barrier only once it has completed). The "X" line makes the replay fail
 * instead of silently modelling less than the program did; pwrreplay -c
 * checks besides that replaying every logged operation gives exactly the
 * directory the program left, which catches writes this shim never saw (for
 * example through stdio, whose internal writes no preload can intercept).
 * Test-only: the shipped binaries carry no hooks. */
/* a feature-test macro (for RTLD_NEXT), reserved for exactly this use */
#define _GNU_SOURCE /* NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp) */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int logfd = -1, datafd = -1;
static unsigned long long dataoff;
static char wdir[PATH_MAX];
static dev_t wdev;
static ino_t wino;
/* inodes that live (or lived) in the watched directory */
static ino_t known[4096];
static int nknown;

/* params is a parenthesised list and ret a type: neither takes parentheses */
/* NOLINTBEGIN(bugprone-macro-parentheses) */
#define REAL(ret, name, params)                                             \
	static ret(*real_##name) params;                                    \
	if (!real_##name)                                                   \
		real_##name = (ret(*) params)dlsym(RTLD_NEXT, #name)
/* NOLINTEND(bugprone-macro-parentheses) */

/* Raw system calls for the log, so that the log never logs itself. */
static void raw_write(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		long r = syscall(SYS_write, fd, c, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			abort(); /* a lost log line would make the replay lie */
		c += r;
		n -= (size_t)r;
	}
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	char line[2 * PATH_MAX + 128];
	va_list ap;
	if (logfd < 0)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line)
		abort();
	raw_write(logfd, line, (size_t)n);
}

static void add_known(ino_t ino)
{
	for (int i = 0; i < nknown; i++)
		if (known[i] == ino)
			return;
	if (nknown == (int)(sizeof known / sizeof *known))
		abort();
	known[nknown++] = ino;
}

__attribute__((constructor)) static void init(void)
{
	const char *d = getenv("PWR_DIR"), *l = getenv("PWR_LOG");
	struct stat st;
	if (!d || !l || !realpath(d, wdir) || stat(wdir, &st) < 0)
		return;
	wdev = st.st_dev;
	wino = st.st_ino;
	char data[PATH_MAX + 8];
	snprintf(data, sizeof data, "%s.data", l);
	logfd = (int)syscall(SYS_openat, AT_FDCWD, l, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	datafd = (int)syscall(SYS_openat, AT_FDCWD, data, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0 || datafd < 0)
		abort();
	struct stat ds;
	if (fstat(datafd, &ds) < 0)
		abort();
	dataoff = (unsigned long long)ds.st_size;
	DIR *dir = opendir(wdir);
	struct dirent *e;
	if (!dir)
		abort();
	while ((e = readdir(dir))) {
		char p[2 * PATH_MAX];
		snprintf(p, sizeof p, "%s/%s", wdir, e->d_name);
		if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			add_known(st.st_ino);
			logf_("I %llu %s\n", (unsigned long long)st.st_ino, e->d_name);
		}
	}
	closedir(dir);
}

/* The name of PATH inside the watched directory, or NULL if it is elsewhere. */
static const char *watched_name(const char *path, char *buf)
{
	if (logfd < 0 || !path)
		return NULL;
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	char dir[PATH_MAX], real[PATH_MAX];
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return NULL;
	if (slash == path)
		strcpy(dir, "/");
	else if (slash)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	else
		strcpy(dir, ".");
	if (!realpath(dir, real) || strcmp(real, wdir) != 0)
		return NULL;
	snprintf(buf, PATH_MAX, "%s", base);
	return buf;
}

/* 1 if fd is a regular file of the watched directory, 2 if it is the
 * directory itself, else 0; *ino receives the inode. */
static int watched_fd(int fd, ino_t *ino)
{
	struct stat st;
	if (logfd < 0 || fstat(fd, &st) < 0 || st.st_dev != wdev)
		return 0;
	*ino = st.st_ino;
	if (S_ISDIR(st.st_mode))
		return st.st_ino == wino ? 2 : 0;
	if (!S_ISREG(st.st_mode))
		return 0;
	for (int i = 0; i < nknown; i++)
		if (known[i] == st.st_ino)
			return 1;
	return 0;
}

static ino_t ino_of(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 ? st.st_ino : 0;
}

static void log_data(ino_t ino, unsigned long long off, const void *p, size_t n)
{
	raw_write(datafd, p, n);
	logf_("W %llu %llu %zu %llu\n", (unsigned long long)ino, off, n, dataoff);
	dataoff += n;
}

/* ---- opening ---- */

static int after_open(const char *path, int flags, int existed, int fd)
{
	char nb[PATH_MAX];
	ino_t ino;
	struct stat st;
	const char *name = watched_name(path, nb);
	if (fd < 0 || !name || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return fd;
	ino = st.st_ino;
	if ((flags & O_ACCMODE) != O_RDONLY && (flags & O_APPEND))
		logf_("X O_APPEND %s\n", name);
	if (!existed) {
		add_known(ino);
		logf_("C %llu %s\n", (unsigned long long)ino, name);
	} else if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
		logf_("T %llu 0\n", (unsigned long long)ino);
	}
	return fd;
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

int open(const char *path, int flags, ...)
{
	REAL(int, open, (const char *, int, ...));
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	int existed = exists(path);
	return after_open(path, flags, existed, real_open(path, flags, mode));
}

int open64(const char *path, int flags, ...)
{
	REAL(int, open64, (const char *, int, ...));
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	int existed = exists(path);
	return after_open(path, flags, existed, real_open64(path, flags, mode));
}

int openat(int dirfd, const char *path, int flags, ...)
{
	REAL(int, openat, (int, const char *, int, ...));
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (dirfd != AT_FDCWD && path[0] != '/') {
		ino_t ino;
		if (watched_fd(dirfd, &ino) == 2 && (flags & O_ACCMODE) != O_RDONLY)
			logf_("X openat %s\n", path);
		return real_openat(dirfd, path, flags, mode);
	}
	int existed = exists(path);
	return after_open(path, flags, existed, real_openat(dirfd, path, flags, mode));
}

int creat(const char *path, mode_t mode)
{
	return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

/* mkstemp and friends open through glibc's internal open, which no preload
 * sees: a temporary file in the watched directory is not modelled. */
static void check_template(const char *what, int fd, const char *tmpl)
{
	char nb[PATH_MAX];
	if (fd >= 0 && watched_name(tmpl, nb))
		logf_("X %s %s\n", what, nb);
}

int mkostemp(char *tmpl, int flags)
{
	REAL(int, mkostemp, (char *, int));
	int fd = real_mkostemp(tmpl, flags);
	check_template("mkostemp", fd, tmpl);
	return fd;
}

int mkstemp(char *tmpl)
{
	REAL(int, mkstemp, (char *));
	int fd = real_mkstemp(tmpl);
	check_template("mkstemp", fd, tmpl);
	return fd;
}

/* stdio writes go through glibc's internal write: not modelled either. */
static void check_fopen(const char *path, const char *mode)
{
	char nb[PATH_MAX];
	if (strpbrk(mode, "wa+") && watched_name(path, nb))
		logf_("X fopen %s\n", nb);
}

FILE *fopen(const char *path, const char *mode)
{
	REAL(FILE *, fopen, (const char *, const char *));
	check_fopen(path, mode);
	return real_fopen(path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
	REAL(FILE *, fopen64, (const char *, const char *));
	check_fopen(path, mode);
	return real_fopen64(path, mode);
}

/* ---- data ---- */

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(ssize_t, write, (int, const void *, size_t));
	ino_t ino;
	if (!watched_fd(fd, &ino))
		return real_write(fd, buf, n);
	off_t off = lseek(fd, 0, SEEK_CUR);
	ssize_t r = real_write(fd, buf, n);
	if (r > 0) {
		int e = errno;
		log_data(ino, (unsigned long long)off, buf, (size_t)r);
		errno = e;
	}
	return r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(ssize_t, pwrite, (int, const void *, size_t, off_t));
	ino_t ino;
	ssize_t r = real_pwrite(fd, buf, n, off);
	if (r > 0 && watched_fd(fd, &ino))
		log_data(ino, (unsigned long long)off, buf, (size_t)r);
	return r;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	return pwrite(fd, buf, n, (off_t)off);
}

static void unmodelled_fd(const char *what, int fd)
{
	ino_t ino;
	if (watched_fd(fd, &ino))
		logf_("X %s %llu\n", what, (unsigned long long)ino);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(ssize_t, writev, (int, const struct iovec *, int));
	unmodelled_fd("writev", fd);
	return real_writev(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(ssize_t, pwritev, (int, const struct iovec *, int, off_t));
	unmodelled_fd("pwritev", fd);
	return real_pwritev(fd, iov, cnt, off);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	REAL(int, fallocate, (int, int, off_t, off_t));
	unmodelled_fd("fallocate", fd);
	return real_fallocate(fd, mode, off, len);
}

int ftruncate(int fd, off_t len)
{
	REAL(int, ftruncate, (int, off_t));
	ino_t ino;
	int r = real_ftruncate(fd, len);
	if (r == 0 && watched_fd(fd, &ino)) {
		int e = errno;
		logf_("T %llu %lld\n", (unsigned long long)ino, (long long)len);
		errno = e;
	}
	return r;
}

int ftruncate64(int fd, off64_t len)
{
	return ftruncate(fd, (off_t)len);
}

static void log_sync(int fd)
{
	ino_t ino;
	int e = errno;
	switch (watched_fd(fd, &ino)) {
	case 1:
		logf_("S %llu\n", (unsigned long long)ino);
		break;
	case 2:
		logf_("D\n");
		break;
	}
	errno = e;
}

int fsync(int fd)
{
	REAL(int, fsync, (int));
	int r = real_fsync(fd);
	if (r == 0)
		log_sync(fd);
	return r;
}

/* fdatasync persists the data and the size, which is all this model holds. */
int fdatasync(int fd)
{
	REAL(int, fdatasync, (int));
	int r = real_fdatasync(fd);
	if (r == 0)
		log_sync(fd);
	return r;
}

/* ---- names ---- */

int rename(const char *a, const char *b)
{
	REAL(int, rename, (const char *, const char *));
	char na[PATH_MAX], nb[PATH_MAX];
	const char *wa = watched_name(a, na), *wb = watched_name(b, nb);
	ino_t ino = wa ? ino_of(a) : 0;
	int r = real_rename(a, b);
	if (r == 0 && (wa || wb)) {
		int e = errno;
		if (wa && wb)
			logf_("R %llu %s %s\n", (unsigned long long)ino, wa, wb);
		else
			logf_("X rename %s %s\n", a, b);
		errno = e;
	}
	return r;
}

int link(const char *a, const char *b)
{
	REAL(int, link, (const char *, const char *));
	char na[PATH_MAX], nb[PATH_MAX];
	const char *wa = watched_name(a, na), *wb = watched_name(b, nb);
	int r = real_link(a, b);
	if (r == 0 && wb) {
		int e = errno;
		if (wa)
			logf_("L %llu %s %s\n", (unsigned long long)ino_of(b), wa, wb);
		else
			logf_("X link %s %s\n", a, b);
		errno = e;
	}
	return r;
}

int unlink(const char *a)
{
	REAL(int, unlink, (const char *));
	char na[PATH_MAX];
	const char *wa = watched_name(a, na);
	ino_t ino = wa ? ino_of(a) : 0;
	int r = real_unlink(a);
	if (r == 0 && wa) {
		int e = errno;
		logf_("U %llu %s\n", (unsigned long long)ino, wa);
		errno = e;
	}
	return r;
}

static void unmodelled_at(const char *what, int dirfd, const char *path)
{
	char nb[PATH_MAX];
	ino_t ino;
	if ((dirfd == AT_FDCWD || path[0] == '/') ? watched_name(path, nb) != NULL
						   : watched_fd(dirfd, &ino) == 2)
		logf_("X %s %s\n", what, path);
}

int renameat(int da, const char *a, int db, const char *b)
{
	REAL(int, renameat, (int, const char *, int, const char *));
	unmodelled_at("renameat", da, a);
	unmodelled_at("renameat", db, b);
	return real_renameat(da, a, db, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned flags)
{
	REAL(int, renameat2, (int, const char *, int, const char *, unsigned));
	unmodelled_at("renameat2", da, a);
	unmodelled_at("renameat2", db, b);
	return real_renameat2(da, a, db, b, flags);
}

int unlinkat(int d, const char *a, int flags)
{
	REAL(int, unlinkat, (int, const char *, int));
	unmodelled_at("unlinkat", d, a);
	return real_unlinkat(d, a, flags);
}

int linkat(int da, const char *a, int db, const char *b, int flags)
{
	REAL(int, linkat, (int, const char *, int, const char *, int));
	unmodelled_at("linkat", db, b);
	return real_linkat(da, a, db, b, flags);
}

/* sync() and syncfs() would be barriers for everything: not modelled. */
void sync(void)
{
	REAL(void, sync, (void));
	logf_("X sync\n");
	real_sync();
}

int syncfs(int fd)
{
	REAL(int, syncfs, (int));
	logf_("X syncfs\n");
	return real_syncfs(fd);
}
