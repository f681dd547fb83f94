/* Opening a store read-only. Every count, size and offset read from disk is checked
 * before it is used; record access checks the record's own checksum. */
#include "codec_internal.h"
#include "format_internal.h"
#include "store_internal.h"
#include "talaria/error.h"
#include "util/util_internal.h"
#include "talaria/log.h"
#include "talaria/mem.h"
#include "talaria/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

typedef struct {
    const tal_section_disk_t *disk;
    const unsigned char *data;
    size_t size;
} section_map_t;

#define CACHE_SLOTS         64
#define CACHE_BYTES_DEFAULT (32u << 20)
#define HDR_CACHE_SLOTS     8 /* decoded header chunks (format 1.3), 256 KiB each */

typedef struct {
    uint64_t chunk; /* UINT64_MAX: empty */
    char *buf;
    size_t cap;
    uint64_t used_at;
} cache_entry_t;

struct tal_store {
    char *path;
    unsigned char *meta_buf;
    const tal_meta_disk_t *meta;
    const tal_section_disk_t *sections;
    section_map_t maps[TAL_SEC_LAST + 1];
    const char *headers;
    const uint64_t *hdr_offsets, *seq_offsets, *lengths, *checksums;
    const char *residues;
    const tal_key_slot_t *slots;
    unsigned slot_bits;
    int one_key; /* format 1.3: one key a record, home slots scaled to the table */
    /* compressed residues: the chunk table and a small cache of decoded chunks */
    const tal_chunk_disk_t *chunks;
    uint64_t n_chunks;
    uint32_t codec;
    tal_pool_t *pool;
    tal_codec_ctx_t *dctx;
    cache_entry_t cache[CACHE_SLOTS];
    unsigned cache_slots; /* in use: the byte bound divided by the chunk size */
    uint64_t cache_clock, last_chunk;
    uint64_t bad_chunk; /* 1 + the last chunk that failed its checks, 0 if none */
    /* random access (tal_store_set_random_access): what a lookup needs is read with
     * pread into these buffers instead of through the mappings */
    int random;
    int fds[TAL_SEC_LAST + 1]; /* the section files, -1 until opened */
    char *hbuf, *sbuf, *zbuf;  /* a record's header and residues; a stored chunk */
    size_t hcap, scap, zcap;
    char *pbuf; /* a header read by tal_store_header_pread_ */
    size_t pcap;
    char *kbuf; /* the header of a key candidate */
    size_t kcap, klen;
    uint64_t kid; /* the record kbuf holds the header of (UINT64_MAX: none) */
    /* format 1.3 compressed stores: the per-record arrays decoded on open, and the
     * header chunks with a small cache of decoded ones */
    uint64_t *own[TAL_SEC_LAST + 1];
    const tal_chunk_disk_t *hchunks;
    uint64_t n_hchunks;
    cache_entry_t hcache[HDR_CACHE_SLOTS];
    uint64_t hcache_clock, last_hchunk, bad_hchunk;
    char *hzbuf; /* random access: a stored header chunk */
    size_t hzcap;
};

static int cached_chunk(const tal_store_t *cs, uint64_t k, const char **data);

static int corrupt(const tal_store_t *s, const char *what)
{
    tal_log_error("%s: %s; the store is damaged (run 'talaria verify %s' and rebuild it)", s->path,
                  what, s->path);
    return TAL_EINPUT;
}

int tal_store_corrupt_(const tal_store_t *s, const char *what) { return corrupt(s, what); }

static int read_meta(tal_store_t *s)
{
    char path[4096];
    struct stat st;
    int fd, rc = 0;
    size_t want;
    uint64_t self;
    snprintf(path, sizeof path, "%s/%s", s->path, TAL_META_FILE);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        struct stat top;
        if (err != ENOENT && err != ENOTDIR) {
            tal_log_error("cannot open %s: %s", path, strerror(err));
            return TAL_EIO;
        }
        /* a store that is not there is an I/O failure; a path that is there but holds no
         * store is bad input */
        if (stat(s->path, &top) != 0) {
            tal_log_error("cannot open %s: %s", s->path, strerror(errno));
            return TAL_EIO;
        }
        tal_log_error("%s is not a talaria store (%s)", s->path,
                      S_ISDIR(top.st_mode) ? "no " TAL_META_FILE " file" : "not a directory");
        return TAL_EINPUT;
    }
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)(sizeof(tal_meta_disk_t) + 8) ||
        st.st_size > (off_t)(sizeof(tal_meta_disk_t) + TAL_MAX_SECTIONS * 64 + 8)) {
        close(fd);
        return corrupt(s, "the meta section has an impossible size");
    }
    s->meta_buf = malloc((size_t)st.st_size);
    if (!s->meta_buf) {
        close(fd);
        return TAL_ENOMEM;
    }
    if (pread(fd, s->meta_buf, (size_t)st.st_size, 0) != st.st_size) {
        close(fd);
        return corrupt(s, "the meta section cannot be read in full");
    }
    close(fd);
    s->meta = (const tal_meta_disk_t *)s->meta_buf;
    if (memcmp(s->meta->magic, TAL_STORE_MAGIC, 8) != 0) {
        tal_log_error("%s is not a talaria store (bad magic number in %s)", s->path, TAL_META_FILE);
        return TAL_EINPUT;
    }
    if (s->meta->section_count > TAL_MAX_SECTIONS) return corrupt(s, "the meta section is damaged");
    want = sizeof(tal_meta_disk_t) + s->meta->section_count * 64u + 8;
    if ((size_t)st.st_size != want) return corrupt(s, "the meta section has the wrong size");
    memcpy(&self, s->meta_buf + want - 8, 8);
    if (XXH3_64bits(s->meta_buf, want - 8) != self)
        return corrupt(s, "the meta section fails its checksum");
    if (s->meta->version_major != TAL_FORMAT_MAJOR) {
        tal_log_error("%s: store format %u.%u is not supported by this talaria (reads %u.x)",
                      s->path, s->meta->version_major, s->meta->version_minor, TAL_FORMAT_MAJOR);
        return TAL_EINPUT;
    }
    if (s->meta->kind != TAL_KIND_SEQUENCES)
        return corrupt(s, "the store kind is not one this version reads");
    s->sections = (const tal_section_disk_t *)(s->meta_buf + sizeof(tal_meta_disk_t));
    return rc;
}

