/* `talaria index`: FASTA in, store out. One pass over the input; residues, headers and
 * per-record arrays stream to files in a temporary directory, which is renamed into place
 * only once everything is written and fsynced. */
#include "config.h"
#include "catalog_internal.h"
#include "chunker_internal.h"
#include "codec_internal.h"
#include "format_internal.h"
#include "talaria/error.h"
#include "talaria/fasta.h"
#include "talaria/log.h"
#include "talaria/mem.h"
#include "talaria/seqstats.h"
#include "talaria/store.h"
#include "talaria/util.h"
#include "util/files_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WBUF (1u << 20)

typedef struct {
    const tal_index_opt_t *opt;
    const char *in_path;
    tal_fasta_reader_t *fa;
    tal_atomic_dir_t dir;
    tal_wfile_t headers, residues, hdr_offsets, seq_offsets, lengths, checksums;
    int files_open;
    tal_key_slot_t *slots; /* the accession table, written as the keys section */
    size_t n_slots, n_keys;
    unsigned slot_bits;
    tal_catalog_writer_t *cat;
    tal_writer_t *writer; /* background writes when threads > 1 */
    tal_chunker_t *chunker; /* compressed residues (NULL: raw) */
    uint64_t n, residue_total, header_total, min_len, max_len, dups;
    uint64_t input_size; /* of a regular input file, for sizing the accession table */
    uint64_t composition[256];
    char *dup_buf;
    size_t dup_buf_cap;
    double started, last_progress;
} builder_t;

void tal_index_opt_init(tal_index_opt_t *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->threads = 2;
    opt->chunk_size = 4u << 20;
}

static int keys_grow_to(builder_t *b, unsigned bits)
{
    size_t cap = (size_t)1 << bits;
    tal_key_slot_t *slots;
    if (bits > 32) return TAL_ENOMEM;
    slots = tal_huge_alloc(cap * sizeof *slots);
    if (!slots) return TAL_ENOMEM;
    for (size_t i = 0; i < b->n_slots; i++) {
        tal_key_slot_t k = b->slots[i];
        size_t j;
        if (!k.ref) continue;
        j = (size_t)tal_key_home(k.tag, bits);
        while (slots[j].ref) j = (j + 1) & (cap - 1);
        slots[j] = k;
    }
    tal_huge_free(b->slots, b->n_slots * sizeof *b->slots);
    b->slots = slots;
    b->n_slots = cap;
    b->slot_bits = bits;
    return 0;
}

static int keys_grow(builder_t *b)
{
    return keys_grow_to(b, b->n_slots ? b->slot_bits + 1 : 16);
}

/* Once the first records show the average record size, the table is sized for the
 * whole input at once: growing it step by step rehashes every key several times and
 * zeroes twice the memory. Compressed input underestimates; growth covers that. */
static int keys_presize(builder_t *b)
{
    double per_record = (double)(b->header_total + b->residue_total) / (double)b->n;
    double expected = (double)b->input_size / (per_record + 2.0) * 1.05;
    unsigned bits = b->slot_bits;
    if (b->input_size == 0) return 0;
    while (bits < 31 && (double)((size_t)1 << bits) * 0.70 < expected) bits++;
    return bits > b->slot_bits ? keys_grow_to(b, bits) : 0;
}

/* The keys of an earlier record, read back from what was written so far. */
static int earlier_keys(builder_t *b, uint64_t id, tal_keys_t *keys)
{
    uint64_t off[2], len;
    int rc;
    if ((rc = tal_wfile_pread(&b->hdr_offsets, id * 8, off, sizeof off)) < 0) return rc;
    len = off[1] - off[0];
    if (len > b->dup_buf_cap) {
        char *p = realloc(b->dup_buf, len);
        if (!p) return TAL_ENOMEM;
        b->dup_buf = p;
        b->dup_buf_cap = len;
    }
    if ((rc = tal_wfile_pread(&b->headers, off[0], b->dup_buf, len)) < 0) return rc;
    tal_header_keys(b->dup_buf, len, keys);
    return 0;
}

