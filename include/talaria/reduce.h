/* Reducing a sequence database: reference sequences to a FASTA file, every other sequence
 * losslessly as a delta against its reference (the delta store, read with deltas.h), the
 * membership as TSV and optionally CD-HIT .clstr and an aligner's taxid map. */
#ifndef TALARIA_REDUCE_H
#define TALARIA_REDUCE_H

#include <stddef.h>
#include <stdint.h>

#include "talaria/api.h"
#include "talaria/mem.h"
#include "talaria/store.h"

TAL_BEGIN_DECLS

/* The aligner the reduced FASTA is for: default thresholds, header style, side file. A
 * side file lists every input record whose header has a taxid (OX=, TaxID=, taxid tags),
 * members too, in input order. */
typedef enum {
    TAL_ALIGNER_GENERIC = 0, /* 0.90 / 0.80, no side file */
    TAL_ALIGNER_DIAMOND,     /* 0.90 / 0.80, BASE.taxid.tsv for diamond makedb --taxonmap */
    TAL_ALIGNER_MMSEQS2,     /* 0.90 / 0.80, BASE.taxid.tsv for mmseqs createtaxdb */
    TAL_ALIGNER_BLAST,       /* 0.90 / 0.90, BASE.taxid.tsv for makeblastdb -taxid_map */
    TAL_ALIGNER_LAMBDA,      /* 0.90 / 0.80, BASE.accession2taxid for lambda3 mkindexp */
    TAL_ALIGNER_KRAKEN       /* 0.95 / 0.90, headers tagged "|kraken:taxid|N" */
} tal_aligner_preset_t;

/* Which strands of a nucleotide reference a member may join. */
typedef enum { TAL_STRAND_BOTH = 0, TAL_STRAND_PLUS = 1 } tal_strand_t;

/* What a run is doing, for a progress display. stage is one of a few fixed strings (the
 * same pointer while the stage lasts); done and total count its work (total 0: unknown).
 * With a ratio, pass is the search's pass (1-based, 0 for the final pass or without a
 * ratio) and identity the identity that pass tries. */
typedef struct {
    const char *stage;
    uint64_t done, total;
    int pass;
    double identity;
    double seconds; /* since the run started */
} tal_reduce_progress_t;

/* Several processes sharing one reduction (MPI ranks, or any transport the caller
 * provides): every rank runs tal_reduce_run with the same input and options, each with
 * the same comm but for rank. Each rank sorts its share of the k-mer keys (by hash) and
 * every rank gets every candidate link; the workers of every rank claim the sequences of
 * each batch through a shared counter, each rank tells the others its decisions as it
 * makes them, and rank 0 writes the outputs, byte for byte those of one process. gather and bcast are
 * collective: every rank calls them in the same order. A rank that fails returns its
 * error without calling them again: the caller then stops every rank (MPI_Abort), or the
 * others wait for ever. */
typedef struct {
    int rank, size; /* this process, of size (rank 0 writes the outputs) */
    void *ctx;
    /* Rank 0 receives every rank's len bytes (its own first): *all holds them back to
     * back (the caller frees it) and lens[r] rank r's count; other ranks get nothing. */
    int (*gather)(void *ctx, const void *data, size_t len, void **all, size_t *lens);
    /* Rank 0's len bytes into every rank's data. */
    int (*bcast)(void *ctx, void *data, size_t len);
    /* Not collective, from any thread (the transport serialises them): post sends len
     * bytes to every other rank without waiting (data may be reused at once); poll takes
     * one message posted by any rank if one has come (1, *data malloc'd for the caller to
     * free), else 0. The messages of one rank come in the order posted. */
    int (*post)(void *ctx, const void *data, size_t len);
    int (*poll)(void *ctx, void **data, size_t *len);
    /* Not collective, from any thread: counter k (0 or 1, one for all ranks; rank 0 sets
     * both to 0 at the start of each run) grows by add, *before its value before,
     * atomically; set makes it value. */
    int (*fetch_add)(void *ctx, int k, uint64_t add, uint64_t *before);
    int (*set)(void *ctx, int k, uint64_t value);
} tal_reduce_comm_t;

