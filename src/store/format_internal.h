/* The on-disk layout of a store (normative text: doc/format.md). Little-endian;
 * every integer a fixed-width field; the meta file ends with its own checksum. */
#ifndef TAL_FORMAT_INTERNAL_H
#define TAL_FORMAT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "talaria stores are little-endian; big-endian hosts are not supported yet"
#endif

#define TAL_STORE_MAGIC  "TALSTOR\x1a"
#define TAL_FORMAT_MAJOR 1u
#define TAL_FORMAT_MINOR                                                                           \
    3u /* 1.1: compressed residue chunks; 1.2: the line layout;
                            * 1.3: compact compressed stores */
#define TAL_META_FILE    "meta"
#define TAL_MAX_SECTIONS 64u

typedef enum {
    TAL_KIND_SEQUENCES = 0, /* records hold headers and residues */
    TAL_KIND_DELTAS = 1     /* reserved for the reduction's delta store */
} tal_store_kind_t;

typedef enum {
    TAL_SEC_HEADERS = 1,      /* header bytes, no '>' or newline */
    TAL_SEC_HDR_OFFSETS,      /* u64[N+1] into HEADERS */
    TAL_SEC_SEQ_OFFSETS,      /* u64[N+1] into the raw residue space */
    TAL_SEC_LENGTHS,          /* u64[N] */
    TAL_SEC_RESIDUES,         /* residue bytes, no newlines; codec none, or chunks */
    TAL_SEC_RECORD_CHECKSUMS, /* u64[N]: XXH3-64 of residues seeded by XXH3-64 of header */
    TAL_SEC_KEYS,             /* tal_key_slot_t[key_slots]: open-addressing hash table */
    TAL_SEC_CATALOG,          /* catalog.sqlite, checksummed as a whole */
    TAL_SEC_CHUNKS,           /* tal_chunk_disk_t[]: the chunks of compressed residues */
    TAL_SEC_LAYOUT,           /* optional: the input's line layout (layout_internal.h) */
    TAL_SEC_HDR_CHUNKS        /* tal_chunk_disk_t[]: the chunks of compressed headers (1.3) */
} tal_section_id_t;

#define TAL_SEC_LAST TAL_SEC_HDR_CHUNKS

typedef enum { TAL_CODEC_NONE = 0, TAL_CODEC_LZ4 = 1, TAL_CODEC_ZSTD = 2 } tal_codec_t;

typedef struct {
    uint32_t id;
    uint32_t codec;
    char file[32]; /* NUL-terminated plain file name inside the store directory */
    uint64_t size;
    uint64_t checksum; /* XXH3-64 of the file's bytes */
    uint64_t reserved;
} tal_section_disk_t; /* 64 bytes */

typedef struct {
    char magic[8];
    uint32_t version_major;
    uint32_t version_minor;
    uint32_t kind;
    uint32_t alphabet; /* 1 protein, 2 nucleotide */
    uint64_t record_count;
    uint64_t residue_count;
    uint64_t header_bytes;
    uint64_t min_length;
    uint64_t max_length;
    uint64_t key_count;
    uint64_t duplicates_skipped;
    uint32_t flags;
    uint32_t section_count;
    uint64_t composition[256]; /* residue byte counts, case kept */
    uint64_t key_slots;        /* power of two */
    uint64_t chunk_size;       /* compressed stores: the raw bytes a chunk aims at */
    uint64_t chunk_count;      /* compressed stores: entries in the chunk table */
    uint64_t hdr_chunk_size;   /* 1.3 compressed stores: the raw bytes a header chunk aims at */
    uint64_t hdr_chunk_count;  /* 1.3 compressed stores: entries in the header chunk table */
    uint64_t reserved[3];
} tal_meta_disk_t;

/* One chunk of compressed residues: the raw residues of records [first_record,
 * first_record + record_count), which occupy [raw_offset, raw_offset + raw_size) of the
 * raw residue space, stored at [stored_offset, stored_offset + stored_size) of the
 * residues file with codec (lz4 block, one zstd frame, or none when compressing did
 * not pay). checksum is XXH3-64 of the stored bytes. */
typedef struct {
    uint64_t first_record;
    uint64_t record_count;
    uint64_t raw_offset;
    uint64_t raw_size;
    uint64_t stored_offset;
    uint64_t stored_size;
    uint64_t checksum;
    uint32_t codec;
    uint32_t reserved;
} tal_chunk_disk_t;

/* Accession lookup: key_slots = 2^k slots; a key starts at slot (hash >> (64 - k)), linear
 * probing, an empty slot ends the search. tag is the hash's high 32 bits, so the table
 * can double while building without the keys; a tag match is confirmed by comparing the
 * record's key. ref is 0 for empty, else (id + 1), with TAL_KEY_ALIAS set when the key
 * is the "db|ACC|" alias rather than the first word. */
typedef struct {
    uint32_t tag;
    uint32_t ref;
} tal_key_slot_t;

#define TAL_KEY_ALIAS      0x80000000u
/* meta flags (format 1.3) */
#define TAL_META_ONE_KEY   1u /* the accession table holds one key per record (format.md 5.5) */
#define TAL_MAX_RECORDS    0x7ffffffeull
#define TAL_MAX_CHUNK_SIZE (1ull << 30) /* the largest --chunk-size */

static inline uint32_t tal_key_tag(uint64_t hash) { return (uint32_t)(hash >> 32); }

/* Home slot of a tag in a table of 2^bits slots (bits <= 32). */
static inline uint64_t tal_key_home(uint32_t tag, unsigned bits)
{
    return bits ? (uint64_t)(tag >> (32 - bits)) : 0;
}

_Static_assert(sizeof(tal_section_disk_t) == 64, "section entry layout");
_Static_assert(sizeof(tal_meta_disk_t) == 2200, "meta layout");
_Static_assert(sizeof(tal_key_slot_t) == 8, "key slot layout");
_Static_assert(sizeof(tal_chunk_disk_t) == 64, "chunk entry layout");

/* The accession keys of a header: the first word, and for "db|ACC|..." also ACC. */
typedef struct {
    const char *primary;
    size_t primary_len;
    const char *alias; /* NULL if none */
    size_t alias_len;
} tal_keys_t;

/* Format 1.3, one key per record: the home slot of a tag in a table of any size. */
static inline uint64_t tal_key_home_any(uint32_t tag, uint64_t slots)
{
    return ((uint64_t)tag * slots) >> 32;
}

/* The one key of a record in a table with TAL_META_ONE_KEY: the ACC of "db|ACC|NAME" if
 * the header has one, else the first word. Looking up a first word or an ACC probes the
 * key of the text looked up, computed the same way, so it finds every record whose
 * first word or ACC it is. */
static inline void tal_one_key(const tal_keys_t *k, const char **key, size_t *len)
{
    *key = k->alias ? k->alias : k->primary;
    *len = k->alias ? k->alias_len : k->primary_len;
}

void tal_header_keys(const char *header, size_t len, tal_keys_t *keys);
uint64_t tal_key_hash(const char *key, size_t len);
uint64_t tal_record_checksum(const char *header, size_t header_len, const char *seq,
                             size_t seq_len);
const char *tal_section_name(uint32_t id);
const char *tal_codec_name(uint32_t codec);

#endif
