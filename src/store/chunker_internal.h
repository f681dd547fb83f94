/* Cuts the residue stream of a build into chunks at record boundaries, compresses them
 * on worker threads and appends them to the residues file in order, with their table. */
#ifndef TAL_CHUNKER_INTERNAL_H
#define TAL_CHUNKER_INTERNAL_H

#include "format_internal.h"
#include "talaria/mem.h"
#include "util/files_internal.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tal_chunker tal_chunker_t;

typedef struct {
    uint32_t codec;    /* TAL_CODEC_LZ4 or TAL_CODEC_ZSTD */
    int level;         /* 0: the codec's default */
    size_t chunk_size; /* raw bytes a chunk aims at; a longer record gets its own */
    int threads;       /* compressing threads; 0 compresses in the caller's thread */
    tal_budget_t *budget;
} tal_chunker_opt_t;

/* The most a chunker with these options reserves from its budget: a compression context
 * per thread and the chunk buffers in flight (a record longer than chunk_size takes a
 * buffer of its own besides). */
uint64_t tal_chunker_footprint(const tal_chunker_opt_t *opt);
/* out receives the stored chunks; composition ([256], added to) the raw residue counts. */
int tal_chunker_start(tal_chunker_t **out, const tal_chunker_opt_t *opt, tal_wfile_t *residues,
                      uint64_t *composition);
/* Appends one record's residues (the record ends here). */
int tal_chunker_add(tal_chunker_t *c, const char *seq, size_t len);
/* Compresses and writes what is left; *table (malloc'd, the caller frees) and *count
 * describe every chunk in order. The chunker is freed. */
int tal_chunker_finish(tal_chunker_t *c, tal_chunk_disk_t **table, uint64_t *count);
void tal_chunker_abort(tal_chunker_t *c);

#endif
