/* The SQLite catalog. Rows go in by rowid order inside one transaction with a prepared
 * statement; with threads, a background thread does the inserts from queued batches. */
#define _GNU_SOURCE
#include "catalog_internal.h"
#include "format_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A batch ends at BATCH_ROWS rows or BATCH_TEXT bytes of headers, whichever comes first
 * (nr's merged headers run to kilobytes): at most QUEUE_DEPTH + 2 batches of 128 KiB of
 * rows and 512 KiB of text (a longer header grows its batch's) live at once, within the
 * plan's 4 MiB for them. */
#define BATCH_ROWS      4096
#define BATCH_TEXT      ((size_t)256 << 10)
#define QUEUE_DEPTH     4
#define ROWS_PER_INSERT 32

typedef struct {
    uint64_t id, length;
    size_t header_off, header_len;
} row_t;

typedef struct {
    row_t rows[BATCH_ROWS];
    size_t n;
    char *text;
    size_t text_len, text_cap;
} batch_t;

struct tal_catalog_writer {
    sqlite3 *db;
    sqlite3_stmt *insert_first, *insert, *insert_many, *insert_taxon;
    int taxon_failed;
    int64_t *taxa_seen;     /* open-addressing set of taxids already in the taxa table */
    uint64_t *taxa_records; /* without per-record rows: the records of each taxid seen */
    size_t taxa_cap, taxa_n;
    int per_record; /* 0 (format 1.3 compressed stores): no records table, taxa count them */
    char *path;
    int threaded;
    batch_t *current;
    /* queue of full batches and a free list, both bounded */
    batch_t *queue[QUEUE_DEPTH];
    int q_head, q_count;
    batch_t *free_list[QUEUE_DEPTH + 1];
    int n_free;
    int closing;
    int error;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static int exec_sql(tal_catalog_writer_t *w, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(w->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        tal_log_error("%s: %s", w->path, msg ? msg : "SQLite error");
        sqlite3_free(msg);
        return TAL_EIO;
    }
    return 0;
}

/* 1 the first time a taxid is seen; the organism of its first record is kept. Without
 * per-record rows, the taxid's records are counted too. */
static int taxon_is_new(tal_catalog_writer_t *w, int64_t taxid)
{
    size_t j;
    if ((w->taxa_n + 1) * 2 > w->taxa_cap) {
        size_t cap = w->taxa_cap ? w->taxa_cap * 2 : 1024;
        int64_t *set = malloc(cap * sizeof *set);
        uint64_t *counts = calloc(cap, sizeof *counts);
        if (!set || !counts) {
            free(set);
            free(counts);
            if (!w->per_record) w->taxon_failed = 1; /* the counts would be wrong */
            return 1; /* INSERT OR IGNORE keeps the table right anyway */
        }
        for (size_t i = 0; i < cap; i++) set[i] = -1;
        for (size_t i = 0; i < w->taxa_cap; i++) {
            if (w->taxa_seen[i] < 0) continue;
            j = (size_t)((uint64_t)w->taxa_seen[i] * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1);
            while (set[j] >= 0) j = (j + 1) & (cap - 1);
            set[j] = w->taxa_seen[i];
            counts[j] = w->taxa_records[i];
        }
        free(w->taxa_seen);
        free(w->taxa_records);
        w->taxa_seen = set;
        w->taxa_records = counts;
        w->taxa_cap = cap;
    }
    j = (size_t)((uint64_t)taxid * 0x9E3779B97F4A7C15ull >> 20) & (w->taxa_cap - 1);
    while (w->taxa_seen[j] >= 0) {
        if (w->taxa_seen[j] == taxid) {
            w->taxa_records[j]++;
            return 0;
        }
        j = (j + 1) & (w->taxa_cap - 1);
    }
    w->taxa_seen[j] = taxid;
    w->taxa_records[j] = 1;
    w->taxa_n++;
    return 1;
}

/* Binds one record's columns at parameter offset base: four, or five with the id. Rows
 * arrive in id order from 0, so after the first one SQLite assigns the id itself
 * (max + 1): that takes its append path instead of a uniqueness probe per row. */
static void bind_row(tal_catalog_writer_t *w, sqlite3_stmt *st, int base, const batch_t *b,
                     const row_t *r, int with_id)
{
    const char *header = b->text + r->header_off, *organism;
    tal_keys_t keys;
    int64_t taxid;
    size_t organism_len;
    tal_header_keys(header, r->header_len, &keys);
    tal_header_taxon(header, r->header_len, &taxid, &organism, &organism_len);
    if (!st) goto taxon; /* no per-record rows */
    if (with_id) sqlite3_bind_int64(st, ++base, (sqlite3_int64)r->id);
    sqlite3_bind_text(st, base + 1, keys.primary, (int)keys.primary_len, SQLITE_STATIC);
    if (keys.alias)
        sqlite3_bind_text(st, base + 2, keys.alias, (int)keys.alias_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, base + 2);
    if (taxid >= 0)
        sqlite3_bind_int64(st, base + 3, taxid);
    else
        sqlite3_bind_null(st, base + 3);
    sqlite3_bind_int64(st, base + 4, (sqlite3_int64)r->length);
taxon:
    if (taxid >= 0 && taxon_is_new(w, taxid)) {
        /* rare (once per taxid): organism names go in their own table */
        sqlite3_stmt *tx = w->insert_taxon;
        sqlite3_bind_int64(tx, 1, taxid);
        if (organism)
            sqlite3_bind_text(tx, 2, organism, (int)organism_len, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(tx, 2);
        if (sqlite3_step(tx) != SQLITE_DONE) w->taxon_failed = 1;
        sqlite3_reset(tx);
    }
}

static int step_insert(tal_catalog_writer_t *w, sqlite3_stmt *st)
{
    int ok = sqlite3_step(st) == SQLITE_DONE && !w->taxon_failed;
    sqlite3_reset(st);
    if (!ok) {
        tal_log_error("%s: insert failed: %s", w->path, sqlite3_errmsg(w->db));
        return TAL_EIO;
    }
    return 0;
}

/* Rows go in ROWS_PER_INSERT at a time: one statement execution per group is much
 * cheaper than one per row. */
static int insert_batch(tal_catalog_writer_t *w, batch_t *b)
{
    size_t i = 0;
    int rc;
    if (!w->per_record) { /* only the taxa */
        for (; i < b->n; i++) bind_row(w, NULL, 0, b, &b->rows[i], 0);
        b->n = 0;
        b->text_len = 0;
        if (w->taxon_failed) {
            tal_log_error("%s: insert failed: %s", w->path, sqlite3_errmsg(w->db));
            return TAL_EIO;
        }
        return 0;
    }
    if (b->n && b->rows[0].id == 0) { /* the first row sets the ids' origin */
        bind_row(w, w->insert_first, 0, b, &b->rows[0], 1);
        if ((rc = step_insert(w, w->insert_first)) < 0) return rc;
        i = 1;
    }
    for (; i + ROWS_PER_INSERT <= b->n; i += ROWS_PER_INSERT) {
        for (int k = 0; k < ROWS_PER_INSERT; k++)
            bind_row(w, w->insert_many, k * 4, b, &b->rows[i + (size_t)k], 0);
        if ((rc = step_insert(w, w->insert_many)) < 0) return rc;
    }
    for (; i < b->n; i++) {
        bind_row(w, w->insert, 0, b, &b->rows[i], 0);
        if ((rc = step_insert(w, w->insert)) < 0) return rc;
    }
    b->n = 0;
    b->text_len = 0;
    return 0;
}

static void *catalog_main(void *arg)
{
    tal_catalog_writer_t *w = arg;
    for (;;) {
        batch_t *b;
        int rc;
        pthread_mutex_lock(&w->mu);
        while (w->q_count == 0 && !w->closing) pthread_cond_wait(&w->cv, &w->mu);
        if (w->q_count == 0) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        b = w->queue[w->q_head];
        w->q_head = (w->q_head + 1) % QUEUE_DEPTH;
        w->q_count--;
        pthread_mutex_unlock(&w->mu);
        rc = w->error ? 0 : insert_batch(w, b);
        b->n = 0;
        b->text_len = 0;
        pthread_mutex_lock(&w->mu);
        if (rc) w->error = rc;
        w->free_list[w->n_free++] = b;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

static batch_t *batch_new(void)
{
    batch_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->text_cap = 2 * BATCH_TEXT;
    b->text = malloc(b->text_cap);
    if (!b->text) {
        free(b);
        return NULL;
    }
    return b;
}

static void batch_free(batch_t *b)
{
    if (!b) return;
    free(b->text);
    free(b);
}

static int prepare_many(tal_catalog_writer_t *w)
{
    char sql[64 + ROWS_PER_INSERT * 12];
    size_t n = (size_t)snprintf(sql, sizeof sql,
                                "INSERT INTO records(accession,alias,taxid,length) VALUES");
    for (int k = 0; k < ROWS_PER_INSERT; k++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s(?,?,?,?)", k ? "," : "");
    return sqlite3_prepare_v2(w->db, sql, -1, &w->insert_many, NULL) == SQLITE_OK ? 0 : -1;
}

int tal_catalog_create(tal_catalog_writer_t **out, const char *path, int threaded,
                       unsigned cache_kib, int per_record)
{
    char pragma[64];
    tal_catalog_writer_t *w = calloc(1, sizeof *w);
    int rc = TAL_ENOMEM;
    *out = NULL;
    if (!w) return TAL_ENOMEM;
    w->path = strdup(path);
    w->per_record = per_record;
    w->current = batch_new();
    if (!w->path || !w->current) goto fail;
    if (sqlite3_open_v2(path, &w->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        tal_log_error("cannot create %s: %s", path, w->db ? sqlite3_errmsg(w->db) : "SQLite error");
        rc = TAL_EIO;
        goto fail;
    }
    /* The file is fsynced by the builder; a crash mid-build leaves only the temp dir. */
    snprintf(pragma, sizeof pragma, "PRAGMA cache_size=-%u;", cache_kib);
    if ((rc = exec_sql(w, pragma)) != 0) goto fail;
    /* a catalog without per-record rows holds a few tables of metadata: small pages */
    rc = exec_sql(w, per_record ? "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                                  " PRAGMA page_size=8192;"
                                : "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                                  " PRAGMA page_size=1024;");
    /* format 1.3 compressed stores: the accessions live in the keys section and the
     * lengths in theirs; the catalog counts each taxon's records instead of listing them */
    if (!rc)
        rc = exec_sql(w, per_record ? "CREATE TABLE records(id INTEGER PRIMARY KEY, accession TEXT"
                                      " NOT NULL, alias TEXT, taxid INTEGER, length INTEGER NOT"
                                      " NULL);"
                                      "CREATE TABLE taxa(taxid INTEGER PRIMARY KEY, organism TEXT);"
                                    : "CREATE TABLE taxa(taxid INTEGER PRIMARY KEY, organism TEXT,"
                                      " records INTEGER NOT NULL DEFAULT 0);");
    if (!rc)
        rc = exec_sql(w, "CREATE TABLE provenance(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                         "CREATE TABLE reductions(id INTEGER PRIMARY KEY, started TEXT NOT NULL,"
                         " command TEXT NOT NULL, parameters TEXT, summary TEXT);"
                         "BEGIN;");
    if (rc) goto fail;
    if ((per_record &&
         (sqlite3_prepare_v2(
              w->db, "INSERT INTO records(id,accession,alias,taxid,length) VALUES(?,?,?,?,?)", -1,
              &w->insert_first, NULL) != SQLITE_OK ||
          sqlite3_prepare_v2(w->db,
                             "INSERT INTO records(accession,alias,taxid,length) VALUES(?,?,?,?)",
                             -1, &w->insert, NULL) != SQLITE_OK ||
          prepare_many(w) != 0)) ||
        sqlite3_prepare_v2(w->db, "INSERT OR IGNORE INTO taxa(taxid,organism) VALUES(?,?)", -1,
                           &w->insert_taxon, NULL) != SQLITE_OK) {
        tal_log_error("%s: %s", path, sqlite3_errmsg(w->db));
        rc = TAL_EIO;
        goto fail;
    }
    if (threaded) {
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        w->threaded = 1;
        if (pthread_create(&w->thread, NULL, catalog_main, w) != 0) {
            w->threaded = 0;
            pthread_mutex_destroy(&w->mu);
            pthread_cond_destroy(&w->cv);
        }
    }
    *out = w;
    return 0;
fail:
    tal_catalog_abort(w);
    return rc;
}

static int stash(batch_t *b, const char *s, size_t len, size_t *off)
{
    if (b->text_len + len > b->text_cap) {
        size_t cap = b->text_cap;
        char *p;
        while (cap < b->text_len + len) cap *= 2;
        p = realloc(b->text, cap);
        if (!p) return TAL_ENOMEM;
        b->text = p;
        b->text_cap = cap;
    }
    memcpy(b->text + b->text_len, s, len);
    *off = b->text_len;
    b->text_len += len;
    return 0;
}

static int submit(tal_catalog_writer_t *w)
{
    batch_t *next;
    int rc;
    if (!w->threaded) return insert_batch(w, w->current);
    pthread_mutex_lock(&w->mu);
    while (w->q_count == QUEUE_DEPTH) pthread_cond_wait(&w->cv, &w->mu);
    w->queue[(w->q_head + w->q_count) % QUEUE_DEPTH] = w->current;
    w->q_count++;
    next = w->n_free ? w->free_list[--w->n_free] : NULL;
    rc = w->error;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (!next) next = batch_new();
    w->current = next;
    if (!next) return TAL_ENOMEM;
    return rc;
}

int tal_catalog_add(tal_catalog_writer_t *w, uint64_t id, const char *header, size_t header_len,
                    uint64_t length)
{
    batch_t *b = w->current;
    row_t *r = &b->rows[b->n];
    int rc;
    r->id = id;
    r->length = length;
    r->header_len = header_len;
    if ((rc = stash(b, header, header_len, &r->header_off)) < 0) return rc;
    if (++b->n == BATCH_ROWS || b->text_len >= BATCH_TEXT) return submit(w);
    return 0;
}

int tal_catalog_set(tal_catalog_writer_t *w, const char *key, const char *value)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (w->threaded) return TAL_EUSAGE; /* provenance goes in after finish's join */
    if (sqlite3_prepare_v2(w->db, "INSERT OR REPLACE INTO provenance(key,value) VALUES(?,?)", -1,
                           &st, NULL) != SQLITE_OK)
        rc = TAL_EIO;
    if (!rc) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE) rc = TAL_EIO;
    }
    if (rc) tal_log_error("%s: cannot record provenance: %s", w->path, sqlite3_errmsg(w->db));
    sqlite3_finalize(st);
    return rc;
}

static void stop_thread(tal_catalog_writer_t *w)
{
    if (!w->threaded) return;
    pthread_mutex_lock(&w->mu);
    w->closing = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    w->threaded = 0;
}

static int store_taxon_counts(tal_catalog_writer_t *w)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(w->db, "UPDATE taxa SET records=? WHERE taxid=?", -1, &st, NULL) !=
        SQLITE_OK)
        rc = TAL_EIO;
    for (size_t i = 0; !rc && i < w->taxa_cap; i++) {
        if (w->taxa_seen[i] < 0) continue;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)w->taxa_records[i]);
        sqlite3_bind_int64(st, 2, w->taxa_seen[i]);
        if (sqlite3_step(st) != SQLITE_DONE) rc = TAL_EIO;
        sqlite3_reset(st);
    }
    if (rc) tal_log_error("%s: cannot count the taxa: %s", w->path, sqlite3_errmsg(w->db));
    sqlite3_finalize(st);
    return rc;
}

int tal_catalog_finish(tal_catalog_writer_t *w, int make_index)
{
    int rc = 0;
    if (w->current && w->current->n) rc = submit(w);
    stop_thread(w);
    if (!rc) rc = w->error;
    if (!rc && !w->per_record) rc = store_taxon_counts(w);
    if (!rc && make_index && w->per_record)
        rc = exec_sql(w, "CREATE INDEX records_accession ON records(accession);"
                         "CREATE INDEX records_alias ON records(alias) WHERE alias IS NOT NULL;");
    return rc;
}

int tal_catalog_close(tal_catalog_writer_t *w)
{
    int rc = exec_sql(w, "COMMIT;");
    sqlite3_finalize(w->insert_first);
    sqlite3_finalize(w->insert);
    sqlite3_finalize(w->insert_taxon);
    sqlite3_finalize(w->insert_many);
    w->insert_first = w->insert = w->insert_taxon = w->insert_many = NULL;
    if (sqlite3_close(w->db) != SQLITE_OK && !rc) {
        tal_log_error("%s: cannot close the catalog", w->path);
        rc = TAL_EIO;
    }
    w->db = NULL;
    tal_catalog_abort(w);
    return rc;
}

void tal_catalog_abort(tal_catalog_writer_t *w)
{
    if (!w) return;
    stop_thread(w);
    if (w->insert_first) sqlite3_finalize(w->insert_first);
    if (w->insert) sqlite3_finalize(w->insert);
    if (w->insert_taxon) sqlite3_finalize(w->insert_taxon);
    if (w->insert_many) sqlite3_finalize(w->insert_many);
    free(w->taxa_seen);
    free(w->taxa_records);
    if (w->db) sqlite3_close(w->db);
    batch_free(w->current);
    for (int i = 0; i < w->n_free; i++) batch_free(w->free_list[i]);
    for (int i = 0; i < w->q_count; i++) batch_free(w->queue[(w->q_head + i) % QUEUE_DEPTH]);
    free(w->path);
    free(w);
}

/* One pass over the header's '=' signs finds the UniProt (OX=, OS=) and UniRef
 * (TaxID=, Tax=) tags; a tag counts only at the start or after a space. */
static const char *tag_value(const char *h, const char *eq, const char *tag, size_t tag_len)
{
    const char *start;
    if ((size_t)(eq - h) < tag_len) return NULL; /* no pointer before the header is formed */
    start = eq - tag_len;
    if (memcmp(start, tag, tag_len)) return NULL;
    if (start > h && start[-1] != ' ') return NULL;
    return eq + 1;
}

void tal_header_taxon(const char *header, size_t len, int64_t *taxid, const char **organism,
                      size_t *organism_len)
{
    const char *end = header + len, *p = header, *eq, *ox = NULL, *os = NULL, *v;
    *taxid = -1;
    *organism = NULL;
    *organism_len = 0;
    while ((eq = memchr(p, '=', (size_t)(end - p))) != NULL) {
        if (!ox &&
            ((v = tag_value(header, eq, "OX", 2)) || (v = tag_value(header, eq, "TaxID", 5))))
            ox = v;
        else if (!os &&
                 ((v = tag_value(header, eq, "OS", 2)) || (v = tag_value(header, eq, "Tax", 3))))
            os = v;
        p = eq + 1;
    }
    if (ox && ox < end && *ox >= '0' && *ox <= '9') {
        int64_t value = 0;
        while (ox < end && *ox >= '0' && *ox <= '9' && value < (INT64_MAX - 9) / 10)
            value = value * 10 + (*ox++ - '0');
        *taxid = value;
    }
    if (os) {
        /* the organism runs to the next " XX=" tag */
        const char *q = os;
        while (q < end) {
            if (*q == ' ') {
                const char *t = q + 1;
                while (t < end && ((*t >= 'A' && *t <= 'Z') || (*t >= 'a' && *t <= 'z'))) t++;
                if (t < end && *t == '=' && t > q + 1) break;
            }
            q++;
        }
        *organism = os;
        *organism_len = (size_t)(q - os);
    }
}