static int map_section(tal_store_t *s, const tal_section_disk_t *sec)
{
    char path[4096];
    struct stat st;
    section_map_t *m;
    int fd;
    if (sec->id == 0 || sec->id > TAL_SEC_LAST) return 0; /* newer minor version: skip */
    m = &s->maps[sec->id];
    if (m->disk) return corrupt(s, "a section is listed twice");
    if (memchr(sec->file, '\0', sizeof sec->file) == NULL || strchr(sec->file, '/') ||
        sec->file[0] == '.' || sec->file[0] == '\0')
        return corrupt(s, "a section names an invalid file");
    m->disk = sec;
    /* residues since 1.1; headers and the three arrays of lengths and offsets since 1.3 */
    if (sec->codec != TAL_CODEC_NONE &&
        !((sec->id == TAL_SEC_RESIDUES || sec->id == TAL_SEC_HEADERS ||
           sec->id == TAL_SEC_HDR_OFFSETS || sec->id == TAL_SEC_SEQ_OFFSETS ||
           sec->id == TAL_SEC_LENGTHS) &&
          (sec->codec == TAL_CODEC_LZ4 || sec->codec == TAL_CODEC_ZSTD)))
        return corrupt(s, "a section uses an unknown codec");
    if (sec->id == TAL_SEC_CATALOG) return 0; /* opened by SQLite, not mapped */
    snprintf(path, sizeof path, "%s/%s", s->path, sec->file);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT) { /* there but unreadable: an I/O failure (format.md 7.1) */
        tal_log_error("cannot open %s: %s", path, strerror(errno));
        return TAL_EIO;
    }
    if (fd < 0) {
        tal_log_error("%s: the %s section (%s) is missing; the store is damaged", s->path,
                      tal_section_name(sec->id), sec->file);
        return TAL_EINPUT;
    }
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != sec->size) {
        close(fd);
        tal_log_error(
            "%s: the %s section (%s) has size %lld, expected %llu (truncated?); the store "
            "is damaged",
            s->path, tal_section_name(sec->id), sec->file, (long long)st.st_size,
            (unsigned long long)sec->size);
        return TAL_EINPUT;
    }
    m->size = (size_t)sec->size;
    if (m->size) {
        void *p = mmap(NULL, m->size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            tal_log_error("%s: cannot map %s: %s", s->path, sec->file, strerror(errno));
            return TAL_EIO;
        }
        m->data = p;
    }
    close(fd);
    return 0;
}

static int need(tal_store_t *s, uint32_t id, uint64_t size)
{
    if (s->own[id]) return 0; /* decoded or derived on open, of exactly its size */
    if (!s->maps[id].disk) {
        tal_log_error("%s: the %s section is missing from the meta table; the store is damaged",
                      s->path, tal_section_name(id));
        return TAL_EINPUT;
    }
    if (s->maps[id].size != size) {
        tal_log_error("%s: the %s section has %zu bytes, expected %llu; the store is damaged",
                      s->path, tal_section_name(id), s->maps[id].size, (unsigned long long)size);
        return TAL_EINPUT;
    }
    return 0;
}

/* A chunk table (of the residues, or since 1.3 of the headers) must tile the records, the
 * raw space the offsets index and the stored file exactly, in order; then any record maps
 * to one chunk and one range inside it. */
static int check_chunk_table(tal_store_t *s, const tal_chunk_disk_t *table, uint64_t count,
                             uint64_t chunk_size, const uint64_t *offsets, uint64_t raw_total,
                             uint64_t stored_total, uint32_t codec, const char *name)
{
    const tal_meta_disk_t *m = s->meta;
    uint64_t record = 0, raw = 0, stored = 0;
    char what[160];
    if (chunk_size == 0 || (m->record_count && !count)) {
        snprintf(what, sizeof what, "the %s is empty or has no chunk size", name);
        return corrupt(s, what);
    }
    for (uint64_t k = 0; k < count; k++) {
        const tal_chunk_disk_t *c = &table[k];
        int bad = c->first_record != record || c->record_count == 0 ||
                  c->record_count > m->record_count - record || c->raw_offset != raw ||
                  c->stored_offset != stored || c->stored_size > stored_total - stored ||
                  c->raw_size > raw_total - raw ||
                  offsets[record + c->record_count] - offsets[record] != c->raw_size ||
                  offsets[record] != raw || (c->codec != TAL_CODEC_NONE && c->codec != codec) ||
                  (c->codec == TAL_CODEC_NONE && c->stored_size != c->raw_size) ||
                  (c->raw_size > chunk_size && c->record_count != 1) ||
                  c->raw_size > SIZE_MAX / 2 ||
                  /* neither codec expands a byte to more than 32 KiB (a zstd RLE block) */
                  (c->codec != TAL_CODEC_NONE && c->raw_size / 32768 > c->stored_size + 64);
        if (bad) {
            snprintf(what, sizeof what, "chunk %llu of the %s is inconsistent",
                     (unsigned long long)k + 1, name);
            return corrupt(s, what);
        }
        record += c->record_count;
        raw += c->raw_size;
        stored += c->stored_size;
    }
    if (record != m->record_count || raw != raw_total || stored != stored_total) {
        snprintf(what, sizeof what, "the %s does not cover the store", name);
        return corrupt(s, what);
    }
    return 0;
}

static int check_chunks(tal_store_t *s)
{
    s->chunks = (const tal_chunk_disk_t *)s->maps[TAL_SEC_CHUNKS].data;
    s->n_chunks = s->meta->chunk_count;
    return check_chunk_table(s, s->chunks, s->n_chunks, s->meta->chunk_size, s->seq_offsets,
                             s->meta->residue_count, s->maps[TAL_SEC_RESIDUES].size, s->codec,
                             "chunk table");
}

/* Format 1.3: an array section compressed as one block of its eight byte planes, of the
 * values' differences when delta is set (doc/format.md 4.6), decoded into s->own[id]. */
