/* Unit tests for member/reference alignment and deltas (src/reduce): identity and
 * coverage as CD-HIT defines them on constructed pairs, deltas that always give the
 * member back byte for byte, and a delta decoder that refuses malformed input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reduce/delta_internal.h"
#include <parasail.h>
#include <parasail/matrices/blosum62.h>
#include "talaria/error.h"

static const char AA[] = "ACDEFGHIKLMNPQRSTVWY";

static char *random_protein(size_t n, unsigned *seed)
{
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++) s[i] = AA[rand_r(seed) % 20];
    s[n] = '\0';
    return s;
}

/* Aligns and checks that the delta rebuilds the member exactly. */
static tal_alignment_t align_ok(tal_aligner_t *a, const char *m, size_t mlen, const char *r,
                                size_t rlen)
{
    tal_alignment_t al;
    char *back = malloc(mlen + 1);
    assert_int_equal(tal_align(a, m, mlen, r, rlen, &al), 0);
    assert_int_equal(tal_delta_apply(al.delta, al.delta_len, r, rlen, back, mlen), 0);
    assert_memory_equal(back, m, mlen);
    free(back);
    return al;
}

static void test_identical(void **state)
{
    tal_aligner_t *a;
    unsigned seed = 1;
    char *s = random_protein(300, &seed);
    tal_alignment_t al;
    (void)state;
    assert_int_equal(tal_aligner_create(&a, 0, 0), 0);
    al = align_ok(a, s, 300, s, 300);
    assert_true(al.identity == 1.0 && al.coverage == 1.0);
    assert_true(al.delta_len <= 3); /* one COPY of 300 */
    tal_aligner_free(a);
    free(s);
}

static void test_member_inside_longer_reference(void **state)
{
    tal_aligner_t *a;
    unsigned seed = 2;
    char *r = random_protein(500, &seed);
    tal_alignment_t al;
    (void)state;
    assert_int_equal(tal_aligner_create(&a, 0, 0), 0);
    al = align_ok(a, r + 120, 200, r, 500); /* end gaps in the reference are free */
    assert_true(al.identity == 1.0 && al.coverage == 1.0);
    tal_aligner_free(a);
    free(r);
}

static void test_substitutions_give_identity(void **state)
{
    tal_aligner_t *a;
    unsigned seed = 3;
    char *r = random_protein(400, &seed), *m = strdup(r);
    tal_alignment_t al;
    (void)state;
    for (int i = 0; i < 40; i++) { /* 40 substitutions, 10 apart: 90% identity */
        size_t p = 5 + (size_t)i * 10;
        m[p] = m[p] == 'W' ? 'A' : 'W';
    }
    assert_int_equal(tal_aligner_create(&a, 0, 0), 0);
    al = align_ok(a, m, 400, r, 400);
    assert_true(al.identical == 360);
    assert_true(al.identity > 0.899 && al.identity < 0.901);
    assert_true(al.coverage == 1.0);
    tal_aligner_free(a);
    free(r);
    free(m);
}

static void test_insertion_lowers_coverage(void **state)
{
    tal_aligner_t *a;
    unsigned seed = 4;
    char *r = random_protein(300, &seed), *ins = random_protein(30, &seed);
    char *m = malloc(331);
    tal_alignment_t al;
    (void)state;
    memcpy(m, r, 150);
    memcpy(m + 150, ins, 30);
    memcpy(m + 180, r + 150, 150);
    assert_int_equal(tal_aligner_create(&a, 0, 0), 0);
    al = align_ok(a, m, 330, r, 300);
    /* 300 of 330 member residues align, all identical (a few of the insert may align) */
    assert_true(al.coverage < 0.95 && al.coverage >= 300.0 / 330.0 - 1e-9);
    assert_true(al.identity >= 300.0 / 330.0 - 1e-9 && al.identity < 0.95);
    tal_aligner_free(a);
    free(r);
    free(ins);
    free(m);
}

