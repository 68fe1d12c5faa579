/* text.c: readable listings and summaries of diff streams. */
#include "config.h"
#include "text.h"
#include "util.h"

#include <inttypes.h>
#include <string.h>

const char *es_item_state(const struct es_ditem *it, const struct es_dend *d)
{
	if (!(it->presence & ES_IN_BASE))
		return "added";
	if (!(it->presence & ES_IN_RESULT))
		return "removed";
	if (it->base_size != it->result_size)
		return "resized";
	return d->spots ? "changed" : "same";
}

static void put_rev(FILE *f, const char *side, int has, uint64_t rev)
{
	if (has)
		fprintf(f, "%s revision %" PRIu64, side, rev);
	else
		fprintf(f, "%s raw", side);
}

static int t_header(void *arg, const struct es_dhdr *h)
{
	struct es_text *t = arg;
	t->stream_bytes = ES_DIFF_HDR + ES_REC_TAIL;
	if (t->summary_only)
		return 0;
	fputs("diff: ", t->out);
	put_rev(t->out, "base", (h->flags & ES_DF_BASE_REV) != 0, h->base_rev);
	fputs(" -> ", t->out);
	put_rev(t->out, "result", (h->flags & ES_DF_RESULT_REV) != 0, h->result_rev);
	fprintf(t->out, ", %" PRIu32 " item%s%s\n", h->nitems, h->nitems == 1 ? "" : "s",
		h->flags & ES_DF_JUDGED ? ", judged" : "");
	return 0;
}

static int t_item(void *arg, const struct es_ditem *it)
{
	struct es_text *t = arg;
	t->nitems++;
	t->stream_bytes += ES_REC_ITEM + ES_REC_END;
	if (!t->summary_only)
		fprintf(t->out, "item %s: %" PRIu64 " -> %" PRIu64 " bytes\n", it->name,
			it->base_size, it->result_size);
	return 0;
}

static int t_entry(void *arg, const struct es_ditem *it, const struct es_entry *e)
{
	struct es_text *t = arg;
	(void)it;
	t->stream_bytes += ES_REC_ENTRY;
	if (t->summary_only)
		return 0;
	if (e->flag == ES_CONT)
		fprintf(t->out, "  %-7s +%-17" PRIu64, es_flag_name(e->flag), e->offset);
	else
		fprintf(t->out, "  %-7s 0x%016" PRIx64, es_flag_name(e->flag), e->offset);
	fprintf(t->out, " %8" PRIu32 " ", e->size);
	unsigned n = e->flag == ES_AREA ? 8 : e->size;
	for (unsigned i = 0; i < n && i < 8; i++)
		fprintf(t->out, "%02x", e->data[i]);
	fputc('\n', t->out);
	return 0;
}

static int t_end(void *arg, const struct es_ditem *it, const struct es_dend *d)
{
	struct es_text *t = arg;
	const char *state = es_item_state(it, d);
	if (strcmp(state, "same") != 0)
		t->changed++;
	t->entries += d->entries;
	t->spots += d->spots;
	t->bytes += d->bytes;
	if (t->summary_only)
		fprintf(t->out, "%-24s %-8s %10" PRIu64 " -> %-10" PRIu64
			" %8" PRIu64 " spots %10" PRIu64 " bytes %8" PRIu64 " entries\n",
			it->name, state, it->base_size, it->result_size, d->spots, d->bytes,
			d->entries);
	else
		fprintf(t->out,
			"end %s: %s, CRC32 %08" PRIx32 " -> %08" PRIx32 ", %" PRIu64
			" entries, %" PRIu64 " spots, %" PRIu64 " bytes, %s\n",
			it->name, state, d->base_crc, d->result_crc, d->entries, d->spots,
			d->bytes, es_decision_name(d->decision));
	return 0;
}

static int t_finish(void *arg)
{
	struct es_text *t = arg;
	if (t->summary_only)
		fprintf(t->out,
			"%" PRIu32 " of %" PRIu32 " items changed, %" PRIu64 " spots, %" PRIu64
			" differing bytes, %" PRIu64 " entries, stream %" PRIu64 " bytes\n",
			t->changed, t->nitems, t->spots, t->bytes, t->entries,
			t->stream_bytes);
	return 0;
}

struct es_sink es_text_sink(struct es_text *t, int summary_only, FILE *out)
{
	memset(t, 0, sizeof *t);
	t->out = out;
	t->summary_only = summary_only;
	struct es_sink s = {t, t_header, t_item, t_entry, t_end, t_finish};
	return s;
}

int es_text_show(const char *path, int summary, FILE *out)
{
	struct es_reader r;
	struct es_text t;
	if (es_reader_open(&r, path) < 0)
		return ES_TROUBLE;
	struct es_sink sink = es_text_sink(&t, summary, out);
	int rc = es_reader_run(&r, &sink);
	es_reader_close(&r);
	if (rc < 0)
		return ES_TROUBLE;
	return t.changed ? ES_DIFFERENT : ES_OK;
}
