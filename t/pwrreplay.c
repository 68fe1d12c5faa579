/* pwrreplay.c: rebuild the states a power loss could leave in a directory,
 * from the log t/shim/recshim.c wrote while a program ran in it, and run a
 * check in each.
 *
 *   pwrreplay [-c LIVEDIR] LOG SNAPDIR STATEDIR CMD [ARG...]
 *
 * SNAPDIR is a copy of the watched directory taken before the program ran;
 * LIVEDIR (-c) the directory as the program left it: replaying every logged
 * operation must give exactly its files, or the log missed something and
 * the run is refused. For every state, STATEDIR is emptied and filled with
 * the state's files (names that share an inode become hard links), and CMD
 * runs in it with PWR_STATE describing the state. The first state whose CMD
 * fails is left in STATEDIR, described with every operation it kept or
 * dropped, and pwrreplay exits 1. On success it prints a tally.
 *
 * The model (what is durable after a power loss):
 *  - files are inodes holding bytes; the directory maps names to inodes;
 *  - a data operation (write, truncate) becomes durable when an fsync of
 *    its file completes after it;
 *  - a name operation (create, rename, link, unlink) becomes durable when
 *    an fsync of the directory completes after it;
 *  - nothing else is assumed: in particular not that operations persist in
 *    the order they were issued, nor that fsyncing a new file makes its name
 *    durable.
 * A crash point is a boundary k (0..F, F the number of fsyncs): fsyncs 1..k
 * completed, the program may have issued everything up to fsync k+1 (for
 * k = F: everything), and any of the operations not yet made durable may or
 * may not have reached the disk. For each boundary the subsets tried are:
 * none of them, all of them, each one alone, all but each one, and each
 * prefix in issue order (what file systems that persist in order can
 * leave). Operations are whole: a write is kept or dropped entirely (torn
 * writes inside one call are not modelled). A name operation acts on the
 * inode it acted on in the real run: a rename or unlink removes the old
 * name only if it still names that inode in the replayed state.
 * Identical states are checked once. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define NAME_MAX_ 256

enum optype { OP_W, OP_T, OP_C, OP_R, OP_L, OP_U, OP_S, OP_D };

struct op {
	enum optype t;
	int id;            /* the inode (our numbering) */
	uint64_t off, len; /* W: offset, length; T: length */
	uint64_t doff;     /* W: where the bytes are in the data file */
	char a[NAME_MAX_], b[NAME_MAX_];
	int cover;         /* index (in syncs) of the first fsync making it durable, or nsync */
};

struct buf {
	unsigned char *p;
	size_t len, cap;
};

struct entry {
	char name[NAME_MAX_];
	int id;
};

static struct op *ops;
static int nops;
static int *syncs, nsync;
static struct buf *init_content; /* per inode: the bytes at start */
static int ninodes;
static struct entry *init_names;
static int ninit;
static unsigned char *data;
static size_t datalen;

/* the state being built */
static struct buf *cur;
static struct entry *names;
static int nnames;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	fputs("pwrreplay: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static void buf_reserve(struct buf *b, size_t n)
{
	if (n <= b->cap)
		return;
	size_t c = b->cap ? b->cap : 4096;
	while (c < n)
		c *= 2;
	b->p = xrealloc(b->p, c);
	b->cap = c;
}

static void buf_resize(struct buf *b, size_t n)
{
	buf_reserve(b, n);
	if (n > b->len)
		memset(b->p + b->len, 0, n - b->len);
	b->len = n;
}

static void read_file(const char *path, struct buf *b)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	b->len = 0;
	for (;;) {
		buf_reserve(b, b->len + 65536);
		ssize_t r = read(fd, b->p + b->len, b->cap - b->len);
		if (r < 0)
			die("%s: %s", path, strerror(errno));
		if (r == 0)
			break;
		b->len += (size_t)r;
	}
	close(fd);
}

/* ---- the log ---- */

static unsigned long long *live_ino; /* live inode number bound to each id */

static int bind_new(unsigned long long ino)
{
	init_content = xrealloc(init_content, (size_t)(ninodes + 1) * sizeof *init_content);
	live_ino = xrealloc(live_ino, (size_t)(ninodes + 1) * sizeof *live_ino);
	memset(&init_content[ninodes], 0, sizeof *init_content);
	live_ino[ninodes] = ino;
	return ninodes++;
}

