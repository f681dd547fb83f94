/* Unit tests for the store: tal_store_build/open/find/record/lengths/verify on small FASTA
 * files in a temp dir (atomic replace, duplicates, corruption), and the key helpers. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dlfcn.h>
#include <sqlite3.h>

#include "test_files.h"
#include "test_support.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/mem.h"
#include "talaria/store.h"
#include "store/catalog_internal.h"
#include "store/chunker_internal.h"
#include "store/codec_internal.h"
#include "store/format_internal.h"

/* ---- temp dir fixture ------------------------------------------------------------ */

typedef struct {
    char dir[PATH_MAX];
} fixture_t;

static int setup_dir(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f) return -1;
    if (tal_test_mkdtemp(f->dir, sizeof f->dir, "test-store") < 0) {
        free(f);
        return -1;
    }
    *state = f;
    /* the error paths under test log; keep the output readable */
    tal_log_set_level(TAL_LOG_QUIET);
    return 0;
}

static int teardown_dir(void **state)
{
    fixture_t *f = *state;
    tal_test_rm_rf(f->dir);
    free(f);
    tal_log_set_level(TAL_LOG_WARN);
    return 0;
}

/* Paths inside the fixture dir; a few rotating buffers so several can be live at once. */
static const char *tpath(void **state, const char *name)
{
    static char bufs[8][PATH_MAX + 64];
    static int next;
    fixture_t *f = *state;
    char *b = bufs[next++ % 8];
    snprintf(b, PATH_MAX + 64, "%s/%s", f->dir, name);
    return b;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* Number of entries in dir whose name contains ".tmp-". */
static int tmp_siblings(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp-")) n++;
    closedir(d);
    return n;
}

/* ---- expected records -------------------------------------------------------------- */

typedef struct {
    const char *header;
    const char *seq;
    const char *primary; /* accession keys, worked out by hand */
    const char *alias;
} rdef_t;

static char long_seq[5001];

static const char *make_long_seq(void)
{
    static const char aa[] = "ACDEFGHIKLMNPQRSTVWY";
    for (size_t i = 0; i < 5000; i++) long_seq[i] = aa[(i * 7 + i / 13) % 20];
    long_seq[5000] = '\0';
    return long_seq;
}

static const rdef_t *basic_defs(size_t *n)
{
    static rdef_t defs[] = {
        {"sp|P12345|ALBU_HUMAN Serum albumin OS=Homo sapiens OX=9606 GN=ALB PE=1 SV=2",
         "MKWVTFISLLFLFSSAYSRGVFRRDAHKSEVAHRFKDLGEENFKALVLIAFAQYLQQCPFEDHVKLVNEVTEFAKTCVADES",
         "sp|P12345|ALBU_HUMAN", "P12345"},
        {"tr|Q9XYZ1|Q9XYZ1_MOUSE Uncharacterized protein OS=Mus musculus OX=10090",
         "MSTNPKPQRKTKRNTNRRPQDVKFPGG", "tr|Q9XYZ1|Q9XYZ1_MOUSE", "Q9XYZ1"},
        {"plain_acc some description", "ACDEFGHIKLMNPQRSTVWY", "plain_acc", NULL},
        {"empty_seq", "", "empty_seq", NULL},
        {"UniRef50_A0A0\tCluster: thing n=2 Tax=Bacteria TaxID=2", "mkvlaa*-", "UniRef50_A0A0",
         NULL},
        {"x|Y", "W", "x|Y", "Y"},
        {"gi|123|ref|NP_000001.1| something", "MMMM", "gi|123|ref|NP_000001.1|", "123"},
        {"a||b", "KK", "a||b", NULL},
        {"long_one", NULL, "long_one", NULL},
        {"P99999 has the alias-looking name as its first word", "QQQ", "P99999", NULL},
    };
    defs[8].seq = make_long_seq();
    *n = sizeof defs / sizeof *defs;
    return defs;
}

static void write_fasta(const char *path, const rdef_t *defs, size_t n, size_t width, int crlf)
{
    FILE *fp = fopen(path, "wb");
    const char *eol = crlf ? "\r\n" : "\n";
    assert_non_null(fp);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(defs[i].seq);
        fprintf(fp, ">%s%s", defs[i].header, eol);
        for (size_t j = 0; j < len; j += width)
            fprintf(fp, "%.*s%s", (int)(len - j < width ? len - j : width), defs[i].seq + j, eol);
    }
    assert_int_equal(fclose(fp), 0);
}

static int build(const char *fasta, const char *out, int threads, int force, int allow_dups,
                 tal_build_stats_t *stats)
{
    tal_index_opt_t opt;
    tal_index_opt_init(&opt);
    assert_true(opt.threads >= 1);
    assert_int_equal(opt.force, 0);
    assert_int_equal(opt.allow_duplicates, 0);
    opt.threads = threads;
    opt.force = force;
    opt.allow_duplicates = allow_dups;
    return tal_store_build(fasta, out, &opt, stats);
}

static void expect_find(const tal_store_t *s, const char *acc, uint64_t want)
{
    uint64_t id = UINT64_MAX;
    int rc = tal_store_find(s, acc, strlen(acc), &id);
    if (rc != 0 || id != want)
        print_error("find '%s': rc %d id %llu, want id %llu\n", acc, rc, (unsigned long long)id,
                    (unsigned long long)want);
    assert_int_equal(rc, 0);
    assert_true(id == want);
}

static void expect_not_found(const tal_store_t *s, const char *acc)
{
    uint64_t id = 12345;
    assert_int_equal(tal_store_find(s, acc, strlen(acc), &id), TAL_ENOTFOUND);
    assert_true(id == 12345);
}

static void expect_record(const tal_store_t *s, uint64_t id, const char *header, const char *seq)
{
    tal_record_t rec;
    assert_int_equal(tal_store_record(s, id, &rec), 0);
    assert_true(rec.header_len == strlen(header));
    assert_true(memcmp(rec.header, header, rec.header_len) == 0);
    assert_true(rec.seq_len == strlen(seq));
    if (rec.seq_len) assert_true(memcmp(rec.seq, seq, rec.seq_len) == 0);
}

/* Opens the store and checks every record, key, length and summary figure. */
static void check_store(const char *path, const rdef_t *defs, size_t n)
{
    tal_store_t *s = NULL;
    tal_store_info_t info;
    const uint64_t *lengths = NULL;
    uint64_t residues = 0, hbytes = 0, minl = UINT64_MAX, maxl = 0, keys = 0, comp[256];
    memset(comp, 0, sizeof comp);
    assert_int_equal(tal_store_open(&s, path), 0);
    assert_non_null(s);
    assert_string_equal(tal_store_path(s), path);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(defs[i].seq);
        residues += len;
        hbytes += strlen(defs[i].header);
        if (len < minl) minl = len;
        if (len > maxl) maxl = len;
        keys += defs[i].alias ? 2 : 1;
        for (size_t j = 0; j < len; j++) comp[(unsigned char)defs[i].seq[j]]++;
        expect_record(s, i, defs[i].header, defs[i].seq);
        expect_find(s, defs[i].primary, i);
        if (defs[i].alias) expect_find(s, defs[i].alias, i);
    }
    tal_store_info(s, &info);
    assert_true(info.records == n);
    assert_true(info.residues == residues);
    assert_true(info.header_bytes == hbytes);
    assert_true(info.min_length == minl);
    assert_true(info.max_length == maxl);
    assert_true(info.key_count == keys);
    assert_true(info.stored_residue_bytes == residues);
    assert_string_equal(info.codec, "none");
    assert_non_null(info.composition);
    for (int c = 0; c < 256; c++) assert_true(info.composition[c] == comp[c]);
    assert_int_equal(tal_store_lengths(s, &lengths), 0);
    assert_non_null(lengths);
    for (size_t i = 0; i < n; i++) assert_true(lengths[i] == strlen(defs[i].seq));
    /* ids past the end are bounds-checked */
    {
        tal_record_t rec;
        assert_int_equal(tal_store_record(s, n, &rec), TAL_EINPUT);
        assert_int_equal(tal_store_record(s, UINT64_MAX, &rec), TAL_EINPUT);
    }
    tal_store_close(s);
}

