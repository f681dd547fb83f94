/* Helpers both the builder and the reader use, so the two always agree. */
#include "format_internal.h"

#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

void tal_header_keys(const char *header, size_t len, tal_keys_t *keys)
{
    size_t n = 0;
    const char *bar, *bar2;
    while (n < len && header[n] != ' ' && header[n] != '\t') n++;
    keys->primary = header;
    keys->primary_len = n;
    keys->alias = NULL;
    keys->alias_len = 0;
    bar = memchr(header, '|', n);
    if (!bar) return;
    bar2 = memchr(bar + 1, '|', (size_t)(header + n - (bar + 1)));
    keys->alias = bar + 1;
    keys->alias_len = (size_t)((bar2 ? bar2 : header + n) - keys->alias);
    if (keys->alias_len == 0) keys->alias = NULL;
}

uint64_t tal_key_hash(const char *key, size_t len) { return XXH3_64bits(key, len); }

uint64_t tal_record_checksum(const char *header, size_t header_len, const char *seq, size_t seq_len)
{
    return XXH3_64bits_withSeed(seq, seq_len, XXH3_64bits(header, header_len));
}

const char *tal_section_name(uint32_t id)
{
    switch (id) {
    case TAL_SEC_HEADERS: return "headers";
    case TAL_SEC_HDR_OFFSETS: return "header offsets";
    case TAL_SEC_SEQ_OFFSETS: return "sequence offsets";
    case TAL_SEC_LENGTHS: return "lengths";
    case TAL_SEC_RESIDUES: return "residues";
    case TAL_SEC_RECORD_CHECKSUMS: return "record checksums";
    case TAL_SEC_KEYS: return "accession keys";
    case TAL_SEC_CATALOG: return "catalog";
    case TAL_SEC_CHUNKS: return "chunk table";
    case TAL_SEC_LAYOUT: return "line layout";
    case TAL_SEC_HDR_CHUNKS: return "header chunk table";
    default: return "unknown section";
    }
}
