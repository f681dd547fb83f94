/* Length statistics by radix-sorting a copy of the lengths (one 16-bit pass for
 * proteins), and a streaming pass for FASTA input. */
#include "talaria/seqstats.h"
#include "talaria/error.h"
#include "talaria/fasta.h"
#include "talaria/store.h"
#include "talaria/util.h"

#include <stdlib.h>
#include <string.h>

static int radix_sort(uint64_t *v, uint64_t n, uint64_t max)
{
    enum { BITS = 16, BUCKETS = 1 << BITS };
    uint64_t *tmp = malloc(n * sizeof *tmp), *src = v, *dst = tmp;
    size_t *count = malloc(BUCKETS * sizeof *count);
    if (!tmp || !count) {
        free(tmp);
        free(count);
        return TAL_ENOMEM;
    }
    for (int shift = 0; shift < 64 && (shift == 0 || (max >> shift)); shift += BITS) {
        size_t sum = 0;
        uint64_t *t;
        memset(count, 0, BUCKETS * sizeof *count);
        for (uint64_t i = 0; i < n; i++) count[(src[i] >> shift) & (BUCKETS - 1)]++;
        for (size_t b = 0; b < BUCKETS; b++) {
            size_t c = count[b];
            count[b] = sum;
            sum += c;
        }
        for (uint64_t i = 0; i < n; i++) dst[count[(src[i] >> shift) & (BUCKETS - 1)]++] = src[i];
        t = src;
        src = dst;
        dst = t;
    }
    if (src != v) memcpy(v, src, n * sizeof *v);
    free(tmp);
    free(count);
    return 0;
}

/* Median and N50 from a histogram of lengths: one pass, no copy of the array. Used
 * when the longest sequence is short enough for the histogram to stay small. */
static int stats_by_histogram(const uint64_t *lengths, uint64_t n, tal_seqstats_t *st)
{
    uint64_t *hist = calloc(st->max_length + 1, sizeof *hist);
    uint64_t seen = 0, cum = 0, lo_rank = (n - 1) / 2, hi_rank = n / 2;
    int have_lo = 0;
    if (!hist) return TAL_ENOMEM;
    for (uint64_t i = 0; i < n; i++) hist[lengths[i]]++;
    for (uint64_t len = 0; len <= st->max_length; len++) {
        uint64_t c = hist[len];
        if (!c) continue;
        if (!have_lo && seen + c > lo_rank) {
            st->median_length = (double)len;
            have_lo = 1;
        }
        if (seen + c > hi_rank) {
            st->median_length = (st->median_length + (double)len) / 2.0;
            break;
        }
        seen += c;
    }
    for (uint64_t len = st->max_length + 1; len-- > 0;) {
        cum += hist[len] * len; /* at most the total, which fits */
        if (hist[len] && cum >= st->residues - cum) {
            st->n50 = len;
            break;
        }
    }
    free(hist);
    return 0;
}

static int stats_by_sorting(const uint64_t *lengths, uint64_t n, tal_seqstats_t *st)
{
    uint64_t *sorted = malloc(n * sizeof *sorted), cum = 0;
    int rc;
    if (!sorted) return TAL_ENOMEM;
    memcpy(sorted, lengths, n * sizeof *sorted);
    if ((rc = radix_sort(sorted, n, st->max_length)) < 0) {
        free(sorted);
        return rc;
    }
    st->median_length =
        n % 2 ? (double)sorted[n / 2] : ((double)sorted[n / 2 - 1] + (double)sorted[n / 2]) / 2.0;
    for (uint64_t i = n; i-- > 0;) {
        cum += sorted[i];
        if (cum >= st->residues - cum) {
            st->n50 = sorted[i];
            break;
        }
    }
    free(sorted);
    return 0;
}

int tal_seqstats_from_lengths(const uint64_t *lengths, uint64_t n, tal_seqstats_t *st)
{
    uint64_t total = 0, max = 0, min = UINT64_MAX;
    st->records = n;
    st->residues = st->min_length = st->max_length = st->n50 = 0;
    st->mean_length = st->median_length = 0;
    if (n == 0) return 0;
    for (uint64_t i = 0; i < n; i++) {
        /* a store's lengths come from disk: a damaged one must not wrap the total around */
        if (__builtin_add_overflow(total, lengths[i], &total)) return TAL_EINPUT;
        if (lengths[i] > max) max = lengths[i];
        if (lengths[i] < min) min = lengths[i];
    }
    st->residues = total;
    st->min_length = min;
    st->max_length = max;
    st->mean_length = (double)total / (double)n;
    if (max < (n > (1u << 20) ? n : (1u << 20))) return stats_by_histogram(lengths, n, st);
    return stats_by_sorting(lengths, n, st);
}

int tal_seqstats_fasta(const char *path, int read_ahead, tal_seqstats_t *st)
{
    tal_fasta_reader_t *r = NULL;
    tal_fasta_opt_t opt;
    tal_fasta_record_t rec;
    uint64_t *lengths = NULL, n = 0, cap = 0;
    int rc;
    memset(st, 0, sizeof *st);
    tal_fasta_opt_init(&opt);
    opt.read_ahead = read_ahead;
    if ((rc = tal_fasta_open(&r, path, &opt)) < 0) return rc;
    while ((rc = tal_fasta_next(r, &rec)) > 0) {
        if (n == cap) {
            uint64_t *p;
            cap = cap ? cap * 2 : 65536;
            p = realloc(lengths, cap * sizeof *p);
            if (!p) {
                rc = TAL_ENOMEM;
                break;
            }
            lengths = p;
        }
        lengths[n++] = rec.seq_len;
        tal_count_bytes(st->composition, rec.seq, rec.seq_len);
    }
    tal_fasta_close(r);
    if (rc == 0) rc = tal_seqstats_from_lengths(lengths, n, st);
    free(lengths);
    if (rc < 0) return rc;
    st->alphabet = tal_guess_alphabet(st->composition, st->residues);
    return 0;
}

int tal_guess_alphabet(const uint64_t composition[256], uint64_t residues)
{
    static const char nt[] = "ACGTUNacgtun";
    uint64_t n = 0;
    for (const char *c = nt; *c; c++) n += composition[(unsigned char)*c];
    return residues && n * 10 >= residues * 9 ? TAL_ALPHABET_NUCLEOTIDE : TAL_ALPHABET_PROTEIN;
}

const char *tal_alphabet_name(int alphabet)
{
    return alphabet == TAL_ALPHABET_NUCLEOTIDE ? "nucleotide" : "protein";
}
