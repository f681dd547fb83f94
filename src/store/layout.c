/* The line layout of a FASTA file (doc/format.md §4.5): runs of records wrapped alike,
 * encoded while the parser streams them, the most common shape made the default, and the
 * records that follow no shape listed with their own lines. */
#define _GNU_SOURCE
#include "layout_internal.h"
#include "talaria/error.h"

#include <stdlib.h>
#include <string.h>

enum { SHAPE_ANY, SHAPE_SINGLE, SHAPE_WRAP, SHAPE_EXPLICIT };

/* A run of records of one shape while encoding; explicit records are runs of one. */
typedef struct {
    uint64_t first, count;
    uint32_t flags;
    int mode;            /* SHAPE_ANY, _SINGLE (one line each, open width), _WRAP, _EXPLICIT */
    uint64_t width;      /* SHAPE_WRAP: the width; SHAPE_EXPLICIT: offset of its line list */
    uint64_t max_single; /* the longest one-line sequence in the run */
} lrun_t;

struct tal_layout_enc {
    lrun_t *runs;
    size_t n_runs, runs_cap;
    unsigned char *lines; /* the line lists of explicit records */
    size_t lines_len, lines_cap;
    char *pre;
    size_t pre_len;
    tal_fasta_line_run_t *scratch;
    size_t scratch_cap;
    uint64_t records;
    uint32_t end;
    tal_budget_t *budget;
    uint64_t held;
    int gave_up, last_open; /* last_open: the last run may take more records */
};

int tal_layout_enc_new(tal_layout_enc_t **out, tal_budget_t *budget)
{
    tal_layout_enc_t *e = calloc(1, sizeof *e);
    *out = e;
    if (!e) return TAL_ENOMEM;
    e->budget = budget;
    return 0;
}

/* Grows *buf to hold need elements of size bytes, within the budget. */
static int enc_grow(tal_layout_enc_t *e, void **buf, size_t *cap, size_t need, size_t size)
{
    size_t n = *cap ? *cap : 64;
    void *p;
    if (need <= *cap) return 0;
    while (n < need) n *= 2;
    if (tal_budget_reserve(e->budget, TAL_MEM_RECORDS, (uint64_t)(n - *cap) * size) < 0) {
        e->gave_up = 1;
        return 1;
    }
    if (!(p = realloc(*buf, n * size))) {
        tal_budget_release(e->budget, TAL_MEM_RECORDS, (uint64_t)(n - *cap) * size);
        return TAL_ENOMEM;
    }
    e->held += (uint64_t)(n - *cap) * size;
    *buf = p;
    *cap = n;
    return 0;
}

int tal_layout_enc_preamble(tal_layout_enc_t *e, const char *bytes, size_t len)
{
    if (!len) return 0;
    if (!(e->pre = malloc(len))) return TAL_ENOMEM;
    memcpy(e->pre, bytes, len);
    e->pre_len = len;
    return 0;
}

