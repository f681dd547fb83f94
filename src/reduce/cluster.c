/* Reference selection, linear in the input apart from the sorts (as MMseqs2 Linclust):
 * 1. sequences are ranked longest first (ties: the earlier record); all later steps
 *    work on ranks, so "longer" is "smaller rank";
 * 2. exact duplicates join their first copy (identity 1);
 * 3. each other sequence contributes its sketch's k-mer hashes as (hash, rank) keys,
 *    sorted, so a group of equal hashes lists its sequences longest first;
 * 4. inside a group, a sequence is linked to the few longest sequences before it
 *    (Linclust keeps only the longest one; more links recover much of the gap to
 *    CD-HIT); links are ranked by how many k-mers the pair shares;
 * 5. by rank, a sequence aligns against the references of its candidates in rank order
 *    and joins the first that passes both thresholds, else becomes a reference. Its
 *    candidates have smaller ranks, so they are decided before it.
 * Before any alignment, CD-HIT's short-word filter rejects pairs that cannot reach the
 * identity, and the diagonals of the shared words give the band the alignment needs. */
#define _GNU_SOURCE
#include "cluster_internal.h"
#include "delta_internal.h"
#include "talaria/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#define NONE UINT32_MAX

/* ---- sorting 64-bit keys: in-place MSD radix sort, a byte per level ---- */

static void insertion_sort(uint64_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t x = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > x) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

static void radix_sort_level(uint64_t *a, size_t n, int shift)
{
    size_t count[256] = {0}, start[256], next[256];
    if (n <= 48) {
        insertion_sort(a, n);
        return;
    }
    for (size_t i = 0; i < n; i++) count[(a[i] >> shift) & 0xff]++;
    start[0] = 0;
    for (int b = 1; b < 256; b++) start[b] = start[b - 1] + count[b - 1];
    memcpy(next, start, sizeof next);
    /* American flag sort: each bucket is filled by swapping keys into place */
    for (int b = 0; b < 256; b++) {
        size_t end = start[b] + count[b];
        while (next[b] < end) {
            uint64_t x = a[next[b]];
            int d = (int)((x >> shift) & 0xff);
            while (d != b) {
                uint64_t y = a[next[d]];
                a[next[d]++] = x;
                x = y;
                d = (int)((x >> shift) & 0xff);
            }
            a[next[b]++] = x;
        }
    }
    if (shift == 0) return;
    for (int b = 0; b < 256; b++)
        if (count[b] > 1) radix_sort_level(a + start[b], count[b], shift - 8);
}

static void sort_keys(uint64_t *a, size_t n) { radix_sort_level(a, n, 56); }

/* ---- the short-word filter and the band ----
 * CD-HIT's filter: a member at identity I has at most (1 - I) x L mismatched residues,
 * and each destroys at most WORD words, so a pair sharing fewer than
 * (L - WORD + 1) - WORD x (1 - I) x L words cannot pass. Exact residues, 20 letters (or
 * 4 bases). The diagonals (reference position - member position) of the shared words
 * show where the member lies on the reference and how far indels shift it. */
#define WORD 4
#define WORD_SPACE (20 * 20 * 20 * 20)
#define BAND_PAD 8

typedef struct {
    uint16_t *count; /* WORD_SPACE entries, zero between calls */
    int32_t *pos;    /* WORD_SPACE entries: a reference position, -1 between calls */
    uint16_t *hist;  /* per diagonal */
    size_t hist_cap;
    signed char code[256];
} word_filter_t;

static int word_filter_init(word_filter_t *wf, int nucleotide)
{
    const char *letters = nucleotide ? "ACGT" : "ACDEFGHIKLMNPQRSTVWY";
    memset(wf, 0, sizeof *wf);
    memset(wf->code, -1, sizeof wf->code);
    for (int i = 0; letters[i]; i++) {
        wf->code[(unsigned char)letters[i]] = (signed char)i;
        wf->code[(unsigned char)(letters[i] + 32)] = (signed char)i;
    }
    wf->count = calloc(WORD_SPACE, sizeof *wf->count);
    wf->pos = malloc(WORD_SPACE * sizeof *wf->pos);
    if (!wf->count || !wf->pos) return TAL_ENOMEM;
    memset(wf->pos, 0xff, WORD_SPACE * sizeof *wf->pos);
    return 0;
}

