/* apply.c: applying judged diff streams to env images, raw files and block
 * devices: check the base, plan, journal or build anew, verify. */
#include "config.h"
#include "apply.h"
#include "crc.h"
#include "dwrite.h"
#include "efivars.h"
#include "image.h"
#include "journal.h"
#include "judge.h"
#include "stream.h"
#include "text.h"
#include "util.h"
#include "vstate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

struct pitem {
	struct es_ditem it;
	struct es_dend d;
	uint64_t toff;   /* where the item starts in the target (in-place images) */
	uint32_t xacc;   /* the entries' share of the CRC32 (see c_entry) ... */
	uint64_t xend;   /* ... over the item's first xend bytes */
	int lin;         /* its result CRC32 follows from its base's (checked) */
	uint64_t run_off;
};

struct plan {
	struct es_dhdr h;
	struct pitem *items;
	uint32_t n;
	int spool;     /* the validated stream, reread for its entries */
	const char *dname;
	int image;
	int linear;    /* every item's result CRC32 follows from its base's */
	/* the current item's entry bytes (with the short gaps between them)
	 * not yet in its xacc, which end at its xend: near entries are taken in
	 * one CRC call, not one call of 8 bytes each (a fifth of a dense
	 * apply's time) */
	unsigned char xbuf[4096];
	size_t xlen;
};

/* ---- loading the stream: validate all of it before anything is touched ---- */

static int c_header(void *arg, const struct es_dhdr *h)
{
	struct plan *p = arg;
	p->h = *h;
	p->items = es_calloc(h->nitems, sizeof *p->items);
	return 0;
}

static int c_item(void *arg, const struct es_ditem *it)
{
	struct plan *p = arg;
	p->items[p->n].it = *it;
	p->xlen = 0;
	return 0;
}

/* Take the pending entry bytes into the item's xacc, and zero the buffer
 * again (c_entry). */
static void x_flush(struct plan *p, struct pitem *pi)
{
	if (p->xlen)
		pi->xacc = ~es_crc32(~pi->xacc, p->xbuf, p->xlen);
	memset(p->xbuf, 0, p->xlen);
	p->xlen = 0;
}

/* Where an entry's XOR bytes go in its item; *n is 0 for none. */
static uint64_t entry_span(const struct es_entry *e, uint64_t *run_off, size_t *n)
{
	if (e->flag == ES_DATA || e->flag == ES_AREA)
		*run_off = e->offset;
	*n = e->flag == ES_INVALID ? 0 : e->flag == ES_AREA ? 8 : e->size;
	return e->flag == ES_CONT ? *run_off + e->offset : e->offset;
}

/* The raw CRC32 state ACC (no inversions) followed by K zero bytes: through
 * the CRC itself for short gaps, by a multiplication (zlib) for long ones,
 * so a dense diff costs a pass and a sparse one a few steps per entry. */
static uint32_t raw_shift(uint32_t acc, uint64_t k)
{
	static const unsigned char zeros[4096];
	if (acc == 0 || k == 0)
		return acc;
	if (k <= sizeof zeros)
		return ~es_crc32(~acc, zeros, (size_t)k);
	return (uint32_t)crc32_combine(acc, 0, (z_off_t)k);
}

/* CRC32 is linear: for an item of unchanged size L, crc(base XOR x) =
 * crc(base) XOR U(x), where U is the CRC without its initial and final
 * inversion, computed here over x's nonzero bytes, the entries, with the
 * zero gaps between them. So the entries alone tell the result's CRC32 from
 * the base's: a stream whose entries disagree with its CRC32s is refused
 * before anything is written, and after an apply from a verified base,
 * reading back the written bytes verifies the result. */
static int c_entry(void *arg, const struct es_ditem *it, const struct es_entry *e)
{
	struct plan *p = arg;
	struct pitem *pi = &p->items[p->n];
	size_t n;
	uint64_t off = entry_span(e, &pi->run_off, &n);
	if (n == 0 || it->base_size != it->result_size || it->presence != 3)
		return 0;
	if (off < pi->xend) { /* the reader refuses this; never trust it here */
		es_err("%s: item '%s': entries out of order", p->dname, it->name);
		return -1;
	}
	/* a short gap goes in as its zero bytes, a long one by raw_shift */
	uint64_t gap = off - pi->xend;
	if (gap > 256 || p->xlen + gap + sizeof e->data > sizeof p->xbuf) {
		x_flush(p, pi);
		pi->xacc = raw_shift(pi->xacc, gap);
		gap = 0;
	}
	/* the buffer is zeros past xlen (x_flush), so the gap is in place, and
	 * the data's bytes past N are zeros (the reader checked): all 8 go in
	 * at once, where a memset and a memcpy of a few bytes were a seventh
	 * of a dense apply's time */
	memcpy(p->xbuf + p->xlen + gap, e->data, sizeof e->data);
	p->xlen += (size_t)gap + n;
	pi->xend = off + n;
	return 0;
}

