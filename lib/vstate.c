/* vstate.c: the verified-state record of a target file (vstate.h). A file's
 * ctime is set by the kernel on every change of its data or inode and cannot
 * be set back by a user, so while device, inode, size, mtime and ctime are
 * those recorded, the content is the one verified then. */
#include "config.h"
#include "vstate.h"
#include "crc.h"
#include "io.h"
#include "util.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "envsync-verified 1"

static int64_t ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The record's line for the file described by ST, without its checksum. */
static int line(char *buf, size_t n, const struct stat *st, uint32_t crc)
{
	return snprintf(buf, n,
			MAGIC " dev=%ju ino=%ju size=%jd mtime=%" PRId64 " ctime=%" PRId64
			" crc=%08" PRIx32,
			(uintmax_t)st->st_dev, (uintmax_t)st->st_ino, (intmax_t)st->st_size,
			ns(st->st_mtim), ns(st->st_ctim), crc);
}

int es_vstate_load(const char *path, int fd, uint32_t *crc)
{
	struct stat st;
	char got[512], want[512];
	if (!path || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(got, 1, sizeof got - 1, f);
	fclose(f);
	got[n] = 0;
	/* the line, " sum=", its CRC32, newline: anything else is no record */
	char *sum = strstr(got, " sum=");
	unsigned stored;
	char nl;
	if (!sum || sscanf(sum, " sum=%8x%c", &stored, &nl) != 2 || nl != '\n' ||
	    sum + 14 != got + n || es_crc32(0, (unsigned char *)got, (size_t)(sum - got)) != stored)
		return 0;
	*sum = 0;
	unsigned c;
	char *at = strstr(got, " crc=");
	if (!at || sscanf(at, " crc=%8x", &c) != 1)
		return 0;
	int len = line(want, sizeof want, &st, (uint32_t)c);
	if (len < 0 || (size_t)len >= sizeof want || strcmp(got, want) != 0)
		return 0;
	*crc = (uint32_t)c;
	return 1;
}

int es_vstate_save(const char *path, int fd, uint32_t crc)
{
	struct stat st;
	struct timespec now;
	char buf[512];
	if (!path || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    clock_gettime(CLOCK_REALTIME, &now) < 0)
		return 0;
	if (ns(now) - ns(st.st_ctim) < ES_VSTATE_SETTLE_NS) {
		unlink(path); /* whatever it says is older than this change */
		return 0;
	}
	int len = line(buf, sizeof buf, &st, crc);
	if (len < 0 || (size_t)len + 16 >= sizeof buf)
		return 0;
	snprintf(buf + len, sizeof buf - (size_t)len, " sum=%08" PRIx32 "\n",
		 es_crc32(0, (unsigned char *)buf, (size_t)len));
	/* temp + rename, so a reader never sees half a record; not fsynced: a
	 * record lost in a crash only costs the next apply a full read */
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp)
		return 0;
	/* plain open/write rather than stdio, so every write is a call the
	 * power-loss test's recorder sees (t/shim/recshim.c) */
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		return 0;
	int ok = es_write_full(out, buf, strlen(buf)) == 0;
	ok = (close(out) == 0) && ok;
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		return 0;
	}
	return 1;
}