/* Adds a key for record id. For a first word, *dup_of is set to an earlier record with
 * the same first word (UINT64_MAX if none) and nothing is added in that case. */
static int keys_add(builder_t *b, uint32_t tag, const char *key, size_t len, uint64_t id,
                    int alias, uint64_t *dup_of)
{
    size_t j;
    int rc;
    *dup_of = UINT64_MAX;
    if ((b->n_keys + 1) * 4 > b->n_slots * 3 && (rc = keys_grow(b)) < 0) return rc;
    j = (size_t)tal_key_home(tag, b->slot_bits);
    while (b->slots[j].ref) {
        tal_key_slot_t k = b->slots[j];
        if (!alias && k.tag == tag && !(k.ref & TAL_KEY_ALIAS)) {
            tal_keys_t other;
            uint64_t other_id = (k.ref & ~TAL_KEY_ALIAS) - 1;
            if ((rc = earlier_keys(b, other_id, &other)) < 0) return rc;
            if (other.primary_len == len && !memcmp(other.primary, key, len)) {
                *dup_of = other_id;
                return 0;
            }
        }
        j = (j + 1) & (b->n_slots - 1);
    }
    b->slots[j].tag = tag;
    b->slots[j].ref = (uint32_t)(id + 1) | (alias ? TAL_KEY_ALIAS : 0);
    b->n_keys++;
    return 0;
}


static void show_progress(builder_t *b, int final)
{
    double now;
    char size[32];
    if (!b->opt->progress || (!final && (b->n & 1023))) return;
    now = tal_now_seconds();
    if (!final && now - b->last_progress < 0.5) return;
    b->last_progress = now;
    fprintf(stderr, "\rindexing: %llu records, %s of residues, %.1f s%s",
            (unsigned long long)b->n, tal_format_size(b->residue_total, size, sizeof size),
            now - b->started, final ? "\n" : "");
    fflush(stderr);
}

static int add_record(builder_t *b, const tal_fasta_record_t *rec)
{
    tal_keys_t keys;
    uint64_t dup_of, id = b->n, checksum;
    uint32_t tag, alias_tag = 0;
    int rc;

    tal_header_keys(rec->header, rec->header_len, &keys);
    if (keys.primary_len == 0) {
        tal_log_error("%s: line %llu: the header has no accession (it starts with a space)",
                      tal_fasta_path(b->fa), (unsigned long long)rec->line);
        return TAL_EINPUT;
    }
    if (id >= TAL_MAX_RECORDS) {
        tal_log_error("%s: line %llu: more than %llu records; split the input",
                      tal_fasta_path(b->fa), (unsigned long long)rec->line,
                      (unsigned long long)TAL_MAX_RECORDS);
        return TAL_EINPUT;
    }
    /* The table is far bigger than the caches: start loading the key slots now and
     * checksum the record while they arrive. */
    if ((b->n_keys + 2) * 4 > b->n_slots * 3 && (rc = keys_grow(b)) < 0) return rc;
    tag = tal_key_tag(tal_key_hash(keys.primary, keys.primary_len));
    __builtin_prefetch(&b->slots[tal_key_home(tag, b->slot_bits)], 1);
    if (keys.alias) {
        alias_tag = tal_key_tag(tal_key_hash(keys.alias, keys.alias_len));
        __builtin_prefetch(&b->slots[tal_key_home(alias_tag, b->slot_bits)], 1);
    }
    checksum = tal_record_checksum(rec->header, rec->header_len, rec->seq, rec->seq_len);
    if ((rc = keys_add(b, tag, keys.primary, keys.primary_len, id, 0, &dup_of)) < 0) return rc;
    if (dup_of != UINT64_MAX) {
        if (b->opt->allow_duplicates) {
            b->dups++;
            return 0;
        }
        tal_log_error("%s: line %llu: duplicate accession '%.*s' (first seen in record %llu); "
                      "use --allow-duplicates to keep the first and skip the rest",
                      tal_fasta_path(b->fa), (unsigned long long)rec->line, (int)keys.primary_len,
                      keys.primary, (unsigned long long)dup_of + 1);
        return TAL_EINPUT;
    }
    if (keys.alias &&
        (rc = keys_add(b, alias_tag, keys.alias, keys.alias_len, id, 1, &dup_of)) < 0)
        return rc;

    if ((rc = tal_wfile_write(&b->headers, rec->header, rec->header_len)) < 0) return rc;
    b->header_total += rec->header_len;
    if ((rc = tal_wfile_write(&b->hdr_offsets, &b->header_total, 8)) < 0) return rc;
    if (b->chunker)
        rc = tal_chunker_add(b->chunker, rec->seq, rec->seq_len);
    else
        rc = tal_wfile_write(&b->residues, rec->seq, rec->seq_len);
    if (rc < 0) return rc;
    b->residue_total += rec->seq_len;
    if ((rc = tal_wfile_write(&b->seq_offsets, &b->residue_total, 8)) < 0) return rc;
    {
        uint64_t len = rec->seq_len;
        if ((rc = tal_wfile_write(&b->lengths, &len, 8)) < 0) return rc;
    }
    if ((rc = tal_wfile_write(&b->checksums, &checksum, 8)) < 0) return rc;
    if (b->n == 0 || rec->seq_len < b->min_len) b->min_len = rec->seq_len;
    if (rec->seq_len > b->max_len) b->max_len = rec->seq_len;

    rc = tal_catalog_add(b->cat, id, rec->header, rec->header_len, rec->seq_len);
    if (rc < 0) return rc;
    b->n++;
    if (b->n == 4096 && (rc = keys_presize(b)) < 0) return rc;
    show_progress(b, 0);
    return 0;
}