static int c_end(void *arg, const struct es_ditem *it, const struct es_dend *d)
{
	struct plan *p = arg;
	(void)it;
	x_flush(p, &p->items[p->n]);
	p->items[p->n++].d = *d;
	return 0;
}

/* After the stream's own CRC32 has passed: do the entries agree with the
 * items' CRC32s? */
static int check_linear(struct plan *p)
{
	for (uint32_t i = 0; i < p->n; i++) {
		const struct pitem *pi = &p->items[i];
		if (pi->it.presence != 3 || pi->it.base_size != pi->it.result_size) {
			p->linear = 0;
			continue;
		}
		uint32_t got =
			pi->d.base_crc ^ raw_shift(pi->xacc, pi->it.result_size - pi->xend);
		p->items[i].lin = got == pi->d.result_crc;
		if (got != pi->d.result_crc) {
			es_err("%s: item '%s': its entries turn base CRC32 %08" PRIx32
			       " into %08" PRIx32 ", not the result's %08" PRIx32
			       " (a corrupt or forged diff)",
			       p->dname, pi->it.name, pi->d.base_crc, got, pi->d.result_crc);
			return -1;
		}
	}
	return 0;
}

static int is_full(const struct pitem *pi)
{
	return pi->d.decision == ES_FULL && (pi->it.presence & ES_IN_RESULT);
}

/* Whether the item being read goes full, for the spool: at its end, by its
 * decision; before, once the judge has settled it full (envapply -c), so
 * that the rest of its entries are not even written. */
struct drop_ask {
	const struct plan *p;
	const struct es_judge *j; /* NULL: a judged stream, known at the end */
};

static int goes_full(void *arg, int at_end)
{
	const struct drop_ask *a = arg;
	/* the plan counts an item once its end is in (c_end) */
	if (at_end)
		return a->p->n && is_full(&a->p->items[a->p->n - 1]);
	return a->j && a->j->settled && (a->p->items[a->p->n].it.presence & ES_IN_RESULT);
}

/* Read, check and spool the stream; with CAL, judge each item by it on the
 * way in (envjudge -c in the same process: the one-step failover). */
static int load_plan(struct plan *p, const char *diff, const struct es_calib *cal)
{
	memset(p, 0, sizeof *p);
	p->dname = diff && strcmp(diff, "-") != 0 ? diff : "(stdin)";
	p->linear = 1;
	struct es_sink collect = {p, c_header, c_item, c_entry, c_end, NULL};
	struct es_sink judged, *in = &collect;
	struct es_judge j;
	if (cal) {
		judged = es_judge_calib_sink(&j, cal, &collect);
		in = &judged;
	}
	struct drop_ask ask = {p, cal ? &j : NULL};
	struct es_spool_drop drop = {goes_full, &ask};
	p->spool = es_spool_stream(diff, in, &drop);
	if (p->spool < 0)
		return -1;
	int fb = (p->h.flags & ES_DF_BASE_REV) != 0, fr = (p->h.flags & ES_DF_RESULT_REV) != 0;
	if (!fb != !fr) {
		es_err("%s: base and result must both be images or both be raw", p->dname);
		return -1;
	}
	p->image = fb != 0;
	if (check_linear(p) < 0)
		return -1;
	if (!p->image && (p->n != 1 || p->items[0].it.presence != 3 ||
			  strcmp(p->items[0].it.name, ES_RAW_NAME) != 0)) {
		es_err("%s: a raw diff must hold exactly the item '%s'", p->dname, ES_RAW_NAME);
		return -1;
	}
	return 0;
}

static void free_plan(struct plan *p)
{
	free(p->items);
	if (p->spool > 0)
		close(p->spool);
}

/* ---- where the target stands ---- */

enum tstate { AT_BASE, AT_RESULT, AT_NEITHER };

static int image_side(const struct plan *p, const struct es_env *env, int result)
{
	uint32_t want = 0;
	unsigned bit = result ? ES_IN_RESULT : ES_IN_BASE;
	if (env->rev != (result ? p->h.result_rev : p->h.base_rev))
		return 0;
	for (uint32_t i = 0; i < p->n; i++) {
		const struct pitem *pi = &p->items[i];
		if (!(pi->it.presence & bit))
			continue;
		want++;
		uint32_t idx = result ? pi->it.result_index : pi->it.base_index;
		if (idx >= env->nitems)
			return 0;
		const struct es_item *t = &env->items[idx];
		if (strcmp(t->name, pi->it.name) != 0 ||
		    t->size != (result ? pi->it.result_size : pi->it.base_size) ||
		    t->crc != (result ? pi->d.result_crc : pi->d.base_crc))
			return 0;
	}
	return want == env->nitems;
}