static int put_varint(tal_layout_enc_t *e, uint64_t v)
{
    int rc;
    do {
        if ((rc = enc_grow(e, (void **)&e->lines, &e->lines_cap, e->lines_len + 1, 1)) != 0)
            return rc;
        e->lines[e->lines_len++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return 0;
}

/* The shape of a record's lines: its flags (line ending, blank lines after it) and its
 * wrapping (*width: the line length of SHAPE_WRAP, the one line's of SHAPE_SINGLE). */
static int shape_of(const tal_fasta_line_run_t *r, size_t n, int cr, uint32_t *flags,
                    uint64_t *width)
{
    uint64_t blanks = 0;
    size_t m = n;
    for (size_t j = 0; j < n; j++)
        if ((int)(r[j].len_cr & 1) != cr) return SHAPE_EXPLICIT;
    while (m > 0 && (r[m - 1].len_cr >> 1) == 0) blanks += r[--m].repeat;
    if (blanks > 255) return SHAPE_EXPLICIT;
    *flags = (cr ? TAL_LAYOUT_CRLF : 0) | (uint32_t)blanks << 8;
    *width = m ? r[0].len_cr >> 1 : 0;
    if (m == 0) return SHAPE_ANY;
    if (m == 1) return r[0].repeat == 1 ? SHAPE_SINGLE : SHAPE_WRAP;
    if (m == 2 && r[1].repeat == 1 && (r[1].len_cr >> 1) < *width) return SHAPE_WRAP;
    return SHAPE_EXPLICIT;
}

/* 1 if the last run takes a record of this shape (and is updated for it). */
static int run_takes(lrun_t *run, int shape, uint32_t flags, uint64_t width)
{
    if (run->flags != flags || run->mode == SHAPE_EXPLICIT) return 0;
    if (shape == SHAPE_ANY) return 1;
    if (shape == SHAPE_SINGLE) {
        if (run->mode == SHAPE_WRAP) return width <= run->width;
        run->mode = SHAPE_SINGLE;
        if (width > run->max_single) run->max_single = width;
        return 1;
    }
    if (run->mode == SHAPE_WRAP) return width == run->width;
    if (run->mode == SHAPE_SINGLE && width < run->max_single) return 0;
    run->mode = SHAPE_WRAP;
    run->width = width;
    return 1;
}

int tal_layout_enc_add(tal_layout_enc_t *e, const tal_fasta_lines_t *fl)
{
    tal_fasta_line_run_t *r;
    size_t n = fl->run_count;
    int cr = fl->header_cr, shape, rc;
    uint32_t flags = 0;
    uint64_t width = 0, id = e->records++;
    lrun_t *run;
    if (e->gave_up) return 0;
    if ((rc = enc_grow(e, (void **)&e->scratch, &e->scratch_cap, n + 1, sizeof *r)) != 0)
        return rc < 0 ? rc : 0;
    r = e->scratch;
    if (n) memcpy(r, fl->runs, n * sizeof *r);
    if (fl->no_lf) {
        /* the file ends in this record's last line: without '\n' after its '\r', or
         * without either; then the line is given the record's ending, cut at the end */
        int last_cr = n ? (int)(r[n - 1].len_cr & 1) : cr;
        e->end = last_cr ? TAL_LAYOUT_END_NO_LF : TAL_LAYOUT_END_NO_EOL;
        if (!last_cr && n && r[n - 1].repeat == 1) r[n - 1].len_cr |= (uint64_t)cr;
    }
    shape = shape_of(r, n, cr, &flags, &width);
    run = e->n_runs ? &e->runs[e->n_runs - 1] : NULL;
    if (shape != SHAPE_EXPLICIT && run && e->last_open && run_takes(run, shape, flags, width)) {
        run->count++;
        return 0;
    }
    if ((rc = enc_grow(e, (void **)&e->runs, &e->runs_cap, e->n_runs + 1, sizeof *run)) != 0)
        return rc < 0 ? rc : 0;
    run = &e->runs[e->n_runs++];
    memset(run, 0, sizeof *run);
    run->first = id;
    run->count = 1;
    run->mode = shape;
    e->last_open = shape != SHAPE_EXPLICIT;
    if (shape == SHAPE_SINGLE) run->max_single = width;
    if (shape == SHAPE_WRAP) run->width = width;
    if (shape != SHAPE_EXPLICIT) {
        run->flags = flags;
        return 0;
    }
    /* its lines, listed: the number of runs of equal lines, then each run's
     * (length << 1 | CR) and repeat */
    run->flags = TAL_LAYOUT_EXPLICIT | (cr ? TAL_LAYOUT_CRLF : 0);
    run->width = e->lines_len;
    if ((rc = put_varint(e, n)) != 0) return rc < 0 ? rc : 0;
    for (size_t j = 0; j < n; j++)
        if ((rc = put_varint(e, r[j].len_cr)) != 0 || (rc = put_varint(e, r[j].repeat)) != 0)
            return rc < 0 ? rc : 0;
    return 0;
}

static uint64_t run_width(const lrun_t *run) { return run->mode == SHAPE_WRAP ? run->width : 0; }

/* 1 if the records of run follow the default shape (width, flags). */
static int is_default(const lrun_t *run, uint64_t width, uint32_t flags)
{
    if (run->mode == SHAPE_EXPLICIT || run->flags != flags) return 0;
    if (run->mode == SHAPE_ANY) return 1;
    if (run->mode == SHAPE_SINGLE) return width == 0 || run->max_single <= width;
    return run->width == width;
}

static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

int tal_layout_enc_finish(tal_layout_enc_t *e, unsigned char **data, size_t *size)
{
    /* the default: the shape that most records have, among the first 64 distinct ones */
    struct {
        uint64_t width, records;
        uint32_t flags;
    } shapes[64];
    size_t n_shapes = 0, best = 0, entries = 0, pre_pad, total;
    unsigned char *p, *at;
    *data = NULL;
    *size = 0;
    if (e->gave_up) return 0;
    for (size_t k = 0; k < e->n_runs; k++) {
        const lrun_t *run = &e->runs[k];
        size_t j;
        if (run->mode == SHAPE_EXPLICIT) continue;
        for (j = 0; j < n_shapes; j++)
            if (shapes[j].width == run_width(run) && shapes[j].flags == run->flags) break;
        if (j == n_shapes) {
            if (n_shapes == 64) continue;
            shapes[n_shapes].width = run_width(run);
            shapes[n_shapes].flags = run->flags;
            shapes[n_shapes++].records = 0;
        }
        shapes[j].records += run->count;
        if (shapes[j].records > shapes[best].records) best = j;
    }
    if (n_shapes == 0) {
        shapes[0].width = 0;
        shapes[0].flags = 0;
    }
    for (size_t k = 0; k < e->n_runs; k++)
        entries += !is_default(&e->runs[k], shapes[best].width, shapes[best].flags);
    pre_pad = (e->pre_len + 7) & ~(size_t)7;
    total = TAL_LAYOUT_HEAD + pre_pad + entries * TAL_LAYOUT_ENTRY + e->lines_len;
    if (!(p = calloc(1, total))) return TAL_ENOMEM;
    put64(p, e->records);
    put64(p + 8, shapes[best].width);
    put32(p + 16, shapes[best].flags);
    put32(p + 20, e->end);
    put64(p + 24, e->pre_len);
    put64(p + 32, entries);
    put64(p + 40, e->lines_len);
    if (e->pre_len) memcpy(p + TAL_LAYOUT_HEAD, e->pre, e->pre_len);
    at = p + TAL_LAYOUT_HEAD + pre_pad;
    for (size_t k = 0; k < e->n_runs; k++) {
        const lrun_t *run = &e->runs[k];
        if (is_default(run, shapes[best].width, shapes[best].flags)) continue;
        put64(at, run->first);
        put32(at + 8, (uint32_t)run->count);
        put32(at + 12, run->flags);
        put64(at + 16, run_width(run) | (run->mode == SHAPE_EXPLICIT ? run->width : 0));
        at += TAL_LAYOUT_ENTRY;
    }
    if (e->lines_len) memcpy(at, e->lines, e->lines_len);
    *data = p;
    *size = total;
    return 0;
}

int tal_layout_enc_gave_up(const tal_layout_enc_t *e) { return e->gave_up; }

void tal_layout_enc_free(tal_layout_enc_t *e)
{
    if (!e) return;
    tal_budget_release(e->budget, TAL_MEM_RECORDS, e->held);
    free(e->runs);
    free(e->lines);
    free(e->pre);
    free(e->scratch);
    free(e);
}

/* ---- reading ---- */

static uint64_t get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

const char *tal_layout_open(tal_layout_t *l, const void *data, size_t size, uint64_t records)
{
    const unsigned char *p = data;
    uint64_t pre_pad, rest;
    memset(l, 0, sizeof *l);
    if (size < TAL_LAYOUT_HEAD) return "it is too short";
    l->data = p;
    l->size = size;
    l->records = get64(p);
    l->width = get64(p + 8);
    l->flags = get32(p + 16);
    l->end = get32(p + 20);
    l->preamble_bytes = get64(p + 24);
    l->entry_count = get64(p + 32);
    l->lines_bytes = get64(p + 40);
    if (l->records != records) return "its record count is not the store's";
    if (l->end > TAL_LAYOUT_END_NO_LF || (l->flags & ~TAL_LAYOUT_FLAG_MASK) ||
        (l->flags & TAL_LAYOUT_EXPLICIT))
        return "its default has unknown flags";
    rest = size - TAL_LAYOUT_HEAD;
    if (l->preamble_bytes > rest) return "its parts do not tile it";
    pre_pad = (l->preamble_bytes + 7) & ~(uint64_t)7;
    if (pre_pad > rest || l->entry_count > (rest - pre_pad) / TAL_LAYOUT_ENTRY ||
        l->lines_bytes != rest - pre_pad - l->entry_count * TAL_LAYOUT_ENTRY)
        return "its parts do not tile it";
    l->preamble = p + TAL_LAYOUT_HEAD;
    l->entries = l->preamble + pre_pad;
    l->lines = l->entries + l->entry_count * TAL_LAYOUT_ENTRY;
    return NULL;
}

static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        *v |= (uint64_t)(**p & 0x7f) << shift;
        if (!(*(*p)++ & 0x80)) return 0;
    }
    return -1;
}

