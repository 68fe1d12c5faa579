/* journal.h: the redo/undo journal that makes an in-place apply crash-safe,
 * the files kept beside a target (lock, journal, last apply), and replay. */
#ifndef ENVSYNC_JOURNAL_H
#define ENVSYNC_JOURNAL_H

#include <stdint.h>
#include "stream.h"
#include "view.h"

#define ES_JREC_MAX (64u << 10) /* bytes per record, bounds replay's buffers */
/* XOR spots at most this many bytes apart share a journal record, the gap
 * between them journaled and rewritten too (envjudge -c counts it) */
#define ES_J_GAP 512
/* Whether a spot at OFF joins a record (or stretch) ending at END. */
static inline int es_j_joins(uint64_t end, uint64_t off)
{
	return off >= end && off - end <= ES_J_GAP;
}
/* The records a stretch of LEN journaled bytes takes. */
static inline uint64_t es_j_records(uint64_t len)
{
	return (len + ES_JREC_MAX - 1) / ES_JREC_MAX;
}

enum es_jkind { ES_J_RAW = 1, ES_J_IMAGE = 2, ES_J_RENAMED = 3 };

/* What a target must look like before and after (the verification data). */
struct es_jstate {
	uint16_t kind;
	uint64_t old_size, new_size;
	uint32_t old_crc, new_crc;  /* raw: CRC32 of the whole target */
	uint64_t old_rev, new_rev;  /* image: revisions */
	uint16_t image;             /* the target is an env image */
};

struct es_tpaths {
	char *target;
	char *journal; /* the active journal: present = an apply is in flight */
	char *jtmp;    /* the journal while it is being written */
	char *last;    /* the journal of the last completed apply, for rollback */
	char *lock;
	char *prev;    /* hard link to the old file after a rename apply */
	char *fresh;   /* the new file being built for a rename apply */
	char *verified; /* what the target was last verified to hold (vstate.h) */
};

/* Derive the paths for TARGET; state files go to JDIR (NULL: beside the target,
 * or /var/lib/envsync for block devices). */
int es_tpaths_init(struct es_tpaths *p, const char *target, const char *jdir, int is_blk);
void es_tpaths_free(struct es_tpaths *p);

/* Take the target's lock, waiting up to wait_s seconds. Returns the lock fd,
 * -1 on error, -2 when still busy (message recorded). */
int es_lock(const struct es_tpaths *p, double wait_s);

/* Journal writer: records are merged while contiguous. */
struct es_jwriter {
	struct es_writer w;
	int fd, tfd;        /* journal, target (to read old bytes) */
	uint64_t tsize;     /* target's current size: old bytes past it are zero */
	uint64_t nrec;
	uint64_t off;       /* pending record */
	size_t len;
	int xor_mode;       /* the pending record holds XOR bytes */
	unsigned char *newb, *oldb; /* the pending record's bytes (one allocation) */
	const char *tname;
	struct es_view tv;  /* the old bytes, mapped: a read call per record
			       was most of a dense delta's time */
};
int es_jw_open(struct es_jwriter *jw, const struct es_tpaths *p, int tfd,
	       uint64_t tsize, const struct es_jstate *st);
/* New bytes for [off, off+n) of the target. */
int es_jw_put(struct es_jwriter *jw, uint64_t off, const unsigned char *newb, size_t n);
/* New bytes = old bytes XOR x. */
int es_jw_xor(struct es_jwriter *jw, uint64_t off, const unsigned char *x, size_t n);
/* Finish, fsync, and rename into place: from now on the apply is committed. */
int es_jw_commit(struct es_jwriter *jw, const struct es_tpaths *p);
void es_jw_abort(struct es_jwriter *jw, const struct es_tpaths *p);

/* Write a journal with no records (kind ES_J_RENAMED) as the last apply. */
int es_journal_mark_renamed(const struct es_tpaths *p, const struct es_jstate *st);

/* Read and check the journal at PATH; *st receives its state. */
int es_journal_check(const char *path, struct es_jstate *st);
/* Write every record's new (or, backward, old) bytes to tfd, resizing as the
 * journal says; then fsync. */
int es_journal_replay(const char *path, int tfd, const char *tname, int backward);
/* Copy PATH to the journal slot with old and new swapped, committed. */
int es_journal_invert(const char *src, const struct es_tpaths *p);

/* Is the target (open on tfd) in state "new" (or old, when old_side)? */
int es_target_verify(const struct es_tpaths *p, int tfd, const struct es_jstate *st,
		     int old_side);

/* Is every record's new (or old) part, inside the size the journal gives,
 * what the target open on tfd holds? */
int es_journal_readback(const char *path, int tfd, const char *tname, int backward);

/* Replay the committed journal onto the target and verify; keep it as the
 * last apply. If the new state cannot be reached (a full disk, a size the
 * file system refuses), the old one is put back and the journal dropped.
 * SPOTS: the caller has proved that the target was at the old state and that
 * the records turn its CRC32s into the new ones, so reading back what was
 * written verifies the new state; otherwise the whole target is read. */
int es_journal_settle(const struct es_tpaths *p, int tfd, const struct es_jstate *st,
		      int spots);

/* Finish or undo an interrupted apply. Returns 1 if something was recovered,
 * 0 if there was nothing to do, -1 on error. */
int es_recover(const struct es_tpaths *p, int verbose);

/* A dry run cannot finish an interrupted apply: 1 (message recorded) when
 * one is pending, else 0. */
int es_journal_pending(const struct es_tpaths *p);

#endif