/* The files of a store, as the builder writes them. */
static const char *const store_files[] = {"residues",    "headers",   "lengths", "seq_offsets",
                                          "hdr_offsets", "checksums", "keys",    "catalog.sqlite",
                                          "meta",        "layout"};
#define N_STORE_FILES (sizeof store_files / sizeof *store_files)

static void expect_exact_files(const char *store)
{
    DIR *d = opendir(store);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        int known = 0;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        for (size_t i = 0; i < N_STORE_FILES; i++) known |= !strcmp(e->d_name, store_files[i]);
        if (!known) print_error("unexpected file %s in the store\n", e->d_name);
        assert_true(known);
        n++;
    }
    closedir(d);
    assert_true(n == N_STORE_FILES);
}

/* ---- the catalog, read through SQLite -------------------------------------------- */
/* The unit tests link against libtalaria only; SQLite is loaded as its dependency, so
 * its symbols are found in the global scope. */

typedef struct {
    __typeof__(sqlite3_open_v2) *open_v2;
    __typeof__(sqlite3_prepare_v2) *prepare_v2;
    __typeof__(sqlite3_step) *step;
    __typeof__(sqlite3_column_int64) *column_int64;
    __typeof__(sqlite3_column_text) *column_text;
    __typeof__(sqlite3_column_type) *column_type;
    __typeof__(sqlite3_finalize) *finalize;
    __typeof__(sqlite3_close) *close;
} sql_api_t;

#define LOAD(field, name)                                                                          \
    do {                                                                                           \
        void *sym_ = dlsym(RTLD_DEFAULT, name);                                                    \
        if (!sym_) print_error("symbol %s not found\n", name);                                     \
        assert_non_null(sym_);                                                                     \
        memcpy(&api.field, &sym_, sizeof sym_);                                                    \
    } while (0)

static const sql_api_t *sql(void)
{
    static sql_api_t api;
    static int loaded;
    if (!loaded) {
        LOAD(open_v2, "sqlite3_open_v2");
        LOAD(prepare_v2, "sqlite3_prepare_v2");
        LOAD(step, "sqlite3_step");
        LOAD(column_int64, "sqlite3_column_int64");
        LOAD(column_text, "sqlite3_column_text");
        LOAD(column_type, "sqlite3_column_type");
        LOAD(finalize, "sqlite3_finalize");
        LOAD(close, "sqlite3_close");
        loaded = 1;
    }
    return &api;
}

typedef struct {
    char accession[256], alias[256]; /* alias "" for NULL */
    int64_t taxid;                   /* -1 for NULL */
    int64_t length;
} cat_row_t;

typedef void (*expect_row_fn)(uint64_t id, const void *ctx, cat_row_t *row);

