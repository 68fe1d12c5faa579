/* efivars.h: efivarfs directories (the layout of /sys/firmware/efi/efivars:
 * one file per UEFI variable, named Name-GUID, holding 4 bytes of attributes
 * then the data): captured by envdump --efivarfs as an env image, one item
 * per file, and brought from a diff's base to its result by envapply, one
 * whole variable at a time, through a journal. Layout and guarantees:
 * envsync-formats(7), envapply(1). */
#ifndef ENVSYNC_EFIVARS_H
#define ENVSYNC_EFIVARS_H

#include <stdint.h>
#include "apply.h"
#include "dump.h"
#include "io.h"

#define ES_EFIVAR_MIN 4           /* the attributes alone */
#define ES_EFIVAR_MAX (4u << 20)  /* bytes per variable file, attributes included */

/* Is NAME an efivarfs file name (Name-GUID, the GUID as 8-4-4-4-12 lowercase
 * hex digits, no '/') that is also a valid item name? 0, or -1 with the
 * reason recorded after CONTEXT. */
int es_efivar_name_check(const char *name, const char *context);

/* Is PATH a directory (a target for the functions below)? */
int es_efivars_is_dir(const char *path);

/* envdump --efivarfs: write an image of DIR to out, one item per variable
 * file, named as the file, in sorted name order. */
int es_efivars_dump(const char *dir, const struct es_revpolicy *pol, struct es_out *out,
		    uint64_t *rev_out);

/* envapply, --recover and --rollback on a directory target; each returns an
 * exit status (enum es_exit) with a message recorded on trouble. */
int es_efivars_apply(const struct es_apply_opts *o);
int es_efivars_recover(const struct es_apply_opts *o);
int es_efivars_rollback(const struct es_apply_opts *o);

#endif
