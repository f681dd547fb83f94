/* The state of one reduction, shared by the files that make it up: run.c (input, the
 * clustering and the -r search), plan.c (the memory plan), outputs.c (writing every output)
 * and presets.c (the aligner presets and their header and side-file styles). */
#ifndef TAL_REDUCE_INTERNAL_H
#define TAL_REDUCE_INTERNAL_H

#include "talaria/reduce.h"
#include "talaria/store.h"

#include "cluster_internal.h"

#include <stdint.h>
#include <stdio.h>

/* What each member needs at the end (its alignment's identity and coverage, where its
 * delta is) waits on disk in a file of fixed slots by record id: memory holds 4 bytes a
 * record (its reference), not 24. References' slots stay zero (a hole in the file). */
typedef struct {
    float identity, coverage;
    uint64_t delta_off;
    uint32_t delta_len, flags; /* flags: TAL_MEMBER_* */
} tal_member_slot_t;

enum {
    TAL_MEMBER_ALIGNED = 1,   /* joined its reference by an alignment */
    TAL_MEMBER_IDENTICAL = 2, /* an exact copy of its reference: no delta */
    TAL_MEMBER_MINUS = 4      /* its delta is against the reference's reverse complement */
};

/* one residue start kept per this many records (a power of two) */
#define TAL_STARTS_EVERY          64
#define TAL_STARTS_BYTES(records) (((records) / TAL_STARTS_EVERY + 2) * 8)

/* Header pages read in order and resident at once (tal_reduction_header). */
#define TAL_HEADER_WINDOW ((uint64_t)8 << 20)

/* Checking the input: the scan's three blocks, each of at most TAL_SCAN_BLOCK residues and
 * TAL_SCAN_BLOCK header bytes (a raw store's pages). */
#define TAL_SCAN_BLOCK   ((size_t)2 << 20)
#define TAL_SCAN_WINDOWS (3 * 2 * (uint64_t)TAL_SCAN_BLOCK)

/* member slots read at once while writing */
#define TAL_MEMBER_SLOTS_READ 4096

typedef struct {
    const tal_reduce_opt_t *opt;
    const char *in;  /* the input as named, for messages */
    const char *out; /* the reduced FASTA */
    char *deltas_path, *members_path, *taxid_path;
    double identity, coverage; /* used: identity as chosen by the -r search */
    int passes;
    uint64_t computed;    /* alignments computed over every pass */
    tal_budget_t *budget; /* opt's, or own_budget */
    tal_budget_t *own_budget;
    char *scratch; /* our directory under tmp_dir */
    tal_store_t *store;
    int own_store; /* opened (or built) here: closed at the end */
    tal_store_info_t info;
    tal_lengths_t lengths; /* 2 bytes a record, or the compact store's own array */
    const uint64_t *checksums;
    /* where every TAL_STARTS_EVERY-th record's residues start in seq_fd: the others
     * follow from the lengths, so the store's offsets are not held */
    uint64_t *starts;
    int seq_fd; /* the raw residues: read with pread, never mapped */
    char *buf;  /* the calling thread's read buffer */
    size_t buf_cap;
    int delta_fd;
    FILE *delta_out;
    uint64_t delta_used;
    uint64_t minus;      /* members on the minus strand, counted as they are written */
    int result_fd;       /* a tal_member_slot_t per record id */
    uint64_t sort_bytes; /* the plan: each sorter's buffer */
    uint64_t held_input; /* reserved for the store's arrays for the whole run */
    double started;
    tal_reduce_progress_t progress;
    uintptr_t window; /* where the header pages read since the last release start */
} tal_reduction_t;

/* Reports progress through opt->progress (stage is a fixed string). */
void tal_reduction_progress(tal_reduction_t *x, const char *stage, uint64_t done, uint64_t total);

/* plan.c: with exact 0, from an estimate of a FASTA input before it is indexed (a store
 * input is planned once open); with exact 1 from the open store, also reserving the
 * store's arrays for the run. Sets x->sort_bytes; a cap below the plan is TAL_EMEMCAP,
 * logged with the smallest cap that works. */
int tal_reduction_plan(tal_reduction_t *x, int exact);

/* outputs.c: every output from the clustering's references and the member slots. */
int tal_reduction_write(tal_reduction_t *x, const tal_cluster_t *c);

/* run.c: record id's residues into *buf (a tal_seq_source_t's get). */
int tal_reduction_residues(void *ctx, uint64_t id, char **buf, size_t *cap, const char **seq);
/* Reads (write 0) or writes count member slots from record id on. */
int tal_reduction_slots(const tal_reduction_t *x, tal_member_slot_t *m, size_t count, uint64_t id,
                        int write);
/* Drops the header pages read so far from the resident set. */
void tal_reduction_release_headers(tal_reduction_t *x);
/* Record id's header, for headers read in record order: the pages they span are released
 * whenever they would pass TAL_HEADER_WINDOW, however long the headers. Valid until the
 * next call. */
int tal_reduction_header(tal_reduction_t *x, uint64_t id, const char **h, size_t *len);

/* presets.c: the taxid in a header (the first tag of OX=N, TaxID=N, taxid|N|, taxid=N,
 * tax_id=N, in that order of tags), TAL_TAXID_NONE without one, TAL_TAXID_MALFORMED when
 * the tag's number runs into a letter, '.' or '_' or exceeds 4,000,000,000 (treated as
 * no taxid, and counted in a warning). */
#define TAL_TAXID_NONE      (-1L)
#define TAL_TAXID_MALFORMED (-2L)
long tal_header_taxid(const char *header, size_t len);
/* The aligner's side file is BASE + this (".taxid.tsv", lambda ".accession2taxid"); NULL
 * for none (generic; kraken, whose taxids go in the headers). */
const char *tal_aligner_side_suffix(int aligner);
/* The side file's first line for the aligner ("" for none). */
const char *tal_aligner_side_header(int aligner);
/* One side-file line for accession acc (the ACC of "db|ACC|NAME" when there is one). */
void tal_aligner_side_line(int aligner, FILE *f, const char *acc, size_t acc_len, long taxid);

#endif