static int write_array_file(builder_t *b, const char *name, const void *data, size_t bytes,
                            tal_section_disk_t *sec)
{
    tal_wfile_t w;
    int rc = tal_wfile_open(&w, &b->dir, name, WBUF);
    if (rc) return rc;
    tal_wfile_direct(&w);
    if ((rc = tal_wfile_write(&w, data, bytes)) < 0) {
        tal_wfile_abort(&w);
        return rc;
    }
    return tal_wfile_finish(&w, &sec->checksum, &sec->size);
}

static void section_init(tal_section_disk_t *sec, uint32_t id, const char *file)
{
    memset(sec, 0, sizeof *sec);
    sec->id = id;
    sec->codec = TAL_CODEC_NONE;
    snprintf(sec->file, sizeof sec->file, "%s", file);
}

static int record_provenance(builder_t *b, const tal_build_stats_t *st)
{
    char buf[PATH_MAX + 64], *abs = NULL;
    time_t now = time(NULL);
    struct tm tm;
    int rc = 0;
    abs = strcmp(b->in_path, "-") ? realpath(b->in_path, NULL) : NULL;
    rc |= tal_catalog_set(b->cat, "input", abs ? abs : b->in_path);
    free(abs);
    rc |= tal_catalog_set(b->cat, "input_format", tal_fasta_format(b->fa));
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)st->input_bytes);
    rc |= tal_catalog_set(b->cat, "input_bytes", buf);
    snprintf(buf, sizeof buf, "xxh3-64:%016llx", (unsigned long long)tal_fasta_stored_hash(b->fa));
    rc |= tal_catalog_set(b->cat, "input_hash", buf);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)b->n);
    rc |= tal_catalog_set(b->cat, "records", buf);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)b->dups);
    rc |= tal_catalog_set(b->cat, "duplicates_skipped", buf);
    if (b->opt->compress)
        snprintf(buf, sizeof buf, "threads=%d allow_duplicates=%d compress=%s level=%d chunk_size=%llu",
                 b->opt->threads, b->opt->allow_duplicates, tal_codec_name((uint32_t)b->opt->compress),
                 b->opt->level, (unsigned long long)b->opt->chunk_size);
    else
        snprintf(buf, sizeof buf, "threads=%d allow_duplicates=%d compress=none", b->opt->threads,
                 b->opt->allow_duplicates);
    rc |= tal_catalog_set(b->cat, "parameters", buf);
    rc |= tal_catalog_set(b->cat, "talaria_version", PACKAGE_VERSION);
    snprintf(buf, sizeof buf, "%u.%u", TAL_FORMAT_MAJOR, TAL_FORMAT_MINOR);
    rc |= tal_catalog_set(b->cat, "format_version", buf);
    gmtime_r(&now, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    rc |= tal_catalog_set(b->cat, "created", buf);
    return rc ? TAL_EIO : 0;
}

