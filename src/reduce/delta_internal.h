/* Members of a reduction stored as edit scripts against their reference: the alignment
 * that admits a member (identity and coverage as CD-HIT defines them) and the lossless
 * delta it yields. Private to libtalaria until the reduce command lands (issue 4). */
#ifndef TAL_DELTA_INTERNAL_H
#define TAL_DELTA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* ---- alignment (parasail, BLOSUM62 or a nucleotide matrix) ---- */

typedef struct tal_aligner tal_aligner_t;

typedef struct {
    uint64_t identical;   /* aligned columns with the same byte in both */
    uint64_t aligned;     /* member residues in aligned (match or mismatch) columns */
    double identity;      /* identical / member length (CD-HIT -c) */
    double coverage;      /* aligned / member length */
    const uint8_t *delta; /* the member as a delta against the reference (see below) */
    size_t delta_len;     /* valid until the next tal_align on this aligner */
    int minus;            /* set by the caller: the reference was reverse complemented */
} tal_alignment_t;

/* nucleotide: 0 protein (BLOSUM62, gaps 11/1), 1 nucleotide (+2/-3, gaps 5/2).
 * max_cells bounds member x reference cells of one alignment (a band may span twice
 * as many); 0 means 2^28. */
int tal_aligner_create(tal_aligner_t **out, int nucleotide, uint64_t max_cells);
void tal_aligner_free(tal_aligner_t *a);
/* Aligns the whole member against any stretch of the reference (end gaps in the
 * reference are free) and encodes the member as a delta. TAL_EMEMCAP when the pair is
 * over max_cells (nothing is computed); TAL_ENOMEM if parasail fails to allocate. */
int tal_align(tal_aligner_t *a, const char *member, size_t member_len, const char *ref,
              size_t ref_len, tal_alignment_t *out);

/* The same alignment restricted to the diagonals d = j - i in [dlo, dhi] (j reference,
 * i member position), in O(member length x band) time, its traceback's memory bounded
 * by checkpoints: for a pair whose shared words put it near one diagonal. A path that
 * touches an edge of the band the caller set (a better path may lie outside), and a band
 * that cannot hold the member, fall back to tal_align, so the result is never worse than
 * the band allows. */
int tal_align_band(tal_aligner_t *a, const char *member, size_t member_len, const char *ref,
                   size_t ref_len, int64_t dlo, int64_t dhi, tal_alignment_t *out);

/* With on, every band's best score is compared with the full DP's (score only, SIMD):
 * when the band missed the best path, the full alignment is computed instead. */
void tal_aligner_verify_bands(tal_aligner_t *a, int on);

/* Pairs of more cells than this are aligned by the band code over the whole matrix
 * (one byte a cell, or checkpoints) instead of parasail (two to four). */
#define TAL_PARASAIL_CELLS ((uint64_t)1 << 21)

/* A band's traceback bytes past which it keeps checkpoint rows instead (see align.c). */
#define TAL_TRACE_LIMIT ((uint64_t)2 << 20)

/* For tests: the traceback limit, and the rows between checkpoints (0: about
 * sqrt(8 x member length), what minimises checkpoints and block together). */
void tal_aligner_set_trace_limit(tal_aligner_t *a, size_t bytes, size_t block_rows);
/* The bytes the aligner holds in its own buffers now (parasail's are freed each time). */
size_t tal_aligner_bytes(const tal_aligner_t *a);

