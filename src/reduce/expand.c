/* Hits on the references of a reduction turned into hits on their members too (talaria
 * expand, validate --reduced-results), and the one reader of tabular hit files. */
#define _GNU_SOURCE
#include "store/format_internal.h"
#include "talaria/error.h"
#include "talaria/expand.h"
#include "talaria/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

enum { SUBJECT_UNKNOWN, SUBJECT_REFERENCE, SUBJECT_MEMBER };

struct tal_expander {
    tal_dstore_t *dstore;
    int strict;
    tal_hit_fn emit;
    void *arg;
    uint64_t unknown_lines;
    char *first_unknown;
    uint64_t first_unknown_line;
    /* the lookup of the previous line's subject: hits come grouped by query, and a
     * query's hits on one subject are often adjacent */
    char *last;
    size_t last_len, last_cap;
    int last_kind;  /* SUBJECT_* */
    int last_alias; /* the subject was the reference's "db|ACC|NAME" ACC */
    const uint64_t *members;
    uint64_t member_count;
};

/* ---- reading hits ---- */

/* 1 and the subject's column for a hit, 0 for a comment ('#') or blank line, -1 for fewer
 * than two fields. */
static int hit_fields(const char *line, size_t len, size_t *subject_at, size_t *subject_end)
{
    const char *tab, *next;
    size_t i = 0, end;
    if (len && line[0] == '#') return 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    if (i == len) return 0;
    if (!(tab = memchr(line, '\t', len))) return -1;
    *subject_at = (size_t)(tab - line) + 1;
    next = memchr(line + *subject_at, '\t', len - *subject_at);
    end = next ? (size_t)(next - line) : len;
    while (!next && end > *subject_at && line[end - 1] == '\r') end--;
    if (end == *subject_at) return -1;
    *subject_end = end;
    return 1;
}

int tal_hit_parse(const char *line, size_t len, const char *name, uint64_t line_no, tal_hit_t *hit)
{
    size_t subject_at = 0, subject_end = 0;
    int kind;
    if (len > 0 && line[len - 1] == '\n') len--;
    memset(hit, 0, sizeof *hit);
    hit->line = line;
    hit->len = len;
    hit->line_no = line_no;
    if (memchr(line, '\0', len)) {
        /* a compressed or binary file: its bytes would pass through as "subjects" */
        tal_log_error("%s: line %llu: binary byte 0x00; is this a tabular (-outfmt 6) hits file?",
                      name, (unsigned long long)line_no);
        return TAL_EINPUT;
    }
    kind = hit_fields(line, len, &subject_at, &subject_end);
    if (kind < 0) {
        tal_log_error("%s: line %llu: not a tabular hit (needs a query and a subject, "
                      "separated by a tab)",
                      name, (unsigned long long)line_no);
        return TAL_EINPUT;
    }
    if (kind == 0) {
        hit->subject_at = hit->rest_at = len;
        return 0;
    }
    hit->subject_at = subject_at;
    hit->rest_at = subject_end;
    hit->subject = line + subject_at;
    hit->subject_len = subject_end - subject_at;
    return 0;
}

int tal_hits_read(FILE *in, const char *name, tal_hit_fn fn, void *arg)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t line_no = 0;
    int rc = 0;
    while ((n = getline(&line, &cap, in)) >= 0) {
        tal_hit_t hit;
        if ((rc = tal_hit_parse(line, (size_t)n, name, ++line_no, &hit)) < 0) break;
        if ((rc = fn(arg, &hit)) < 0) break;
    }
    if (!rc && (ferror(in) || !feof(in))) { /* not the end: a read or an allocation failed */
        tal_log_error("cannot read %s: %s", name, strerror(errno));
        rc = TAL_EIO;
    }
    free(line);
    return rc;
}

/* ---- expanding ---- */

int tal_expander_create(tal_expander_t **out, tal_dstore_t *dstore, int strict, tal_hit_fn emit,
                        void *arg)
{
    tal_expander_t *x = calloc(1, sizeof *x);
    *out = NULL;
    if (!x) return TAL_ENOMEM;
    x->dstore = dstore;
    x->strict = strict;
    x->emit = emit;
    x->arg = arg;
    *out = x;
    return 0;
}

void tal_expander_free(tal_expander_t *x)
{
    if (!x) return;
    free(x->first_unknown);
    free(x->last);
    free(x);
}

