/* `talaria verify`: every checksum recomputed, every offset and key checked, the
 * catalog checked by SQLite. Reports the first broken section by name. */
#include "format_internal.h"
#include "store_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/store.h"
#include "util/files_internal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int broken(const tal_store_t *s, uint32_t id, const char *what)
{
    tal_log_error("%s: the %s section is broken: %s", tal_store_path(s), tal_section_name(id),
                  what);
    return TAL_EINPUT;
}

/* Compressed residues: each chunk's own checksum first, so a damaged chunk is named
 * (and with it the records that are lost) rather than just the residues file. */
static int check_chunks(const tal_store_t *s)
{
    uint64_t n;
    const char *stored;
    char name[96], what[160];
    if (tal_store_hchunks_(s, &n)) /* format 1.3: compressed headers */
        for (uint64_t k = 0; k < n; k++) {
            if (tal_store_hchunk_intact_(s, k, &stored)) continue;
            tal_store_hchunk_name_(s, k, name, sizeof name);
            snprintf(what, sizeof what, "%s fails its checksum", name);
            return broken(s, TAL_SEC_HEADERS, what);
        }
    if (!tal_store_chunks_(s, &n)) return 0;
    for (uint64_t k = 0; k < n; k++) {
        if (tal_store_chunk_intact_(s, k, &stored)) continue;
        tal_store_chunk_name_(s, k, name, sizeof name);
        snprintf(what, sizeof what, "%s fails its checksum", name);
        return broken(s, TAL_SEC_RESIDUES, what);
    }
    return 0;
}

static int check_checksums(const tal_store_t *s)
{
    for (uint32_t id = 1; id <= TAL_SEC_LAST; id++) {
        const void *data;
        size_t size;
        const tal_section_disk_t *sec = tal_store_section_(s, id, &data, &size);
        uint64_t sum, fsize;
        if (!sec) continue;
        if (id == TAL_SEC_CATALOG) {
            char path[4096];
            int rc;
            snprintf(path, sizeof path, "%s/%s", tal_store_path(s), sec->file);
            if (access(path, F_OK) != 0 && errno == ENOENT) {
                char what[96];
                snprintf(what, sizeof what, "its file %s is missing", sec->file);
                return broken(s, id, what);
            }
            if ((rc = tal_hash_file(path, &sum, &fsize)) < 0) return rc;
            if (fsize != sec->size) return broken(s, id, "its size differs from the meta table");
        } else {
            sum = XXH3_64bits(data, size);
        }
        if (sum != sec->checksum) return broken(s, id, "checksum mismatch");
    }
    return 0;
}

static int check_records(const tal_store_t *s, const tal_store_info_t *info)
{
    const uint64_t *hdr_off, *seq_off, *lengths;
    uint64_t n = info->records, count;
    hdr_off = tal_store_array_(s, TAL_SEC_HDR_OFFSETS, &count);
    seq_off = tal_store_array_(s, TAL_SEC_SEQ_OFFSETS, &count);
    lengths = tal_store_array_(s, TAL_SEC_LENGTHS, &count);
    for (uint64_t i = 0; i < n; i++) {
        tal_record_t rec;
        if (hdr_off[i] > hdr_off[i + 1]) return broken(s, TAL_SEC_HDR_OFFSETS, "offsets decrease");
        if (seq_off[i] > seq_off[i + 1]) return broken(s, TAL_SEC_SEQ_OFFSETS, "offsets decrease");
        if (lengths[i] != seq_off[i + 1] - seq_off[i])
            return broken(s, TAL_SEC_LENGTHS, "a length disagrees with the offsets");
        if (hdr_off[i + 1] == hdr_off[i]) return broken(s, TAL_SEC_HEADERS, "an empty header");
        if (tal_store_record(s, i, &rec) < 0) {
            char what[96];
            snprintf(what, sizeof what, "record %llu does not match its checksum",
                     (unsigned long long)i + 1);
            return broken(s, TAL_SEC_RECORD_CHECKSUMS, what);
        }
    }
    return 0;
}

static int check_keys(const tal_store_t *s, const tal_store_info_t *info)
{
    const void *p;
    size_t size;
    const tal_key_slot_t *slots;
    uint64_t n_slots, used = 0, expected = 0;
    tal_store_section_(s, TAL_SEC_KEYS, &p, &size);
    slots = p;
    n_slots = size / sizeof *slots;
    for (uint64_t i = 0; i < n_slots; i++) {
        if (!slots[i].ref) continue;
        used++;
        if ((slots[i].ref & ~TAL_KEY_ALIAS) == 0 || (slots[i].ref & ~TAL_KEY_ALIAS) > info->records)
            return broken(s, TAL_SEC_KEYS, "a key names no record");
    }
    /* every record must be found under its first word, and its alias must lead to a
     * record carrying that alias */
    for (uint64_t i = 0; i < info->records; i++) {
        tal_record_t rec, other;
        tal_keys_t k, ok;
        uint64_t found;
        tal_store_record(s, i, &rec);
        tal_header_keys(rec.header, rec.header_len, &k);
        expected += k.alias && !tal_store_one_key_(s) ? 2 : 1;
        if (tal_store_find(s, k.primary, k.primary_len, &found) < 0 || found != i)
            return broken(s, TAL_SEC_KEYS, "a record cannot be found by its accession");
        if (!k.alias) continue;
        if (tal_store_find(s, k.alias, k.alias_len, &found) < 0 ||
            tal_store_record(s, found, &other) < 0)
            return broken(s, TAL_SEC_KEYS, "a record cannot be found by its alias");
        tal_header_keys(other.header, other.header_len, &ok);
        if (!((ok.primary_len == k.alias_len && !memcmp(ok.primary, k.alias, k.alias_len)) ||
              (ok.alias && ok.alias_len == k.alias_len && !memcmp(ok.alias, k.alias, k.alias_len))))
            return broken(s, TAL_SEC_KEYS, "an alias leads to the wrong record");
    }
    if (used != expected || used != info->key_count)
        return broken(s, TAL_SEC_KEYS, "wrong number of keys");
    return 0;
}

