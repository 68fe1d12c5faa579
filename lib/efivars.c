/* efivars.c: efivarfs directories: capture (envdump --efivarfs) and apply
 * (envapply to a directory). A directory holds no revision: where it stands
 * is decided by its content, every variable's size and CRC32, and it must
 * hold exactly the variables of one side. Changed variables are written
 * whole, one write() each, after a journal holding their old and new
 * contents has been made durable. */
#include "config.h"
#include "efivars.h"
#include "crc.h"
#include "image.h"
#include "journal.h"
#include "stream.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef EFIVARFS_MAGIC
#define EFIVARFS_MAGIC 0xde5e81e4
#endif
#define GUID_LEN 36
#define TMP_SUFFIX ".envsync-new"

/* ---- names and paths ---- */

static int is_lhex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int guid_ok(const char *g)
{
	for (int i = 0; i < GUID_LEN; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? g[i] != '-' : !is_lhex(g[i]))
			return 0;
	}
	return g[GUID_LEN] == 0;
}

int es_efivar_name_check(const char *name, const char *context)
{
	size_t len = strlen(name);
	if (len < GUID_LEN + 2 || name[len - GUID_LEN - 1] != '-' ||
	    !guid_ok(name + len - GUID_LEN) || memchr(name, '/', len)) {
		es_err("%s: not an efivarfs variable name (Name-GUID, the GUID as "
		       "8-4-4-4-12 lowercase hex digits)", context);
		return -1;
	}
	return es_name_check(name, len, context);
}

/* DIR/NAME, or (tmp) DIR/.NAME.envsync-new, a plain directory's new file. */
static char *var_path(const char *dir, const char *name, int tmp)
{
	size_t n = strlen(dir) + strlen(name) + sizeof TMP_SUFFIX + 3;
	char *s = es_malloc(n);
	if (tmp)
		snprintf(s, n, "%s/.%s%s", dir, name, TMP_SUFFIX);
	else
		snprintf(s, n, "%s/%s", dir, name);
	return s;
}

