/* Fuzz harness for the store reader and verifier: input bytes are (offset, value) edits to a
 * copy of a small valid store; open, find, record, lengths, a scan of every block (what
 * stats reads) and verify must never crash. Compiled with FUZZ_STORE_ZSTD
 * (fuzz_store_zstd.c) the store's residues are zstd chunks of 64 bytes: the chunk table
 * and the decoder get the edits. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "store/format_internal.h"
#include "replay.h"
#include "test_support.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/scan.h"
#include "talaria/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Input layout: byte 0 holds flags, then 5-byte edits: a little-endian u32 offset into
 * the store's files laid end to end (modulo their total size) and the byte to put there.
 *   FIX_META: recompute the meta file's own trailing checksum after the edits
 *   FIX_SECTIONS: also set every section's size and checksum to the edited file's
 *   TRUNCATE: the first edit cuts its file at the offset instead of writing a byte
 *   RANDOM_ACCESS: find and record in random-access mode (pread, not the mappings) */
enum { FIX_META = 1, FIX_SECTIONS = 2, TRUNCATE = 4, RANDOM_ACCESS = 8 };

static const char *const files[] = {
    "meta",     "headers",       "hdr_offsets", "seq_offsets",
    "residues", "checksums",     "keys",        "catalog.sqlite",
#ifdef FUZZ_STORE_ZSTD
    "chunks",   "header_chunks", /* format 1.3: no lengths section */
#else
    "lengths",
#endif
    "layout",
};
#define N_FILES (sizeof files / sizeof *files)

static const char fasta[] =
    ">sp|P12345|ALBU_HUMAN Serum albumin OS=Homo sapiens OX=9606 GN=ALB\n"
    "MKWVTFISLLFLFSSAYSRGVFRRDAHKSEVAHRFKDLGEENFKALVLIAFAQYLQQCPFEDHVKLVNEVTEFAK\nTCVADES\n"
    ">tr|Q9XYZ1|Q9XYZ1_MOUSE Uncharacterized OS=Mus musculus OX=10090\nMSTNPKPQRKTKRNTNRRPQ\n"
    ">plain_acc some description\nACDEFGHIKLMNPQRSTVWY\n"
    ">empty_seq\n"
    ">UniRef50_A0A0\tCluster: thing n=2 Tax=Bacteria TaxID=2\nmkvlaa*-\n"
    ">x|Y\nW\n"
    ">gi|123|ref|NP_000001.1| something\nMMMM\n"
    ">a||b\nKK\n"
    ">sp|X1|A one\nAA\n>tr|X1|B two\nCC\n>X1 primary\nDD\n"
    ">P99999 plain\nQQQ\n";
static const char *const accessions[] = {"sp|P12345|ALBU_HUMAN",
                                         "P12345",
                                         "tr|Q9XYZ1|Q9XYZ1_MOUSE",
                                         "Q9XYZ1",
                                         "plain_acc",
                                         "empty_seq",
                                         "UniRef50_A0A0",
                                         "x|Y",
                                         "Y",
                                         "gi|123|ref|NP_000001.1|",
                                         "123",
                                         "a||b",
                                         "sp|X1|A",
                                         "tr|X1|B",
                                         "X1",
                                         "P99999",
                                         "nothere",
                                         ""};
#define N_RECORDS 12u

typedef struct {
    uint8_t *data;
    size_t size;
} file_t;

static char g_dir[PATH_MAX], g_work[PATH_MAX + 16];
static file_t g_base[N_FILES];
static int g_ready;

static void cleanup(void)
{
    if (!g_ready) return;
    tal_test_rm_rf(g_dir);
    for (size_t i = 0; i < N_FILES; i++) free(g_base[i].data);
    g_ready = 0;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_store: %s\n", what);
    abort();
}

static void read_whole(const char *path, file_t *f)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) fail("cannot read the base store");
    f->size = (size_t)st.st_size;
    f->data = malloc(f->size ? f->size : 1);
    if (!f->data || pread(fd, f->data, f->size, 0) != (ssize_t)f->size) fail("short read");
    close(fd);
}

static void write_whole(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot write a store file");
    for (size_t done = 0; done < n;) {
        ssize_t w = write(fd, p + done, n - done);
        if (w <= 0) fail("write failed");
        done += (size_t)w;
    }
    close(fd);
}

