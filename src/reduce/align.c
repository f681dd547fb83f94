/* Member-to-reference alignment through parasail, and the delta that follows from it.
 * The member is aligned end to end and may sit anywhere in a longer reference
 * (semi-global, reference end gaps free), so identity and coverage are over the
 * member's length as in CD-HIT. The delta compares bytes, not matrix letters, so case
 * and characters outside the matrix survive: it is checked by applying it before it is
 * handed out. Identity counts columns of the same residue: the same byte for proteins;
 * for nucleotides the same base whatever its case, U the same as T (RNA against DNA),
 * and N or another IUPAC code never the same as anything, itself included (they score
 * as mismatches too, as they are no k-mer seeds). */
#include "delta_internal.h"
#include "talaria/error.h"

#include <limits.h>
#include <stdint.h>
#include <parasail.h>
#include <parasail/matrices/blosum62.h>
#include <stdlib.h>
#include <string.h>

struct tal_aligner {
    const parasail_matrix_t *matrix;
    parasail_matrix_t *owned;
    int open, extend;
    uint64_t max_cells;
    uint8_t *delta;
    size_t delta_len, delta_cap;
    char *check;
    size_t check_cap;
    /* the banded aligner: scores by byte pair, rows, traceback */
    int8_t score[256][256];
    uint8_t same[256][256]; /* the pair counts as identical */
    int32_t *rows;
    size_t rows_cap;
    /* one byte a cell, or (past trace_limit) checkpoint rows and one block's bytes */
    uint8_t *trace;
    size_t trace_cap;
    size_t trace_limit, block_rows; /* block_rows 0: chosen per alignment */
    uint64_t *ops;                  /* (count << 2 | op) of the banded path, last column first */
    size_t ops_len, ops_cap;
    int verify; /* check each band's score against the full DP's (score only) */
    /* the last member's 16-bit query profile for that check, kept for its next
     * candidate (members up to PROFILE_KEEP residues), and the copy it points into */
    parasail_profile_t *profile;
    char *profile_seq;
    size_t profile_len;
};

#define PROFILE_KEEP 4096

void tal_aligner_verify_bands(tal_aligner_t *a, int on) { a->verify = on; }

void tal_aligner_set_trace_limit(tal_aligner_t *a, size_t bytes, size_t block_rows)
{
    a->trace_limit = bytes;
    a->block_rows = block_rows;
}

size_t tal_aligner_bytes(const tal_aligner_t *a)
{
    return a->delta_cap + a->check_cap + a->rows_cap * sizeof *a->rows + a->trace_cap +
           a->ops_cap * sizeof *a->ops + a->profile_len;
}

void tal_aligner_trim(tal_aligner_t *a, size_t keep)
{
    if (a->trace_cap > keep) {
        free(a->trace);
        a->trace = NULL;
        a->trace_cap = 0;
    }
    if (a->rows_cap * sizeof *a->rows > keep) {
        free(a->rows);
        a->rows = NULL;
        a->rows_cap = 0;
    }
    if (a->ops_cap * sizeof *a->ops > keep) {
        free(a->ops);
        a->ops = NULL;
        a->ops_cap = a->ops_len = 0;
    }
}

