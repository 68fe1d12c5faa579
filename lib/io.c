/* io.c: opening inputs, full reads and writes, atomic output files. */
#include "config.h"
#include "io.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

int es_fd_size(int fd, const char *name, uint64_t *size, int *is_blk, int *is_reg)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		es_errno("%s: cannot stat", name);
		return -1;
	}
	*is_blk = S_ISBLK(st.st_mode);
	*is_reg = S_ISREG(st.st_mode);
	if (*is_reg) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (*is_blk) {
		uint64_t s;
		if (ioctl(fd, BLKGETSIZE64, &s) < 0) {
			es_errno("%s: cannot get block device size", name);
			return -1;
		}
		*size = s;
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		es_err("%s: is a directory", name);
		return -1;
	}
	*size = ES_SIZE_UNKNOWN;
	return 0;
}

int es_in_open(struct es_in *in, const char *path)
{
	memset(in, 0, sizeof *in);
	if (strcmp(path, "-") == 0) {
		in->fd = STDIN_FILENO;
		in->name = "(stdin)";
	} else {
		in->fd = open(path, O_RDONLY | O_CLOEXEC);
		in->name = path;
		if (in->fd < 0) {
			es_errno("%s: cannot open", path);
			return -1;
		}
	}
	if (es_fd_size(in->fd, in->name, &in->size, &in->is_blk, &in->is_reg) < 0) {
		es_in_close(in);
		return -1;
	}
	return 0;
}

void es_in_close(struct es_in *in)
{
	if (in->fd > STDIN_FILENO)
		close(in->fd);
	in->fd = -1;
}

/* Read n bytes at OFF (or, POSITIONAL 0, from the file position) unless
 * the end comes first, across short reads and EINTR. */
static ssize_t read_fully(int fd, void *buf, size_t n, uint64_t off, int positional)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = positional ? pread(fd, (char *)buf + got, n - got, (off_t)(off + got))
				       : read(fd, (char *)buf + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

ssize_t es_read_full(int fd, void *buf, size_t n)
{
	return read_fully(fd, buf, n, 0, 0);
}

ssize_t es_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	return read_fully(fd, buf, n, off, 1);
}

ssize_t es_in_read(struct es_in *in, void *buf, size_t n)
{
	ssize_t r = es_read_full(in->fd, buf, n);
	if (r < 0) {
		es_errno("%s: read error at byte %llu", in->name,
			 (unsigned long long)in->pos);
		return -1;
	}
	in->pos += (uint64_t)r;
	return r;
}

int es_write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, (const char *)buf + done, n - done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)w;
	}
	return 0;
}

int es_pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = pwrite(fd, (const char *)buf + done, n - done,
				   (off_t)(off + done));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)w;
	}
	return 0;
}

void es_wb_init(struct es_wb *wb, int fd)
{
	wb->fd = fd;
	wb->lo = wb->hi = wb->bytes = 0;
}

void es_wb_wrote(struct es_wb *wb, uint64_t off, uint64_t n)
{
	if (wb->fd < 0)
		return;
	if (!wb->bytes) {
		wb->lo = off;
		wb->hi = off + n;
	} else {
		wb->lo = off < wb->lo ? off : wb->lo;
		wb->hi = off + n > wb->hi ? off + n : wb->hi;
	}
	wb->bytes += n;
	if (wb->bytes < ES_WB_CHUNK)
		return;
	/* only a start: the fsync that follows still decides what is durable,
	 * so a file system or device that cannot do this loses nothing */
	(void)sync_file_range(wb->fd, (off_t)wb->lo, (off_t)(wb->hi - wb->lo),
			      SYNC_FILE_RANGE_WRITE);
	wb->bytes = 0;
}

/* Temporary files to remove if a signal ends the program. */
#define MAX_TEMPS 8
static char *volatile temps[MAX_TEMPS];

static void register_temp(char *path)
{
	for (int i = 0; i < MAX_TEMPS; i++)
		if (!temps[i]) {
			temps[i] = path;
			return;
		}
}

static void unregister_temp(const char *path)
{
	for (int i = 0; i < MAX_TEMPS; i++)
		if (temps[i] == path)
			temps[i] = NULL;
}

static void cleanup_on_signal(int sig)
{
	for (int i = 0; i < MAX_TEMPS; i++)
		if (temps[i])
			unlink(temps[i]);
	signal(sig, SIG_DFL);
	raise(sig);
}

