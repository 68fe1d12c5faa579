/* dump.c: building, listing, extracting and copying env images. */
#include "config.h"
#include "dump.h"
#include "util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int es_source_parse(struct es_source *src, const char *spec)
{
	const char *eq = strchr(spec, '=');
	memset(src, 0, sizeof *src);
	src->spec = spec;
	if (!eq || !eq[1]) {
		es_err("'%s': expected NAME=PATH", spec);
		return -1;
	}
	char ctx[300];
	snprintf(ctx, sizeof ctx, "'%.200s'", spec);
	if (es_name_check(spec, (size_t)(eq - spec), ctx) < 0)
		return -1;
	memcpy(src->item.name, spec, (size_t)(eq - spec));
	src->path = eq + 1;
	return 0;
}


static int write_chunk(void *arg, const unsigned char *buf, size_t n)
{
	struct es_out *out = arg;
	if (es_write_full(out->fd, buf, n) < 0) {
		es_errno("%s: write error", out->name);
		return -1;
	}
	return 0;
}

/* Open a source as a one-item raw input (regular file or block device). */
static int open_source(struct es_source *s, struct es_env *env)
{
	if (es_env_open(env, s->path, ES_ENV_RAW) < 0)
		return -1;
	if (!env->in.is_reg && !env->in.is_blk) {
		es_err("%s: item '%s': source must be a regular file or block device",
		       s->path, s->item.name);
		es_env_close(env);
		return -1;
	}
	return 0;
}

/* First pass: size and CRC32 of every source. */
static int measure_sources(struct es_source *srcs, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct es_env env;
		uint32_t crc;
		if (open_source(&srcs[i], &env) < 0)
			return -1;
		int r = es_env_item_crc(&env, 0, &crc);
		srcs[i].item.size = env.items[0].size;
		srcs[i].item.crc = crc;
		srcs[i].item.crc_known = 1;
		es_env_close(&env);
		if (r < 0)
			return -1;
	}
	return 0;
}

struct cmp_state {
	struct es_env *prev;
	uint32_t idx;
	uint64_t pos;
	unsigned char *buf;
	int same;
};

static int compare_chunk(void *arg, const unsigned char *buf, size_t n)
{
	struct cmp_state *c = arg;
	const struct es_item *it = &c->prev->items[c->idx];
	while (n && c->same) { /* a chunk may be longer than c->buf */
		size_t k = n < ES_CHUNK ? n : ES_CHUNK;
		ssize_t r = es_pread_full(c->prev->in.fd, c->buf, k, it->off + c->pos);
		if (r < 0) {
			es_errno("%s: read error", c->prev->in.name);
			return -1;
		}
		if ((size_t)r != k || memcmp(c->buf, buf, k) != 0)
			c->same = 0;
		c->pos += k;
		buf += k;
		n -= k;
	}
	return 0;
}

/* Are the sources byte for byte the items of PREV, in order? */
static int same_as_prev(struct es_source *srcs, uint32_t n, struct es_env *prev)
{
	if (prev->nitems != n)
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct es_item *p = &prev->items[i], *s = &srcs[i].item;
		if (strcmp(p->name, s->name) != 0 || p->size != s->size || p->crc != s->crc)
			return 0;
	}
	/* equal CRCs are not proof: compare the bytes */
	struct cmp_state c = {prev, 0, 0, es_malloc(ES_CHUNK), 1};
	int rc = 1;
	for (uint32_t i = 0; i < n && c.same; i++) {
		struct es_env env;
		c.idx = i;
		c.pos = 0;
		if (open_source(&srcs[i], &env) < 0) {
			rc = -1;
			break;
		}
		int r = es_env_read_item(&env, 0, compare_chunk, &c, NULL);
		es_env_close(&env);
		if (r < 0) {
			rc = -1;
			break;
		}
	}
	free(c.buf);
	return rc < 0 ? -1 : c.same;
}