static void test_lossless_on_odd_bytes(void **state)
{
    tal_aligner_t *a;
    const char *r = "MKVLAAGIVgllLLAAQPAMA*XXBZUO-KLM";
    const char *m = "MKVLAAGIVGLLLLAAQPAMA*xxbzuo-KLMQQ";
    tal_alignment_t al;
    (void)state;
    assert_int_equal(tal_aligner_create(&a, 0, 0), 0);
    al = align_ok(a, m, strlen(m), r, strlen(r));
    assert_true(al.identity < 1.0); /* case differs: counted as different bytes */
    tal_aligner_free(a);
}

static void test_edges(void **state)
{
    tal_aligner_t *a;
    tal_alignment_t al;
    char out[8];
    (void)state;
    assert_int_equal(tal_aligner_create(&a, 0, 0), 0);
    al = align_ok(a, "", 0, "ACDE", 4);
    assert_true(al.identity == 0.0 && al.delta_len == 0);
    al = align_ok(a, "ACDE", 4, "", 0); /* all inserted */
    assert_true(al.identity == 0.0);
    assert_int_equal(tal_delta_apply(al.delta, al.delta_len, "", 0, out, 4), 0);
    tal_aligner_free(a);
    /* a pair over the cell bound is refused before anything is allocated */
    assert_int_equal(tal_aligner_create(&a, 0, 100), 0);
    assert_int_equal(tal_align(a, "ACDEFGHIKL", 10, "ACDEFGHIKLM", 11, &al), TAL_EMEMCAP);
    tal_aligner_free(a);
}

static void test_nucleotide(void **state)
{
    tal_aligner_t *a;
    tal_alignment_t al;
    const char *r = "ACGTACGTTTGACCAGTACGATCGATCGGATCAGCTAGCTAGGCTAGCATCGA";
    const char *m = "ACGTACGTTTGACCAGTACGATCGTTCGGATCAGCTAGCTAGGCTAGCATCGA";
    (void)state;
    assert_int_equal(tal_aligner_create(&a, 1, 0), 0);
    al = align_ok(a, m, strlen(m), r, strlen(r));
    assert_true(al.identical == strlen(m) - 1);
    tal_aligner_free(a);
}

static void test_random_pairs_lossless(void **state)
{
    tal_aligner_t *a;
    unsigned seed = 99;
    (void)state;
    assert_int_equal(tal_aligner_create(&a, 0, 0), 0);
    for (int k = 0; k < 200; k++) {
        size_t rl = 1 + (size_t)(rand_r(&seed) % 400), ml = 1 + (size_t)(rand_r(&seed) % 400);
        char *r = random_protein(rl, &seed), *m = random_protein(ml, &seed);
        /* half the pairs are related: the member is the reference with edits */
        if (k % 2 && ml > 10) {
            size_t n = ml < rl ? ml : rl;
            memcpy(m, r, n);
            for (int e = 0; e < 8; e++) m[rand_r(&seed) % ml] = AA[rand_r(&seed) % 20];
        }
        tal_alignment_t al = align_ok(a, m, ml, r, rl);
        assert_true(al.identity >= 0.0 && al.identity <= 1.0);
        assert_true(al.coverage >= al.identity && al.coverage <= 1.0);
        free(r);
        free(m);
    }
    tal_aligner_free(a);
}

/* A member derived from a reference with substitutions and small indels, at an
 * offset inside it; *shift receives the member's start in the reference. */
static char *mutate(const char *ref, size_t rlen, size_t *mlen, size_t *shift, unsigned *seed)
{
    size_t start = (size_t)(rand_r(seed) % 20), cap = rlen * 2 + 8, n = 0;
    char *m = malloc(cap);
    assert_non_null(m);
    *shift = start;
    for (size_t i = start; i < rlen - (size_t)(rand_r(seed) % 10) && n + 4 < cap; i++) {
        int roll = rand_r(seed) % 100;
        if (roll < 6)
            m[n++] = AA[rand_r(seed) % 20]; /* substitution */
        else if (roll < 7)
            continue;        /* deletion */
        else if (roll < 8) { /* insertion */
            m[n++] = AA[rand_r(seed) % 20];
            m[n++] = ref[i];
        } else
            m[n++] = ref[i];
    }
    *mlen = n;
    return m;
}

