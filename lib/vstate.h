/* vstate.h: the state envsync last verified a target file to hold, kept
 * beside it, so that an apply need not read an unchanged target whole again:
 * at failover only the changed blocks are touched (the physical limit of a
 * delta apply). Format: envapply(1), FILES. */
#ifndef ENVSYNC_VSTATE_H
#define ENVSYNC_VSTATE_H

#include <stdint.h>

/* A record younger than this after the file's last change is never written:
 * a change within the same clock tick would leave the time stamps as they
 * were (the "racy" case of git's index). */
#define ES_VSTATE_SETTLE_NS 1000000000LL

/* 1 and *crc when PATH records the file open on FD, unchanged since (same
 * device, inode, size, mtime and ctime); 0 otherwise (no record, another
 * file, a changed one, not a regular file, a damaged record). */
int es_vstate_load(const char *path, int fd, uint32_t *crc);

/* Record that the file open on FD holds content with CRC (raw: of the whole
 * file; image: its header CRC, the data having been checked against the
 * directory). Best effort: returns 1 if written, 0 if skipped (not a regular
 * file, changed too recently) or it failed; a missing record only costs a
 * full read later. A stale record is removed. */
int es_vstate_save(const char *path, int fd, uint32_t crc);

#endif
