/* A streaming scan over every record of a store, in order, with triple buffering: one
 * buffer is filled (read, checked, decompressed) by an I/O thread while the caller
 * works on a second and may still drain a third. Pages of the store that were read are
 * released as the scan moves on, so resident memory stays flat over any store size. */
#ifndef TALARIA_SCAN_H
#define TALARIA_SCAN_H

#include "talaria/api.h"

#include <stddef.h>
#include <stdint.h>

#include "talaria/store.h"

TAL_BEGIN_DECLS

typedef struct tal_scan tal_scan_t;

typedef struct {
    int threads;          /* 1: everything in the caller's thread; >= 2: an I/O thread */
    size_t block_size;    /* raw stores: residue bytes per block (default 4 MiB) */
    int headers;          /* the caller reads headers: release their pages too, and end
                           * a raw store's block at block_size header bytes as well */
    tal_budget_t *budget; /* may be NULL */
} tal_scan_opt_t;

/* Records [first_record, first_record + record_count) and their residues, which span
 * [raw_offset, raw_offset + len) of the store's raw residue space. */
typedef struct {
    uint64_t first_record, record_count, raw_offset;
    const char *residues;
    size_t len;
    int slot; /* the scan's own */
} tal_scan_block_t;

TAL_EXPORT void tal_scan_opt_init(tal_scan_opt_t *opt);
TAL_EXPORT int tal_scan_open(tal_scan_t **out, const tal_store_t *store, const tal_scan_opt_t *opt);
/* 1 and the next block, 0 at the end, or an error (a damaged chunk is TAL_EINPUT with
 * a message naming it). The block stays valid until tal_scan_release; at most two may
 * be held at once. */
TAL_EXPORT int tal_scan_next(tal_scan_t *scan, tal_scan_block_t *block);
TAL_EXPORT void tal_scan_release(tal_scan_t *scan, tal_scan_block_t *block);
/* Record id of a held block, its checksum checked (TAL_EINPUT if it fails). */
TAL_EXPORT int tal_scan_record(tal_scan_t *scan, const tal_scan_block_t *block, uint64_t id,
                               tal_record_t *rec);
/* Bytes of buffers the scan holds (the three chunk buffers of a compressed store). */
TAL_EXPORT size_t tal_scan_buffer_bytes(const tal_scan_t *scan);
TAL_EXPORT void tal_scan_close(tal_scan_t *scan);

TAL_END_DECLS

#endif