/* The CRC32 of every item of the target. Reading a large target whole is
 * most of an apply's time, so a verified state recorded earlier (vstate.h)
 * stands in for the read while the file provably has not changed; a read
 * records it (SAVE) for the next time. */
static int target_crcs(struct es_env *env, const struct es_tpaths *tp, int save)
{
	uint32_t known, crc = 0;
	if (es_vstate_load(tp->verified, env->in.fd, &known) &&
	    (!env->is_image || known == env->hdr_crc)) {
		if (!env->is_image) {
			env->items[0].crc = known;
			env->items[0].crc_known = 1;
		}
		return 0;
	}
	for (uint32_t i = 0; i < env->nitems; i++)
		if (es_env_item_crc(env, i, &crc) < 0)
			return -1;
	if (save)
		es_vstate_save(tp->verified, env->in.fd, env->is_image ? env->hdr_crc : crc);
	return 0;
}

/* Where the target stands: its size, CRC32s and revision decide. */
static int target_state(const struct plan *p, const struct es_tpaths *tp, int save,
			enum tstate *st)
{
	struct es_env env;
	*st = AT_NEITHER;
	if (es_env_open(&env, tp->target, p->image ? ES_ENV_IMAGE : ES_ENV_RAW) < 0)
		return p->image && !strstr(es_errmsg(), "cannot open") ? 0 : -1;
	if (target_crcs(&env, tp, save) < 0) {
		es_env_close(&env);
		return p->image ? 0 : -1; /* a damaged image is at neither */
	}
	if (!p->image) {
		const struct pitem *pi = &p->items[0];
		const struct es_item *t = &env.items[0];
		if (t->size == pi->it.base_size && t->crc == pi->d.base_crc)
			*st = AT_BASE;
		else if (t->size == pi->it.result_size && t->crc == pi->d.result_crc)
			*st = AT_RESULT;
	} else if (image_side(p, &env, 0))
		*st = AT_BASE;
	else if (image_side(p, &env, 1))
		*st = AT_RESULT;
	es_env_close(&env);
	return 0;
}

/* ---- the source for items judged full ---- */

static int src_mismatch(const struct es_env *src, const struct pitem *pi)
{
	es_err("%s: item '%s' does not match the diff's result (%" PRIu64 " bytes, CRC32 %08" PRIx32
	       ")",
	       src->in.name, pi->it.name, pi->it.result_size, pi->d.result_crc);
	return -1;
}

static int src_index(const struct es_env *src, const struct pitem *pi)
{
	return es_env_find(src, src->is_image ? pi->it.name : ES_RAW_NAME);
}

static int open_source(const struct plan *p, const char *source, struct es_env *src,
		       int dry_run)
{
	/* defined even when no source is opened (returns 0), so nothing reads
	 * garbage from it; only a return of 1 means it must be closed */
	memset(src, 0, sizeof *src);
	int needed = 0;
	for (uint32_t i = 0; i < p->n; i++)
		needed |= is_full(&p->items[i]);
	if (!needed)
		return 0;
	if (!source && dry_run)
		return 0; /* the plan says "from SOURCE"; checked when it is given */
	if (!source) {
		es_err("%s: items are judged full but no SOURCE was given (-s)", p->dname);
		return -1;
	}
	if (es_env_open(src, source, p->image ? ES_ENV_AUTO : ES_ENV_RAW) < 0)
		return -1;
	for (uint32_t i = 0; i < p->n; i++) {
		const struct pitem *pi = &p->items[i];
		if (!is_full(pi))
			continue;
		int idx = es_env_find(src, src->is_image ? pi->it.name : ES_RAW_NAME);
		uint32_t crc;
		if (idx < 0) {
			es_err("%s: has no item '%s'", source, pi->it.name);
			goto bad;
		}
		/* The data is checked as it is copied (a mismatch then leaves the
		 * target as it was): reading it twice would double a full copy's
		 * time. A dry run, which copies nothing, reads it now. */
		if (src->items[idx].size != pi->it.result_size ||
		    (src->is_image && src->items[idx].crc != pi->d.result_crc) ||
		    (dry_run && (es_env_item_crc(src, (uint32_t)idx, &crc) < 0 ||
				 crc != pi->d.result_crc))) {
			src_mismatch(src, pi);
			goto bad;
		}
	}
	return 1;
bad:
	es_env_close(src);
	return -1;
}

/* Copy SOURCE's item for PI through FN, checking it is the diff's result. */
static int copy_source(struct es_env *src, const struct pitem *pi, es_chunk_fn fn, void *arg)
{
	uint32_t crc;
	int idx = src_index(src, pi);
	if (idx < 0 || es_env_read_item(src, (uint32_t)idx, fn, arg, &crc) < 0)
		return -1;
	return crc == pi->d.result_crc ? 0 : src_mismatch(src, pi);
}

/* ---- printing what happens ---- */