void es_install_signal_cleanup(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = cleanup_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int es_out_open(struct es_out *o, const char *path, int allow_tty)
{
	memset(o, 0, sizeof *o);
	o->fd = -1;
	if (!path || strcmp(path, "-") == 0) {
		o->fd = STDOUT_FILENO;
		o->name = "(stdout)";
		if (!allow_tty && isatty(STDOUT_FILENO)) {
			es_err("refusing to write binary data to a terminal (use -o FILE or a pipe)");
			return -1;
		}
		return 0;
	}
	struct stat st;
	int exists = stat(path, &st) == 0;
	if (exists && S_ISDIR(st.st_mode)) {
		es_err("%s: is a directory", path);
		return -1;
	}
	if (exists && !S_ISREG(st.st_mode)) {
		/* A device or FIFO cannot be replaced by a rename (that would put a
		 * regular file in place of /dev/null, say): write to it directly. */
		o->name = path;
		o->fd = open(path, O_WRONLY | O_CLOEXEC);
		if (o->fd < 0) {
			es_errno("%s: cannot open", path);
			return -1;
		}
		if (!allow_tty && isatty(o->fd)) {
			es_err("%s: refusing to write binary data to a terminal", path);
			close(o->fd);
			o->fd = -1;
			return -1;
		}
		return 0;
	}
	o->path = strdup(path);
	o->name = o->path;
	size_t n = strlen(path) + 16;
	o->tmp = es_malloc(n);
	snprintf(o->tmp, n, "%s.tmpXXXXXX", path);
	/* A signal between the file's creation and its registration would leave
	 * it behind: hold them off for those two steps. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd >= 0)
		register_temp(o->tmp);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (o->fd < 0) {
		es_errno("%s: cannot create temporary file", o->tmp);
		free(o->tmp);
		o->tmp = NULL;
		free(o->path); /* callers abort only what opened */
		o->path = NULL;
		return -1;
	}
	if (exists) {
		/* Replacing a file keeps its permissions (and, best effort, owner):
		 * envrev -i must not make a 0600 image world-readable. */
		fchmod(o->fd, st.st_mode & 07777);
		if (fchown(o->fd, st.st_uid, st.st_gid) < 0) {
			/* not ours to give away: keep the caller's ownership */
		}
		return 0;
	}
	/* Keep the final file's usual permissions rather than mkstemp's 0600. */
	mode_t um = umask(0);
	umask(um);
	fchmod(o->fd, 0666 & ~um);
	return 0;
}

int es_fsync_dir_of(const char *path)
{
	char *copy = strdup(path);
	if (!copy) {
		es_err("out of memory");
		return -1;
	}
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		es_errno("%s: cannot open directory", path);
		free(copy);
		return -1;
	}
	int r = fsync(fd);
	if (r < 0 && errno != EINVAL)
		es_errno("%s: cannot fsync directory", path);
	else
		r = 0;
	close(fd);
	free(copy);
	return r;
}

int es_out_commit(struct es_out *o)
{
	if (!o->path) {
		/* stdout: a full disk or closed pipe must not pass silently */
		if (fsync(o->fd) < 0 && errno != EINVAL && errno != EROFS &&
		    errno != ENOTSUP && errno != EBADF) {
			es_errno("%s: write error", o->name);
			return -1;
		}
		return 0;
	}
	if (fsync(o->fd) < 0) {
		es_errno("%s: cannot fsync", o->tmp);
		return -1;
	}
	if (close(o->fd) < 0) {
		o->fd = -1;
		es_errno("%s: write error", o->tmp);
		return -1;
	}
	o->fd = -1;
	if (rename(o->tmp, o->path) < 0) {
		es_errno("%s: cannot rename into place", o->path);
		return -1;
	}
	unregister_temp(o->tmp);
	free(o->tmp);
	o->tmp = NULL;
	return es_fsync_dir_of(o->path);
}

void es_out_abort(struct es_out *o)
{
	if (o->tmp) {
		if (o->fd >= 0)
			close(o->fd);
		unlink(o->tmp);
		unregister_temp(o->tmp);
		free(o->tmp);
		o->tmp = NULL;
		o->fd = -1;
	} else if (!o->path && o->fd > STDERR_FILENO) {
		close(o->fd); /* a device or FIFO written directly */
		o->fd = -1;
	}
	free(o->path);
	o->path = NULL;
}

int es_close_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
		es_errno("(stdout): write error");
		return -1;
	}
	return 0;
}