int tal_aligner_create(tal_aligner_t **out, int nucleotide, uint64_t max_cells)
{
    tal_aligner_t *a = calloc(1, sizeof *a);
    *out = NULL;
    if (!a) return TAL_ENOMEM;
    if (nucleotide) {
        /* parasail maps lower case to upper, and any other letter to a last, neutral
         * row: U scores as T, and N and the rest as mismatches everywhere */
        int t, u, n, other;
        a->owned = parasail_matrix_create("ACGTUN", 2, -3);
        if (!a->owned) {
            free(a);
            return TAL_ENOMEM;
        }
        t = a->owned->mapper['T'], u = a->owned->mapper['U'], n = a->owned->mapper['N'];
        other = a->owned->mapper['R'];
        parasail_matrix_set_value(a->owned, t, u, 2);
        parasail_matrix_set_value(a->owned, u, t, 2);
        parasail_matrix_set_value(a->owned, n, n, -3);
        for (int x = 0; x < a->owned->size; x++) {
            parasail_matrix_set_value(a->owned, x, other, -3);
            parasail_matrix_set_value(a->owned, other, x, -3);
        }
        a->matrix = a->owned;
        a->open = 5;
        a->extend = 2;
    } else {
        a->matrix = &parasail_blosum62;
        a->open = 11;
        a->extend = 1;
    }
    a->max_cells = max_cells ? max_cells : (1ull << 28);
    a->trace_limit = TAL_TRACE_LIMIT;
    for (int x = 0; x < 256; x++)
        for (int y = 0; y < 256; y++) {
            int mx = a->matrix->mapper[x], my = a->matrix->mapper[y];
            int v = a->matrix->matrix[mx * a->matrix->size + my];
            a->score[x][y] = (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
            a->same[x][y] = x == y;
        }
    if (nucleotide) {
        static const char base[] = "ACGTU";
        memset(a->same, 0, sizeof a->same);
        for (const char *x = base; *x; x++)
            for (const char *y = base; *y; y++) {
                int bx = *x == 'U' ? 'T' : *x, by = *y == 'U' ? 'T' : *y;
                if (bx != by) continue;
                a->same[(unsigned char)*x][(unsigned char)*y] = 1;
                a->same[(unsigned char)*x][(unsigned char)(*y | 0x20)] = 1;
                a->same[(unsigned char)(*x | 0x20)][(unsigned char)*y] = 1;
                a->same[(unsigned char)(*x | 0x20)][(unsigned char)(*y | 0x20)] = 1;
            }
    }
    *out = a;
    return 0;
}

void tal_aligner_free(tal_aligner_t *a)
{
    if (!a) return;
    if (a->owned) parasail_matrix_free(a->owned);
    free(a->delta);
    free(a->check);
    free(a->rows);
    free(a->trace);
    free(a->ops);
    if (a->profile) parasail_profile_free(a->profile);
    free(a->profile_seq);
    free(a);
}

static int reserve(tal_aligner_t *a, size_t more)
{
    if (a->delta_len + more <= a->delta_cap) return 0;
    size_t cap = a->delta_cap ? a->delta_cap : 256;
    while (cap < a->delta_len + more) cap *= 2;
    uint8_t *p = realloc(a->delta, cap);
    if (!p) return TAL_ENOMEM;
    a->delta = p;
    a->delta_cap = cap;
    return 0;
}

/* Appends one operation; literals (for SUB and INS) follow the count. */
static int emit(tal_aligner_t *a, int op, uint64_t count, const char *literals)
{
    uint64_t v = count << 2 | (uint64_t)op;
    int rc;
    if (!count) return 0;
    if ((rc = reserve(a, 10 + (literals ? count : 0))) < 0) return rc;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        a->delta[a->delta_len++] = byte | (v ? 0x80 : 0);
    } while (v);
    if (literals) {
        memcpy(a->delta + a->delta_len, literals, count);
        a->delta_len += count;
    }
    return 0;
}

/* A run of aligned columns becomes COPY and SUB operations by comparing bytes (the delta
 * keeps the member's own letters); identical counts the columns of the same residue. */
static int emit_aligned(tal_aligner_t *a, const char *m, const char *r, uint64_t n,
                        uint64_t *identical)
{
    const unsigned char *um = (const unsigned char *)m, *ur = (const unsigned char *)r;
    uint64_t i = 0;
    int rc;
    while (i < n) {
        uint64_t j = i;
        if (m[i] == r[i]) {
            while (j < n && m[j] == r[j]) *identical += a->same[um[j]][ur[j]], j++;
            rc = emit(a, TAL_DELTA_COPY, j - i, NULL);
        } else {
            while (j < n && m[j] != r[j]) *identical += a->same[um[j]][ur[j]], j++;
            rc = emit(a, TAL_DELTA_SUB, j - i, m + i);
        }
        if (rc < 0) return rc;
        i = j;
    }
    return 0;
}

/* Checks the delta (lose nothing: it must give the member back byte for byte) and fills
 * in the result. */
