/* Fuzz harness for the FASTA reader: any bytes (plain, gzip, zstd or lz4 by magic) are read
 * to the end with and without read-ahead; both must agree and every record must be valid. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#include "replay.h"
#include "test_support.h"
#include "talaria/error.h"
#include "talaria/fasta.h"
#include "talaria/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[PATH_MAX];
static char g_path[PATH_MAX + 16];
static int g_ready;

static void cleanup(void)
{
    if (!g_ready) return;
    unlink(g_path);
    rmdir(g_dir);
    g_ready = 0;
}

static void init(void)
{
    if (g_ready) return;
    if (tal_test_mkdtemp(g_dir, sizeof g_dir, "fuzz-fasta") < 0) {
        perror("mkdtemp");
        abort();
    }
    snprintf(g_path, sizeof g_path, "%s/input", g_dir);
    g_ready = 1;
    atexit(cleanup);
    tal_log_set_level(TAL_LOG_QUIET);
}

static void die(const char *what, int read_ahead)
{
    fprintf(stderr, "fuzz_fasta: invariant broken (read_ahead %d): %s\n", read_ahead, what);
    abort();
}

typedef struct {
    int open_rc, rc;
    uint64_t records, hash;
} result_t;

static result_t parse(const uint8_t *data, size_t size, int read_ahead)
{
    tal_fasta_reader_t *r = NULL;
    tal_fasta_opt_t opt;
    tal_fasta_record_t rec;
    result_t res;
    uint64_t last_line = 0, newlines = 0;
    memset(&res, 0, sizeof res);
    for (size_t i = 0; i < size; i++) newlines += data[i] == '\n';
    tal_fasta_opt_init(&opt);
    opt.read_ahead = read_ahead;
    res.open_rc = tal_fasta_open(&r, g_path, &opt);
    if (res.open_rc < 0) {
        if (r) die("open failed but gave a reader", read_ahead);
        if (res.open_rc != TAL_EINPUT && res.open_rc != TAL_EIO && res.open_rc != TAL_ENOMEM)
            die("unexpected error from tal_fasta_open", read_ahead);
        return res;
    }
    while ((res.rc = tal_fasta_next(r, &rec)) > 0) {
        if (res.rc != 1) die("tal_fasta_next returned a positive value other than 1", read_ahead);
        if (rec.index != res.records) die("record index out of sequence", read_ahead);
        if (rec.header_len == 0) die("empty header returned", read_ahead);
        if (rec.line <= last_line || rec.line < 1) die("line numbers do not increase", read_ahead);
        last_line = rec.line;
        for (size_t i = 0; i < rec.header_len; i++) {
            unsigned char c = (unsigned char)rec.header[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f) die("control byte in a header", read_ahead);
        }
        for (size_t i = 0; i < rec.seq_len; i++)
            if (!tal_is_residue((unsigned char)rec.seq[i]))
                die("non-residue in a sequence", read_ahead);
        res.hash = XXH3_64bits_withSeed(rec.header, rec.header_len, res.hash ^ rec.line);
        res.hash = XXH3_64bits_withSeed(rec.seq, rec.seq_len, res.hash + rec.seq_len);
        res.records++;
    }
    if (res.rc < 0 && res.rc != TAL_EINPUT && res.rc != TAL_EIO && res.rc != TAL_ENOMEM)
        die("unexpected error code from tal_fasta_next", read_ahead);
    if (tal_fasta_next(r, &rec) != res.rc) die("the end or error is not sticky", read_ahead);
    if (res.rc == 0 && res.records && !strcmp(tal_fasta_format(r), "plain") &&
        last_line > newlines + 1)
        die("a line number past the end of the input", read_ahead);
    if (tal_fasta_stored_size(r) != size) die("stored size differs from the file size", read_ahead);
    if (res.rc == 0 && tal_fasta_stored_hash(r) != XXH3_64bits(data, size))
        die("stored hash differs from the hash of the file", read_ahead);
    tal_fasta_close(r);
    return res;
}

/* Both read-ahead modes over one input; they must agree. */
static result_t run_input(const uint8_t *data, size_t size)
{
    result_t a, b;
    int fd;
    init();
    fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(g_path);
        abort();
    }
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            perror("write");
            abort();
        }
        done += (size_t)n;
    }
    close(fd);
    a = parse(data, size, 0);
    b = parse(data, size, 1);
    if (a.open_rc != b.open_rc || a.rc != b.rc || a.records != b.records || a.hash != b.hash) {
        fprintf(
            stderr,
            "fuzz_fasta: read_ahead 0 and 1 disagree: open %d/%d, rc %d/%d, records %llu/%llu\n",
            a.open_rc, b.open_rc, a.rc, b.rc, (unsigned long long)a.records,
            (unsigned long long)b.records);
        abort();
    }
    return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_input(data, size);
    return 0;
}