static int decode_array(tal_store_t *s, uint32_t id, uint64_t count, int delta)
{
    const section_map_t *m = &s->maps[id];
    size_t bytes = (size_t)count * 8;
    unsigned char *planes = NULL;
    uint64_t *values = NULL, prev = 0;
    tal_codec_ctx_t *ctx = NULL;
    char what[128];
    int rc;
    if (!m->disk || m->disk->codec == TAL_CODEC_NONE) return 0;
    if (m->disk->codec != s->codec) {
        snprintf(what, sizeof what, "the %s section's codec is not the residues'",
                 tal_section_name(id));
        return corrupt(s, what);
    }
    planes = malloc(bytes ? bytes : 1);
    values = malloc(bytes ? bytes : 1);
    rc = planes && values ? tal_codec_ctx_create(&ctx, m->disk->codec, 0, 0) : TAL_ENOMEM;
    if (rc == 0)
        rc = tal_codec_decompress(ctx, m->disk->codec, m->data ? (const char *)m->data : "",
                                  m->size, (char *)planes, bytes);
    tal_codec_ctx_free(ctx);
    if (rc < 0) {
        free(planes);
        free(values);
        if (rc != TAL_EINPUT) return rc;
        snprintf(what, sizeof what, "the %s section does not decompress", tal_section_name(id));
        return corrupt(s, what);
    }
    for (size_t i = 0; i < count; i++) {
        uint64_t v = 0;
        for (size_t j = 0; j < 8; j++) v |= (uint64_t)planes[j * count + i] << (8 * j);
        values[i] = delta ? (prev += v) : v;
    }
    free(planes);
    s->own[id] = values;
    return 0;
}

/* Format 1.3 compressed stores have no lengths section: the lengths are the differences
 * of the sequence offsets (decoded or mapped, of the checked size). */
static int derive_lengths(tal_store_t *s, uint64_t n)
{
    const uint64_t *offsets = s->own[TAL_SEC_SEQ_OFFSETS]
                                  ? s->own[TAL_SEC_SEQ_OFFSETS]
                                  : (const uint64_t *)s->maps[TAL_SEC_SEQ_OFFSETS].data;
    uint64_t *lengths;
    int rc;
    if ((rc = need(s, TAL_SEC_SEQ_OFFSETS, (n + 1) * 8)) < 0) return rc;
    if (!(lengths = malloc(n ? (size_t)n * 8 : 1))) return TAL_ENOMEM;
    for (uint64_t i = 0; i < n; i++) lengths[i] = offsets[i + 1] - offsets[i];
    s->own[TAL_SEC_LENGTHS] = lengths;
    return 0;
}

static int check_header_chunks(tal_store_t *s)
{
    const tal_meta_disk_t *m = s->meta;
    const section_map_t *h = &s->maps[TAL_SEC_HEADERS];
    int rc;
    if (h->disk->codec != s->codec)
        return corrupt(s, "the headers section's codec is not the residues'");
    if (m->hdr_chunk_count > m->record_count || m->hdr_chunk_size == 0 ||
        m->hdr_chunk_size > TAL_MAX_CHUNK_SIZE)
        return corrupt(s, "the header chunk count or chunk size is impossible");
    if ((rc = need(s, TAL_SEC_HDR_CHUNKS, m->hdr_chunk_count * sizeof(tal_chunk_disk_t))) < 0)
        return rc;
    s->hchunks = (const tal_chunk_disk_t *)s->maps[TAL_SEC_HDR_CHUNKS].data;
    s->n_hchunks = m->hdr_chunk_count;
    return check_chunk_table(s, s->hchunks, s->n_hchunks, m->hdr_chunk_size, s->hdr_offsets,
                             m->header_bytes, h->size, s->codec, "header chunk table");
}