typedef struct {
    double identity;     /* identical residues / member length, (0, 1] (0.9) */
    double coverage;     /* aligned member residues / member length, (0, 1] (0.8) */
    double ratio;        /* > 0: aim at ratio x N references instead of a fixed identity */
    int aligner;         /* tal_aligner_preset_t (generic) */
    int threads;         /* worker threads, exactly (1) */
    const char *tmp_dir; /* scratch space; NULL: $TMPDIR, else /tmp */
    /* Outputs beside the reduced FASTA when NULL: BASE.deltas.tal, BASE.members.tsv, where
     * BASE is the FASTA's path without .fasta/.fa/.faa/.fna/.fas. No .clstr when NULL. */
    const char *deltas_path, *membership_path, *clstr_path;
    int force;            /* replace existing outputs (atomically) */
    int allow_duplicates; /* FASTA input: keep the first record of a duplicated accession */
    /* Memory: every large buffer is reserved from budget; NULL: the run makes its own with
     * max_memory as the cap (0: none), counting what the process holds already. */
    tal_budget_t *budget;
    uint64_t max_memory;
    int low_memory; /* the smallest sort buffers (spills more, slower) */
    /* The sketch: k-mer length (proteins 4-16, over the reduced alphabet; nucleotides
     * 4-31), k-mers kept per sequence (1-256), candidate references tried per sequence
     * (1-64). 0: the defaults (10 or 15, 20, 8 or 32). */
    int kmer_size, sketch_size, candidates;
    /* Nucleotides: TAL_STRAND_BOTH (the default) also aligns each member against the
     * reverse complement of its candidate references, TAL_STRAND_PLUS only the plus
     * strand. A member that joins a reverse complement is kept as such (its delta is
     * against the reference's reverse complement) and comes back in its own orientation.
     * Ignored for proteins. */
    int strand;
    /* A member joins only a reference with the same taxid (OX=, TaxID=, taxid tags of the
     * headers); records without a taxid join only each other. Costs 4 bytes a record. */
    int same_taxon;
    /* Recorded in the delta store (format 1.1): the configuration the run was given, as
     * tal_config_summary writes it; NULL: none. */
    const char *provenance;
    /* Called from the calling thread as the work goes on; NULL: no progress. */
    void (*progress)(void *ctx, const tal_reduce_progress_t *progress);
    void *ctx;
    /* The ranks sharing this run; NULL: this process alone. */
    const tal_reduce_comm_t *comm;
} tal_reduce_opt_t;

/* Defaults: identity 0.9, coverage 0.8, generic, one thread, no cap. */
TAL_EXPORT void tal_reduce_opt_init(tal_reduce_opt_t *opt);
/* Sets the aligner and its identity and coverage (set your own after this to override
 * them). TAL_EUSAGE for an unknown name: diamond, mmseqs2, blast, lambda, kraken, generic. */
TAL_EXPORT int tal_reduce_set_aligner(tal_reduce_opt_t *opt, const char *name);
/* "generic", "diamond", ...; NULL for a value out of range. */
TAL_EXPORT const char *tal_aligner_name(int aligner);

/* The memory a run needs. */
typedef struct {
    uint64_t records;    /* the input's records (estimated from the first MiB of a FASTA) */
    int exact;           /* records and the longest sequence come from a store */
    uint64_t need;       /* bytes the run reserves at least (per-record arrays, workers,
                            the largest alignment, two sort buffers of the least size) */
    uint64_t min_cap;    /* the smallest workable max_memory, a whole MiB above need */
    uint64_t sort_bytes; /* each of the two sort buffers under opt's cap */
    int fits;            /* opt's cap (or none) is at least need */
} tal_reduce_plan_t;

/* The plan for reducing input (a FASTA file or a store directory) with opt's threads,
 * cap and low_memory. What the process already holds counts (opt->budget's reservations,
 * else the resident set now). */
TAL_EXPORT int tal_reduce_plan(const char *input, const tal_reduce_opt_t *opt,
                               tal_reduce_plan_t *plan);

typedef struct {
    uint64_t records, references, members;
    uint64_t duplicates; /* members that are exact copies of their reference */
    uint64_t minus;      /* members that joined a reference's reverse complement */
    uint64_t residues, reference_residues;
    uint64_t alignments, banded, filtered; /* alignments made, of them in a band;
                                              candidates the short-word filter rejected */
    /* alignments computed over the whole run (with a ratio, the search's passes too), and
     * of the last pass's alignments and filter verdicts those taken from the search's
     * evidence instead of computed again */
    uint64_t computed, reused;
    double identity, coverage; /* used (with a ratio: the identity the search chose) */
    int passes;                /* clustering passes (1 without a ratio) */
    int nucleotide;
    double seconds;
    uint64_t peak_rss; /* the process's VmHWM at the end */
    /* the paths written, owned by the result (tal_reduce_result_free) */
    char *fasta_path, *deltas_path, *membership_path, *clstr_path, *taxid_path;
} tal_reduce_result_t;

/* Reduces input (a FASTA file, plain/gz/zst/lz4, or a store directory) to out_fasta and
 * the other outputs. Every output is written under a temporary name beside its path and
 * renamed into place only when all are complete; on failure nothing is left at any output
 * path, nor in tmp_dir. Errors: TAL_EUSAGE (bad options, an output that is the input),
 * TAL_EEXIST (an output exists without force), TAL_EINPUT (bad FASTA or store),
 * TAL_EMEMCAP (the cap is below the plan: logged with the smallest that works), TAL_EIO.
 * result may be NULL; else free it with tal_reduce_result_free. */
TAL_EXPORT int tal_reduce_run(const char *input, const char *out_fasta, const tal_reduce_opt_t *opt,
                              tal_reduce_result_t *result);
/* The same from a store the caller has open (not closed here). */
TAL_EXPORT int tal_reduce_run_store(tal_store_t *store, const char *out_fasta,
                                    const tal_reduce_opt_t *opt, tal_reduce_result_t *result);
TAL_EXPORT void tal_reduce_result_free(tal_reduce_result_t *result);

TAL_END_DECLS

#endif
