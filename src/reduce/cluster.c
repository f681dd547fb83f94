/* Reference selection, linear in the input apart from the sorts (as MMseqs2 Linclust):
 * 1. exact duplicates join the first copy (identity 1);
 * 2. each sequence contributes its sketch's k-mer hashes as (hash, id) tuples, sorted;
 * 3. inside a group of equal hashes, a sequence is linked to the few longest sequences
 *    longer than itself (Linclust keeps only the longest one; more links recover much
 *    of the gap to CD-HIT); links are ranked by how many k-mers the pair shares;
 * 4. longest first, a sequence aligns against the references of its candidates in rank
 *    order and joins the first that passes both thresholds, else becomes a reference.
 * Since candidates are longer, they are decided before the sequences linked to them. */
#define _GNU_SOURCE
#include "cluster_internal.h"
#include "delta_internal.h"
#include "talaria/error.h"

#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

typedef struct {
    uint64_t hash;
    uint32_t id;
    uint32_t pad;
} tuple_t;

typedef struct {
    uint32_t member, candidate;
} link_t;

typedef struct {
    uint32_t shared, candidate; /* k-mers the pair shares */
} ranked_t;

/* Sort orders (qsort_r, the lengths as context); lengths and ids break ties so the
 * result never depends on the sort. */
static int by_hash(const void *a, const void *b, void *arg)
{
    const tuple_t *x = a, *y = b;
    const uint64_t *sort_lens = arg;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    if (sort_lens[x->id] != sort_lens[y->id]) return sort_lens[x->id] > sort_lens[y->id] ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int by_link(const void *a, const void *b, void *arg)
{
    (void)arg;
    const link_t *x = a, *y = b;
    if (x->member != y->member) return x->member < y->member ? -1 : 1;
    return x->candidate < y->candidate ? -1 : x->candidate > y->candidate;
}

static int by_length_desc(const void *a, const void *b, void *arg)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    const uint64_t *sort_lens = arg;
    if (sort_lens[x] != sort_lens[y]) return sort_lens[x] > sort_lens[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* The reference a sequence ends at: members point at references, copies at the copy
 * they duplicate, which may itself have joined a reference since. */
static uint32_t root_of(const uint32_t *ref, uint32_t i)
{
    while (ref[i] != i) i = ref[i];
    return i;
}

/* CD-HIT's short-word filter: a member at identity I has at most (1 - I) x L
 * mismatched residues, and each destroys at most WORD words, so a pair sharing fewer
 * than (L - WORD + 1) - WORD x (1 - I) x L words cannot pass; it is rejected in
 * microseconds instead of a DP alignment. Exact residues, 20 letters (or 4 bases). */
#define WORD 4
#define WORD_SPACE (20 * 20 * 20 * 20)

typedef struct {
    uint16_t *count; /* WORD_SPACE entries, zero between calls */
    signed char code[256];
} word_filter_t;

static int word_filter_init(word_filter_t *wf, int nucleotide)
{
    const char *letters = nucleotide ? "ACGT" : "ACDEFGHIKLMNPQRSTVWY";
    memset(wf->code, -1, sizeof wf->code);
    for (int i = 0; letters[i]; i++) {
        wf->code[(unsigned char)letters[i]] = (signed char)i;
        wf->code[(unsigned char)(letters[i] + 32)] = (signed char)i;
    }
    wf->count = calloc(WORD_SPACE, sizeof *wf->count);
    return wf->count ? 0 : TAL_ENOMEM;
}

/* Calls fn for each word of seq (words across a non-residue are skipped). */
#define FOR_EACH_WORD(wf, seq, len, w, body)                                                \
    do {                                                                                   \
        uint32_t w = 0, run_ = 0;                                                          \
        for (size_t i_ = 0; i_ < (len); i_++) {                                            \
            int c_ = (wf)->code[(unsigned char)(seq)[i_]];                                 \
            if (c_ < 0) {                                                                  \
                run_ = 0;                                                                  \
                w = 0;                                                                     \
                continue;                                                                  \
            }                                                                              \
            w = (w * 20 + (uint32_t)c_) % WORD_SPACE;                                      \
            if (++run_ >= WORD) { body; }                                                  \
        }                                                                                  \
    } while (0)

/* 1 if the pair may reach the identity, 0 if it cannot. */
static int may_pass(word_filter_t *wf, const char *m, size_t ml, const char *r, size_t rl,
                    double identity)
{
    double need = (double)ml - WORD + 1 - WORD * (1.0 - identity) * (double)ml;
    uint64_t shared = 0;
    if (need <= 0 || ml < WORD || rl < WORD) return 1;
    FOR_EACH_WORD(wf, r, rl, w, { if (wf->count[w] < UINT16_MAX) wf->count[w]++; });
    FOR_EACH_WORD(wf, m, ml, w, {
        if (wf->count[w]) {
            wf->count[w]--;
            shared++;
        }
    });
    FOR_EACH_WORD(wf, r, rl, w, wf->count[w] = 0);
    return (double)shared >= need;
}

void tal_cluster_opt_init(tal_cluster_opt_t *opt, int nucleotide)
{
    memset(opt, 0, sizeof *opt);
    opt->identity = 0.9;
    opt->coverage = 0.8;
    opt->nucleotide = nucleotide;
    opt->per_group = 3;
    opt->candidates = 8;
    tal_sketch_opt_init(&opt->sketch, nucleotide);
}

void tal_cluster_free(tal_cluster_t *c)
{
    if (!c) return;
    free(c->ref);
    free(c->identity);
    free(c->coverage);
    memset(c, 0, sizeof *c);
}

/* Exact duplicates: sorted by content hash, equal bytes join the lowest id. */
static int mark_duplicates(uint64_t n, const char *const *seqs, const uint64_t *lens,
                           tal_cluster_t *out)
{
    tuple_t *t;
    if (n == 0) return 0;
    if (!(t = malloc((size_t)n * sizeof *t))) return TAL_ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
        t[i].hash = XXH3_64bits(seqs[i], (size_t)lens[i]);
        t[i].id = (uint32_t)i;
    }
    if (n) qsort_r(t, (size_t)n, sizeof *t, by_hash, (void *)lens);
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i + 1;
        while (j < n && t[j].hash == t[i].hash) j++;
        for (uint64_t a = i + 1; a < j; a++) {
            /* the first earlier copy with the same bytes (hash collisions are checked) */
            for (uint64_t b = i; b < a; b++) {
                uint32_t x = t[a].id, y = t[b].id, first = x < y ? x : y, other = x < y ? y : x;
                if (out->ref[t[b].id] != t[b].id || lens[x] != lens[y] ||
                    memcmp(seqs[x], seqs[y], (size_t)lens[x]))
                    continue;
                out->ref[other] = first;
                out->ref[first] = first;
                out->identity[other] = out->coverage[other] = 1.0f;
                break;
            }
        }
        i = j;
    }
    free(t);
    /* a chain (c joined b, then b joined a) points at the root */
    for (uint64_t i = 0; i < n; i++)
        while (out->ref[out->ref[i]] != out->ref[i]) out->ref[i] = out->ref[out->ref[i]];
    for (uint64_t i = 0; i < n; i++) out->duplicates += out->ref[i] != i;
    return 0;
}