static void describe(const struct plan *p, const char *target, const char *source,
		     FILE *f)
{
	if (p->image)
		fprintf(f, "%s: revision %" PRIu64 " -> %" PRIu64 "\n", target, p->h.base_rev,
			p->h.result_rev);
	for (uint32_t i = 0; i < p->n; i++) {
		const struct pitem *pi = &p->items[i];
		const char *state = es_item_state(&pi->it, &pi->d);
		if (strcmp(state, "same") == 0)
			continue;
		if (is_full(pi))
			fprintf(f, "%s: %s, full: copy %" PRIu64 " bytes from %s\n", pi->it.name,
				state, pi->it.result_size, source ? source : "SOURCE");
		else
			fprintf(f, "%s: %s, delta: %" PRIu64 " spots, %" PRIu64 " bytes\n",
				pi->it.name, state, pi->d.spots, pi->d.bytes);
	}
}

/* ---- entries: visited once more, from the spool ---- */

struct visit {
	struct plan *p;
	struct pitem *cur;
	uint64_t run_off;
	int (*fn)(struct visit *v, uint64_t off, const unsigned char *x, size_t n);
	struct es_jwriter *jw;
	int fd;        /* rename path: the new file */
	uint32_t next; /* index of the next item in the plan */
};

/* The spool is the stream the plan was loaded from: items come in plan order. */
static int v_item(void *arg, const struct es_ditem *it)
{
	struct visit *v = arg;
	(void)it;
	v->cur = &v->p->items[v->next++];
	return 0;
}

static int v_entry(void *arg, const struct es_ditem *it, const struct es_entry *e)
{
	struct visit *v = arg;
	(void)it;
	if (e->flag == ES_DATA || e->flag == ES_AREA)
		v->run_off = e->offset;
	if (e->flag == ES_INVALID || !v->cur || is_full(v->cur) ||
	    !(v->cur->it.presence & ES_IN_RESULT))
		return 0;
	uint64_t off = e->flag == ES_CONT ? v->run_off + e->offset : e->offset;
	size_t n = e->flag == ES_AREA ? 8 : e->size;
	return v->fn(v, off, e->data, n);
}

static int visit_entries(struct visit *v)
{
	struct es_reader r;
	if (es_reader_open_fd(&r, v->p->spool, v->p->dname) < 0)
		return -1;
	struct es_sink sink = {v, NULL, v_item, v_entry, NULL, NULL};
	int rc = es_reader_run(&r, &sink);
	es_reader_close(&r);
	return rc;
}

/* ---- room on the target's file system ---- */

/* A result bigger than the free space could never be finished, and a hostile
 * size would have the verification read exabytes of a sparse file: refuse it
 * up front. NEED: the bytes the apply adds to TARGET's file system. */
static int room_for(const char *target, uint64_t need)
{
	struct statvfs vfs;
	if (statvfs(target, &vfs) < 0)
		return 0; /* cannot tell: the writes will say */
	uint64_t room = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (need > room) {
		es_err("%s: the result needs %" PRIu64 " bytes but its file system has %" PRIu64
		       " free", target, need, room);
		return -1;
	}
	return 0;
}

/* The rename path writes the new file whole before it is verified. */
static int check_room(const struct plan *p, const struct es_tpaths *tp)
{
	uint64_t need = p->image ? ES_IMG_HDR + (uint64_t)p->n * ES_IMG_DIRENT : 0;
	for (uint32_t i = 0; i < p->n; i++)
		if (p->items[i].it.presence & ES_IN_RESULT)
			need = p->items[i].it.result_size > UINT64_MAX - need
				       ? UINT64_MAX
				       : need + p->items[i].it.result_size;
	return room_for(tp->target, need);
}

/* ---- in place, through the journal ---- */

static int j_xor(struct visit *v, uint64_t off, const unsigned char *x, size_t n)
{
	return es_jw_xor(v->jw, v->cur->toff + off, x, n);
}

struct jcopy {
	struct es_jwriter *jw;
	uint64_t off;
};

static int jcopy_chunk(void *arg, const unsigned char *buf, size_t n)
{
	struct jcopy *c = arg;
	if (es_jw_put(c->jw, c->off, buf, n) < 0)
		return -1;
	c->off += n;
	return 0;
}

/* Journal the full items' bytes and, for images, the new header. */
static int journal_full_and_header(struct plan *p, struct es_env *src, int have_src,
				   struct es_jwriter *jw, const char *target)
{
	for (uint32_t i = 0; i < p->n; i++) {
		struct pitem *pi = &p->items[i];
		if (!is_full(pi))
			continue;
		struct jcopy c = {jw, pi->toff};
		if (!have_src || copy_source(src, pi, jcopy_chunk, &c) < 0)
			return -1;
	}
	if (!p->image)
		return 0;
	struct es_env env;
	if (es_env_open(&env, target, ES_ENV_IMAGE) < 0)
		return -1;
	for (uint32_t i = 0; i < p->n; i++)
		env.items[p->items[i].it.result_index].crc = p->items[i].d.result_crc;
	size_t hlen;
	unsigned char *h = es_image_header(p->h.result_rev, env.items, env.nitems, &hlen);
	int r = es_jw_put(jw, 0, h, hlen);
	free(h);
	es_env_close(&env);
	return r;
}

