/* Unit tests for compressed stores and the streaming scan: raw, lz4 and zstd stores built
 * from one generated FASTA file must give the same records, tal_scan must cover them in
 * order, and damaged chunks or chunk tables must be caught (TAL_EINPUT). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_files.h"
#include "test_support.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/scan.h"
#include "talaria/store.h"
#include "store/format_internal.h"

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

/* The chunks file as doc/format.md lays it out: 64-byte little-endian entries. */
_Static_assert(offsetof(tal_chunk_disk_t, first_record) == 0, "chunk entry layout");
_Static_assert(offsetof(tal_chunk_disk_t, record_count) == 8, "chunk entry layout");
_Static_assert(offsetof(tal_chunk_disk_t, raw_offset) == 16, "chunk entry layout");
_Static_assert(offsetof(tal_chunk_disk_t, raw_size) == 24, "chunk entry layout");
_Static_assert(offsetof(tal_chunk_disk_t, stored_offset) == 32, "chunk entry layout");
_Static_assert(offsetof(tal_chunk_disk_t, stored_size) == 40, "chunk entry layout");

#define CHUNK_SIZE (64u << 10)
#define N_RECORDS  640
#define LONG_ID    321
#define LONG_LEN   (100000 + 17) /* longer than a chunk: it must get a chunk of its own */
#define RAW_BLOCK  4096

enum { CODEC_RAW, CODEC_LZ4, CODEC_ZSTD, N_CODECS };

static const int codec_compress[N_CODECS] = {TAL_COMPRESS_NONE, TAL_COMPRESS_LZ4,
                                             TAL_COMPRESS_ZSTD};
static const char *const codec_names[N_CODECS] = {"none", "lz4", "zstd"};

/* ---- the generated records and the temp dir they are written to ------------------ */

typedef struct {
    size_t n;
    char **headers;
    char **seqs;
    size_t *lens;
    uint64_t residues;
} dataset_t;

static char test_dir[PATH_MAX];
static char fasta_path[PATH_MAX + 64];
static dataset_t data;
static int built[N_CODECS][3]; /* [codec][threads] */

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

static const char amino[] = "ACDEFGHIKLMNPQRSTVWY";

/* Lengths: empty records here and there (the first and last among them), most short, a
 * few a few KiB, and one longer than a chunk between two non-empty neighbours. Residues
 * copy a few motifs with point changes, so that both codecs find something to gain. */
static int make_dataset(dataset_t *d)
{
    char motifs[6][37];
    d->n = N_RECORDS;
    d->headers = calloc(d->n, sizeof *d->headers);
    d->seqs = calloc(d->n, sizeof *d->seqs);
    d->lens = calloc(d->n, sizeof *d->lens);
    if (!d->headers || !d->seqs || !d->lens) return -1;
    rng_state = 20240611;
    for (int m = 0; m < 6; m++)
        for (int j = 0; j < 37; j++) motifs[m][j] = amino[rnd() % 20];
    d->residues = 0;
    for (size_t i = 0; i < d->n; i++) {
        size_t len, words = rnd() % 5, hl;
        char header[256];
        uint32_t kind = rnd() % 100;
        int m = (int)(rnd() % 6), shift = (int)(rnd() % 37);
        if (i == LONG_ID)
            len = LONG_LEN;
        else if (i == LONG_ID - 1 || i == LONG_ID + 1)
            len = 300 + rnd() % 200;
        else if (i == 0 || i == d->n - 1 || i % 19 == 3)
            len = 0;
        else if (kind < 70)
            len = 1 + rnd() % 700;
        else if (kind < 95)
            len = 1 + rnd() % 2000;
        else
            len = 1 + rnd() % 6000;
        hl = (size_t)snprintf(header, sizeof header, "sp|ACC%05zu|REC%zu_TEST record %zu len=%zu",
                              i, i, i, len);
        for (size_t w = 0; w < words && hl + 16 < sizeof header; w++)
            hl += (size_t)snprintf(header + hl, sizeof header - hl, " w%u", rnd() % 100000);
        d->headers[i] = strdup(header);
        d->seqs[i] = malloc(len + 1);
        if (!d->headers[i] || !d->seqs[i]) return -1;
        for (size_t j = 0; j < len; j++) {
            char c = rnd() % 10 == 0 ? amino[rnd() % 20] : motifs[m][(j + (size_t)shift) % 37];
            d->seqs[i][j] = i % 50 == 7 ? (char)tolower((unsigned char)c) : c;
        }
        d->seqs[i][len] = '\0';
        d->lens[i] = len;
        d->residues += len;
    }
    return 0;
}

static void free_dataset(dataset_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->headers) free(d->headers[i]);
        if (d->seqs) free(d->seqs[i]);
    }
    free(d->headers);
    free(d->seqs);
    free(d->lens);
    memset(d, 0, sizeof *d);
}

