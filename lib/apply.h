/* apply.h: the update unit: bring a target from a diff's base to its result,
 * delta in place through a journal, or full by copy, verified. */
#ifndef ENVSYNC_APPLY_H
#define ENVSYNC_APPLY_H

struct es_apply_opts {
	const char *target;
	const char *diff;   /* NULL or "-": stdin */
	const char *source; /* for items judged full */
	const char *jdir;   /* state directory (journal, lock), NULL: default */
	const char *calfile; /* judge every item here by this calibration, or NULL */
	double wait;        /* seconds to wait for another envapply's lock */
	int dry_run;
	int check;          /* with dry_run: only check the target is at the base */
	int verbose;
};

/* Returns an exit status (enum es_exit); on trouble a message is recorded. */
int es_apply(const struct es_apply_opts *o);
int es_apply_recover(const struct es_apply_opts *o);
int es_apply_rollback(const struct es_apply_opts *o);

#endif