/* The id an inode number stands for now: the latest one bound to it (inode
 * numbers are reused once a file is gone). */
static int lookup(unsigned long long ino, int line)
{
	for (int i = ninodes - 1; i >= 0; i--)
		if (live_ino[i] == ino)
			return i;
	die("log line %d: inode %llu was never seen in the directory", line, ino);
}

static struct op *new_op(enum optype t)
{
	ops = xrealloc(ops, (size_t)(nops + 1) * sizeof *ops);
	struct op *o = &ops[nops++];
	memset(o, 0, sizeof *o);
	o->t = t;
	return o;
}

static void load(const char *logpath, const char *snap)
{
	char dpath[4096];
	struct buf d = {0};
	snprintf(dpath, sizeof dpath, "%s.data", logpath);
	if (access(dpath, F_OK) == 0)
		read_file(dpath, &d);
	data = d.p;
	datalen = d.len;
	FILE *f = fopen(logpath, "r");
	if (!f)
		die("%s: %s", logpath, strerror(errno));
	char line[2 * NAME_MAX_ + 128], a[NAME_MAX_], b[NAME_MAX_];
	unsigned long long ino, x, y, z;
	int ln = 0;
	while (fgets(line, sizeof line, f)) {
		ln++;
		struct op *o;
		switch (line[0]) {
		case 'I':
			if (sscanf(line, "I %llu %255s", &ino, a) != 2)
				goto bad;
			init_names = xrealloc(init_names, (size_t)(ninit + 1) * sizeof *init_names);
			snprintf(init_names[ninit].name, NAME_MAX_, "%s", a);
			init_names[ninit].id = bind_new(ino);
			{
				char p[4096 + NAME_MAX_];
				snprintf(p, sizeof p, "%s/%s", snap, a);
				read_file(p, &init_content[init_names[ninit].id]);
			}
			ninit++;
			break;
		case 'C':
			if (sscanf(line, "C %llu %255s", &ino, a) != 2)
				goto bad;
			o = new_op(OP_C);
			o->id = bind_new(ino);
			snprintf(o->a, NAME_MAX_, "%s", a);
			break;
		case 'W':
			if (sscanf(line, "W %llu %llu %llu %llu", &ino, &x, &y, &z) != 4)
				goto bad;
			if (z > datalen || y > datalen - z)
				die("log line %d: data beyond the data file", ln);
			o = new_op(OP_W);
			o->id = lookup(ino, ln);
			o->off = x;
			o->len = y;
			o->doff = z;
			break;
		case 'T':
			if (sscanf(line, "T %llu %llu", &ino, &x) != 2)
				goto bad;
			o = new_op(OP_T);
			o->id = lookup(ino, ln);
			o->len = x;
			break;
		case 'S':
			if (sscanf(line, "S %llu", &ino) != 1)
				goto bad;
			o = new_op(OP_S);
			o->id = lookup(ino, ln);
			break;
		case 'D':
			new_op(OP_D);
			break;
		case 'R':
		case 'L':
			if (sscanf(line + 1, " %llu %255s %255s", &ino, a, b) != 3)
				goto bad;
			o = new_op(line[0] == 'R' ? OP_R : OP_L);
			o->id = lookup(ino, ln);
			snprintf(o->a, NAME_MAX_, "%s", a);
			snprintf(o->b, NAME_MAX_, "%s", b);
			break;
		case 'U':
			if (sscanf(line, "U %llu %255s", &ino, a) != 2)
				goto bad;
			o = new_op(OP_U);
			o->id = lookup(ino, ln);
			snprintf(o->a, NAME_MAX_, "%s", a);
			break;
		case 'X':
			die("log line %d: a call the model does not cover: %s", ln, line + 2);
		default:
			goto bad;
		}
	}
	fclose(f);
	/* the fsyncs, and for every other operation the first one that covers it */
	for (int i = 0; i < nops; i++)
		if (ops[i].t == OP_S || ops[i].t == OP_D) {
			syncs = xrealloc(syncs, (size_t)(nsync + 1) * sizeof *syncs);
			syncs[nsync++] = i;
		}
	for (int i = 0; i < nops; i++) {
		struct op *o = &ops[i];
		int data_op = o->t == OP_W || o->t == OP_T;
		o->cover = nsync;
		for (int j = 0; j < nsync; j++) {
			const struct op *s = &ops[syncs[j]];
			if (syncs[j] <= i)
				continue;
			if ((data_op && s->t == OP_S && s->id == o->id) ||
			    (!data_op && s->t == OP_D)) {
				o->cover = j;
				break;
			}
		}
	}
	return;
bad:
	die("%s: line %d: cannot parse: %s", logpath, ln, line);
}

