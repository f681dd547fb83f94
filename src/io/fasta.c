/* The FASTA parser. Works on the blocks the input stream hands out, so records and
 * lines may span blocks; residues are validated 16 bytes at a time. */
#include "talaria/fasta.h"
#include "fasta_internal.h"
#include "instream_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"

#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

struct tal_fasta_reader {
    tal_instream_t *in;
    char *path;
    const char *blk;
    size_t blk_len, pos;
    int eof;
    uint64_t line; /* line number at pos */
    uint64_t index;
    int at_line_start;
    int pending_cr; /* a '\r' ended the last block; the next byte must be '\n' */
    int started;
    int failed;
    char *hdr;
    size_t hdr_len, hdr_cap;
    char *seq;
    size_t seq_len, seq_cap;
    /* the record's line layout: header ending, runs of equal residue lines, the line
     * being read (its residues and whether a '\r' ended it) */
    int hdr_cr, hdr_lf;
    tal_fasta_line_run_t *runs;
    size_t n_runs, runs_cap;
    uint64_t cur_len;
    int cur_cr;
    char *pre; /* the bytes before the first '>' */
    size_t pre_len, pre_cap;
};

void tal_fasta_opt_init(tal_fasta_opt_t *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->read_ahead = 1;
}

/* Length of the prefix of p that is all residue characters. */
static size_t residue_prefix(const unsigned char *p, size_t n)
{
    size_t i = 0;
#ifdef __SSE2__
    const __m128i case_bit = _mm_set1_epi8(0x20), lower_a = _mm_set1_epi8('a');
    const __m128i bias = _mm_set1_epi8((char)0x80), limit = _mm_set1_epi8((char)(0x80 + 26));
    const __m128i star = _mm_set1_epi8('*'), dash = _mm_set1_epi8('-');
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(p + i));
        __m128i t = _mm_add_epi8(_mm_sub_epi8(_mm_or_si128(x, case_bit), lower_a), bias);
        __m128i ok = _mm_cmplt_epi8(t, limit);
        ok = _mm_or_si128(ok, _mm_cmpeq_epi8(x, star));
        ok = _mm_or_si128(ok, _mm_cmpeq_epi8(x, dash));
        unsigned mask = (unsigned)_mm_movemask_epi8(ok);
        if (mask != 0xFFFFu) return i + (size_t)__builtin_ctz(~mask);
    }
#endif
    for (; i < n; i++)
        if (!tal_is_residue(p[i])) return i;
    return n;
}