typedef struct {
    FILE *out;
    int pending; /* the ending still owed to the last line: 0 none, 1 "\n", 2 "\r\n" */
} emitter_t;

static void emit(emitter_t *em, const char *p, size_t n, int cr)
{
    if (em->pending) fputs(em->pending == 2 ? "\r\n" : "\n", em->out);
    fwrite(p, 1, n, em->out);
    em->pending = cr ? 2 : 1;
}

/* Walks the line list at off: with out NULL, checks that it decodes and adds up to
 * seq_len; with out, writes the lines (the caller checked them), *pending carrying the
 * ending owed to the line before. */
static int walk_list(const tal_layout_t *l, uint64_t off, const char *seq, uint64_t seq_len,
                     FILE *out, int *pending)
{
    const unsigned char *p = l->lines + off, *end = l->lines + l->lines_bytes;
    uint64_t runs, at = 0;
    emitter_t em = {out, pending ? *pending : 0};
    if (off >= l->lines_bytes || get_varint(&p, end, &runs) < 0) return -1;
    for (uint64_t j = 0; j < runs; j++) {
        uint64_t len_cr, repeat, len;
        if (get_varint(&p, end, &len_cr) < 0 || get_varint(&p, end, &repeat) < 0 || !repeat)
            return -1;
        len = len_cr >> 1;
        if (len && repeat > (seq_len - at) / len) return -1;
        if (out)
            for (uint64_t k = 0; k < repeat; k++)
                emit(&em, seq + at + k * len, (size_t)len, len_cr & 1);
        if (!len && repeat > (1ull << 32)) return -1; /* a damaged count: not endless lines */
        at += len * repeat;
    }
    if (at != seq_len) return -1;
    if (pending) *pending = em.pending;
    return 0;
}

