/* What verify needs from an open store beyond the public API. */
#ifndef TAL_STORE_INTERNAL_H
#define TAL_STORE_INTERNAL_H

#include "codec_internal.h"
#include "format_internal.h"
#include "layout_internal.h"
#include "talaria/store.h"

/* The section's table entry (NULL if absent) and its mapped bytes. */
const tal_section_disk_t *tal_store_section_(const tal_store_t *s, uint32_t id, const void **data,
                                             size_t *size);

/* Compressed stores: the chunk table (NULL, 0 for raw ones), the chunk holding record
 * id, and chunk k decoded into dst (its checksum checked first; a failure names the
 * chunk and its records). */
const tal_chunk_disk_t *tal_store_chunks_(const tal_store_t *s, uint64_t *count);
uint64_t tal_store_chunk_of(const tal_store_t *s, uint64_t id);
int tal_store_chunk_decode(const tal_store_t *s, tal_codec_ctx_t *ctx, uint64_t k, char *dst,
                           size_t cap);
/* Format 1.3 compressed headers: the header chunk table (NULL, 0 if the headers are raw),
 * "header chunk K (records A-B)", and whether chunk k's stored bytes match its checksum. */
const tal_chunk_disk_t *tal_store_hchunks_(const tal_store_t *s, uint64_t *count);
void tal_store_hchunk_name_(const tal_store_t *s, uint64_t k, char *buf, size_t size);
int tal_store_hchunk_intact_(const tal_store_t *s, uint64_t k, const char **stored);
/* An array section (hdr_offsets, seq_offsets, lengths, checksums) as values: decoded on
 * open when compressed (format 1.3), else the mapping; *count values. */
const uint64_t *tal_store_array_(const tal_store_t *s, uint32_t id, uint64_t *count);
/* 1 if the accession table holds one key a record (format 1.3, TAL_META_ONE_KEY). */
int tal_store_one_key_(const tal_store_t *s);
/* "chunk K (records A-B)", 1-based, for messages. */
void tal_store_chunk_name_(const tal_store_t *s, uint64_t k, char *buf, size_t size);
/* Points *stored at chunk k's stored bytes; 1 if they match the chunk's checksum. */
int tal_store_chunk_intact_(const tal_store_t *s, uint64_t k, const char **stored);
/* Logs "PATH: WHAT; the store is damaged ..." and returns TAL_EINPUT. */
int tal_store_corrupt_(const tal_store_t *s, const char *what);
/* tal_store_record with the residues read from base (a decoded block holding the raw
 * residue space from base_offset on, base_len bytes). */
int tal_store_record_at_(const tal_store_t *s, uint64_t id, const char *base, uint64_t base_offset,
                         size_t base_len, tal_record_t *rec);

/* The input's line layout (format 1.2): 1 and *l set if the store keeps it, else 0. */
int tal_store_layout_(const tal_store_t *s, tal_layout_t *l);

/* Drops the pages of section id (a TAL_SEC_* value) from this process's resident set;
 * they are read again from the page cache when touched. */
void tal_store_release_(const tal_store_t *s, uint32_t id);
/* The same for the pages of section id's bytes [from, to) (clamped to the section; the
 * pages partly outside the range stay). */
void tal_store_release_range_(const tal_store_t *s, uint32_t id, uint64_t from, uint64_t to);
/* 1 if the store holds its lengths in memory (a compact store decodes them at open), 0 if
 * tal_store_lengths maps them from the file. */
int tal_store_lengths_held_(const tal_store_t *s);
/* What a scan of the store reserves from its budget itself: a compressed store's chunk
 * buffers and decompression context (0 for a raw store, whose pages are the caller's). */
uint64_t tal_scan_held_bytes_(const tal_store_t *s);
/* Record id's header read with pread into a buffer of its own, in either mode: for
 * headers from all over the store, which through the mapping would each bring their
 * neighbours' pages into the resident set. Valid until the next call. */
int tal_store_header_pread_(const tal_store_t *s, uint64_t id, const char **h, size_t *len);
/* Record id's header, unchecked (the record checksum covers it with the residues). */
int tal_store_header_(const tal_store_t *s, uint64_t id, const char **h, size_t *len);
/* The bytes an open store holds in memory for the whole of its use: a compact store's
 * per-record arrays, decoded on open, and its cache of decoded header chunks at their
 * largest (0 for a raw store, whose arrays are mapped). */
uint64_t tal_store_held_bytes_(const tal_store_t *s);
/* Raw stores: the path of the file holding the raw residue space, and the offsets array
 * (record_count + 1 values, checked on open to rise within the residue space).
 * TAL_ENOTFOUND for compressed stores. */
int tal_store_residue_file_(const tal_store_t *s, char *path, size_t size,
                            const uint64_t **offsets);

#endif