/* Line widths vary; every seventh record is on one line. */
static int write_dataset_fasta(const char *path, const dataset_t *d)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    for (size_t i = 0; i < d->n; i++) {
        size_t width = i % 7 == 0 ? d->lens[i] + 1 : 60 + i % 20;
        fprintf(fp, ">%s\n", d->headers[i]);
        for (size_t j = 0; j < d->lens[i]; j += width) {
            size_t part = d->lens[i] - j < width ? d->lens[i] - j : width;
            fwrite(d->seqs[i] + j, 1, part, fp);
            fputc('\n', fp);
        }
    }
    return fclose(fp) == 0 ? 0 : -1;
}

static int group_setup(void **state)
{
    (void)state;
    if (tal_test_mkdtemp(test_dir, sizeof test_dir, "test-scan") < 0) return -1;
    snprintf(fasta_path, sizeof fasta_path, "%s/input.fa", test_dir);
    if (make_dataset(&data) < 0 || write_dataset_fasta(fasta_path, &data) < 0) return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tal_test_rm_rf(test_dir);
    free_dataset(&data);
    tal_log_set_level(TAL_LOG_WARN);
    return 0;
}

static const char *tpath(const char *name)
{
    static char bufs[8][PATH_MAX + 64];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, PATH_MAX + 64, "%s/%s", test_dir, name);
    return b;
}

/* ---- files ----------------------------------------------------------------------- */

/* A fresh copy of a store's files under dst (replaced if it exists). */
static void copy_store(const char *src, const char *dst)
{
    DIR *d;
    struct dirent *e;
    tal_test_rm_rf(dst);
    assert_int_equal(mkdir(dst, 0700), 0);
    d = opendir(src);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char from[PATH_MAX + 300], to[PATH_MAX + 300];
        if (e->d_name[0] == '.') continue;
        snprintf(from, sizeof from, "%s/%s", src, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dst, e->d_name);
        tal_test_copy_file(from, to);
    }
    closedir(d);
}

/* The chunk table as stored in the store's "chunks" file (malloc'd). */
static tal_chunk_disk_t *read_chunks(const char *store, uint64_t *count)
{
    size_t size;
    tal_chunk_disk_t *t = tal_test_read_file(tal_test_join(store, "chunks"), &size);
    assert_int_equal(size % sizeof *t, 0);
    *count = size / sizeof *t;
    return t;
}

/* The chunk (index) holding record id. */
static uint64_t chunk_of(const tal_chunk_disk_t *t, uint64_t n, uint64_t id)
{
    for (uint64_t k = 0; k < n; k++)
        if (id >= t[k].first_record && id - t[k].first_record < t[k].record_count) return k;
    fail_msg("record %llu is in no chunk", (unsigned long long)id);
    return UINT64_MAX;
}

/* ---- stores built from the dataset -------------------------------------------------- */

static const char *store_name(int codec, int threads)
{
    static char bufs[4][64];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, 64, "store-%s-t%d", codec_names[codec], threads);
    return tpath(b);
}

static int build_store(const char *fasta, const char *out, int codec, int threads)
{
    tal_index_opt_t opt;
    tal_build_stats_t stats;
    int rc;
    tal_index_opt_init(&opt);
    opt.threads = threads;
    opt.compress = codec_compress[codec];
    opt.chunk_size = CHUNK_SIZE;
    opt.force = 1;
    rc = tal_store_build(fasta, out, &opt, &stats);
    if (rc == 0 && fasta == fasta_path) {
        assert_true(stats.records == data.n);
        assert_true(stats.residues == data.residues);
    }
    return rc;
}

/* The store for (codec, threads), built on first use. */
static const char *store_for(int codec, int threads)
{
    const char *path = store_name(codec, threads);
    if (!built[codec][threads]) {
        assert_int_equal(build_store(fasta_path, path, codec, threads), 0);
        built[codec][threads] = 1;
    }
    return path;
}

static void expect_record_is(const tal_record_t *rec, uint64_t id)
{
    const char *h = data.headers[id];
    if (rec->header_len != strlen(h) || memcmp(rec->header, h, rec->header_len) != 0 ||
        rec->seq_len != data.lens[id] ||
        (rec->seq_len && memcmp(rec->seq, data.seqs[id], rec->seq_len) != 0))
        fail_msg("record %llu differs from the input", (unsigned long long)id);
}

static void expect_same_record(const tal_record_t *got, const tal_record_t *want)
{
    assert_true(got->header_len == want->header_len);
    assert_memory_equal(got->header, want->header, got->header_len);
    assert_true(got->seq_len == want->seq_len);
    if (got->seq_len) assert_memory_equal(got->seq, want->seq, got->seq_len);
}