static int set_offsets(struct plan *p, const char *target)
{
	if (!p->image)
		return 0;
	struct es_env env;
	if (es_env_open(&env, target, ES_ENV_IMAGE) < 0)
		return -1;
	for (uint32_t i = 0; i < p->n; i++)
		p->items[i].toff = env.items[p->items[i].it.base_index].off;
	es_env_close(&env);
	return 0;
}

static int apply_journal(struct plan *p, const struct es_tpaths *tp, struct es_env *src,
			 int have_src)
{
	struct es_jstate st = {p->image ? ES_J_IMAGE : ES_J_RAW, 0, 0, 0, 0,
			       p->h.base_rev, p->h.result_rev, p->image};
	int tfd = open(tp->target, O_RDWR | O_CLOEXEC);
	if (tfd < 0) {
		es_errno("%s: cannot open for writing", tp->target);
		return -1;
	}
	uint64_t tsize;
	int blk, reg;
	if (es_fd_size(tfd, tp->target, &tsize, &blk, &reg) < 0 || set_offsets(p, tp->target) < 0)
		goto fail;
	st.old_size = tsize;
	st.new_size = p->image ? tsize : p->items[0].it.result_size;
	st.old_crc = p->image ? 0 : p->items[0].d.base_crc;
	st.new_crc = p->image ? 0 : p->items[0].d.result_crc;
	if (blk && st.new_size != st.old_size) {
		es_err("%s: a block device cannot change size (%" PRIu64 " -> %" PRIu64 " bytes)",
		       tp->target, st.old_size, st.new_size);
		goto fail;
	}
	if (st.new_size > st.old_size && room_for(tp->target, st.new_size - st.old_size) < 0)
		goto fail;
	struct es_jwriter jw;
	if (es_jw_open(&jw, tp, tfd, tsize, &st) < 0)
		goto fail;
	struct visit v = {p, NULL, 0, j_xor, &jw, -1, 0};
	if (visit_entries(&v) < 0 || journal_full_and_header(p, src, have_src, &jw, tp->target) < 0) {
		es_jw_abort(&jw, tp);
		goto fail;
	}
	if (es_jw_commit(&jw, tp) < 0)
		goto fail;
	/* committed: from here a crash is finished by the next run */
	int r = es_journal_settle(tp, tfd, &st, p->linear);
	close(tfd);
	return r;
fail:
	close(tfd);
	return -1;
}

/* ---- build anew and rename: full copies of files, image layout changes ---- */

static int f_xor(struct visit *v, uint64_t off, const unsigned char *x, size_t n)
{
	unsigned char b[8];
	uint64_t size = v->cur->it.result_size;
	if (off >= size)
		return 0; /* the removed tail */
	if (n > size - off)
		n = (size_t)(size - off);
	uint64_t at = v->cur->toff + off;
	if (es_pread_full(v->fd, b, n, at) != (ssize_t)n)
		goto err;
	for (size_t i = 0; i < n; i++)
		b[i] ^= x[i];
	if (es_pwrite_full(v->fd, b, n, at) < 0)
		goto err;
	return 0;
err:
	es_errno("%s: cannot update", v->p->dname);
	return -1;
}

struct fcopy {
	struct es_dw *dw;
	uint64_t off;
};

static int fcopy_chunk(void *arg, const unsigned char *buf, size_t n)
{
	struct fcopy *c = arg;
	if (es_dw_write(c->dw, buf, n, c->off) < 0)
		return -1;
	c->off += n;
	return 0;
}

static uint64_t result_bytes(const struct plan *p, struct pitem **byres, uint32_t nres)
{
	uint64_t n = p->image ? ES_IMG_HDR + (uint64_t)nres * ES_IMG_DIRENT : 0;
	for (uint32_t i = 0; i < nres; i++)
		n += byres[i]->it.result_size;
	return n;
}

/* Lay the result items out in the new file and fill each: from SOURCE when
 * full, else from the target's base item (zero padded), XORed afterwards. */
