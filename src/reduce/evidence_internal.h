/* The evidence of the passes of one clustering (-r): what each (member, reference) pair
 * evaluated so far gave (shared words, band, identical and aligned residues), kept in a
 * scratch file by batch of member ranks so that a later pass at another identity
 * re-decides from it and aligns only the pairs it never saw in the same band. */
#ifndef TAL_EVIDENCE_INTERNAL_H
#define TAL_EVIDENCE_INTERNAL_H

#include "talaria/mem.h"

#include <stddef.h>
#include <stdint.h>

/* What one evaluation of a pair showed. The words decide the short-word filter at any
 * identity; the alignment (identical, aligned) holds for every identity that gives the
 * same strand, band and band check. */
enum {
    TAL_EV_ALIGNED = 1,    /* identical and aligned hold (else: filtered, or too big) */
    TAL_EV_TOO_BIG = 2,    /* passed the filter, too big to align in that band */
    TAL_EV_MINUS = 4,      /* the band and result are the reverse complement's */
    TAL_EV_BANDED = 8,     /* aligned in the band [dmin, dmax] (else the full DP) */
    TAL_EV_SUPPORT2 = 16,  /* the band's diagonals were those of two shared words or more */
    TAL_EV_VERIFIED = 32,  /* the aligner checked the band against the full DP's score */
    TAL_EV_DELTA = 64,     /* the alignment's delta is kept (delta_at, delta_len) */
    TAL_EV_HAS_RESULT = 3, /* ALIGNED or TOO_BIG: the pair passed the filter at the time */
};

typedef struct {
    uint32_t member, root; /* ranks */
    uint32_t words[2];     /* words of the short-word filter shared on the plus, minus strand */
    /* diagonals as prefilter counts them (reference position - member position + member
     * length): the densest, the band's ends, and the nearest supported diagonals outside
     * the band (UINT32_MAX: none), which say for which reach the band stays the same */
    uint32_t best, dmin, dmax, left, right;
    uint32_t identical, aligned;
    uint32_t flags;
    uint32_t delta_len;
    uint32_t unused;   /* 0: no padding goes to the file unwritten */
    uint64_t delta_at; /* in the evidence's delta file */
} tal_evidence_entry_t;

typedef struct tal_evidence tal_evidence_t;

/* In dir (two unlinked files: the entries, and the deltas kept), for n ranks in batches
 * of batch ranks, each pass adding at most per_batch entries a batch. At most max_bytes
 * of memory are held at once (the new entries of a batch, at most half, and the loaded
 * ones), reserved from budget; TAL_EMEMCAP when not even one new entry a rank fits (the
 * caller then goes without). */
int tal_evidence_create(tal_evidence_t **out, const char *dir, uint64_t n, uint64_t batch,
                        uint64_t per_batch, uint64_t max_bytes, tal_budget_t *budget);
void tal_evidence_free(tal_evidence_t *ev);

/* Before a batch: loads its entries, sorted by (member, root), the newest that fit (the
 * pass computes the rest again); no new entries yet. */
int tal_evidence_begin(tal_evidence_t *ev, uint64_t batch);
/* The entries of (member, root) loaded for the batch: *count of them at the result. */
const tal_evidence_entry_t *tal_evidence_find(const tal_evidence_t *ev, uint32_t member,
                                              uint32_t root, size_t *count);
/* Keeps e among the batch's new entries; thread-safe. Beyond per_batch: dropped. */
void tal_evidence_add(tal_evidence_t *ev, const tal_evidence_entry_t *e);
/* Keeps a delta (thread-safe): *at is where tal_evidence_delta finds it. */
int tal_evidence_put_delta(tal_evidence_t *ev, const uint8_t *delta, size_t len, uint64_t *at);
/* Reads back len bytes of the delta kept at at. */
int tal_evidence_delta(tal_evidence_t *ev, uint64_t at, size_t len, uint8_t *out);
/* After the batch: writes its new entries to the file (keep) or drops them; frees the
 * loaded ones. */
int tal_evidence_end(tal_evidence_t *ev, int keep);

#endif