/* Every record of the store equals the input and the raw store's, byte for byte. */
static void check_records_against_raw(const char *path, const char *raw_path)
{
    tal_store_t *s = NULL, *raw = NULL;
    tal_record_t rec, want;
    assert_int_equal(tal_store_open(&s, path), 0);
    assert_int_equal(tal_store_open(&raw, raw_path), 0);
    for (uint64_t id = 0; id < data.n; id++) {
        assert_int_equal(tal_store_record(raw, id, &want), 0);
        expect_record_is(&want, id);
        assert_int_equal(tal_store_record(s, id, &rec), 0);
        expect_same_record(&rec, &want);
    }
    tal_log_set_level(TAL_LOG_QUIET);
    assert_int_equal(tal_store_record(s, data.n, &rec), TAL_EINPUT);
    tal_log_set_level(TAL_LOG_WARN);
    tal_store_close(raw);
    tal_store_close(s);
}

/* The chunk table tiles the records, the raw residue space and the residues file; no
 * chunk but the long record's goes past the chunk size, and that one holds it alone. */
static void check_chunk_table(const char *path, int codec)
{
    tal_store_t *s = NULL;
    tal_store_info_t info;
    tal_chunk_disk_t *t;
    uint64_t n, record = 0, raw = 0, stored = 0, long_chunk = UINT64_MAX, compressed = 0;
    struct stat st;
    assert_int_equal(tal_store_open(&s, path), 0);
    tal_store_info(s, &info);
    assert_true(info.records == data.n);
    assert_true(info.residues == data.residues);
    assert_string_equal(info.codec, codec_names[codec]);
    assert_true(info.max_length == LONG_LEN);
    assert_true(info.min_length == 0);
    if (codec == CODEC_RAW) {
        assert_true(info.chunk_count == 0);
        assert_true(info.chunk_size == 0);
        assert_true(info.stored_residue_bytes == data.residues);
        assert_int_equal(stat(tal_test_join(path, "chunks"), &st), -1);
        tal_store_close(s);
        return;
    }
    assert_true(info.chunk_size == CHUNK_SIZE);
    assert_true(info.chunk_count > 1);
    t = read_chunks(path, &n);
    assert_true(n == info.chunk_count);
    for (uint64_t k = 0; k < n; k++) {
        const tal_chunk_disk_t *c = &t[k];
        assert_true(c->first_record == record);
        assert_true(c->record_count > 0);
        assert_true(c->raw_offset == raw);
        assert_true(c->stored_offset == stored);
        if (c->first_record <= LONG_ID && LONG_ID < c->first_record + c->record_count) {
            long_chunk = k;
            assert_true(c->record_count == 1);
            assert_true(c->raw_size == LONG_LEN);
        } else {
            assert_true(c->raw_size <= CHUNK_SIZE);
        }
        /* cut at record boundaries: the raw size is the sum of the chunk's records */
        {
            uint64_t sum = 0;
            for (uint64_t id = c->first_record; id < c->first_record + c->record_count; id++)
                sum += data.lens[id];
            assert_true(c->raw_size == sum);
        }
        assert_true(c->codec == TAL_CODEC_NONE || c->codec == (uint32_t)codec_compress[codec]);
        if (c->codec == TAL_CODEC_NONE) assert_true(c->stored_size == c->raw_size);
        compressed += c->codec != TAL_CODEC_NONE;
        record += c->record_count;
        raw += c->raw_size;
        stored += c->stored_size;
    }
    assert_true(long_chunk != UINT64_MAX);
    assert_true(record == data.n);
    assert_true(raw == data.residues);
    assert_true(stored == info.stored_residue_bytes);
    assert_int_equal(stat(tal_test_join(path, "residues"), &st), 0);
    assert_true((uint64_t)st.st_size == stored);
    /* the residues repeat motifs: compressing pays, for every chunk */
    assert_true(compressed == n);
    assert_true(info.stored_residue_bytes < data.residues);
    free(t);
    tal_store_close(s);
}

static void check_build(int codec)
{
    const char *raw1 = store_for(CODEC_RAW, 1);
    for (int threads = 1; threads <= 2; threads++) {
        const char *path = store_for(codec, threads);
        check_chunk_table(path, codec);
        check_records_against_raw(path, raw1);
        assert_int_equal(tal_store_verify(path, 1), 0);
    }
    if (codec != CODEC_RAW) {
        /* the chunks are cut the same way whatever the number of threads */
        uint64_t n1, n2;
        tal_chunk_disk_t *t1 = read_chunks(store_for(codec, 1), &n1);
        tal_chunk_disk_t *t2 = read_chunks(store_for(codec, 2), &n2);
        assert_true(n1 == n2);
        for (uint64_t k = 0; k < n1; k++) {
            assert_true(t1[k].first_record == t2[k].first_record);
            assert_true(t1[k].record_count == t2[k].record_count);
            assert_true(t1[k].raw_offset == t2[k].raw_offset);
            assert_true(t1[k].raw_size == t2[k].raw_size);
        }
        free(t1);
        free(t2);
    }
}