/* The banded path finds the full DP's alignment (or one as good for identity and
 * coverage, within 0.01) when the band covers the member's diagonals; a band that is
 * far too narrow still gives a lossless delta (it falls back or stays exact). */
static void test_band_agrees_with_full(void **state)
{
    (void)state;
    tal_aligner_t *a;
    unsigned seed = 4242;
    int compared = 0;
    assert_int_equal(tal_aligner_create(&a, 0, 0), 0);
    for (int k = 0; k < 300; k++) {
        size_t rlen = 50 + (size_t)(rand_r(&seed) % 500), mlen, shift;
        char *r = random_protein(rlen, &seed), *m = mutate(r, rlen, &mlen, &shift, &seed);
        tal_alignment_t full, band;
        double fi, fc;
        assert_int_equal(tal_align(a, m, mlen, r, rlen, &full), 0);
        fi = full.identity;
        fc = full.coverage;
        assert_int_equal(
            tal_align_band(a, m, mlen, r, rlen, (int64_t)shift - 24, (int64_t)shift + 24, &band),
            0);
        assert_true(fabs(band.identity - fi) <= 0.01);
        assert_true(fabs(band.coverage - fc) <= 0.01);
        /* a band of one diagonal, off by a lot: whatever it returns must be lossless
         * (tal_align_band checks its delta and fails with TAL_EIO otherwise) */
        assert_int_equal(
            tal_align_band(a, m, mlen, r, rlen, (int64_t)shift + 40, (int64_t)shift + 40, &band),
            0);
        assert_true(band.identity <= fi + 0.01);
        compared++;
        free(r);
        free(m);
    }
    assert_int_equal(compared, 300);
    tal_aligner_free(a);
}

/* ---- an independent scorer for the banded aligner ----
 * The score of the alignment a delta describes (aligned columns by the matrix, each run
 * of INS, or of SKIP neither first nor last, a gap of open + (n - 1) x extend: the
 * reference's head and tail are free; parasail's path may end with one), and the best score over the diagonals [dlo, dhi] by a
 * plain full-matrix Gotoh recurrence. The band code must find that best exactly. */
typedef int (*pair_score_t)(char m, char r);

static int blosum(char m, char r)
{
    return parasail_blosum62
        .matrix[parasail_blosum62.mapper[(unsigned char)m] * parasail_blosum62.size +
                parasail_blosum62.mapper[(unsigned char)r]];
}

static int dna(char m, char r) { return m == r ? 2 : -3; }