int es_efivars_is_dir(const char *path)
{
	struct stat st;
	return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- listing a directory ---- */

struct names {
	char **v;
	uint32_t n, cap;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(struct names *nm)
{
	for (uint32_t i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
	memset(nm, 0, sizeof *nm);
}

static int names_add(struct names *nm, const char *dir, const char *name)
{
	if (nm->n == ES_MAX_ITEMS) {
		es_err("%s: more than %d files (the limit of items in an image)", dir,
		       ES_MAX_ITEMS);
		return -1;
	}
	if (nm->n == nm->cap) {
		uint32_t cap = nm->cap ? 2 * nm->cap : 64;
		char **v = es_calloc(cap, sizeof *v);
		if (nm->n)
			memcpy(v, nm->v, nm->n * sizeof *v);
		free(nm->v);
		nm->v = v;
		nm->cap = cap;
	}
	size_t len = strlen(name) + 1;
	nm->v[nm->n] = es_malloc(len);
	memcpy(nm->v[nm->n++], name, len);
	return 0;
}

/* Every entry of DIR but . and .., sorted (strcmp). */
static int list_dir(const char *dir, struct names *nm)
{
	memset(nm, 0, sizeof *nm);
	DIR *d = opendir(dir);
	if (!d) {
		es_errno("%s: cannot open directory", dir);
		return -1;
	}
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (errno = 0, e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			rc = names_add(nm, dir, e->d_name);
	if (rc == 0 && errno) {
		es_errno("%s: cannot read directory", dir);
		rc = -1;
	}
	closedir(d);
	if (rc < 0) {
		names_free(nm);
		return -1;
	}
	if (nm->n)
		qsort(nm->v, nm->n, sizeof *nm->v, cmp_str);
	return 0;
}

/* ---- envdump --efivarfs ---- */

static int dump_source(struct es_source *s, const char *path, const char *name)
{
	struct stat st;
	if (es_efivar_name_check(name, path) < 0)
		return -1;
	if (lstat(path, &st) < 0) {
		es_errno("%s: cannot stat", path);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		es_err("%s: not a regular file", path);
		return -1;
	}
	if (st.st_size < ES_EFIVAR_MIN || (uint64_t)st.st_size > ES_EFIVAR_MAX) {
		es_err("%s: %lld bytes: a variable file holds %d bytes of attributes and at most %u bytes in all",
		       path, (long long)st.st_size, ES_EFIVAR_MIN, ES_EFIVAR_MAX);
		return -1;
	}
	s->spec = path;
	s->path = path;
	strcpy(s->item.name, name);
	return 0;
}

int es_efivars_dump(const char *dir, const struct es_revpolicy *pol, struct es_out *out,
		    uint64_t *rev_out)
{
	struct names nm;
	if (list_dir(dir, &nm) < 0)
		return -1;
	struct es_source *srcs = es_calloc(nm.n, sizeof *srcs);
	char **paths = es_calloc(nm.n, sizeof *paths);
	int r = 0;
	for (uint32_t i = 0; i < nm.n && r == 0; i++) {
		paths[i] = var_path(dir, nm.v[i], 0);
		r = dump_source(&srcs[i], paths[i], nm.v[i]);
	}
	if (r == 0)
		r = es_dump_build(srcs, nm.n, pol, out, rev_out);
	for (uint32_t i = 0; i < nm.n; i++)
		free(paths[i]);
	free(paths);
	free(srcs);
	names_free(&nm);
	return r;
}

/* ---- the variables of a diff, on both sides ---- */

struct evar {
	char name[ES_NAME_MAX + 1];
	uint8_t has[2];    /* present before [0] and after [1] */
	uint8_t changed;   /* written by the apply; contents in the journal */
	uint8_t immutable; /* its immutable attribute was cleared by this run */
	uint64_t size[2];
	uint32_t crc[2];
};

struct evset {
	struct evar *v;
	uint32_t n;
};

static int cmp_evar(const void *a, const void *b)
{
	return strcmp(((const struct evar *)a)->name, ((const struct evar *)b)->name);
}

static struct evar *ev_find(const struct evset *s, const char *name)
{
	struct evar key;
	if (strlen(name) > ES_NAME_MAX || s->n == 0)
		return NULL;
	/* cmp_evar reads only the name, but no field is left undefined */
	memset(&key, 0, sizeof key);
	strcpy(key.name, name);
	return bsearch(&key, s->v, s->n, sizeof *s->v, cmp_evar);
}

/* Sort by name for ev_find; a name twice is an error. */
static int ev_index(struct evset *s, const char *src)
{
	if (s->n)
		qsort(s->v, s->n, sizeof *s->v, cmp_evar);
	for (uint32_t i = 1; i < s->n; i++)
		if (strcmp(s->v[i - 1].name, s->v[i].name) == 0) {
			es_err("%s: variable '%s' appears twice", src, s->v[i].name);
			return -1;
		}
	return 0;
}

/* Names, sizes and presence a directory target can take; CTX names the source. */
static int ev_check(const struct evar *v, const char *src)
{
	char ctx[600];
	snprintf(ctx, sizeof ctx, "%s: item '%s'", src, v->name);
	if (es_efivar_name_check(v->name, ctx) < 0)
		return -1;
	for (int side = 0; side < 2; side++)
		if (v->has[side] &&
		    (v->size[side] < ES_EFIVAR_MIN || v->size[side] > ES_EFIVAR_MAX)) {
			es_err("%s: %" PRIu64 " bytes: a variable file holds %d bytes of attributes and at most %u bytes in all",
			       ctx, v->size[side], ES_EFIVAR_MIN, ES_EFIVAR_MAX);
			return -1;
		}
	return 0;
}

/* ---- where a directory stands ---- */

#define NOT_REG UINT64_MAX

/* Every file of a directory with its size (NOT_REG: not a regular file;
 * ES_EFIVAR_MAX + 1: larger) and CRC32. */
struct scan {
	struct names nm;
	uint64_t *size;
	uint32_t *crc;
};

static void scan_free(struct scan *sc)
{
	names_free(&sc->nm);
	free(sc->size);
	free(sc->crc);
	sc->size = NULL;
	sc->crc = NULL;
}

/* Read the file at PATH whole, at most cap + 1 bytes (a longer one shows as
 * longer than cap). 1: read, *n its size; 2: not a regular file; -1 trouble. */
static int read_var(const char *path, unsigned char *buf, size_t cap, size_t *n)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			return 2; /* a symbolic link */
		es_errno("%s: cannot open", path);
		return -1;
	}
	struct stat st;
	int rc = 1;
	if (fstat(fd, &st) < 0) {
		es_errno("%s: cannot stat", path);
		rc = -1;
	} else if (!S_ISREG(st.st_mode))
		rc = 2;
	ssize_t r = rc == 1 ? es_read_full(fd, buf, cap + 1) : 0;
	if (r < 0) {
		es_errno("%s: read error", path);
		rc = -1;
	}
	close(fd);
	*n = (size_t)(r > 0 ? r : 0);
	return rc;
}

static int scan_dir(const char *dir, struct scan *sc)
{
	memset(sc, 0, sizeof *sc);
	if (list_dir(dir, &sc->nm) < 0)
		return -1;
	sc->size = es_calloc(sc->nm.n, sizeof *sc->size);
	sc->crc = es_calloc(sc->nm.n, sizeof *sc->crc);
	unsigned char *buf = es_malloc((size_t)ES_EFIVAR_MAX + 1);
	int r = 1;
	for (uint32_t i = 0; i < sc->nm.n && r > 0; i++) {
		char *path = var_path(dir, sc->nm.v[i], 0);
		size_t n = 0; /* read_var sets it only when it returns 1 */
		r = read_var(path, buf, ES_EFIVAR_MAX, &n);
		free(path);
		sc->size[i] = r == 2 ? NOT_REG : n;
		sc->crc[i] = es_crc32(0, buf, r == 1 ? n : 0);
	}
	free(buf);
	if (r < 0)
		scan_free(sc);
	return r < 0 ? -1 : 0;
}

static int file_matches(const struct scan *sc, uint32_t i, const struct evset *s, int side,
			char *why, size_t wl)
{
	const char *name = sc->nm.v[i];
	const struct evar *v = ev_find(s, name);
	if (!v || !v->has[side])
		snprintf(why, wl, "%s is not one of its variables", name);
	else if (sc->size[i] == NOT_REG)
		snprintf(why, wl, "%s is not a regular file", name);
	else if (sc->size[i] > ES_EFIVAR_MAX)
		snprintf(why, wl, "%s is larger than %u bytes", name, ES_EFIVAR_MAX);
	else if (sc->size[i] != v->size[side] || sc->crc[i] != v->crc[side])
		snprintf(why, wl, "%s has %" PRIu64 " bytes with CRC32 %08" PRIx32
			 ", not %" PRIu64 " bytes with CRC32 %08" PRIx32,
			 name, sc->size[i], sc->crc[i], v->size[side], v->crc[side]);
	else
		return 1;
	return 0;
}

static int is_missing(const struct scan *sc, const struct evar *v, int side, char *why,
		      size_t wl)
{
	const char *key = v->name;
	if (!v->has[side] ||
	    (sc->nm.n && bsearch(&key, sc->nm.v, sc->nm.n, sizeof key, cmp_str)))
		return 0;
	snprintf(why, wl, "%s is missing", key);
	return 1;
}

/* How far the scanned directory is from holding exactly the variables of
 * side SIDE (0 before, 1 after) of S, each with its size and CRC32: the
 * number of files that differ or should not be there, and of variables
 * missing; WHY says the first. 0: it is at that side. */
static uint32_t differences(const struct scan *sc, const struct evset *s, int side,
			    char *why, size_t wl)
{
	char one[600];
	uint32_t n = 0;
	for (uint32_t i = 0; i < sc->nm.n; i++)
		if (!file_matches(sc, i, s, side, one, sizeof one) && n++ == 0)
			snprintf(why, wl, "%s", one);
	for (uint32_t i = 0; i < s->n; i++)
		if (is_missing(sc, &s->v[i], side, one, sizeof one) && n++ == 0)
			snprintf(why, wl, "%s", one);
	return n;
}

/* ---- the directory, and writing its variables ---- */

struct efidir {
	const char *path;
	int real; /* an efivarfs mount: a write() replaces a variable in place */
};

static int dir_open(struct efidir *d, const char *path)
{
	struct statfs sf;
	d->path = path;
	d->real = 0;
	if (statfs(path, &sf) < 0) {
		es_errno("%s: cannot stat", path);
		return -1;
	}
	d->real = (unsigned long)sf.f_type == (unsigned long)EFIVARFS_MAGIC;
	return 0;
}

static int dir_fsync(const struct efidir *d)
{
	int fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		es_errno("%s: cannot open directory", d->path);
		return -1;
	}
	int r = fsync(fd) < 0 && errno != EINVAL ? -1 : 0;
	if (r < 0)
		es_errno("%s: cannot fsync directory", d->path);
	close(fd);
	return r;
}

/* Does the file system lack the attribute flags altogether? */
static int flags_unsupported(int e)
{
	return e == ENOTTY || e == EOPNOTSUPP || e == ENOSYS || e == EINVAL;
}

/* Clear FS_IMMUTABLE_FL on PATH, as chattr -i does (efivarfs sets it on most
 * variables); *was says whether it was set. A missing file, or a file system
 * without the flags, is not an error. */
static int make_mutable(const char *path, int *was)
{
	*was = 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		es_errno("%s: cannot open", path);
		return -1;
	}
	int flags, r = 0;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
		if (!flags_unsupported(errno)) {
			es_errno("%s: cannot read the file's attributes (lsattr)", path);
			r = -1;
		}
	} else if (flags & FS_IMMUTABLE_FL) {
		flags &= ~FS_IMMUTABLE_FL;
		if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0) {
			es_errno("%s: cannot clear the immutable attribute (chattr -i)", path);
			r = -1;
		} else
			*was = 1;
	}
	close(fd);
	return r;
}

