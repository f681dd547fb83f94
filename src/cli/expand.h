/* Turning search hits on references into hits on their members, shared by talaria
 * expand and talaria validate --reduced-results (implemented in cmd_expand.c). */
#ifndef TAL_CLI_EXPAND_H
#define TAL_CLI_EXPAND_H

#include "reduce/dstore_internal.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One hit to write: line[0, subject_at) + subject + line[rest_at, len) and a newline.
 * subject is NULL for a comment or blank line, which is line[0, len) as it came. */
typedef struct {
    const char *line;
    size_t len; /* without the '\n' */
    size_t subject_at, rest_at;
    const char *subject;
    size_t subject_len;
} cli_hit_t;

typedef int (*cli_hit_fn)(void *arg, const cli_hit_t *hit);

typedef struct {
    tal_dstore_t *dstore;
    int strict; /* a subject not in the delta store is an error, not a warning */
    uint64_t unknown_lines;
    char *first_unknown;
    uint64_t first_unknown_line;
    /* the lookup of the previous line's subject: hits come grouped by query, and a
     * query's hits on one subject are often adjacent */
    char *last;
    size_t last_len, last_cap;
    int last_kind; /* SUBJECT_* in cmd_expand.c */
    int last_alias; /* the subject was the reference's "db|ACC|NAME" ACC */
    const uint64_t *members;
    uint64_t member_count;
} cli_expander_t;

/* A tabular (BLAST -outfmt 6) line without its '\n': 1 and the subject's column for a
 * hit, 0 for a comment ('#') or blank line, -1 for fewer than two fields. */
int cli_hit_fields(const char *line, size_t len, size_t *subject_at, size_t *subject_end);

void cli_expander_init(cli_expander_t *x, tal_dstore_t *dstore, int strict);
void cli_expander_free(cli_expander_t *x);
/* Reads in (named name in messages) to its end and calls emit for each hit as it is
 * and then once per member of its subject when that is a reference. A line with fewer
 * than two fields, or with --strict a subject not in the delta store, is TAL_EINPUT
 * naming file and line. */
int cli_expand_stream(cli_expander_t *x, FILE *in, const char *name, cli_hit_fn emit, void *arg);
/* The warning about subjects that are not in the delta store, if there were any. */
void cli_expander_warn(const cli_expander_t *x, const char *name);

#endif