static int build_items(struct plan *p, const struct es_tpaths *tp, int fd,
		       struct es_env *src, struct es_env *old)
{
	uint32_t nres = 0;
	for (uint32_t i = 0; i < p->n; i++)
		nres += (p->items[i].it.presence & ES_IN_RESULT) != 0;
	struct es_item *items = es_calloc(nres, sizeof *items);
	/* an array of pointers: sizeof *byres is a pointer's size, as meant */
	/* NOLINTNEXTLINE(bugprone-sizeof-expression) */
	struct pitem **byres = es_calloc(nres, sizeof *byres);
	struct es_dw dw = {0}; /* finished at out: nothing to do until init */
	int rc = -1;
	for (uint32_t i = 0; i < p->n; i++) {
		struct pitem *pi = &p->items[i];
		if (!(pi->it.presence & ES_IN_RESULT))
			continue;
		if (pi->it.result_index >= nres || byres[pi->it.result_index]) {
			es_err("%s: item '%s': result index %" PRIu32 " out of order", p->dname,
			       pi->it.name, pi->it.result_index);
			goto out;
		}
		byres[pi->it.result_index] = pi;
	}
	uint64_t off = p->image ? ES_IMG_HDR + (uint64_t)nres * ES_IMG_DIRENT : 0;
	es_dw_init(&dw, fd, tp->fresh, result_bytes(p, byres, nres));
	for (uint32_t i = 0; i < nres; i++) {
		struct pitem *pi = byres[i];
		strcpy(items[i].name, pi->it.name);
		items[i].size = pi->it.result_size;
		items[i].crc = pi->d.result_crc;
		pi->toff = off;
		struct fcopy c = {&dw, off};
		int r = 0;
		if (is_full(pi))
			r = copy_source(src, pi, fcopy_chunk, &c);
		else if (pi->it.presence & ES_IN_BASE) {
			struct es_item keep = old->items[pi->it.base_index];
			if (keep.size > pi->it.result_size)
				old->items[pi->it.base_index].size = pi->it.result_size;
			old->items[pi->it.base_index].crc_known = keep.size <= pi->it.result_size;
			r = es_env_read_item(old, pi->it.base_index, fcopy_chunk, &c, NULL);
			old->items[pi->it.base_index] = keep;
		}
		if (r < 0)
			goto out;
		off += pi->it.result_size;
		if (ftruncate(fd, (off_t)off) < 0) { /* zero padding */
			es_errno("%s: cannot extend", tp->fresh);
			goto out;
		}
	}
	/* the header and the entries' XORs are small writes, through the cache */
	if (es_dw_finish(&dw) < 0)
		goto out;
	if (p->image) {
		size_t hlen;
		unsigned char *h = es_image_header(p->h.result_rev, items, nres, &hlen);
		int r = es_pwrite_full(fd, h, hlen, 0);
		free(h);
		if (r < 0) {
			es_errno("%s: write error", tp->fresh);
			goto out;
		}
	}
	rc = 0;
out:
	if (rc < 0)
		(void)es_dw_finish(&dw);
	free(items);
	free(byres);
	return rc;
}

static int apply_rename(struct plan *p, const struct es_tpaths *tp, struct es_env *src)
{
	struct stat st;
	struct es_env old;
	if (stat(tp->target, &st) < 0) {
		es_errno("%s: cannot stat", tp->target);
		return -1;
	}
	if (check_room(p, tp) < 0)
		return -1;
	if (es_env_open(&old, tp->target, p->image ? ES_ENV_IMAGE : ES_ENV_RAW) < 0)
		return -1;
	int fd = open(tp->fresh, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		es_errno("%s: cannot create", tp->fresh);
		es_env_close(&old);
		return -1;
	}
	int r = build_items(p, tp, fd, src, &old);
	es_env_close(&old);
	struct visit v = {p, NULL, 0, f_xor, NULL, fd, 0};
	if (r == 0)
		r = visit_entries(&v);
	if (r == 0 && (fchmod(fd, st.st_mode & 07777) < 0 || fsync(fd) < 0)) {
		es_errno("%s: cannot finish", tp->fresh);
		r = -1;
	}
	(void)!fchown(fd, st.st_uid, st.st_gid);
	close(fd);
	struct es_jstate js = {ES_J_RENAMED,
			       p->items[0].it.base_size,  p->items[0].it.result_size,
			       p->items[0].d.base_crc,    p->items[0].d.result_crc,
			       p->image ? p->h.base_rev : 0, p->image ? p->h.result_rev : 0,
			       p->image};
	/* Check the new file before the rename: whole, unless every item was
	 * copied with its CRC32 checked (full from SOURCE; or from the base,
	 * whose entries imply the result's CRC32). */
	struct es_tpaths fresh = *tp;
	fresh.target = tp->fresh;
	int checked = 1;
	for (uint32_t i = 0; i < p->n; i++)
		if ((p->items[i].it.presence & ES_IN_RESULT) && !is_full(&p->items[i]) &&
		    !p->items[i].lin)
			checked = 0;
	if (r == 0 && !checked)
		r = es_target_verify(&fresh, -1, &js, 0);
	if (r < 0) {
		unlink(tp->fresh);
		return -1;
	}
	unlink(tp->prev);
	if (link(tp->target, tp->prev) < 0)
		unlink(tp->prev); /* no rollback copy then: not fatal */
	if (rename(tp->fresh, tp->target) < 0) {
		es_errno("%s: cannot rename the new file into place", tp->target);
		unlink(tp->fresh);
		return -1;
	}
	if (es_fsync_dir_of(tp->target) < 0)
		return -1;
	return es_journal_mark_renamed(tp, &js);
}

