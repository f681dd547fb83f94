/* Member-to-reference alignment through parasail, and the delta that follows from it.
 * The member is aligned end to end and may sit anywhere in a longer reference
 * (semi-global, reference end gaps free), so identity and coverage are over the
 * member's length as in CD-HIT. The delta compares bytes, not matrix letters, so case
 * and characters outside the matrix survive: it is checked by applying it before it is
 * handed out. */
#include "delta_internal.h"
#include "talaria/error.h"

#include <limits.h>
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
};

int tal_aligner_create(tal_aligner_t **out, int nucleotide, uint64_t max_cells)
{
    tal_aligner_t *a = calloc(1, sizeof *a);
    *out = NULL;
    if (!a) return TAL_ENOMEM;
    if (nucleotide) {
        a->owned = parasail_matrix_create("ACGTUN", 2, -3);
        if (!a->owned) {
            free(a);
            return TAL_ENOMEM;
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
    *out = a;
    return 0;
}

void tal_aligner_free(tal_aligner_t *a)
{
    if (!a) return;
    if (a->owned) parasail_matrix_free(a->owned);
    free(a->delta);
    free(a->check);
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

/* A run of aligned columns becomes COPY and SUB operations by comparing bytes. */
static int emit_aligned(tal_aligner_t *a, const char *m, const char *r, uint64_t n,
                        uint64_t *identical)
{
    uint64_t i = 0;
    int rc;
    while (i < n) {
        uint64_t j = i;
        if (m[i] == r[i]) {
            while (j < n && m[j] == r[j]) j++;
            *identical += j - i;
            rc = emit(a, TAL_DELTA_COPY, j - i, NULL);
        } else {
            while (j < n && m[j] != r[j]) j++;
            rc = emit(a, TAL_DELTA_SUB, j - i, m + i);
        }
        if (rc < 0) return rc;
        i = j;
    }
    return 0;
}

int tal_align(tal_aligner_t *a, const char *member, size_t member_len, const char *ref,
              size_t ref_len, tal_alignment_t *out)
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
    if (member_len && ref_len) {
        res = parasail_sg_dx_trace_striped_sat(member, (int)member_len, ref, (int)ref_len, a->open,
                                               a->extend, a->matrix);
        if (!res) return TAL_ENOMEM;
        cigar = parasail_result_get_cigar(res, member, (int)member_len, ref, (int)ref_len, a->matrix);
        if (!cigar) {
            parasail_result_free(res);
            return TAL_ENOMEM;
        }
        mpos = cigar->beg_query > 0 ? (uint64_t)cigar->beg_query : 0;
        rpos = cigar->beg_ref > 0 ? (uint64_t)cigar->beg_ref : 0;
        if (rpos > ref_len) rpos = ref_len;
        if (mpos > member_len) mpos = member_len;
        /* the member's unaligned head is inserted, the reference's head skipped */
        if ((rc = emit(a, TAL_DELTA_SKIP, rpos, NULL)) < 0) goto out;
        if ((rc = emit(a, TAL_DELTA_INS, mpos, member)) < 0) goto out;
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
    if (rc < 0) goto out;
    /* lose nothing: the delta must give the member back byte for byte */
    if (member_len > a->check_cap) {
        char *p = realloc(a->check, member_len);
        if (!p) {
            rc = TAL_ENOMEM;
            goto out;
        }
        a->check = p;
        a->check_cap = member_len;
    }
    if (tal_delta_apply(a->delta, a->delta_len, ref, ref_len, a->check, member_len) < 0 ||
        (member_len && memcmp(a->check, member, member_len))) {
        rc = TAL_EIO; /* a bug here, never a silent loss */
        goto out;
    }
    out->identical = identical;
    out->aligned = aligned;
    out->identity = member_len ? (double)identical / (double)member_len : 0.0;
    out->coverage = member_len ? (double)aligned / (double)member_len : 0.0;
    out->delta = a->delta;
    out->delta_len = a->delta_len;
out:
    if (cigar) parasail_cigar_free(cigar);
    if (res) parasail_result_free(res);
    return rc;
}