static int finish_store(builder_t *b, tal_build_stats_t *st)
{
    tal_section_disk_t secs[9];
    tal_meta_disk_t meta;
    tal_chunk_disk_t *chunks = NULL;
    uint64_t n_chunks = 0;
    int n_secs = 8;
    tal_wfile_t mw;
    char cat_path[PATH_MAX];
    int rc;

    section_init(&secs[0], TAL_SEC_HEADERS, "headers");
    section_init(&secs[1], TAL_SEC_RESIDUES, "residues");
    section_init(&secs[2], TAL_SEC_SEQ_OFFSETS, "seq_offsets");
    section_init(&secs[3], TAL_SEC_LENGTHS, "lengths");
    section_init(&secs[4], TAL_SEC_RECORD_CHECKSUMS, "checksums");
    section_init(&secs[5], TAL_SEC_HDR_OFFSETS, "hdr_offsets");
    section_init(&secs[6], TAL_SEC_KEYS, "keys");
    section_init(&secs[7], TAL_SEC_CATALOG, "catalog.sqlite");
    if (b->chunker) {
        rc = tal_chunker_finish(b->chunker, &chunks, &n_chunks);
        b->chunker = NULL;
        if (rc < 0) goto fail_rest;
        secs[1].codec = (uint32_t)b->opt->compress;
        section_init(&secs[8], TAL_SEC_CHUNKS, "chunks");
        n_secs = 9;
    }

    /* the catalog thread may still be inserting; the rest is done meanwhile */
    b->files_open = 0;
    if ((rc = tal_wfile_finish(&b->headers, &secs[0].checksum, &secs[0].size)) < 0) goto fail_rest;
    if ((rc = tal_wfile_finish(&b->residues, &secs[1].checksum, &secs[1].size)) < 0) goto fail_rest;
    if ((rc = tal_wfile_finish(&b->seq_offsets, &secs[2].checksum, &secs[2].size)) < 0) goto fail_rest;
    if ((rc = tal_wfile_finish(&b->lengths, &secs[3].checksum, &secs[3].size)) < 0) goto fail_rest;
    if ((rc = tal_wfile_finish(&b->checksums, &secs[4].checksum, &secs[4].size)) < 0) goto fail_rest;
    if ((rc = tal_wfile_finish(&b->hdr_offsets, &secs[5].checksum, &secs[5].size)) < 0) goto fail_rest;
    if ((rc = write_array_file(b, "keys", b->slots, b->n_slots * sizeof *b->slots, &secs[6])) < 0)
        goto out;
    if (n_secs == 9 &&
        (rc = write_array_file(b, "chunks", chunks, n_chunks * sizeof *chunks, &secs[8])) < 0)
        goto out;
    free(chunks);
    chunks = NULL;

    tal_log_info("records and arrays written and fsynced at %.2f s", tal_now_seconds() - b->started);
    if ((rc = tal_catalog_finish(b->cat, b->opt->catalog_index)) < 0) return rc;
    tal_log_info("catalog filled at %.2f s", tal_now_seconds() - b->started);
    st->records = b->n;
    st->residues = b->residue_total;
    st->duplicates_skipped = b->dups;
    st->input_bytes = tal_fasta_stored_size(b->fa);
    if ((rc = record_provenance(b, st)) < 0) return rc;
    rc = tal_catalog_close(b->cat);
    b->cat = NULL;
    if (rc < 0) return rc;
    snprintf(cat_path, sizeof cat_path, "%s/catalog.sqlite", b->dir.tmp_path);
    if ((rc = tal_hash_file(cat_path, &secs[7].checksum, &secs[7].size)) < 0) return rc;
    {
        int fd = open(cat_path, O_RDONLY);
        if (fd < 0 || fsync(fd) != 0) {
            tal_log_error("cannot fsync %s: %s", cat_path, strerror(errno));
            if (fd >= 0) close(fd);
            return TAL_EIO;
        }
        close(fd);
    }

    memset(&meta, 0, sizeof meta);
    memcpy(meta.magic, TAL_STORE_MAGIC, 8);
    meta.version_major = TAL_FORMAT_MAJOR;
    meta.version_minor = TAL_FORMAT_MINOR;
    meta.kind = TAL_KIND_SEQUENCES;
    meta.record_count = b->n;
    meta.residue_count = b->residue_total;
    meta.header_bytes = b->header_total;
    meta.min_length = b->min_len;
    meta.max_length = b->max_len;
    meta.key_count = b->n_keys;
    meta.key_slots = b->n_slots;
    meta.duplicates_skipped = b->dups;
    meta.section_count = (uint32_t)n_secs;
    if (n_secs == 9) {
        meta.chunk_size = b->opt->chunk_size;
        meta.chunk_count = n_chunks;
    }
    memcpy(meta.composition, b->composition, sizeof meta.composition);
    meta.alphabet = (uint32_t)tal_guess_alphabet(meta.composition, b->residue_total);
    if ((rc = tal_wfile_open(&mw, &b->dir, TAL_META_FILE, 64 * 1024)) < 0) return rc;
    {
        unsigned char image[sizeof meta + sizeof secs + 8];
        size_t secs_bytes = (size_t)n_secs * sizeof secs[0];
        uint64_t self;
        memcpy(image, &meta, sizeof meta);
        memcpy(image + sizeof meta, secs, secs_bytes);
        self = XXH3_64bits(image, sizeof meta + secs_bytes);
        memcpy(image + sizeof meta + secs_bytes, &self, 8);
        rc = tal_wfile_write(&mw, image, sizeof meta + secs_bytes + 8);
    }
    if (rc) {
        tal_wfile_abort(&mw);
        return rc;
    }
    if ((rc = tal_wfile_finish(&mw, NULL, NULL)) < 0) return rc;
    return tal_atomic_dir_commit(&b->dir);
out:
    free(chunks);
    return rc;
fail_rest:
    free(chunks);
    tal_wfile_abort(&b->headers);
    tal_wfile_abort(&b->residues);
    tal_wfile_abort(&b->seq_offsets);
    tal_wfile_abort(&b->lengths);
    tal_wfile_abort(&b->checksums);
    tal_wfile_abort(&b->hdr_offsets);
    return rc;
}