int tal_cluster_run(const tal_cluster_opt_t *opt, uint64_t n, const char *const *seqs,
                    const uint64_t *lens, tal_cluster_t *out)
{
    tuple_t *tuples = NULL;
    link_t *links = NULL;
    uint32_t *order = NULL, *cand_start = NULL, *cand = NULL, *tried = NULL;
    uint64_t *sketch = NULL, n_tuples = 0, n_links = 0, links_cap = 0;
    tal_aligner_t *aligner = NULL;
    word_filter_t wf = {NULL, {0}};
    int rc;
    memset(out, 0, sizeof *out);
    if (n > UINT32_MAX - 1) return TAL_EUSAGE;
    out->n = n;
    out->ref = malloc(((size_t)n + 1) * sizeof *out->ref);
    out->identity = calloc((size_t)n + 1, sizeof *out->identity);
    out->coverage = calloc((size_t)n + 1, sizeof *out->coverage);
    sketch = malloc((size_t)opt->sketch.m * sizeof *sketch);
    if (!out->ref || !out->identity || !out->coverage || !sketch) goto nomem;
    for (uint64_t i = 0; i < n; i++) out->ref[i] = (uint32_t)i;
    if ((rc = mark_duplicates(n, seqs, lens, out)) < 0) goto fail;

    /* sketches of the distinct sequences */
    tuples = malloc((size_t)n * (size_t)opt->sketch.m * sizeof *tuples + 1);
    if (!tuples) goto nomem;
    for (uint64_t i = 0; i < n; i++) {
        size_t k;
        if (out->ref[i] != i) continue;
        k = tal_sketch(&opt->sketch, seqs[i], (size_t)lens[i], sketch);
        for (size_t j = 0; j < k; j++) tuples[n_tuples++] = (tuple_t){sketch[j], (uint32_t)i, 0};
    }
    if (n_tuples) qsort_r(tuples, (size_t)n_tuples, sizeof *tuples, by_hash, (void *)lens); /* in a group: longest first */

    /* links to the longest few of each group that are longer than (or before) a member */
    for (uint64_t i = 0; i < n_tuples;) {
        uint64_t j = i + 1;
        while (j < n_tuples && tuples[j].hash == tuples[i].hash) j++;
        for (uint64_t a = i + 1; a < j; a++) {
            uint64_t limit = a - i < (uint64_t)opt->per_group ? a - i : (uint64_t)opt->per_group;
            for (uint64_t b = i; b < i + limit; b++) {
                if (n_links == links_cap) {
                    uint64_t cap = links_cap ? links_cap * 2 : 1024;
                    link_t *p = realloc(links, (size_t)cap * sizeof *p);
                    if (!p) goto nomem;
                    links = p;
                    links_cap = cap;
                }
                links[n_links++] = (link_t){tuples[a].id, tuples[b].id};
            }
        }
        i = j;
    }
    free(tuples);
    tuples = NULL;

    /* per member: distinct candidates ranked by shared k-mers, the best few kept */
    if (n_links) qsort_r(links, (size_t)n_links, sizeof *links, by_link, NULL);
    cand_start = calloc((size_t)n + 1, sizeof *cand_start);
    cand = malloc((size_t)n * (size_t)opt->candidates * sizeof *cand + 1);
    if (!cand_start || !cand) goto nomem;
    {
        uint64_t w = 0, scratch_cap = 64;
        ranked_t *scratch = malloc((size_t)scratch_cap * sizeof *scratch);
        if (!scratch) goto nomem;
        for (uint64_t i = 0, member = 0; member < n; member++) {
            uint64_t distinct = 0;
            cand_start[member] = (uint32_t)w;
            while (i < n_links && links[i].member == member) {
                uint64_t j = i + 1;
                while (j < n_links && links[j].member == member &&
                       links[j].candidate == links[i].candidate)
                    j++;
                if (distinct == scratch_cap) {
                    ranked_t *p = realloc(scratch, (size_t)(scratch_cap * 2) * sizeof *p);
                    if (!p) {
                        free(scratch);
                        goto nomem;
                    }
                    scratch = p;
                    scratch_cap *= 2;
                }
                scratch[distinct++] = (ranked_t){(uint32_t)(j - i), links[i].candidate};
                i = j;
            }
            /* most shared k-mers first; ties: the earlier candidate id */
            for (uint64_t a = 1; a < distinct; a++) {
                ranked_t x = scratch[a];
                uint64_t b = a;
                while (b > 0 && (scratch[b - 1].shared < x.shared ||
                                 (scratch[b - 1].shared == x.shared &&
                                  scratch[b - 1].candidate > x.candidate))) {
                    scratch[b] = scratch[b - 1];
                    b--;
                }
                scratch[b] = x;
            }
            for (uint64_t a = 0; a < distinct && a < (uint64_t)opt->candidates; a++)
                cand[w++] = scratch[a].candidate;
        }
        cand_start[n] = (uint32_t)w;
        free(scratch);
    }
    free(links);
    links = NULL;

    /* greedy, longest first */
    order = malloc((size_t)n * sizeof *order + 1);
    tried = malloc((size_t)(opt->candidates > 0 ? opt->candidates : 1) * sizeof *tried);
    if (!order || !tried) goto nomem;
    for (uint64_t i = 0; i < n; i++) order[i] = (uint32_t)i;
    if (n) qsort_r(order, (size_t)n, sizeof *order, by_length_desc, (void *)lens);
    if ((rc = tal_aligner_create(&aligner, opt->nucleotide, 0)) < 0) goto fail;
    if ((rc = word_filter_init(&wf, opt->nucleotide)) < 0) goto fail;
    for (uint64_t o = 0; o < n; o++) {
        uint32_t s = order[o];
        int n_tried = 0;
        if (out->ref[s] != s) continue; /* an exact duplicate */
        for (uint32_t c = cand_start[s]; c < cand_start[s + 1]; c++) {
            uint32_t r = root_of(out->ref, cand[c]);
            tal_alignment_t al;
            int seen = 0;
            for (int q = 0; q < n_tried; q++) seen |= tried[q] == r;
            if (seen || r == s) continue;
            tried[n_tried++] = r;
            if (!may_pass(&wf, seqs[s], (size_t)lens[s], seqs[r], (size_t)lens[r], opt->identity)) {
                out->filtered++;
                continue;
            }
            rc = tal_align(aligner, seqs[s], (size_t)lens[s], seqs[r], (size_t)lens[r], &al);
            if (rc == TAL_EMEMCAP) continue; /* too big to align here: not this one */
            if (rc < 0) goto fail;
            out->alignments++;
            if (al.identity + 1e-9 >= opt->identity && al.coverage + 1e-9 >= opt->coverage) {
                out->ref[s] = r;
                out->identity[s] = (float)al.identity;
                out->coverage[s] = (float)al.coverage;
                break;
            }
        }
    }
    /* copies of a sequence that joined a reference join it too, at the same identity */
    for (uint64_t i = 0; i < n; i++) {
        uint32_t root = out->ref[i], r;
        if (root == i || out->identity[i] != 1.0f || (r = root_of(out->ref, root)) == root) continue;
        out->ref[i] = r;
        out->identity[i] = out->identity[root];
        out->coverage[i] = out->coverage[root];
    }
    for (uint64_t i = 0; i < n; i++) out->references += out->ref[i] == i;
    rc = 0;
    goto done;
nomem:
    rc = TAL_ENOMEM;
fail:
    tal_cluster_free(out);
done:
    tal_aligner_free(aligner);
    free(wf.count);
    free(tuples);
    free(links);
    free(order);
    free(cand_start);
    free(cand);
    free(tried);
    free(sketch);
    return rc;
}