static sqlite3 *catalog_open(const char *store)
{
    sqlite3 *db = NULL;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/catalog.sqlite", store);
    assert_int_equal(sql()->open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    return db;
}

/* Compares every row of the records table with what expect says. */
static void check_catalog_rows(const char *store, uint64_t n, expect_row_fn expect, const void *ctx)
{
    const sql_api_t *q = sql();
    sqlite3 *db = catalog_open(store);
    sqlite3_stmt *st = NULL;
    uint64_t rows = 0;
    assert_int_equal(q->prepare_v2(db,
                                   "SELECT id, accession, alias, taxid, length FROM records"
                                   " ORDER BY id",
                                   -1, &st, NULL),
                     SQLITE_OK);
    while (q->step(st) == SQLITE_ROW) {
        cat_row_t want;
        const char *acc = (const char *)q->column_text(st, 1);
        const char *alias = (const char *)q->column_text(st, 2);
        memset(&want, 0, sizeof want);
        expect(rows, ctx, &want);
        assert_true((uint64_t)q->column_int64(st, 0) == rows);
        assert_non_null(acc);
        if (strcmp(acc, want.accession))
            print_error("catalog row %llu: accession '%s', want '%s'\n", (unsigned long long)rows,
                        acc, want.accession);
        assert_string_equal(acc, want.accession);
        if (want.alias[0]) {
            assert_non_null(alias);
            assert_string_equal(alias, want.alias);
        } else {
            assert_int_equal(q->column_type(st, 2), SQLITE_NULL);
        }
        if (want.taxid >= 0)
            assert_true(q->column_int64(st, 3) == want.taxid);
        else
            assert_int_equal(q->column_type(st, 3), SQLITE_NULL);
        assert_true(q->column_int64(st, 4) == want.length);
        rows++;
    }
    q->finalize(st);
    q->close(db);
    assert_true(rows == n);
}

/* The organism the taxa table gives for taxid ("" if none). */
static void catalog_organism(const char *store, int64_t taxid, char *out, size_t cap)
{
    const sql_api_t *q = sql();
    sqlite3 *db = catalog_open(store);
    sqlite3_stmt *st = NULL;
    char query[128];
    snprintf(query, sizeof query, "SELECT organism FROM taxa WHERE taxid = %lld", (long long)taxid);
    out[0] = '\0';
    assert_int_equal(q->prepare_v2(db, query, -1, &st, NULL), SQLITE_OK);
    if (q->step(st) == SQLITE_ROW && q->column_text(st, 0))
        snprintf(out, cap, "%s", (const char *)q->column_text(st, 0));
    q->finalize(st);
    q->close(db);
}

static void catalog_provenance(const char *store, const char *key, char *out, size_t cap)
{
    const sql_api_t *q = sql();
    sqlite3 *db = catalog_open(store);
    sqlite3_stmt *st = NULL;
    char query[128];
    snprintf(query, sizeof query, "SELECT value FROM provenance WHERE key = '%s'", key);
    out[0] = '\0';
    assert_int_equal(q->prepare_v2(db, query, -1, &st, NULL), SQLITE_OK);
    if (q->step(st) == SQLITE_ROW && q->column_text(st, 0))
        snprintf(out, cap, "%s", (const char *)q->column_text(st, 0));
    q->finalize(st);
    q->close(db);
}

/* ---- build, open, find ------------------------------------------------------------ */

static void expect_basic_row(uint64_t id, const void *ctx, cat_row_t *row)
{
    static const int64_t taxids[] = {9606, 10090, -1, -1, 2, -1, -1, -1, -1, -1};
    const rdef_t *defs = ctx;
    snprintf(row->accession, sizeof row->accession, "%s", defs[id].primary);
    snprintf(row->alias, sizeof row->alias, "%s", defs[id].alias ? defs[id].alias : "");
    row->taxid = taxids[id];
    row->length = (int64_t)strlen(defs[id].seq);
}

static void check_basic_catalog(const char *st)
{
    size_t n;
    const rdef_t *defs = basic_defs(&n);
    char text[256];
    check_catalog_rows(st, n, expect_basic_row, defs);
    catalog_organism(st, 9606, text, sizeof text);
    assert_string_equal(text, "Homo sapiens");
    catalog_organism(st, 10090, text, sizeof text);
    assert_string_equal(text, "Mus musculus");
    catalog_organism(st, 2, text, sizeof text);
    assert_string_equal(text, "Bacteria");
    catalog_provenance(st, "records", text, sizeof text);
    assert_true((size_t)atoi(text) == n);
    catalog_provenance(st, "duplicates_skipped", text, sizeof text);
    assert_string_equal(text, "0");
    catalog_provenance(st, "input_format", text, sizeof text);
    assert_string_equal(text, "plain");
}

static void build_and_check(void **state, int threads, size_t width, int crlf)
{
    size_t n;
    const rdef_t *defs = basic_defs(&n);
    const char *fa = tpath(state, "basic.fa"), *st = tpath(state, "basic.store");
    tal_build_stats_t stats;
    tal_store_t *s = NULL;
    write_fasta(fa, defs, n, width, crlf);
    memset(&stats, 0xee, sizeof stats);
    assert_int_equal(build(fa, st, threads, 0, 0, &stats), 0);
    assert_true(stats.records == n);
    assert_true(stats.duplicates_skipped == 0);
    assert_true(stats.input_bytes == file_size(fa));
    assert_true(stats.seconds >= 0);
    {
        uint64_t r = 0;
        for (size_t i = 0; i < n; i++) r += strlen(defs[i].seq);
        assert_true(stats.residues == r);
    }
    expect_exact_files(st);
    assert_int_equal(tmp_siblings(((fixture_t *)*state)->dir), 0);
    check_store(st, defs, n);
    assert_int_equal(tal_store_verify(st, 1), 0);
    check_basic_catalog(st);

    assert_int_equal(tal_store_open(&s, st), 0);
    expect_not_found(s, "nope");
    expect_not_found(s, "");
    expect_not_found(s, "P1234");
    expect_not_found(s, "P123456");
    expect_not_found(s, "sp");
    expect_not_found(s, "sp|P12345");
    expect_not_found(s, "ALBU_HUMAN");
    expect_not_found(s, "plain_acc some");
    expect_not_found(s, "PLAIN_ACC");
    expect_not_found(s, "ref");
    expect_not_found(s, "b");
    /* an accession need not be NUL-terminated: only acc_len bytes count */
    {
        uint64_t id = 99;
        assert_int_equal(tal_store_find(s, "plain_accXYZ", 9, &id), 0);
        assert_true(id == 2);
    }
    {
        tal_store_info_t info;
        tal_store_info(s, &info);
        assert_int_equal(info.alphabet, TAL_ALPHABET_PROTEIN);
        assert_true(info.duplicates_skipped == 0);
    }
    tal_store_close(s);
    tal_store_close(NULL);
}

static void test_build_threads1(void **state) { build_and_check(state, 1, 60, 0); }
static void test_build_threads2(void **state) { build_and_check(state, 2, 60, 0); }
static void test_build_crlf_narrow(void **state) { build_and_check(state, 2, 7, 1); }
static void test_build_unwrapped(void **state) { build_and_check(state, 1, 100000, 0); }

static void test_trailing_slash_and_nucleotide(void **state)
{
    static const char text[] = ">chr1 x\nACGTACGTNNacgt\n>chr2\nACGU\n";
    const char *fa = tpath(state, "nt.fa"), *st = tpath(state, "nt.store/"),
               *plain = tpath(state, "nt.store");
    tal_store_t *s = NULL;
    tal_store_info_t info;
    tal_test_write_file(fa, text, sizeof text - 1);
    assert_int_equal(build(fa, st, 2, 0, 0, NULL), 0);
    assert_true(exists(tal_test_join(plain, "meta")));
    assert_int_equal(tal_store_open(&s, plain), 0);
    tal_store_info(s, &info);
    assert_int_equal(info.alphabet, TAL_ALPHABET_NUCLEOTIDE);
    assert_true(info.composition['N'] == 2 && info.composition['a'] == 1 &&
                info.composition['U'] == 1);
    expect_find(s, "chr2", 1);
    expect_record(s, 0, "chr1 x", "ACGTACGTNNacgt");
    tal_store_close(s);
    assert_int_equal(tal_store_verify(plain, 1), 0);
}

/* "db|ACC|" aliases: a first word beats an alias; among aliases the earliest wins. */
static void test_alias_rules(void **state)
{
    static const char text[] = ">sp|X1|A one\nAA\n>tr|X1|B two\nCC\n>X1 primary\nDD\n"
                               ">sp|X2|C\nEE\n>tr|X2|D\nFF\n";
    const char *fa = tpath(state, "alias.fa"), *st = tpath(state, "alias.store");
    tal_store_t *s = NULL;
    tal_store_info_t info;
    tal_test_write_file(fa, text, sizeof text - 1);
    assert_int_equal(build(fa, st, 1, 0, 0, NULL), 0);
    assert_int_equal(tal_store_open(&s, st), 0);
    expect_find(s, "X1", 2);
    expect_find(s, "X2", 3);
    expect_find(s, "sp|X1|A", 0);
    expect_find(s, "tr|X1|B", 1);
    expect_find(s, "tr|X2|D", 4);
    tal_store_info(s, &info);
    assert_true(info.key_count == 9);
    tal_store_close(s);
    assert_int_equal(tal_store_verify(st, 1), 0);
}

static void expect_many_row(uint64_t id, const void *ctx, cat_row_t *row)
{
    (void)ctx;
    snprintf(row->accession, sizeof row->accession, "sp|ACC%05d|NAME%d_HUMAN", (int)id, (int)id);
    snprintf(row->alias, sizeof row->alias, "ACC%05d", (int)id);
    row->taxid = (int64_t)id;
    row->length = (int64_t)(id % 37 + 1);
}

/* Enough records that the accession table doubles (it starts at 2^16 slots) and the
 * catalog fills several batches. */
static void many_records(void **state, int threads)
{
    enum { N = 30000 };
    const char *fa = tpath(state, "many.fa"), *st = tpath(state, "many.store");
    FILE *fp = fopen(fa, "wb");
    tal_build_stats_t stats;
    tal_store_t *s = NULL;
    tal_store_info_t info;
    const uint64_t *lengths;
    assert_non_null(fp);
    for (int i = 0; i < N; i++) {
        fprintf(fp, ">sp|ACC%05d|NAME%d_HUMAN protein %d OX=%d\n", i, i, i, i);
        for (int j = 0; j < i % 37 + 1; j++) fputc("ACDEFGHIKLMNPQRSTVWY"[(i + j) % 20], fp);
        fputc('\n', fp);
    }
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(build(fa, st, threads, 0, 0, &stats), 0);
    assert_true(stats.records == N);
    assert_int_equal(tal_store_open(&s, st), 0);
    tal_store_info(s, &info);
    assert_true(info.records == N);
    assert_true(info.key_count == 2 * N);
    assert_int_equal(tal_store_lengths(s, &lengths), 0);
    for (int i = 0; i < N; i++) {
        char acc[64], name[64];
        tal_record_t rec;
        snprintf(acc, sizeof acc, "ACC%05d", i);
        snprintf(name, sizeof name, "sp|ACC%05d|NAME%d_HUMAN", i, i);
        expect_find(s, acc, (uint64_t)i);
        expect_find(s, name, (uint64_t)i);
        assert_int_equal(tal_store_record(s, (uint64_t)i, &rec), 0);
        assert_true(rec.seq_len == (size_t)(i % 37 + 1));
        assert_true(lengths[i] == rec.seq_len);
        assert_int_equal(rec.seq[0], "ACDEFGHIKLMNPQRSTVWY"[i % 20]);
    }
    expect_not_found(s, "ACC30000");
    expect_not_found(s, "NAME5_HUMAN");
    tal_store_close(s);
    assert_int_equal(tal_store_verify(st, 1), 0);
    check_catalog_rows(st, N, expect_many_row, NULL);
}

static void test_many_records_threads1(void **state) { many_records(state, 1); }
static void test_many_records_threads2(void **state) { many_records(state, 2); }

/* Sequences bigger than the writers' 4 MiB buffers go straight to the file, between
 * buffered writes; with threads > 1 the buffered ones go through the writer thread. */
static void big_records(void **state, int threads)
{
    const size_t big1 = 10u << 20, big2 = (6u << 20) + 123;
    const char *fa = tpath(state, "big.fa"), *st = tpath(state, "big.store");
    char *seq = malloc(big1 + 1);
    tal_store_t *s = NULL;
    tal_record_t rec;
    FILE *fp = fopen(fa, "wb");
    uint64_t id;
    assert_non_null(seq);
    assert_non_null(fp);
    for (size_t i = 0; i < big1; i++) seq[i] = "ACGT"[(i * 2654435761u >> 7) & 3];
    seq[big1] = '\0';
    fprintf(fp, ">small0\nMK\n>big1 ten megabytes\n%s\n", seq);
    for (int i = 0; i < 5000; i++) fprintf(fp, ">mid%d\nACGTACGTAC%.*s\n", i, i % 300, seq);
    fprintf(fp, ">big2\n%.*s\n>small_last\nW\n", (int)big2, seq + 1);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(build(fa, st, threads, 0, 0, NULL), 0);
    assert_int_equal(tal_store_open(&s, st), 0);
    expect_record(s, 0, "small0", "MK");
    assert_int_equal(tal_store_record(s, 1, &rec), 0);
    assert_true(rec.seq_len == big1 && memcmp(rec.seq, seq, big1) == 0);
    for (int i = 0; i < 5000; i += 499) {
        char name[32];
        snprintf(name, sizeof name, "mid%d", i);
        expect_find(s, name, (uint64_t)i + 2);
        assert_int_equal(tal_store_record(s, (uint64_t)i + 2, &rec), 0);
        assert_true(rec.seq_len == 10 + (size_t)(i % 300));
        assert_true(memcmp(rec.seq + 10, seq, rec.seq_len - 10) == 0);
    }
    assert_int_equal(tal_store_find(s, "big2", 4, &id), 0);
    assert_true(id == 5002);
    assert_int_equal(tal_store_record(s, id, &rec), 0);
    assert_true(rec.seq_len == big2 && memcmp(rec.seq, seq + 1, big2) == 0);
    expect_record(s, 5003, "small_last", "W");
    tal_store_close(s);
    assert_int_equal(tal_store_verify(st, 1), 0);
    free(seq);
}

static void test_big_records_threads1(void **state) { big_records(state, 1); }
static void test_big_records_threads2(void **state) { big_records(state, 2); }

/* ---- replacing, atomicity --------------------------------------------------------- */

static void test_exists_and_force(void **state)
{
    static const rdef_t b_defs[] = {{"newone first", "MMMKKK", "newone", NULL},
                                    {"sp|NEW2|X", "WW", "sp|NEW2|X", "NEW2"}};
    size_t n;
    const rdef_t *defs = basic_defs(&n);
    const char *fa = tpath(state, "a.fa"), *fb = tpath(state, "b.fa"), *st = tpath(state, "s");
    fixture_t *f = *state;
    tal_store_t *s = NULL;
    write_fasta(fa, defs, n, 60, 0);
    write_fasta(fb, b_defs, 2, 60, 0);
    assert_int_equal(build(fa, st, 1, 0, 0, NULL), 0);
    /* no force: refused, the old store is untouched */
    assert_int_equal(build(fb, st, 1, 0, 0, NULL), TAL_EEXIST);
    assert_int_equal(build(fb, st, 2, 0, 0, NULL), TAL_EEXIST);
    assert_int_equal(tmp_siblings(f->dir), 0);
    check_store(st, defs, n);
    assert_int_equal(tal_store_verify(st, 1), 0);
    /* a store that is open keeps working while it is replaced */
    assert_int_equal(tal_store_open(&s, st), 0);
    /* force: replaced */
    assert_int_equal(build(fb, st, 2, 1, 0, NULL), 0);
    assert_int_equal(tmp_siblings(f->dir), 0);
    check_store(st, b_defs, 2);
    expect_record(s, 0, defs[0].header, defs[0].seq);
    expect_find(s, "P12345", 0);
    tal_store_close(s);
    assert_int_equal(tal_store_open(&s, st), 0);
    expect_not_found(s, "P12345");
    expect_not_found(s, "plain_acc");
    tal_store_close(s);
    expect_exact_files(st);
    assert_int_equal(tal_store_verify(st, 1), 0);
    /* force again with threads 1 */
    assert_int_equal(build(fa, st, 1, 1, 0, NULL), 0);
    check_store(st, defs, n);
    assert_int_equal(tmp_siblings(f->dir), 0);
}

static void test_force_refuses_non_store(void **state)
{
    static const char text[] = ">a\nAC\n";
    const char *fa = tpath(state, "a.fa"), *dir = tpath(state, "notastore"),
               *file = tpath(state, "plainfile");
    fixture_t *f = *state;
    tal_test_write_file(fa, text, sizeof text - 1);
    assert_int_equal(mkdir(dir, 0755), 0);
    tal_test_write_file(tal_test_join(dir, "precious"), "keep", 4);
    tal_test_write_file(file, "keep me", 7);
    assert_int_equal(build(fa, dir, 1, 1, 0, NULL), TAL_EEXIST);
    assert_true(exists(tal_test_join(dir, "precious")));
    assert_false(exists(tal_test_join(dir, "meta")));
    assert_int_equal(build(fa, file, 2, 1, 0, NULL), TAL_EEXIST);
    assert_true(file_size(file) == 7);
    assert_int_equal(tmp_siblings(f->dir), 0);
}

static void test_duplicate_rejected(void **state)
{
    static const char text[] = ">a first\nAC\n>b\nGG\n>a second\nTT\n";
    const char *fa = tpath(state, "dup.fa"), *st = tpath(state, "dup.store");
    fixture_t *f = *state;
    tal_build_stats_t stats;
    tal_test_write_file(fa, text, sizeof text - 1);
    for (int threads = 1; threads <= 2; threads++) {
        assert_int_equal(build(fa, st, threads, 0, 0, &stats), TAL_EINPUT);
        assert_false(exists(st));
        assert_int_equal(tmp_siblings(f->dir), 0);
    }
    /* a failed forced rebuild leaves the old store in place */
    {
        size_t n;
        const rdef_t *defs = basic_defs(&n);
        const char *good = tpath(state, "good.fa");
        write_fasta(good, defs, n, 60, 0);
        assert_int_equal(build(good, st, 2, 0, 0, NULL), 0);
        assert_int_equal(build(fa, st, 2, 1, 0, NULL), TAL_EINPUT);
        assert_int_equal(tmp_siblings(f->dir), 0);
        check_store(st, defs, n);
        assert_int_equal(tal_store_verify(st, 1), 0);
    }
}

static void test_allow_duplicates(void **state)
{
    static const char text[] = ">a first\nACAC\n>b\nGG\n>a second\nTTTTTTT\n>c\nMM\n";
    static const rdef_t kept[] = {
        {"a first", "ACAC", "a", NULL}, {"b", "GG", "b", NULL}, {"c", "MM", "c", NULL}};
    const char *fa = tpath(state, "dup.fa"), *st = tpath(state, "dup.store");
    tal_build_stats_t stats;
    tal_store_t *s = NULL;
    tal_store_info_t info;
    tal_test_write_file(fa, text, sizeof text - 1);
    for (int threads = 1; threads <= 2; threads++) {
        tal_test_rm_rf(st);
        memset(&stats, 0, sizeof stats);
        assert_int_equal(build(fa, st, threads, 0, 1, &stats), 0);
        assert_true(stats.duplicates_skipped == 1);
        assert_true(stats.records == 3);
        assert_true(stats.residues == 8);
        check_store(st, kept, 3);
        assert_int_equal(tal_store_open(&s, st), 0);
        tal_store_info(s, &info);
        assert_true(info.duplicates_skipped == 1);
        assert_true(info.composition['T'] == 0);
        expect_find(s, "a", 0);
        for (uint64_t i = 0; i < info.records; i++) {
            tal_record_t rec;
            assert_int_equal(tal_store_record(s, i, &rec), 0);
            assert_null(memchr(rec.seq, 'T', rec.seq_len));
            assert_false(rec.header_len == 8 && !memcmp(rec.header, "a second", 8));
        }
        tal_store_close(s);
        assert_int_equal(tal_store_verify(st, 1), 0);
    }
}

/* The builder reads an earlier header back to confirm a duplicate; here the first copy
 * is long flushed to disk (headers buffer 4 MiB, offsets buffer 1 MiB). */
static void test_duplicate_far_apart(void **state)
{
    enum { N = 140000 };
    const char *fa = tpath(state, "far.fa"), *st = tpath(state, "far.store");
    fixture_t *f = *state;
    tal_build_stats_t stats;
    tal_store_t *s = NULL;
    FILE *fp = fopen(fa, "wb");
    assert_non_null(fp);
    fprintf(fp, ">first_dup the first copy\nMKV\n");
    for (int i = 1; i < N; i++) fprintf(fp, ">rec%06d padding padding padding padding\nA\n", i);
    fprintf(fp, ">first_dup the second copy\nWWWW\n>last\nC\n");
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(build(fa, st, 1, 0, 0, &stats), TAL_EINPUT);
    assert_false(exists(st));
    assert_int_equal(tmp_siblings(f->dir), 0);
    assert_int_equal(build(fa, st, 2, 0, 1, &stats), 0);
    assert_true(stats.duplicates_skipped == 1);
    assert_true(stats.records == N + 1);
    assert_int_equal(tal_store_open(&s, st), 0);
    expect_find(s, "first_dup", 0);
    expect_record(s, 0, "first_dup the first copy", "MKV");
    expect_find(s, "last", N);
    expect_find(s, "rec139999", N - 1);
    tal_store_close(s);
}

static void test_output_parent_missing(void **state)
{
    static const char text[] = ">a\nAC\n";
    const char *fa = tpath(state, "p.fa"), *st = tpath(state, "no/such/dir/store");
    int rc;
    tal_test_write_file(fa, text, sizeof text - 1);
    rc = build(fa, st, 1, 0, 0, NULL);
    assert_true(rc == TAL_EIO || rc == TAL_EINPUT);
    assert_false(exists(tpath(state, "no")));
}

static void test_build_errors_leave_nothing(void **state)
{
    static const struct {
        const char *name, *text;
    } bad[] = {
        {"empty.fa", ""},
        {"blank.fa", "\n\n"},
        {"digit.fa", ">a\nAC\n>b\nA1\n"},
        {"noacc.fa", ">a\nAC\n> spaced\nGG\n"},
        {"before.fa", "junk\n>a\nAC\n"},
        {"emptyhdr.fa", ">a\nAC\n>\nGG\n"},
    };
    fixture_t *f = *state;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *fa = tpath(state, bad[i].name), *st = tpath(state, "out.store");
        tal_test_write_file(fa, bad[i].text, strlen(bad[i].text));
        for (int threads = 1; threads <= 2; threads++) {
            int rc = build(fa, st, threads, 0, 0, NULL);
            if (rc != TAL_EINPUT) print_error("%s: build returned %d\n", bad[i].name, rc);
            assert_int_equal(rc, TAL_EINPUT);
            assert_false(exists(st));
            assert_int_equal(tmp_siblings(f->dir), 0);
        }
    }
    assert_int_equal(build(tpath(state, "missing.fa"), tpath(state, "out.store"), 1, 0, 0, NULL),
                     TAL_EIO);
    assert_false(exists(tpath(state, "out.store")));
}

