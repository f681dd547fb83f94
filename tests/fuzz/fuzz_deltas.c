/* Fuzz harness for the delta store reader: any bytes are a delta store followed by its
 * reduced FASTA; open, info, record, rebuild, find, members and verify must never crash. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "replay.h"
#include "store/format_internal.h"
#include "test_support.h"
#include "talaria/deltas.h"
#include "talaria/error.h"
#include "talaria/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Input layout: the delta store is the first FILE_SIZE bytes, FILE_SIZE being the store
 * header's file_size field (the u64 at byte 96), and the rest is the reduced FASTA it reads
 * its references from. When that field is past the end, the whole input is the store and
 * the FASTA is empty. A seed is `cat NAME.deltas.tal NAME.fasta`. */
#define FILE_SIZE_AT 96
/* records, references and members visited at most */
#define MAX_VISITS   4096

static const char *const accessions[] = {"sp|P11111|REF1_HUMAN",
                                         "P11111",
                                         "m1",
                                         "Q22222",
                                         "P33333",
                                         "m4",
                                         "P44444",
                                         "empty",
                                         "chrA",
                                         "",
                                         "only",
                                         "nothing"};

static char g_dir[PATH_MAX], g_store[PATH_MAX + 32], g_fasta[PATH_MAX + 32];
static FILE *g_null;
static int g_ready;

static void cleanup(void)
{
    if (!g_ready) return;
    if (g_null) fclose(g_null);
    tal_test_rm_rf(g_dir);
    g_ready = 0;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_deltas: invariant broken: %s\n", what);
    abort();
}

static void fail_rc(const char *call, int rc)
{
    fprintf(stderr, "fuzz_deltas: %s gave %d (%s)\n", call, rc, tal_strerror(rc));
    abort();
}

static void init(void)
{
    if (g_ready) return;
    tal_log_set_level(TAL_LOG_QUIET);
    if (tal_test_mkdtemp(g_dir, sizeof g_dir, "fuzz-deltas") < 0) fail("mkdtemp failed");
    g_ready = 1;
    atexit(cleanup);
    snprintf(g_store, sizeof g_store, "%s/in.deltas.tal", g_dir);
    snprintf(g_fasta, sizeof g_fasta, "%s/in.fasta", g_dir);
    if (!(g_null = fopen("/dev/null", "w"))) fail("cannot open /dev/null");
}

static void write_whole(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot write an input file");
    for (size_t done = 0; done < n;) {
        ssize_t w = write(fd, p + done, n - done);
        if (w <= 0) fail("write failed");
        done += (size_t)w;
    }
    close(fd);
}

/* Not TAL_ENOMEM: an input this small needs little memory, unless a damaged field sizes a
 * buffer (a reference's FASTA length once asked for 256 GiB). */
static int is_error(int rc) { return rc == TAL_EINPUT || rc == TAL_EIO; }

typedef struct {
    int open_rc, verify_rc;
    uint64_t records, rebuilt;
} result_t;

static void check_record(const tal_dinfo_t *info, const tal_drec_t *rec)
{
    volatile unsigned char sink = 0;
    if (rec->ref >= info->references) fail("a record of a reference past the end");
    if ((rec->flags & (TAL_DREC_REFERENCE | TAL_DREC_IDENTICAL)) && rec->delta)
        fail("a delta on a record that has none");
    if (!rec->delta && rec->delta_len) fail("a delta length without a delta");
    /* talaria validate bins the identities: a NaN once indexed far outside its histogram */
    if (!(rec->identity >= 0.0f && rec->identity <= 1.0f) ||
        !(rec->coverage >= 0.0f && rec->coverage <= 1.0f))
        fail("an identity or coverage outside [0, 1]");
    /* touch every byte the record claims */
    for (size_t k = 0; k < rec->header_len; k++) sink ^= (unsigned char)rec->header[k];
    for (size_t k = 0; k < rec->delta_len; k++) sink ^= rec->delta[k];
    (void)sink;
}

/* Every lookup of acc finds a record that has acc as its accession or its alias. */
static void check_find(const tal_dstore_t *d, const tal_dinfo_t *info, const char *acc, size_t len)
{
    uint64_t id = UINT64_MAX;
    tal_drec_t rec;
    tal_keys_t keys;
    int rc = tal_dstore_find(d, acc, len, &id);
    if (rc == TAL_ENOTFOUND) return;
    if (rc != 0) fail("find gave an unexpected error");
    if (id >= info->records) fail("find gave a record past the end");
    if (tal_dstore_record(d, id, &rec) != 0) fail("find gave a record that cannot be read");
    tal_header_keys(rec.header, rec.header_len, &keys);
    if (!(keys.primary_len == len && !memcmp(keys.primary, acc, len)) &&
        !(keys.alias && keys.alias_len == len && !memcmp(keys.alias, acc, len)))
        fail("find gave a record of another accession");
}

