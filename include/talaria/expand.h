/* Search hits on the references of a reduction turned into hits on their members too, and
 * the reader of tabular hit files (BLAST or DIAMOND -outfmt 6) that goes with it.
 *
 * A hit line is "QUERY<TAB>SUBJECT[<TAB>...]". Expanding it passes it on unchanged and,
 * when SUBJECT is a reference of the delta store, once more per member of that reference
 * with SUBJECT replaced by the member's accession (its first header word, or the ACC of a
 * "db|ACC|NAME" header when the hit named the reference that way) and any column after it
 * that shows the reference's whole header or its description (stitle, salltitles,
 * theader) replaced by the member's. SUBJECT is found as it is, else without a trailing
 * "|kraken:taxid|N", as the ACC field of a "db|ACC|..." id, and each of those without a
 * ".N" version. Comment ('#') and blank lines pass through; so do hits on subjects the
 * store does not know, which are counted. Every hit goes to a callback: the caller
 * decides where it is written. */
#ifndef TALARIA_EXPAND_H
#define TALARIA_EXPAND_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "talaria/api.h"
#include "talaria/deltas.h"

TAL_BEGIN_DECLS

/* One hit: line[0, subject_at) + subject + line[rest_at, len), then a newline. subject is
 * NULL for a comment or blank line, which is line[0, len) as it came. The pointers are valid
 * during the callback only. */
typedef struct {
    const char *line;
    size_t len; /* without the '\n' */
    size_t subject_at, rest_at;
    const char *subject;
    size_t subject_len;
    uint64_t line_no; /* 1-based, of the input line the hit comes from */
} tal_hit_t;

/* Called once per hit; a negative return stops the reading or expansion and is returned. */
typedef int (*tal_hit_fn)(void *arg, const tal_hit_t *hit);

/* Parses one line (its '\n', if any, is left out) into hit: the subject is column 2. A line
 * with fewer than two fields, or with a NUL byte, is TAL_EINPUT, logged as "NAME: line
 * LINE_NO: not a tabular hit ..." (or "...: binary byte 0x00 ..."). */
TAL_EXPORT int tal_hit_parse(const char *line, size_t len, const char *name, uint64_t line_no,
                             tal_hit_t *hit);
/* Reads in (named name in messages) to its end, calling fn for every line parsed as
 * tal_hit_parse does. Stops at the first bad line or negative fn; a read error is TAL_EIO. */
TAL_EXPORT int tal_hits_read(FILE *in, const char *name, tal_hit_fn fn, void *arg);

typedef struct tal_expander tal_expander_t;

/* The record a hit's subject names, in any form the aligners print talaria's headers:
 * the accession (or the ACC of "db|ACC|NAME") as written, without a "|kraken:taxid|N"
 * tag, as the accession field of a "db|ACC|..." id, and each without a ".N" version.
 * What tal_expander_feed looks subjects up with. 0 and *record, or TAL_ENOTFOUND. */
TAL_EXPORT int tal_subject_find(const tal_dstore_t *d, const char *subject, size_t len,
                                uint64_t *record);

/* An expander over dstore (which must outlive it) that passes every hit to emit. With strict
 * a subject that is not in the store is an error (TAL_ENOTFOUND, logged naming file and line)
 * instead of a hit passed through and counted. */
TAL_EXPORT int tal_expander_create(tal_expander_t **out, tal_dstore_t *dstore, int strict,
                                   tal_hit_fn emit, void *arg);
/* NULL is a no-op. */
TAL_EXPORT void tal_expander_free(tal_expander_t *x);
/* Expands one line; name and line_no place it in messages. */
TAL_EXPORT int tal_expander_feed(tal_expander_t *x, const char *line, size_t len, const char *name,
                                 uint64_t line_no);
/* Expands every line of in (named name in messages) to its end: tal_hits_read's errors, the
 * callback's, or strict's. */
TAL_EXPORT int tal_expander_feed_file(tal_expander_t *x, FILE *in, const char *name);
/* The hit lines so far whose subject is not in the store; with first (may be NULL) the
 * first such subject (NUL-terminated, owned by x) and with first_line its line number. */
TAL_EXPORT uint64_t tal_expander_unknown(const tal_expander_t *x, const char **first,
                                         uint64_t *first_line);
/* Logs a warning naming the unknown subjects' count and the first, if there were any; name
 * is the input as the warning calls it. */
TAL_EXPORT void tal_expander_warn(const tal_expander_t *x, const char *name);

TAL_END_DECLS

#endif