static uint64_t varint(const uint8_t *p, size_t *at)
{
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        uint8_t b = p[(*at)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
}

static long delta_score(const tal_alignment_t *al, const char *m, const char *r, pair_score_t s,
                        int open, int ext)
{
    size_t at = 0, mi = 0, ri = 0;
    long score = 0;
    int first = 1;
    while (at < al->delta_len) {
        uint64_t v = varint(al->delta, &at), n = v >> 2;
        int op = (int)(v & 3);
        if (op == TAL_DELTA_COPY || op == TAL_DELTA_SUB) {
            for (uint64_t x = 0; x < n; x++) score += s(m[mi + x], r[ri + x]);
            mi += n;
            ri += n;
            if (op == TAL_DELTA_SUB) at += n;
        } else if (op == TAL_DELTA_INS) {
            score -= open + (long)(n - 1) * ext;
            mi += n;
            at += n;
        } else {
            if (!first && at < al->delta_len) score -= open + (long)(n - 1) * ext;
            ri += n;
        }
        first = 0;
    }
    return score;
}

#define ORACLE_NEG (-(1L << 40))

static long best_in_band(const char *m, long ml, const char *r, long rl, long dlo, long dhi,
                         pair_score_t s, int open, int ext)
{
    long *H = malloc((size_t)((ml + 1) * (rl + 1)) * sizeof *H),
         *E = malloc((size_t)((ml + 1) * (rl + 1)) * sizeof *E),
         *F = malloc((size_t)((ml + 1) * (rl + 1)) * sizeof *F), best = ORACLE_NEG;
#define AT(i, j) ((i) * (rl + 1) + (j))
    for (long i = 0; i <= ml; i++)
        for (long j = 0; j <= rl; j++) {
            long h = ORACLE_NEG, e = ORACLE_NEG, f = ORACLE_NEG;
            if (j - i >= dlo && j - i <= dhi) {
                if (i == 0) {
                    h = 0;
                } else {
                    if (j > 0) {
                        long o = H[AT(i, j - 1)] - open, x = E[AT(i, j - 1)] - ext;
                        e = o > x ? o : x;
                    }
                    {
                        long o = H[AT(i - 1, j)] - open, x = F[AT(i - 1, j)] - ext;
                        f = o > x ? o : x;
                    }
                    if (j > 0 && H[AT(i - 1, j - 1)] > ORACLE_NEG / 2)
                        h = H[AT(i - 1, j - 1)] + s(m[i - 1], r[j - 1]);
                    if (e > h) h = e;
                    if (f > h) h = f;
                }
            }
            H[AT(i, j)] = h < ORACLE_NEG ? ORACLE_NEG : h;
            E[AT(i, j)] = e < ORACLE_NEG ? ORACLE_NEG : e;
            F[AT(i, j)] = f < ORACLE_NEG ? ORACLE_NEG : f;
        }
    for (long j = 0; j <= rl; j++)
        if (H[AT(ml, j)] > best) best = H[AT(ml, j)];
#undef AT
    free(H);
    free(E);
    free(F);
    return best;
}

/* The band's alignment scores exactly the best of the whole matrix when its band is the
 * whole matrix, and at least the best of its band otherwise (it may fall back to a wider
 * one): for widths that are and are not multiples of the vector, bands that reach the
 * reference's head (j == 0) or end, members longer than their reference, both
 * alphabets. */
static void test_band_scores_exactly(void **state)
{
    static const char NT[] = "ACGT";
    unsigned seed = 99;
    int checked = 0;
    (void)state;
    for (int nt = 0; nt <= 1; nt++) {
        tal_aligner_t *a;
        pair_score_t s = nt ? dna : blosum;
        int open = nt ? 5 : 11, ext = nt ? 2 : 1;
        assert_int_equal(tal_aligner_create(&a, nt, 0), 0);
        for (int k = 0; k < 1500; k++) {
            long rl = 1 + rand_r(&seed) % 70, ml = 1 + rand_r(&seed) % 70;
            char *r = malloc((size_t)rl), *m = malloc((size_t)ml);
            long off = rand_r(&seed) % 9 - 4, width = rand_r(&seed) % 10, dlo, dhi;
            tal_alignment_t al;
            /* the member: the reference from off on, with substitutions, insertions and
             * deletions of 1-6 residues (gaps across vector lanes), then random residues */
            for (long x = 0; x < rl; x++)
                r[x] = nt ? NT[rand_r(&seed) % 4] : AA[rand_r(&seed) % 20];
            for (long x = 0, y = off; x < ml;) {
                int ev = rand_r(&seed) % 10, n = 1 + rand_r(&seed) % 6;
                if (ev == 0) {
                    y += n; /* deleted from the member */
                } else if (y < 0 || y >= rl || ev <= 2) {
                    for (; n > 0 && x < ml; n--) /* inserted, or a substitution */
                        m[x++] = nt ? NT[rand_r(&seed) % 4] : AA[rand_r(&seed) % 20];
                    y += ev == 2;
                } else {
                    m[x++] = r[y++];
                }
            }
            assert_int_equal(tal_align_band(a, m, (size_t)ml, r, (size_t)rl, -ml, rl, &al), 0);
            assert_int_equal(delta_score(&al, m, r, s, open, ext),
                             best_in_band(m, ml, r, rl, -ml, rl, s, open, ext));
            dlo = off - width / 2;
            dhi = dlo + width;
            if (tal_align_band(a, m, (size_t)ml, r, (size_t)rl, dlo, dhi, &al) == 0) {
                long band = best_in_band(m, ml, r, rl, dlo, dhi, s, open, ext);
                if (band > ORACLE_NEG / 2)
                    assert_true(delta_score(&al, m, r, s, open, ext) >= band);
                checked++;
            }
            free(r);
            free(m);
        }
        tal_aligner_free(a);
    }
    assert_true(checked > 2500);
}

/* A band's traceback through checkpoints (a tiny trace limit) gives the alignment the
 * whole traceback gives, to the byte: blocks of 1, 2, 3 and 7 rows (a last block shorter
 * than the others), of the whole member and longer, and the chosen size; whole-matrix
 * and narrow bands (which retry wider or fall back), both alphabets. */
static void test_checkpoints_same_alignment(void **state)
{
    static const char NT[] = "ACGT";
    static const size_t blocks[] = {1, 2, 3, 7, 0, 1000};
    unsigned seed = 7;
    int compared = 0;
    (void)state;
    for (int nt = 0; nt <= 1; nt++) {
        tal_aligner_t *a, *c;
        assert_int_equal(tal_aligner_create(&a, nt, 0), 0);
        assert_int_equal(tal_aligner_create(&c, nt, 0), 0);
        for (int k = 0; k < 1200; k++) {
            long rl = 1 + rand_r(&seed) % 300, ml = 1 + rand_r(&seed) % 200;
            long off = rand_r(&seed) % 21 - 10, width = rand_r(&seed) % 40;
            long dlo = k % 3 ? off - width / 2 : -ml, dhi = k % 3 ? dlo + width : rl;
            char *r = malloc((size_t)rl), *m = malloc((size_t)ml);
            size_t block = blocks[k % 6];
            tal_alignment_t whole, ckpt;
            uint8_t *delta;
            int rc;
            for (long x = 0; x < rl; x++)
                r[x] = nt ? NT[rand_r(&seed) % 4] : AA[rand_r(&seed) % 20];
            for (long x = 0, y = off; x < ml;) {
                int ev = rand_r(&seed) % 12, n = 1 + rand_r(&seed) % 6;
                if (ev == 0)
                    y += n;
                else if (y < 0 || y >= rl || ev <= 2)
                    for (y += ev == 2; n > 0 && x < ml; n--)
                        m[x++] = nt ? NT[rand_r(&seed) % 4] : AA[rand_r(&seed) % 20];
                else
                    m[x++] = r[y++];
            }
            tal_aligner_set_trace_limit(c, 1, block == 1000 ? (size_t)ml + 5 : block);
            rc = tal_align_band(a, m, (size_t)ml, r, (size_t)rl, dlo, dhi, &whole);
            delta = malloc(whole.delta_len + 1);
            memcpy(delta, whole.delta, whole.delta_len);
            assert_int_equal(tal_align_band(c, m, (size_t)ml, r, (size_t)rl, dlo, dhi, &ckpt), rc);
            assert_int_equal(ckpt.delta_len, whole.delta_len);
            assert_memory_equal(ckpt.delta, delta, whole.delta_len);
            assert_int_equal(ckpt.identical, whole.identical);
            assert_int_equal(ckpt.aligned, whole.aligned);
            assert_true(ckpt.identity == whole.identity && ckpt.coverage == whole.coverage);
            assert_int_equal(ckpt.minus, whole.minus);
            compared += rc == 0;
            free(delta);
            free(r);
            free(m);
        }
        tal_aligner_free(a);
        tal_aligner_free(c);
    }
    assert_true(compared > 2000);
}

/* A pair over parasail's cells takes the band over the whole matrix: its buffers stay
 * within what tal_align_bytes reserves, and the traceback within a few MiB (one byte a
 * cell was up to 32 MiB), with the alignment of the full traceback; trimming frees
 * them. */
static void test_big_pair_within_reserve(void **state)
{
    static const size_t shapes[][2] = {{3000, 5000}, {900, 17000}, {4000, 4000}};
    const uint64_t cells = (uint64_t)1 << 24;
    unsigned seed = 11;
    (void)state;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        size_t ml = shapes[s][0], rl = shapes[s][1], shift;
        char *r = random_protein(rl, &seed), *m = mutate(r, rl, &ml, &shift, &seed);
        tal_aligner_t *a, *full;
        tal_alignment_t al, ref;
        size_t held;
        if (ml > shapes[s][0]) ml = shapes[s][0];
        assert_int_equal(tal_aligner_create(&a, 0, cells), 0);
        assert_int_equal(tal_aligner_create(&full, 0, cells), 0);
        tal_aligner_set_trace_limit(full, SIZE_MAX, 0);
        assert_int_equal(tal_align(a, m, ml, r, rl, &al), 0);
        held = tal_aligner_bytes(a);
        assert_true(held <= tal_align_bytes(ml, rl, cells));
        assert_true(held < ((size_t)6 << 20));
        assert_int_equal(tal_align(full, m, ml, r, rl, &ref), 0);
        assert_true(tal_aligner_bytes(full) > ml * rl);
        assert_int_equal(al.delta_len, ref.delta_len);
        assert_memory_equal(al.delta, ref.delta, al.delta_len);
        assert_int_equal(al.identical, ref.identical);
        /* the checkpoints go with the rest of a big pair's buffers */
        tal_aligner_trim(a, (size_t)256 << 10);
        assert_true(tal_aligner_bytes(a) < ((size_t)1 << 20));
        tal_aligner_free(a);
        tal_aligner_free(full);
        free(r);
        free(m);
    }
}