static int check_layout(tal_store_t *s)
{
    const tal_meta_disk_t *m = s->meta;
    uint64_t n = m->record_count;
    int rc;
    if (n > TAL_MAX_RECORDS) return corrupt(s, "the record count is impossible");
    s->one_key = (m->flags & TAL_META_ONE_KEY) != 0;
    if (m->key_slots == 0 || (!s->one_key && (m->key_slots & (m->key_slots - 1))) ||
        m->key_slots > (1ull << 32) || m->key_count >= m->key_slots)
        return corrupt(s, "the accession table size is impossible");
    while ((1ull << s->slot_bits) < m->key_slots) s->slot_bits++;
    if (!s->maps[TAL_SEC_RESIDUES].disk) return corrupt(s, "the residues section is missing");
    s->codec = s->maps[TAL_SEC_RESIDUES].disk->codec;
    if (!s->maps[TAL_SEC_HEADERS].disk) return corrupt(s, "the headers section is missing");
    if (s->maps[TAL_SEC_HEADERS].disk->codec == TAL_CODEC_NONE &&
        (rc = need(s, TAL_SEC_HEADERS, m->header_bytes)) < 0)
        return rc;
    if (s->codec == TAL_CODEC_NONE && (rc = need(s, TAL_SEC_RESIDUES, m->residue_count)) < 0)
        return rc;
    /* each chunk holds a record at least: this bounds the count before it is multiplied */
    if (s->codec != TAL_CODEC_NONE &&
        (m->chunk_count > n || m->chunk_size == 0 || m->chunk_size > TAL_MAX_CHUNK_SIZE))
        return corrupt(s, "the chunk count or chunk size is impossible");
    if (s->codec != TAL_CODEC_NONE &&
        (rc = need(s, TAL_SEC_CHUNKS, m->chunk_count * sizeof(tal_chunk_disk_t))) < 0)
        return rc;
    /* the checksums (never compressed) bound n before anything is sized by it */
    if ((rc = need(s, TAL_SEC_RECORD_CHECKSUMS, n * 8)) < 0) return rc;
    if ((rc = decode_array(s, TAL_SEC_HDR_OFFSETS, n + 1, 1)) < 0 ||
        (rc = decode_array(s, TAL_SEC_SEQ_OFFSETS, n + 1, 1)) < 0 ||
        (rc = decode_array(s, TAL_SEC_LENGTHS, n, 0)) < 0)
        return rc;
    if (!s->maps[TAL_SEC_LENGTHS].disk && s->maps[TAL_SEC_HEADERS].disk->codec != TAL_CODEC_NONE &&
        (rc = derive_lengths(s, n)) < 0)
        return rc;
    if ((rc = need(s, TAL_SEC_HDR_OFFSETS, (n + 1) * 8)) < 0) return rc;
    if ((rc = need(s, TAL_SEC_SEQ_OFFSETS, (n + 1) * 8)) < 0) return rc;
    if ((rc = need(s, TAL_SEC_LENGTHS, n * 8)) < 0) return rc;
    if ((rc = need(s, TAL_SEC_KEYS, m->key_slots * sizeof(tal_key_slot_t))) < 0) return rc;
    if (!s->maps[TAL_SEC_CATALOG].disk) return corrupt(s, "the catalog section is missing");
    s->headers = (const char *)s->maps[TAL_SEC_HEADERS].data;
    s->residues = (const char *)s->maps[TAL_SEC_RESIDUES].data;
    s->hdr_offsets = s->own[TAL_SEC_HDR_OFFSETS]
                         ? s->own[TAL_SEC_HDR_OFFSETS]
                         : (const uint64_t *)s->maps[TAL_SEC_HDR_OFFSETS].data;
    s->seq_offsets = s->own[TAL_SEC_SEQ_OFFSETS]
                         ? s->own[TAL_SEC_SEQ_OFFSETS]
                         : (const uint64_t *)s->maps[TAL_SEC_SEQ_OFFSETS].data;
    s->lengths = s->own[TAL_SEC_LENGTHS] ? s->own[TAL_SEC_LENGTHS]
                                         : (const uint64_t *)s->maps[TAL_SEC_LENGTHS].data;
    s->checksums = (const uint64_t *)s->maps[TAL_SEC_RECORD_CHECKSUMS].data;
    s->slots = (const tal_key_slot_t *)s->maps[TAL_SEC_KEYS].data;
    if (s->hdr_offsets[0] != 0 || s->hdr_offsets[n] != m->header_bytes)
        return corrupt(s, "the header offsets do not span the headers section");
    if (s->seq_offsets[0] != 0 || s->seq_offsets[n] != m->residue_count)
        return corrupt(s, "the sequence offsets do not span the residues section");
    if (s->maps[TAL_SEC_LAYOUT].disk) { /* format 1.2, optional */
        tal_layout_t l;
        char what[128];
        const char *bad =
            tal_layout_open(&l, s->maps[TAL_SEC_LAYOUT].data, s->maps[TAL_SEC_LAYOUT].size, n);
        if (bad) {
            snprintf(what, sizeof what, "the line layout section is damaged: %s", bad);
            return corrupt(s, what);
        }
    }
    if (s->maps[TAL_SEC_HEADERS].disk->codec != TAL_CODEC_NONE && (rc = check_header_chunks(s)) < 0)
        return rc;
    if (s->codec != TAL_CODEC_NONE) return check_chunks(s);
    return 0;
}