/* Builds the reference store once. */
static void init(void)
{
    char path[PATH_MAX + 64], base[PATH_MAX + 16];
    tal_index_opt_t opt;
    if (g_ready) return;
    tal_log_set_level(TAL_LOG_QUIET);
    if (tal_test_mkdtemp(g_dir, sizeof g_dir, "fuzz-store") < 0) fail("mkdtemp failed");
    g_ready = 1;
    atexit(cleanup);
    snprintf(path, sizeof path, "%s/in.fa", g_dir);
    write_whole(path, (const uint8_t *)fasta, sizeof fasta - 1);
    snprintf(base, sizeof base, "%s/base", g_dir);
    tal_index_opt_init(&opt);
    opt.threads = 1;
#ifdef FUZZ_STORE_ZSTD
    opt.compress = TAL_COMPRESS_ZSTD;
    opt.chunk_size = 64;
#endif
    if (tal_store_build(path, base, &opt, NULL) != 0) fail("cannot build the reference store");
    for (size_t i = 0; i < N_FILES; i++) {
        snprintf(path, sizeof path, "%s/%s", base, files[i]);
        read_whole(path, &g_base[i]);
    }
    snprintf(g_work, sizeof g_work, "%s/work", g_dir);
    if (mkdir(g_work, 0755) != 0) fail("mkdir failed");
}

static uint64_t total_size(void)
{
    uint64_t t = 0;
    for (size_t i = 0; i < N_FILES; i++) t += g_base[i].size;
    return t;
}

/* Points *file and *pos at byte off of the files laid end to end. */
static void locate(uint64_t off, size_t *file, size_t *pos)
{
    for (size_t i = 0; i < N_FILES; i++) {
        if (off < g_base[i].size) {
            *file = i;
            *pos = (size_t)off;
            return;
        }
        off -= g_base[i].size;
    }
    *file = N_FILES - 1;
    *pos = 0;
}

static void fix_sections(file_t *w)
{
    file_t *m = &w[0];
    size_t room;
    uint32_t count;
    if (m->size < sizeof(tal_meta_disk_t) + 8) return;
    memcpy(&count, m->data + offsetof(tal_meta_disk_t, section_count), 4);
    room = (m->size - sizeof(tal_meta_disk_t) - 8) / sizeof(tal_section_disk_t);
    if (count > room) count = (uint32_t)room;
    for (uint32_t i = 0; i < count; i++) {
        tal_section_disk_t sec;
        uint8_t *at = m->data + sizeof(tal_meta_disk_t) + i * sizeof sec;
        memcpy(&sec, at, sizeof sec);
        for (size_t k = 1; k < N_FILES; k++) {
            if (strncmp(sec.file, files[k], sizeof sec.file) != 0) continue;
            sec.size = w[k].size;
            sec.checksum = XXH3_64bits(w[k].data, w[k].size);
            memcpy(at, &sec, sizeof sec);
            break;
        }
    }
}

static void fix_meta(file_t *w)
{
    uint64_t self;
    if (w[0].size < 8) return;
    self = XXH3_64bits(w[0].data, w[0].size - 8);
    memcpy(w[0].data + w[0].size - 8, &self, 8);
}

/* Reads every block and record the way stats and reduce do. */
static void scan_all(const tal_store_t *s)
{
    tal_scan_t *scan = NULL;
    tal_scan_opt_t opt;
    tal_scan_block_t b;
    int rc;
    tal_scan_opt_init(&opt);
    opt.threads = 1;
    opt.headers = 1;
    if ((rc = tal_scan_open(&scan, s, &opt)) != 0) {
        if (rc != TAL_EINPUT && rc != TAL_ENOMEM) fail("scan open gave an unexpected error");
        return;
    }
    while ((rc = tal_scan_next(scan, &b)) == 1) {
        volatile unsigned char sink = 0;
        for (size_t k = 0; k < b.len; k++) sink ^= (unsigned char)b.residues[k];
        for (uint64_t id = b.first_record; id < b.first_record + b.record_count; id++) {
            tal_record_t rec;
            int r = tal_scan_record(scan, &b, id, &rec);
            if (r == 0)
                for (size_t k = 0; k < rec.seq_len; k++) sink ^= (unsigned char)rec.seq[k];
            else if (r != TAL_EINPUT)
                fail("scan record gave an unexpected error");
        }
        (void)sink;
        tal_scan_release(scan, &b);
    }
    if (rc != 0 && rc != TAL_EINPUT && rc != TAL_EIO && rc != TAL_ENOMEM)
        fail("scan gave an unexpected error");
    tal_scan_close(scan);
}