/* Set the immutable attribute again (best effort). */
static void make_immutable(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	int flags;
	if (fd < 0)
		return;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && !(flags & FS_IMMUTABLE_FL)) {
		flags |= FS_IMMUTABLE_FL;
		(void)!ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	close(fd);
}

/* The whole variable, attributes and data, in one write() call: efivarfs
 * takes nothing else. */
static int write_once(int fd, const char *path, const unsigned char *b, size_t n)
{
	ssize_t w = write(fd, b, n);
	if (w < 0) {
		es_errno("%s: cannot write the variable (%zu bytes)", path, n);
		return -1;
	}
	if ((size_t)w != n) {
		es_err("%s: short write (%zd of %zu bytes)", path, w, n);
		return -1;
	}
	return 0;
}

/* efivarfs: the write replaces the variable (or creates it). */
static int write_in_place(const char *path, const unsigned char *b, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		es_errno("%s: cannot open for writing", path);
		return -1;
	}
	int r = write_once(fd, path, b, n);
	if (close(fd) < 0 && r == 0) {
		es_errno("%s: write error", path);
		r = -1;
	}
	return r;
}

/* A plain directory: a new file beside the variable's, fsync'd and renamed
 * over it, keeping the old file's mode (and, when allowed, owner). */
static int write_renamed(const struct efidir *d, const char *name, const char *path,
			 const unsigned char *b, size_t n)
{
	char *tmp = var_path(d->path, name, 1);
	struct stat st;
	int had = stat(path, &st) == 0;
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int r = -1;
	if (fd < 0)
		es_errno("%s: cannot create", tmp);
	else {
		r = write_once(fd, tmp, b, n);
		if (r == 0 && (fchmod(fd, had ? st.st_mode & 07777 : 0644) < 0 || fsync(fd) < 0)) {
			es_errno("%s: cannot finish", tmp);
			r = -1;
		}
		if (had)
			(void)!fchown(fd, st.st_uid, st.st_gid);
		if (close(fd) < 0 && r == 0) {
			es_errno("%s: write error", tmp);
			r = -1;
		}
		if (r == 0 && rename(tmp, path) < 0) {
			es_errno("%s: cannot rename into place", path);
			r = -1;
		}
		if (r < 0)
			unlink(tmp);
	}
	free(tmp);
	return r;
}

static int put_var(const struct efidir *d, const char *name, const unsigned char *b, size_t n)
{
	char *path = var_path(d->path, name, 0);
	int was, r = make_mutable(path, &was);
	if (r == 0)
		r = d->real ? write_in_place(path, b, n) : write_renamed(d, name, path, b, n);
	free(path);
	return r;
}

static int del_var(const struct efidir *d, const char *name)
{
	char *path = var_path(d->path, name, 0);
	int was, r = make_mutable(path, &was);
	if (r == 0 && unlink(path) < 0 && errno != ENOENT) {
		es_errno("%s: cannot remove", path);
		r = -1;
	}
	free(path);
	if (r == 0 && !d->real) {
		char *tmp = var_path(d->path, name, 1);
		unlink(tmp); /* left over by a write cut short */
		free(tmp);
	}
	return r;
}

/* Clear the immutable attribute of every changed variable present on side
 * SIDE before the commit point, so a refusal changes nothing. */