static int check_catalog(const tal_store_t *s, const tal_store_info_t *info)
{
    char uri[4200];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = 0;
    const void *p;
    size_t size;
    const tal_section_disk_t *sec = tal_store_section_(s, TAL_SEC_CATALOG, &p, &size);
    char path[4096];
    size_t n = 0;
    int per_record;
    snprintf(path, sizeof path, "%s/%s", tal_store_path(s), sec->file);
    /* immutable=1 needs a URI: escape everything but unreserved characters */
    n = (size_t)snprintf(uri, sizeof uri, "file:");
    for (const char *c = path; *c && n + 4 < sizeof uri; c++) {
        unsigned char ch = (unsigned char)*c;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '/' || ch == '.' || ch == '_' || ch == '-' || ch == '~')
            uri[n++] = (char)ch;
        else
            n += (size_t)snprintf(uri + n, sizeof uri - n, "%%%02X", ch);
    }
    snprintf(uri + n, sizeof uri - n, "?immutable=1");
    if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
        rc = broken(s, TAL_SEC_CATALOG, "SQLite cannot open it");
        goto out;
    }
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "ok")) {
        rc = broken(s, TAL_SEC_CATALOG, "SQLite's quick_check fails");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name='records'", -1, &st,
                           NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = broken(s, TAL_SEC_CATALOG, "SQLite cannot read its schema");
        goto out;
    }
    per_record = sqlite3_column_int64(st, 0) != 0;
    sqlite3_finalize(st);
    st = NULL;
    /* format 1.3 compressed stores have no records table unless asked for; the taxa
     * count records then, and the provenance gives the total */
    if (per_record ? sqlite3_prepare_v2(db, "SELECT count(*), coalesce(max(id),-1) FROM records",
                                        -1, &st, NULL) != SQLITE_OK ||
                         sqlite3_step(st) != SQLITE_ROW ||
                         (uint64_t)sqlite3_column_int64(st, 0) != info->records ||
                         sqlite3_column_int64(st, 1) != (sqlite3_int64)info->records - 1
                   : sqlite3_prepare_v2(db,
                                        "SELECT CAST(value AS INTEGER),"
                                        " (SELECT coalesce(sum(records),0) FROM taxa)"
                                        " FROM provenance WHERE key='records'",
                                        -1, &st, NULL) != SQLITE_OK ||
                         sqlite3_step(st) != SQLITE_ROW ||
                         (uint64_t)sqlite3_column_int64(st, 0) != info->records ||
                         (uint64_t)sqlite3_column_int64(st, 1) > info->records)
        rc = broken(s, TAL_SEC_CATALOG, "its record count differs from the store's");
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

static uint64_t store_length(void *ctx, uint64_t i) { return ((const uint64_t *)ctx)[i]; }

/* The line layout (format 1.2): every entry in order, every listed record's lines adding
 * up to its length. */
static int check_line_layout(const tal_store_t *s)
{
    tal_layout_t l;
    const uint64_t *lengths;
    const char *bad;
    if (!tal_store_layout_(s, &l)) return 0;
    tal_store_lengths(s, &lengths);
    if ((bad = tal_layout_check(&l, store_length, (void *)lengths)))
        return broken(s, TAL_SEC_LAYOUT, bad);
    return 0;
}

int tal_store_verify(const char *path, int quiet)
{
    tal_store_t *s = NULL;
    tal_store_info_t info;
    int rc = tal_store_open(&s, path);
    if (rc < 0) return rc;
    tal_store_info(s, &info);
    if ((rc = check_chunks(s)) < 0) goto out;
    if ((rc = check_checksums(s)) < 0) goto out;
    if ((rc = check_records(s, &info)) < 0) goto out;
    if ((rc = check_line_layout(s)) < 0) goto out;
    if ((rc = check_keys(s, &info)) < 0) goto out;
    if ((rc = check_catalog(s, &info)) < 0) goto out;
    if (!quiet)
        printf("%s: ok (%llu records, %llu residues%s%s%s, all checksums match)\n", path,
               (unsigned long long)info.records, (unsigned long long)info.residues,
               info.chunk_count ? ", " : "", info.chunk_count ? info.codec : "",
               info.chunk_count ? " chunks" : "");
out:
    tal_store_close(s);
    return rc;
}