/* The entry holding record i (NULL: the record has the default shape). */
static const unsigned char *entry_of(const tal_layout_t *l, uint64_t i)
{
    uint64_t lo = 0, hi = l->entry_count;
    while (lo < hi) { /* the first entry starting after i */
        uint64_t mid = lo + (hi - lo) / 2;
        if (get64(l->entries + mid * TAL_LAYOUT_ENTRY) <= i)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return NULL;
    {
        const unsigned char *e = l->entries + (lo - 1) * TAL_LAYOUT_ENTRY;
        uint64_t first = get64(e);
        return i - first < get32(e + 8) ? e : NULL;
    }
}

const char *tal_layout_check(const tal_layout_t *l, uint64_t (*length)(void *ctx, uint64_t i),
                             void *ctx)
{
    uint64_t next = 0;
    for (uint64_t k = 0; k < l->entry_count; k++) {
        const unsigned char *e = l->entries + k * TAL_LAYOUT_ENTRY;
        uint64_t first = get64(e);
        uint32_t count = get32(e + 8), flags = get32(e + 12);
        if (first < next || count == 0 || first >= l->records || count > l->records - first)
            return "its entries are out of order or outside the records";
        if (flags & ~TAL_LAYOUT_FLAG_MASK) return "an entry has unknown flags";
        if (flags & TAL_LAYOUT_EXPLICIT) {
            if (count != 1 || TAL_LAYOUT_BLANKS(flags))
                return "a listed record's entry is malformed";
            if (walk_list(l, get64(e + 16), NULL, length(ctx, first), NULL, NULL) < 0)
                return "a record's listed lines do not add up to its length";
        }
        next = first + count;
    }
    return NULL;
}

int tal_layout_write(const tal_layout_t *l, uint64_t i, const char *header, size_t header_len,
                     const char *seq, size_t seq_len, int whole, FILE *out)
{
    const unsigned char *e = entry_of(l, i);
    uint32_t flags = e ? get32(e + 12) : l->flags;
    uint64_t width = e ? get64(e + 16) : l->width;
    emitter_t em = {out, 0};
    int cr = (flags & TAL_LAYOUT_CRLF) != 0;
    if ((flags & TAL_LAYOUT_EXPLICIT) && walk_list(l, width, NULL, seq_len, NULL, NULL) < 0)
        return TAL_EINPUT;
    if (whole && i == 0 && l->preamble_bytes) fwrite(l->preamble, 1, l->preamble_bytes, out);
    fputc('>', out);
    emit(&em, header, header_len, cr);
    if (flags & TAL_LAYOUT_EXPLICIT) {
        walk_list(l, width, seq, seq_len, out, &em.pending);
    } else {
        if (seq_len && width == 0) emit(&em, seq, seq_len, cr);
        for (size_t at = 0; width && at < seq_len; at += width)
            emit(&em, seq + at, seq_len - at < width ? seq_len - at : (size_t)width, cr);
        for (uint32_t b = 0; b < TAL_LAYOUT_BLANKS(flags); b++) emit(&em, "", 0, cr);
    }
    if (whole && i + 1 == l->records && l->end != TAL_LAYOUT_END_COMPLETE) {
        if (l->end == TAL_LAYOUT_END_NO_LF && em.pending == 2) fputc('\r', out);
    } else if (em.pending) {
        fputs(em.pending == 2 ? "\r\n" : "\n", out);
    }
    return ferror(out) ? TAL_EIO : 0;
}