/* Exercises the reader on the store at g_work; returns what verify said. */
static int exercise(int *open_rc, int *all_ok, int random_access)
{
    tal_store_t *s = NULL;
    int vrc;
    *all_ok = 0;
    *open_rc = tal_store_open(&s, g_work);
    if (*open_rc == 0 && random_access) tal_store_set_random_access(s, 1);
    if (*open_rc == 0) {
        tal_store_info_t info;
        const uint64_t *lengths = NULL;
        uint64_t sum = 0, n, ok = 0;
        tal_store_info(s, &info);
        n = info.records < 100000 ? info.records : 100000;
        for (size_t i = 0; i < sizeof accessions / sizeof *accessions; i++) {
            uint64_t id = UINT64_MAX;
            tal_record_t rec;
            int rc = tal_store_find(s, accessions[i], strlen(accessions[i]), &id);
            if (rc == 0) {
                if (id >= info.records) fail("find gave an id past the end");
                rc = tal_store_record(s, id, &rec);
                if (rc != 0 && rc != TAL_EINPUT) fail("record gave an unexpected error");
            } else if (rc != TAL_ENOTFOUND && rc != TAL_EINPUT) { /* 1.3: a damaged header chunk */
                fail("find gave an unexpected error");
            }
        }
        for (uint64_t id = 0; id < n; id++) {
            tal_record_t rec;
            int rc = tal_store_record(s, id, &rec);
            if (rc == 0) {
                volatile unsigned char sink = 0;
                /* touch every byte the record claims */
                for (size_t k = 0; k < rec.header_len; k++) sink ^= (unsigned char)rec.header[k];
                for (size_t k = 0; k < rec.seq_len; k++) sink ^= (unsigned char)rec.seq[k];
                (void)sink;
                ok++;
            } else if (rc != TAL_EINPUT) {
                fail("record gave an unexpected error");
            }
        }
        {
            tal_record_t rec;
            if (tal_store_record(s, info.records, &rec) != TAL_EINPUT)
                fail("a record past the end was accepted");
        }
        if (tal_store_lengths(s, &lengths) == 0)
            for (uint64_t id = 0; id < info.records; id++) sum += lengths[id];
        (void)sum;
        scan_all(s);
        *all_ok = ok == info.records;
        tal_store_close(s);
    } else if (s) {
        fail("open failed but gave a store");
    }
    vrc = tal_store_verify(g_work, 1);
    if (vrc != 0 && vrc != TAL_EINPUT && vrc != TAL_EIO && vrc != TAL_ENOMEM)
        fail("verify gave an unexpected error");
    return vrc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    file_t w[N_FILES];
    uint64_t total;
    unsigned flags = size ? data[0] : 0;
    int modified = 0, open_rc, all_ok, vrc;
    char path[PATH_MAX + 64];
    init();
    total = total_size();
    for (size_t i = 0; i < N_FILES; i++) {
        w[i].size = g_base[i].size;
        w[i].data = malloc(w[i].size ? w[i].size : 1);
        if (!w[i].data) fail("out of memory");
        memcpy(w[i].data, g_base[i].data, w[i].size);
    }
    for (size_t at = 1, k = 0; at + 5 <= size; at += 5, k++) {
        uint32_t off = (uint32_t)data[at] | (uint32_t)data[at + 1] << 8 |
                       (uint32_t)data[at + 2] << 16 | (uint32_t)data[at + 3] << 24;
        size_t file, pos;
        locate(off % total, &file, &pos);
        if (k == 0 && (flags & TRUNCATE)) {
            if (pos < w[file].size) w[file].size = pos;
        } else if (pos < w[file].size) {
            w[file].data[pos] = data[at + 4];
        }
    }
    for (size_t i = 0; i < N_FILES; i++)
        if (w[i].size != g_base[i].size || memcmp(w[i].data, g_base[i].data, w[i].size))
            modified = 1;
    if (flags & FIX_SECTIONS) fix_sections(w);
    if (flags & (FIX_META | FIX_SECTIONS)) fix_meta(w);
    for (size_t i = 0; i < N_FILES; i++) {
        snprintf(path, sizeof path, "%s/%s", g_work, files[i]);
        write_whole(path, w[i].data, w[i].size);
    }

    vrc = exercise(&open_rc, &all_ok, (flags & RANDOM_ACCESS) != 0);

    /* what can be said for sure */
    if (!modified && (open_rc != 0 || vrc != 0 || !all_ok)) fail("the unmodified store fails");
    if (modified && !(flags & (FIX_META | FIX_SECTIONS)) && vrc == 0)
        fail("verify accepts a store whose bytes changed");
    if (vrc == 0 && (open_rc != 0 || !all_ok))
        fail("verify accepts a store whose records cannot be read");

    for (size_t i = 0; i < N_FILES; i++) free(w[i].data);
    return 0;
}

#ifndef TAL_LIBFUZZER

/* ---- built-in inputs ----------------------------------------------------------------- */

typedef struct {
    uint8_t p[512];
    size_t len;
} input_t;

static void in_start(input_t *in, unsigned flags)
{
    in->p[0] = (uint8_t)flags;
    in->len = 1;
}

