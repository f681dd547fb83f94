/* Hits on the references of a reduction turned into hits on their members too (talaria
 * expand, validate --reduced-results), and the one reader of tabular hit files. */
#define _GNU_SOURCE
#include <ctype.h>
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
    tal_drec_t ref; /* the reference last looked up */
    /* a member's hit when the line has title columns: rewritten here */
    char *out;
    size_t out_cap;
};

/* The most title columns (stitle, salltitles, theader) of a hit line that are rewritten */
#define MAX_TITLES 8

/* A title column of a hit on a reference: what it shows of the reference's header. */
typedef struct {
    size_t at, end;
    int whole; /* 1: the whole header; 0: the description after the first word */
} title_t;

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
    free(x->out);
    free(x);
}

/* Whether s ends in a kraken tag "|kraken:taxid|N"; *stem_len is what precedes it. */
static int kraken_stem(const char *s, size_t len, size_t *stem_len)
{
    static const char tag[] = "|kraken:taxid|";
    size_t d = len, tl = sizeof tag - 1;
    while (d > 0 && isdigit((unsigned char)s[d - 1])) d--;
    if (d == len || d < tl + 1 || memcmp(s + d - tl, tag, tl)) return 0;
    *stem_len = d - tl;
    return 1;
}

/* The accession of a "db|ACC|..." subject as aligners cut it (MMseqs2, BLAST): the third
 * field of gnl| and pat|, the fourth of gi|, else the second; 0 if s has no '|'. */
static int db_accession(const char *s, size_t len, const char **acc, size_t *acc_len)
{
    int field = 1;
    const char *p = s, *end = s + len, *bar;
    if (!memchr(s, '|', len)) return 0;
    if ((len > 4 && !memcmp(s, "gnl|", 4)) || (len > 4 && !memcmp(s, "pat|", 4))) field = 2;
    if (len > 3 && !memcmp(s, "gi|", 3)) field = 3;
    for (int f = 0; f < field; f++) {
        if (!(bar = memchr(p, '|', (size_t)(end - p)))) return 0;
        p = bar + 1;
    }
    bar = memchr(p, '|', (size_t)(end - p));
    *acc = p;
    *acc_len = (size_t)((bar ? bar : end) - p);
    return *acc_len > 0;
}

/* s without a version (".N" at its end), or 0 if it has none. */
static int unversioned(const char *s, size_t len, size_t *stem_len)
{
    size_t d = len;
    while (d > 0 && isdigit((unsigned char)s[d - 1])) d--;
    if (d == len || d < 2 || s[d - 1] != '.') return 0;
    *stem_len = d - 1;
    return 1;
}

/* The record a subject names, as the aligners print the headers talaria writes: as it is
 * (first word, or ACC of "db|ACC|NAME"), without a kraken tag, as the accession field of
 * a "db|ACC|..." id, and each of those without a version. *key is the form found. */
static int find_subject(const tal_dstore_t *d, const char *s, size_t len, uint64_t *i,
                        const char **key, size_t *key_len)
{
    const char *forms[4];
    size_t lens[4], n = 0, stem;
    forms[n] = s;
    lens[n++] = len;
    if (kraken_stem(s, len, &stem)) {
        forms[n] = s;
        lens[n++] = stem;
    }
    if (db_accession(forms[n - 1], lens[n - 1], &forms[n], &lens[n])) n++;
    for (size_t f = 0; f < n; f++) {
        if (tal_dstore_find(d, forms[f], lens[f], i) == 0) {
            *key = forms[f];
            *key_len = lens[f];
            return 0;
        }
    }
    for (size_t f = 0; f < n; f++) {
        if (unversioned(forms[f], lens[f], &stem) && tal_dstore_find(d, forms[f], stem, i) == 0) {
            *key = forms[f];
            *key_len = stem;
            return 0;
        }
    }
    return TAL_ENOTFOUND;
}

int tal_subject_find(const tal_dstore_t *d, const char *subject, size_t len, uint64_t *record)
{
    const char *key;
    size_t key_len;
    return find_subject(d, subject, len, record, &key, &key_len);
}