static void word_filter_free(word_filter_t *wf)
{
    free(wf->count);
    free(wf->pos);
    free(wf->hist);
}

/* Runs body for each word w of seq ending at position i_ (words across a non-residue
 * are skipped). */
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

typedef struct {
    int banded;       /* 1: align in [dlo, dhi]; 0: no clear diagonal, align in full */
    int64_t dlo, dhi;
} band_t;

/* 1 if the pair may reach the identity (and the band to align it in), 0 if it cannot,
 * TAL_ENOMEM. */
static int prefilter(word_filter_t *wf, const char *m, size_t ml, const char *r, size_t rl,
                     double identity, band_t *band)
{
    double need = (double)ml - WORD + 1 - WORD * (1.0 - identity) * (double)ml;
    uint64_t shared = 0;
    size_t diagonals = ml + rl + 1, best = 0;
    band->banded = 0;
    if (ml < WORD || rl < WORD) return 1;
    if (diagonals > wf->hist_cap) {
        uint16_t *p = realloc(wf->hist, diagonals * sizeof *p);
        if (!p) return TAL_ENOMEM;
        wf->hist = p;
        wf->hist_cap = diagonals;
    }
    memset(wf->hist, 0, diagonals * sizeof *wf->hist);
    /* a word the reference has more than once (SPPPP...) has no one diagonal: -2 */
    FOR_EACH_WORD(wf, r, rl, w, {
        if (wf->count[w] < UINT16_MAX) wf->count[w]++;
        wf->pos[w] = wf->pos[w] == -1 ? (int32_t)i_ : -2;
    });
    FOR_EACH_WORD(wf, m, ml, w, {
        if (wf->count[w]) {
            wf->count[w]--;
            shared++;
            if (wf->pos[w] >= 0) {
                size_t d = (size_t)wf->pos[w] + ml - i_; /* diagonal + ml, >= 0 */
                if (wf->hist[d] < UINT16_MAX) wf->hist[d]++;
            }
        }
    });
    FOR_EACH_WORD(wf, r, rl, w, {
        wf->count[w] = 0;
        wf->pos[w] = -1;
    });
    if (need > 0 && (double)shared < need) return 0;
    for (size_t d = 1; d < diagonals; d++)
        if (wf->hist[d] > wf->hist[best]) best = d;
    if (wf->hist[best] >= 3) {
        /* indels cannot shift the member by more than its mismatches allow */
        size_t shift = (size_t)((1.0 - identity) * (double)ml) + BAND_PAD;
        size_t lo = best > shift ? best - shift : 0, hi = best + shift, dmin = best, dmax = best;
        if (hi >= diagonals) hi = diagonals - 1;
        /* every supported diagonal within reach: at high identity one shared word is
         * support enough (the band must hold the best path, not just the densest) */
        unsigned support = identity >= 0.8 ? 1 : 2;
        for (size_t d = lo; d <= hi; d++)
            if (wf->hist[d] >= support) {
                if (d < dmin) dmin = d;
                if (d > dmax) dmax = d;
            }
        band->banded = 1;
        band->dlo = (int64_t)dmin - (int64_t)ml - BAND_PAD;
        band->dhi = (int64_t)dmax - (int64_t)ml + BAND_PAD;
    }
    return 1;
}

void tal_cluster_opt_init(tal_cluster_opt_t *opt, int nucleotide)
{
    memset(opt, 0, sizeof *opt);
    opt->identity = 0.9;
    opt->coverage = 0.8;
    opt->nucleotide = nucleotide;
    opt->per_group = 3;
    opt->candidates = 8;
    opt->threads = 1;
    tal_sketch_opt_init(&opt->sketch, nucleotide);
}

void tal_cluster_free(tal_cluster_t *c)
{
    if (!c) return;
    free(c->ref);
    free(c->twin);
    free(c->identity);
    free(c->coverage);
    memset(c, 0, sizeof *c);
}

typedef struct {
    const tal_cluster_opt_t *opt;
    uint64_t n;
    const tal_seq_source_t *src;
    const uint64_t *lens;
    const uint32_t *rank, *twin_rank;
    uint32_t *order;
} run_t;

/* A buffer for the source to read into. */
typedef struct {
    char *buf;
    size_t cap;
} seqbuf_t;

static int get_seq(const run_t *run, uint64_t id, seqbuf_t *b, const char **seq)
{
    return run->src->get(run->src->ctx, id, &b->buf, &b->cap, seq);
}

