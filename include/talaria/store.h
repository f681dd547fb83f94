/* The talaria store: build one from FASTA, open it read-only (mmap), look records up,
 * and verify it. Many processes may open the same store at once. */
#ifndef TALARIA_STORE_H
#define TALARIA_STORE_H

#include "talaria/api.h"

#include <stddef.h>
#include <stdint.h>

#include "talaria/mem.h"

TAL_BEGIN_DECLS

typedef struct tal_store tal_store_t;

typedef enum { TAL_COMPRESS_NONE = 0, TAL_COMPRESS_LZ4 = 1, TAL_COMPRESS_ZSTD = 2 } tal_compress_t;

typedef struct {
    int threads;          /* worker threads, >= 1 */
    int compress;         /* tal_compress_t: raw residues, or chunks compressed with it */
    int level;            /* compression level; 0 = the codec's default (lz4 1, zstd 3) */
    uint64_t chunk_size;  /* raw residue bytes per chunk (default 4 MiB) */
    int force;            /* replace an existing store at the output path */
    int allow_duplicates; /* keep the first record of a duplicated accession */
    int catalog_index;    /* build an SQL index on the catalog's accession column */
    /* Called every half second or so and once at the end (final 1) with the records and
     * residues read so far; NULL: no progress. The library prints nothing itself. */
    void (*progress)(void *ctx, uint64_t records, uint64_t residues, double seconds, int final);
    void *progress_ctx;
    tal_budget_t *budget; /* every buffer is reserved from it; NULL: no budget */
    int low_memory;       /* the smallest buffers (also chosen under a cap below 1 GiB) */
    /* Recorded in the catalog's provenance under "config": the configuration the build was
     * given, as tal_config_summary writes it; NULL: none. */
    const char *provenance;
} tal_index_opt_t;

typedef struct {
    uint64_t records;
    uint64_t residues;
    uint64_t duplicates_skipped;
    uint64_t input_bytes;
    double seconds;
} tal_build_stats_t;

TAL_EXPORT void tal_index_opt_init(tal_index_opt_t *opt);
/* The bytes a build of fasta_path would reserve from its budget: buffers, the SQLite
 * cache, and the accession table estimated from the first records of a plain file (for
 * compressed input or stdin the table is left out: it is reserved as it grows). */
TAL_EXPORT uint64_t tal_index_plan(const char *fasta_path, const tal_index_opt_t *opt);
/* The records of a plain FASTA file, estimated from its first MiB; 0 if it cannot be
 * sampled. */
TAL_EXPORT uint64_t tal_index_estimate(const char *fasta_path);
/* Builds a store at out_path from a FASTA file (plain/gz/zst/lz4, "-" for stdin).
 * Nothing is left at out_path on failure. */
TAL_EXPORT int tal_store_build(const char *fasta_path, const char *out_path,
                               const tal_index_opt_t *opt, tal_build_stats_t *stats);

typedef enum { TAL_ALPHABET_PROTEIN = 1, TAL_ALPHABET_NUCLEOTIDE = 2 } tal_alphabet_t;

typedef struct {
    uint64_t records;
    uint64_t residues;
    uint64_t header_bytes;
    uint64_t min_length, max_length;
    uint64_t duplicates_skipped;
    uint64_t key_count;
    int alphabet;
    const uint64_t *composition; /* [256] */
    uint64_t stored_residue_bytes;
    const char *codec;    /* "none", "lz4" or "zstd" */
    uint64_t chunk_count; /* compressed stores */
    uint64_t chunk_size;  /* compressed stores: raw bytes a chunk aims at */
} tal_store_info_t;

typedef struct {
    const char *header;
    size_t header_len;
    const char *seq;
    size_t seq_len;
} tal_record_t;

/* Opens with bounds checks on every count and size; a damaged store, or a path that holds
 * no store, is TAL_EINPUT; a path that does not exist or cannot be read is TAL_EIO. */
TAL_EXPORT int tal_store_open(tal_store_t **out, const char *path);
TAL_EXPORT void tal_store_close(tal_store_t *store);
TAL_EXPORT const char *tal_store_path(const tal_store_t *store);
TAL_EXPORT void tal_store_info(const tal_store_t *store, tal_store_info_t *info);

/* Finds the record whose first header word (or the ACC of "db|ACC|NAME") is acc. */
TAL_EXPORT int tal_store_find(const tal_store_t *store, const char *acc, size_t acc_len,
                              uint64_t *id);
/* Gives record id with its checksum checked (TAL_EINPUT if it fails). Raw stores: zero
 * copy, valid until close. Compressed stores: the residues point into a decoded chunk
 * in the store's cache and stay valid until the next call on the same store; such a
 * store is not safe for concurrent tal_store_record calls (open it once per thread, or
 * use tal_scan). */
TAL_EXPORT int tal_store_record(const tal_store_t *store, uint64_t id, tal_record_t *rec);
/* For a few records out of many (talaria get): from now on tal_store_find and
 * tal_store_record read what they need with pread into the store's own small buffers
 * instead of through the mappings, so the process's resident set stays small whatever
 * the store's size. A record (raw stores too) is then valid until the next call on the
 * same store, which is used from one thread at a time. */
TAL_EXPORT int tal_store_set_random_access(tal_store_t *store, int on);
/* Bytes of decoded chunks a compressed store keeps for random access (default 32 MiB,
 * at least one chunk). */
TAL_EXPORT int tal_store_set_cache(tal_store_t *store, size_t bytes);
/* What the kernel reports for a decoded chunk buffer (huge pages, NUMA policy);
 * TAL_ENOTFOUND for raw stores, which are read in place. */
TAL_EXPORT int tal_store_buffer_report(tal_store_t *store, tal_mem_report_t *report);
/* The lengths array (record_count values). Mapped bytes: the caller must compare what it
 * derives (sum, min, max) with tal_store_info before trusting it. */
TAL_EXPORT int tal_store_lengths(const tal_store_t *store, const uint64_t **lengths);

/* Recomputes every checksum and checks every offset; logs the first broken section. */
TAL_EXPORT int tal_store_verify(const char *path, int quiet);

TAL_END_DECLS

#endif