/* a + b and a x b, UINT64_MAX when they overflow */
static inline uint64_t tal_sat_add(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}
static inline uint64_t tal_sat_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}
/* the smallest s with s x s >= x */
static inline uint64_t tal_sqrt_up(uint64_t x)
{
    uint64_t lo = 0, hi = (uint64_t)1 << 32;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (mid * mid >= x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* The most memory one alignment of a member_len x ref_len pair can take: what a caller
 * reserves before it. The lengths may come from a store's meta section (the plan's
 * longest sequence): the figure saturates rather than wraps around to a small one, and
 * it grows with either length, so it also bounds every shorter pair. Its parts, W the
 * widest band (m + r + 1 diagonals), m' <= m the member of a band alignment:
 *  - the band's rows, 9 x (W + 10) int32;
 *  - its traceback: m' x w + 4 bytes (no more than m x W, nor 2 x max_cells, the band
 *    rule) while that is at most TAL_TRACE_LIMIT or checkpoints take more; else
 *    checkpoints and a block, C <= 2 w sqrt(8 m') + 10 sqrt(8 m') + 9 w + 84 bytes
 *    (align.c), where w sqrt(8 m') <= W sqrt(8 m) and, as (m' + 1) w <= 2 x max_cells,
 *    w sqrt(8 m') <= 4 sqrt(max_cells x W);
 *  - parasail's traceback, 17/4 bytes a cell up to TAL_PARASAIL_CELLS, when a band falls
 *    back to it (the band's buffers are still held);
 *  - the path's operations (16 bytes a residue), the delta (12) and its check (1), and
 *    parasail's profiles and score rows, within 128 bytes a residue and 1 MiB. */
static inline uint64_t tal_align_bytes(size_t member_len, size_t ref_len, uint64_t max_cells)
{
    uint64_t m = member_len, r = ref_len, cells = tal_sat_mul(m, r), W, rows, root, trace, sum,
             wide;
    W = tal_sat_add(tal_sat_add(m, r), 1);
    rows = tal_sat_mul(36, tal_sat_add(W, 10));
    root = tal_sqrt_up(tal_sat_mul(8, m));
    wide = tal_sat_mul(4, tal_sqrt_up(tal_sat_mul(max_cells, W)));
    if (tal_sat_mul(W, root) < wide) wide = tal_sat_mul(W, root);
    trace = tal_sat_add(tal_sat_add(tal_sat_mul(2, wide), tal_sat_mul(10, root)),
                        tal_sat_add(tal_sat_mul(9, W), 84));
    if (trace > tal_sat_add(tal_sat_mul(2, max_cells), 4))
        trace = tal_sat_add(tal_sat_mul(2, max_cells), 4);
    if (trace < TAL_TRACE_LIMIT) trace = TAL_TRACE_LIMIT;
    if (trace > tal_sat_add(tal_sat_mul(m, W), 4)) trace = tal_sat_add(tal_sat_mul(m, W), 4);
    if (cells > max_cells) cells = max_cells;
    if (cells > TAL_PARASAIL_CELLS) cells = TAL_PARASAIL_CELLS;
    sum = tal_sat_add(tal_sat_add(rows, trace), cells * 17 / 4);
    return tal_sat_add(tal_sat_add(sum, tal_sat_mul(tal_sat_add(m, r), 128)), (uint64_t)1 << 20);
}
/* Frees the band's buffers that have grown past keep bytes (after a rare big pair). */
void tal_aligner_trim(tal_aligner_t *a, size_t keep);

/* ---- deltas ----
 * A delta is a sequence of operations, each a LEB128 varint (count << 2 | op) followed,
 * for SUB and INS, by count literal bytes. The reference is read from position 0:
 *   COPY (0): copy count bytes of the reference;
 *   SUB  (1): skip count bytes of the reference, emit the count literals;
 *   INS  (2): emit the count literals;
 *   SKIP (3): skip count bytes of the reference.
 * Reference bytes after the last operation are unused. count is >= 1. */
enum { TAL_DELTA_COPY = 0, TAL_DELTA_SUB = 1, TAL_DELTA_INS = 2, TAL_DELTA_SKIP = 3 };

/* Applies a delta (untrusted bytes) to ref: TAL_EINPUT if it is malformed, reads past
 * the reference, or does not produce exactly out_len bytes (the member's length). */
int tal_delta_apply(const uint8_t *delta, size_t delta_len, const char *ref, size_t ref_len,
                    char *out, size_t out_len);

/* The reverse complement of a nucleotide sequence, what a minus-strand member's delta is
 * applied to (doc/format.md, delta store flags): A C G T/U and the IUPAC codes to their
 * complements, case kept, N and any other byte to itself. A sequence with a U and no T
 * complements A to U, else to T. A function of seq alone, so the writer and every
 * reader get the same bytes. out may not be seq. */
void tal_revcomp(const char *seq, size_t len, char *out);

#endif