static void progress(const tal_cluster_opt_t *opt, const char *stage, uint64_t done, uint64_t total)
{
    if (opt->progress) opt->progress(opt->ctx, stage, done, total);
}

/* ---- sketches, one thread per slice of record ids ---- */

typedef struct {
    const run_t *run;
    uint64_t lo, hi;    /* record ids */
    uint64_t *keys;     /* room for (hi - lo) x m keys */
    uint64_t count;
    int rc;
} sketch_job_t;

static void *sketch_slice(void *arg)
{
    sketch_job_t *job = arg;
    const run_t *run = job->run;
    uint64_t *hashes = malloc((size_t)run->opt->sketch.m * sizeof *hashes + 1);
    seqbuf_t b = {NULL, 0};
    if (!hashes) {
        job->rc = TAL_ENOMEM;
        return NULL;
    }
    for (uint64_t i = job->lo; i < job->hi; i++) {
        uint32_t r = run->rank[i];
        const char *seq;
        size_t k;
        if (run->twin_rank[r] != r) continue; /* copies follow their first copy */
        if ((job->rc = get_seq(run, i, &b, &seq)) < 0) break;
        k = tal_sketch(&run->opt->sketch, seq, (size_t)run->lens[i], hashes);
        for (size_t j = 0; j < k; j++) job->keys[job->count++] = (hashes[j] >> 32) << 32 | r;
    }
    free(hashes);
    free(b.buf);
    return NULL;
}

static int make_sketches(const run_t *run, uint64_t **keys_out, uint64_t *count_out)
{
    int threads = run->opt->threads > 0 ? run->opt->threads : 1, rc = 0;
    uint64_t m = (uint64_t)run->opt->sketch.m, total = 0;
    uint64_t *keys = malloc((size_t)(run->n * m) * sizeof *keys + 8);
    sketch_job_t jobs[64];
    pthread_t tids[64];
    int started[64] = {0};
    if (!keys) return TAL_ENOMEM;
    if (threads > 64) threads = 64;
    if ((uint64_t)threads > run->n) threads = run->n ? (int)run->n : 1;
    for (int t = 0; t < threads; t++) {
        jobs[t] = (sketch_job_t){run, run->n * (uint64_t)t / (uint64_t)threads,
                                 run->n * (uint64_t)(t + 1) / (uint64_t)threads, NULL, 0, 0};
        jobs[t].keys = keys + jobs[t].lo * m;
        if (t > 0 && pthread_create(&tids[t], NULL, sketch_slice, &jobs[t]) == 0) started[t] = 1;
    }
    sketch_slice(&jobs[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(tids[t], NULL);
        else sketch_slice(&jobs[t]);
    }
    for (int t = 0; t < threads; t++) {
        if (jobs[t].rc < 0) rc = jobs[t].rc;
        memmove(keys + total, jobs[t].keys, (size_t)jobs[t].count * sizeof *keys);
        total += jobs[t].count;
    }
    if (rc < 0) {
        free(keys);
        return rc;
    }
    *keys_out = keys;
    *count_out = total;
    return 0;
}

/* The reference a rank ends at: members point at references. */
static uint32_t root_of(const uint32_t *refr, uint32_t r)
{
    while (refr[r] != r) r = refr[r];
    return r;
}

/* Exact duplicates, by content hash, equal bytes checked: twin[r] is the first rank
 * with the same bytes (the lowest record id, as equal sequences have equal length). */
static int find_twins(const run_t *run, uint32_t *twin)
{
    uint64_t n = run->n, *keys = malloc((size_t)n * sizeof *keys + 8);
    seqbuf_t ba = {NULL, 0}, bb = {NULL, 0};
    int rc = 0;
    if (!keys) return TAL_ENOMEM;
    /* hashed in record order (the source reads sequentially), keyed by rank */
    for (uint64_t id = 0; id < n; id++) {
        const char *seq;
        uint32_t r = run->rank[id];
        if ((rc = get_seq(run, id, &ba, &seq)) < 0) goto out;
        keys[r] = (XXH3_64bits(seq, (size_t)run->lens[id]) >> 32) << 32 | r;
        twin[r] = r;
    }
    sort_keys(keys, (size_t)n);
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i + 1;
        while (j < n && keys[j] >> 32 == keys[i] >> 32) j++;
        for (uint64_t a = i + 1; a < j; a++) {
            uint32_t ra = (uint32_t)keys[a], ia = run->order[ra];
            const char *sa;
            if ((rc = get_seq(run, ia, &ba, &sa)) < 0) goto out;
            for (uint64_t b = i; b < a; b++) {
                uint32_t rb = (uint32_t)keys[b], ib = run->order[rb];
                const char *sb;
                if (twin[rb] != rb || run->lens[ia] != run->lens[ib]) continue;
                if ((rc = get_seq(run, ib, &bb, &sb)) < 0) goto out;
                if (memcmp(sa, sb, (size_t)run->lens[ia])) continue;
                twin[ra] = rb;
                break;
            }
        }
        i = j;
    }
out:
    free(keys);
    free(ba.buf);
    free(bb.buf);
    return rc;
}

