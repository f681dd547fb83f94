/* Writing the delta store of a reduction (doc/format.md, "Delta store"); reading it is
 * public (talaria/deltas.h). Private to libtalaria: talaria reduce is the only writer. */
#ifndef TAL_DSTORE_INTERNAL_H
#define TAL_DSTORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "talaria/deltas.h"
#include "talaria/mem.h"

#define TAL_DSTORE_MAGIC "TALDELTA"

/* ---- writing ---- */
typedef struct tal_dwriter tal_dwriter_t;

typedef struct {
    uint64_t records, references;
    uint64_t header_bytes, delta_bytes; /* totals, known before writing */
    double identity, coverage;
    int nucleotide;
    const char *fasta_path; /* the reduced FASTA, as the user named it */
    const char *provenance; /* recorded after the path (format 1.1); NULL: none */
    tal_budget_t *budget;   /* the key index is sorted within it (NULL: none) */
    const char *tmp_dir;    /* where that sort spills (NULL: $TMPDIR, else /tmp) */
    uint64_t sort_bytes;    /* the sort buffer's most (0: 128 MiB) */
    /* the input's line layout, a store's section 10 as it is (format 1.2: written after
     * the keys, and the file is minor 2); NULL: none, the file is minor 1 as before */
    const void *line_layout;
    size_t line_layout_size;
} tal_dlayout_t;

/* Creates path (which must not exist; the caller renames it into place). */
int tal_dwriter_open(tal_dwriter_t **out, const char *path, const tal_dlayout_t *layout);
/* Records in the original order; delta_off is into the delta bytes (written by
 * tal_dwriter_copy_deltas). */
int tal_dwriter_record(tal_dwriter_t *w, const tal_drec_t *rec, uint64_t delta_off);
int tal_dwriter_reference(tal_dwriter_t *w, const tal_dref_t *ref);
/* Copies delta_bytes bytes from fd (from offset 0) as the delta section. */
int tal_dwriter_copy_deltas(tal_dwriter_t *w, int fd);
/* Writes the key index, the header and the checksum, fsyncs; the file is complete. */
int tal_dwriter_finish(tal_dwriter_t *w);
/* Closes and removes the file. */
void tal_dwriter_abort(tal_dwriter_t *w);

#endif
