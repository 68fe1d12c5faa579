/* io.h: opening inputs (files, block devices, stdin), full reads and writes,
 * atomic output files (temp + fsync + rename + directory fsync). */
#ifndef ENVSYNC_IO_H
#define ENVSYNC_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ES_SIZE_UNKNOWN UINT64_MAX

struct es_in {
	int fd;
	const char *name;   /* for messages */
	uint64_t size;      /* ES_SIZE_UNKNOWN for pipes */
	int is_blk;
	int is_reg;
	uint64_t pos;       /* bytes consumed so far, for sequential reads */
};

/* Open PATH ("-" is stdin) for reading. */
int es_in_open(struct es_in *in, const char *path);
void es_in_close(struct es_in *in);
/* Size of a regular file or block device open on FD. */
int es_fd_size(int fd, const char *name, uint64_t *size, int *is_blk, int *is_reg);

/* Read exactly n bytes unless EOF comes first; returns bytes read or -1. */
ssize_t es_read_full(int fd, void *buf, size_t n);
ssize_t es_pread_full(int fd, void *buf, size_t n, uint64_t off);
/* Sequential read from in (tracks pos); error with a message on failure. */
ssize_t es_in_read(struct es_in *in, void *buf, size_t n);
int es_write_full(int fd, const void *buf, size_t n);
int es_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);

/* Writeback started behind a long write, a chunk at a time. Without it the
 * kernel keeps the dirty pages until the fsync at the end and the disk idles
 * while they are made: a 1 GiB copy and fsync took 0.98-1.37 s here, 0.52-0.68
 * s with writeback started every 4-8 MiB. */
#define ES_WB_CHUNK (8u << 20)
struct es_wb {
	int fd;
	uint64_t lo, hi, bytes; /* written since the last start: where, how much */
};
void es_wb_init(struct es_wb *wb, int fd); /* fd -1: never */
/* Note N bytes written at OFF; start writeback once a chunk's worth has
 * gathered (bytes written, not their span: a sparse delta's few pages go
 * with the fsync). */
void es_wb_wrote(struct es_wb *wb, uint64_t off, uint64_t n);

/* An output that appears whole or not at all. */
struct es_out {
	int fd;
	const char *name;  /* for messages */
	char *path;        /* final path, NULL for stdout */
	char *tmp;         /* temporary path while writing */
};

/* Open PATH for output; NULL or "-" is stdout. Binary output to a terminal is
 * refused unless allow_tty. */
int es_out_open(struct es_out *o, const char *path, int allow_tty);
/* Make the output durable and visible (rename into place). */
int es_out_commit(struct es_out *o);
/* Discard a half-written output. Safe to call after commit. */
void es_out_abort(struct es_out *o);

/* fsync the directory holding PATH, so a rename in it is durable. */
int es_fsync_dir_of(const char *path);

/* Remove registered temporary files when SIGINT/SIGTERM/SIGHUP arrives. */
void es_install_signal_cleanup(void);

/* Flush and close stdout: a full disk or closed pipe is an error. */
int es_close_stdout(void);

#endif
