/* Picking references: every sequence either becomes a reference or is assigned to one
 * that a real alignment shows at or above the identity and coverage thresholds. Within
 * a memory budget: the k-mer keys and the links between sequences are sorted by the
 * external sorter (spilling to tmp_dir when the budget is short), the candidates wait
 * on disk, and alignments larger than a worker's share wait their turn for memory. The
 * result never depends on the budget, the sort buffers or the thread count. */
#ifndef TAL_CLUSTER_INTERNAL_H
#define TAL_CLUSTER_INTERNAL_H

#include "sketch_internal.h"
#include "talaria/mem.h"
#include "talaria/reduce.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double identity; /* identical residues / member length, (0, 1] */
    double coverage; /* aligned member residues / member length, (0, 1] */
    int nucleotide;
    int both_strands; /* nucleotides: a member may join the reverse complement of a reference */
    int per_group;    /* longer sequences of a k-mer group a member is linked to (3) */
    /* and the nearest longer ones past those, up to 8 (proteins 0, nucleotides 4): in a
     * set of near-identical amplicons of similar lengths the few longest of a group are
     * often of other clusters, while a copy's own kin rank just before it */
    int near_links;
    int candidates; /* ranked candidates kept per sequence (proteins 8, nucleotides 32) */
    int threads;    /* sketching threads (1) */
    tal_sketch_opt_t sketch;
    /* By record id, or NULL: a sequence joins only a sequence of its own group, exact
     * copies included (reduce --same-taxon passes taxids). Owned by the caller. */
    const uint32_t *group;
    /* Called for each sequence that joins a reference by alignment (not for exact
     * copies), in the order decided, with the accepted alignment and its delta; a
     * negative return stops the run with that error. NULL: not called. */
    int (*on_member)(void *ctx, uint64_t member, uint64_t ref, const void *alignment);
    /* Called once every member has been decided, for each exact copy that is not its
     * own reference: its id, its first copy's id (which it shares a delta and identity
     * with, unless first == ref: then it is identical to its reference). NULL: not called. */
    int (*on_copy)(void *ctx, uint64_t member, uint64_t first, uint64_t ref);
    /* The result holds ref[] only (twin, identity and coverage NULL): 4 bytes a record
     * instead of 16, for callers that keep the rest through the callbacks. */
    int ref_only;
    /* Stop as soon as more references than this are decided (0: never): the result is
     * then incomplete, with stopped set and references above stop_above. For -r, where
     * only the count matters and it only grows as the pass goes on. */
    uint64_t stop_above;
    tal_budget_t *budget; /* every large buffer is reserved from it; NULL: none */
    /* Several ranks clustering together, each with the same input and options: each
     * sorts its share of the k-mer keys, every rank gets every candidate, the ranks'
     * workers share the decisions, and the result is the same on every rank. Only rank
     * 0 calls on_member and on_copy (the others still compute the deltas, for rank 0).
     * Each rank keeps the evidence of the positions it decides (a later pass may give
     * them to another rank, which computes them again). NULL: this process. */
    const tal_reduce_comm_t *comm;
    const char *tmp_dir; /* sort runs and the candidate file; NULL: $TMPDIR, else /tmp */
    uint64_t sort_bytes; /* the most each sorter's buffer holds (two at a time); 0: 128 MiB */
    /* Progress: stage name, done, total. NULL: none. */
    void (*progress)(void *ctx, const char *stage, uint64_t done, uint64_t total);
    void *ctx;
} tal_cluster_opt_t;

typedef struct {
    uint64_t n;
    tal_budget_t *budget; /* the arrays below are one reserved block of block_bytes */
    size_t block_bytes;
    void *block;
    uint32_t *ref;   /* ref[i] == i: i is a reference; else i's reference */
    uint32_t *twin;  /* exact copies: the first copy (lowest id); else i itself */
    float *identity; /* members: identity and coverage of the accepted alignment */
    float *coverage; /* (twin, identity, coverage: NULL with opt.ref_only) */
    uint64_t references;
    uint64_t duplicates; /* members identical to their reference */
    uint64_t alignments; /* alignments the decisions rest on */
    uint64_t filtered;   /* candidates rejected by the short-word filter */
    uint64_t banded;     /* alignments done in a band (the rest: full DP) */
    /* the alignments computed in this pass; the alignments and filter verdicts taken
     * from earlier passes' evidence instead (tal_cluster_keep_evidence) */
    uint64_t computed, reused;
    int stopped; /* opt.stop_above was passed: only references is meaningful */
} tal_cluster_t;

/* Record lengths as the clustering reads them: 2 bytes a record, the lengths from
 * TAL_LENGTH_LONG on in a table of their own (record id, length, by id); or a caller's
 * array of every length. */