/* What an alignment reserves grows with the lengths, which the plan takes from a store's
 * meta section: past 2^32 residues the products once wrapped around to small figures. */
static void test_align_bytes_saturate(void **state)
{
    const uint64_t cells = (uint64_t)1 << 24;
    uint64_t last = 0;
    (void)state;
    for (unsigned bits = 0; bits < 64; bits++) {
        uint64_t len = (uint64_t)1 << bits, need = tal_align_bytes(len, len, cells);
        assert_true(need >= last);
        last = need;
    }
    assert_true(tal_align_bytes(SIZE_MAX, SIZE_MAX, cells) == UINT64_MAX);
    assert_true(tal_align_bytes(SIZE_MAX, 0, cells) == UINT64_MAX);
    /* a small pair: the band's rows and traceback (one byte a cell of the widest band),
     * parasail's traceback at 17/4 bytes a cell, and 128 bytes a residue */
    assert_true(tal_align_bytes(100, 200, cells) ==
                36 * 311 + 100 * 301 + 4 + 20000 * 17 / 4 + 300 * 128 + (1u << 20));
}

static void test_apply_rejects_malformed(void **state)
{
    char out[16];
    const char *ref = "ACDEFGHIKL";
    (void)state;
    /* COPY 4 */
    uint8_t ok[] = {4 << 2 | TAL_DELTA_COPY};
    assert_int_equal(tal_delta_apply(ok, 1, ref, 10, out, 4), 0);
    assert_memory_equal(out, "ACDE", 4);
    assert_int_equal(tal_delta_apply(ok, 1, ref, 10, out, 5), TAL_EINPUT); /* too short */
    assert_int_equal(tal_delta_apply(ok, 1, ref, 10, out, 3), TAL_EINPUT); /* too long */
    uint8_t past_ref[] = {11 << 2 | TAL_DELTA_COPY};
    assert_int_equal(tal_delta_apply(past_ref, 1, ref, 10, out, 11), TAL_EINPUT);
    uint8_t zero[] = {0 << 2 | TAL_DELTA_INS};
    assert_int_equal(tal_delta_apply(zero, 1, ref, 10, out, 0), TAL_EINPUT);
    uint8_t short_lit[] = {3 << 2 | TAL_DELTA_INS, 'A', 'B'};
    assert_int_equal(tal_delta_apply(short_lit, 3, ref, 10, out, 3), TAL_EINPUT);
    uint8_t open_varint[] = {0x80, 0x80};
    assert_int_equal(tal_delta_apply(open_varint, 2, ref, 10, out, 0), TAL_EINPUT);
    uint8_t skip_past[] = {11 << 2 | TAL_DELTA_SKIP};
    assert_int_equal(tal_delta_apply(skip_past, 1, ref, 10, out, 0), TAL_EINPUT);
    uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    assert_int_equal(tal_delta_apply(huge, sizeof huge, ref, 10, out, 4), TAL_EINPUT);
    /* SKIP 2, SUB 1 'W', INS 2 "YY", COPY 3 */
    uint8_t mix[] = {
        2 << 2 | TAL_DELTA_SKIP, 1 << 2 | TAL_DELTA_SUB, 'W', 2 << 2 | TAL_DELTA_INS, 'Y', 'Y',
        3 << 2 | TAL_DELTA_COPY};
    assert_int_equal(tal_delta_apply(mix, sizeof mix, ref, 10, out, 6), 0);
    assert_memory_equal(out, "WYYEFG", 6);
}