/* ---- the whole apply ---- */

static int target_info(const char *target, int *blk)
{
	int fd = open(target, O_RDONLY | O_CLOEXEC);
	uint64_t size;
	int reg;
	if (fd < 0) {
		es_errno("%s: cannot open", target);
		return -1;
	}
	int r = es_fd_size(fd, target, &size, blk, &reg);
	close(fd);
	if (r == 0 && !reg && !*blk) {
		es_err("%s: target must be a regular file or block device", target);
		r = -1;
	}
	return r;
}

/* In place through the journal, or a new file renamed over the target. A
 * file with an item judged full is built anew: journaling it would write its
 * bytes twice (old and new) and then a third time in place. */
static int needs_rename(const struct plan *p, int blk)
{
	if (!p->image)
		return !blk && is_full(&p->items[0]);
	for (uint32_t i = 0; i < p->n; i++) {
		const struct es_ditem *it = &p->items[i].it;
		if (!blk && is_full(&p->items[i]))
			return 1;
		if (it->presence != 3 || it->base_index != it->result_index ||
		    it->base_size != it->result_size)
			return 1;
	}
	return 0;
}

static int prepare(const struct es_apply_opts *o, struct es_tpaths *tp, int *lockfd)
{
	int blk;
	if (target_info(o->target, &blk) < 0 ||
	    es_tpaths_init(tp, o->target, o->jdir, blk) < 0)
		return ES_TROUBLE;
	*lockfd = es_lock(tp, o->wait);
	if (*lockfd < 0)
		return *lockfd == -2 ? ES_BUSY : ES_TROUBLE;
	if (es_recover(tp, 1) < 0)
		return ES_TROUBLE;
	return ES_OK;
}

static int run_apply(const struct es_apply_opts *o, struct es_tpaths *tp, struct plan *p,
		     const struct es_calib *cal)
{
	enum tstate st;
	int blk;
	if (load_plan(p, o->diff, cal) < 0 || target_info(o->target, &blk) < 0 ||
	    target_state(p, tp, !o->dry_run || o->check, &st) < 0)
		return ES_TROUBLE;
	if (st == AT_BASE && o->check) {
		if (o->verbose)
			fprintf(stderr, "%s: %s: at the diff's base\n", es_program(), o->target);
		return ES_OK;
	}
	if (st == AT_RESULT) {
		if (o->verbose || (o->dry_run && !o->check))
			fprintf(stderr, "%s: %s: already at the diff's result, nothing to do\n",
				es_program(), o->target);
		return ES_OK;
	}
	if (st == AT_NEITHER) {
		es_err("%s: is neither at the diff's base nor at its result (wrong target or stale diff %s)",
		       o->target, p->dname);
		return ES_WRONGBASE;
	}
	struct es_env src;
	int have_src = open_source(p, o->source, &src, o->dry_run);
	if (have_src < 0)
		return ES_TROUBLE;
	int rename_path = needs_rename(p, blk);
	if (rename_path && blk) {
		es_err("%s: items added, removed or resized cannot be applied to a block device in place",
		       o->target);
		if (have_src)
			es_env_close(&src);
		return ES_TROUBLE;
	}
	if (o->dry_run || o->verbose)
		describe(p, o->target, o->source, o->dry_run ? stdout : stderr);
	int r = 0;
	if (!o->dry_run)
		r = rename_path ? apply_rename(p, tp, &src) : apply_journal(p, tp, &src, have_src);
	if (have_src)
		es_env_close(&src);
	if (r < 0)
		return ES_TROUBLE;
	if (o->verbose && !o->dry_run)
		fprintf(stderr, "%s: %s: verified at the result%s\n", es_program(), o->target,
			p->image ? "" : " (size and CRC32)");
	return ES_OK;
}

/* A dry run writes nothing, so it cannot finish an interrupted apply: it
 * says so instead of judging a half-applied target. */
static int dry_run_check(const struct es_apply_opts *o, struct es_tpaths *tp)
{
	int blk;
	if (target_info(o->target, &blk) < 0 || es_tpaths_init(tp, o->target, o->jdir, blk) < 0)
		return ES_TROUBLE;
	return es_journal_pending(tp) ? ES_TROUBLE : ES_OK;
}

