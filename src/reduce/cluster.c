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
#include "evidence_internal.h"
#include "mem/sorter_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/util.h"
#include "util/files_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#define NONE UINT32_MAX

/* ---- the short-word filter and the band ----
 * CD-HIT's filter: a member at identity I has at most (1 - I) x L mismatched residues,
 * and each destroys at most W words, so a pair sharing fewer than
 * (L - W + 1) - W x (1 - I) x L words of W residues cannot pass. Exact residues: words
 * of 4 over 20 letters, or of 8 over 4 bases (U read as T; N and other codes break
 * words, as they match nothing), as CD-HIT and cd-hit-est at 0.9. Over 4 letters a
 * word of 4 would occur by chance on nearly every diagonal. The diagonals (reference
 * position - member position) of the shared words show where the member lies on the
 * reference and how far indels shift it. */
#define WORD_SPACE (20 * 20 * 20 * 20) /* >= 4^8 */
#define BAND_PAD   8

typedef struct {
    uint16_t *count; /* WORD_SPACE entries, zero between calls */
    int32_t *pos;    /* WORD_SPACE entries: a reference position, -1 between calls */
    uint16_t *hist;  /* per diagonal */
    size_t hist_cap;
    uint32_t word, base; /* residues a word, letters */
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
    if (nucleotide) wf->code['U'] = wf->code['u'] = wf->code['T']; /* RNA: U is T */
    wf->word = nucleotide ? 8 : 4;
    wf->base = nucleotide ? 4 : 20;
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
#define FOR_EACH_WORD(wf, seq, len, w, body)                                                       \
    do {                                                                                           \
        uint32_t w = 0, run_ = 0, mask_ = (1u << 2 * (wf)->word) - 1;                              \
        for (size_t i_ = 0; i_ < (len); i_++) {                                                    \
            int c_ = (wf)->code[(unsigned char)(seq)[i_]];                                         \
            if (c_ < 0) {                                                                          \
                run_ = 0;                                                                          \
                w = 0;                                                                             \
                continue;                                                                          \
            }                                                                                      \
            /* bases: 2 bits each; residues: a constant modulus (no division) */                   \
            w = (wf)->base == 4 ? (w << 2 | (uint32_t)c_) & mask_                                  \
                                : (w * 20 + (uint32_t)c_) % WORD_SPACE;                            \
            if (++run_ >= (wf)->word) {                                                            \
                body;                                                                              \
            }                                                                                      \
        }                                                                                          \
    } while (0)

typedef struct {
    int banded; /* 1: align in [dlo, dhi]; 0: no clear diagonal, align in full */
    int64_t dlo, dhi;
    /* how the band came about (diagonals + member length): the densest diagonal, the
     * supported ones at the band's ends and the nearest supported ones past them (NONE:
     * none), and the support (shared words) a diagonal needed; the evidence of -r keeps
     * them to tell at which other identities the band would be the same */
    uint32_t best, dmin, dmax, left, right;
    unsigned support;
} band_t;

/* Whether a pair sharing shared words may reach the identity (CD-HIT's bound). */
static int words_suffice(const word_filter_t *wf, size_t ml, size_t rl, uint64_t shared,
                         double identity)
{
    double W = (double)wf->word;
    double need = (double)ml - W + 1 - W * (1.0 - identity) * (double)ml;
    if (ml < wf->word || rl < wf->word) return 1;
    return !(need > 0 && (double)shared < need);
}

/* How far indels can shift a member at the identity, in diagonals. */
static size_t band_reach(size_t ml, double identity)
{
    return (size_t)((1.0 - identity) * (double)ml) + BAND_PAD;
}

/* The shared words a diagonal needs to widen the band at the identity: at high identity
 * one shared word of protein is support enough (the band must hold the best path, not
 * just the densest); of 8 bases, where a chance match is likelier, two. */
static unsigned band_support(const word_filter_t *wf, double identity)
{
    return identity >= 0.8 && wf->base != 4 ? 1 : 2;
}

/* 1 if the pair may reach the identity (and the band to align it in, and the words
 * shared), 0 if it cannot, TAL_ENOMEM. */
static int prefilter(word_filter_t *wf, const char *m, size_t ml, const char *r, size_t rl,
                     double identity, band_t *band, uint64_t *words)
{
    uint64_t shared = 0;
    size_t diagonals = ml + rl + 1, best = 0;
    band->banded = 0;
    band->dlo = band->dhi = 0; /* set for a banded pair below; gcc cannot always tell */
    band->best = band->dmin = band->dmax = band->left = band->right = NONE;
    band->support = 0;
    *words = 0;
    if (ml < wf->word || rl < wf->word) return 1;
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
    *words = shared;
    if (!words_suffice(wf, ml, rl, shared, identity)) return 0;
    for (size_t d = 1; d < diagonals; d++)
        if (wf->hist[d] > wf->hist[best]) best = d;
    if (wf->hist[best] >= 3) {
        /* indels cannot shift the member by more than its mismatches allow */
        size_t shift = band_reach(ml, identity);
        size_t lo = best > shift ? best - shift : 0, hi = best + shift, dmin = best, dmax = best;
        unsigned support = band_support(wf, identity);
        if (hi >= diagonals) hi = diagonals - 1;
        /* every supported diagonal within reach */
        for (size_t d = lo; d <= hi; d++)
            if (wf->hist[d] >= support) {
                if (d < dmin) dmin = d;
                if (d > dmax) dmax = d;
            }
        band->banded = 1;
        band->dlo = (int64_t)dmin - (int64_t)ml - BAND_PAD;
        band->dhi = (int64_t)dmax - (int64_t)ml + BAND_PAD;
        band->best = (uint32_t)best;
        band->dmin = (uint32_t)dmin;
        band->dmax = (uint32_t)dmax;
        band->support = support;
        for (size_t d = lo; d-- > 0;)
            if (wf->hist[d] >= support) {
                band->left = (uint32_t)d;
                break;
            }
        for (size_t d = hi + 1; d < diagonals; d++)
            if (wf->hist[d] >= support) {
                band->right = (uint32_t)d;
                break;
            }
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
    opt->near_links = nucleotide ? 4 : 0;
    opt->candidates = nucleotide ? 32 : 8;
    opt->threads = 1;
    tal_sketch_opt_init(&opt->sketch, nucleotide);
}

void tal_cluster_free(tal_cluster_t *c)
{
    if (!c) return;
    tal_budget_free(c->budget, TAL_MEM_RECORDS, c->block, c->block_bytes);
    memset(c, 0, sizeof *c);
}

struct tal_cluster_prep {
    tal_cluster_opt_t opt;
    uint64_t batches; /* decided so far, in every pass (several ranks: their counters) */
    uint64_t n, C;
    const tal_seq_source_t *src;
    const tal_lengths_t *lens;
    uint32_t *order; /* by rank: the record id */
    uint64_t *copy;  /* by rank, a bit each: an exact copy of an earlier rank */
    size_t arrays_bytes;
    int cand_fd;   /* by rank, C candidate ranks each (NONE pads) */
    int copies_fd; /* the copies, rank << 32 | the rank of their first copy, by rank */
    char tmp_dir[4096];
    tal_evidence_t *evidence; /* what the passes so far evaluated, or NULL */
    double delta_floor;       /* the lowest identity whose deltas the evidence keeps */
};

typedef struct {
    const tal_cluster_opt_t *opt;
    uint64_t n;
    const tal_seq_source_t *src;
    const tal_lengths_t *lens;
    const uint32_t *rank;
    uint64_t *copy;
    uint32_t *order;
} run_t;

static int bit_of(const uint64_t *bits, uint64_t i) { return (int)(bits[i >> 6] >> (i & 63) & 1); }

static void set_bit(uint64_t *bits, uint64_t i) { bits[i >> 6] |= (uint64_t)1 << (i & 63); }

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

static int new_sorter(const tal_cluster_opt_t *opt, const char *dir, const char *what,
                      uint64_t expected, tal_mem_component_t component, tal_sorter_t **out)
{
    tal_sorter_opt_t so;
    memset(&so, 0, sizeof so);
    so.record_size = 8;
    so.buffer_bytes = opt->sort_bytes ? opt->sort_bytes : TAL_SORTER_DEFAULT_BUFFER;
    so.expected = expected;
    so.tmp_dir = dir;
    so.what = what;
    so.budget = opt->budget;
    so.component = component;
    return tal_sorter_create(out, &so);
}

/* ---- sketches, one thread per slice of record ids, into one sorter ---- */

/* Several ranks: rank k keeps the k-mer keys whose hash is k modulo the rank count, so a
 * group of equal hashes is whole on one rank, which sorts a share of the keys and finds
 * the links of its groups (share_links then gives every rank every link). */
static int my_key(const tal_cluster_opt_t *opt, uint64_t key)
{
    const tal_reduce_comm_t *cm = opt->comm;
    return !cm || cm->size < 2 || (int)((key >> 32) % (uint64_t)cm->size) == cm->rank;
}

#define SKETCH_BATCH 65536

typedef struct {
    const run_t *run;
    tal_sorter_t *sorter;
    pthread_mutex_t *mu;
    uint64_t lo, hi; /* record ids */
    int rc;
} sketch_job_t;

static void *sketch_slice(void *arg)
{
    sketch_job_t *job = arg;
    const run_t *run = job->run;
    size_t m = (size_t)run->opt->sketch.m, used = 0;
    uint64_t salt = 0;
    uint64_t *hashes = malloc(m * sizeof *hashes + 8),
             *batch = malloc((SKETCH_BATCH + m) * sizeof *batch);
    seqbuf_t b = {NULL, 0};
    if (!hashes || !batch) job->rc = TAL_ENOMEM;
    for (uint64_t i = job->lo; i < job->hi && job->rc == 0; i++) {
        uint32_t r = run->rank[i];
        const char *seq;
        size_t k;
        if (bit_of(run->copy, r)) continue; /* copies follow their first copy */
        if ((job->rc = get_seq(run, i, &b, &seq)) < 0) break;
        k = tal_sketch(&run->opt->sketch, seq, (size_t)tal_length(run->lens, i), hashes);
        /* with groups, a group's k-mers are keyed apart: links stay inside the group */
        if (run->opt->group) salt = ((uint64_t)run->opt->group[i] + 1) * 0x9E3779B97F4A7C15u;
        for (size_t j = 0; j < k; j++) {
            uint64_t key = ((hashes[j] ^ salt) >> 32) << 32 | r;
            if (my_key(run->opt, key)) batch[used++] = key;
        }
        if (used >= SKETCH_BATCH || i + 1 == job->hi) {
            pthread_mutex_lock(job->mu);
            job->rc = tal_sorter_add(job->sorter, batch, used);
            pthread_mutex_unlock(job->mu);
            used = 0;
        }
    }
    if (job->rc == 0 && used) {
        pthread_mutex_lock(job->mu);
        job->rc = tal_sorter_add(job->sorter, batch, used);
        pthread_mutex_unlock(job->mu);
    }
    free(hashes);
    free(batch);
    free(b.buf);
    return NULL;
}

static int make_sketches(const run_t *run, tal_sorter_t *sorter)
{
    int threads = run->opt->threads > 0 ? run->opt->threads : 1, rc = 0;
    sketch_job_t jobs[64];
    pthread_t tids[64];
    int started[64] = {0};
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    uint64_t per_thread = (SKETCH_BATCH + 64) * 8 + ((uint64_t)1 << 20);
    if (threads > 64) threads = 64;
    if ((uint64_t)threads > run->n) threads = run->n ? (int)run->n : 1;
    /* each thread's batch and read buffer */
    if ((rc = tal_budget_reserve(run->opt->budget, TAL_MEM_KMERS, per_thread * (uint64_t)threads)) <
        0)
        return rc;
    for (int t = 0; t < threads; t++) {
        jobs[t] = (sketch_job_t){run,
                                 sorter,
                                 &mu,
                                 run->n * (uint64_t)t / (uint64_t)threads,
                                 run->n * (uint64_t)(t + 1) / (uint64_t)threads,
                                 0};
        if (t > 0 && pthread_create(&tids[t], NULL, sketch_slice, &jobs[t]) == 0) started[t] = 1;
    }
    sketch_slice(&jobs[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            sketch_slice(&jobs[t]);
    }
    for (int t = 0; t < threads; t++)
        if (jobs[t].rc < 0) rc = jobs[t].rc;
    tal_budget_release(run->opt->budget, TAL_MEM_KMERS, per_thread * (uint64_t)threads);
    return rc;
}

/* The reference a rank ends at: members point at references. */
static uint32_t root_of(const uint32_t *refr, uint32_t r)
{
    while (refr[r] != r) r = refr[r];
    return r;
}

/* Ranks, longest first (ties: the earlier record), through the sorter. */
static int make_ranks(const run_t *run, const char *dir, uint32_t *rank, uint32_t *order)
{
    tal_sorter_t *s = NULL;
    uint64_t buf[4096], r = 0;
    const void *recs;
    size_t count, used = 0;
    int rc;
    if ((rc = new_sorter(run->opt, dir, "sequence ranks", run->n, TAL_MEM_SORT, &s)) < 0) return rc;
    for (uint64_t i = 0; i < run->n && rc == 0; i++) {
        uint64_t len = tal_length(run->lens, i);
        if (len > UINT32_MAX) len = UINT32_MAX;
        buf[used++] = (UINT32_MAX - len) << 32 | i;
        if (used == 4096 || i + 1 == run->n) {
            rc = tal_sorter_add(s, buf, used);
            used = 0;
        }
    }
    if (rc == 0) rc = tal_sorter_finish(s);
    while (rc == 0 && (rc = tal_sorter_read(s, &recs, &count)) > 0) {
        for (size_t k = 0; k < count; k++, r++) {
            order[r] = (uint32_t)((const uint64_t *)recs)[k];
            rank[order[r]] = (uint32_t)r;
        }
        rc = 0;
    }
    tal_sorter_destroy(s);
    return rc;
}

/* Writes len bytes at the end of a scratch file (what it holds, for messages). */
static int write_all(int fd, const void *data, size_t len, const char *dir, const char *what)
{
    const char *p = data;
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            tal_log_error("cannot write %s to --tmp-dir %s: %s", what, dir,
                          k < 0 ? strerror(errno) : "no space");
            return TAL_EIO;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* Exact duplicates, by content hash, equal bytes checked: a copy's first copy is the
 * first rank with the same bytes (the lowest record id, as equal sequences have equal
 * length) and, with opt.group, the same group. Marks the copies in run->copy and writes
 * them, by rank, to copies_fd: rank << 32 | first copy's rank (a copy is never a first
 * copy, so the decisions never need the pairs at random). */
static int find_twins(const run_t *run, const char *dir, int copies_fd)
{
    uint64_t n = run->n, buf[4096], group[64], g = 0, ghash = 0;
    seqbuf_t ba = {NULL, 0}, bb = {NULL, 0};
    tal_sorter_t *s = NULL, *pairs = NULL;
    const void *recs;
    size_t count, used = 0;
    int rc;
    if ((rc = new_sorter(run->opt, dir, "sequence hashes", n, TAL_MEM_SORT, &s)) < 0) return rc;
    if ((rc = new_sorter(run->opt, dir, "exact copies", n, TAL_MEM_SORT, &pairs)) < 0) {
        tal_sorter_destroy(s);
        return rc;
    }
    /* hashed in record order (the source reads sequentially), keyed by rank */
    for (uint64_t id = 0; id < n && rc == 0; id++) {
        const char *seq;
        uint32_t r = run->rank[id];
        if ((rc = get_seq(run, id, &ba, &seq)) < 0) break;
        buf[used++] = (XXH3_64bits(seq, (size_t)tal_length(run->lens, id)) >> 32) << 32 | r;
        if (used == 4096 || id + 1 == n) {
            rc = tal_sorter_add(s, buf, used);
            used = 0;
        }
    }
    if (rc == 0) rc = tal_sorter_finish(s);
    /* within a run of equal hashes (ranks ascending), each joins the first earlier one
     * with the same bytes; long runs of equal hashes are rare, and past 64 members
     * only the first 64 are compared (a copy may then stay a sequence of its own) */
    while (rc == 0 && (rc = tal_sorter_read(s, &recs, &count)) > 0) {
        rc = 0;
        for (size_t k = 0; k < count && rc == 0; k++) {
            uint64_t key = ((const uint64_t *)recs)[k];
            uint32_t ra = (uint32_t)key, ia = run->order[ra];
            const char *sa;
            if (g == 0 || key >> 32 != ghash) {
                g = 0;
                ghash = key >> 32;
            }
            for (uint64_t q = 0; q < g; q++) {
                uint32_t rb = (uint32_t)group[q], ib = run->order[rb];
                const char *sb;
                if (bit_of(run->copy, rb) || tal_length(run->lens, ia) != tal_length(run->lens, ib))
                    continue;
                if (run->opt->group && run->opt->group[ia] != run->opt->group[ib]) continue;
                if ((rc = get_seq(run, ia, &ba, &sa)) < 0) break;
                if ((rc = get_seq(run, ib, &bb, &sb)) < 0) break;
                if (memcmp(sa, sb, (size_t)tal_length(run->lens, ia))) continue;
                set_bit(run->copy, ra);
                buf[used++] = (uint64_t)ra << 32 | rb;
                if (used == 4096) {
                    rc = tal_sorter_add(pairs, buf, used);
                    used = 0;
                }
                break;
            }
            if (g < 64) group[g++] = ra;
        }
    }
    tal_sorter_destroy(s);
    if (rc == 0 && used) rc = tal_sorter_add(pairs, buf, used);
    if (rc == 0) rc = tal_sorter_finish(pairs);
    while (rc == 0 && (rc = tal_sorter_read(pairs, &recs, &count)) > 0)
        rc = write_all(copies_fd, recs, count * 8, dir, "the list of exact copies");
    tal_sorter_destroy(pairs);
    free(ba.buf);
    free(bb.buf);
    return rc;
}

/* Candidate rows, written by rank to the candidate file. */
typedef struct {
    uint32_t *rows;
    size_t used, cap;
    uint64_t C, next_rank;
    int fd;
    const char *dir;
} rows_t;

static int rows_flush(rows_t *w)
{
    int rc =
        w->used ? write_all(w->fd, w->rows, w->used * w->C * 4, w->dir, "the candidate list") : 0;
    w->used = 0;
    return rc;
}

/* Rows up to rank (NONE for the ranks before it without links), then rank's: its C most
 * shared candidates from list (sorted ascending, so runs of equal ranks), ties to the
 * smaller rank. */
static int rows_emit(rows_t *w, uint64_t rank, const uint32_t *list, size_t len)
{
    uint32_t best_c[64], best_s[64];
    uint64_t kept = 0, C = w->C;
    int rc;
    for (; w->next_rank <= rank; w->next_rank++) {
        uint32_t *out = w->rows + w->used * C;
        for (uint64_t c = 0; c < C; c++) out[c] = NONE;
        if (w->next_rank == rank) {
            for (size_t a = 0; a < len;) {
                size_t b = a + 1, pos;
                while (b < len && list[b] == list[a]) b++;
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
                best_c[pos] = list[a];
                a = b;
            }
            for (uint64_t k = 0; k < kept; k++) out[k] = best_c[k];
        }
        if (++w->used == w->cap && (rc = rows_flush(w)) < 0) return rc;
    }
    return 0;
}

/* Links from all ranks together per round: 512 KiB of them, and as much again twice for
 * rank 0's gathered copy and every rank's broadcast one (the workers' room, idle while
 * preparing, holds them). */
#define ROUND_LINKS 65536
#define ROUND_BYTES (3 * (ROUND_LINKS * 8 + 4096))

/* Several ranks: every rank's links (mine, finished) into every rank's ls, in rounds of
 * at most ROUND_LINKS from all ranks together; each rank's part says whether it has more.
 * A rank that fails returns without calling the others again (the caller stops them). */
static int share_links(const tal_cluster_opt_t *opt, tal_sorter_t *mine, tal_sorter_t *ls)
{
    const tal_reduce_comm_t *cm = opt->comm;
    uint64_t per = ROUND_LINKS / (uint64_t)cm->size, total;
    uint64_t *own;
    size_t *lens, count = 0, at = 0;
    const void *recs = NULL;
    int rc, more = 1, anyone = 1;
    if (per == 0) per = 1;
    if ((rc = tal_budget_reserve(opt->budget, TAL_MEM_SORT, ROUND_BYTES)) < 0) return rc;
    own = malloc((size_t)(per + 1) * 8);
    lens = calloc((size_t)cm->size, sizeof *lens);
    if (!own || !lens) rc = TAL_ENOMEM;
    while (rc == 0 && anyone) {
        uint64_t k = 0;
        void *all = NULL;
        uint8_t *msg = NULL;
        /* this rank's part: how many, whether more come, then the links */
        while (more && k < per) {
            size_t take;
            if (at == count) {
                if ((rc = tal_sorter_read(mine, &recs, &count)) < 0) break;
                at = 0;
                if (rc == 0) {
                    more = 0;
                    count = 0;
                    break;
                }
                rc = 0;
            }
            take = count - at < per - k ? count - at : (size_t)(per - k);
            memcpy(own + 1 + k, (const uint64_t *)recs + at, take * 8);
            at += take;
            k += take;
        }
        if (rc < 0) break;
        own[0] = k << 1 | (uint64_t)more;
        if ((rc = cm->gather(cm->ctx, own, (size_t)(k + 1) * 8, &all, lens)) < 0) break;
        /* rank 0 hands out every part: their length first */
        total = 0;
        if (cm->rank == 0)
            for (int r = 0; r < cm->size; r++) total += lens[r];
        if ((rc = cm->bcast(cm->ctx, &total, sizeof total)) < 0 ||
            !(msg = cm->rank == 0 ? all : malloc(total ? (size_t)total : 1))) {
            free(all);
            rc = rc < 0 ? rc : TAL_ENOMEM;
            break;
        }
        if ((rc = cm->bcast(cm->ctx, msg, (size_t)total)) < 0) {
            free(msg);
            break;
        }
        anyone = 0;
        for (uint64_t off = 0; off + 8 <= total && rc == 0;) {
            uint64_t head;
            memcpy(&head, msg + off, 8);
            if (off + 8 + (head >> 1) * 8 > total) {
                rc = TAL_EIO;
                break;
            }
            anyone |= (int)(head & 1);
            if (head >> 1) rc = tal_sorter_add(ls, msg + off + 8, (size_t)(head >> 1));
            off += 8 + (head >> 1) * 8;
        }
        free(msg);
    }
    free(own);
    free(lens);
    tal_budget_release(opt->budget, TAL_MEM_SORT, ROUND_BYTES);
    return rc;
}

/* Candidates: the sorted keys give groups of equal hashes; inside a group each member
 * links to the group's first few (longest) sequences; the links, sorted by member, are
 * counted per member into its row. With several ranks, each finds the links of its own
 * groups, and every rank then sorts them all (share_links): every rank has every row.
 * Destroys *keys once read. */
static int make_candidates(tal_cluster_prep_t *p, const run_t *run, tal_sorter_t **keys_p)
{
    tal_sorter_t *keys = *keys_p, *mine = NULL;
    int distributed = run->opt->comm && run->opt->comm->size > 1;
    uint64_t per = (uint64_t)run->opt->per_group, ghash = 0, gcount = 0, cur = UINT64_MAX;
    uint64_t near = (uint64_t)run->opt->near_links;
    uint64_t links[4096], rows_bytes;
    uint32_t group[64], last[8], list[4096];
    size_t used = 0, list_len = 0;
    rows_t w = {NULL, 0, 8192, p->C, 0, -1, NULL};
    tal_sorter_t *ls = NULL, *out;
    const void *recs;
    size_t count;
    int rc;
    if (per > 64) per = 64;
    if (near > 8) near = 8;
    /* several ranks: this rank's links first, every rank's after the keys are gone (two
     * sorters at a time, as alone) */
    if ((rc = new_sorter(run->opt, p->tmp_dir, "candidate links", run->n * 20, TAL_MEM_SORT,
                         distributed ? &mine : &ls)) < 0)
        return rc;
    out = distributed ? mine : ls;
    while ((rc = tal_sorter_read(keys, &recs, &count)) > 0) {
        rc = 0;
        for (size_t k = 0; k < count && rc == 0; k++) {
            uint64_t key = ((const uint64_t *)recs)[k];
            uint32_t member = (uint32_t)key;
            if (gcount == 0 || key >> 32 != ghash) {
                gcount = 0;
                ghash = key >> 32;
            }
            for (uint64_t b = 0; b < gcount && b < per && rc == 0; b++) {
                links[used++] = (uint64_t)member << 32 | group[b];
                if (used == 4096) {
                    rc = tal_sorter_add(out, links, used);
                    used = 0;
                }
            }
            /* and the nearest longer ones (past the first per) */
            for (uint64_t b = 0; b < near && per + b < gcount && rc == 0; b++) {
                links[used++] = (uint64_t)member << 32 | last[(gcount - 1 - b) % 8];
                if (used == 4096) {
                    rc = tal_sorter_add(out, links, used);
                    used = 0;
                }
            }
            if (gcount < per) group[gcount] = member;
            last[gcount % 8] = member;
            gcount++;
        }
        if (rc < 0) break;
    }
    if (rc == 0 && used) rc = tal_sorter_add(out, links, used);
    if (distributed) {
        tal_sorter_destroy(keys);
        *keys_p = NULL;
        if (rc == 0) rc = tal_sorter_finish(mine);
        if (rc == 0)
            rc =
                new_sorter(run->opt, p->tmp_dir, "candidate links", run->n * 20, TAL_MEM_SORT, &ls);
        if (rc == 0) rc = share_links(run->opt, mine, ls);
        tal_sorter_destroy(mine);
    }
    if (rc == 0) rc = tal_sorter_finish(ls);
    w.fd = p->cand_fd;
    w.dir = p->tmp_dir;
    rows_bytes = w.cap * p->C * sizeof *w.rows;
    if (rc == 0 && (rc = tal_budget_reserve(run->opt->budget, TAL_MEM_SORT, rows_bytes)) == 0 &&
        !(w.rows = malloc(rows_bytes))) {
        tal_budget_release(run->opt->budget, TAL_MEM_SORT, rows_bytes);
        rc = TAL_ENOMEM;
    }
    while (rc == 0 && (rc = tal_sorter_read(ls, &recs, &count)) > 0) {
        rc = 0;
        for (size_t k = 0; k < count && rc == 0; k++) {
            uint64_t link = ((const uint64_t *)recs)[k];
            if (link >> 32 != cur) {
                if (cur != UINT64_MAX) rc = rows_emit(&w, cur, list, list_len);
                cur = link >> 32;
                list_len = 0;
            }
            if (list_len < sizeof list / sizeof *list) list[list_len++] = (uint32_t)link;
        }
    }
    if (rc == 0 && cur != UINT64_MAX) rc = rows_emit(&w, cur, list, list_len);
    if (rc == 0 && run->n)
        rc = rows_emit(&w, run->n - 1, NULL, 0); /* the ranks after the last with links */
    if (rc == 0) rc = rows_flush(&w);
    if (w.rows) {
        free(w.rows);
        tal_budget_release(run->opt->budget, TAL_MEM_SORT, rows_bytes);
    }
    tal_sorter_destroy(ls);
    return rc;
}

void tal_cluster_prep_free(tal_cluster_prep_t *p)
{
    if (!p) return;
    tal_evidence_free(p->evidence);
    tal_budget_free(p->opt.budget, TAL_MEM_RECORDS, p->order, p->arrays_bytes);
    if (p->cand_fd >= 0) close(p->cand_fd);
    if (p->copies_fd >= 0) close(p->copies_fd);
    free(p);
}

/* An unnamed scratch file in dir (what it is for, for the message). */
static int scratch_file(const char *dir, const char *what)
{
    int fd = tal_unnamed_file(dir);
    if (fd < 0) tal_log_error("cannot create %s in --tmp-dir %s: %s", what, dir, strerror(errno));
    return fd;
}

int tal_cluster_prepare(const tal_cluster_opt_t *opt, uint64_t n, const tal_seq_source_t *src,
                        const tal_lengths_t *lens, tal_cluster_prep_t **out)
{
    tal_cluster_prep_t *p;
    uint32_t *rank = NULL;
    tal_sorter_t *keys = NULL;
    const char *dir = opt->tmp_dir;
    run_t run;
    int rc;
    *out = NULL;
    if (n > UINT32_MAX - 1 || opt->candidates > 64) return TAL_EUSAGE;
    if (!(p = calloc(1, sizeof *p))) return TAL_ENOMEM;
    p->opt = *opt;
    p->n = n;
    p->C = opt->candidates > 0 ? (uint64_t)opt->candidates : 1;
    p->src = src;
    p->lens = lens;
    p->cand_fd = -1;
    p->copies_fd = -1;
    if (!dir || !*dir) dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    snprintf(p->tmp_dir, sizeof p->tmp_dir, "%s", dir);
    /* the order and the copies' bitmap, for every pass */
    p->arrays_bytes = ((size_t)n + 1) * sizeof(uint32_t) + TAL_BITMAP_BYTES(n);
    if ((rc = tal_budget_alloc(opt->budget, TAL_MEM_RECORDS, p->arrays_bytes, (void **)&p->order)) <
        0)
        goto fail;
    p->copy = (uint64_t *)(p->order + n + 1 + (n + 1) % 2); /* 8-byte aligned */
    if ((rc = tal_budget_alloc(opt->budget, TAL_MEM_RECORDS, ((size_t)n + 1) * sizeof *rank,
                               (void **)&rank)) < 0)
        goto fail;
    run = (run_t){opt, n, src, lens, rank, p->copy, p->order};

    /* several ranks: rank 0 readies the shared counters of the decisions (a comm may serve
     * several runs); every rank passes share_links's collectives before its first claim */
    if (opt->comm && opt->comm->size > 1 && opt->comm->rank == 0 &&
        ((rc = opt->comm->set(opt->comm->ctx, 0, 0)) < 0 ||
         (rc = opt->comm->set(opt->comm->ctx, 1, 0)) < 0))
        goto fail;
    /* 1. ranks, longest first */
    if ((rc = make_ranks(&run, p->tmp_dir, rank, p->order)) < 0) goto fail;
    /* 2. exact duplicates */
    progress(opt, "duplicates", 0, n);
    if ((p->copies_fd = scratch_file(p->tmp_dir, "the list of exact copies")) < 0) {
        rc = TAL_EIO;
        goto fail;
    }
    if ((rc = find_twins(&run, p->tmp_dir, p->copies_fd)) < 0) goto fail;
    /* 3-4. sketches, sorted; candidates, to a file of their own */
    progress(opt, "sketches", 0, n);
    if ((rc = new_sorter(opt, p->tmp_dir, "k-mer keys", n * (uint64_t)opt->sketch.m, TAL_MEM_KMERS,
                         &keys)) < 0)
        goto fail;
    if ((rc = make_sketches(&run, keys)) < 0) goto fail;
    if ((rc = tal_sorter_finish(keys)) < 0) goto fail;
    tal_budget_free(opt->budget, TAL_MEM_RECORDS, rank, ((size_t)n + 1) * sizeof *rank);
    rank = NULL;
    progress(opt, "candidates", 0, n);
    if ((p->cand_fd = scratch_file(p->tmp_dir, "the candidate list")) < 0) {
        rc = TAL_EIO;
        goto fail;
    }
    if ((rc = make_candidates(p, &run, &keys)) < 0) goto fail;
    tal_sorter_destroy(keys);
    *out = p;
    return 0;
fail:
    tal_sorter_destroy(keys);
    tal_budget_free(opt->budget, TAL_MEM_RECORDS, rank, ((size_t)n + 1) * sizeof *rank);
    tal_cluster_prep_free(p);
    return rc;
}

/* ---- the greedy pass, on threads ----
 * Ranks are decided in batches. First, in parallel, each sequence of the batch tries
 * its candidates in order for as long as their references are already known (their
 * ranks are before the batch); it stops at the first candidate inside the batch. Then,
 * in rank order, the sequences that stopped carry on where they stopped, now that the
 * earlier ones are decided. Every sequence thus tries the same references in the same
 * order as a one-thread pass: the result does not depend on the thread count. */
#define BATCH 4096

int tal_cluster_keep_evidence(tal_cluster_prep_t *prep, uint64_t max_bytes, double min_identity)
{
    if (prep->evidence) return 0;
    prep->delta_floor = min_identity;
    /* a pass evaluates at most C candidates a rank */
    return tal_evidence_create(&prep->evidence, prep->tmp_dir, prep->n, BATCH, BATCH * prep->C,
                               max_bytes, prep->opt.budget);
}

typedef struct {
    tal_aligner_t *aligner;
    word_filter_t wf;
    seqbuf_t mbuf, rbuf, rcbuf; /* rcbuf: the reference reverse complemented */
    uint64_t alignments, filtered, banded;
    uint64_t computed, reused; /* alignments computed; verdicts taken from the evidence */
    uint8_t *arena;            /* the deltas this worker accepted in the current batch */
    size_t arena_used, arena_cap;
} worker_t;

/* One member against one reference. */
typedef struct {
    uint8_t pass;   /* passed both thresholds: the rest is set */
    uint8_t minus;  /* against the reference's reverse complement */
    uint8_t worker; /* whose arena holds the delta */
    float identity, coverage;
    size_t delta_off;
    size_t delta_len;
} outcome_t;

typedef struct {
    uint32_t root;  /* the reference joined, or NONE */
    uint8_t next;   /* the candidate to resume at */
    uint8_t done;   /* 0: stopped at a candidate inside the batch */
    uint8_t worker; /* whose arena holds the delta */
    uint8_t minus;  /* joined the reference's reverse complement */
    float identity, coverage;
    size_t delta_off;
    size_t delta_len;
} pick_t;

typedef struct {
    const run_t *run;
    const uint32_t *cand; /* the batch's rows */
    uint32_t *refr;
    uint64_t C, r0, r1;
    pick_t *picks;
    worker_t *workers;
    int n_workers;
    uint64_t next;      /* the next batch position to take (atomic) */
    uint8_t *decided;   /* by batch position: decided (atomic; phase 2 waits on it) */
    uint8_t failed;     /* a worker of phase 2 failed: the others stop waiting (atomic) */
    pthread_mutex_t mu; /* phase 2 sleeps on cv for a decision, not spinning: on a */
    pthread_cond_t cv;  /* shared node a spin is CPU time taken from other jobs */
    tal_evidence_t *ev; /* the evidence of earlier passes, or NULL */
    int record;         /* keep what this pass evaluates in ev */
    double delta_floor; /* and the deltas of the alignments at or above this identity */
    /* several ranks: every rank's workers claim positions (flow) and post their
     * decisions; at the batch's end rank 0 gathers the picks (the deltas into
     * workers[n_workers]'s arena) and hands every rank its decisions and code */
    const tal_reduce_comm_t *comm;
    uint64_t n_decided;                    /* positions decided, here or on other ranks (mu) */
    double phase1_s, phase2_s, exchange_s; /* wall time, for the debug log */
    uint64_t waits, wait_ns;               /* for another rank's decision (atomic) */
    int slot;                              /* the shared counter of this batch's claims */
    int error; /* the first error of a worker taking other ranks' decisions (atomic) */
} batch_t;

#ifndef NAP_MAX
#define NAP_MAX 1000000
#endif

/* A decision as it travels between ranks: rank, root, minus, identity, coverage. */
#define DECISION_WIRE 20

typedef struct {
    batch_t *b;
    int w;
    int rc;
} phase_job_t;

/* One alignment, its memory reserved first when it is more than the worker's share:
 * under a tight cap, big alignments wait for each other instead of exceeding it. */
static int align_pair(const run_t *run, worker_t *wk, const char *m, size_t ml, const char *r,
                      size_t rl, const band_t *band, tal_alignment_t *al)
{
    uint64_t need = tal_align_bytes(ml, rl, TAL_CLUSTER_MAX_CELLS), held = 0;
    int rc;
    if (need > TAL_CLUSTER_WORKER_BYTES / 2) {
        if ((rc = tal_budget_reserve_wait(run->opt->budget, TAL_MEM_ALIGN, need)) < 0) {
            tal_log_error("the memory cap leaves no room to align a %zu x %zu pair (%llu MiB)", ml,
                          rl, (unsigned long long)(need >> 20));
            return TAL_EMEMCAP;
        }
        held = need;
    }
    if (band->banded) {
        rc = tal_align_band(wk->aligner, m, ml, r, rl, band->dlo, band->dhi, al);
        wk->banded++;
    } else {
        rc = tal_align(wk->aligner, m, ml, r, rl, al);
    }
    if (held) {
        tal_aligner_trim(wk->aligner, TAL_CLUSTER_WORKER_BYTES / 4);
        tal_budget_release_waited(run->opt->budget, TAL_MEM_ALIGN, held);
    }
    /* over TAL_CLUSTER_MAX_CELLS: not aligned, with or without a cap */
    return rc == TAL_EMEMCAP ? 1 : rc;
}

/* Room for len more bytes in the worker's arena. */
static int arena_reserve(worker_t *wk, size_t len)
{
    if (wk->arena_used + len > wk->arena_cap) {
        size_t cap = wk->arena_cap ? wk->arena_cap : (1u << 20);
        uint8_t *q;
        while (cap < wk->arena_used + len) cap *= 2;
        if (!(q = realloc(wk->arena, cap))) return TAL_ENOMEM;
        wk->arena = q;
        wk->arena_cap = cap;
    }
    return 0;
}

/* Whether the entry's band is the one prefilter gives at the identity: the same support,
 * and within the reach its ends but none of the supported diagonals past them. */
static int same_band(const word_filter_t *wf, const tal_evidence_entry_t *e, size_t ml, size_t rl,
                     double identity)
{
    size_t diagonals = ml + rl + 1, shift = band_reach(ml, identity), lo, hi;
    if (!(e->flags & TAL_EV_BANDED)) return 1;
    if (((e->flags & TAL_EV_SUPPORT2) ? 2u : 1u) != band_support(wf, identity)) return 0;
    lo = e->best > shift ? e->best - shift : 0;
    hi = e->best + shift < diagonals ? e->best + shift : diagonals - 1;
    return lo <= e->dmin && e->dmax <= hi && (e->left == NONE || e->left < lo) &&
           (e->right == NONE || e->right > hi);
}

/* The verdict on member s (rank r) against the reference at rank root from what an
 * earlier pass found, if that is exactly what this pass would compute: 1 and o set (and
 * the delta in the worker's arena when this pass hands deltas out), 0 if not known (nor
 * when the delta is needed and was not kept), or an error. The filter's
 * verdict follows from the words at any identity; an alignment's, when the strand, the
 * band and the band check are those this pass would use (the full DP has neither). */
static int recall(batch_t *b, int w, uint64_t r, uint32_t s, uint32_t root, outcome_t *o)
{
    const run_t *run = b->run;
    worker_t *wk = &b->workers[w];
    const tal_evidence_entry_t *e;
    size_t count, ml = (size_t)tal_length(run->lens, s),
                  rl = (size_t)tal_length(run->lens, run->order[root]);
    double identity = run->opt->identity;
    int plus, minus, verify = identity < 0.8;
    if (!b->ev || ml + rl + 1 >= NONE) return 0;
    if (!(e = tal_evidence_find(b->ev, (uint32_t)r, root, &count))) return 0;
    plus = words_suffice(&wk->wf, ml, rl, e->words[0], identity);
    minus = run->opt->both_strands && words_suffice(&wk->wf, ml, rl, e->words[1], identity);
    if (!plus && !minus) {
        wk->filtered++;
        wk->reused++;
        return 1;
    }
    minus = minus && (!plus || e->words[1] > e->words[0]); /* the strand prefilter picks */
    for (size_t k = 0; k < count; k++, e++) {
        double id, cov;
        if (!(e->flags & TAL_EV_HAS_RESULT) || !!(e->flags & TAL_EV_MINUS) != minus) continue;
        if ((e->flags & TAL_EV_BANDED) && !!(e->flags & TAL_EV_VERIFIED) != verify) continue;
        if (!same_band(&wk->wf, e, ml, rl, identity)) continue;
        if (e->flags & TAL_EV_TOO_BIG) {
            wk->banded += (e->flags & TAL_EV_BANDED) != 0; /* tried in a band, as align_pair */
            wk->reused++;
            return 1;
        }
        id = ml ? (double)e->identical / (double)ml : 0.0;
        cov = ml ? (double)e->aligned / (double)ml : 0.0;
        o->pass = id + 1e-9 >= identity && cov + 1e-9 >= run->opt->coverage;
        if (o->pass && run->opt->on_member) {
            int rc;
            if (!(e->flags & TAL_EV_DELTA)) return 0; /* aligned again for the delta */
            if ((rc = arena_reserve(wk, e->delta_len)) < 0 ||
                (rc = tal_evidence_delta(b->ev, e->delta_at, e->delta_len,
                                         wk->arena + wk->arena_used)) < 0)
                return rc;
            o->delta_off = wk->arena_used;
            o->delta_len = e->delta_len;
            wk->arena_used += e->delta_len;
        }
        wk->alignments++;
        wk->banded += (e->flags & TAL_EV_BANDED) != 0;
        wk->reused++;
        o->minus = (uint8_t)minus;
        o->worker = (uint8_t)w;
        o->identity = (float)id;
        o->coverage = (float)cov;
        return 1;
    }
    return 0;
}

/* Member s (rank r) against the reference at rank root: the short-word filter on the
 * strand that shares more words, then the alignment; o->pass says whether it passes both
 * thresholds, and then its delta is in the worker's arena (unless the verdict came from
 * the evidence: only where no delta is wanted). */
static int evaluate(batch_t *b, int w, uint64_t r, uint32_t s, uint32_t root, const char **mseq,
                    outcome_t *o)
{
    const run_t *run = b->run;
    worker_t *wk = &b->workers[w];
    uint32_t ref_id = run->order[root];
    const char *rseq;
    tal_alignment_t al;
    tal_evidence_entry_t ev;
    band_t band;
    uint64_t words, mwords = 0;
    size_t rl = (size_t)tal_length(run->lens, ref_id);
    int rc, minus = 0;
    memset(o, 0, sizeof *o);
    if (recall(b, w, r, s, root, o)) return 0;
    memset(o, 0, sizeof *o);
    if (!*mseq && (rc = get_seq(run, s, &wk->mbuf, mseq)) < 0) return rc;
    if ((rc = get_seq(run, ref_id, &wk->rbuf, &rseq)) < 0) return rc;
    rc = prefilter(&wk->wf, *mseq, (size_t)tal_length(run->lens, s), rseq, rl, run->opt->identity,
                   &band, &words);
    if (rc < 0) return rc;
    if (run->opt->both_strands) {
        /* the strand that shares more words (the plus strand on a tie) */
        band_t mband;
        int mrc;
        if (rl > wk->rcbuf.cap) {
            char *q = realloc(wk->rcbuf.buf, rl);
            if (!q) return TAL_ENOMEM;
            wk->rcbuf.buf = q;
            wk->rcbuf.cap = rl;
        }
        tal_revcomp(rseq, rl, wk->rcbuf.buf);
        mrc = prefilter(&wk->wf, *mseq, (size_t)tal_length(run->lens, s), wk->rcbuf.buf, rl,
                        run->opt->identity, &mband, &mwords);
        if (mrc < 0) return mrc;
        if (mrc && (!rc || mwords > words)) {
            rc = 1;
            band = mband;
            rseq = wk->rcbuf.buf;
            minus = 1;
        }
    }
    memset(&ev, 0, sizeof ev);
    ev.member = (uint32_t)r;
    ev.root = root;
    ev.words[0] = (uint32_t)words;
    ev.words[1] = (uint32_t)mwords;
    if (!rc) {
        wk->filtered++;
        if (b->record) tal_evidence_add(b->ev, &ev);
        return 0;
    }
    rc = align_pair(run, wk, *mseq, (size_t)tal_length(run->lens, s), rseq, rl, &band, &al);
    if (rc < 0) return rc;
    if (b->record) {
        ev.flags = (rc == 1 ? TAL_EV_TOO_BIG : TAL_EV_ALIGNED) | (minus ? TAL_EV_MINUS : 0u) |
                   (band.banded ? TAL_EV_BANDED : 0u) | (band.support == 2 ? TAL_EV_SUPPORT2 : 0u) |
                   (run->opt->identity < 0.8 ? TAL_EV_VERIFIED : 0u);
        ev.best = band.best;
        ev.dmin = band.dmin;
        ev.dmax = band.dmax;
        ev.left = band.left;
        ev.right = band.right;
        if (rc == 0) {
            ev.identical = (uint32_t)al.identical;
            ev.aligned = (uint32_t)al.aligned;
            /* the delta of an alignment some pass may accept, for the pass that writes it */
            if (al.identity + 1e-9 >= b->delta_floor && al.coverage + 1e-9 >= run->opt->coverage &&
                al.delta_len <= UINT32_MAX) {
                int drc = tal_evidence_put_delta(b->ev, al.delta, al.delta_len, &ev.delta_at);
                if (drc < 0) return drc;
                ev.delta_len = (uint32_t)al.delta_len;
                ev.flags |= TAL_EV_DELTA;
            }
        }
        tal_evidence_add(b->ev, &ev);
    }
    if (rc == 1) return 0; /* too big to align: not this one */
    wk->alignments++;
    wk->computed++;
    if (al.identity + 1e-9 >= run->opt->identity && al.coverage + 1e-9 >= run->opt->coverage) {
        if ((rc = arena_reserve(wk, al.delta_len)) < 0) return rc;
        memcpy(wk->arena + wk->arena_used, al.delta, al.delta_len);
        o->pass = 1;
        o->minus = (uint8_t)minus;
        o->worker = (uint8_t)w;
        o->identity = (float)al.identity;
        o->coverage = (float)al.coverage;
        o->delta_off = wk->arena_used;
        o->delta_len = al.delta_len;
        wk->arena_used += al.delta_len;
    }
    return 0;
}

/* Waits until flag is set (1) or a worker of phase 2 failed (0). The candidate is often
 * being decided by another worker right then: a short spin first. */
static int wait_decided(batch_t *b, const uint8_t *flag)
{
    for (int spin = 0; spin < 256; spin++) {
        if (__atomic_load_n(flag, __ATOMIC_ACQUIRE)) return 1;
        if (__atomic_load_n(&b->failed, __ATOMIC_RELAXED)) return 0;
    }
    pthread_mutex_lock(&b->mu);
    while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE) &&
           !__atomic_load_n(&b->failed, __ATOMIC_RELAXED))
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

/* Sets flag (or b->failed) and wakes the workers waiting for a decision. */
static void announce(batch_t *b, uint8_t *flag)
{
    pthread_mutex_lock(&b->mu);
    __atomic_store_n(flag, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static int wait_posted(batch_t *b, const uint8_t *flag);

/* Tries rank r's candidates from p->next on, in order, and joins the first reference
 * that passes. A candidate inside the batch is decided in this batch: in the parallel
 * first phase (wait 0) the sequence stops there, to resume in the second; in the second
 * (wait 1) it waits until that candidate is decided. */
static int try_candidates(batch_t *b, int w, uint64_t r, pick_t *p, int wait)
{
    const run_t *run = b->run;
    const uint32_t *cand = b->cand + (r - b->r0) * b->C;
    uint32_t s = run->order[r], tried[64];
    const char *mseq = NULL;
    int n_tried = 0, rc;
    /* the references already tried before p->next */
    for (uint64_t c = 0; c < p->next; c++)
        tried[n_tried++] = cand[c] < r ? root_of(b->refr, cand[c]) : cand[c];
    for (uint64_t c = p->next; c < b->C && cand[c] != NONE; c++) {
        uint32_t root;
        outcome_t o;
        int seen = 0;
        if (cand[c] >= b->r0 && cand[c] < r) {
            uint8_t *flag = &b->decided[cand[c] - b->r0];
            if (!wait) {
                p->next = (uint8_t)c;
                p->done = 0;
                return 0;
            }
            if (!(b->comm && b->comm->size > 1 ? wait_posted(b, flag) : wait_decided(b, flag)))
                return 0; /* another worker failed: p not done */
        }
        /* a candidate not before r (itself, where a k-mer repeats) is not decided yet */
        root = cand[c] < r ? root_of(b->refr, cand[c]) : cand[c];
        for (int q = 0; q < n_tried; q++) seen |= tried[q] == root;
        tried[n_tried++] = root;
        if (seen || root == r) continue;
        if (run->opt->group && run->opt->group[run->order[root]] != run->opt->group[s]) continue;
        if ((rc = evaluate(b, w, r, s, root, &mseq, &o)) < 0) return rc;
        if (!o.pass) continue;
        p->root = root;
        p->identity = o.identity;
        p->coverage = o.coverage;
        p->worker = o.worker;
        p->minus = o.minus;
        p->delta_off = o.delta_off;
        p->delta_len = o.delta_len;
        p->done = 1;
        return 0;
    }
    p->done = 1; /* no candidate passed: a reference */
    return 0;
}

/* With several ranks, a worker claims this many batch positions at a time: neighbours in
 * rank are often kin, and a decision one needs from another rank waits for a message. */
#ifndef DEAL
#define DEAL 1
#endif

/* decided[i] of a position decided by this rank's workers (1: a copy, or another rank's) */
#define DECIDED_HERE 2

static void put32(uint8_t **at, uint32_t v)
{
    memcpy(*at, &v, 4);
    *at += 4;
}

static uint32_t get32(const uint8_t **at)
{
    uint32_t v;
    memcpy(&v, *at, 4);
    *at += 4;
    return v;
}

/* A pick as it travels: position, root, next | done << 8 | minus << 16, identity,
 * coverage, delta length; the deltas follow the picks. */
#define PICK_WIRE 24

/* The picks this rank decided to rank 0, with this rank's code (rc): rank 0 puts the
 * other ranks' picks in place, their deltas in workers[n_workers]'s arena. Returns the first error of
 * any rank on rank 0, rc elsewhere. */
static int gather_picks(batch_t *b, int rc)
{
    const tal_reduce_comm_t *cm = b->comm;
    uint64_t count = 0, deltas = 0, total = 0;
    size_t *lens = NULL, len;
    uint8_t *msg, *at;
    void *all = NULL;
    worker_t *in = &b->workers[b->n_workers];
    int grc;
    for (uint64_t i = 0; cm->rank != 0 && i < b->r1 - b->r0; i++) {
        if (b->decided[i] != DECIDED_HERE) continue;
        count++;
        deltas += b->picks[i].root != NONE ? b->picks[i].delta_len : 0;
    }
    len = 8 + (size_t)count * PICK_WIRE + (size_t)deltas;
    if (!(msg = malloc(len)) || !(lens = calloc((size_t)cm->size, sizeof *lens))) {
        free(msg);
        return TAL_ENOMEM; /* the caller stops every rank */
    }
    at = msg;
    put32(&at, (uint32_t)(int32_t)rc);
    put32(&at, (uint32_t)count);
    for (uint64_t i = 0; count && i < b->r1 - b->r0; i++) {
        const pick_t *p = &b->picks[i];
        float f[2] = {p->identity, p->coverage};
        if (b->decided[i] != DECIDED_HERE) continue;
        put32(&at, (uint32_t)i);
        put32(&at, p->root);
        put32(&at, (uint32_t)p->next | (uint32_t)p->done << 8 | (uint32_t)p->minus << 16);
        memcpy(at, f, 8);
        at += 8;
        put32(&at, p->root != NONE ? (uint32_t)p->delta_len : 0);
    }
    for (uint64_t i = 0; count && i < b->r1 - b->r0; i++) {
        const pick_t *p = &b->picks[i];
        if (b->decided[i] != DECIDED_HERE || p->root == NONE) continue;
        memcpy(at, b->workers[p->worker].arena + p->delta_off, p->delta_len);
        at += p->delta_len;
    }
    grc = cm->gather(cm->ctx, msg, len, &all, lens);
    free(msg);
    if (grc < 0 || cm->rank != 0) {
        free(lens);
        free(all);
        return grc < 0 ? grc : rc;
    }
    in->arena_used = 0;
    at = all;
    for (int k = 0; k < cm->size; k++) {
        const uint8_t *m = at, *d;
        int32_t krc = (int32_t)get32(&m);
        uint32_t kcount = get32(&m);
        if (krc < 0 && rc == 0) rc = krc;
        total = 0;
        d = m + (size_t)kcount * PICK_WIRE;
        for (uint32_t e = 0; e < kcount && k > 0; e++) {
            uint32_t i = get32(&m), root = get32(&m), flags = get32(&m), dl;
            pick_t *p = &b->picks[i];
            float f[2];
            memcpy(f, m, 8);
            m += 8;
            dl = get32(&m);
            *p = (pick_t){.root = root,
                          .next = (uint8_t)flags,
                          .done = (uint8_t)(flags >> 8),
                          .minus = (uint8_t)(flags >> 16),
                          .worker = (uint8_t)b->n_workers,
                          .identity = f[0],
                          .coverage = f[1]};
            if (root != NONE && dl) {
                if (arena_reserve(in, dl) < 0) {
                    rc = TAL_ENOMEM;
                    break;
                }
                memcpy(in->arena + in->arena_used, d + total, dl);
                p->delta_off = in->arena_used;
                p->delta_len = dl;
                in->arena_used += dl;
            }
            total += dl;
        }
        at += lens[k];
    }
    free(lens);
    free(all);
    return rc;
}

/* Rank 0's decisions on the batch (and its code: the first error of any rank) to every
 * rank: each position's root, identity and coverage. */
static int bcast_decisions(batch_t *b, int rc)
{
    const tal_reduce_comm_t *cm = b->comm;
    uint64_t count = b->r1 - b->r0;
    size_t len = 4 + (size_t)count * 12;
    uint8_t *msg = malloc(len), *at = msg;
    const uint8_t *in;
    int brc;
    if (!msg) return TAL_ENOMEM;
    if (cm->rank == 0) {
        put32(&at, (uint32_t)(int32_t)rc);
        for (uint64_t i = 0; i < count; i++) {
            float f[2] = {b->picks[i].identity, b->picks[i].coverage};
            put32(&at, b->picks[i].root);
            memcpy(at, f, 8);
            at += 8;
        }
    }
    if ((brc = cm->bcast(cm->ctx, msg, len)) < 0) {
        free(msg);
        return brc;
    }
    in = msg;
    rc = (int32_t)get32(&in);
    for (uint64_t i = 0; cm->rank != 0 && i < count; i++) {
        float f[2];
        b->picks[i].root = get32(&in);
        memcpy(f, in, 8);
        in += 8;
        b->picks[i].identity = f[0];
        b->picks[i].coverage = f[1];
        b->picks[i].done = 1;
    }
    free(msg);
    return rc;
}

/* Position i decided here: posted to the other ranks, and announced. */
static int publish(batch_t *b, uint64_t i)
{
    const pick_t *p = &b->picks[i];
    uint8_t msg[DECISION_WIRE], *at = msg;
    float f[2] = {p->identity, p->coverage};
    int rc;
    put32(&at, (uint32_t)(b->r0 + i));
    put32(&at, p->root);
    put32(&at, p->minus);
    memcpy(at, f, 8);
    if ((rc = b->comm->post(b->comm->ctx, msg, sizeof msg)) < 0) return rc;
    pthread_mutex_lock(&b->mu);
    __atomic_store_n(&b->decided[i], DECIDED_HERE, __ATOMIC_RELEASE);
    b->n_decided++;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

/* Another rank's decisions, len bytes of them. */
static int take_decisions(batch_t *b, const uint8_t *m, size_t len)
{
    if (len % DECISION_WIRE) return TAL_EIO;
    for (size_t k = 0; k < len / DECISION_WIRE; k++) {
        uint32_t r = get32(&m), root = get32(&m), minus = get32(&m);
        float f[2];
        pick_t *p;
        memcpy(f, m, 8);
        m += 8;
        if (r < b->r0 || r >= b->r1) return TAL_EIO; /* every rank is in the same batch */
        p = &b->picks[r - b->r0];
        p->root = root;
        p->minus = (uint8_t)minus;
        p->identity = f[0];
        p->coverage = f[1];
        p->done = 1;
        if (root != NONE) b->refr[r] = root;
        pthread_mutex_lock(&b->mu);
        __atomic_store_n(&b->decided[r - b->r0], 1, __ATOMIC_RELEASE);
        b->n_decided++;
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
    }
    return 0;
}

static void *phase2(void *arg);

/* Takes the decisions other ranks posted, if any: 1 if some came, 0 if none, or an
 * error. */
static int take_posted(batch_t *b)
{
    const tal_reduce_comm_t *cm = b->comm;
    void *msg;
    size_t len;
    int k, got = 0, rc;
    while ((k = cm->poll(cm->ctx, &msg, &len)) > 0) {
        rc = take_decisions(b, msg, len);
        free(msg);
        if (rc < 0) return rc;
        got = 1;
    }
    return k < 0 ? k : got;
}

/* Several ranks: waits until flag is set (1) or a worker failed (0), taking the other
 * ranks' decisions meanwhile. A decision is usually a few alignments away: spins that
 * yield the core first, then naps of up to NAP_MAX ns. */
static int wait_posted(batch_t *b, const uint8_t *flag)
{
    long nap = 2000;
    int spins = 0, got;
    double t0 = 0;
    for (;;) {
        if (__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
            if (t0 > 0) {
                __atomic_add_fetch(&b->waits, 1, __ATOMIC_RELAXED);
                __atomic_add_fetch(&b->wait_ns, (uint64_t)((tal_now_seconds() - t0) * 1e9),
                                   __ATOMIC_RELAXED);
            }
            return 1;
        }
        if (t0 == 0) t0 = tal_now_seconds();
        if (__atomic_load_n(&b->failed, __ATOMIC_RELAXED)) return 0;
        if ((got = take_posted(b)) < 0) {
            int none = 0;
            __atomic_compare_exchange_n(&b->error, &none, got, 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED);
            announce(b, &b->failed);
            return 0;
        }
        if (got) {
            nap = 2000;
            spins = 0;
        } else if (spins < 64) {
            spins++;
            sched_yield();
        } else {
            struct timespec ts = {0, nap};
            nanosleep(&ts, NULL);
            if (nap < NAP_MAX) nap *= 2;
        }
    }
}

/* Several ranks: a worker claims DEAL batch positions at a time through the batch's
 * shared counter and decides them in rank order (phase 2's way: each after the
 * candidates it needs, here or on other ranks), posting each decision to the others. The
 * claims go in rank order, so the first undecided position is always claimed by a worker
 * that can decide it. */
static void *flow(void *arg)
{
    phase_job_t *job = arg;
    batch_t *b = job->b;
    const tal_reduce_comm_t *cm = b->comm;
    uint64_t size = b->r1 - b->r0, chunk;
    while (!__atomic_load_n(&b->failed, __ATOMIC_RELAXED)) {
        if ((job->rc = cm->fetch_add(cm->ctx, b->slot, 1, &chunk)) < 0) break;
        if (chunk >= (size + DEAL - 1) / DEAL) return NULL;
        for (uint64_t i = chunk * DEAL; i < size && i < (chunk + 1) * DEAL; i++) {
            uint64_t r = b->r0 + i;
            pick_t *p = &b->picks[i];
            if (__atomic_load_n(&b->decided[i], __ATOMIC_RELAXED)) continue; /* a copy */
            if ((job->rc = try_candidates(b, job->w, r, p, 1)) < 0) break;
            if (!p->done) return NULL; /* another worker failed */
            if (p->root != NONE) b->refr[r] = p->root;
            if ((job->rc = publish(b, i)) < 0) break;
        }
        if (job->rc < 0) break;
    }
    if (job->rc < 0) announce(b, &b->failed);
    return NULL;
}

/* Several ranks: this rank's workers take their share of the batch (flow), then this
 * thread takes the rest of the other ranks' decisions: it ends when every position of
 * the batch is decided here. */
static int dataflow(batch_t *b, int threads)
{
    phase_job_t jobs[64];
    pthread_t tids[64];
    int started[64] = {0}, rc = 0, all = 0;
    uint64_t size = b->r1 - b->r0;
    long nap = 2000;
    b->next = 0;
    for (int t = 0; t < threads; t++) {
        jobs[t] = (phase_job_t){b, t, 0};
        if (pthread_create(&tids[t], NULL, flow, &jobs[t]) == 0)
            started[t] = 1;
        else
            rc = TAL_ENOMEM;
    }
    if (rc < 0) announce(b, &b->failed);
    for (int t = 0; t < threads; t++) {
        if (started[t]) pthread_join(tids[t], NULL);
        if (jobs[t].rc < 0 && rc == 0) rc = jobs[t].rc;
    }
    while (rc == 0 && !b->failed) {
        int got;
        pthread_mutex_lock(&b->mu);
        all = b->n_decided == size;
        pthread_mutex_unlock(&b->mu);
        if (all) break;
        if ((got = take_posted(b)) < 0) {
            rc = got;
        } else if (got) {
            nap = 2000;
        } else {
            struct timespec ts = {0, nap};
            nanosleep(&ts, NULL);
            if (nap < NAP_MAX) nap *= 2;
        }
    }
    if (rc == 0) rc = __atomic_load_n(&b->error, __ATOMIC_RELAXED);
    if (rc == 0 && !all) { /* not expected: every failure above has its code */
        tal_log_error("reduce: a worker stopped before the batch was decided");
        rc = TAL_EIO;
    }
    return rc;
}

static void *phase1(void *arg)
{
    phase_job_t *job = arg;
    batch_t *b = job->b;
    for (;;) {
        uint64_t i = __atomic_fetch_add(&b->next, 1, __ATOMIC_RELAXED), r = b->r0 + i;
        if (r >= b->r1) break;
        if (bit_of(b->run->copy, r)) continue;
        if ((job->rc = try_candidates(b, job->w, r, &b->picks[i], 0)) < 0) break;
    }
    return NULL;
}

/* Phase 2: the sequences that stopped, taken in rank order by every worker; each waits
 * for the candidates it needs, which are earlier ranks, so the earliest undecided one
 * never waits and the decisions are those of one worker going in rank order. */
static void *phase2(void *arg)
{
    phase_job_t *job = arg;
    batch_t *b = job->b;
    for (;;) {
        uint64_t i = __atomic_fetch_add(&b->next, 1, __ATOMIC_RELAXED), r = b->r0 + i;
        pick_t *p = &b->picks[i];
        if (r >= b->r1) break;
        if (__atomic_load_n(&b->decided[i], __ATOMIC_RELAXED)) continue;
        if ((job->rc = try_candidates(b, job->w, r, p, 1)) < 0) {
            announce(b, &b->failed);
            break;
        }
        if (!p->done) break; /* another worker failed */
        if (p->root != NONE) b->refr[r] = p->root;
        announce(b, &b->decided[i]);
    }
    return NULL;
}

/* Runs fn on the batch with up to threads workers (the calling thread is the first). */
static int run_phase(batch_t *b, int threads, void *(*fn)(void *))
{
    phase_job_t jobs[64];
    pthread_t tids[64];
    int started[64] = {0}, rc = 0;
    b->next = 0;
    for (int t = 0; t < threads; t++) {
        jobs[t] = (phase_job_t){b, t, 0};
        if (t > 0 && pthread_create(&tids[t], NULL, fn, &jobs[t]) == 0) started[t] = 1;
    }
    fn(&jobs[0]);
    for (int t = 1; t < threads; t++)
        if (started[t]) pthread_join(tids[t], NULL);
    for (int t = 0; t < threads; t++)
        if (jobs[t].rc < 0) rc = jobs[t].rc;
    return rc;
}

static int decide_batch(batch_t *b)
{
    int rc, threads = b->n_workers;
    double t0 = tal_now_seconds(), t1;
    for (int t = 0; t < threads; t++) b->workers[t].arena_used = 0;
    for (uint64_t r = b->r0; r < b->r1; r++)
        b->picks[r - b->r0] = (pick_t){.root = NONE, .done = 1};
    b->failed = 0;
    if (threads > 1 && b->r1 - b->r0 < 64) threads = 1; /* not worth a thread */
    if (b->comm && b->comm->size > 1) {
        const tal_reduce_comm_t *cm = b->comm;
        /* no phases: a flow of decisions between the ranks; then rank 0 gathers the
         * deltas, and every rank leaves the batch together, with rank 0's code. Rank 0
         * readies the next batch's counter now: every rank has left the one before, and
         * none starts the next before this batch's broadcast. */
        rc = cm->rank == 0 ? cm->set(cm->ctx, 1 - b->slot, 0) : 0;
        b->n_decided = 0;
        b->error = 0;
        for (uint64_t r = b->r0; r < b->r1; r++) {
            b->decided[r - b->r0] = (uint8_t)bit_of(b->run->copy, r);
            b->n_decided += b->decided[r - b->r0];
        }
        if (rc == 0) rc = dataflow(b, threads);
        t1 = tal_now_seconds();
        b->phase2_s += t1 - t0;
        /* a rank that failed calls nothing collective again: it returns its error, and
         * the caller stops every rank (the others may be waiting for its decisions) */
        if (rc == 0) rc = gather_picks(b, 0);
        if (rc == 0) rc = bcast_decisions(b, 0);
        b->exchange_s += tal_now_seconds() - t1;
        return rc;
    }
    /* phase 1: each sequence as far as the references decided before the batch go */
    if ((rc = run_phase(b, threads, phase1)) < 0) return rc;
    t1 = tal_now_seconds();
    b->phase1_s += t1 - t0;
    /* those decided are final (copies follow their first copy, after the batch) */
    for (uint64_t r = b->r0; r < b->r1; r++) {
        pick_t *p = &b->picks[r - b->r0];
        int done = bit_of(b->run->copy, r) || p->done;
        if (done && p->root != NONE) b->refr[r] = p->root;
        b->decided[r - b->r0] = (uint8_t)done;
    }
    /* phase 2: the rest, in rank order, each after the candidates it needs */
    rc = run_phase(b, threads, phase2);
    b->phase2_s += tal_now_seconds() - t1;
    return rc;
}

static int read_rows(const tal_cluster_prep_t *p, uint64_t r0, uint64_t r1, uint32_t *rows)
{
    size_t len = (size_t)((r1 - r0) * p->C * 4), done = 0;
    off_t at = (off_t)(r0 * p->C * 4);
    while (done < len) {
        ssize_t k = pread(p->cand_fd, (char *)rows + done, len - done, at + (off_t)done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            tal_log_error("cannot read the candidate list back from --tmp-dir %s: %s", p->tmp_dir,
                          k < 0 ? strerror(errno) : "it is shorter than written");
            return TAL_EIO;
        }
        done += (size_t)k;
    }
    return 0;
}

/* Whether this process hands out the results (rank 0 of several, or the only one). */
static int writer(const tal_cluster_opt_t *opt) { return !opt->comm || opt->comm->rank == 0; }

/* Rank 0 sums every rank's alignment counts. */
static int sum_counts(const tal_cluster_opt_t *opt, tal_cluster_t *out)
{
    const tal_reduce_comm_t *cm = opt->comm;
    uint64_t mine[5] = {out->alignments, out->filtered, out->banded, out->computed, out->reused};
    size_t *lens;
    void *all = NULL;
    int rc;
    if (!cm || cm->size < 2) return 0;
    if (!(lens = calloc((size_t)cm->size, sizeof *lens))) return TAL_ENOMEM;
    rc = cm->gather(cm->ctx, mine, sizeof mine, &all, lens);
    if (rc == 0 && cm->rank == 0) {
        const uint64_t *v = all;
        memset(mine, 0, sizeof mine);
        for (int k = 0; k < cm->size; k++)
            for (int j = 0; j < 5; j++) mine[j] += v[5 * k + j];
        out->alignments = mine[0];
        out->filtered = mine[1];
        out->banded = mine[2];
        out->computed = mine[3];
        out->reused = mine[4];
    }
    free(lens);
    free(all);
    return rc;
}

/* Every rank its own reference but the copies, which start at their first copy. */
static int seed_refs(const tal_cluster_prep_t *p, uint32_t *refr)
{
    uint64_t pairs[4096];
    off_t at = 0;
    for (uint64_t r = 0; r < p->n; r++) refr[r] = (uint32_t)r;
    for (;;) {
        ssize_t k = pread(p->copies_fd, pairs, sizeof pairs, at);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 || (k > 0 && k < 8)) {
            tal_log_error("cannot read the list of exact copies back from --tmp-dir %s: %s",
                          p->tmp_dir, k < 0 ? strerror(errno) : "it is shorter than written");
            return TAL_EIO;
        }
        if (k == 0) return 0;
        k -= k % 8; /* a short read: the rest of that pair comes with the next */
        for (size_t i = 0; i < (size_t)k / 8; i++) refr[pairs[i] >> 32] = (uint32_t)pairs[i];
        at += k;
    }
}

/* The pass's references by rank (refr, out->ref) to references by record id, in place:
 * the values first, in rank order (a member's or copy's reference is an earlier rank,
 * already a record id), then their places, following the permutation's cycles. Fills
 * twin, identity and coverage for the copies and calls on_copy, in rank order. */
static int refs_by_id(const tal_cluster_prep_t *prep, const tal_cluster_opt_t *opt,
                      tal_cluster_t *out)
{
    uint64_t n = prep->n, *seen;
    uint32_t *refr = out->ref;
    const uint32_t *order = prep->order;
    float *ident = out->identity, *cover = out->coverage;
    int rc;
    for (uint64_t r = 0; r < n; r++) {
        uint32_t id = order[r], t = refr[r];
        if (bit_of(prep->copy, r)) {
            uint32_t first = order[t];
            int first_is_ref = refr[t] == first; /* refr[t]: already t's reference's id */
            refr[r] = refr[t];
            if (ident) {
                out->twin[id] = first;
                ident[id] = first_is_ref ? 1.0f : ident[first];
                cover[id] = first_is_ref ? 1.0f : cover[first];
            }
            out->duplicates++;
            if (opt->on_copy && writer(opt) &&
                (rc = opt->on_copy(opt->ctx, id, first, refr[r])) < 0)
                return rc;
        } else {
            if (ident) out->twin[id] = id;
            out->references += t == r;
            refr[r] = t == r ? id : refr[t];
        }
    }
    /* ref[order[r]] = refr[r] for every r: each cycle of the permutation carried round */
    if ((rc = tal_budget_alloc(opt->budget, TAL_MEM_RECORDS, TAL_BITMAP_BYTES(n), (void **)&seen)) <
        0)
        return rc;
    for (uint64_t r0 = 0; r0 < n; r0++) {
        uint32_t carry;
        if (bit_of(seen, r0)) continue;
        carry = refr[r0];
        for (uint64_t at = order[r0]; !bit_of(seen, at); at = order[at]) {
            uint32_t was = refr[at];
            refr[at] = carry;
            carry = was;
            set_bit(seen, at);
        }
    }
    tal_budget_free(opt->budget, TAL_MEM_RECORDS, seen, TAL_BITMAP_BYTES(n));
    return 0;
}

int tal_cluster_decide(tal_cluster_prep_t *prep, const tal_cluster_opt_t *opt, tal_cluster_t *out)
{
    uint64_t n = prep->n, C = prep->C;
    uint32_t *refr, *order = prep->order, *cand = NULL;
    const uint64_t *copy = prep->copy;
    float *ident, *cover;
    worker_t *workers = NULL;
    pick_t *picks = NULL;
    uint8_t *decided = NULL;
    int n_workers = opt->threads > 0 ? (opt->threads > 64 ? 64 : opt->threads) : 1, rc;
    uint64_t worker_bytes = (uint64_t)n_workers * TAL_CLUSTER_WORKER_BYTES;
    uint64_t batch_bytes = BATCH * (C * 4 + sizeof(pick_t) + 1);
    run_t run = {opt, n, prep->src, prep->lens, NULL, prep->copy, order};
    memset(out, 0, sizeof *out);
    out->n = n;
    out->budget = opt->budget;
    /* ref (by rank while the pass goes, by record id at its end); unless ref_only, twin,
     * identity, coverage by id */
    out->block_bytes = ((size_t)n + 1) * (opt->ref_only ? 1 : 4) * 4;
    if ((rc = tal_budget_alloc(opt->budget, TAL_MEM_RECORDS, out->block_bytes, &out->block)) < 0) {
        out->block_bytes = 0;
        return rc;
    }
    out->ref = refr = out->block;
    if (!opt->ref_only) {
        out->twin = out->ref + n + 1;
        out->identity = (float *)(out->twin + n + 1);
        out->coverage = out->identity + n + 1;
    }
    /* by rank: every rank its own reference, copies their first copy */
    if ((rc = seed_refs(prep, refr)) < 0) goto fail_early;
    ident = out->identity;
    cover = out->coverage;
    if ((rc = tal_budget_reserve(opt->budget, TAL_MEM_ALIGN, worker_bytes + batch_bytes)) < 0)
        goto fail_early;
    /* and one more: the arena of the deltas other ranks send */
    if (!(workers = calloc((size_t)n_workers + 1, sizeof *workers)) ||
        !(picks = malloc(BATCH * sizeof *picks)) || !(cand = malloc(BATCH * C * sizeof *cand)) ||
        !(decided = malloc(BATCH))) {
        rc = TAL_ENOMEM;
        goto fail;
    }
    for (int t = 0; t < n_workers; t++) {
        if ((rc = tal_aligner_create(&workers[t].aligner, opt->nucleotide, TAL_CLUSTER_MAX_CELLS)) <
            0)
            goto fail;
        /* below 0.8 the shared words place the band less surely: check it */
        tal_aligner_verify_bands(workers[t].aligner, opt->identity < 0.8);
        if ((rc = word_filter_init(&workers[t].wf, opt->nucleotide)) < 0) goto fail;
    }
    {
        batch_t b = {.run = &run,
                     .cand = cand,
                     .refr = refr,
                     .C = C,
                     .picks = picks,
                     .workers = workers,
                     .n_workers = n_workers,
                     .decided = decided,
                     .mu = PTHREAD_MUTEX_INITIALIZER,
                     .cv = PTHREAD_COND_INITIALIZER,
                     .ev = prep->evidence,
                     .delta_floor = prep->delta_floor,
                     .comm = opt->comm};
        /* the pass that writes the outputs needs deltas, so it has no verdicts to keep */
        b.record = b.ev && !opt->on_member;
        for (uint64_t r0 = 0; r0 < n; r0 += BATCH) {
            b.r0 = r0;
            b.r1 = r0 + BATCH < n ? r0 + BATCH : n;
            progress(opt, "aligning", r0, n);
            if ((rc = read_rows(prep, b.r0, b.r1, cand)) < 0) goto fail;
            if (b.ev && (rc = tal_evidence_begin(b.ev, r0 / BATCH)) < 0) goto fail;
            b.slot = (int)(prep->batches++ % 2);
            rc = decide_batch(&b);
            if (b.ev) {
                int erc = tal_evidence_end(b.ev, rc == 0 && b.record);
                if (rc == 0) rc = erc;
            }
            if (rc < 0) goto fail;
            for (uint64_t r = b.r0; r < b.r1; r++) {
                pick_t *p = &picks[r - b.r0];
                uint32_t s = order[r];
                if (!bit_of(copy, r) && p->root == NONE) out->references++;
                if (bit_of(copy, r) || p->root == NONE) continue;
                refr[r] = p->root;
                if (ident) {
                    ident[s] = p->identity;
                    cover[s] = p->coverage;
                }
                if (opt->on_member && writer(opt)) {
                    tal_alignment_t al;
                    memset(&al, 0, sizeof al);
                    al.identity = p->identity;
                    al.coverage = p->coverage;
                    al.delta = workers[p->worker].arena + p->delta_off;
                    al.delta_len = p->delta_len;
                    al.minus = p->minus;
                    if ((rc = opt->on_member(opt->ctx, s, order[p->root], &al)) < 0) goto fail;
                }
            }
            if (opt->stop_above && out->references > opt->stop_above) {
                out->stopped = 1;
                progress(opt, "aligning", n, n);
                rc = 0;
                goto fail;
            }
        }
        tal_log_debug("pass at %.4f: phase 1 %.2f s, phase 2 %.2f s, between ranks %.2f s; "
                      "waited %llu times %.2f s for another rank's decisions",
                      opt->identity, b.phase1_s, b.phase2_s, b.exchange_s,
                      (unsigned long long)b.waits, (double)b.wait_ns / 1e9);
    }
    out->references = 0; /* counted again below, with the copies' first copies */
    progress(opt, "aligning", n, n);
    /* back to record ids: copies join where their first copy ended */
    if ((rc = refs_by_id(prep, opt, out)) < 0) goto fail;
    rc = 0;
fail:
    tal_budget_release(opt->budget, TAL_MEM_ALIGN, worker_bytes + batch_bytes);
    for (int t = 0; workers && t < n_workers; t++) { /* a stopped pass's too */
        out->alignments += workers[t].alignments;
        out->filtered += workers[t].filtered;
        out->banded += workers[t].banded;
        out->computed += workers[t].computed;
        out->reused += workers[t].reused;
    }
    if (rc == 0) rc = sum_counts(opt, out);
fail_early:
    for (int t = 0; workers && t < n_workers; t++) {
        tal_aligner_free(workers[t].aligner);
        word_filter_free(&workers[t].wf);
        free(workers[t].mbuf.buf);
        free(workers[t].rbuf.buf);
        free(workers[t].rcbuf.buf);
        free(workers[t].arena);
    }
    if (workers) free(workers[n_workers].arena);
    free(workers);
    free(picks);
    free(decided);
    free(cand);
    if (rc < 0) tal_cluster_free(out);
    return rc;
}

int tal_cluster_run_source(const tal_cluster_opt_t *opt, uint64_t n, const tal_seq_source_t *src,
                           const uint64_t *lens, tal_cluster_t *out)
{
    tal_cluster_prep_t *prep;
    tal_lengths_t l;
    int rc;
    memset(out, 0, sizeof *out);
    tal_lengths_wrap(&l, lens);
    if ((rc = tal_cluster_prepare(opt, n, src, &l, &prep)) < 0) return rc;
    rc = tal_cluster_decide(prep, opt, out);
    tal_cluster_prep_free(prep);
    return rc;
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