/* ---- building a state ---- */

static int find_name(const char *n)
{
	for (int i = 0; i < nnames; i++)
		if (strcmp(names[i].name, n) == 0)
			return i;
	return -1;
}

static void set_name(const char *n, int id)
{
	int i = find_name(n);
	if (i < 0) {
		names = xrealloc(names, (size_t)(nnames + 1) * sizeof *names);
		i = nnames++;
		snprintf(names[i].name, NAME_MAX_, "%s", n);
	}
	names[i].id = id;
}

static void drop_name(const char *n, int id)
{
	int i = find_name(n);
	if (i >= 0 && names[i].id == id)
		names[i] = names[--nnames];
}

static void apply_op(const struct op *o)
{
	struct buf *b = &cur[o->id];
	switch (o->t) {
	case OP_W:
		if (o->off + o->len > b->len)
			buf_resize(b, (size_t)(o->off + o->len));
		memcpy(b->p + o->off, data + o->doff, (size_t)o->len);
		break;
	case OP_T:
		buf_resize(b, (size_t)o->len);
		break;
	case OP_C:
		b->len = 0;
		set_name(o->a, o->id);
		break;
	case OP_R:
		set_name(o->b, o->id);
		drop_name(o->a, o->id);
		break;
	case OP_L:
		set_name(o->b, o->id);
		break;
	case OP_U:
		drop_name(o->a, o->id);
		break;
	case OP_S:
	case OP_D:
		break;
	}
}

/* Build the state of boundary k keeping the pending operations marked in keep. */
static void build(int end, const char *keep)
{
	if (!cur)
		cur = calloc((size_t)ninodes, sizeof *cur);
	for (int i = 0; i < ninodes; i++) {
		buf_reserve(&cur[i], init_content[i].len);
		if (init_content[i].len)
			memcpy(cur[i].p, init_content[i].p, init_content[i].len);
		cur[i].len = init_content[i].len;
	}
	nnames = 0;
	for (int i = 0; i < ninit; i++)
		set_name(init_names[i].name, init_names[i].id);
	for (int i = 0; i < end; i++)
		if (keep[i])
			apply_op(&ops[i]);
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t state_hash(void)
{
	uint64_t h = 14695981039346656037ull;
	qsort(names, (size_t)nnames, sizeof *names, cmp_entry);
	for (int i = 0; i < nnames; i++) {
		int first = i;
		for (int j = 0; j < i; j++)
			if (names[j].id == names[i].id) {
				first = j;
				break;
			}
		uint64_t len = cur[names[i].id].len;
		h = fnv(h, names[i].name, strlen(names[i].name) + 1);
		h = fnv(h, &first, sizeof first);
		h = fnv(h, &len, sizeof len);
		h = fnv(h, cur[names[i].id].p, (size_t)len);
	}
	return h;
}

static void empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		die("%s: %s", dir, strerror(errno));
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char p[4096 + NAME_MAX_];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (unlink(p) < 0)
			die("%s: %s", p, strerror(errno));
	}
	closedir(d);
}

static void materialize(const char *dir)
{
	empty_dir(dir);
	for (int i = 0; i < nnames; i++) {
		char p[4096 + NAME_MAX_];
		snprintf(p, sizeof p, "%s/%s", dir, names[i].name);
		int j;
		for (j = 0; j < i; j++)
			if (names[j].id == names[i].id)
				break;
		if (j < i) {
			char q[4096 + NAME_MAX_];
			snprintf(q, sizeof q, "%s/%s", dir, names[j].name);
			if (link(q, p) < 0)
				die("%s: %s", p, strerror(errno));
			continue;
		}
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
		const struct buf *b = &cur[names[i].id];
		if (fd < 0 || (b->len && write(fd, b->p, b->len) != (ssize_t)b->len) || close(fd) < 0)
			die("%s: %s", p, strerror(errno));
	}
}