static void test_build_raw(void **state)
{
    (void)state;
    check_build(CODEC_RAW);
}

static void test_build_lz4(void **state)
{
    (void)state;
    check_build(CODEC_LZ4);
}

static void test_build_zstd(void **state)
{
    (void)state;
    check_build(CODEC_ZSTD);
}

/* ---- the scan ---------------------------------------------------------------------- */

/* The block's residues are its records' residues end to end, and tal_scan_record gives
 * each of them as tal_store_record does; ids outside the block are refused. */
static void check_block(tal_scan_t *sc, const tal_store_t *s, const tal_scan_block_t *b)
{
    size_t off = 0;
    tal_record_t rec, want;
    assert_true(b->record_count > 0);
    assert_true(b->first_record + b->record_count <= data.n);
    for (uint64_t id = b->first_record; id < b->first_record + b->record_count; id++) {
        size_t len = data.lens[id];
        assert_true(off + len <= b->len);
        if (len && memcmp(b->residues + off, data.seqs[id], len) != 0)
            fail_msg("block at record %llu: residues of record %llu differ",
                     (unsigned long long)b->first_record, (unsigned long long)id);
        off += len;
        assert_int_equal(tal_scan_record(sc, b, id, &rec), 0);
        expect_record_is(&rec, id);
        assert_int_equal(tal_store_record(s, id, &want), 0);
        expect_same_record(&rec, &want);
    }
    assert_true(off == b->len);
    if (b->first_record > 0)
        assert_int_equal(tal_scan_record(sc, b, b->first_record - 1, &rec), TAL_EUSAGE);
    assert_int_equal(tal_scan_record(sc, b, b->first_record + b->record_count, &rec), TAL_EUSAGE);
    assert_int_equal(tal_scan_record(sc, b, UINT64_MAX, &rec), TAL_EUSAGE);
}

/* Scans the store; hold 2 keeps the previous block while the next one is taken, and
 * checks it again then. block_size 0: the default. */
static void scan_store(int codec, int threads, size_t block_size, int hold)
{
    const char *path = store_for(codec, 1);
    tal_store_t *s = NULL;
    tal_scan_t *sc = NULL;
    tal_scan_opt_t opt;
    tal_chunk_disk_t *t = NULL;
    uint64_t n_chunks = 0, next_record = 0, raw_offset = 0, blocks = 0;
    tal_scan_block_t prev;
    int have_prev = 0, rc;
    if (codec != CODEC_RAW) t = read_chunks(path, &n_chunks);
    assert_int_equal(tal_store_open(&s, path), 0);
    tal_scan_opt_init(&opt);
    opt.threads = threads;
    opt.block_size = block_size;
    assert_int_equal(tal_scan_open(&sc, s, &opt), 0);
    assert_non_null(sc);
    for (;;) {
        tal_scan_block_t b;
        rc = tal_scan_next(sc, &b);
        assert_true(rc == 0 || rc == 1);
        if (rc == 0) break;
        if (b.first_record != next_record || b.raw_offset != raw_offset)
            fail_msg("%s scan (threads %d, block %zu): block %llu starts at record %llu offset "
                     "%llu, want %llu offset %llu",
                     codec_names[codec], threads, block_size, (unsigned long long)blocks,
                     (unsigned long long)b.first_record, (unsigned long long)b.raw_offset,
                     (unsigned long long)next_record, (unsigned long long)raw_offset);
        check_block(sc, s, &b);
        if (t) {
            /* a compressed store's blocks are its chunks */
            assert_true(blocks < n_chunks);
            assert_true(b.first_record == t[blocks].first_record);
            assert_true(b.record_count == t[blocks].record_count);
            assert_true(b.len == t[blocks].raw_size);
        } else if (block_size) {
            assert_true(b.len <= block_size || b.record_count == 1);
        }
        if (b.first_record <= LONG_ID && LONG_ID < b.first_record + b.record_count &&
            (t || block_size))
            assert_true(b.record_count == 1);
        if (have_prev) {
            /* two blocks held at once: the older one is still intact */
            check_block(sc, s, &prev);
            tal_scan_release(sc, &prev);
            have_prev = 0;
        }
        next_record += b.record_count;
        raw_offset += b.len;
        blocks++;
        if (hold == 2) {
            prev = b;
            have_prev = 1;
        } else {
            tal_scan_release(sc, &b);
        }
    }
    if (have_prev) {
        check_block(sc, s, &prev);
        tal_scan_release(sc, &prev);
    }
    assert_true(next_record == data.n);
    assert_true(raw_offset == data.residues);
    if (t) assert_true(blocks == n_chunks);
    if (codec == CODEC_RAW && block_size) assert_true(blocks > 1);
    if (codec == CODEC_RAW && !block_size) assert_true(blocks == 1); /* default 4 MiB */
    assert_int_equal(tal_scan_next(sc, &(tal_scan_block_t){0}), 0);  /* stays at the end */
    if (codec == CODEC_RAW)
        assert_true(tal_scan_buffer_bytes(sc) == 0);
    else
        assert_true(tal_scan_buffer_bytes(sc) >= CHUNK_SIZE);
    tal_scan_close(sc);
    tal_store_close(s);
    free(t);
}