static int unlock_all(const struct efidir *d, struct evset *s, int side)
{
	for (uint32_t i = 0; i < s->n; i++) {
		struct evar *v = &s->v[i];
		if (!v->changed || !v->has[side])
			continue;
		char *path = var_path(d->path, v->name, 0);
		int was, r = make_mutable(path, &was);
		free(path);
		v->immutable = (uint8_t)was;
		if (r < 0)
			return -1;
	}
	return 0;
}

/* Give the immutable attribute back to the variables that had it. */
static void relock_all(const struct efidir *d, const struct evset *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (s->v[i].immutable) {
			char *path = var_path(d->path, s->v[i].name, 0);
			make_immutable(path);
			free(path);
		}
}

/* ---- the journal: every variable's sizes and CRC32s, the changed ones'
 * contents; layout in envapply(1) ---- */

#define EJ_MAGIC "ENVSEFIV"
#define EJ_HDR 64
#define EJ_REC 96
#define EJ_TAIL 24
#define EJ_OLD 1u
#define EJ_NEW 2u
#define EJ_DATA 4u

static void enc_evar(unsigned char *p, const struct evar *v)
{
	size_t len = strlen(v->name);
	memset(p, 0, EJ_REC);
	put16(p, (uint16_t)len);
	p[2] = (unsigned char)((v->has[0] ? EJ_OLD : 0) | (v->has[1] ? EJ_NEW : 0) |
			       (v->changed ? EJ_DATA : 0));
	put32(p + 4, v->crc[0]);
	put32(p + 8, v->crc[1]);
	put64(p + 16, v->size[0]);
	put64(p + 24, v->size[1]);
	memcpy(p + 32, v->name, len);
}

static int bad_rec(const char *path, uint32_t i, const char *why)
{
	es_err("%s: record %" PRIu32 ": %s", path, i, why);
	return -1;
}

static int dec_evar(const unsigned char *p, struct evar *v, const char *path, uint32_t i)
{
	uint16_t len = get16(p);
	memset(v, 0, sizeof *v);
	if (len == 0 || len > ES_NAME_MAX || p[2] > 7 || p[3] || get32(p + 12) ||
	    !es_allzero(p + 32 + len, ES_NAME_MAX - len) || !(p[2] & (EJ_OLD | EJ_NEW)))
		return bad_rec(path, i, "bad name length, flags or reserved field");
	memcpy(v->name, p + 32, len);
	v->has[0] = (p[2] & EJ_OLD) != 0;
	v->has[1] = (p[2] & EJ_NEW) != 0;
	v->changed = (p[2] & EJ_DATA) != 0;
	v->crc[0] = get32(p + 4);
	v->crc[1] = get32(p + 8);
	v->size[0] = get64(p + 16);
	v->size[1] = get64(p + 24);
	if (ev_check(v, path) < 0)
		return -1;
	for (int side = 0; side < 2; side++)
		if (!v->has[side] && (v->size[side] || v->crc[side]))
			return bad_rec(path, i, "an absent side has a size or CRC32");
	if (!v->changed && (!v->has[0] || !v->has[1] || v->size[0] != v->size[1] ||
			    v->crc[0] != v->crc[1]))
		return bad_rec(path, i, "a variable without contents differs between the sides");
	return 0;
}

struct ejw {
	struct es_writer w;
	int fd;
	uint32_t nrec;
	const char *tmp;
};

static int ejw_open(struct ejw *j, const char *tmp, uint32_t n, const uint64_t rev[2])
{
	unsigned char h[EJ_HDR];
	memset(j, 0, sizeof *j);
	j->tmp = tmp;
	j->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		es_errno("%s: cannot create journal", tmp);
		return -1;
	}
	es_writer_init(&j->w, j->fd, tmp);
	memset(h, 0, sizeof h);
	memcpy(h, EJ_MAGIC, 8);
	put16(h + 8, 1);
	put32(h + 12, n);
	put64(h + 16, rev[0]);
	put64(h + 24, rev[1]);
	return es_writer_put(&j->w, h, sizeof h);
}

static int ejw_record(struct ejw *j, const struct evar *v, unsigned char *const b[2])
{
	unsigned char r[EJ_REC];
	enc_evar(r, v);
	if (es_writer_put(&j->w, r, sizeof r) < 0)
		return -1;
	for (int side = 0; side < 2 && v->changed; side++)
		if (v->has[side] && es_writer_put(&j->w, b[side], (size_t)v->size[side]) < 0)
			return -1;
	j->nrec++;
	return 0;
}

static void ejw_abort(struct ejw *j)
{
	if (j->fd >= 0) {
		es_writer_free(&j->w);
		close(j->fd);
		j->fd = -1;
	}
	unlink(j->tmp);
}

/* Tail, fsync, rename to DEST, fsync its directory: the commit point. */
static int ejw_commit(struct ejw *j, const char *dest)
{
	unsigned char t[EJ_TAIL];
	memset(t, 0, sizeof t);
	memcpy(t, "JEND", 4);
	put64(t + 8, j->nrec);
	int r = es_writer_put(&j->w, t, 20);
	put32(t + 20, es_writer_crc(&j->w));
	if (r == 0)
		r = es_writer_put(&j->w, t + 20, 4);
	if (r == 0)
		r = es_writer_flush(&j->w);
	if (r == 0 && fsync(j->fd) < 0) {
		es_errno("%s: cannot fsync", j->tmp);
		r = -1;
	}
	es_writer_free(&j->w);
	if (close(j->fd) < 0 && r == 0) {
		es_errno("%s: write error", j->tmp);
		r = -1;
	}
	j->fd = -1;
	if (r == 0 && rename(j->tmp, dest) < 0) {
		es_errno("%s: cannot rename into place", dest);
		r = -1;
	}
	if (r < 0) {
		unlink(j->tmp);
		return -1;
	}
	return es_fsync_dir_of(dest);
}

struct ejr {
	struct es_in in;
	uint32_t crc, n, seen;
	uint64_t rev[2];
};