/* Does the state equal the files in dir? */
static int same_as_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0, ok = 1;
	if (!d)
		die("%s: %s", dir, strerror(errno));
	while ((e = readdir(d))) {
		char p[4096 + NAME_MAX_];
		struct stat st;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		n++;
		int i = find_name(e->d_name);
		struct buf b = {0};
		read_file(p, &b);
		if (i < 0) {
			fprintf(stderr, "pwrreplay: %s is in %s but not in the replayed state\n",
				e->d_name, dir);
			ok = 0;
		} else if (b.len != cur[names[i].id].len ||
			   (b.len && memcmp(b.p, cur[names[i].id].p, b.len) != 0)) {
			fprintf(stderr, "pwrreplay: %s differs between %s and the replayed state\n",
				e->d_name, dir);
			ok = 0;
		}
		free(b.p);
	}
	closedir(d);
	if (n != nnames) {
		fprintf(stderr, "pwrreplay: %d files in %s, %d in the replayed state\n", n, dir,
			nnames);
		ok = 0;
	}
	return ok;
}

/* ---- describing ---- */

/* The inode's name just before operation upto, for messages ("#id" tells
 * inodes apart when a name is reused). */
static const char *inode_name(int id, int upto)
{
	static char s[2 * NAME_MAX_];
	const char *n = NULL;
	for (int i = 0; i < ninit; i++)
		if (init_names[i].id == id)
			n = init_names[i].name;
	for (int i = 0; i < upto; i++)
		if (ops[i].id == id && (ops[i].t == OP_C || ops[i].t == OP_R))
			n = ops[i].t == OP_C ? ops[i].a : ops[i].b;
	snprintf(s, sizeof s, "%s#%d", n ? n : "?", id);
	return s;
}

static void describe_op(const struct op *o, char *s, size_t n)
{
	int at = (int)(o - ops);
	switch (o->t) {
	case OP_W:
		snprintf(s, n, "write %s %llu+%llu", inode_name(o->id, at),
			 (unsigned long long)o->off, (unsigned long long)o->len);
		break;
	case OP_T:
		snprintf(s, n, "truncate %s to %llu", inode_name(o->id, at),
			 (unsigned long long)o->len);
		break;
	case OP_C:
		snprintf(s, n, "create %s", o->a);
		break;
	case OP_R:
		snprintf(s, n, "rename %s -> %s", o->a, o->b);
		break;
	case OP_L:
		snprintf(s, n, "link %s -> %s", o->a, o->b);
		break;
	case OP_U:
		snprintf(s, n, "unlink %s", o->a);
		break;
	case OP_S:
		snprintf(s, n, "fsync %s", inode_name(o->id, at));
		break;
	case OP_D:
		snprintf(s, n, "fsync the directory");
		break;
	}
}

static void dump_ops(int k, int end, const char *keep)
{
	char s[3 * NAME_MAX_];
	fprintf(stderr, "operations up to the crash (d: durable, +: kept, -: dropped, |: fsync):\n");
	for (int i = 0; i < end; i++) {
		const struct op *o = &ops[i];
		char mark = (char)(o->t == OP_S || o->t == OP_D ? '|' : o->cover < k ? 'd' : keep[i] ? '+' : '-');
		describe_op(o, s, sizeof s);
		fprintf(stderr, "  %c %3d %s\n", mark, i + 1, s);
	}
}

/* ---- running ---- */