static void exercise(tal_dstore_t *d, uint64_t store_size, result_t *res)
{
    tal_dinfo_t info;
    tal_drec_t rec;
    tal_dref_t ref;
    char *buf = NULL;
    size_t cap = 0, len;
    uint64_t n, member_total = 0;

    tal_dstore_info(d, &info);
    if (info.references > info.records || info.members != info.records - info.references)
        fail("record counts that do not add up");
    if (info.file_bytes != store_size) fail("a file size that is not the file's");
    if (!info.provenance || !info.fasta_path || strcmp(info.fasta_path, g_fasta))
        fail("info without its strings");
    (void)strlen(info.provenance);
    res->records = info.records;
    n = info.records < MAX_VISITS ? info.records : MAX_VISITS;
    for (uint64_t i = 0; i < n; i++) {
        int rc = tal_dstore_record(d, i, &rec);
        if (rc != 0) {
            if (rc != TAL_EINPUT) fail_rc("record", rc);
            continue;
        }
        check_record(&info, &rec);
        rc = tal_dstore_rebuild(d, i, &buf, &cap, &len);
        if (rc == 0) {
            if (len != rec.length) fail("a rebuilt record of another length");
            if (tal_record_checksum(rec.header, rec.header_len, buf, len) != rec.checksum)
                fail("a rebuilt record that does not match its checksum");
            res->rebuilt++;
        } else if (!is_error(rc)) {
            fail_rc("rebuild", rc);
        }
        if (i < 8) {
            const char *acc;
            size_t acc_len;
            tal_dstore_accession(rec.header, rec.header_len, &acc, &acc_len);
            check_find(d, &info, acc, acc_len);
        }
    }
    if (tal_dstore_record(d, info.records, &rec) != TAL_ENOTFOUND)
        fail("a record past the end was given");
    for (size_t i = 0; i < sizeof accessions / sizeof *accessions; i++)
        check_find(d, &info, accessions[i], strlen(accessions[i]));
    n = info.references < MAX_VISITS ? info.references : MAX_VISITS;
    for (uint32_t k = 0; k < n; k++) {
        const uint64_t *members;
        uint64_t count;
        const char *seq;
        size_t seq_len;
        int rc;
        if (tal_dstore_reference(d, k, &ref) != 0) fail("a reference that cannot be read");
        rc = tal_dstore_ref_residues(d, k, &seq, &seq_len);
        if (rc == 0 && seq_len != ref.length) fail("reference residues of another length");
        if (rc != 0 && !is_error(rc)) fail_rc("ref_residues", rc);
        if (tal_dstore_members(d, k, &members, &count) != 0) fail("members gave an error");
        member_total += count;
        if (member_total > info.records) fail("more members than records");
        for (uint64_t m = 0; m < count && m < MAX_VISITS; m++)
            if (members[m] >= info.records) fail("a member past the end");
    }
    if (info.references < UINT32_MAX &&
        tal_dstore_reference(d, (uint32_t)info.references, &ref) != TAL_ENOTFOUND)
        fail("a reference past the end was given");
    if (info.records <= MAX_VISITS) {
        int rc = tal_dstore_write_fasta(d, 0, info.records, 60, g_null);
        if (rc != 0 && !is_error(rc)) fail_rc("write_fasta", rc);
        if ((rc == 0) != (res->rebuilt == info.records)) fail("write_fasta and rebuild disagree");
        /* in the input's lines (a layout that does not fit a record is an error, not a crash) */
        rc = tal_dstore_write_fasta(d, 0, info.records, TAL_WIDTH_LAYOUT, g_null);
        if (rc != 0 && !is_error(rc)) fail_rc("write_fasta in the input's lines", rc);
        if (rc == 0 && res->rebuilt != info.records)
            fail("write_fasta in the input's lines and rebuild disagree");
    }
    free(buf);
}

static result_t run_input(const uint8_t *data, size_t size)
{
    uint64_t split = size;
    tal_dstore_t *d = NULL;
    result_t res;
    init();
    memset(&res, 0, sizeof res);
    if (size >= FILE_SIZE_AT + 8) {
        memcpy(&split, data + FILE_SIZE_AT, 8);
        if (split > size) split = size;
    }
    write_whole(g_store, data, (size_t)split);
    write_whole(g_fasta, data + split, size - (size_t)split);

    /* the FASTA found the way talaria finds it: only the path is looked at here */
    if (tal_dstore_open(&d, g_store, NULL, 0) == 0) {
        tal_dinfo_t info;
        tal_dstore_info(d, &info);
        if (!info.fasta_path) fail("no FASTA path");
        tal_dstore_close(d);
        d = NULL;
    }
    res.open_rc = tal_dstore_open(&d, g_store, g_fasta, 0);
    if (res.open_rc == 0) {
        exercise(d, split, &res);
        tal_dstore_close(d);
    } else if (d) {
        fail("open failed but gave a store");
    } else if (!is_error(res.open_rc)) {
        fail_rc("open", res.open_rc);
    }
    res.verify_rc = tal_dstore_verify(g_store, g_fasta);
    if (res.verify_rc != 0 && !is_error(res.verify_rc)) fail_rc("verify", res.verify_rc);
    if (res.verify_rc == 0 &&
        (res.open_rc != 0 || (res.records <= MAX_VISITS && res.rebuilt != res.records)))
        fail("verify accepts a store whose records cannot be rebuilt");
    return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_input(data, size);
    return 0;
}