static int finish(tal_aligner_t *a, const char *member, size_t member_len, const char *ref,
                  size_t ref_len, uint64_t identical, uint64_t aligned, tal_alignment_t *out)
{
    if (member_len > a->check_cap) {
        char *p = realloc(a->check, member_len);
        if (!p) return TAL_ENOMEM;
        a->check = p;
        a->check_cap = member_len;
    }
    if (tal_delta_apply(a->delta, a->delta_len, ref, ref_len, a->check, member_len) < 0 ||
        (member_len && memcmp(a->check, member, member_len)))
        return TAL_EIO; /* a bug here, never a silent loss */
    out->identical = identical;
    out->aligned = aligned;
    out->identity = member_len ? (double)identical / (double)member_len : 0.0;
    out->coverage = member_len ? (double)aligned / (double)member_len : 0.0;
    out->delta = a->delta;
    out->delta_len = a->delta_len;
    return 0;
}

/* The full alignment; above is a score the best alignment is known to beat (INT32_MIN:
 * nothing known). Past 127 parasail's 8-bit pass is sure to saturate, and its
 * saturating entry would only go on to 16 bits: started there, the result is the same. */
static int align_full(tal_aligner_t *a, const char *member, size_t member_len, const char *ref,
                      size_t ref_len, int32_t above, tal_alignment_t *out)
{
    parasail_result_t *res = NULL;
    parasail_cigar_t *cigar = NULL;
    uint64_t mpos = 0, rpos = 0, identical = 0, aligned = 0;
    int rc = 0;
    memset(out, 0, sizeof *out);
    a->delta_len = 0;
    if (member_len > INT_MAX || ref_len > INT_MAX ||
        (uint64_t)member_len * (uint64_t)ref_len > a->max_cells)
        return TAL_EMEMCAP;
    /* parasail's traceback takes 2-4 bytes a cell: big pairs go to the band code with
     * the whole matrix as its band, at one byte a cell or in checkpointed blocks */
    if ((uint64_t)member_len * (uint64_t)ref_len > TAL_PARASAIL_CELLS && member_len && ref_len)
        return tal_align_band(a, member, member_len, ref, ref_len, -(int64_t)member_len,
                              (int64_t)ref_len, out);
    if (member_len && ref_len) {
        if (above >= 127) {
            res = parasail_sg_dx_trace_striped_16(member, (int)member_len, ref, (int)ref_len,
                                                  a->open, a->extend, a->matrix);
            if (res && parasail_result_is_saturated(res)) {
                parasail_result_free(res);
                res = parasail_sg_dx_trace_striped_32(member, (int)member_len, ref, (int)ref_len,
                                                      a->open, a->extend, a->matrix);
            }
        } else {
            res = parasail_sg_dx_trace_striped_sat(member, (int)member_len, ref, (int)ref_len,
                                                   a->open, a->extend, a->matrix);
        }
        if (!res) return TAL_ENOMEM;
        cigar =
            parasail_result_get_cigar(res, member, (int)member_len, ref, (int)ref_len, a->matrix);
        if (!cigar) {
            parasail_result_free(res);
            return TAL_ENOMEM;
        }
        mpos = cigar->beg_query > 0 ? (uint64_t)cigar->beg_query : 0;
        rpos = cigar->beg_ref > 0 ? (uint64_t)cigar->beg_ref : 0;
        if (rpos > ref_len) rpos = ref_len;
        if (mpos > member_len) mpos = member_len;
        /* the member's unaligned head is inserted, the reference's head skipped */
        rc = emit(a, TAL_DELTA_SKIP, rpos, NULL);
        if (!rc) rc = emit(a, TAL_DELTA_INS, mpos, member);
        for (int k = 0; k < cigar->len && !rc; k++) {
            char op = parasail_cigar_decode_op(cigar->seq[k]);
            uint64_t n = parasail_cigar_decode_len(cigar->seq[k]);
            if (op == '=' || op == 'X' || op == 'M') {
                if (mpos + n > member_len) n = member_len - mpos;
                if (rpos + n > ref_len) n = ref_len - rpos;
                rc = emit_aligned(a, member + mpos, ref + rpos, n, &identical);
                aligned += n;
                mpos += n;
                rpos += n;
            } else if (op == 'I') { /* residues of the member only */
                if (mpos + n > member_len) n = member_len - mpos;
                rc = emit(a, TAL_DELTA_INS, n, member + mpos);
                mpos += n;
            } else if (op == 'D') { /* residues of the reference only */
                if (rpos + n > ref_len) n = ref_len - rpos;
                rc = emit(a, TAL_DELTA_SKIP, n, NULL);
                rpos += n;
            }
        }
    }
    /* whatever the alignment left of the member is inserted at the end */
    if (!rc && mpos < member_len) rc = emit(a, TAL_DELTA_INS, member_len - mpos, member + mpos);
    if (rc >= 0) rc = finish(a, member, member_len, ref, ref_len, identical, aligned, out);
    if (cigar) parasail_cigar_free(cigar);
    if (res) parasail_result_free(res);
    return rc;
}