#ifndef TAL_LIBFUZZER

/* ---- built-in inputs ----------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bytes_t;

static void put(bytes_t *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_str(bytes_t *b, const char *s) { put(b, s, strlen(s)); }

static void put_u8(bytes_t *b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    put(b, &c, 1);
}

static void put_le(bytes_t *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) put_u8(b, (unsigned)(v >> (8 * i)) & 0xff);
}

static uint64_t rng(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* A gzip member of stored (uncompressed) deflate blocks. */
static void gzip_stored(bytes_t *out, const uint8_t *p, size_t n)
{
    static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    size_t i = 0;
    put(out, head, sizeof head);
    do {
        size_t len = n - i > 65535 ? 65535 : n - i;
        put_u8(out, i + len == n ? 1 : 0); /* BFINAL, BTYPE 00 */
        put_le(out, len, 2);
        put_le(out, ~len & 0xffff, 2);
        put(out, p + i, len);
        i += len;
    } while (i < n);
    put_le(out, crc32_ieee(p, n), 4);
    put_le(out, n & 0xffffffffu, 4);
}

/* A zstd frame of raw blocks (128 KiB window, no checksum). */
static void zstd_raw(bytes_t *out, const uint8_t *p, size_t n)
{
    size_t i = 0;
    put_le(out, 0xfd2fb528u, 4);
    put_u8(out, 0x00);   /* FHD: no single segment, no checksum, no size */
    put_u8(out, 7 << 3); /* window 2^17 */
    do {
        size_t len = n - i > 65536 ? 65536 : n - i;
        uint32_t hdr = (uint32_t)(len << 3) | (i + len == n ? 1u : 0u); /* Raw_Block = 0 */
        put_le(out, hdr, 3);
        put(out, p + i, len);
        i += len;
    } while (i < n);
}

/* An lz4 frame of uncompressed blocks (64 KiB maximum). */
static void lz4_raw(bytes_t *out, const uint8_t *p, size_t n)
{
    uint8_t desc[2] = {0x60, 0x40};
    put_le(out, 0x184d2204u, 4);
    put(out, desc, 2);
    put_u8(out, (XXH32(desc, 2, 0) >> 8) & 0xff);
    for (size_t i = 0; i < n;) {
        size_t len = n - i > 65536 ? 65536 : n - i;
        put_le(out, (uint32_t)len | 0x80000000u, 4);
        put(out, p + i, len);
        i += len;
    }
    put_le(out, 0, 4);
}

static const char *const texts[] = {
    ">r1 first record\nACGT\nACG\n>r2\nMKV\nLLA\n",
    ">a one\r\nAC\r\nGT\r\n\r\n>b\r\nMM\r\n",
    "\n\n  \n>a\nAC\n\nGT\n\n>b\nTT\n\n",
    ">p\nacgtMKV*\n--ac\n>e\n>f\nW",
    ">h\twith tab\nA\n>\xc3\xa9t\xc3\xa9 utf8\nC\n",
    "hello\n>a\nAC\n",
    ">a\nAC1GT\n",
    ">a\nAC GT\n",
    ">a\nAC\n>\nGT\n",
    ">",
    ">a\nAC\rGT\n",
    ">a b\x01\nAC\n",
    ">a\nACGT\r",
    ">a\nAC>GT\n>b\n",
    "BZh91AY&SY",
    "\xfd"
    "7zXZ\0\0",
};

static void run_one(const uint8_t *p, size_t n) { LLVMFuzzerTestOneInput(p, n); }