#define TAL_LENGTH_LONG 0xFFFFu
typedef struct {
    const uint64_t *whole; /* every length, 8 bytes each; or NULL: shorts and longs */
    uint64_t *owned;       /* whole, when tal_lengths_create chose it (many long records) */
    uint16_t *shorts;      /* by record id; TAL_LENGTH_LONG: in longs */
    uint64_t *longs;       /* record id, length: pairs by record id */
    uint64_t n_long, long_cap;
} tal_lengths_t;

/* What tal_lengths_create takes for n records of residues residues in all, at most. */
uint64_t tal_lengths_bytes(uint64_t n, uint64_t residues);
/* Room for n lengths of residues residues in all, set in record order; not reserved from a
 * budget (the caller plans tal_lengths_bytes). The table of long lengths takes pages only
 * as it fills; where long records may be so many that 8 bytes a record cost less, one
 * array of them. */
int tal_lengths_create(tal_lengths_t *l, uint64_t n, uint64_t residues);
/* Record id's length: ids in ascending order. TAL_EINPUT: more long lengths than
 * residues allow. */
int tal_lengths_set(tal_lengths_t *l, uint64_t id, uint64_t len);
/* The caller's array, used in place. */
void tal_lengths_wrap(tal_lengths_t *l, const uint64_t *whole);
void tal_lengths_free(tal_lengths_t *l);
uint64_t tal_length_long_(const tal_lengths_t *l, uint64_t id);
static inline uint64_t tal_length(const tal_lengths_t *l, uint64_t id)
{
    uint16_t v;
    if (l->whole) return l->whole[id];
    v = l->shorts[id];
    return v != TAL_LENGTH_LONG ? v : tal_length_long_(l, id);
}

/* Where the residues come from: points *seq at record id's residues (lens[id] bytes),
 * either into memory the source owns or into *buf (grown to *cap as needed). Called
 * from several threads at once, each with its own buffers. */
typedef struct {
    int (*get)(void *ctx, uint64_t id, char **buf, size_t *cap, const char **seq);
    void *ctx;
} tal_seq_source_t;

/* The largest alignment (member x reference cells) a reduction computes; bigger pairs
 * are not aligned (the member stays a reference), with or without a cap. */
#define TAL_CLUSTER_MAX_CELLS        ((uint64_t)1 << 24)
/* Each worker's own share of alignment memory; bigger alignments reserve theirs. */
#define TAL_CLUSTER_WORKER_BYTES     ((uint64_t)3 << 20)
/* Bytes per record the clustering holds at most at once with opt.ref_only (the order and,
 * while preparing, the ranks; while deciding, the references), for planning; with
 * TAL_CLUSTER_BITMAPS bitmaps of TAL_BITMAP_BYTES (the copies, and the references' places
 * as they move from ranks to record ids). */
#define TAL_CLUSTER_BYTES_PER_RECORD 8
#define TAL_CLUSTER_BITMAPS          2
#define TAL_BITMAP_BYTES(n)          (((uint64_t)(n) / 64 + 2) * 8)

void tal_cluster_opt_init(tal_cluster_opt_t *opt, int nucleotide);

/* What does not depend on the thresholds (ranks, exact copies, candidates), computed
 * once and decided on as often as wanted (-r tries several identities). */
typedef struct tal_cluster_prep tal_cluster_prep_t;
int tal_cluster_prepare(const tal_cluster_opt_t *opt, uint64_t n, const tal_seq_source_t *src,
                        const tal_lengths_t *lens, tal_cluster_prep_t **out);
/* The greedy pass at opt's identity and coverage (the rest of opt as at prepare). */
int tal_cluster_decide(tal_cluster_prep_t *prep, const tal_cluster_opt_t *opt, tal_cluster_t *out);
void tal_cluster_prep_free(tal_cluster_prep_t *prep);
/* Keeps the evidence of every later decide (each pair's shared words, band and
 * alignment counts, and the deltas of alignments at or above min_identity and the
 * coverage) in scratch files in opt.tmp_dir, holding at most max_bytes in memory at once,
 * so that a decide at another identity computes only what it never saw: the same result,
 * sooner. TAL_EMEMCAP: max_bytes is too small (the caller goes without). */
int tal_cluster_keep_evidence(tal_cluster_prep_t *prep, uint64_t max_bytes, double min_identity);
/* prepare + decide. */
int tal_cluster_run_source(const tal_cluster_opt_t *opt, uint64_t n, const tal_seq_source_t *src,
                           const uint64_t *lens, tal_cluster_t *out);
/* Greedy, longest first: a sequence tries its candidates' references in rank order and
 * joins the first that passes; otherwise it becomes a reference. */
int tal_cluster_run(const tal_cluster_opt_t *opt, uint64_t n, const char *const *seqs,
                    const uint64_t *lens, tal_cluster_t *out);
void tal_cluster_free(tal_cluster_t *c);

#endif