static int open_outputs(builder_t *b)
{
    char cat_path[PATH_MAX];
    int rc;
    if ((rc = tal_wfile_open(&b->headers, &b->dir, "headers", 4 * WBUF)) < 0) return rc;
    if ((rc = tal_wfile_open(&b->residues, &b->dir, "residues", 4 * WBUF)) < 0) return rc;
    if (!b->opt->compress)
        b->residues.byte_counts = b->composition; /* counted where the bytes are written */
    if ((rc = tal_wfile_open(&b->seq_offsets, &b->dir, "seq_offsets", WBUF)) < 0) return rc;
    if ((rc = tal_wfile_open(&b->lengths, &b->dir, "lengths", WBUF)) < 0) return rc;
    if ((rc = tal_wfile_open(&b->checksums, &b->dir, "checksums", WBUF)) < 0) return rc;
    if ((rc = tal_wfile_open(&b->hdr_offsets, &b->dir, "hdr_offsets", WBUF)) < 0) return rc;
    b->files_open = 1;
    if (b->opt->threads > 1) {
        if ((rc = tal_writer_start(&b->writer)) < 0) return rc;
        if ((rc = tal_wfile_use_writer(&b->headers, b->writer, 1)) < 0 ||
            (rc = tal_wfile_use_writer(&b->residues, b->writer, 1)) < 0 ||
            (rc = tal_wfile_use_writer(&b->seq_offsets, b->writer, 0)) < 0 ||
            (rc = tal_wfile_use_writer(&b->lengths, b->writer, 0)) < 0 ||
            (rc = tal_wfile_use_writer(&b->checksums, b->writer, 0)) < 0 ||
            (rc = tal_wfile_use_writer(&b->hdr_offsets, b->writer, 0)) < 0)
            return rc;
    }
    {
        uint64_t zero = 0;
        if ((rc = tal_wfile_write(&b->seq_offsets, &zero, 8)) < 0) return rc;
        if ((rc = tal_wfile_write(&b->hdr_offsets, &zero, 8)) < 0) return rc;
    }
    if (b->opt->compress) {
        tal_chunker_opt_t co;
        memset(&co, 0, sizeof co);
        co.codec = (uint32_t)b->opt->compress;
        co.level = b->opt->level;
        co.chunk_size = b->opt->chunk_size;
        co.threads = b->opt->threads > 1 ? b->opt->threads : 0;
        if ((rc = tal_chunker_start(&b->chunker, &co, &b->residues, b->composition)) < 0)
            return rc;
    }
    if ((rc = keys_grow(b)) < 0) return rc;
    snprintf(cat_path, sizeof cat_path, "%s/catalog.sqlite", b->dir.tmp_path);
    tal_cleanup_add_file(&b->dir, "catalog.sqlite");
    return tal_catalog_create(&b->cat, cat_path, b->opt->threads > 1);
}