/* Classifies a subject, reusing the previous line's answer when it is the same. */
static int look_up(tal_expander_t *x, const char *subject, size_t len)
{
    uint64_t i;
    tal_drec_t rec;
    tal_keys_t keys;
    const char *key;
    size_t key_len;
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
    if (find_subject(x->dstore, subject, len, &i, &key, &key_len) == 0) {
        if ((rc = tal_dstore_record(x->dstore, i, &rec)) < 0) return rc;
        if (rec.flags & TAL_DREC_REFERENCE) {
            if ((rc = tal_dstore_members(x->dstore, rec.ref, &x->members, &x->member_count)) < 0)
                return rc;
            tal_header_keys(rec.header, rec.header_len, &keys);
            x->last_alias = keys.primary_len != key_len || memcmp(keys.primary, key, key_len) != 0;
            x->last_kind = SUBJECT_REFERENCE;
            x->ref = rec;
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

/* The header's description: what follows its first word and the blanks after it. */
static void description(const char *h, size_t len, const char **d, size_t *d_len)
{
    size_t i = 0;
    while (i < len && h[i] != ' ' && h[i] != '\t') i++;
    while (i < len && (h[i] == ' ' || h[i] == '\t')) i++;
    *d = h + i;
    *d_len = len - i;
}

/* Whether t is the reference's header with a kraken tag after its first word, as the
 * reduced FASTA of -a kraken has it. */
static int tagged_header(const char *t, size_t len, const char *h, size_t h_len)
{
    size_t word = 0, stem;
    while (word < h_len && h[word] != ' ' && h[word] != '\t') word++;
    if (len < h_len || memcmp(t, h, word)) return 0;
    /* t = h[0, word) "|kraken:taxid|N" h[word, h_len) */
    if (memcmp(t + len - (h_len - word), h + word, h_len - word)) return 0;
    return kraken_stem(t, len - (h_len - word), &stem) && stem == word;
}

/* Whether a description could be read as a number (then it is not told from a numeric
 * column and is never taken for a title). */
static int numeric(const char *d, size_t len)
{
    char buf[64], *end;
    if (len == 0) return 1;
    if (len >= sizeof buf) return 0;
    memcpy(buf, d, len);
    buf[len] = '\0';
    (void)strtod(buf, &end);
    return *end == '\0';
}

/* The columns after the subject that show the reference's title (BLAST and DIAMOND
 * stitle and salltitles, MMseqs2 theader): its whole header (as in the delta store, or
 * tagged by -a kraken) or its description. Found by content, so any column order works. */
static int find_titles(const tal_expander_t *x, const tal_hit_t *hit, title_t *titles)
{
    const char *h = x->ref.header, *d;
    size_t h_len = x->ref.header_len, d_len, at = hit->rest_at;
    int n = 0, desc_ok;
    description(h, h_len, &d, &d_len);
    desc_ok = !numeric(d, d_len);
    while (at < hit->len && n < MAX_TITLES) {
        const char *col = hit->line + at + 1, *tab;
        size_t col_len;
        tab = memchr(col, '\t', hit->len - at - 1);
        col_len = tab ? (size_t)(tab - col) : hit->len - at - 1;
        if (!tab)
            while (col_len && col[col_len - 1] == '\r') col_len--;
        if ((col_len == h_len && !memcmp(col, h, h_len)) || tagged_header(col, col_len, h, h_len))
            titles[n++] =
                (title_t){(size_t)(col - hit->line), (size_t)(col - hit->line) + col_len, 1};
        else if (desc_ok && col_len == d_len && !memcmp(col, d, d_len))
            titles[n++] =
                (title_t){(size_t)(col - hit->line), (size_t)(col - hit->line) + col_len, 0};
        at = (size_t)(col - hit->line) + col_len;
        if (!tab) break;
    }
    return n;
}

static int out_put(tal_expander_t *x, size_t *used, const char *p, size_t len)
{
    if (*used + len > x->out_cap) {
        size_t cap = x->out_cap ? x->out_cap : 1024;
        char *q;
        while (cap < *used + len) cap *= 2;
        if (!(q = realloc(x->out, cap))) return TAL_ENOMEM;
        x->out = q;
        x->out_cap = cap;
    }
    memcpy(x->out + *used, p, len);
    *used += len;
    return 0;
}

/* A member's hit with its own name and title: the line rebuilt in x->out. */
static int member_line(tal_expander_t *x, const tal_hit_t *hit, const tal_drec_t *rec,
                       const char *name, size_t name_len, const title_t *titles, int n_titles,
                       tal_hit_t *out)
{
    size_t used = 0, at = hit->rest_at;
    int rc;
    if ((rc = out_put(x, &used, hit->line, hit->subject_at)) < 0) return rc;
    if ((rc = out_put(x, &used, name, name_len)) < 0) return rc;
    for (int t = 0; t < n_titles; t++) {
        const char *title = rec->header;
        size_t title_len = rec->header_len;
        if (!titles[t].whole) description(rec->header, rec->header_len, &title, &title_len);
        if ((rc = out_put(x, &used, hit->line + at, titles[t].at - at)) < 0) return rc;
        if ((rc = out_put(x, &used, title, title_len)) < 0) return rc;
        at = titles[t].end;
    }
    if ((rc = out_put(x, &used, hit->line + at, hit->len - at)) < 0) return rc;
    *out = *hit;
    out->line = x->out;
    out->len = used;
    out->subject = x->out + hit->subject_at;
    out->subject_len = name_len;
    out->rest_at = hit->subject_at + name_len;
    return 0;
}

/* The members of the reference the hit is on; each named the way the hit named the
 * reference (first word, or the ACC of "db|ACC|NAME" when the member has one), with its
 * own title in the columns that showed the reference's. */
static int emit_members(tal_expander_t *x, tal_hit_t *hit)
{
    title_t titles[MAX_TITLES];
    int n_titles = find_titles(x, hit, titles);
    for (uint64_t k = 0; k < x->member_count; k++) {
        tal_drec_t rec;
        tal_keys_t keys;
        tal_hit_t line;
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
        if (!n_titles) {
            rc = x->emit(x->arg, hit);
        } else if ((rc = member_line(x, hit, &rec, hit->subject, hit->subject_len, titles, n_titles,
                                     &line)) == 0) {
            rc = x->emit(x->arg, &line);
        }
        if (rc < 0) return rc;
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