static int run(const char *dir, char **cmd, const char *desc)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		if (chdir(dir) < 0)
			_exit(127);
		setenv("PWR_STATE", desc, 1);
		execvp(cmd[0], cmd);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		die("waitpid: %s", strerror(errno));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	const char *live = NULL;
	int a = 1;
	if (a + 1 < argc && strcmp(argv[a], "-c") == 0) {
		live = argv[a + 1];
		a += 2;
	}
	if (argc - a < 4) {
		fprintf(stderr, "usage: pwrreplay [-c LIVEDIR] LOG SNAPDIR STATEDIR CMD [ARG...]\n");
		return 2;
	}
	const char *logpath = argv[a], *snap = argv[a + 1], *statedir = argv[a + 2];
	char **cmd = argv + a + 3;
	load(logpath, snap);
	if (nsync == 0)
		die("%s: no fsync was logged: nothing to replay", logpath);
	char *keep = xrealloc(NULL, (size_t)nops + 1);
	int *pend = xrealloc(NULL, ((size_t)nops + 1) * sizeof *pend);

	if (live) {
		memset(keep, 1, (size_t)nops);
		build(nops, keep);
		if (!same_as_dir(live))
			die("replaying the whole log does not give %s: the log is incomplete", live);
	}

	uint64_t *seen = NULL;
	int nseen = 0, tried = 0, maxpend = 0;
	for (int k = 0; k <= nsync; k++) {
		int end = k < nsync ? syncs[k] : nops, np = 0;
		for (int i = 0; i < end; i++)
			if (ops[i].t != OP_S && ops[i].t != OP_D && ops[i].cover >= k)
				pend[np++] = i;
		if (np > maxpend)
			maxpend = np;
		/* subsets: 0 none, 1 all, then only j, all but j, the first m */
		int nsub = 2 + 2 * np + (np > 1 ? np - 1 : 0);
		for (int s = 0; s < nsub; s++) {
			char what[3 * NAME_MAX_ + 64], opd[3 * NAME_MAX_];
			for (int i = 0; i < end; i++)
				keep[i] = (char)(ops[i].t != OP_S && ops[i].t != OP_D && ops[i].cover < k);
			if (s == 0)
				snprintf(what, sizeof what, "none of the %d pending", np);
			else if (s == 1) {
				for (int j = 0; j < np; j++)
					keep[pend[j]] = 1;
				snprintf(what, sizeof what, "all %d pending", np);
			} else if (s < 2 + np) {
				int j = s - 2;
				keep[pend[j]] = 1;
				describe_op(&ops[pend[j]], opd, sizeof opd);
				snprintf(what, sizeof what, "only pending op %d (%s)", pend[j] + 1, opd);
			} else if (s < 2 + 2 * np) {
				int j = s - 2 - np;
				for (int i = 0; i < np; i++)
					keep[pend[i]] = (char)(i != j);
				describe_op(&ops[pend[j]], opd, sizeof opd);
				snprintf(what, sizeof what, "all pending but op %d (%s)", pend[j] + 1,
					 opd);
			} else {
				int m = s - 2 - 2 * np + 1;
				for (int i = 0; i < m; i++)
					keep[pend[i]] = 1;
				snprintf(what, sizeof what, "the first %d of %d pending, in order", m,
					 np);
			}
			build(end, keep);
			tried++;
			uint64_t h = state_hash();
			int dup = 0;
			for (int i = 0; i < nseen && !dup; i++)
				dup = seen[i] == h;
			if (dup)
				continue;
			seen = xrealloc(seen, (size_t)(nseen + 1) * sizeof *seen);
			seen[nseen++] = h;
			char desc[8 * NAME_MAX_], syncd[3 * NAME_MAX_];
			if (k == 0)
				snprintf(syncd, sizeof syncd, "before the first fsync");
			else
				describe_op(&ops[syncs[k - 1]], syncd, sizeof syncd);
			snprintf(desc, sizeof desc, "power loss at fsync boundary %d of %d (after op %d: %s), %s",
				 k, nsync, k ? syncs[k - 1] + 1 : 0, syncd, what);
			materialize(statedir);
			int rc = run(statedir, cmd, desc);
			if (rc != 0) {
				fprintf(stderr, "pwrreplay: the check failed (status %d) in the state: %s\n",
					rc, desc);
				build(end, keep); /* names were sorted: rebuild for the listing */
				dump_ops(k, end, keep);
				fprintf(stderr, "(the state was rebuilt from %s into %s)\n", snap, statedir);
				free(seen);
				free(pend);
				free(keep);
				return 1;
			}
		}
	}
	printf("%d operations, %d fsyncs, up to %d pending at once: %d states built, %d distinct, all passed\n",
	       nops - nsync, nsync, maxpend, tried, nseen);
	free(seen);
	free(pend);
	free(keep);
	return 0;
}