/* Links from the sorted keys, as lists per rank (CSR), then the best few candidates
 * per rank, most shared k-mers first (ties: the smaller rank). */
static int make_candidates(const run_t *run, uint64_t *keys, uint64_t n_keys, uint32_t *cand)
{
    uint64_t n = run->n, per = (uint64_t)run->opt->per_group, C = (uint64_t)run->opt->candidates;
    uint64_t *start = calloc((size_t)n + 2, sizeof *start), total = 0;
    uint32_t *links = NULL;
    if (!start) return TAL_ENOMEM;
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t i = 0; i < n_keys;) {
            uint64_t j = i + 1;
            while (j < n_keys && keys[j] >> 32 == keys[i] >> 32) j++;
            for (uint64_t a = i + 1; a < j; a++) {
                uint32_t member = (uint32_t)keys[a];
                uint64_t limit = a - i < per ? a - i : per;
                if (pass == 0) {
                    start[member + 2] += limit;
                    continue;
                }
                for (uint64_t b = i; b < i + limit; b++) links[start[member + 1]++] = (uint32_t)keys[b];
            }
            i = j;
        }
        if (pass == 0) {
            for (uint64_t r = 0; r < n; r++) start[r + 2] += start[r + 1];
            total = start[n + 1];
            if (!(links = malloc((size_t)total * sizeof *links + 4))) {
                free(start);
                return TAL_ENOMEM;
            }
        }
    }
    /* now start[r] .. start[r + 1] are rank r's links */
    for (uint64_t r = 0; r < n; r++) {
        uint32_t *l = links + start[r];
        uint64_t len = start[r + 1] - start[r], w = 0;
        uint32_t *out = cand + r * C;
        uint32_t best_c[64];
        uint32_t best_s[64];
        uint64_t kept = 0;
        for (uint64_t c = 0; c < C; c++) out[c] = NONE;
        if (!len) continue;
        /* sort the few links, count runs, keep the top C by count */
        for (uint64_t a = 1; a < len; a++) {
            uint32_t x = l[a];
            uint64_t b = a;
            while (b > 0 && l[b - 1] > x) {
                l[b] = l[b - 1];
                b--;
            }
            l[b] = x;
        }
        for (uint64_t a = 0; a < len;) {
            uint64_t b = a + 1, pos;
            while (b < len && l[b] == l[a]) b++;
            /* insert (count b - a, rank l[a]) into the kept list, best first; on equal
             * counts the smaller rank (seen first) stays ahead */
            if (kept < C) {
                pos = kept++;
            } else if (best_s[C - 1] >= b - a) {
                a = b;
                continue;
            } else {
                pos = C - 1;
            }
            while (pos > 0 && best_s[pos - 1] < b - a) {
                best_s[pos] = best_s[pos - 1];
                best_c[pos] = best_c[pos - 1];
                pos--;
            }
            best_s[pos] = (uint32_t)(b - a);
            best_c[pos] = l[a];
            a = b;
        }
        for (w = 0; w < kept && w < C; w++) out[w] = best_c[w];
    }
    free(links);
    free(start);
    return 0;
}

/* ---- the greedy pass, on threads ----
 * Ranks are decided in batches. First, in parallel, each sequence of the batch tries
 * its candidates in order for as long as their references are already known (their
 * ranks are before the batch); it stops at the first candidate inside the batch. Then,
 * in rank order, the sequences that stopped carry on where they stopped, now that the
 * earlier ones are decided. Every sequence thus tries the same references in the same
 * order as a one-thread pass: the result does not depend on the thread count. */