static int resolve_rev(struct es_source *srcs, uint32_t n, const struct es_revpolicy *pol,
		       uint64_t *rev)
{
	if (!pol->prev) {
		*rev = pol->rev;
		return 0;
	}
	struct es_env prev;
	if (es_env_open(&prev, pol->prev, ES_ENV_IMAGE) < 0)
		return -1;
	int same = same_as_prev(srcs, n, &prev);
	if (same == 0 && prev.rev == UINT64_MAX) {
		es_err("%s: revision %" PRIu64 " cannot be bumped", pol->prev, prev.rev);
		same = -1;
	}
	*rev = same ? prev.rev : prev.rev + 1;
	es_env_close(&prev);
	return same < 0 ? -1 : 0;
}

int es_dump_build(struct es_source *srcs, uint32_t n, const struct es_revpolicy *pol,
		  struct es_out *out, uint64_t *rev_out)
{
	if (n > ES_MAX_ITEMS) {
		es_err("%u items: the limit is %d", n, ES_MAX_ITEMS);
		return -1;
	}
	struct es_item *items = es_calloc(n, sizeof *items);
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(srcs[i].item.name, srcs[j].item.name) == 0) {
				es_err("'%s': duplicate item name '%s'", srcs[i].spec,
				       srcs[i].item.name);
				free(items);
				return -1;
			}
	int rc = -1;
	size_t hlen;
	unsigned char *hdr = NULL;
	if (measure_sources(srcs, n) < 0 || resolve_rev(srcs, n, pol, rev_out) < 0)
		goto out;
	for (uint32_t i = 0; i < n; i++)
		items[i] = srcs[i].item;
	hdr = es_image_header(*rev_out, items, n, &hlen);
	if (es_write_full(out->fd, hdr, hlen) < 0) {
		es_errno("%s: write error", out->name);
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct es_env env;
		if (open_source(&srcs[i], &env) < 0)
			goto out;
		/* the directory already promised this size and CRC32 */
		env.items[0].crc = srcs[i].item.crc;
		env.items[0].crc_known = env.items[0].size == srcs[i].item.size;
		int r = env.items[0].crc_known ? es_env_read_item(&env, 0, write_chunk, out, NULL)
					       : -1;
		if (!env.items[0].crc_known || (r < 0 && strstr(es_errmsg(), "CRC32")))
			es_err("%s: item '%s': source changed while it was being read",
			       srcs[i].path, srcs[i].item.name);
		es_env_close(&env);
		if (r < 0)
			goto out;
	}
	rc = 0;
out:
	free(hdr);
	free(items);
	return rc;
}

void es_dump_list(const struct es_env *env, FILE *f)
{
	fprintf(f, "revision %" PRIu64 "\n", env->rev);
	for (uint32_t i = 0; i < env->nitems; i++)
		fprintf(f, "%08" PRIx32 " %12" PRIu64 " %s\n", env->items[i].crc,
			env->items[i].size, env->items[i].name);
}

int es_dump_extract(struct es_env *env, const char *name, struct es_out *out)
{
	int idx = es_env_find(env, name);
	if (idx < 0) {
		es_err("%s: no item named '%s'", env->in.name, name);
		return -1;
	}
	/* verify before writing, so a corrupt item never reaches the output */
	uint32_t crc;
	if (env->in.size != ES_SIZE_UNKNOWN && es_env_item_crc(env, (uint32_t)idx, &crc) < 0)
		return -1;
	return es_env_read_item(env, (uint32_t)idx, write_chunk, out, NULL);
}

int es_image_copy(struct es_env *env, struct es_out *out, uint64_t rev)
{
	size_t hlen;
	unsigned char *hdr = es_image_header(rev, env->items, env->nitems, &hlen);
	int r = es_write_full(out->fd, hdr, hlen);
	free(hdr);
	if (r < 0) {
		es_errno("%s: write error", out->name);
		return -1;
	}
	for (uint32_t i = 0; i < env->nitems; i++)
		if (es_env_read_item(env, i, write_chunk, out, NULL) < 0)
			return -1;
	if (env->in.size == ES_SIZE_UNKNOWN) {
		/* a file's size was checked when it was opened; a pipe's only now */
		unsigned char extra;
		ssize_t got = es_in_read(&env->in, &extra, 1);
		if (got < 0)
			return -1;
		if (got > 0) {
			es_err("%s: byte %llu: data after the last item's end", env->in.name,
			       (unsigned long long)(env->in.pos - 1));
			return -1;
		}
	}
	return 0;
}