static int ejr_read(struct ejr *j, void *buf, size_t n, const char *what)
{
	ssize_t r = es_in_read(&j->in, buf, n);
	if (r < 0)
		return -1;
	if ((size_t)r < n) {
		es_err("%s: byte %" PRIu64 ": journal truncated in %s", j->in.name, j->in.pos,
		       what);
		return -1;
	}
	j->crc = es_crc32(j->crc, buf, n);
	return 0;
}

static int ejr_open(struct ejr *j, const char *path)
{
	unsigned char h[EJ_HDR];
	memset(j, 0, sizeof *j);
	if (es_in_open(&j->in, path) < 0)
		return -1;
	if (ejr_read(j, h, sizeof h, "its header") < 0)
		goto bad;
	if (memcmp(h, EJ_MAGIC, 8) != 0 || get16(h + 8) != 1 || get16(h + 10) ||
	    !es_allzero(h + 32, EJ_HDR - 32)) {
		es_err("%s: byte 0: not an envsync efivarfs journal", path);
		goto bad;
	}
	j->n = get32(h + 12);
	j->rev[0] = get64(h + 16);
	j->rev[1] = get64(h + 24);
	if (j->n > ES_MAX_ITEMS) {
		es_err("%s: byte 12: %" PRIu32 " variables: too many", path, j->n);
		goto bad;
	}
	return 0;
bad:
	es_in_close(&j->in);
	return -1;
}

static int ejr_tail(struct ejr *j)
{
	unsigned char t[EJ_TAIL], extra;
	if (ejr_read(j, t, 20, "its tail") < 0)
		return -1;
	uint32_t crc = j->crc;
	if (ejr_read(j, t + 20, 4, "its tail") < 0)
		return -1;
	if (memcmp(t, "JEND", 4) != 0 || get64(t + 8) != j->n || get32(t + 20) != crc) {
		es_err("%s: byte %" PRIu64 ": journal tail, record count or CRC32 mismatch",
		       j->in.name, j->in.pos);
		return -1;
	}
	if (es_in_read(&j->in, &extra, 1) != 0) {
		es_err("%s: data after the journal's end", j->in.name);
		return -1;
	}
	return 0;
}

/* The next record's header, and its contents into b[0] and b[1]; 1 when
 * the (checked) tail is reached. */
static int ejr_next(struct ejr *j, struct evar *v, unsigned char *const b[2])
{
	unsigned char r[EJ_REC];
	if (j->seen == j->n)
		return ejr_tail(j) < 0 ? -1 : 1;
	if (ejr_read(j, r, sizeof r, "a record") < 0 || dec_evar(r, v, j->in.name, j->seen) < 0)
		return -1;
	for (int side = 0; side < 2 && v->changed; side++)
		if (v->has[side] &&
		    ejr_read(j, b[side], (size_t)v->size[side], "a variable's contents") < 0)
			return -1;
	j->seen++;
	return 0;
}

/* Room for one variable on each side (and the extra byte read_var reads). */
static void bufs_new(unsigned char *b[2])
{
	b[0] = es_malloc((size_t)ES_EFIVAR_MAX + 1);
	b[1] = es_malloc((size_t)ES_EFIVAR_MAX + 1);
}

static void bufs_free(unsigned char *b[2])
{
	free(b[0]);
	free(b[1]);
}

/* Read and check the whole journal at PATH; *s receives its variables. */
static int ej_load(const char *path, struct evset *s, uint64_t rev[2])
{
	struct ejr j;
	unsigned char *b[2];
	memset(s, 0, sizeof *s);
	if (ejr_open(&j, path) < 0)
		return -1;
	s->v = es_calloc(j.n, sizeof *s->v);
	bufs_new(b);
	int r;
	while ((r = ejr_next(&j, &s->v[s->n], b)) == 0)
		s->n++;
	bufs_free(b);
	es_in_close(&j.in);
	if (r > 0 && rev)
		memcpy(rev, j.rev, sizeof j.rev);
	if (r < 0 || ev_index(s, path) < 0) {
		free(s->v);
		s->v = NULL;
		return -1;
	}
	return 0;
}

/* Copy the journal SRC to the journal slot with old and new swapped, and
 * commit it. */
static int ej_invert(const char *src, const struct es_tpaths *tp)
{
	struct ejr j;
	struct ejw w;
	unsigned char *b[2], *sw[2];
	if (ejr_open(&j, src) < 0)
		return -1;
	uint64_t rev[2] = {j.rev[1], j.rev[0]};
	bufs_new(b);
	sw[0] = b[1];
	sw[1] = b[0];
	int r = ejw_open(&w, tp->jtmp, j.n, rev);
	struct evar v;
	while (r == 0 && (r = ejr_next(&j, &v, b)) == 0) {
		struct evar inv = v;
		for (int side = 0; side < 2; side++) {
			inv.has[side] = v.has[!side];
			inv.size[side] = v.size[!side];
			inv.crc[side] = v.crc[!side];
		}
		r = ejw_record(&w, &inv, sw);
	}
	bufs_free(b);
	es_in_close(&j.in);
	if (r < 0) {
		ejw_abort(&w);
		return -1;
	}
	return ejw_commit(&w, tp->journal);
}

/* ---- replay, settle, recover ---- */

static int apply_var(const struct efidir *d, const struct evar *v, int side,
		     const unsigned char *b)
{
	return v->has[side] ? put_var(d, v->name, b, (size_t)v->size[side])
			    : del_var(d, v->name);
}

/* Bring every changed variable of the journal to side SIDE. Each variable is
 * written whole from the journal's copy, so replaying twice, or after a
 * replay cut short, gives the same directory. */
static int replay(const char *journal, const struct efidir *d, int side)
{
	struct ejr j;
	struct evar v;
	unsigned char *b[2];
	if (ejr_open(&j, journal) < 0)
		return -1;
	bufs_new(b);
	int r;
	while ((r = ejr_next(&j, &v, b)) == 0)
		if (v.changed && apply_var(d, &v, side, b[side]) < 0) {
			r = -1;
			break;
		}
	bufs_free(b);
	es_in_close(&j.in);
	if (r < 0)
		return -1;
	return d->real ? 0 : dir_fsync(d);
}