static int grow(char **buf, size_t *cap, size_t need)
{
    size_t n = *cap ? *cap : 4096;
    char *p;
    if (need <= *cap) return 0;
    while (n < need) n *= 2;
    p = realloc(*buf, n);
    if (!p) return TAL_ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

/* Ends the current residue line: a new run, or one more line of the last one. */
static int push_line(tal_fasta_reader_t *r)
{
    uint64_t key = r->cur_len << 1 | (uint64_t)(r->cur_cr != 0);
    r->cur_len = 0;
    r->cur_cr = 0;
    if (r->n_runs && r->runs[r->n_runs - 1].len_cr == key) {
        r->runs[r->n_runs - 1].repeat++;
        return 0;
    }
    if (r->n_runs == r->runs_cap) {
        size_t cap = r->runs_cap ? 2 * r->runs_cap : 16;
        tal_fasta_line_run_t *p = realloc(r->runs, cap * sizeof *p);
        if (!p) return TAL_ENOMEM;
        r->runs = p;
        r->runs_cap = cap;
    }
    r->runs[r->n_runs].len_cr = key;
    r->runs[r->n_runs++].repeat = 1;
    return 0;
}

static int fail(tal_fasta_reader_t *r, int err)
{
    r->failed = err;
    return err;
}

static int bad_input(tal_fasta_reader_t *r, const char *what, unsigned char c)
{
    if (c < 0x20 || c >= 0x7f)
        tal_log_error("%s: line %llu: %s binary byte 0x%02x; is this a FASTA file?", r->path,
                      (unsigned long long)r->line, what, c);
    else
        tal_log_error("%s: line %llu: %s character '%c' (0x%02x), which is not a residue", r->path,
                      (unsigned long long)r->line, what, c, c);
    return fail(r, TAL_EINPUT);
}

/* Makes sure bytes are available at pos; 1 if so, 0 at the end, <0 on error. */
static int more(tal_fasta_reader_t *r)
{
    int rc;
    if (r->pos < r->blk_len) return 1;
    if (r->eof) return 0;
    rc = tal_instream_next(r->in, &r->blk, &r->blk_len);
    r->pos = 0;
    if (rc == 0) {
        r->eof = 1;
        r->blk_len = 0;
        return 0;
    }
    if (rc < 0) {
        tal_log_error("%s: line %llu: %s", r->path, (unsigned long long)r->line,
                      tal_instream_error(r->in));
        return fail(r, rc);
    }
    return 1;
}

static int read_header(tal_fasta_reader_t *r)
{
    int rc;
    r->hdr_len = 0;
    r->hdr_lf = 0;
    for (;;) {
        const char *start, *nl;
        size_t n;
        if ((rc = more(r)) <= 0) break;
        start = r->blk + r->pos;
        nl = memchr(start, '\n', r->blk_len - r->pos);
        n = nl ? (size_t)(nl - start) : r->blk_len - r->pos;
        if ((rc = grow(&r->hdr, &r->hdr_cap, r->hdr_len + n + 1)) < 0) return fail(r, rc);
        memcpy(r->hdr + r->hdr_len, start, n);
        r->hdr_len += n;
        r->pos += n;
        if (nl) {
            r->pos++;
            r->hdr_lf = 1;
            break;
        }
    }
    if (rc < 0) return rc;
    r->hdr_cr = r->hdr_len && r->hdr[r->hdr_len - 1] == '\r';
    if (r->hdr_cr) r->hdr_len--;
    for (size_t i = 0; i < r->hdr_len; i++) {
        unsigned char c = (unsigned char)r->hdr[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return bad_input(r, "header contains", c);
    }
    if (r->hdr_len == 0) {
        tal_log_error("%s: line %llu: empty header (a '>' with no name)", r->path,
                      (unsigned long long)r->line);
        return fail(r, TAL_EINPUT);
    }
    r->line++;
    r->at_line_start = 1;
    return 0;
}

static int read_residues(tal_fasta_reader_t *r)
{
    int rc;
    r->seq_len = 0;
    r->n_runs = 0;
    r->cur_len = 0;
    r->cur_cr = 0;
    while ((rc = more(r)) > 0) {
        const unsigned char *start = (const unsigned char *)r->blk + r->pos;
        size_t avail = r->blk_len - r->pos, n, ok;
        const unsigned char *nl;
        if (r->pending_cr) {
            r->pending_cr = 0;
            if (start[0] != '\n') return bad_input(r, "sequence contains", '\r');
        }
        if (r->at_line_start && start[0] == '>') break;
        nl = memchr(start, '\n', avail);
        n = nl ? (size_t)(nl - start) : avail;
        ok = residue_prefix(start, n);
        if (ok < n) {
            /* '\r' is allowed only as the last byte before '\n' (CRLF files) */
            int crlf = start[ok] == '\r' && (ok + 1 == n) && (nl || ok + 1 == avail);
            if (!crlf) return bad_input(r, "sequence contains", start[ok]);
            if (!nl) r->pending_cr = 1; /* confirmed by the next block */
            r->cur_cr = 1;
        }
        if ((rc = grow(&r->seq, &r->seq_cap, r->seq_len + ok)) < 0) return fail(r, rc);
        if (ok) memcpy(r->seq + r->seq_len, start, ok);
        r->seq_len += ok;
        r->cur_len += ok;
        r->pos += n;
        if (nl) {
            r->pos++;
            r->line++;
            r->at_line_start = 1;
            if ((rc = push_line(r)) < 0) return fail(r, rc);
        } else {
            r->at_line_start = 0;
        }
    }
    if (rc < 0) return rc;
    /* the file ends inside a line: it is the record's last, without its '\n' */
    if (!r->at_line_start && (rc = push_line(r)) < 0) return fail(r, rc);
    return 0;
}

int tal_fasta_next(tal_fasta_reader_t *r, tal_fasta_record_t *rec)
{
    int rc;
    if (r->failed) return r->failed;
    if (!r->started) {
        r->started = 1;
        /* skip blank lines; anything else before the first '>' is an error */
        while ((rc = more(r)) > 0) {
            char c = r->blk[r->pos];
            if (c == '\n' || c == '\r' || c == ' ' || c == '\t') {
                /* kept, so that the file can be given back as it was */
                if ((rc = grow(&r->pre, &r->pre_cap, r->pre_len + 1)) < 0) return fail(r, rc);
                r->pre[r->pre_len++] = c;
                r->pos++;
                if (c == '\n') r->line++;
            } else if (c == '>') {
                break;
            } else {
                tal_log_error("%s: line %llu: text before the first '>' (not FASTA?)", r->path,
                              (unsigned long long)r->line);
                return fail(r, TAL_EINPUT);
            }
        }
        if (rc < 0) return rc;
    }
    if ((rc = more(r)) <= 0) return rc;
    /* invariant: pos is at a '>' that starts a line */
    rec->line = r->line;
    r->pos++;
    if ((rc = read_header(r)) < 0) return rc;
    if ((rc = read_residues(r)) < 0) return rc;
    rec->header = r->hdr;
    rec->header_len = r->hdr_len;
    rec->seq = r->seq ? r->seq : "";
    rec->seq_len = r->seq_len;
    rec->index = r->index++;
    return 1;
}

int tal_fasta_open(tal_fasta_reader_t **out, const char *path, const tal_fasta_opt_t *opt)
{
    tal_fasta_opt_t defaults;
    tal_fasta_reader_t *r;
    int rc;
    *out = NULL;
    if (!opt) {
        tal_fasta_opt_init(&defaults);
        opt = &defaults;
    }
    r = calloc(1, sizeof *r);
    if (!r) return TAL_ENOMEM;
    r->path = strdup(strcmp(path, "-") ? path : "<stdin>");
    if (!r->path) {
        free(r);
        return TAL_ENOMEM;
    }
    r->line = 1;
    r->at_line_start = 1;
    if ((rc = tal_instream_open(&r->in, path, opt->read_ahead)) < 0) {
        tal_fasta_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void tal_fasta_lines_(const tal_fasta_reader_t *r, tal_fasta_lines_t *lines)
{
    lines->header_cr = r->hdr_cr;
    lines->runs = r->runs;
    lines->run_count = r->n_runs;
    /* a last line without '\n' is a partial line at the end, or a header line there */
    lines->no_lf = r->n_runs ? !r->at_line_start : !r->hdr_lf;
}

const char *tal_fasta_preamble_(const tal_fasta_reader_t *r, size_t *len)
{
    *len = r->pre_len;
    return r->pre ? r->pre : "";
}

const char *tal_fasta_path(const tal_fasta_reader_t *r) { return r->path; }
const char *tal_fasta_format(const tal_fasta_reader_t *r) { return tal_instream_format(r->in); }
uint64_t tal_fasta_stored_size(const tal_fasta_reader_t *r)
{
    return tal_instream_stored_size(r->in);
}
uint64_t tal_fasta_stored_hash(tal_fasta_reader_t *r) { return tal_instream_stored_hash(r->in); }

void tal_fasta_close(tal_fasta_reader_t *r)
{
    if (!r) return;
    tal_instream_close(r->in);
    free(r->path);
    free(r->hdr);
    free(r->seq);
    free(r->runs);
    free(r->pre);
    free(r);
}