int tal_store_build(const char *fasta_path, const char *out_path, const tal_index_opt_t *opt,
                    tal_build_stats_t *stats)
{
    builder_t *b = calloc(1, sizeof *b);
    tal_build_stats_t local;
    tal_fasta_opt_t fopt;
    tal_fasta_record_t rec;
    int rc;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!b) return TAL_ENOMEM;
    b->opt = opt;
    b->in_path = fasta_path;
    b->dir.dir_fd = -1;
    b->started = tal_now_seconds();
    tal_fasta_opt_init(&fopt);
    fopt.read_ahead = opt->threads > 1;
    if ((rc = tal_fasta_open(&b->fa, fasta_path, &fopt)) < 0) goto out;
    {
        struct stat st;
        if (strcmp(fasta_path, "-") && stat(fasta_path, &st) == 0 && S_ISREG(st.st_mode))
            b->input_size = (uint64_t)st.st_size;
    }
    if ((rc = tal_atomic_dir_begin(&b->dir, out_path, opt->force, TAL_META_FILE)) < 0) goto out;
    if ((rc = open_outputs(b)) < 0) goto out;
    while ((rc = tal_fasta_next(b->fa, &rec)) > 0)
        if ((rc = add_record(b, &rec)) < 0) goto out;
    if (rc < 0) goto out;
    if (b->n == 0) {
        tal_log_error("%s: no FASTA records found", tal_fasta_path(b->fa));
        rc = TAL_EINPUT;
        goto out;
    }
    show_progress(b, 1);
    tal_log_info("input parsed at %.2f s", tal_now_seconds() - b->started);
    rc = finish_store(b, stats);
    stats->seconds = tal_now_seconds() - b->started;
out:
    /* workers may still be writing chunks into the residues file: stop them first */
    tal_chunker_abort(b->chunker);
    b->chunker = NULL;
    if (b->files_open) {
        tal_wfile_abort(&b->headers);
        tal_wfile_abort(&b->residues);
        tal_wfile_abort(&b->seq_offsets);
        tal_wfile_abort(&b->lengths);
        tal_wfile_abort(&b->checksums);
        tal_wfile_abort(&b->hdr_offsets);
    }
    tal_writer_stop(b->writer);
    if (b->cat) tal_catalog_abort(b->cat);
    if (rc < 0) tal_atomic_dir_abort(&b->dir);
    tal_fasta_close(b->fa);
    tal_huge_free(b->slots, b->n_slots * sizeof *b->slots);
    free(b->dup_buf);
    free(b);
    return rc < 0 ? rc : 0;
}
