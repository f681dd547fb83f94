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
#include "io/instream_internal.h"
#include "layout_internal.h"
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

#define WBUF          (1u << 20)
/* Compressed stores: header chunks aim at 256 KiB (a lookup decodes one: small is fast,
 * and zstd and lz4 lose little at that size); headers and the per-record arrays are
 * compressed at least at level 9, text compressing far better there. */
#define HDR_CHUNK_MAX (256u << 10)
#define HDR_LEVEL_MIN 9

typedef struct {
    const tal_index_opt_t *opt;
    const char *in_path;
    tal_fasta_reader_t *fa;
    tal_atomic_dir_t dir;
    tal_wfile_t headers, residues, hdr_offsets, seq_offsets, lengths, checksums;
    int files_open;
    /* compressed stores (format 1.3): headers, hdr_offsets, seq_offsets and lengths above
     * are raw temporaries ("*.raw"), read back for duplicates and compressed at the end */
    int compact;
    tal_wfile_t hdr_stored;  /* the headers section: the header chunks */
    tal_chunker_t *hchunker; /* cuts and compresses the header chunks */
    uint64_t hdr_composition[256];
    uint64_t one_key_slots; /* the size of the table written (format 1.3) */
    tal_key_slot_t *slots;  /* the accession table, written as the keys section */
    size_t n_slots, n_keys;
    unsigned slot_bits;
    tal_catalog_writer_t *cat;
    tal_writer_t *writer;     /* background writes when threads > 1 */
    tal_chunker_t *chunker;   /* compressed residues (NULL: raw) */
    tal_layout_enc_t *layout; /* the input's line layout (NULL: not kept) */
    uint64_t n, residue_total, header_total, min_len, max_len, dups;
    uint64_t input_size; /* of a regular input file, for sizing the accession table */
    uint64_t composition[256];
    char *dup_buf;
    size_t dup_buf_cap;
    double started, last_progress;
    /* the memory plan: buffer sizes, and what was reserved for them */
    size_t wbuf_bulk, wbuf_small;
    unsigned cache_kib;
    uint64_t held_input, held_output, held_catalog;
} builder_t;

/* Buffers of a build, from the plan (see plan_buffers). */
typedef struct {
    size_t wbuf_bulk, wbuf_small; /* headers and residues; the per-record arrays */
    unsigned cache_kib;           /* SQLite's page cache */
    uint64_t input, output, catalog;
} build_plan_t;

void tal_index_opt_init(tal_index_opt_t *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->threads = 2;
    opt->chunk_size = 4u << 20;
}

/* The same chunker for the plan and the build: -t 1 compresses in the parsing thread. */
static void chunker_options(const tal_index_opt_t *opt, tal_chunker_opt_t *co)
{
    memset(co, 0, sizeof *co);
    co->codec = (uint32_t)opt->compress;
    co->level = opt->level;
    co->chunk_size = opt->chunk_size;
    co->threads = opt->threads > 1 ? opt->threads : 0;
    co->budget = opt->budget;
}

static void header_chunker_options(const tal_index_opt_t *opt, tal_chunker_opt_t *co)
{
    chunker_options(opt, co);
    if (co->chunk_size > HDR_CHUNK_MAX) co->chunk_size = HDR_CHUNK_MAX;
    if (co->level < HDR_LEVEL_MIN) co->level = HDR_LEVEL_MIN;
}

static void plan_buffers(const tal_index_opt_t *opt, build_plan_t *p)
{
    uint64_t cap = tal_budget_cap(opt->budget);
    int small = opt->low_memory || (cap && cap < ((uint64_t)1 << 30)),
        writers = opt->threads > 1 ? 2 : 1;
    p->wbuf_bulk = small ? WBUF / 2 : 4 * WBUF;
    p->wbuf_small = small ? WBUF / 4 : WBUF;
    p->cache_kib = small ? 2048 : 16384;
    /* read-ahead windows of the input, and the parser's record */
    p->input = tal_instream_footprint(opt->threads > 1) + (1u << 20);
    /* each file's buffer, twice with the writer thread, and one for the closing sections */
    p->output = (uint64_t)(2 * p->wbuf_bulk + 4 * p->wbuf_small) * (uint64_t)writers + WBUF;
    /* the page cache, SQLite's own heap around it, and the batches handed to its thread */
    p->catalog =
        (uint64_t)p->cache_kib * 1024 + (4u << 20) + (opt->threads > 1 ? (4u << 20) : (2u << 20));
}