int tal_align(tal_aligner_t *a, const char *member, size_t member_len, const char *ref,
              size_t ref_len, tal_alignment_t *out)
{
    return align_full(a, member, member_len, ref, ref_len, INT32_MIN, out);
}

/* ---- the banded aligner ----
 * The same alignment (member end to end, reference ends free, affine gaps) restricted to
 * the diagonals d = j - i in [dlo, dhi] (i member, j reference position). Rows are kept
 * per diagonal, so the three moves are: diagonal (i-1, d), along the row (i, d-1: a
 * reference residue skipped) and down (i-1, d+1: a member residue inserted). One
 * traceback byte per cell: bits 0-1 where H came from (0 diagonal, 1 E, 2 F), bit 2 E
 * extended, bit 3 F extended. Past trace_limit bytes, the forward pass keeps the H and F
 * rows every block rows instead, and the traceback recomputes the block it is in from
 * them (the same calls, so the same bytes): memory about 2 w sqrt(8 ml) rather than
 * ml x w, for a second pass's time. */
#define NEG_INF (INT32_MIN / 4)

static int push_op(tal_aligner_t *a, int op, uint64_t n)
{
    if (a->ops_len && (a->ops[a->ops_len - 1] & 3) == (uint64_t)op) {
        a->ops[a->ops_len - 1] += n << 2;
        return 0;
    }
    if (a->ops_len == a->ops_cap) {
        size_t cap = a->ops_cap ? a->ops_cap * 2 : 64;
        uint64_t *p = realloc(a->ops, cap * sizeof *p);
        if (!p) return TAL_ENOMEM;
        a->ops = p;
        a->ops_cap = cap;
    }
    a->ops[a->ops_len++] = n << 2 | (uint64_t)op;
    return 0;
}

enum { OP_M = 0, OP_I = 1, OP_D = 2 };

/* The row loop works on LANES diagonals at once (GCC's generic vectors: SSE2 on x86-64,
 * NEON on arm64). Its rows: H and F of two matrix rows, then the row's scratch. */
#define LANES 4
#define ROWS  9
typedef int32_t v4i __attribute__((vector_size(LANES * sizeof(int32_t))));
typedef uint8_t v4b __attribute__((vector_size(LANES)));