#ifndef TAL_LIBFUZZER

/* ---- built-in inputs: the tiny reductions whole, cut short and with bytes changed ---- */

#include "tiny_reduction.h"

static uint8_t *read_whole(const char *path, size_t *size, size_t extra)
{
    struct stat st;
    uint8_t *p;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) fail("cannot read a reduction");
    *size = (size_t)st.st_size;
    if (!(p = malloc(*size + extra + 1))) fail("out of memory");
    if (pread(fd, p, *size, 0) != (ssize_t)*size) fail("short read");
    close(fd);
    return p;
}

/* The store and its FASTA laid end to end, as a seed is. */
static uint8_t *seed_of(const char *deltas, const char *fasta, size_t *size, size_t *store_size)
{
    size_t fasta_size;
    uint8_t *f = read_whole(fasta, &fasta_size, 0);
    uint8_t *p = read_whole(deltas, store_size, fasta_size);
    memcpy(p + *store_size, f, fasta_size);
    *size = *store_size + fasta_size;
    free(f);
    return p;
}

static uint64_t rng(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int run_builtin(void)
{
    static const struct {
        const char *name, *text;
    } inputs[] = {{"protein", tiny_protein}, {"dna", tiny_dna}, {"single", tiny_single}};
    static const uint64_t odd[] = {0, 1, 7, 0x7fffffff, 0xffffffff, 1ull << 40, UINT64_MAX};
    uint64_t seed = 0xde17a5eedull;
    int count = 0;
    init();
    for (size_t s = 0; s < sizeof inputs / sizeof *inputs; s++) {
        char fasta[PATH_MAX + 64], deltas[PATH_MAX + 64];
        size_t size, store_size;
        uint8_t *seed_bytes, *work;
        result_t res;
        if (tiny_reduce(g_dir, inputs[s].name, inputs[s].text, fasta, deltas, sizeof fasta) != 0)
            fail("cannot reduce a tiny input");
        seed_bytes = seed_of(deltas, fasta, &size, &store_size);
        if (!(work = malloc(size))) fail("out of memory");

        /* whole: everything comes back */
        res = run_input(seed_bytes, size);
        if (res.open_rc != 0 || res.verify_rc != 0 || res.rebuilt != res.records ||
            res.records == 0)
            fail("a whole reduction does not read back");
        /* without its FASTA: opens, but nothing that needs a reference rebuilds */
        res = run_input(seed_bytes, store_size);
        if (res.open_rc != 0 || res.verify_rc == 0) fail("a store without its FASTA verifies");
        count += 2;

        /* cut short: in the header, the entries, the trailer; the FASTA cut short */
        {
            const size_t cuts[] = {0,
                                   8,
                                   FILE_SIZE_AT + 4,
                                   4095,
                                   4096,
                                   4100,
                                   store_size / 2,
                                   store_size - 9,
                                   store_size - 1,
                                   store_size + 1,
                                   size - 1};
            for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++, count++) {
                res = run_input(seed_bytes, cuts[c]);
                /* the FASTA too: its empty last reference was once not missed */
                if (res.verify_rc == 0) fail("a reduction cut short verifies");
            }
        }

        /* every header field set to odd values (the checksum then fails; open does not
         * check it, so the reader sees them) */
        for (size_t at = 8; at < 144; at += 8) {
            if (at == FILE_SIZE_AT) continue; /* that one is where the FASTA starts */
            for (size_t v = 0; v < sizeof odd / sizeof *odd; v++, count++) {
                memcpy(work, seed_bytes, size);
                memcpy(work + at, &odd[v], 8);
                res = run_input(work, size);
                if (memcmp(work, seed_bytes, size) && res.verify_rc == 0)
                    fail("verify accepts a store whose header changed");
            }
        }

        /* random bytes of the store changed, and of the FASTA */
        for (int i = 0; i < 64; i++, count++) {
            size_t span = i % 4 == 3 ? size : store_size;
            int changed = 0;
            memcpy(work, seed_bytes, size);
            for (int e = 1 + (int)(rng(&seed) % 4); e > 0; e--) {
                size_t at = (size_t)(rng(&seed) % span);
                if (at >= FILE_SIZE_AT && at < FILE_SIZE_AT + 8) continue;
                work[at] ^= (uint8_t)(1u << (rng(&seed) % 8));
                changed |= at < store_size;
            }
            res = run_input(work, size);
            if (changed && res.verify_rc == 0) fail("verify accepts a store whose bytes changed");
        }
        /* the same aimed at the entries (past the 4096-byte header), where the records are */
        for (int i = 0; i < 64 && store_size > 4096 + 8; i++, count++) {
            memcpy(work, seed_bytes, size);
            work[4096 + rng(&seed) % (store_size - 4096 - 8)] = (uint8_t)rng(&seed);
            run_input(work, size);
        }
        free(work);
        free(seed_bytes);
    }
    run_input((const uint8_t *)"TALDELTA", 8);
    count++;
    return count;
}

int main(int argc, char **argv) { return replay_main("fuzz_deltas", argc, argv, run_builtin); }

#endif