static void scan_all_ways(int codec)
{
    for (int threads = 1; threads <= 2; threads++)
        for (int hold = 1; hold <= 2; hold++) {
            scan_store(codec, threads, 0, hold);
            if (codec == CODEC_RAW) scan_store(codec, threads, RAW_BLOCK, hold);
        }
}

static void test_scan_raw(void **state)
{
    (void)state;
    scan_all_ways(CODEC_RAW);
}

static void test_scan_lz4(void **state)
{
    (void)state;
    scan_all_ways(CODEC_LZ4);
}

static void test_scan_zstd(void **state)
{
    (void)state;
    scan_all_ways(CODEC_ZSTD);
}

/* A scan that stops early (blocks still held, an I/O thread still filling) closes
 * cleanly. */
static void test_scan_close_early(void **state)
{
    (void)state;
    for (int codec = 0; codec < N_CODECS; codec++)
        for (int threads = 1; threads <= 2; threads++) {
            tal_store_t *s = NULL;
            tal_scan_t *sc = NULL;
            tal_scan_opt_t opt;
            tal_scan_block_t a, b;
            assert_int_equal(tal_store_open(&s, store_for(codec, 1)), 0);
            tal_scan_opt_init(&opt);
            opt.threads = threads;
            opt.block_size = RAW_BLOCK;
            assert_int_equal(tal_scan_open(&sc, s, &opt), 0);
            assert_int_equal(tal_scan_next(sc, &a), 1);
            assert_int_equal(tal_scan_next(sc, &b), 1);
            assert_true(b.first_record == a.first_record + a.record_count);
            check_block(sc, s, &a);
            check_block(sc, s, &b);
            tal_scan_close(sc);
            tal_store_close(s);
        }
}

/* ---- a damaged chunk ----------------------------------------------------------------- */

static void check_damaged_chunk(int codec)
{
    const char *src = store_for(codec, 1);
    const char *path = tpath(codec == CODEC_LZ4 ? "damaged-lz4" : "damaged-zstd");
    tal_chunk_disk_t *t;
    uint64_t n;
    tal_store_t *s = NULL;
    tal_record_t rec;
    copy_store(src, path);
    t = read_chunks(path, &n);
    assert_true(n >= 3);
    assert_true(t[1].stored_size > 0);
    tal_test_flip_byte(tal_test_join(path, "residues"), t[1].stored_offset + t[1].stored_size / 2);
    tal_log_set_level(TAL_LOG_QUIET);

    /* open does not read residues; records outside chunk 2 stay readable */
    assert_int_equal(tal_store_open(&s, path), 0);
    assert_non_null(s);
    for (uint64_t id = 0; id < data.n; id++) {
        int rc = tal_store_record(s, id, &rec);
        if (chunk_of(t, n, id) == 1) {
            if (rc != TAL_EINPUT)
                fail_msg("record %llu in the damaged chunk: rc %d", (unsigned long long)id, rc);
        } else {
            assert_int_equal(rc, 0);
            expect_record_is(&rec, id);
        }
    }
    /* after a failed decode, chunk 1 decodes again */
    assert_int_equal(tal_store_record(s, t[1].first_record, &rec), TAL_EINPUT);
    assert_int_equal(tal_store_record(s, 0, &rec), 0);
    expect_record_is(&rec, 0);
    assert_int_equal(tal_store_record(s, t[0].first_record + t[0].record_count - 1, &rec), 0);
    expect_record_is(&rec, t[0].first_record + t[0].record_count - 1);

    for (int threads = 1; threads <= 2; threads++) {
        tal_scan_t *sc = NULL;
        tal_scan_opt_t opt;
        tal_scan_block_t b;
        tal_scan_opt_init(&opt);
        opt.threads = threads;
        assert_int_equal(tal_scan_open(&sc, s, &opt), 0);
        assert_int_equal(tal_scan_next(sc, &b), 1);
        assert_true(b.first_record == 0);
        assert_true(b.record_count == t[0].record_count);
        check_block(sc, s, &b);
        assert_int_equal(tal_scan_next(sc, &(tal_scan_block_t){0}), TAL_EINPUT);
        tal_scan_release(sc, &b);
        /* a failed scan stays failed; it does not skip to chunk 3 or report the end */
        assert_int_equal(tal_scan_next(sc, &(tal_scan_block_t){0}), TAL_EINPUT);
        tal_scan_close(sc);
    }
    tal_store_close(s);
    assert_int_equal(tal_store_verify(path, 1), TAL_EINPUT);
    tal_log_set_level(TAL_LOG_WARN);
    free(t);
}