/* Slots of the accession table for an input of input_size bytes whose records average
 * per_record bytes and keys_per_record keys (the first word, and a db|ACC| alias): the
 * same rule for the plan and for the table itself, sized once so that it never grows
 * (growing holds the old table and the new one at once). */
static unsigned table_bits(uint64_t input_size, double per_record, double keys_per_record,
                           unsigned bits)
{
    double expected = (double)input_size / (per_record + 2.0) * keys_per_record * 1.05;
    while (bits < 31 && (double)((size_t)1 << bits) * 0.70 < expected) bits++;
    return bits;
}

/* Records and keys in the first MiB of a plain FASTA file, the bytes read and the
 * file's size; 0 when the input cannot be sampled (stdin, compressed, not FASTA). */
static int sample_input(const char *fasta_path, uint64_t *records, uint64_t *keys,
                        uint64_t *sampled, uint64_t *size)
{
    struct stat st;
    char *buf;
    ssize_t got;
    int fd;
    *records = *keys = 0;
    if (!strcmp(fasta_path, "-") || stat(fasta_path, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size <= 0)
        return 0;
    fd = open(fasta_path, O_RDONLY | O_CLOEXEC);
    buf = malloc(1u << 20);
    got = fd >= 0 && buf ? read(fd, buf, 1u << 20) : -1;
    if (got > 2 && buf[0] == '>') {
        for (ssize_t i = 0; i < got; i++) {
            char *eol;
            tal_keys_t k;
            if (buf[i] != '>' || (i && buf[i - 1] != '\n')) continue;
            if (!(eol = memchr(buf + i, '\n', (size_t)(got - i)))) break;
            tal_header_keys(buf + i + 1, (size_t)(eol - buf - i - 1), &k);
            (*records)++;
            *keys += 1 + (k.alias != NULL);
        }
    }
    *sampled = got > 0 ? (uint64_t)got : 0;
    *size = (uint64_t)st.st_size;
    free(buf);
    if (fd >= 0) close(fd);
    return *records > 0;
}

uint64_t tal_index_estimate(const char *fasta_path)
{
    uint64_t records, keys, sampled, size;
    if (!sample_input(fasta_path, &records, &keys, &sampled, &size)) return 0;
    return (uint64_t)((double)size * (double)records / (double)sampled) + 1;
}

uint64_t tal_index_plan(const char *fasta_path, const tal_index_opt_t *opt)
{
    build_plan_t p;
    uint64_t total, records, keys, sampled, size;
    plan_buffers(opt, &p);
    total = p.input + p.output + p.catalog + ((uint64_t)1 << 16) * sizeof(tal_key_slot_t);
    if (opt->compress) {
        /* the compressors' contexts and the chunks in flight */
        tal_chunker_opt_t co;
        chunker_options(opt, &co);
        total += tal_chunker_footprint(&co);
        header_chunker_options(opt, &co);
        total += tal_chunker_footprint(&co);
    }
    /* the accession table, from the records in the first MiB */
    if (sample_input(fasta_path, &records, &keys, &sampled, &size)) {
        if (opt->compress) keys = records; /* format 1.3: one key a record */
        total += ((uint64_t)1 << table_bits(size, (double)sampled / (double)records - 2.0,
                                            (double)keys / (double)records, 16)) *
                 sizeof(tal_key_slot_t);
        /* and the table as written, laid out again at 80% load */
        if (opt->compress)
            total += (uint64_t)((double)size * (double)records / (double)sampled * 1.25 + 2) *
                     sizeof(tal_key_slot_t);
    }
    return total;
}

static int keys_grow_to(builder_t *b, unsigned bits)
{
    size_t cap = (size_t)1 << bits;
    tal_key_slot_t *slots;
    int rc;
    if (bits > 32) return TAL_ENOMEM;
    if ((rc = tal_budget_reserve(b->opt->budget, TAL_MEM_RECORDS, cap * sizeof *slots)) < 0) {
        tal_log_error(
            "%s: the accession table of %llu records needs %llu MiB more than --max-memory allows",
            b->in_path, (unsigned long long)b->n,
            (unsigned long long)((cap * sizeof *slots) >> 20));
        return rc;
    }
    slots = tal_huge_alloc(cap * sizeof *slots);
    if (!slots) {
        tal_budget_release(b->opt->budget, TAL_MEM_RECORDS, cap * sizeof *slots);
        return TAL_ENOMEM;
    }
    for (size_t i = 0; i < b->n_slots; i++) {
        tal_key_slot_t k = b->slots[i];
        size_t j;
        if (!k.ref) continue;
        j = (size_t)tal_key_home(k.tag, bits);
        while (slots[j].ref) j = (j + 1) & (cap - 1);
        slots[j] = k;
    }
    tal_huge_free(b->slots, b->n_slots * sizeof *b->slots);
    tal_budget_release(b->opt->budget, TAL_MEM_RECORDS, b->n_slots * sizeof *b->slots);
    b->slots = slots;
    b->n_slots = cap;
    b->slot_bits = bits;
    return 0;
}

static int keys_grow(builder_t *b) { return keys_grow_to(b, b->n_slots ? b->slot_bits + 1 : 16); }

/* Once the first records show the average record size, the table is sized for the
 * whole input at once: growing it step by step rehashes every key several times and
 * zeroes twice the memory. Compressed input underestimates; growth covers that. */
static int keys_presize(builder_t *b)
{
    double per_record = (double)(b->header_total + b->residue_total) / (double)b->n;
    unsigned bits;
    if (b->input_size == 0) return 0;
    bits = table_bits(b->input_size, per_record, (double)b->n_keys / (double)b->n, b->slot_bits);
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
static int keys_add(builder_t *b, uint32_t tag, const char *key, size_t len, uint64_t id, int alias,
                    uint64_t *dup_of)
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
    if (!b->opt->progress || (!final && (b->n & 1023))) return;
    now = tal_now_seconds();
    if (!final && now - b->last_progress < 0.5) return;
    b->last_progress = now;
    b->opt->progress(b->opt->progress_ctx, b->n, b->residue_total, now - b->started, final);
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
    if (b->compact) {
        /* format 1.3: one key a record, the ACC of db|ACC|NAME or else the first word; a
         * repeated first word has the same key, so duplicates are still found */
        const char *key;
        size_t key_len;
        tal_one_key(&keys, &key, &key_len);
        tag = tal_key_tag(tal_key_hash(key, key_len));
        keys.alias = NULL;
        keys.alias_len = 0;
    } else {
        tag = tal_key_tag(tal_key_hash(keys.primary, keys.primary_len));
    }
    __builtin_prefetch(&b->slots[tal_key_home(tag, b->slot_bits)], 1);
    if (keys.alias) {
        alias_tag = tal_key_tag(tal_key_hash(keys.alias, keys.alias_len));
        __builtin_prefetch(&b->slots[tal_key_home(alias_tag, b->slot_bits)], 1);
    }
    checksum = tal_record_checksum(rec->header, rec->header_len, rec->seq, rec->seq_len);
    if ((rc = keys_add(b, tag, keys.primary, keys.primary_len, id, 0, &dup_of)) < 0) return rc;
    if (dup_of != UINT64_MAX) {
        if (b->opt->allow_duplicates) {
            /* the store no longer holds the whole file: no layout gives it back */
            tal_layout_enc_free(b->layout);
            b->layout = NULL;
            b->dups++;
            return 0;
        }
        tal_log_error("%s: line %llu: duplicate accession '%.*s' (first seen in record %llu); "
                      "use --allow-duplicates to keep the first and skip the rest",
                      tal_fasta_path(b->fa), (unsigned long long)rec->line, (int)keys.primary_len,
                      keys.primary, (unsigned long long)dup_of + 1);
        return TAL_EINPUT;
    }
    if (keys.alias && (rc = keys_add(b, alias_tag, keys.alias, keys.alias_len, id, 1, &dup_of)) < 0)
        return rc;

    if ((rc = tal_wfile_write(&b->headers, rec->header, rec->header_len)) < 0) return rc;
    if (b->hchunker && (rc = tal_chunker_add(b->hchunker, rec->header, rec->header_len)) < 0)
        return rc;
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

    if (b->layout) {
        tal_fasta_lines_t lines;
        if (id == 0) {
            size_t n;
            const char *pre = tal_fasta_preamble_(b->fa, &n);
            if ((rc = tal_layout_enc_preamble(b->layout, pre, n)) < 0) return rc;
        }
        tal_fasta_lines_(b->fa, &lines);
        if ((rc = tal_layout_enc_add(b->layout, &lines)) < 0) return rc;
    }
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

/* Compressed stores (format 1.3, doc/format.md 4.6): the per-record array held in the raw
 * temporary raw_name (count u64 values), as differences when delta is set, cut into its
 * eight byte planes and compressed as one block with the store's codec; stored as the
 * plain array (codec 0) when that does not pay, or when --max-memory has no room for the
 * three copies this takes (the temporary then becomes the section). The temporary is
 * removed. */
static int compact_array(builder_t *b, tal_wfile_t *raw, const char *raw_name, const char *name,
                         uint64_t count, int delta, tal_section_disk_t *sec)
{
    size_t bytes = (size_t)count * 8, bound = tal_codec_bound((uint32_t)b->opt->compress, bytes);
    uint64_t *values = NULL, prev = 0, held = (uint64_t)bytes * 2 + bound;
    unsigned char *planes = NULL;
    char *stored = NULL;
    tal_codec_ctx_t *ctx = NULL;
    size_t stored_len = 0;
    int rc = TAL_ENOMEM;
    if (tal_budget_reserve(b->opt->budget, TAL_MEM_OTHER, held) < 0) {
        if ((rc = tal_wfile_finish(raw, &sec->checksum, &sec->size)) < 0) return rc;
        if (renameat(b->dir.dir_fd, raw_name, b->dir.dir_fd, name) != 0) {
            tal_log_error("cannot rename %s/%s: %s", b->dir.tmp_path, raw_name, strerror(errno));
            return TAL_EIO;
        }
        tal_cleanup_add_file(&b->dir, name);
        return 0;
    }
    values = malloc(bytes ? bytes : 1);
    planes = malloc(bytes ? bytes : 1);
    stored = malloc(bound ? bound : 1);
    if (!values || !planes || !stored) goto out;
    if ((rc = tal_wfile_pread(raw, 0, values, bytes)) < 0) goto out;
    tal_wfile_abort(raw);
    unlinkat(b->dir.dir_fd, raw_name, 0);
    for (size_t i = 0; i < count; i++) {
        uint64_t d = delta ? values[i] - prev : values[i];
        prev = values[i];
        for (size_t j = 0; j < 8; j++) planes[j * count + i] = (unsigned char)(d >> (8 * j));
    }
    if ((rc = tal_codec_ctx_create(&ctx, (uint32_t)b->opt->compress,
                                   b->opt->level > HDR_LEVEL_MIN ? b->opt->level : HDR_LEVEL_MIN,
                                   0)) < 0 ||
        (rc = tal_codec_compress(ctx, (const char *)planes, bytes, stored, bound, &stored_len)) < 0)
        goto out;
    if (stored_len) {
        rc = write_array_file(b, name, stored, stored_len, sec);
        sec->codec = (uint32_t)b->opt->compress;
    } else {
        rc = write_array_file(b, name, values, bytes, sec);
    }
out:
    tal_codec_ctx_free(ctx);
    free(values);
    free(planes);
    free(stored);
    tal_budget_release(b->opt->budget, TAL_MEM_OTHER, held);
    return rc;
}

/* Format 1.3 (doc/format.md 5.6): the build's table (a power of two in size, so that it
 * can double) laid out again at 80% load, each tag's home slot scaled to the table. */
static int write_one_key_table(builder_t *b, tal_section_disk_t *sec)
{
    uint64_t slots = b->n_keys + b->n_keys / 4 + 1;
    size_t bytes = (size_t)slots * sizeof(tal_key_slot_t);
    tal_key_slot_t *table;
    int rc;
    if ((rc = tal_budget_reserve(b->opt->budget, TAL_MEM_RECORDS, bytes)) < 0) {
        tal_log_error("%s: the accession table of %llu records needs %llu MiB more than "
                      "--max-memory allows",
                      b->in_path, (unsigned long long)b->n, (unsigned long long)(bytes >> 20));
        return rc;
    }
    table = calloc(slots, sizeof *table);
    if (!table) {
        tal_budget_release(b->opt->budget, TAL_MEM_RECORDS, bytes);
        return TAL_ENOMEM;
    }
    for (size_t i = 0; i < b->n_slots; i++) {
        uint64_t j;
        if (!b->slots[i].ref) continue;
        j = tal_key_home_any(b->slots[i].tag, slots);
        while (table[j].ref) j = j + 1 == slots ? 0 : j + 1;
        table[j] = b->slots[i];
    }
    rc = write_array_file(b, "keys", table, bytes, sec);
    free(table);
    tal_budget_release(b->opt->budget, TAL_MEM_RECORDS, bytes);
    b->one_key_slots = slots;
    return rc;
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
    const char *epoch = getenv("SOURCE_DATE_EPOCH");
    /* reproducible builds: the same input gives the same bytes (reproducible-builds.org) */
    if (epoch && *epoch) {
        char *end;
        long long t = strtoll(epoch, &end, 10);
        if (!*end && t >= 0) now = (time_t)t;
    }
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
        snprintf(
            buf, sizeof buf, "threads=%d allow_duplicates=%d compress=%s level=%d chunk_size=%llu",
            b->opt->threads, b->opt->allow_duplicates, tal_codec_name((uint32_t)b->opt->compress),
            b->opt->level, (unsigned long long)b->opt->chunk_size);
    else
        snprintf(buf, sizeof buf, "threads=%d allow_duplicates=%d compress=none", b->opt->threads,
                 b->opt->allow_duplicates);
    rc |= tal_catalog_set(b->cat, "parameters", buf);
    /* the configuration the build was given (profile, file, environment), if any */
    if (b->opt->provenance && *b->opt->provenance)
        rc |= tal_catalog_set(b->cat, "config", b->opt->provenance);
    rc |= tal_catalog_set(b->cat, "talaria_version", PACKAGE_VERSION);
    snprintf(buf, sizeof buf, "%u.%u", TAL_FORMAT_MAJOR, b->compact ? TAL_FORMAT_MINOR : 2u);
    rc |= tal_catalog_set(b->cat, "format_version", buf);
    gmtime_r(&now, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    rc |= tal_catalog_set(b->cat, "created", buf);
    return rc ? TAL_EIO : 0;
}

static int finish_store(builder_t *b, tal_build_stats_t *st)
{
    tal_section_disk_t secs[11];
    tal_meta_disk_t meta;
    tal_chunk_disk_t *chunks = NULL, *hchunks = NULL;
    uint64_t n_chunks = 0, n_hchunks = 0;
    unsigned char *layout = NULL;
    size_t layout_size = 0;
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
    if (b->hchunker) {
        rc = tal_chunker_finish(b->hchunker, &hchunks, &n_hchunks);
        b->hchunker = NULL;
        if (rc < 0) goto fail_rest;
        secs[0].codec = (uint32_t)b->opt->compress;
        section_init(&secs[9], TAL_SEC_HDR_CHUNKS, "header_chunks");
        n_secs = 10;
    }

    /* the catalog thread may still be inserting; the rest is done meanwhile */
    b->files_open = 0;
    if (b->compact) {
        if ((rc = tal_wfile_finish(&b->hdr_stored, &secs[0].checksum, &secs[0].size)) < 0 ||
            (rc = compact_array(b, &b->seq_offsets, "seq_offsets.raw", "seq_offsets", b->n + 1, 1,
                                &secs[2])) < 0 ||
            (rc = compact_array(b, &b->hdr_offsets, "hdr_offsets.raw", "hdr_offsets", b->n + 1, 1,
                                &secs[5])) < 0)
            goto fail_rest;
        tal_wfile_abort(&b->headers); /* the raw headers served duplicate checks only */
        unlinkat(b->dir.dir_fd, "headers.raw", 0);
        /* the lengths are the sequence offsets' differences: not stored (format.md 4.6) */
        tal_wfile_abort(&b->lengths);
        unlinkat(b->dir.dir_fd, "lengths.raw", 0);
        secs[3].id = 0;
    } else {
        if ((rc = tal_wfile_finish(&b->headers, &secs[0].checksum, &secs[0].size)) < 0 ||
            (rc = tal_wfile_finish(&b->seq_offsets, &secs[2].checksum, &secs[2].size)) < 0 ||
            (rc = tal_wfile_finish(&b->lengths, &secs[3].checksum, &secs[3].size)) < 0 ||
            (rc = tal_wfile_finish(&b->hdr_offsets, &secs[5].checksum, &secs[5].size)) < 0)
            goto fail_rest;
    }
    if ((rc = tal_wfile_finish(&b->residues, &secs[1].checksum, &secs[1].size)) < 0) goto fail_rest;
    if ((rc = tal_wfile_finish(&b->checksums, &secs[4].checksum, &secs[4].size)) < 0)
        goto fail_rest;
    if (b->compact)
        rc = write_one_key_table(b, &secs[6]);
    else
        rc = write_array_file(b, "keys", b->slots, b->n_slots * sizeof *b->slots, &secs[6]);
    if (rc < 0) goto out;
    if (secs[1].codec != TAL_CODEC_NONE &&
        (rc = write_array_file(b, "chunks", chunks, n_chunks * sizeof *chunks, &secs[8])) < 0)
        goto out;
    if (hchunks && (rc = write_array_file(b, "header_chunks", hchunks, n_hchunks * sizeof *hchunks,
                                          &secs[9])) < 0)
        goto out;
    free(chunks);
    free(hchunks);
    chunks = hchunks = NULL;
    /* format 1.2: the line layout, last, when the store holds every record of the input */
    if (b->layout) {
        if ((rc = tal_layout_enc_finish(b->layout, &layout, &layout_size)) < 0) goto out;
        if (!layout)
            tal_log_warn("%s: the line layout is not kept (--max-memory is too small for it); "
                         "reconstruct will write one line per sequence",
                         b->in_path);
    }
    if (layout) {
        section_init(&secs[n_secs], TAL_SEC_LAYOUT, "layout");
        rc = write_array_file(b, "layout", layout, layout_size, &secs[n_secs]);
        free(layout);
        if (rc < 0) return rc;
        n_secs++;
    }

    tal_log_info("records and arrays written and fsynced at %.2f s",
                 tal_now_seconds() - b->started);
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
    /* a raw store is laid out exactly as in 1.2, and says so */
    meta.version_minor = b->compact ? TAL_FORMAT_MINOR : 2;
    meta.kind = TAL_KIND_SEQUENCES;
    meta.record_count = b->n;
    meta.residue_count = b->residue_total;
    meta.header_bytes = b->header_total;
    meta.min_length = b->min_len;
    meta.max_length = b->max_len;
    meta.key_count = b->n_keys;
    meta.key_slots = b->compact ? b->one_key_slots : b->n_slots;
    if (b->compact) meta.flags = TAL_META_ONE_KEY;
    meta.duplicates_skipped = b->dups;
    {
        int kept = 0; /* drop the entries of sections not written (id 0) */
        for (int i = 0; i < n_secs; i++)
            if (secs[i].id) secs[kept++] = secs[i];
        n_secs = kept;
    }
    meta.section_count = (uint32_t)n_secs;
    if (secs[1].codec != TAL_CODEC_NONE) {
        meta.chunk_size = b->opt->chunk_size;
        meta.chunk_count = n_chunks;
    }
    if (b->compact) {
        tal_chunker_opt_t co;
        header_chunker_options(b->opt, &co);
        meta.hdr_chunk_size = co.chunk_size;
        meta.hdr_chunk_count = n_hchunks;
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
    free(hchunks);
    return rc;
fail_rest:
    free(chunks);
    free(hchunks);
    if (b->compact) tal_wfile_abort(&b->hdr_stored);
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
    build_plan_t plan;
    int rc;
    plan_buffers(b->opt, &plan);
    b->wbuf_bulk = plan.wbuf_bulk;
    b->wbuf_small = plan.wbuf_small;
    b->cache_kib = plan.cache_kib;
    if ((rc = tal_budget_reserve(b->opt->budget, TAL_MEM_INPUT, plan.input)) < 0) return rc;
    b->held_input = plan.input;
    if ((rc = tal_budget_reserve(b->opt->budget, TAL_MEM_OTHER, plan.output)) < 0) return rc;
    b->held_output = plan.output;
    if ((rc = tal_budget_reserve(b->opt->budget, TAL_MEM_CATALOG, plan.catalog)) < 0) return rc;
    b->held_catalog = plan.catalog;
    b->compact = b->opt->compress != 0;
    if ((rc = tal_wfile_open(&b->headers, &b->dir, b->compact ? "headers.raw" : "headers",
                             b->wbuf_bulk)) < 0)
        return rc;
    if ((rc = tal_wfile_open(&b->residues, &b->dir, "residues", b->wbuf_bulk)) < 0) return rc;
    if (!b->opt->compress)
        b->residues.byte_counts = b->composition; /* counted where the bytes are written */
    if ((rc = tal_wfile_open(&b->seq_offsets, &b->dir,
                             b->compact ? "seq_offsets.raw" : "seq_offsets", b->wbuf_small)) < 0)
        return rc;
    if ((rc = tal_wfile_open(&b->lengths, &b->dir, b->compact ? "lengths.raw" : "lengths",
                             b->wbuf_small)) < 0)
        return rc;
    if ((rc = tal_wfile_open(&b->checksums, &b->dir, "checksums", b->wbuf_small)) < 0) return rc;
    if ((rc = tal_wfile_open(&b->hdr_offsets, &b->dir,
                             b->compact ? "hdr_offsets.raw" : "hdr_offsets", b->wbuf_small)) < 0)
        return rc;
    if (b->compact && (rc = tal_wfile_open(&b->hdr_stored, &b->dir, "headers", b->wbuf_small)) < 0)
        return rc;
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
        chunker_options(b->opt, &co);
        if ((rc = tal_chunker_start(&b->chunker, &co, &b->residues, b->composition)) < 0) return rc;
        header_chunker_options(b->opt, &co);
        if ((rc = tal_chunker_start(&b->hchunker, &co, &b->hdr_stored, b->hdr_composition)) < 0)
            return rc;
    }
    if ((rc = keys_grow(b)) < 0) return rc;
    snprintf(cat_path, sizeof cat_path, "%s/catalog.sqlite", b->dir.tmp_path);
    tal_cleanup_add_file(&b->dir, "catalog.sqlite");
    /* compressed stores keep per-record rows only when asked for SQL on accessions */
    return tal_catalog_create(&b->cat, cat_path, b->opt->threads > 1, b->cache_kib,
                              !b->compact || b->opt->catalog_index);
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
    if ((rc = tal_layout_enc_new(&b->layout, opt->budget)) < 0) goto out;
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
    tal_chunker_abort(b->hchunker);
    b->hchunker = NULL;
    if (b->files_open) {
        if (b->compact) tal_wfile_abort(&b->hdr_stored);
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
    tal_layout_enc_free(b->layout);
    tal_huge_free(b->slots, b->n_slots * sizeof *b->slots);
    tal_budget_release(opt->budget, TAL_MEM_RECORDS, b->n_slots * sizeof *b->slots);
    tal_budget_release(opt->budget, TAL_MEM_INPUT, b->held_input);
    tal_budget_release(opt->budget, TAL_MEM_OTHER, b->held_output);
    tal_budget_release(opt->budget, TAL_MEM_CATALOG, b->held_catalog);
    free(b->dup_buf);
    free(b);
    return rc < 0 ? rc : 0;
}