#define BATCH 4096

typedef struct {
    tal_aligner_t *aligner;
    word_filter_t wf;
    seqbuf_t mbuf, rbuf;
    uint64_t alignments, filtered, banded;
    uint8_t *arena; /* the deltas this worker accepted in the current batch */
    size_t arena_used, arena_cap;
} worker_t;

typedef struct {
    uint32_t root;  /* the reference joined, or NONE */
    uint8_t next;   /* the candidate to resume at */
    uint8_t done;   /* 0: stopped at a candidate inside the batch */
    uint8_t worker; /* whose arena holds the delta */
    float identity, coverage;
    size_t delta_off;
    size_t delta_len;
} pick_t;

typedef struct {
    const run_t *run;
    const uint32_t *cand;
    uint32_t *refr;
    uint64_t C, r0, r1;
    pick_t *picks;
    worker_t *workers;
    int n_workers;
    uint64_t next; /* phase 1: the next batch position to take (atomic) */
} batch_t;

typedef struct {
    batch_t *b;
    int w;
    int rc;
} phase_job_t;

/* Tries rank r's candidates from p->next on; with stop_inside, stops at a candidate in
 * the batch. */
static int try_candidates(batch_t *b, int w, uint64_t r, pick_t *p, int stop_inside)
{
    const run_t *run = b->run;
    worker_t *wk = &b->workers[w];
    const uint32_t *cand = b->cand + r * b->C;
    uint32_t s = run->order[r], tried[64];
    const char *mseq = NULL, *rseq;
    int n_tried = 0, rc;
    /* the references already tried before p->next */
    for (uint64_t c = 0; c < p->next; c++) tried[n_tried++] = root_of(b->refr, cand[c]);
    for (uint64_t c = p->next; c < b->C && cand[c] != NONE; c++) {
        uint32_t root, ref_id;
        tal_alignment_t al;
        band_t band;
        int seen = 0;
        if (stop_inside && cand[c] >= b->r0) {
            p->next = (uint8_t)c;
            p->done = 0;
            return 0;
        }
        root = root_of(b->refr, cand[c]);
        ref_id = run->order[root];
        for (int q = 0; q < n_tried; q++) seen |= tried[q] == root;
        tried[n_tried++] = root;
        if (seen || root == r) continue;
        if (!mseq && (rc = get_seq(run, s, &wk->mbuf, &mseq)) < 0) return rc;
        if ((rc = get_seq(run, ref_id, &wk->rbuf, &rseq)) < 0) return rc;
        rc = prefilter(&wk->wf, mseq, (size_t)run->lens[s], rseq, (size_t)run->lens[ref_id],
                       run->opt->identity, &band);
        if (rc < 0) return rc;
        if (!rc) {
            wk->filtered++;
            continue;
        }
        if (band.banded) {
            rc = tal_align_band(wk->aligner, mseq, (size_t)run->lens[s], rseq, (size_t)run->lens[ref_id],
                                band.dlo, band.dhi, &al);
            wk->banded++;
        } else {
            rc = tal_align(wk->aligner, mseq, (size_t)run->lens[s], rseq, (size_t)run->lens[ref_id], &al);
        }
        if (rc == TAL_EMEMCAP) continue; /* too big to align here: not this one */
        if (rc < 0) return rc;
        wk->alignments++;
        if (al.identity + 1e-9 >= run->opt->identity && al.coverage + 1e-9 >= run->opt->coverage) {
            if (wk->arena_used + al.delta_len > wk->arena_cap) {
                size_t cap = wk->arena_cap ? wk->arena_cap : (1u << 20);
                uint8_t *q;
                while (cap < wk->arena_used + al.delta_len) cap *= 2;
                if (!(q = realloc(wk->arena, cap))) return TAL_ENOMEM;
                wk->arena = q;
                wk->arena_cap = cap;
            }
            memcpy(wk->arena + wk->arena_used, al.delta, al.delta_len);
            p->root = root;
            p->identity = (float)al.identity;
            p->coverage = (float)al.coverage;
            p->worker = (uint8_t)w;
            p->delta_off = wk->arena_used;
            p->delta_len = al.delta_len;
            wk->arena_used += al.delta_len;
            p->done = 1;
            return 0;
        }
    }
    p->done = 1; /* no candidate passed: a reference */
    return 0;
}