static int run_builtin(void)
{
    const char *valid = texts[0];
    const size_t vlen = strlen(valid);
    uint64_t seed = 0x7a1a71a5eedull;
    bytes_t b = {0};
    int count = 0;

    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++, count++)
        run_one((const uint8_t *)texts[i], strlen(texts[i]));
    run_one((const uint8_t *)"", 0);
    run_one((const uint8_t *)">a\nAC\0GT\n", 9);
    count += 2;

    /* compressed: whole, two members/frames, cut short, with trailing bytes */
    for (int kind = 0; kind < 3; kind++) {
        void (*wrap)(bytes_t *, const uint8_t *, size_t) = kind == 0   ? gzip_stored
                                                           : kind == 1 ? zstd_raw
                                                                       : lz4_raw;
        result_t plain = run_input((const uint8_t *)valid, vlen), packed;
        b.len = 0;
        wrap(&b, (const uint8_t *)valid, vlen);
        packed = run_input(b.p, b.len);
        /* the generated frames decode to the same records as the plain text */
        if (packed.rc != 0 || packed.records != plain.records || packed.hash != plain.hash) {
            fprintf(stderr, "fuzz_fasta: compressed input %d does not match the plain text\n",
                    kind);
            abort();
        }
        run_one(b.p, b.len - 1);
        run_one(b.p, b.len / 2);
        run_one(b.p, 4);
        wrap(&b, (const uint8_t *)">z\nWW\n", 6);
        run_one(b.p, b.len);
        put(&b, "\0\0\0\0\0\0\0\0", 8);
        run_one(b.p, b.len);
        put_str(&b, "trailing garbage");
        run_one(b.p, b.len);
        count += 7;
    }

    /* random bytes */
    for (int i = 0; i < 8; i++, count++) {
        size_t n = (size_t)(rng(&seed) % 4096) + 1;
        b.len = 0;
        for (size_t j = 0; j < n; j++) put_u8(&b, (unsigned)rng(&seed) & 0xff);
        if (i == 0 && n >= 2) memcpy(b.p, "\x1f\x8b", 2);
        if (i == 1 && n >= 4) memcpy(b.p, "\x28\xb5\x2f\xfd", 4);
        if (i == 2 && n >= 4) memcpy(b.p, "\x04\x22\x4d\x18", 4);
        run_one(b.p, b.len);
    }
    /* random text from FASTA-like bytes */
    for (int i = 0; i < 8; i++, count++) {
        static const char alphabet[] = ">>ACGTacgtMKV*-\n\n\n\r \t1";
        size_t n = (size_t)(rng(&seed) % 2048) + 1;
        b.len = 0;
        if (i % 2 == 0) put_u8(&b, '>');
        for (size_t j = 0; j < n; j++)
            put_u8(&b, (unsigned char)alphabet[rng(&seed) % (sizeof alphabet - 1)]);
        run_one(b.p, b.len);
    }
    /* valid text with a few bytes changed */
    for (int i = 0; i < 8; i++, count++) {
        b.len = 0;
        for (int k = 0; k < 20; k++) put(&b, valid, vlen);
        for (int k = 0; k < 3; k++) b.p[rng(&seed) % b.len] = (uint8_t)rng(&seed);
        run_one(b.p, b.len);
    }
    /* more than one 4 MiB block: a long line, then short records */
    {
        const size_t big = (4u << 20) + 1000;
        b.len = 0;
        put_str(&b, ">long\n");
        while (b.len < big)
            put_str(&b, "ACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACG\n");
        for (int k = 0; k < 100; k++) put_str(&b, ">s\r\nMKV\r\n");
        {
            result_t plain = run_input(b.p, b.len);
            bytes_t z = {0};
            if (plain.rc != 0 || plain.records != 101) {
                fprintf(stderr, "fuzz_fasta: the long input does not parse\n");
                abort();
            }
            for (int kind = 0; kind < 3; kind++, count++) {
                result_t packed;
                z.len = 0;
                (kind == 0 ? gzip_stored : kind == 1 ? zstd_raw : lz4_raw)(&z, b.p, b.len);
                packed = run_input(z.p, z.len);
                if (packed.rc != 0 || packed.records != plain.records ||
                    packed.hash != plain.hash) {
                    fprintf(stderr, "fuzz_fasta: compressed long input %d differs\n", kind);
                    abort();
                }
            }
            free(z.p);
        }
        count++;
    }
    free(b.p);
    return count;
}

int main(int argc, char **argv) { return replay_main("fuzz_fasta", argc, argv, run_builtin); }

#endif