static int verify(const struct efidir *d, const struct evset *s, int side)
{
	struct scan sc;
	char why[600];
	if (scan_dir(d->path, &sc) < 0)
		return -1;
	uint32_t n = differences(&sc, s, side, why, sizeof why);
	scan_free(&sc);
	if (n)
		es_err("%s: verification after writing failed: %s", d->path, why);
	return n ? -1 : 0;
}

/* Replay the committed journal and verify; keep it as the last apply. If the
 * new state cannot be reached, the old one is put back and the journal
 * dropped. */
static int settle(const struct es_tpaths *tp, const struct efidir *d, const struct evset *s)
{
	if (replay(tp->journal, d, 1) == 0 && verify(d, s, 1) == 0) {
		if (rename(tp->journal, tp->last) < 0) {
			es_errno("%s: cannot keep the journal as %s", tp->journal, tp->last);
			return -1;
		}
		return es_fsync_dir_of(tp->last);
	}
	char msg[1024];
	snprintf(msg, sizeof msg, "%s", es_errmsg());
	if (replay(tp->journal, d, 0) == 0 && verify(d, s, 0) == 0) {
		unlink(tp->journal);
		es_fsync_dir_of(tp->journal);
		es_err("%s (the directory is back at its previous state)", msg);
		return -1;
	}
	es_err("%s; putting the previous state back failed too: the journal %s is kept for envapply --recover",
	       msg, tp->journal);
	return -1;
}

/* 1 an interrupted apply was finished, 0 none, -1 trouble. */
static int recover(const struct es_tpaths *tp, const struct efidir *d, int verbose)
{
	struct evset s;
	unlink(tp->jtmp); /* never renamed into place: nothing was written */
	if (access(tp->journal, F_OK) != 0)
		return 0;
	if (ej_load(tp->journal, &s, NULL) < 0)
		return -1;
	int r = settle(tp, d, &s);
	free(s.v);
	if (r == 0 && verbose)
		es_warn("%s: finished an interrupted apply from its journal", d->path);
	return r < 0 ? -1 : 1;
}

/* ---- the diff: loaded whole and validated before anything is touched ---- */

struct eplan {
	struct es_dhdr h;
	struct evset s;
	int spool; /* the validated stream, reread for its entries */
	const char *dname;
};

static int p_header(void *arg, const struct es_dhdr *h)
{
	struct eplan *p = arg;
	p->h = *h;
	p->s.v = es_calloc(h->nitems, sizeof *p->s.v);
	return 0;
}

static int p_item(void *arg, const struct es_ditem *it)
{
	struct eplan *p = arg;
	struct evar *v = &p->s.v[p->s.n];
	strcpy(v->name, it->name);
	v->has[0] = (it->presence & ES_IN_BASE) != 0;
	v->has[1] = (it->presence & ES_IN_RESULT) != 0;
	v->size[0] = it->base_size;
	v->size[1] = it->result_size;
	return 0;
}

static int p_end(void *arg, const struct es_ditem *it, const struct es_dend *d)
{
	struct eplan *p = arg;
	struct evar *v = &p->s.v[p->s.n++];
	(void)it;
	v->crc[0] = d->base_crc;
	v->crc[1] = d->result_crc;
	v->changed = !v->has[0] || !v->has[1] || v->size[0] != v->size[1] ||
		     v->crc[0] != v->crc[1] || d->entries != 0;
	return 0;
}

static int spool_stream(struct eplan *p, const char *diff)
{
	struct es_sink collect = {p, p_header, p_item, NULL, p_end, NULL};
	p->spool = es_spool_stream(diff, &collect, NULL);
	return p->spool < 0 ? -1 : 0;
}

static int load_plan(struct eplan *p, const char *diff, const char *target)
{
	memset(p, 0, sizeof *p);
	p->spool = -1;
	p->dname = diff && strcmp(diff, "-") != 0 ? diff : "(stdin)";
	if (spool_stream(p, diff) < 0)
		return -1;
	if ((p->h.flags & (ES_DF_BASE_REV | ES_DF_RESULT_REV)) !=
	    (ES_DF_BASE_REV | ES_DF_RESULT_REV)) {
		es_err("%s: is a directory, which takes a diff of two env images (envdump --efivarfs), not of raw files as %s is",
		       target, p->dname);
		return -1;
	}
	for (uint32_t i = 0; i < p->s.n; i++)
		if (ev_check(&p->s.v[i], p->dname) < 0)
			return -1;
	return ev_index(&p->s, p->dname);
}

static void free_plan(struct eplan *p)
{
	free(p->s.v);
	p->s.v = NULL;
	if (p->spool >= 0)
		close(p->spool);
	p->spool = -1;
}

/* ---- building the journal: each changed variable's old contents from the
 * directory, its new ones by applying the diff's entries to them ---- */

struct build {
	struct eplan *p;
	const struct efidir *d;
	struct ejw *jw;
	struct evar *cur;
	unsigned char *b[2];
	uint64_t run_off, len; /* len: bytes of b[1] in use */
};

/* The old contents of V, as the directory holds them (checked again). */
static int load_old(struct build *bd, const struct evar *v)
{
	if (!v->has[0])
		return 0;
	char *path = var_path(bd->d->path, v->name, 0);
	size_t n;
	int r = read_var(path, bd->b[0], ES_EFIVAR_MAX, &n);
	if (r != 1 || n != v->size[0] || es_crc32(0, bd->b[0], n) != v->crc[0]) {
		if (r >= 0)
			es_err("%s: changed while the apply was being prepared", path);
		r = -1;
	}
	free(path);
	return r < 0 ? -1 : 0;
}

