/* External sorting of fixed-size records within a memory budget: records collect in one
 * buffer; a full buffer is sorted and spilled to a run in --tmp-dir, and the runs are
 * merged k-way from disk (in several passes when there are too many for the buffer).
 * Nothing spills when everything fits. The runs live in one unnamed file (O_TMPFILE),
 * so no exit, not even a kill, leaves a spill file behind. */
#ifndef TAL_SORTER_INTERNAL_H
#define TAL_SORTER_INTERNAL_H

#include "talaria/mem.h"

#include <stddef.h>
#include <stdint.h>

/* Sorts n records of record_size bytes (a multiple of 8, at most 64) in place by their
 * first 8 bytes, read as a native uint64_t, and records of 16 bytes or more with equal
 * keys by their second 8 bytes likewise (beyond that, ties end in no particular order).
 * In place (MSD radix), no allocation. */
void tal_sort_records(void *base, size_t n, size_t record_size);

typedef struct tal_sorter tal_sorter_t;

typedef struct {
    size_t record_size;    /* a multiple of 8, 8..64; the first 8 bytes are the key */
    uint64_t buffer_bytes; /* the most the buffer may hold; it grows up to this */
    uint64_t expected;     /* records expected in all (for the disk-full message), or 0 */
    const char *tmp_dir;   /* where runs go; NULL: $TMPDIR, else /tmp */
    const char *what;      /* named in messages: "k-mer keys" */
    tal_budget_t *budget;  /* the buffer is reserved from it; may be NULL */
    tal_mem_component_t component;
} tal_sorter_opt_t;

typedef struct {
    uint64_t records;       /* added */
    uint64_t runs;          /* spilled runs (0: sorted in memory) */
    uint64_t spilled_bytes; /* written to disk, merge passes included */
    uint64_t buffer_bytes;  /* the buffer's size at its largest */
} tal_sorter_stats_t;

/* The smallest buffer_bytes a sorter works with (it merges as many runs at a time as
 * 64 KiB windows fit in its buffer, 31 at this size, in more passes when there are more). */
#define TAL_SORTER_MIN_BUFFER     ((uint64_t)2 << 20)
/* The buffer a sorter gets when its caller plans none (no cap). */
#define TAL_SORTER_DEFAULT_BUFFER ((uint64_t)128 << 20)

/* TAL_EMEMCAP when the budget refuses the first megabyte of buffer. */
int tal_sorter_create(tal_sorter_t **out, const tal_sorter_opt_t *opt);
/* Adds count records; may sort and spill a run (TAL_EIO when the disk refuses it, with
 * the directory and the bytes still needed in the message). Not thread-safe. */
int tal_sorter_add(tal_sorter_t *s, const void *records, size_t count);
/* No more records: sorts what is buffered, or merges the runs down to a few. An error
 * here (or in a later merge) is returned by every later tal_sorter_read as well. */
int tal_sorter_finish(tal_sorter_t *s);
/* The next sorted records (after finish): *records points at *count of them, valid until
 * the next call. 1 while records come, 0 at the end, or a negative error. */
int tal_sorter_read(tal_sorter_t *s, const void **records, size_t *count);
void tal_sorter_stats(const tal_sorter_t *s, tal_sorter_stats_t *stats);
/* Frees the buffer (giving its bytes back to the budget) and the runs. */
void tal_sorter_destroy(tal_sorter_t *s);

#endif