static void in_edit(input_t *in, uint64_t off, uint8_t value)
{
    if (in->len + 5 > sizeof in->p) return;
    for (int i = 0; i < 4; i++) in->p[in->len++] = (uint8_t)(off >> (8 * i));
    in->p[in->len++] = value;
}

/* Offset of byte pos of file k in the end-to-end layout. */
static uint64_t at(size_t k, uint64_t pos)
{
    uint64_t off = 0;
    for (size_t i = 0; i < k; i++) off += g_base[i].size;
    return off + pos;
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
    input_t in;
    uint64_t seed = 0x5eed5707e;
    int count = 0;
    const size_t meta_fields[] = {
        offsetof(tal_meta_disk_t, magic),
        offsetof(tal_meta_disk_t, version_major),
        offsetof(tal_meta_disk_t, kind),
        offsetof(tal_meta_disk_t, alphabet),
        offsetof(tal_meta_disk_t, record_count),
        offsetof(tal_meta_disk_t, record_count) + 3,
        offsetof(tal_meta_disk_t, residue_count),
        offsetof(tal_meta_disk_t, header_bytes),
        offsetof(tal_meta_disk_t, min_length),
        offsetof(tal_meta_disk_t, key_count),
        offsetof(tal_meta_disk_t, section_count),
        offsetof(tal_meta_disk_t, key_slots),
        offsetof(tal_meta_disk_t, key_slots) + 2,
        sizeof(tal_meta_disk_t) + 0,
        sizeof(tal_meta_disk_t) + 4,
        sizeof(tal_meta_disk_t) + 8,
        sizeof(tal_meta_disk_t) + 40,
        sizeof(tal_meta_disk_t) + 64 + 0,
        sizeof(tal_meta_disk_t) + 64 * 7 + 0,
        sizeof(tal_meta_disk_t) + 64 * 7 + 8,
    };

    init();
    /* no edits: everything must work */
    LLVMFuzzerTestOneInput(NULL, 0);
    in_start(&in, FIX_META | FIX_SECTIONS);
    LLVMFuzzerTestOneInput(in.p, in.len);
    count += 2;
    /* one byte in the middle and at the start of each file, with each fix-up */
    for (size_t k = 0; k < N_FILES; k++) {
        for (unsigned flags = 0; flags < 16; flags++) {
            if (flags & TRUNCATE) continue;
            count++;
            in_start(&in, flags);
            in_edit(&in, at(k, g_base[k].size / 2), (uint8_t)~g_base[k].data[g_base[k].size / 2]);
            in_edit(&in, at(k, 0), 0xff);
            LLVMFuzzerTestOneInput(in.p, in.len);
        }
        /* cut the file short */
        in_start(&in, TRUNCATE | FIX_SECTIONS);
        in_edit(&in, at(k, g_base[k].size / 3), 0);
        LLVMFuzzerTestOneInput(in.p, in.len);
        count++;
    }
    /* meta fields set to odd values, with the checksums made to match */
    for (size_t f = 0; f < sizeof meta_fields / sizeof *meta_fields; f++) {
        static const uint8_t values[] = {0x00, 0x01, 0x7f, 0xff};
        for (size_t v = 0; v < sizeof values; v++, count++) {
            in_start(&in, FIX_META | FIX_SECTIONS);
            in_edit(&in, at(0, meta_fields[f]), values[v]);
            LLVMFuzzerTestOneInput(in.p, in.len);
        }
    }
    /* offsets and keys rewritten behind consistent checksums */
    for (size_t k = 2; k <= 7; k++) {
        for (int j = 0; j < 3; j++, count++) {
            in_start(&in, FIX_META | FIX_SECTIONS);
            for (int e = 0; e < 4; e++)
                in_edit(&in, at(k, rng(&seed) % g_base[k].size), (uint8_t)rng(&seed));
            LLVMFuzzerTestOneInput(in.p, in.len);
        }
    }
    /* random inputs: raw bytes, then edits aimed at the small files with each fix-up */
    for (int i = 0; i < 48; i++, count++) {
        size_t n = (size_t)(rng(&seed) % 200);
        uint8_t buf[200];
        for (size_t j = 0; j < n; j++) buf[j] = (uint8_t)rng(&seed);
        LLVMFuzzerTestOneInput(buf, n);
    }
    for (int i = 0; i < 200; i++, count++) {
        size_t k = (size_t)(rng(&seed) % (N_FILES - 2));
        in_start(&in, (unsigned)(rng(&seed) % 16));
        for (int e = (int)(rng(&seed) % 6); e >= 0; e--)
            in_edit(&in, at(k, rng(&seed) % g_base[k].size), (uint8_t)rng(&seed));
        LLVMFuzzerTestOneInput(in.p, in.len);
    }
    return count;
}

int main(int argc, char **argv) { return replay_main("fuzz_store", argc, argv, run_builtin); }

#endif