int tal_store_open(tal_store_t **out, const char *path)
{
    tal_store_t *s = calloc(1, sizeof *s);
    if (s)
        for (size_t i = 0; i <= TAL_SEC_LAST; i++) s->fds[i] = -1;
    int rc;
    *out = NULL;
    if (!s) return TAL_ENOMEM;
    s->path = strdup(path);
    if (!s->path) {
        free(s);
        return TAL_ENOMEM;
    }
    if ((rc = read_meta(s)) < 0) goto fail;
    for (uint32_t i = 0; i < s->meta->section_count; i++)
        if ((rc = map_section(s, &s->sections[i])) < 0) goto fail;
    if ((rc = check_layout(s)) < 0) goto fail;
    for (unsigned i = 0; i < CACHE_SLOTS; i++) s->cache[i].chunk = UINT64_MAX;
    for (unsigned i = 0; i < HDR_CACHE_SLOTS; i++) s->hcache[i].chunk = UINT64_MAX;
    s->last_chunk = 0;
    if (s->codec != TAL_CODEC_NONE && (rc = tal_store_set_cache(s, CACHE_BYTES_DEFAULT)) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    tal_store_close(s);
    return rc;
}

void tal_store_close(tal_store_t *s)
{
    if (!s) return;
    for (size_t i = 0; i <= TAL_SEC_LAST; i++)
        if (s->fds[i] >= 0) close(s->fds[i]);
    free(s->hbuf);
    free(s->pbuf);
    free(s->sbuf);
    free(s->zbuf);
    free(s->kbuf);
    free(s->hzbuf);
    for (unsigned i = 0; i < HDR_CACHE_SLOTS; i++) free(s->hcache[i].buf);
    for (size_t i = 0; i <= TAL_SEC_LAST; i++) free(s->own[i]);
    for (unsigned i = 0; i < CACHE_SLOTS; i++)
        if (s->cache[i].buf) tal_pool_put(s->pool, s->cache[i].buf, s->cache[i].cap);
    tal_pool_destroy(s->pool);
    tal_codec_ctx_free(s->dctx);
    for (size_t i = 0; i <= TAL_SEC_LAST; i++)
        if (s->maps[i].data) munmap((void *)s->maps[i].data, s->maps[i].size);
    free(s->meta_buf);
    free(s->path);
    free(s);
}

const char *tal_store_path(const tal_store_t *s) { return s->path; }

void tal_store_info(const tal_store_t *s, tal_store_info_t *info)
{
    memset(info, 0, sizeof *info);
    info->records = s->meta->record_count;
    info->residues = s->meta->residue_count;
    info->header_bytes = s->meta->header_bytes;
    info->min_length = s->meta->min_length;
    info->max_length = s->meta->max_length;
    info->duplicates_skipped = s->meta->duplicates_skipped;
    info->key_count = s->meta->key_count;
    info->alphabet = (int)s->meta->alphabet;
    info->composition = s->meta->composition;
    info->stored_residue_bytes = s->maps[TAL_SEC_RESIDUES].size;
    info->codec = tal_codec_name(s->codec);
    info->chunk_count = s->n_chunks;
    info->chunk_size = s->codec != TAL_CODEC_NONE ? s->meta->chunk_size : 0;
}

/* ---- random access ----
 * A lookup reads a few bytes here and there. Through the mappings, each touched page
 * brings its neighbours into the process (the kernel maps whole cached folios), and a
 * few thousand lookups on a large store leave hundreds of megabytes resident. In
 * random-access mode the same bytes are read with pread into small buffers. */

int tal_store_set_random_access(tal_store_t *s, int on)
{
    s->kid = UINT64_MAX;
    if (!on && s->random)
        for (size_t i = 0; i <= TAL_SEC_LAST; i++)
            if (s->fds[i] >= 0) close(s->fds[i]), s->fds[i] = -1;
    s->random = on != 0;
    return 0;
}

/* n bytes of section id from offset off (within the section's checked size) into dst. */
static int section_pread(const tal_store_t *cs, uint32_t id, uint64_t off, void *dst, size_t n)
{
    tal_store_t *s = (tal_store_t *)cs; /* the descriptors are opened on first use */
    const section_map_t *m = &s->maps[id];
    char path[4096];
    size_t done = 0;
    if (!m->disk || off > m->size || n > m->size - off) return TAL_EINPUT;
    if (s->fds[id] < 0) {
        snprintf(path, sizeof path, "%s/%s", s->path, m->disk->file);
        if ((s->fds[id] = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            tal_log_error("cannot open %s: %s", path, strerror(errno));
            return TAL_EIO;
        }
    }
    while (done < n) {
        ssize_t k = pread(s->fds[id], (char *)dst + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            tal_log_error("cannot read %s/%s: %s", s->path, m->disk->file, strerror(errno));
            return TAL_EIO;
        }
        if (k == 0) return corrupt(s, "a section file is shorter than when it was opened");
        done += (size_t)k;
    }
    return 0;
}

/* u64 values [id, id + n) of an array section. */
static int array_pread(const tal_store_t *s, uint32_t sec, uint64_t id, uint64_t *v, size_t n)
{
    if (s->own[sec]) { /* decoded on open (the caller stays within the array) */
        memcpy(v, s->own[sec] + id, n * sizeof *v);
        return 0;
    }
    return section_pread(s, sec, id * sizeof *v, v, n * sizeof *v);
}

/* ---- compressed headers (format 1.3) ---- */

/* The chunk of a table of n holding record id: the last whose first record is <= id,
 * the one last used first (reads go in runs). */
static uint64_t chunk_holding(const tal_chunk_disk_t *t, uint64_t n, uint64_t last, uint64_t id)
{
    uint64_t lo = 0, hi = n;
    const tal_chunk_disk_t *c = &t[last < n ? last : 0];
    if (id >= c->first_record && id - c->first_record < c->record_count) return (uint64_t)(c - t);
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (t[mid].first_record <= id)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static uint64_t hchunk_of(const tal_store_t *s, uint64_t id)
{
    return chunk_holding(s->hchunks, s->n_hchunks, s->last_hchunk, id);
}

/* A chunk's name in messages, and whether its stored bytes match its checksum (random
 * access reads them into *buf): for residue chunks and header chunks alike. */
static void name_chunk(const tal_chunk_disk_t *c, const char *what, uint64_t k, char *buf,
                       size_t size)
{
    snprintf(buf, size, "%s %llu (records %llu-%llu)", what, (unsigned long long)k + 1,
             (unsigned long long)c->first_record + 1,
             (unsigned long long)(c->first_record + c->record_count));
}

static int chunk_intact(tal_store_t *s, const tal_chunk_disk_t *c, uint32_t sec, char **buf,
                        size_t *cap, const char **stored)
{
    const char *base = (const char *)s->maps[sec].data;
    *stored = base ? base + c->stored_offset : ""; /* an empty file is not mapped */
    if (s->random && c->stored_size) {
        /* (the chunk table was checked on open to lie within the file) */
        if (tal_buf_reserve(buf, cap, (size_t)c->stored_size) < 0 ||
            section_pread(s, sec, c->stored_offset, *buf, (size_t)c->stored_size) < 0)
            return 0;
        *stored = *buf;
    }
    return XXH3_64bits(*stored, (size_t)c->stored_size) == c->checksum;
}

static void hchunk_name(const tal_store_t *s, uint64_t k, char *buf, size_t size)
{
    name_chunk(&s->hchunks[k], "header chunk", k, buf, size);
}

int tal_store_hchunk_intact_(const tal_store_t *cs, uint64_t k, const char **stored)
{
    tal_store_t *s = (tal_store_t *)cs;
    return chunk_intact(s, &s->hchunks[k], TAL_SEC_HEADERS, &s->hzbuf, &s->hzcap, stored);
}

const tal_chunk_disk_t *tal_store_hchunks_(const tal_store_t *s, uint64_t *count)
{
    *count = s->n_hchunks;
    return s->hchunks;
}

uint64_t tal_store_held_bytes_(const tal_store_t *s)
{
    uint64_t n = s->meta->record_count, held = 0, biggest = 0, slots;
    if (s->own[TAL_SEC_HDR_OFFSETS]) held += (n + 1) * 8;
    if (s->own[TAL_SEC_SEQ_OFFSETS]) held += (n + 1) * 8;
    if (s->own[TAL_SEC_LENGTHS]) held += n * 8;
    for (uint64_t k = 0; k < s->n_hchunks; k++)
        if (s->hchunks[k].raw_size > biggest) biggest = s->hchunks[k].raw_size;
    slots = s->n_hchunks < HDR_CACHE_SLOTS ? s->n_hchunks : HDR_CACHE_SLOTS;
    return held + slots * (biggest + 1);
}

void tal_store_hchunk_name_(const tal_store_t *s, uint64_t k, char *buf, size_t size)
{
    hchunk_name(s, k, buf, size);
}

/* Header chunk k decoded, from the cache or into its least recently used slot. Pointers
 * into a slot stay valid until HDR_CACHE_SLOTS - 1 other chunks have been decoded, so a
 * caller may hold a header while it reads another. */
static int cached_hchunk(tal_store_t *s, uint64_t k, const char **data)
{
    cache_entry_t *victim = NULL;
    const tal_chunk_disk_t *c = &s->hchunks[k];
    const char *stored;
    char name[96], what[160];
    int rc;
    s->last_hchunk = k;
    for (unsigned i = 0; i < HDR_CACHE_SLOTS; i++) {
        cache_entry_t *e = &s->hcache[i];
        if (e->chunk == k) {
            e->used_at = ++s->hcache_clock;
            *data = e->buf;
            return 0;
        }
        if (!victim || e->used_at < victim->used_at) victim = e;
    }
    if (s->bad_hchunk == k + 1) return TAL_EINPUT; /* said once already */
    victim->chunk = UINT64_MAX;
    if ((rc = tal_buf_reserve(&victim->buf, &victim->cap, (size_t)c->raw_size + 1)) < 0) return rc;
    if (!s->dctx && (rc = tal_codec_ctx_create(&s->dctx, s->codec, 0, 0)) < 0) return rc;
    if (!tal_store_hchunk_intact_(s, k, &stored)) {
        hchunk_name(s, k, name, sizeof name);
        snprintf(what, sizeof what, "%s fails its checksum", name);
        s->bad_hchunk = k + 1;
        return corrupt(s, what);
    }
    rc = tal_codec_decompress(s->dctx, c->codec, stored, c->stored_size, victim->buf, c->raw_size);
    if (rc == TAL_EINPUT) {
        hchunk_name(s, k, name, sizeof name);
        snprintf(what, sizeof what, "%s does not decompress", name);
        s->bad_hchunk = k + 1;
        return corrupt(s, what);
    }
    if (rc < 0) return rc;
    victim->chunk = k;
    victim->used_at = ++s->hcache_clock;
    *data = victim->buf;
    return 0;
}

/* 1 if record id's header lies in a header chunk already reported as damaged. */
static int header_lost(const tal_store_t *s, uint64_t id)
{
    return s->hchunks && s->bad_hchunk && id < s->meta->record_count &&
           s->bad_hchunk == hchunk_of(s, id) + 1;
}

/* Header bytes of record id, bounds-checked; no checksum. With by_pread (random-access
 * mode) they are read into *buf (of *cap bytes). */
static int header_at(const tal_store_t *s, uint64_t id, const char **h, size_t *len, char **buf,
                     size_t *cap, int by_pread)
{
    uint64_t a, b, off[2];
    int rc;
    if (id >= s->meta->record_count) return TAL_EINPUT;
    if (by_pread) {
        if ((rc = array_pread(s, TAL_SEC_HDR_OFFSETS, id, off, 2)) < 0) return rc;
        a = off[0], b = off[1];
    } else {
        a = s->hdr_offsets[id];
        b = s->hdr_offsets[id + 1];
    }
    if (a > b || b > s->meta->header_bytes) return TAL_EINPUT;
    *len = (size_t)(b - a);
    if (s->hchunks) {
        tal_store_t *ms = (tal_store_t *)s; /* the header cache */
        uint64_t k = hchunk_of(s, id);
        const tal_chunk_disk_t *c = &s->hchunks[k];
        const char *data;
        if (a < c->raw_offset || b - c->raw_offset > c->raw_size) return TAL_EINPUT;
        if ((rc = cached_hchunk(ms, k, &data)) < 0) return rc;
        *h = data + (a - c->raw_offset);
        return 0;
    }
    if (!by_pread) {
        *h = s->headers + a;
        return 0;
    }
    if ((rc = tal_buf_reserve(buf, cap, *len + 1)) < 0) return rc;
    if ((rc = section_pread(s, TAL_SEC_HEADERS, a, *buf, *len)) < 0) return rc;
    *h = *buf;
    return 0;
}

static int record_header(const tal_store_t *cs, uint64_t id, const char **h, size_t *len)
{
    tal_store_t *s = (tal_store_t *)cs;
    if (s->random && id == s->kid) { /* the record tal_store_find just read the header of */
        *h = s->kbuf;
        *len = s->klen;
        return 0;
    }
    return header_at(s, id, h, len, &s->hbuf, &s->hcap, s->random);
}

void tal_store_release_(const tal_store_t *s, uint32_t id)
{
    const section_map_t *m;
    if (id > TAL_SEC_LAST) return;
    m = &s->maps[id];
    if (m->data && m->size) madvise((void *)m->data, m->size, MADV_DONTNEED);
}

void tal_store_release_range_(const tal_store_t *s, uint32_t id, uint64_t from, uint64_t to)
{
    const section_map_t *m;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), lo, hi;
    if (id > TAL_SEC_LAST) return;
    m = &s->maps[id];
    if (!m->data || !m->size) return;
    if (to > m->size) to = m->size;
    if (from >= to) return;
    lo = ((uintptr_t)m->data + (uintptr_t)from + page - 1) & ~(page - 1);
    hi = ((uintptr_t)m->data + (uintptr_t)to) & ~(page - 1);
    if (to == m->size) hi = ((uintptr_t)m->data + (uintptr_t)to + page - 1) & ~(page - 1);
    if (lo < hi) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

int tal_store_lengths_held_(const tal_store_t *s) { return s->own[TAL_SEC_LENGTHS] != NULL; }

int tal_store_header_pread_(const tal_store_t *cs, uint64_t id, const char **h, size_t *len)
{
    tal_store_t *s = (tal_store_t *)cs; /* its own buffer */
    return header_at(s, id, h, len, &s->pbuf, &s->pcap, 1);
}

int tal_store_header_(const tal_store_t *s, uint64_t id, const char **h, size_t *len)
{
    return record_header(s, id, h, len);
}

int tal_store_residue_file_(const tal_store_t *s, char *path, size_t size, const uint64_t **offsets)
{
    const tal_section_disk_t *sec = s->maps[TAL_SEC_RESIDUES].disk;
    if (s->codec != TAL_CODEC_NONE || !sec) return TAL_ENOTFOUND;
    snprintf(path, size, "%s/%s", s->path, sec->file);
    *offsets = s->seq_offsets;
    return 0;
}

/* Record id with its residues taken from base, which holds the raw residue space from
 * base_offset on (base_len bytes); NULL base: the store's own (mapping or chunk cache). */
int tal_store_record_at_(const tal_store_t *cs, uint64_t id, const char *base, uint64_t base_offset,
                         size_t base_len, tal_record_t *rec)
{
    tal_store_t *s = (tal_store_t *)cs; /* random access: its buffers */
    uint64_t a, b, length, checksum, off[2];
    char what[128];
    int rc;
    if ((rc = record_header(s, id, &rec->header, &rec->header_len)) < 0) {
        if (rc != TAL_EINPUT || header_lost(s, id)) return rc; /* named the chunk */
        goto bad;
    }
    if (s->random) {
        if ((rc = array_pread(s, TAL_SEC_SEQ_OFFSETS, id, off, 2)) < 0 ||
            (rc = array_pread(s, TAL_SEC_LENGTHS, id, &length, 1)) < 0 ||
            (rc = array_pread(s, TAL_SEC_RECORD_CHECKSUMS, id, &checksum, 1)) < 0)
            return rc;
        a = off[0], b = off[1];
    } else {
        a = s->seq_offsets[id];
        b = s->seq_offsets[id + 1];
        length = s->lengths[id];
        checksum = s->checksums[id];
    }
    if (a > b || b > s->meta->residue_count || length != b - a) goto bad;
    rec->seq_len = (size_t)(b - a);
    if (base) {
        if (a < base_offset || b - base_offset > base_len) goto bad;
        rec->seq = base + (a - base_offset);
    } else if (s->codec != TAL_CODEC_NONE) {
        const char *chunk;
        uint64_t k = tal_store_chunk_of(s, id);
        if (a < s->chunks[k].raw_offset || b - s->chunks[k].raw_offset > s->chunks[k].raw_size)
            goto bad;
        if ((rc = cached_chunk(s, k, &chunk)) < 0) return rc; /* named the chunk */
        rec->seq = chunk + (a - s->chunks[k].raw_offset);
    } else if (s->random) {
        if ((rc = tal_buf_reserve(&s->sbuf, &s->scap, rec->seq_len + 1)) < 0 ||
            (rc = section_pread(s, TAL_SEC_RESIDUES, a, s->sbuf, rec->seq_len)) < 0)
            return rc;
        rec->seq = s->sbuf;
    } else {
        rec->seq = s->residues ? s->residues + a : ""; /* nothing is mapped when all are empty */
    }
    if (tal_record_checksum(rec->header, rec->header_len, rec->seq, rec->seq_len) != checksum)
        goto bad;
    return 0;
bad:
    snprintf(what, sizeof what, "record %llu fails its bounds or checksum check",
             (unsigned long long)id + 1);
    return corrupt(s, what);
}

int tal_store_record(const tal_store_t *s, uint64_t id, tal_record_t *rec)
{
    return tal_store_record_at_(s, id, NULL, 0, 0, rec);
}

uint64_t tal_store_chunk_of(const tal_store_t *s, uint64_t id)
{
    return chunk_holding(s->chunks, s->n_chunks, s->last_chunk, id);
}

void tal_store_chunk_name_(const tal_store_t *s, uint64_t k, char *buf, size_t size)
{
    name_chunk(&s->chunks[k], "chunk", k, buf, size);
}

int tal_store_chunk_intact_(const tal_store_t *cs, uint64_t k, const char **stored)
{
    tal_store_t *s = (tal_store_t *)cs;
    return chunk_intact(s, &s->chunks[k], TAL_SEC_RESIDUES, &s->zbuf, &s->zcap, stored);
}

int tal_store_chunk_decode(const tal_store_t *s, tal_codec_ctx_t *ctx, uint64_t k, char *dst,
                           size_t cap)
{
    const tal_chunk_disk_t *c = &s->chunks[k];
    const char *stored;
    char name[96], what[160];
    int rc;
    if (c->raw_size > cap) return TAL_EUSAGE;
    if (!tal_store_chunk_intact_(s, k, &stored)) {
        tal_store_chunk_name_(s, k, name, sizeof name);
        snprintf(what, sizeof what, "%s fails its checksum", name);
        return corrupt(s, what);
    }
    rc = tal_codec_decompress(ctx, c->codec, stored, c->stored_size, dst, c->raw_size);
    if (rc == TAL_EINPUT) {
        tal_store_chunk_name_(s, k, name, sizeof name);
        snprintf(what, sizeof what, "%s does not decompress", name);
        return corrupt(s, what);
    }
    return rc;
}

/* The decoded chunk k, from the cache or decoded into its least recently used slot. */
static int cached_chunk(const tal_store_t *cs, uint64_t k, const char **data)
{
    tal_store_t *s = (tal_store_t *)cs; /* the cache is the one mutable part of a store */
    cache_entry_t *victim = NULL;
    size_t need = (size_t)s->chunks[k].raw_size;
    int rc;
    s->last_chunk = k;
    for (unsigned i = 0; i < s->cache_slots; i++) {
        cache_entry_t *e = &s->cache[i];
        if (e->chunk == k) {
            e->used_at = ++s->cache_clock;
            *data = e->buf;
            return 0;
        }
        if (!victim || e->used_at < victim->used_at) victim = e;
    }
    victim->chunk = UINT64_MAX;
    if (victim->buf && victim->cap < need) {
        tal_pool_put(s->pool, victim->buf, victim->cap);
        victim->buf = NULL;
    }
    if (!victim->buf) {
        void *buf;
        if ((rc = tal_pool_get(s->pool, need ? need : 1, &buf, &victim->cap)) < 0) return rc;
        victim->buf = buf;
    }
    if (s->bad_chunk == k + 1) return TAL_EINPUT; /* said once already */
    if (!s->dctx && (rc = tal_codec_ctx_create(&s->dctx, s->codec, 0, 0)) < 0) return rc;
    if ((rc = tal_store_chunk_decode(s, s->dctx, k, victim->buf, victim->cap)) < 0) {
        if (rc == TAL_EINPUT) s->bad_chunk = k + 1;
        return rc;
    }
    victim->chunk = k;
    victim->used_at = ++s->cache_clock;
    *data = victim->buf;
    return 0;
}

int tal_store_set_cache(tal_store_t *s, size_t bytes)
{
    tal_pool_opt_t po;
    unsigned slots;
    int rc;
    if (s->codec == TAL_CODEC_NONE) return 0;
    if (!s->pool) {
        tal_pool_opt_init(&po);
        po.buffer_size = (size_t)s->meta->chunk_size;
        po.component = TAL_MEM_CHUNKS;
        if ((rc = tal_pool_create(&s->pool, &po)) < 0) return rc;
    }
    /* buffers are whole 2 MiB huge pages, so small chunks still take 2 MiB each */
    slots =
        (unsigned)(bytes / (s->meta->chunk_size > (2u << 20) ? s->meta->chunk_size : (2u << 20)));
    if (slots < 1) slots = 1;
    if (slots > CACHE_SLOTS) slots = CACHE_SLOTS;
    for (unsigned i = slots; i < s->cache_slots; i++) {
        if (s->cache[i].buf) tal_pool_put(s->pool, s->cache[i].buf, s->cache[i].cap);
        s->cache[i].buf = NULL;
        s->cache[i].chunk = UINT64_MAX;
    }
    s->cache_slots = slots;
    return 0;
}

int tal_store_buffer_report(tal_store_t *s, tal_mem_report_t *report)
{
    const char *data;
    int rc;
    if (s->codec == TAL_CODEC_NONE || s->n_chunks == 0) return TAL_ENOTFOUND;
    if ((rc = cached_chunk(s, 0, &data)) < 0) return rc;
    return tal_mem_inspect(data, s->chunks[0].raw_size ? (size_t)s->chunks[0].raw_size : 1, report);
}

int tal_store_find(const tal_store_t *s, const char *acc, size_t acc_len, uint64_t *id)
{
    uint32_t tag;
    uint64_t n_slots = s->meta->key_slots, j;
    uint64_t alias_id = UINT64_MAX;
    if (s->one_key) { /* probe for the key acc has as a record's first word */
        tal_keys_t ak;
        const char *key;
        size_t key_len;
        tal_header_keys(acc, acc_len, &ak);
        if (ak.primary_len != acc_len) ak.alias = NULL; /* not one word: acc itself */
        ak.primary = acc;
        ak.primary_len = acc_len;
        tal_one_key(&ak, &key, &key_len);
        tag = tal_key_tag(tal_key_hash(key, key_len));
        j = tal_key_home_any(tag, n_slots);
    } else {
        tag = tal_key_tag(tal_key_hash(acc, acc_len));
        j = tal_key_home(tag, s->slot_bits);
    }
    /* A record whose first word is acc wins over one that only has acc as its
     * "db|ACC|" alias; among aliases the earliest record wins. The probe is bounded so
     * that a damaged table without empty slots cannot loop. */
    tal_store_t *ms = (tal_store_t *)s; /* random access: its buffers */
    tal_key_slot_t window[16];
    uint64_t window_at = UINT64_MAX; /* the slot window[0] holds */
    for (uint64_t step = 0; step < n_slots; step++, j = j + 1 == n_slots ? 0 : j + 1) {
        tal_key_slot_t k;
        const char *h;
        size_t len;
        tal_keys_t keys;
        uint64_t rid;
        int alias, rc;
        if (!s->random) {
            k = s->slots[j];
        } else {
            if (window_at == UINT64_MAX || j < window_at || j >= window_at + 16) {
                uint64_t n = n_slots - j < 16 ? n_slots - j : 16;
                if ((rc = section_pread(s, TAL_SEC_KEYS, j * sizeof k, window, n * sizeof k)) < 0)
                    return rc;
                window_at = j;
            }
            k = window[j - window_at];
        }
        if (!k.ref) break;
        if (k.tag != tag) continue;
        /* one key a record: the record may match by either its first word or its ACC */
        alias = s->one_key || (k.ref & TAL_KEY_ALIAS) != 0;
        rid = (k.ref & ~TAL_KEY_ALIAS) - 1;
        ms->kid = UINT64_MAX;
        if ((rc = header_at(s, rid, &h, &len, &ms->kbuf, &ms->kcap, s->random)) < 0) {
            if (rc != TAL_EINPUT || header_lost(s, rid)) return rc;
            continue;
        }
        if (s->random && !s->hchunks) ms->kid = rid, ms->klen = len; /* read into kbuf */
        tal_header_keys(h, len, &keys);
        if ((!alias || s->one_key) && keys.primary_len == acc_len &&
            !memcmp(keys.primary, acc, acc_len)) {
            *id = rid;
            return 0;
        }
        if (alias && rid < alias_id && keys.alias && keys.alias_len == acc_len &&
            !memcmp(keys.alias, acc, acc_len))
            alias_id = rid;
    }
    if (alias_id != UINT64_MAX) {
        *id = alias_id;
        return 0;
    }
    return TAL_ENOTFOUND;
}

int tal_store_lengths(const tal_store_t *s, const uint64_t **lengths)
{
    /* the caller checks the values against the meta section's totals as it reads them */
    madvise((void *)s->lengths, s->maps[TAL_SEC_LENGTHS].size, MADV_WILLNEED);
    *lengths = s->lengths;
    return 0;
}

const tal_chunk_disk_t *tal_store_chunks_(const tal_store_t *s, uint64_t *count)
{
    *count = s->n_chunks;
    return s->chunks;
}

int tal_store_layout_(const tal_store_t *s, tal_layout_t *l)
{
    const section_map_t *m = &s->maps[TAL_SEC_LAYOUT];
    if (!m->disk) return 0;
    /* checked on open */
    return tal_layout_open(l, m->data, m->size, s->meta->record_count) ? 0 : 1;
}

const tal_section_disk_t *tal_store_section_(const tal_store_t *s, uint32_t id, const void **data,
                                             size_t *size)
{
    if (id > TAL_SEC_LAST) return NULL;
    *data = s->maps[id].data;
    *size = s->maps[id].size;
    return s->maps[id].disk;
}

const uint64_t *tal_store_array_(const tal_store_t *s, uint32_t id, uint64_t *count)
{
    uint64_t n = s->meta->record_count;
    *count = id == TAL_SEC_HDR_OFFSETS || id == TAL_SEC_SEQ_OFFSETS ? n + 1 : n;
    if (id > TAL_SEC_LAST) return NULL;
    return s->own[id] ? s->own[id] : (const uint64_t *)s->maps[id].data;
}

int tal_store_one_key_(const tal_store_t *s) { return s->one_key; }