static void test_damaged_chunk_lz4(void **state)
{
    (void)state;
    check_damaged_chunk(CODEC_LZ4);
}

static void test_damaged_chunk_zstd(void **state)
{
    (void)state;
    check_damaged_chunk(CODEC_ZSTD);
}

/* ---- the chunk cache --------------------------------------------------------------- */

static void check_one_slot_cache(int codec)
{
    tal_store_t *s = NULL;
    tal_record_t rec;
    uint64_t *order = malloc(data.n * sizeof *order);
    assert_non_null(order);
    assert_int_equal(tal_store_open(&s, store_for(codec, 2)), 0);
    assert_int_equal(tal_store_set_cache(s, 1), 0);
    for (uint64_t i = 0; i < data.n; i++) order[i] = i;
    rng_state = 99 + (uint64_t)codec;
    for (uint64_t i = data.n - 1; i > 0; i--) { /* Fisher-Yates */
        uint64_t j = rnd() % (i + 1), tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    for (int pass = 0; pass < 3; pass++) {
        /* pass 1 grows the cache back to the default, pass 2 shrinks it to one slot again */
        if (pass == 1) assert_int_equal(tal_store_set_cache(s, 32u << 20), 0);
        if (pass == 2) assert_int_equal(tal_store_set_cache(s, 0), 0);
        for (uint64_t i = 0; i < data.n; i++) {
            assert_int_equal(tal_store_record(s, order[i], &rec), 0);
            expect_record_is(&rec, order[i]);
        }
        /* ping-pong between the first and the last record: a miss every time with one slot */
        for (int k = 0; k < 20; k++) {
            uint64_t id = k % 2 ? data.n - 2 : 1;
            assert_int_equal(tal_store_record(s, id, &rec), 0);
            expect_record_is(&rec, id);
        }
    }
    tal_store_close(s);
    free(order);
}

static void test_cache_one_slot_lz4(void **state)
{
    (void)state;
    check_one_slot_cache(CODEC_LZ4);
}

static void test_cache_one_slot_zstd(void **state)
{
    (void)state;
    check_one_slot_cache(CODEC_ZSTD);
}

static void test_cache_raw_store(void **state)
{
    tal_store_t *s = NULL;
    tal_record_t rec;
    (void)state;
    assert_int_equal(tal_store_open(&s, store_for(CODEC_RAW, 1)), 0);
    assert_int_equal(tal_store_set_cache(s, 1), 0);
    for (uint64_t id = data.n; id-- > 0;) {
        assert_int_equal(tal_store_record(s, id, &rec), 0);
        expect_record_is(&rec, id);
    }
    tal_store_close(s);
}

/* ---- a chunk table that does not tile ------------------------------------------------ */

typedef struct {
    const char *what;
    uint64_t chunk; /* UINT64_MAX: the last one */
    size_t field;   /* byte offset in the entry */
    int64_t delta;  /* added to the u64 field */
    int set;        /* delta is the new value rather than an increment */
} table_edit_t;

static const table_edit_t table_edits[] = {
    {"chunk 1 record_count + 1", 0, offsetof(tal_chunk_disk_t, record_count), 1, 0},
    {"chunk 1 record_count - 1", 0, offsetof(tal_chunk_disk_t, record_count), -1, 0},
    {"chunk 1 record_count 0", 0, offsetof(tal_chunk_disk_t, record_count), 0, 1},
    {"chunk 1 record_count huge", 0, offsetof(tal_chunk_disk_t, record_count), -1, 1},
    {"chunk 2 first_record + 1", 1, offsetof(tal_chunk_disk_t, first_record), 1, 0},
    {"chunk 2 raw_offset - 1", 1, offsetof(tal_chunk_disk_t, raw_offset), -1, 0},
    {"chunk 1 raw_size + 1", 0, offsetof(tal_chunk_disk_t, raw_size), 1, 0},
    {"chunk 2 stored_offset + 1", 1, offsetof(tal_chunk_disk_t, stored_offset), 1, 0},
    {"last chunk stored_size + 1", UINT64_MAX, offsetof(tal_chunk_disk_t, stored_size), 1, 0},
    {"chunk 1 stored_size - 1", 0, offsetof(tal_chunk_disk_t, stored_size), -1, 0},
    {"chunk 2 codec 7", 1, offsetof(tal_chunk_disk_t, codec), 7, 1},
};

static void check_table_edits(int codec)
{
    const char *src = store_for(codec, 1);
    const char *path = tpath(codec == CODEC_LZ4 ? "table-lz4" : "table-zstd");
    tal_log_set_level(TAL_LOG_QUIET);
    for (size_t e = 0; e < sizeof table_edits / sizeof *table_edits; e++) {
        const table_edit_t *ed = &table_edits[e];
        tal_chunk_disk_t *t;
        tal_store_t *s = (tal_store_t *)0x1;
        uint64_t n, k, value;
        size_t width = ed->field == offsetof(tal_chunk_disk_t, codec) ? 4 : 8;
        int rc;
        copy_store(src, path);
        t = read_chunks(path, &n);
        k = ed->chunk == UINT64_MAX ? n - 1 : ed->chunk;
        assert_true(k < n);
        value = 0;
        memcpy(&value, (const char *)&t[k] + ed->field, width);
        value = ed->set ? (uint64_t)ed->delta : value + (uint64_t)ed->delta;
        tal_test_patch(tal_test_join(path, "chunks"), k * sizeof *t + ed->field, &value, width);
        free(t);
        rc = tal_store_open(&s, path);
        if (rc != TAL_EINPUT)
            fail_msg("%s store, %s: tal_store_open gives %d, want TAL_EINPUT", codec_names[codec],
                     ed->what, rc);
        assert_null(s);
        assert_int_equal(tal_store_verify(path, 1), TAL_EINPUT);
    }
    tal_log_set_level(TAL_LOG_WARN);
}

/* Sets a u64 of the meta header and recomputes meta's own checksum, so only the
 * value itself is wrong (a writer bug or a crafted file, not a flipped bit). */
static void patch_meta_u64(const char *store, size_t offset, uint64_t value)
{
    const char *path = tal_test_join(store, TAL_META_FILE);
    FILE *f = fopen(path, "r+b");
    unsigned char buf[sizeof(tal_meta_disk_t) + TAL_MAX_SECTIONS * 64 + 8];
    size_t n;
    uint64_t self;
    assert_non_null(f);
    n = fread(buf, 1, sizeof buf, f);
    assert_true(n > sizeof(tal_meta_disk_t) + 8);
    memcpy(buf + offset, &value, 8);
    self = XXH3_64bits(buf, n - 8);
    memcpy(buf + n - 8, &self, 8);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
}

/* A chunk count so large that count x 64 wraps, or merely more than the records, and
 * an impossible chunk size: refused on open, never read past the table. */
static void test_meta_chunk_fields_checked(void **state)
{
    static const struct {
        size_t offset;
        uint64_t value;
    } edits[] = {
        {offsetof(tal_meta_disk_t, chunk_count), 0x400000000000000ull},
        {offsetof(tal_meta_disk_t, chunk_count), 0x400000000000000ull + 1},
        {offsetof(tal_meta_disk_t, chunk_count), UINT64_MAX},
        {offsetof(tal_meta_disk_t, chunk_size), 0},
        {offsetof(tal_meta_disk_t, chunk_size), 1ull << 62},
    };
    const char *src = store_for(CODEC_LZ4, 1);
    const char *path = tpath("meta-lz4");
    tal_store_t *orig = NULL;
    tal_store_info_t info;
    (void)state;
    /* real count + 2^58: the size check (count x 64) wraps to the table's true size */
    assert_int_equal(tal_store_open(&orig, src), 0);
    tal_store_info(orig, &info);
    tal_store_close(orig);
    {
        tal_store_t *s = (tal_store_t *)0x1;
        copy_store(src, path);
        tal_log_set_level(TAL_LOG_QUIET);
        patch_meta_u64(path, offsetof(tal_meta_disk_t, chunk_count),
                       info.chunk_count + (1ull << 58));
        assert_int_equal(tal_store_open(&s, path), TAL_EINPUT);
        assert_null(s);
    }
    tal_log_set_level(TAL_LOG_QUIET);
    for (size_t e = 0; e < sizeof edits / sizeof *edits; e++) {
        tal_store_t *s = (tal_store_t *)0x1;
        copy_store(src, path);
        patch_meta_u64(path, edits[e].offset, edits[e].value);
        assert_int_equal(tal_store_open(&s, path), TAL_EINPUT);
        assert_null(s);
    }
    tal_log_set_level(TAL_LOG_WARN);
}

static void test_chunk_table_not_tiling_lz4(void **state)
{
    (void)state;
    check_table_edits(CODEC_LZ4);
}

static void test_chunk_table_not_tiling_zstd(void **state)
{
    (void)state;
    check_table_edits(CODEC_ZSTD);
}

/* ---- empty records next to a record longer than a chunk ------------------------------- */

typedef struct {
    const char *name;
    size_t lens[8];
    size_t n;
} edge_case_t;

/* Lengths of records; the long ones are longer than a chunk. */
static const edge_case_t edge_cases[] = {
    {"empty records first, then a long one", {0, 0, 70000, 100}, 4},
    {"a long record, an empty one, a long one", {100, 80000, 0, 66000, 100}, 5},
    {"a long record, then only empty ones", {100, 70000, 0, 0}, 4},
    {"every record empty", {0, 0, 0}, 3},
};

static void check_edge_case(const edge_case_t *ec, int codec, int threads)
{
    const char *fa = tpath("edge.fa"), *out = tpath("edge-store");
    FILE *fp = fopen(fa, "wb");
    tal_store_t *s = NULL;
    tal_scan_t *sc = NULL;
    tal_scan_opt_t opt;
    tal_scan_block_t b;
    tal_record_t rec;
    uint64_t next = 0;
    int rc;
    assert_non_null(fp);
    for (size_t i = 0; i < ec->n; i++) {
        fprintf(fp, ">edge%zu\n", i);
        for (size_t j = 0; j < ec->lens[i]; j++) {
            fputc(amino[(i * 3 + j * 7 + j / 11) % 20], fp);
            if (j % 60 == 59 || j + 1 == ec->lens[i]) fputc('\n', fp);
        }
    }
    assert_int_equal(fclose(fp), 0);
    rc = build_store(fa, out, codec, threads);
    if (rc != 0)
        fail_msg("%s (%s, threads %d): build gives %d", ec->name, codec_names[codec], threads, rc);
    rc = tal_store_open(&s, out);
    if (rc != 0)
        fail_msg("%s (%s, threads %d): the store built from it does not open (%d)", ec->name,
                 codec_names[codec], threads, rc);
    for (size_t i = 0; i < ec->n; i++) {
        char h[32];
        snprintf(h, sizeof h, "edge%zu", i);
        assert_int_equal(tal_store_record(s, i, &rec), 0);
        assert_true(rec.header_len == strlen(h));
        assert_memory_equal(rec.header, h, rec.header_len);
        assert_true(rec.seq_len == ec->lens[i]);
        for (size_t j = 0; j < rec.seq_len; j++)
            assert_int_equal(rec.seq[j], amino[(i * 3 + j * 7 + j / 11) % 20]);
    }
    tal_scan_opt_init(&opt);
    opt.threads = threads;
    assert_int_equal(tal_scan_open(&sc, s, &opt), 0);
    while ((rc = tal_scan_next(sc, &b)) == 1) {
        assert_true(b.first_record == next);
        for (uint64_t id = b.first_record; id < b.first_record + b.record_count; id++) {
            assert_int_equal(tal_scan_record(sc, &b, id, &rec), 0);
            assert_true(rec.seq_len == ec->lens[id]);
        }
        next += b.record_count;
        tal_scan_release(sc, &b);
    }
    assert_int_equal(rc, 0);
    assert_true(next == ec->n);
    tal_scan_close(sc);
    tal_store_close(s);
    assert_int_equal(tal_store_verify(out, 1), 0);
}

static void check_edge_case_all_ways(const edge_case_t *ec)
{
    for (int codec = CODEC_LZ4; codec < N_CODECS; codec++)
        for (int threads = 1; threads <= 2; threads++) check_edge_case(ec, codec, threads);
}

static void test_empty_records_before_long(void **state)
{
    (void)state;
    check_edge_case_all_ways(&edge_cases[0]);
}

static void test_empty_record_between_longs(void **state)
{
    (void)state;
    check_edge_case_all_ways(&edge_cases[1]);
}

static void test_empty_records_after_long(void **state)
{
    (void)state;
    check_edge_case_all_ways(&edge_cases[2]);
}

static void test_all_records_empty(void **state)
{
    (void)state;
    check_edge_case_all_ways(&edge_cases[3]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_raw),
        cmocka_unit_test(test_build_lz4),
        cmocka_unit_test(test_build_zstd),
        cmocka_unit_test(test_scan_raw),
        cmocka_unit_test(test_scan_lz4),
        cmocka_unit_test(test_scan_zstd),
        cmocka_unit_test(test_scan_close_early),
        cmocka_unit_test(test_damaged_chunk_lz4),
        cmocka_unit_test(test_damaged_chunk_zstd),
        cmocka_unit_test(test_cache_one_slot_lz4),
        cmocka_unit_test(test_cache_one_slot_zstd),
        cmocka_unit_test(test_cache_raw_store),
        cmocka_unit_test(test_meta_chunk_fields_checked),
        cmocka_unit_test(test_chunk_table_not_tiling_lz4),
        cmocka_unit_test(test_chunk_table_not_tiling_zstd),
        cmocka_unit_test(test_empty_records_before_long),
        cmocka_unit_test(test_empty_record_between_longs),
        cmocka_unit_test(test_empty_records_after_long),
        cmocka_unit_test(test_all_records_empty),
    };
    return cmocka_run_group_tests_name("scan", tests, group_setup, group_teardown);
}