static int b_item(void *arg, const struct es_ditem *it)
{
	struct build *bd = arg;
	struct evar *v = ev_find(&bd->p->s, it->name);
	bd->cur = v;
	if (!v) {
		es_err("%s: item '%s' was not there the first time it was read", bd->p->dname,
		       it->name);
		return -1;
	}
	if (!v->changed)
		return 0;
	if (load_old(bd, v) < 0)
		return -1;
	bd->len = v->size[0] > v->size[1] ? v->size[0] : v->size[1];
	memcpy(bd->b[1], bd->b[0], (size_t)v->size[0]);
	memset(bd->b[1] + v->size[0], 0, (size_t)(bd->len - v->size[0]));
	return 0;
}

static int b_entry(void *arg, const struct es_ditem *it, const struct es_entry *e)
{
	struct build *bd = arg;
	if (e->flag == ES_DATA || e->flag == ES_AREA)
		bd->run_off = e->offset;
	if (e->flag == ES_INVALID || !bd->cur || !bd->cur->changed)
		return 0;
	uint64_t off = e->flag == ES_CONT ? bd->run_off + e->offset : e->offset;
	size_t n = e->flag == ES_AREA ? 8 : e->size;
	if (off > bd->len || n > bd->len - off) {
		es_err("%s: item '%s': entry at %" PRIu64 " beyond its %" PRIu64 " bytes",
		       bd->p->dname, it->name, off, bd->len);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		bd->b[1][off + i] ^= e->data[i];
	return 0;
}

static int b_end(void *arg, const struct es_ditem *it, const struct es_dend *d)
{
	struct build *bd = arg;
	struct evar *v = bd->cur;
	(void)d;
	if (v->changed && v->has[1] &&
	    es_crc32(0, bd->b[1], (size_t)v->size[1]) != v->crc[1]) {
		es_err("%s: item '%s': its entries do not give the result's CRC32 %08" PRIx32,
		       bd->p->dname, it->name, v->crc[1]);
		return -1;
	}
	return ejw_record(bd->jw, v, bd->b);
}

/* Write the journal from the spooled stream and commit it. */
static int write_journal(struct eplan *p, const struct efidir *d, const struct es_tpaths *tp)
{
	struct ejw jw;
	struct es_reader r;
	uint64_t rev[2] = {p->h.base_rev, p->h.result_rev};
	struct build bd = {p, d, &jw, NULL, {NULL, NULL}, 0, 0};
	if (ejw_open(&jw, tp->jtmp, p->s.n, rev) < 0) {
		ejw_abort(&jw);
		return -1;
	}
	if (es_reader_open_fd(&r, p->spool, p->dname) < 0) {
		ejw_abort(&jw);
		return -1;
	}
	bufs_new(bd.b);
	struct es_sink sink = {&bd, NULL, b_item, b_entry, b_end, NULL};
	int rc = es_reader_run(&r, &sink);
	es_reader_close(&r);
	bufs_free(bd.b);
	if (rc < 0) {
		ejw_abort(&jw);
		return -1;
	}
	return ejw_commit(&jw, tp->journal);
}

/* ---- the whole apply, recovery and rollback ---- */

static void describe(const struct eplan *p, const char *target, FILE *f)
{
	fprintf(f, "%s: revision %" PRIu64 " -> %" PRIu64 " (a directory: checked by content)\n",
		target, p->h.base_rev, p->h.result_rev);
	for (uint32_t i = 0; i < p->s.n; i++) {
		const struct evar *v = &p->s.v[i];
		if (!v->changed)
			continue;
		if (!v->has[0])
			fprintf(f, "%s: added, %" PRIu64 " bytes\n", v->name, v->size[1]);
		else if (!v->has[1])
			fprintf(f, "%s: removed, %" PRIu64 " bytes\n", v->name, v->size[0]);
		else if (v->size[0] != v->size[1])
			fprintf(f, "%s: resized, %" PRIu64 " -> %" PRIu64 " bytes\n", v->name,
				v->size[0], v->size[1]);
		else
			fprintf(f, "%s: changed, %" PRIu64 " bytes\n", v->name, v->size[1]);
	}
}

/* The state files' paths, from the directory's real path: "." or "dir/."
 * would otherwise put them inside the directory. */
static int state_paths(struct es_tpaths *tp, const struct es_apply_opts *o,
		       const struct efidir *d)
{
	char *real = realpath(o->target, NULL);
	if (!real) {
		es_errno("%s: cannot resolve", o->target);
		return -1;
	}
	int r = es_tpaths_init(tp, real, o->jdir, d->real);
	free(real);
	if (r == 0) { /* messages name the directory as it was given */
		free(tp->target);
		tp->target = es_malloc(strlen(o->target) + 1);
		strcpy(tp->target, o->target);
	}
	return r;
}

/* Lock the directory's state and finish an interrupted apply. */
static int prepare(const struct es_apply_opts *o, const struct efidir *d,
		   struct es_tpaths *tp, int *lockfd)
{
	if (state_paths(tp, o, d) < 0)
		return ES_TROUBLE;
	*lockfd = es_lock(tp, o->wait);
	if (*lockfd < 0)
		return *lockfd == -2 ? ES_BUSY : ES_TROUBLE;
	return recover(tp, d, 1) < 0 ? ES_TROUBLE : ES_OK;
}

static void finish(struct es_tpaths *tp, int lockfd)
{
	es_tpaths_free(tp);
	if (lockfd >= 0)
		close(lockfd);
}

/* At the result (1), at the base (0), or at neither (-ES_WRONGBASE, saying
 * which side is nearer and its first difference). */
static int where(const struct eplan *p, const struct efidir *d, const char *target)
{
	struct scan sc;
	char why[2][600];
	if (scan_dir(d->path, &sc) < 0)
		return -ES_TROUBLE;
	uint32_t n1 = differences(&sc, &p->s, 1, why[1], sizeof why[1]);
	uint32_t n0 = n1 ? differences(&sc, &p->s, 0, why[0], sizeof why[0]) : 1;
	scan_free(&sc);
	if (!n1 || !n0)
		return !n1;
	int near = n1 < n0;
	uint32_t n = near ? n1 : n0;
	es_err("%s: is neither at the diff's base nor at its result (wrong target or stale diff %s): %" PRIu32
	       " difference%s from its %s, the first: %s",
	       target, p->dname, n, n == 1 ? "" : "s", near ? "result" : "base", why[near]);
	return -ES_WRONGBASE;
}

static int write_changes(struct eplan *p, const struct efidir *d, const struct es_tpaths *tp)
{
	if (unlock_all(d, &p->s, 0) < 0) {
		relock_all(d, &p->s);
		return -1;
	}
	int r = write_journal(p, d, tp);
	if (r == 0)
		r = settle(tp, d, &p->s);
	relock_all(d, &p->s);
	return r;
}

static int run_apply(const struct es_apply_opts *o, const struct efidir *d,
		     const struct es_tpaths *tp, struct eplan *p)
{
	if (load_plan(p, o->diff, o->target) < 0)
		return ES_TROUBLE;
	int at = where(p, d, o->target);
	if (at < 0)
		return -at;
	if (at == 1) {
		if (o->verbose || o->dry_run)
			fprintf(stderr, "%s: %s: already at the diff's result, nothing to do\n",
				es_program(), o->target);
		return ES_OK;
	}
	if (o->dry_run || o->verbose)
		describe(p, o->target, o->dry_run ? stdout : stderr);
	if (o->dry_run)
		return ES_OK;
	if (write_changes(p, d, tp) < 0)
		return ES_TROUBLE;
	if (o->verbose)
		fprintf(stderr, "%s: %s: verified at the result (every variable's size and CRC32)\n",
			es_program(), o->target);
	return ES_OK;
}

/* A dry run writes nothing, so it cannot finish an interrupted apply. */
static int dry_run_check(const struct es_apply_opts *o, const struct efidir *d)
{
	struct es_tpaths tp;
	int rc = ES_OK;
	if (state_paths(&tp, o, d) < 0)
		return ES_TROUBLE;
	if (es_journal_pending(&tp))
		rc = ES_TROUBLE;
	es_tpaths_free(&tp);
	return rc;
}

int es_efivars_apply(const struct es_apply_opts *o)
{
	struct efidir d;
	struct es_tpaths tp;
	struct eplan p;
	int lockfd = -1;
	memset(&tp, 0, sizeof tp);
	memset(&p, 0, sizeof p);
	p.spool = -1;
	int rc = dir_open(&d, o->target) < 0 ? ES_TROUBLE
		 : o->dry_run		     ? dry_run_check(o, &d)
					     : prepare(o, &d, &tp, &lockfd);
	if (rc == ES_OK)
		rc = run_apply(o, &d, &tp, &p);
	free_plan(&p);
	finish(&tp, lockfd);
	return rc;
}

int es_efivars_recover(const struct es_apply_opts *o)
{
	struct efidir d;
	struct es_tpaths tp;
	int lockfd = -1, rc = ES_TROUBLE;
	memset(&tp, 0, sizeof tp);
	if (dir_open(&d, o->target) < 0 || state_paths(&tp, o, &d) < 0)
		return ES_TROUBLE;
	lockfd = es_lock(&tp, o->wait);
	if (lockfd == -2)
		rc = ES_BUSY;
	else if (lockfd >= 0) {
		int r = recover(&tp, &d, 0);
		if (r >= 0 && o->verbose)
			fprintf(stderr, "%s: %s: %s\n", es_program(), o->target,
				r ? "finished an interrupted apply" : "no interrupted apply");
		rc = r < 0 ? ES_TROUBLE : ES_OK;
	}
	finish(&tp, lockfd);
	return rc;
}

/* The inverted last journal is applied like any other: crash-safe, and kept
 * as the last apply, so a second rollback redoes. */
static int rollback(const struct es_tpaths *tp, const struct efidir *d, const char *target)
{
	struct evset s;
	struct scan sc;
	if (access(tp->last, F_OK) != 0) {
		es_err("%s: no previous apply to roll back (%s)", target, tp->last);
		return ES_TROUBLE;
	}
	if (ej_load(tp->last, &s, NULL) < 0)
		return ES_TROUBLE;
	int rc = scan_dir(d->path, &sc) < 0 ? ES_TROUBLE : ES_OK;
	if (rc == ES_OK) {
		char why[600];
		if (differences(&sc, &s, 1, why, sizeof why)) {
			es_err("%s: not at the last apply's result, refusing to roll back: %s",
			       target, why);
			rc = ES_WRONGBASE;
		}
		scan_free(&sc);
	}
	if (rc == ES_OK && unlock_all(d, &s, 1) < 0)
		rc = ES_TROUBLE;
	if (rc == ES_OK && ej_invert(tp->last, tp) < 0)
		rc = ES_TROUBLE;
	if (rc == ES_OK && recover(tp, d, 0) < 0)
		rc = ES_TROUBLE;
	relock_all(d, &s);
	free(s.v);
	return rc;
}

int es_efivars_rollback(const struct es_apply_opts *o)
{
	struct efidir d;
	struct es_tpaths tp;
	int lockfd = -1;
	memset(&tp, 0, sizeof tp);
	if (dir_open(&d, o->target) < 0)
		return ES_TROUBLE;
	int rc = prepare(o, &d, &tp, &lockfd);
	if (rc == ES_OK)
		rc = rollback(&tp, &d, o->target);
	if (rc == ES_OK && o->verbose)
		fprintf(stderr, "%s: %s: rolled back to before the last apply\n", es_program(),
			o->target);
	finish(&tp, lockfd);
	return rc;
}