static void *phase1(void *arg)
{
    phase_job_t *job = arg;
    batch_t *b = job->b;
    for (;;) {
        uint64_t i = __atomic_fetch_add(&b->next, 1, __ATOMIC_RELAXED), r = b->r0 + i;
        if (r >= b->r1) break;
        if (b->run->twin_rank[r] != r) continue;
        if ((job->rc = try_candidates(b, job->w, r, &b->picks[i], 1)) < 0) break;
    }
    return NULL;
}

static int decide_batch(batch_t *b)
{
    phase_job_t jobs[64];
    pthread_t tids[64];
    int started[64] = {0}, rc = 0, threads = b->n_workers;
    for (int t = 0; t < threads; t++) b->workers[t].arena_used = 0;
    for (uint64_t r = b->r0; r < b->r1; r++) b->picks[r - b->r0] = (pick_t){NONE, 0, 1, 0, 0, 0, 0, 0};
    b->next = 0;
    if (threads > 1 && b->r1 - b->r0 < 64) threads = 1; /* not worth a thread */
    for (int t = 0; t < threads; t++) {
        jobs[t] = (phase_job_t){b, t, 0};
        if (t > 0 && pthread_create(&tids[t], NULL, phase1, &jobs[t]) == 0) started[t] = 1;
    }
    phase1(&jobs[0]);
    for (int t = 1; t < threads; t++)
        if (started[t]) pthread_join(tids[t], NULL);
    for (int t = 0; t < threads; t++)
        if (jobs[t].rc < 0) rc = jobs[t].rc;
    if (rc < 0) return rc;
    /* phase 2: in rank order, the ones that stopped, each decided before the next */
    for (uint64_t r = b->r0; r < b->r1; r++) {
        pick_t *p = &b->picks[r - b->r0];
        if (b->run->twin_rank[r] != r) continue;
        if (!p->done && (rc = try_candidates(b, 0, r, p, 0)) < 0) return rc;
        if (p->root != NONE) b->refr[r] = p->root;
    }
    return 0;
}

static int from_array(void *ctx, uint64_t id, char **buf, size_t *cap, const char **seq)
{
    (void)buf;
    (void)cap;
    *seq = ((const char *const *)ctx)[id];
    return 0;
}

int tal_cluster_run(const tal_cluster_opt_t *opt, uint64_t n, const char *const *seqs,
                    const uint64_t *lens, tal_cluster_t *out)
{
    tal_seq_source_t src = {from_array, (void *)seqs};
    return tal_cluster_run_source(opt, n, &src, lens, out);
}