/* A store whose every sequence is empty has an empty residues file. */
static void test_all_sequences_empty(void **state)
{
    static const char text[] = ">a\n>b desc\n";
    const char *fa = tpath(state, "e.fa"), *st = tpath(state, "e.store");
    tal_store_t *s = NULL;
    tal_record_t rec;
    const uint64_t *lengths;
    tal_test_write_file(fa, text, sizeof text - 1);
    assert_int_equal(build(fa, st, 1, 0, 0, NULL), 0);
    assert_int_equal(tal_store_open(&s, st), 0);
    assert_int_equal(tal_store_record(s, 1, &rec), 0);
    assert_true(rec.seq_len == 0);
    assert_true(rec.header_len == 6 && !memcmp(rec.header, "b desc", 6));
    assert_int_equal(tal_store_lengths(s, &lengths), 0);
    assert_true(lengths[0] == 0 && lengths[1] == 0);
    expect_find(s, "b", 1);
    tal_store_close(s);
    assert_int_equal(tal_store_verify(st, 1), 0);
}

/* The catalog is opened by SQLite through a file: URI; the store path may hold any
 * character a file name can. */
static void test_path_with_uri_characters(void **state)
{
    static const char *names[] = {"st#ore", "st?ore", "st%41ore", "st ore"};
    static const char text[] = ">a\nAC\n>b\nGG\n";
    const char *fa = tpath(state, "u.fa");
    int failures = 0;
    tal_test_write_file(fa, text, sizeof text - 1);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *st = tpath(state, names[i]);
        tal_store_t *s = NULL;
        int rc;
        assert_int_equal(build(fa, st, 1, 0, 0, NULL), 0);
        assert_int_equal(tal_store_open(&s, st), 0);
        expect_find(s, "b", 1);
        tal_store_close(s);
        rc = tal_store_verify(st, 1);
        if (rc != 0) {
            print_error("tal_store_verify on a good store named '%s' returned %d\n", names[i], rc);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* ---- damage ------------------------------------------------------------------------ */

static void test_verify_detects_flips(void **state)
{
    size_t n;
    const rdef_t *defs = basic_defs(&n);
    const char *fa = tpath(state, "v.fa"), *st = tpath(state, "v.store");
    write_fasta(fa, defs, n, 60, 0);
    assert_int_equal(build(fa, st, 2, 0, 0, NULL), 0);
    assert_int_equal(tal_store_verify(st, 1), 0);
    for (size_t k = 0; k < N_STORE_FILES; k++) {
        char path[PATH_MAX + 64];
        uint64_t size, where[3];
        snprintf(path, sizeof path, "%s", tal_test_join(st, store_files[k]));
        size = file_size(path);
        assert_true(size > 0);
        where[0] = 0;
        where[1] = size / 2;
        where[2] = size - 1;
        for (int w = 0; w < 3; w++) {
            int rc;
            tal_test_flip_byte(path, where[w]);
            rc = tal_store_verify(st, 1);
            if (rc != TAL_EINPUT)
                print_error("flip of %s byte %llu: verify returned %d\n", store_files[k],
                            (unsigned long long)where[w], rc);
            assert_int_equal(rc, TAL_EINPUT);
            tal_test_flip_byte(path, where[w]); /* restore */
            assert_int_equal(tal_store_verify(st, 1), 0);
        }
    }
    check_store(st, defs, n);
}

static void test_record_checksum_detects_flip(void **state)
{
    size_t n;
    const rdef_t *defs = basic_defs(&n);
    const char *fa = tpath(state, "r.fa"), *st = tpath(state, "r.store");
    tal_store_t *s = NULL;
    tal_record_t rec;
    uint64_t off = 0, hoff = 0, id;
    const uint64_t target = 2;
    write_fasta(fa, defs, n, 60, 0);
    assert_int_equal(build(fa, st, 1, 0, 0, NULL), 0);
    for (uint64_t i = 0; i < target; i++) {
        off += strlen(defs[i].seq);
        hoff += strlen(defs[i].header);
    }
    /* a residue of record 2 */
    tal_test_flip_byte(tal_test_join(st, "residues"), off + 3);
    assert_int_equal(tal_store_open(&s, st), 0);
    assert_int_equal(tal_store_record(s, target, &rec), TAL_EINPUT);
    expect_record(s, target - 1, defs[target - 1].header, defs[target - 1].seq);
    expect_record(s, target + 1, defs[target + 1].header, defs[target + 1].seq);
    assert_int_equal(tal_store_find(s, defs[target].primary, strlen(defs[target].primary), &id), 0);
    assert_true(id == target);
    tal_store_close(s);
    assert_int_equal(tal_store_verify(st, 1), TAL_EINPUT);
    tal_test_flip_byte(tal_test_join(st, "residues"), off + 3);
    /* a header byte */
    tal_test_flip_byte(tal_test_join(st, "headers"), hoff + 1);
    assert_int_equal(tal_store_open(&s, st), 0);
    assert_int_equal(tal_store_record(s, target, &rec), TAL_EINPUT);
    expect_record(s, 0, defs[0].header, defs[0].seq);
    tal_store_close(s);
    tal_test_flip_byte(tal_test_join(st, "headers"), hoff + 1);
    /* the stored checksum itself */
    tal_test_flip_byte(tal_test_join(st, "checksums"), target * 8 + 7);
    assert_int_equal(tal_store_open(&s, st), 0);
    assert_int_equal(tal_store_record(s, target, &rec), TAL_EINPUT);
    tal_store_close(s);
    tal_test_flip_byte(tal_test_join(st, "checksums"), target * 8 + 7);
    /* a length that disagrees with the offsets */
    tal_test_flip_byte(tal_test_join(st, "lengths"), target * 8);
    assert_int_equal(tal_store_open(&s, st), 0);
    assert_int_equal(tal_store_record(s, target, &rec), TAL_EINPUT);
    {
        /* tal_store_lengths leaves the check to the caller, who can see the damage */
        const uint64_t *lengths;
        tal_store_info_t info;
        uint64_t sum = 0;
        tal_store_info(s, &info);
        assert_int_equal(tal_store_lengths(s, &lengths), 0);
        for (uint64_t i = 0; i < info.records; i++) sum += lengths[i];
        assert_true(sum != info.residues);
    }
    expect_record(s, 0, defs[0].header, defs[0].seq);
    tal_store_close(s);
    tal_test_flip_byte(tal_test_join(st, "lengths"), target * 8);
    /* a sequence offset pointing past the residues */
    tal_test_flip_byte(tal_test_join(st, "seq_offsets"), (target + 1) * 8 + 6);
    assert_int_equal(tal_store_open(&s, st), 0);
    assert_int_equal(tal_store_record(s, target, &rec), TAL_EINPUT);
    assert_int_equal(tal_store_record(s, target + 1, &rec), TAL_EINPUT);
    tal_store_close(s);
    tal_test_flip_byte(tal_test_join(st, "seq_offsets"), (target + 1) * 8 + 6);
    /* a header offset pointing past the headers: find must not crash or match */
    tal_test_flip_byte(tal_test_join(st, "hdr_offsets"), (target + 1) * 8 + 5);
    assert_int_equal(tal_store_open(&s, st), 0);
    assert_int_equal(tal_store_record(s, target, &rec), TAL_EINPUT);
    assert_int_equal(tal_store_find(s, defs[target].primary, strlen(defs[target].primary), &id),
                     TAL_ENOTFOUND);
    expect_find(s, defs[0].primary, 0);
    tal_store_close(s);
    tal_test_flip_byte(tal_test_join(st, "hdr_offsets"), (target + 1) * 8 + 5);
    check_store(st, defs, n);
    assert_int_equal(tal_store_verify(st, 1), 0);
}

static void test_open_damaged(void **state)
{
    size_t n;
    const rdef_t *defs = basic_defs(&n);
    const char *fa = tpath(state, "o.fa"), *st = tpath(state, "o.store");
    char saved[PATH_MAX + 64];
    tal_store_t *s = (tal_store_t *)0x1;
    write_fasta(fa, defs, n, 60, 0);
    assert_int_equal(build(fa, st, 1, 0, 0, NULL), 0);
    /* a path that is not there (an I/O failure), and one that is not a store */
    assert_int_equal(tal_store_open(&s, tpath(state, "nothing")), TAL_EIO);
    assert_null(s);
    assert_int_equal(tal_store_open(&s, fa), TAL_EINPUT);
    assert_int_equal(tal_store_verify(tpath(state, "nothing"), 1), TAL_EIO);
    /* each file truncated by one byte, or missing */
    snprintf(saved, sizeof saved, "%s", tpath(state, "saved"));
    for (size_t k = 0; k < N_STORE_FILES; k++) {
        const char *path = tal_test_join(st, store_files[k]);
        char p[PATH_MAX + 64];
        uint64_t size;
        int is_catalog = !strcmp(store_files[k], "catalog.sqlite");
        snprintf(p, sizeof p, "%s", path);
        size = file_size(p);
        tal_test_copy_file(p, saved);
        assert_int_equal(truncate(p, (off_t)size - 1), 0);
        if (!is_catalog) {
            assert_int_equal(tal_store_open(&s, st), TAL_EINPUT);
            assert_null(s);
        }
        assert_int_equal(tal_store_verify(st, 1), TAL_EINPUT);
        assert_int_equal(unlink(p), 0);
        if (!is_catalog) assert_int_equal(tal_store_open(&s, st), TAL_EINPUT);
        assert_int_equal(tal_store_verify(st, 1), TAL_EINPUT);
        /* one byte longer */
        tal_test_copy_file(saved, p);
        {
            FILE *fp = fopen(p, "ab");
            assert_non_null(fp);
            fputc(0, fp);
            fclose(fp);
        }
        if (!is_catalog) assert_int_equal(tal_store_open(&s, st), TAL_EINPUT);
        assert_int_equal(tal_store_verify(st, 1), TAL_EINPUT);
        tal_test_copy_file(saved, p);
        assert_int_equal(tal_store_verify(st, 1), 0);
    }
}

/* ---- internal helpers ------------------------------------------------------------- */

static void expect_keys(const char *header, const char *primary, const char *alias)
{
    tal_keys_t k;
    memset(&k, 0x5a, sizeof k);
    tal_header_keys(header, strlen(header), &k);
    assert_ptr_equal(k.primary, header);
    assert_true(k.primary_len == strlen(primary));
    assert_true(memcmp(k.primary, primary, k.primary_len) == 0);
    if (alias) {
        assert_non_null(k.alias);
        assert_true(k.alias >= header && k.alias + k.alias_len <= header + strlen(header));
        assert_true(k.alias_len == strlen(alias));
        assert_true(memcmp(k.alias, alias, k.alias_len) == 0);
    } else {
        assert_null(k.alias);
    }
}

static void test_header_keys(void **state)
{
    (void)state;
    expect_keys("sp|P12345|ALBU_HUMAN Serum albumin", "sp|P12345|ALBU_HUMAN", "P12345");
    expect_keys("tr|A0A024R161|A0A024R161_HUMAN", "tr|A0A024R161|A0A024R161_HUMAN", "A0A024R161");
    expect_keys("ACC desc text", "ACC", NULL);
    expect_keys("ACC", "ACC", NULL);
    expect_keys("ACC\tdesc", "ACC", NULL);
    expect_keys("ACC desc|with|bars", "ACC", NULL);
    expect_keys("db|ACC", "db|ACC", "ACC");
    expect_keys("db|ACC more", "db|ACC", "ACC");
    expect_keys("a||b", "a||b", NULL);
    expect_keys("a|", "a|", NULL);
    expect_keys("|lead|x", "|lead|x", "lead");
    expect_keys("gi|5|ref|NP_1.1|", "gi|5|ref|NP_1.1|", "5");
    expect_keys(" leading space", "", NULL);
    expect_keys("", "", NULL);
    /* only len bytes are looked at */
    {
        tal_keys_t k;
        tal_header_keys("sp|AB|C D", 4, &k);
        assert_true(k.primary_len == 4);
        assert_non_null(k.alias);
        assert_true(k.alias_len == 1 && k.alias[0] == 'A');
    }
}

static void test_key_home_and_tag(void **state)
{
    (void)state;
    assert_true(tal_key_home(0xffffffffu, 16) == 0xffff);
    assert_true(tal_key_home(0x80000000u, 1) == 1);
    assert_true(tal_key_home(0x7fffffffu, 1) == 0);
    assert_true(tal_key_home(0x12345678u, 0) == 0);
    assert_true(tal_key_home(0x12345678u, 32) == 0x12345678u);
    assert_true(tal_key_home(0x12345678u, 8) == 0x12);
    assert_true(tal_key_home(0x12345678u, 20) == 0x12345);
    /* the home slot of a tag in a doubled table is 2*home or 2*home+1 */
    for (uint32_t t = 1; t < 4000000000u; t += 97654321u)
        for (unsigned bits = 1; bits < 32; bits++)
            assert_true(tal_key_home(t, bits + 1) >> 1 == tal_key_home(t, bits));
    assert_true(tal_key_tag(0xabcdef0123456789ull) == 0xabcdef01u);
    assert_true(tal_key_tag(tal_key_hash("P12345", 6)) == tal_key_tag(tal_key_hash("P12345", 6)));
    assert_true(tal_key_hash("P12345", 6) != tal_key_hash("P12346", 6));
    assert_true(tal_key_hash("P12345", 6) != tal_key_hash("P12345", 5));
}

static void test_record_checksum_and_names(void **state)
{
    uint64_t a = tal_record_checksum("h", 1, "ACGT", 4);
    (void)state;
    assert_true(a == tal_record_checksum("h", 1, "ACGT", 4));
    assert_true(a != tal_record_checksum("g", 1, "ACGT", 4));
    assert_true(a != tal_record_checksum("h", 1, "ACGA", 4));
    assert_true(a != tal_record_checksum("h", 1, "ACG", 3));
    /* moving a byte between header and sequence changes it */
    assert_true(tal_record_checksum("hA", 2, "CGT", 3) != tal_record_checksum("h", 1, "ACGT", 4));
    for (uint32_t i = TAL_SEC_HEADERS; i <= TAL_SEC_CHUNKS; i++) {
        assert_string_not_equal(tal_section_name(i), "unknown section");
        for (uint32_t j = i + 1; j <= TAL_SEC_CHUNKS; j++)
            assert_string_not_equal(tal_section_name(i), tal_section_name(j));
    }
    assert_string_equal(tal_section_name(0), "unknown section");
    assert_string_equal(tal_section_name(99), "unknown section");
}

static void expect_taxon(const char *header, int64_t taxid, const char *organism)
{
    int64_t t = 0;
    const char *o = (const char *)0x1;
    size_t olen = 99;
    tal_header_taxon(header, strlen(header), &t, &o, &olen);
    assert_true(t == taxid);
    if (organism) {
        assert_non_null(o);
        assert_true(olen == strlen(organism));
        assert_true(memcmp(o, organism, olen) == 0);
    } else {
        assert_null(o);
    }
}

static void test_header_taxon(void **state)
{
    (void)state;
    expect_taxon("sp|P12345|ALBU_HUMAN Serum albumin OS=Homo sapiens OX=9606 GN=ALB PE=1 SV=2",
                 9606, "Homo sapiens");
    expect_taxon("UniRef50_A0A0 Cluster: thing n=2 Tax=Bacteria TaxID=2 RepID=X_Y", 2, "Bacteria");
    expect_taxon("tr|Q|Q_MOUSE OX=10090 OS=Mus musculus", 10090, "Mus musculus");
    /* '=' signs nearer the start than a tag is long */
    expect_taxon("=1 X=2 OX=5 OS=a", 5, "a");
    expect_taxon("plain header", -1, NULL);
    expect_taxon("a XOX=5 FOS=x", -1, NULL);
    expect_taxon("a OX=abc", -1, NULL);
    expect_taxon("a OS=E. coli (strain K12) OX=83333", 83333, "E. coli (strain K12)");
}

/* ---- compression contexts and the budget ------------------------------------------ */

/* Residues drawn from the 20 amino acids by a fixed generator: entropy coding pays, long
 * matches are rare, as in real protein. */
static char *protein_residues(size_t len)
{
    char *seq = malloc(len);
    uint32_t x = 12345;
    assert_non_null(seq);
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        seq[i] = "ACDEFGHIKLMNPQRSTVWY"[(x >> 16) % 20];
    }
    return seq;
}

/* Compresses len bytes with a fresh context for chunks of chunk_size, decompresses them
 * again, and checks that neither context holds more than its footprint. */
static void expect_within_footprint(uint32_t codec, int level, size_t chunk_size, size_t len)
{
    char *raw = protein_residues(len), *back = malloc(len);
    size_t bound = tal_codec_bound(codec, len), stored = 0;
    char *packed = malloc(bound);
    size_t footprint = tal_codec_ctx_footprint(codec, level, chunk_size, 1);
    tal_codec_ctx_t *cc = NULL, *dc = NULL;
    assert_non_null(back);
    assert_non_null(packed);
    assert_int_equal(tal_codec_ctx_create(&cc, codec, level, chunk_size), 0);
    assert_int_equal(tal_codec_compress(cc, raw, len, packed, bound, &stored), 0);
    assert_true(stored > 0 && stored < len);
    if (tal_codec_ctx_held(cc) > footprint)
        print_error("codec %u level %d, chunks of %zu, %zu bytes: holds %zu, footprint %zu\n",
                    codec, level, chunk_size, len, tal_codec_ctx_held(cc), footprint);
    assert_true(tal_codec_ctx_held(cc) <= footprint);
    assert_int_equal(tal_codec_ctx_create(&dc, codec, 0, 0), 0);
    assert_int_equal(tal_codec_decompress(dc, codec, packed, stored, back, len), 0);
    assert_memory_equal(raw, back, len);
    assert_true(tal_codec_ctx_held(dc) <= tal_codec_ctx_footprint(codec, 0, 0, 0));
    tal_codec_ctx_free(cc);
    tal_codec_ctx_free(dc);
    free(raw);
    free(back);
    free(packed);
}

static void test_codec_footprint(void **state)
{
    const size_t mib = 1u << 20;
    tal_codec_ctx_t *cc = NULL;
    char *raw = protein_residues(4 * mib);
    size_t stored = 0, bound = tal_codec_bound(TAL_CODEC_ZSTD, 4 * mib);
    char *packed = malloc(bound);
    (void)state;
    /* zstd 19 sizes its tables by the source: tens of MiB for a 4 MiB chunk, and what it
     * holds after compressing one is no more than the footprint */
    assert_true(tal_codec_ctx_footprint(TAL_CODEC_ZSTD, 19, 4 * mib, 1) > 16 * mib);
    assert_non_null(packed);
    assert_int_equal(tal_codec_ctx_create(&cc, TAL_CODEC_ZSTD, 19, 4 * mib), 0);
    assert_int_equal(tal_codec_compress(cc, raw, 4 * mib, packed, bound, &stored), 0);
    assert_true(stored > 0 && stored < 4 * mib);
    assert_true(tal_codec_ctx_held(cc) > 16 * mib);
    assert_true(tal_codec_ctx_held(cc) <= tal_codec_ctx_footprint(TAL_CODEC_ZSTD, 19, 4 * mib, 1));
    tal_codec_ctx_free(cc);
    free(raw);
    free(packed);
    /* a record longer than the chunk size gets a chunk of its own, and zstd would size
     * its tables for that record (34 MiB here) had the context not kept them to a chunk's */
    expect_within_footprint(TAL_CODEC_ZSTD, 19, mib, 2 * mib + 17);
    /* the last chunk is short, and short sources take another row of zstd's table */
    expect_within_footprint(TAL_CODEC_ZSTD, 19, mib, 200000);
    expect_within_footprint(TAL_CODEC_ZSTD, 19, 64u << 10, 64u << 10);
    expect_within_footprint(TAL_CODEC_ZSTD, 0, 4 * mib, 3 * mib);
    expect_within_footprint(TAL_CODEC_LZ4, 9, 4 * mib, mib);
    assert_true(tal_codec_ctx_footprint(TAL_CODEC_LZ4, 1, 4 * mib, 1) > 0);
    assert_true(tal_codec_ctx_footprint(TAL_CODEC_ZSTD, 0, 0, 0) > 0);
    assert_true(tal_codec_ctx_footprint(TAL_CODEC_LZ4, 0, 0, 0) <
                tal_codec_ctx_footprint(TAL_CODEC_ZSTD, 0, 0, 0));
}

static int build_compressed(const char *fasta, const char *out, tal_budget_t *budget)
{
    tal_index_opt_t opt;
    tal_index_opt_init(&opt);
    opt.threads = 2;
    opt.compress = TAL_COMPRESS_ZSTD;
    opt.level = 19;
    opt.force = 1;
    opt.low_memory = 1; /* the buffers the plan below counts, whatever the cap */
    opt.budget = budget;
    return tal_store_build(fasta, out, &opt, NULL);
}

/* The compressors' contexts are reserved from the budget for the whole build and counted
 * by the plan: a cap that leaves no room for them is refused before anything is left. */
static void test_compress_contexts_reserved(void **state)
{
    const char *fa = tpath(state, "z.fa"), *st = tpath(state, "z.store");
    fixture_t *f = *state;
    size_t n;
    const rdef_t *defs = basic_defs(&n);
    tal_index_opt_t opt;
    tal_chunker_opt_t co;
    tal_budget_t *budget = NULL;
    tal_store_t *s = NULL;
    uint64_t plan, plain_plan;
    uint64_t contexts = 2 * tal_codec_ctx_footprint(TAL_CODEC_ZSTD, 19, 4u << 20, 1);
    write_fasta(fa, defs, n, 60, 0);
    tal_index_opt_init(&opt);
    opt.threads = 2;
    opt.low_memory = 1;
    plain_plan = tal_index_plan(fa, &opt);
    opt.compress = TAL_COMPRESS_ZSTD;
    opt.level = 19;
    plan = tal_index_plan(fa, &opt);
    memset(&co, 0, sizeof co);
    co.codec = TAL_CODEC_ZSTD;
    co.level = 19;
    co.chunk_size = opt.chunk_size;
    co.threads = 2;
    assert_true(tal_chunker_footprint(&co) > contexts);
    {
        tal_chunker_opt_t hco = co; /* format 1.3: the headers' chunker, 256 KiB chunks */
        hco.chunk_size = 256u << 10;
        uint64_t chunkers = tal_chunker_footprint(&co) + tal_chunker_footprint(&hco);
        /* besides: the accession table as written, at 80% load (a few records here) */
        assert_true(plan >= plain_plan + chunkers && plan - plain_plan - chunkers < 4096);
    }

    /* at the plan: built, the contexts were held, and everything is given back */
    assert_int_equal(tal_budget_create(&budget, plan), 0);
    assert_int_equal(build_compressed(fa, st, budget), 0);
    assert_true(tal_budget_peak(budget) >= contexts);
    assert_true(tal_budget_used(budget, TAL_MEM_COMPONENTS) == 0);
    tal_budget_destroy(budget);
    assert_int_equal(tal_store_open(&s, st), 0);
    for (size_t i = 0; i < n; i++) expect_record(s, i, defs[i].header, defs[i].seq);
    tal_store_close(s);

    /* without room for both contexts: refused, nothing left */
    assert_int_equal(tal_budget_create(&budget, plain_plan + contexts / 2), 0);
    assert_int_equal(build_compressed(fa, tpath(state, "refused.store"), budget), TAL_EMEMCAP);
    assert_true(tal_budget_refused(budget) > plain_plan + contexts / 2);
    assert_true(tal_budget_used(budget, TAL_MEM_COMPONENTS) == 0);
    tal_budget_destroy(budget);
    assert_false(exists(tpath(state, "refused.store")));
    assert_int_equal(tmp_siblings(f->dir), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup_dir, teardown_dir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_build_threads1),
        T(test_build_threads2),
        T(test_build_crlf_narrow),
        T(test_build_unwrapped),
        T(test_trailing_slash_and_nucleotide),
        T(test_alias_rules),
        T(test_many_records_threads1),
        T(test_many_records_threads2),
        T(test_big_records_threads1),
        T(test_big_records_threads2),
        T(test_exists_and_force),
        T(test_force_refuses_non_store),
        T(test_duplicate_rejected),
        T(test_allow_duplicates),
        T(test_duplicate_far_apart),
        T(test_output_parent_missing),
        T(test_build_errors_leave_nothing),
        T(test_all_sequences_empty),
        T(test_path_with_uri_characters),
        T(test_verify_detects_flips),
        T(test_record_checksum_detects_flip),
        T(test_open_damaged),
        T(test_compress_contexts_reserved),
        cmocka_unit_test(test_header_keys),
        cmocka_unit_test(test_key_home_and_tag),
        cmocka_unit_test(test_record_checksum_and_names),
        cmocka_unit_test(test_header_taxon),
        cmocka_unit_test(test_codec_footprint),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