/* Classifies a subject, reusing the previous line's answer when it is the same. */
static int look_up(tal_expander_t *x, const char *subject, size_t len)
{
    uint64_t i;
    tal_drec_t rec;
    tal_keys_t keys;
    int rc;
    if (x->last && x->last_len == len && !memcmp(x->last, subject, len)) return 0;
    if (len + 1 > x->last_cap) {
        char *p = realloc(x->last, len + 1);
        if (!p) return TAL_ENOMEM;
        x->last = p;
        x->last_cap = len + 1;
    }
    x->last_len = SIZE_MAX; /* no valid cache until the lookup is complete */
    x->last_kind = SUBJECT_UNKNOWN;
    x->member_count = 0;
    if (tal_dstore_find(x->dstore, subject, len, &i) == 0) {
        if ((rc = tal_dstore_record(x->dstore, i, &rec)) < 0) return rc;
        if (rec.flags & TAL_DREC_REFERENCE) {
            if ((rc = tal_dstore_members(x->dstore, rec.ref, &x->members, &x->member_count)) < 0)
                return rc;
            tal_header_keys(rec.header, rec.header_len, &keys);
            x->last_alias = keys.primary_len != len || memcmp(keys.primary, subject, len) != 0;
            x->last_kind = SUBJECT_REFERENCE;
        } else {
            x->last_kind = SUBJECT_MEMBER;
        }
    }
    memcpy(x->last, subject, len);
    x->last_len = len;
    return 0;
}

static int note_unknown(tal_expander_t *x, const char *name, uint64_t line_no, const char *subject,
                        size_t len)
{
    if (x->strict) {
        tal_log_error("%s: line %llu: subject '%.*s' is not in %s", name,
                      (unsigned long long)line_no, (int)(len > 200 ? 200 : len), subject,
                      tal_dstore_path(x->dstore));
        return TAL_ENOTFOUND;
    }
    if (!x->unknown_lines++) {
        if (!(x->first_unknown = strndup(subject, len))) return TAL_ENOMEM;
        x->first_unknown_line = line_no;
    }
    return 0;
}

/* The members of the reference the hit is on; each named the way the hit named the
 * reference (first word, or the ACC of "db|ACC|NAME" when the member has one). */
static int emit_members(tal_expander_t *x, tal_hit_t *hit)
{
    for (uint64_t k = 0; k < x->member_count; k++) {
        tal_drec_t rec;
        tal_keys_t keys;
        int rc;
        if ((rc = tal_dstore_record(x->dstore, x->members[k], &rec)) < 0) return rc;
        tal_header_keys(rec.header, rec.header_len, &keys);
        if (x->last_alias && keys.alias) {
            hit->subject = keys.alias;
            hit->subject_len = keys.alias_len;
        } else {
            hit->subject = keys.primary;
            hit->subject_len = keys.primary_len;
        }
        if ((rc = x->emit(x->arg, hit)) < 0) return rc;
    }
    return 0;
}

/* hit is the caller's copy: the members' hits reuse it with their own subject. */
static int expand(tal_expander_t *x, tal_hit_t *hit, const char *name)
{
    int rc;
    if (!hit->subject) return x->emit(x->arg, hit);
    if ((rc = look_up(x, hit->subject, hit->subject_len)) < 0) return rc;
    if (x->last_kind == SUBJECT_UNKNOWN &&
        (rc = note_unknown(x, name, hit->line_no, hit->subject, hit->subject_len)) < 0)
        return rc;
    if ((rc = x->emit(x->arg, hit)) < 0) return rc;
    if (x->last_kind == SUBJECT_REFERENCE) return emit_members(x, hit);
    return 0;
}

int tal_expander_feed(tal_expander_t *x, const char *line, size_t len, const char *name,
                      uint64_t line_no)
{
    tal_hit_t hit;
    int rc;
    if ((rc = tal_hit_parse(line, len, name, line_no, &hit)) < 0) return rc;
    return expand(x, &hit, name);
}

typedef struct {
    tal_expander_t *x;
    const char *name;
} feed_t;

static int feed_hit(void *arg, const tal_hit_t *hit)
{
    feed_t *f = arg;
    tal_hit_t copy = *hit;
    return expand(f->x, &copy, f->name);
}

int tal_expander_feed_file(tal_expander_t *x, FILE *in, const char *name)
{
    feed_t f = {x, name};
    return tal_hits_read(in, name, feed_hit, &f);
}

uint64_t tal_expander_unknown(const tal_expander_t *x, const char **first, uint64_t *first_line)
{
    if (first) *first = x->first_unknown;
    if (first_line) *first_line = x->first_unknown_line;
    return x->unknown_lines;
}

void tal_expander_warn(const tal_expander_t *x, const char *name)
{
    if (!x->unknown_lines) return;
    tal_log_warn("%s: %llu hit line%s name%s a subject that is not in %s (the first: '%s' on "
                 "line %llu); passed through unchanged",
                 name, (unsigned long long)x->unknown_lines, x->unknown_lines == 1 ? "" : "s",
                 x->unknown_lines == 1 ? "s" : "", tal_dstore_path(x->dstore), x->first_unknown,
                 (unsigned long long)x->first_unknown_line);
}