static inline v4i vload(const int32_t *p)
{
    v4i v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void vstore(int32_t *p, v4i v) { memcpy(p, &v, sizeof v); }
/* m ? a : b, lane by lane, for a mask m of comparisons (-1 or 0) */
static inline v4i vsel(v4i m, v4i a, v4i b) { return (a & m) | (b & ~m); }

/* The full DP's score (score only, SIMD) for the band check: the best path may lie
 * outside the band without touching its edge (a repeat elsewhere, a second copy of a
 * domain). The band's best is a lower bound: once it is past what 8-bit lanes hold, the
 * 8-bit pass would only saturate, so it starts at 16 bits, with the member's profile
 * kept for its next candidate. The score is the same whatever the width. When parasail
 * cannot allocate, the band's best (no fallback), as before. */
static int32_t full_score(tal_aligner_t *a, const char *member, size_t ml, const char *ref,
                          size_t rl, int32_t band_best)
{
    parasail_result_t *res = NULL;
    int32_t score = band_best;
    if (band_best < 100) {
        res = parasail_sg_dx_striped_sat(member, (int)ml, ref, (int)rl, a->open, a->extend,
                                         a->matrix);
    } else {
        if (!a->profile || a->profile_len != ml || memcmp(a->profile_seq, member, ml)) {
            char *copy = malloc(ml);
            if (a->profile) parasail_profile_free(a->profile);
            free(a->profile_seq);
            a->profile = NULL;
            a->profile_seq = copy;
            a->profile_len = ml;
            if (copy) {
                memcpy(copy, member, ml);
                a->profile = parasail_profile_create_16(copy, (int)ml, a->matrix);
            }
        }
        if (a->profile)
            res = parasail_sg_dx_striped_profile_16(a->profile, ref, (int)rl, a->open, a->extend);
        if (res && parasail_result_is_saturated(res)) {
            parasail_result_free(res);
            res = parasail_sg_dx_striped_32(member, (int)ml, ref, (int)rl, a->open, a->extend,
                                            a->matrix);
        }
        if (ml > PROFILE_KEEP) { /* a rare long member: not held between alignments */
            if (a->profile) parasail_profile_free(a->profile);
            free(a->profile_seq);
            a->profile = NULL;
            a->profile_seq = NULL;
            a->profile_len = 0;
        }
    }
    if (res) {
        score = res->score;
        parasail_result_free(res);
    }
    return score;
}

/* One row i of the band: Hn and Fn from the previous row's Hp and Fp over the cells
 * [klo, khi] (j0: the first is the reference's head, j == 0), and the row's traceback
 * bytes, LANES cells at a time in two sweeps:
 *   1. F (from the row above) and the diagonal move, which need only the previous row,
 *      and their best hp;
 *   2. E along the row, E[k] = max(hp[k-1] - open, E[k-1] - extend), which needs no H:
 *      where E won in the left cell, opening a gap there scores below extending E (open
 *      > extend). Within a vector it is a prefix maximum (two shifts), across vectors a
 *      carry of one lane. Then H, the best of the three, ties to the diagonal, then E,
 *      then F.
 * Every comparison and clamp is the scalar recurrence's, so the scores, the traceback
 * and the alignment are the same to the bit. Cells past khi in the last vector are
 * computed from NEG_INF and reset afterwards. */
__attribute__((target_clones("avx2", "sse4.1", "default"))) static void band_row(
    const tal_aligner_t *a, const int32_t *Hp, const int32_t *Fp, int32_t *Hn, int32_t *Fn,
    int32_t *scratch, size_t stride, uint8_t *tr, const int8_t *row, const unsigned char *rk,
    int64_t klo, int64_t khi, int j0)
{
    /* hp has a lane before cell 0, for the cell left of the first */
    int32_t *sc = scratch, *dd = sc + stride, *fu = dd + stride, *hp = fu + stride + LANES;
    const int32_t open = a->open, ext = a->extend;
    const v4i neg = {NEG_INF, NEG_INF, NEG_INF, NEG_INF}, vopen = {open, open, open, open},
              vext = {ext, ext, ext, ext}, vext2 = vext + vext,
              decay = {ext, 2 * ext, 3 * ext, 4 * ext}, one = {1, 1, 1, 1}, two = {2, 2, 2, 2},
              four = {4, 4, 4, 4}, eight = {8, 8, 8, 8};
    v4i carry = neg; /* E of the cell left of the vector, clamped, in every lane */
    int64_t k, k0 = klo, kend;
    for (k = 0; k <= klo; k++) Hn[k] = Fn[k] = NEG_INF;
    hp[klo - 1] = NEG_INF;
    if (j0) {
        /* j == 0: the reference's head, no diagonal move into it */
        int32_t fo = Hp[klo + 2] - open, fe = Fp[klo + 2] - ext, f = fo >= fe ? fo : fe;
        int32_t h = f > NEG_INF ? f : NEG_INF;
        Hn[klo + 1] = h;
        Fn[klo + 1] = f < NEG_INF ? NEG_INF : f;
        tr[klo] =
            (uint8_t)((f > NEG_INF ? 2u : 0u) | (fe > fo ? 8u : 0u) | (-ext > -open ? 4u : 0u));
        hp[klo] = h; /* E stays NEG_INF: nothing lies left of j == 0 */
        k0++;
    }
    kend = k0 + (khi - k0 + LANES) / LANES * LANES; /* one past the last vector's cells */
    for (k = k0; k <= khi; k++) sc[k] = row[rk[k]];
    for (; k < kend; k++) sc[k] = 0;
    for (k = k0; k < kend; k += LANES) {
        v4i hd = vload(Hp + k + 1), fo = vload(Hp + k + 2) - vopen, fe = vload(Fp + k + 2) - vext;
        v4i f = vsel(fo >= fe, fo, fe), d = vsel(hd > neg, hd + vload(sc + k), neg);
        v4i h = vsel(f > d, f, d);
        vstore(fu + k, f);
        vstore(dd + k, d);
        vstore(hp + k, vsel(h < neg, neg, h));
        vstore(sc + k, (fe > fo) & eight);
    }
    for (k = k0; k < kend; k += LANES) {
        v4i eo = vload(hp + k - 1) - vopen, y = eo, s, c, cprev, ee, e, d, f, m, src, h;
        v4b t;
        /* y[l] = max over l' <= l of eo[l'] - (l - l') extend */
        s = __builtin_shufflevector(neg, y, 3, 4, 5, 6) - vext;
        y = vsel(s > y, s, y);
        s = __builtin_shufflevector(neg, y, 2, 3, 4, 5) - vext2;
        y = vsel(s > y, s, y);
        y = vsel(y < neg, neg, y);
        /* E clamped: the prefix maximum, or the carry decayed */
        s = carry - decay;
        c = vsel(s > y, s, y);
        cprev = __builtin_shufflevector(carry, c, 3, 4, 5, 6);
        carry = __builtin_shufflevector(c, c, 3, 3, 3, 3);
        ee = cprev - vext;
        e = vsel(eo >= ee, eo, ee);
        d = vload(dd + k);
        f = vload(fu + k);
        m = e > d;
        src = m & one;
        h = vsel(m, e, d);
        m = f > h;
        src = vsel(m, two, src);
        h = vsel(m, f, h);
        vstore(Hn + k + 1, vsel(h < neg, neg, h));
        vstore(Fn + k + 1, vsel(f < neg, neg, f));
        t = __builtin_convertvector(src | vload(sc + k) | ((ee > eo) & four), v4b);
        memcpy(tr + k, &t, sizeof t);
    }
    for (k = khi + 2; k < (int64_t)stride; k++) Hn[k] = Fn[k] = NEG_INF;
}

/* The band's geometry, and where its traceback bytes live: every row's, or one block's
 * recomputed from checkpoints (the H and F rows before every block's first row). */
typedef struct {
    const unsigned char *m, *r;
    int64_t ml, rl, dlo, w;
    size_t stride;
    int64_t block;  /* rows a block holds */
    int32_t *ckpt;  /* checkpoint c: H then F before row c x block + 1, or NULL */
    uint8_t *bytes; /* traceback bytes, w a row, from row first on */
    int64_t first;  /* the row the bytes start at; ml + 1 before any block */
} band_ctx_t;

/* Rows from to to (H and F of row from - 1 in their slot of a->rows), their traceback
 * bytes from tr on, tr_step a row (0: every row over the same bytes, as the forward pass
 * keeps none when it saves checkpoints). 1 when the band leaves the matrix. */
static int band_rows(tal_aligner_t *a, const band_ctx_t *b, int64_t from, int64_t to, uint8_t *tr,
                     size_t tr_step, int save)
{
    size_t stride = b->stride;
    int32_t *H = a->rows + (((from - 1) & 1) ? 2 : 0) * stride, *F = H + stride;
    for (int64_t i = from; i <= to; i++) {
        int64_t klo = -i - b->dlo, khi = b->rl - i - b->dlo;
        int32_t *Hn = a->rows + ((i & 1) ? 2 : 0) * stride, *Fn = Hn + stride;
        if (klo < 0) klo = 0;
        if (khi > b->w - 1) khi = b->w - 1;
        if (klo > khi) return 1;
        if (save && (i - 1) % b->block == 0) {
            int32_t *c = b->ckpt + (size_t)((i - 1) / b->block) * 2 * stride;
            memcpy(c, H, stride * sizeof *c);
            memcpy(c + stride, F, stride * sizeof *c);
        }
        band_row(a, H, F, Hn, Fn, a->rows + 4 * stride, stride, tr + (size_t)(i - from) * tr_step,
                 a->score[b->m[i - 1]], b->r + (i + b->dlo - 1), klo, khi, i + b->dlo + klo == 0);
        H = Hn;
        F = Fn;
    }
    return 0;
}

/* Row i's traceback byte at diagonal k: with checkpoints, a row before the block held
 * recomputes its block from the checkpoint, as the forward pass computed it. */
static uint8_t band_trace(tal_aligner_t *a, band_ctx_t *b, int64_t i, int64_t k)
{
    if (i < b->first) {
        int64_t c = (i - 1) / b->block, last;
        int32_t *H;
        b->first = c * b->block + 1;
        last = b->first + b->block - 1 < b->ml ? b->first + b->block - 1 : b->ml;
        H = a->rows + (((b->first - 1) & 1) ? 2 : 0) * b->stride;
        memcpy(H, b->ckpt + (size_t)c * 2 * b->stride, 2 * b->stride * sizeof *H);
        (void)band_rows(a, b, b->first, last, b->bytes, (size_t)b->w, 0);
    }
    return b->bytes[(i - b->first) * b->w + k];
}

int tal_align_band(tal_aligner_t *a, const char *member, size_t member_len, const char *ref,
                   size_t ref_len, int64_t dlo, int64_t dhi, tal_alignment_t *out)
{
    int64_t ml = (int64_t)member_len, rl = (int64_t)ref_len, w;
    int32_t *H, best = NEG_INF;
    int64_t best_k = -1, i, k;
    size_t stride, need, ckpt_bytes = 0;
    uint64_t mpos, rpos, identical = 0, aligned = 0;
    int touched = 0, rc = 0, whole;
    band_ctx_t b;
    memset(out, 0, sizeof *out);
    a->delta_len = 0;
    a->ops_len = 0;
    if (member_len > INT32_MAX / 2 || ref_len > INT32_MAX / 2) return TAL_EMEMCAP;
    if (dlo < -ml) dlo = -ml;
    if (dhi > rl) dhi = rl;
    if (!ml || !rl || dlo > dhi) return tal_align(a, member, member_len, ref, ref_len, out);
    w = dhi - dlo + 1;
    whole = dlo == -ml && dhi == rl;
    if ((uint64_t)(ml + 1) * (uint64_t)w > 2 * a->max_cells) return TAL_EMEMCAP;
    stride = (size_t)w + 2 + 2 * LANES; /* guards, and room for a last partial vector */
    b = (band_ctx_t){.m = (const unsigned char *)member,
                     .r = (const unsigned char *)ref,
                     .ml = ml,
                     .rl = rl,
                     .dlo = dlo,
                     .w = w,
                     .stride = stride,
                     .block = ml,
                     .first = 1};
    need = (size_t)(ml * w) + LANES;
    if (need > a->trace_limit) {
        /* checkpoints every block rows (sqrt(8 ml) about minimises them and the block),
         * when they take less than the traceback */
        int64_t block = a->block_rows ? (int64_t)a->block_rows : (int64_t)tal_sqrt_up(8 * ml);
        size_t points, block_need;
        if (block > ml) block = ml;
        points = (size_t)((ml + block - 1) / block) * 2 * stride * sizeof(int32_t);
        block_need = points + (size_t)(block * w) + LANES;
        if (block_need < need || a->block_rows) {
            b.block = block;
            b.first = ml + 1;
            ckpt_bytes = points;
            need = block_need;
        }
    }
    if (ROWS * stride > a->rows_cap) {
        int32_t *p = realloc(a->rows, ROWS * stride * sizeof *p);
        if (!p) return TAL_ENOMEM;
        a->rows = p;
        a->rows_cap = ROWS * stride;
    }
    if (need > a->trace_cap) {
        uint8_t *p = realloc(a->trace, need);
        if (!p) return TAL_ENOMEM;
        a->trace = p;
        a->trace_cap = need;
    }
    b.ckpt = ckpt_bytes ? (int32_t *)(void *)a->trace : NULL;
    b.bytes = a->trace + ckpt_bytes;
    /* one guard cell each side: index k + 1 of a row holds diagonal dlo + k; two rows of
     * H and F (the previous and this one), then the row's scratch */
    for (k = 0; k < (int64_t)(ROWS * stride); k++) a->rows[k] = NEG_INF;
    for (k = 0; k < w; k++)
        if (dlo + k >= 0) a->rows[k + 1] = 0; /* row 0: the reference head is free */
    if (band_rows(a, &b, 1, ml, b.bytes, b.ckpt ? 0 : (size_t)w, b.ckpt != NULL))
        return tal_align(a, member, member_len, ref, ref_len, out); /* band left the matrix */
    H = a->rows + ((ml & 1) ? 2 : 0) * stride;
    for (k = 0; k < w; k++) {
        int64_t j = ml + dlo + k;
        if (j < 0 || j > rl) continue;
        if (H[k + 1] > best) {
            best = H[k + 1];
            best_k = k;
        }
    }
    if (best_k < 0 || best <= NEG_INF / 2)
        return tal_align(a, member, member_len, ref, ref_len, out);
    if (a->verify && !whole && full_score(a, member, member_len, ref, ref_len, best) > best)
        return align_full(a, member, member_len, ref, ref_len, best, out);
    /* traceback from (ml, best_k); the path's operations are collected last first */
    {
        int state = 0; /* 0 H, 1 E, 2 F */
        int64_t j;
        i = ml;
        k = best_k;
        while (i > 0) {
            uint8_t t = band_trace(a, &b, i, k);
            if ((k == 0 && dlo > -ml) || (k == w - 1 && dhi < rl)) touched = 1;
            if (state == 0) {
                int src = t & 3;
                if (src == 0) {
                    if ((rc = push_op(a, OP_M, 1)) < 0) return rc;
                    i--;
                } else {
                    state = src;
                }
            } else if (state == 1) {
                if ((rc = push_op(a, OP_D, 1)) < 0) return rc;
                if (!(t & 4)) state = 0;
                k--;
            } else {
                if ((rc = push_op(a, OP_I, 1)) < 0) return rc;
                if (!(t & 8)) state = 0;
                i--;
                k++;
            }
            if (k < 0 || k >= w) return tal_align(a, member, member_len, ref, ref_len, out);
        }
        j = dlo + k; /* the reference residues before the path are skipped */
        if (j < 0) return tal_align(a, member, member_len, ref, ref_len, out);
        rpos = (uint64_t)j;
    }
    if (touched) {
        /* a better path may lie outside: a band twice as wide (while that is still much
         * less than the whole matrix), then the full DP */
        if (4 * w < ml + rl && (dlo > -ml || dhi < rl))
            return tal_align_band(a, member, member_len, ref, ref_len, dlo - w, dhi + w, out);
        return tal_align(a, member, member_len, ref, ref_len, out);
    }
    /* encode, first operation first */
    mpos = 0;
    if ((rc = emit(a, TAL_DELTA_SKIP, rpos, NULL)) < 0) return rc;
    for (size_t o = a->ops_len; o-- > 0;) {
        uint64_t n = a->ops[o] >> 2;
        int op = (int)(a->ops[o] & 3);
        if (op == OP_M) {
            rc = emit_aligned(a, member + mpos, ref + rpos, n, &identical);
            aligned += n;
            mpos += n;
            rpos += n;
        } else if (op == OP_I) {
            rc = emit(a, TAL_DELTA_INS, n, member + mpos);
            mpos += n;
        } else {
            rc = emit(a, TAL_DELTA_SKIP, n, NULL);
            rpos += n;
        }
        if (rc < 0) return rc;
    }
    if (mpos != member_len) return TAL_EIO; /* a bug: the path must cover the member */
    return finish(a, member, member_len, ref, ref_len, identical, aligned, out);
}