static void test_apply_random_bytes_never_overrun(void **state)
{
    unsigned seed = 7;
    char out[64];
    (void)state;
    for (int k = 0; k < 20000; k++) {
        uint8_t d[24];
        size_t n = (size_t)(rand_r(&seed) % sizeof d), want = (size_t)(rand_r(&seed) % 64);
        for (size_t i = 0; i < n; i++) d[i] = (uint8_t)rand_r(&seed);
        int rc = tal_delta_apply(d, n, "ACDEFGHIKLMNPQRSTVWY", 20, out, want);
        assert_true(rc == 0 || rc == TAL_EINPUT);
    }
}

/* The reverse complement: IUPAC pairs, case kept, other bytes as they are; A to U only
 * in a sequence with U's and no T's; twice gives a DNA sequence back. */
static void test_revcomp(void **state)
{
    char out[64], back[64];
    (void)state;
    tal_revcomp("ACGTRYKMBVDHNSW-acgtn*", 22, out);
    assert_memory_equal(out, "*nacgt-WSNDHBVKMRYACGT", 22);
    tal_revcomp("AACGU", 5, out);
    assert_memory_equal(out, "ACGUU", 5);
    tal_revcomp("AACGUT", 6, out); /* U and T: A to T */
    assert_memory_equal(out, "AACGTT", 6);
    tal_revcomp("GATTACAgattaca", 14, out);
    tal_revcomp(out, 14, back);
    assert_memory_equal(back, "GATTACAgattaca", 14);
    tal_revcomp("", 0, out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identical),
        cmocka_unit_test(test_member_inside_longer_reference),
        cmocka_unit_test(test_substitutions_give_identity),
        cmocka_unit_test(test_insertion_lowers_coverage),
        cmocka_unit_test(test_lossless_on_odd_bytes),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_nucleotide),
        cmocka_unit_test(test_random_pairs_lossless),
        cmocka_unit_test(test_band_agrees_with_full),
        cmocka_unit_test(test_band_scores_exactly),
        cmocka_unit_test(test_checkpoints_same_alignment),
        cmocka_unit_test(test_big_pair_within_reserve),
        cmocka_unit_test(test_align_bytes_saturate),
        cmocka_unit_test(test_apply_rejects_malformed),
        cmocka_unit_test(test_apply_random_bytes_never_overrun),
        cmocka_unit_test(test_revcomp),
    };
    return cmocka_run_group_tests_name("delta", tests, NULL, NULL);
}