int tal_cluster_run_source(const tal_cluster_opt_t *opt, uint64_t n, const tal_seq_source_t *src,
                           const uint64_t *lens, tal_cluster_t *out)
{
    uint64_t *keys = NULL, n_keys = 0, C = opt->candidates > 0 ? (uint64_t)opt->candidates : 1;
    uint32_t *rank = NULL, *order = NULL, *twin = NULL, *refr = NULL, *cand = NULL;
    float *ident = NULL, *cover = NULL;
    worker_t *workers = NULL;
    pick_t *picks = NULL;
    int n_workers = 0;
    run_t run;
    int rc;
    memset(out, 0, sizeof *out);
    if (n > UINT32_MAX - 1 || C > 64) return TAL_EUSAGE;
    out->n = n;
    out->ref = malloc(((size_t)n + 1) * sizeof *out->ref);
    out->twin = malloc(((size_t)n + 1) * sizeof *out->twin);
    out->identity = calloc((size_t)n + 1, sizeof *out->identity);
    out->coverage = calloc((size_t)n + 1, sizeof *out->coverage);
    rank = malloc(((size_t)n + 1) * sizeof *rank);
    order = malloc(((size_t)n + 1) * sizeof *order);
    twin = malloc(((size_t)n + 1) * sizeof *twin);
    if (!out->ref || !out->twin || !out->identity || !out->coverage || !rank || !order || !twin)
        goto nomem;

    /* 1. ranks, longest first */
    if (!(keys = malloc(((size_t)n + 1) * sizeof *keys))) goto nomem;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = lens[i] > UINT32_MAX ? UINT32_MAX : lens[i];
        keys[i] = (UINT32_MAX - len) << 32 | i;
    }
    sort_keys(keys, (size_t)n);
    for (uint64_t r = 0; r < n; r++) {
        order[r] = (uint32_t)keys[r];
        rank[order[r]] = (uint32_t)r;
    }
    free(keys);
    keys = NULL;
    run = (run_t){opt, n, src, lens, rank, twin, order};

    /* 2. exact duplicates */
    progress(opt, "duplicates", 0, n);
    if ((rc = find_twins(&run, twin)) < 0) goto fail;

    /* 3-4. sketches, sorted; candidates */
    progress(opt, "sketches", 0, n);
    if ((rc = make_sketches(&run, &keys, &n_keys)) < 0) goto fail;
    sort_keys(keys, (size_t)n_keys);
    if (!(cand = malloc((size_t)(n * C) * sizeof *cand + 4))) goto nomem;
    if ((rc = make_candidates(&run, keys, n_keys, cand)) < 0) goto fail;
    free(keys);
    keys = NULL;

    /* 5. greedy, by rank, in batches (see decide_batch) */
    if (!(refr = malloc(((size_t)n + 1) * sizeof *refr))) goto nomem;
    for (uint64_t r = 0; r < n; r++) refr[r] = (uint32_t)r;
    ident = out->identity;
    cover = out->coverage;
    n_workers = opt->threads > 0 ? (opt->threads > 64 ? 64 : opt->threads) : 1;
    if (!(workers = calloc((size_t)n_workers, sizeof *workers)) ||
        !(picks = malloc(BATCH * sizeof *picks)))
        goto nomem;
    for (int t = 0; t < n_workers; t++) {
        if ((rc = tal_aligner_create(&workers[t].aligner, opt->nucleotide, 0)) < 0) goto fail;
        /* below 0.8 the shared words place the band less surely: check it */
        tal_aligner_verify_bands(workers[t].aligner, opt->identity < 0.8);
        if ((rc = word_filter_init(&workers[t].wf, opt->nucleotide)) < 0) goto fail;
    }
    {
        batch_t b = {&run, cand, refr, C, 0, 0, picks, workers, n_workers, 0};
        for (uint64_t r0 = 0; r0 < n; r0 += BATCH) {
            b.r0 = r0;
            b.r1 = r0 + BATCH < n ? r0 + BATCH : n;
            progress(opt, "aligning", r0, n);
            if ((rc = decide_batch(&b)) < 0) goto fail;
            for (uint64_t r = b.r0; r < b.r1; r++) {
                pick_t *p = &picks[r - b.r0];
                uint32_t s = order[r];
                if (twin[r] != r || p->root == NONE) continue;
                refr[r] = p->root;
                ident[s] = p->identity;
                cover[s] = p->coverage;
                if (opt->on_member) {
                    tal_alignment_t al;
                    memset(&al, 0, sizeof al);
                    al.identity = p->identity;
                    al.coverage = p->coverage;
                    al.delta = workers[p->worker].arena + p->delta_off;
                    al.delta_len = p->delta_len;
                    if ((rc = opt->on_member(opt->ctx, s, order[p->root], &al)) < 0) goto fail;
                }
            }
        }
    }
    for (int t = 0; t < n_workers; t++) {
        out->alignments += workers[t].alignments;
        out->filtered += workers[t].filtered;
        out->banded += workers[t].banded;
    }
    progress(opt, "aligning", n, n);
    /* back to record ids: copies join where their first copy ended */
    for (uint64_t r = 0; r < n; r++) {
        uint32_t id = order[r], t = twin[r];
        if (t != r) {
            uint32_t first = order[t];
            out->twin[id] = first;
            out->ref[id] = order[refr[t]];
            ident[id] = refr[t] == t ? 1.0f : ident[first];
            cover[id] = refr[t] == t ? 1.0f : cover[first];
            out->duplicates++;
        } else {
            out->twin[id] = id;
            out->ref[id] = order[refr[r]];
            out->references += refr[r] == r;
        }
    }
    rc = 0;
    goto done;
nomem:
    rc = TAL_ENOMEM;
fail:
    tal_cluster_free(out);
done:
    for (int t = 0; workers && t < n_workers; t++) {
        tal_aligner_free(workers[t].aligner);
        word_filter_free(&workers[t].wf);
        free(workers[t].mbuf.buf);
        free(workers[t].rbuf.buf);
        free(workers[t].arena);
    }
    free(workers);
    free(picks);
    free(keys);
    free(rank);
    free(order);
    free(twin);
    free(refr);
    free(cand);
    return rc;
}