int es_apply(const struct es_apply_opts *o)
{
	struct es_calib cal;
	if (o->calfile && es_calib_load(&cal, o->calfile) < 0)
		return ES_TROUBLE;
	/* efivarfs takes every variable whole: there is nothing to judge */
	if (es_efivars_is_dir(o->target))
		return es_efivars_apply(o);
	struct es_tpaths tp;
	struct plan p;
	int lockfd = -1;
	memset(&p, 0, sizeof p);
	memset(&tp, 0, sizeof tp);
	int rc = o->dry_run ? dry_run_check(o, &tp) : prepare(o, &tp, &lockfd);
	if (rc == ES_OK)
		rc = run_apply(o, &tp, &p, o->calfile ? &cal : NULL);
	free_plan(&p);
	es_tpaths_free(&tp);
	if (lockfd >= 0)
		close(lockfd);
	return rc;
}

int es_apply_recover(const struct es_apply_opts *o)
{
	if (es_efivars_is_dir(o->target))
		return es_efivars_recover(o);
	struct es_tpaths tp;
	int blk, lockfd, rc = ES_TROUBLE;
	if (target_info(o->target, &blk) < 0 || es_tpaths_init(&tp, o->target, o->jdir, blk) < 0)
		return ES_TROUBLE;
	lockfd = es_lock(&tp, o->wait);
	if (lockfd == -2)
		rc = ES_BUSY;
	else if (lockfd >= 0) {
		int r = es_recover(&tp, 0);
		if (r >= 0 && o->verbose)
			fprintf(stderr, "%s: %s: %s\n", es_program(), o->target,
				r ? "finished an interrupted apply" : "no interrupted apply");
		rc = r < 0 ? ES_TROUBLE : ES_OK;
		close(lockfd);
	}
	es_tpaths_free(&tp);
	return rc;
}

/* Swap the previous file and the target with renames only, so the swap can
 * be swapped back: a second rollback redoes the apply. */
static int rollback_renamed(const struct es_tpaths *tp, const struct es_jstate *st)
{
	if (es_target_verify(tp, -1, st, 0) < 0)
		return ES_WRONGBASE;
	if (access(tp->prev, F_OK) != 0) {
		es_err("%s: the previous file %s is gone: cannot roll back", tp->target, tp->prev);
		return ES_TROUBLE;
	}
	size_t n = strlen(tp->prev) + 8;
	char *swap = es_malloc(n);
	snprintf(swap, n, "%s.swap", tp->prev);
	unlink(swap);
	/* A directory fsync after each step: a file system may persist the
	 * renames of one directory in any order, and the second landing
	 * without the first would leave both names on the applied file, the
	 * previous one lost (found by t/powerloss.bats). */
	int r = link(tp->target, swap) == 0 && es_fsync_dir_of(swap) == 0 &&
			rename(tp->prev, tp->target) == 0 && es_fsync_dir_of(swap) == 0 &&
			rename(swap, tp->prev) == 0
		? 0
		: -1;
	if (r < 0)
		es_errno("%s: cannot put the previous file back", tp->target);
	unlink(swap);
	free(swap);
	if (r < 0 || es_fsync_dir_of(tp->target) < 0)
		return ES_TROUBLE;
	struct es_jstate inv = *st;
	inv.old_size = st->new_size;
	inv.new_size = st->old_size;
	inv.old_crc = st->new_crc;
	inv.new_crc = st->old_crc;
	inv.old_rev = st->new_rev;
	inv.new_rev = st->old_rev;
	return es_journal_mark_renamed(tp, &inv) < 0 ? ES_TROUBLE : ES_OK;
}

static int rollback(const struct es_tpaths *tp)
{
	struct es_jstate st;
	if (access(tp->last, F_OK) != 0) {
		es_err("%s: no previous apply to roll back (%s)", tp->target, tp->last);
		return ES_TROUBLE;
	}
	if (es_journal_check(tp->last, &st) < 0)
		return ES_TROUBLE;
	if (st.kind == ES_J_RENAMED)
		return rollback_renamed(tp, &st);
	if (es_target_verify(tp, -1, &st, 0) < 0) {
		char msg[1024];
		snprintf(msg, sizeof msg, "%s", es_errmsg());
		es_err("not at the last apply's result, refusing to roll back: %s", msg);
		return ES_WRONGBASE;
	}
	/* the inverted journal is applied like any other: crash-safe, and kept
	 * as the last apply, so a second rollback redoes */
	if (es_journal_invert(tp->last, tp) < 0 || es_recover(tp, 0) < 0)
		return ES_TROUBLE;
	return ES_OK;
}

int es_apply_rollback(const struct es_apply_opts *o)
{
	if (es_efivars_is_dir(o->target))
		return es_efivars_rollback(o);
	struct es_tpaths tp;
	int lockfd = -1, rc;
	memset(&tp, 0, sizeof tp);
	rc = prepare(o, &tp, &lockfd);
	if (rc == ES_OK)
		rc = rollback(&tp);
	if (rc == ES_OK && o->verbose)
		fprintf(stderr, "%s: %s: rolled back to before the last apply\n", es_program(),
			o->target);
	es_tpaths_free(&tp);
	if (lockfd >= 0)
		close(lockfd);
	return rc;
}
