/* Unit tests for the small shared helpers: tal_parse_size, tal_format_size,
 * tal_strerror/tal_exit_code, and the monotonic clock / peak-RSS helpers. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/util.h"
#include "test_support.h"
#include "util/files_internal.h"

#include <fcntl.h>
#include <stdlib.h>

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)
#define TIB (1024ull * GIB)

static void expect_size(const char *text, uint64_t want)
{
    uint64_t got = 0xdeadbeefull;
    int rc = tal_parse_size(text, &got);
    if (rc != 0 || got != want)
        print_error("tal_parse_size(\"%s\") gave rc=%d bytes=%llu, want 0 and %llu\n", text, rc,
                    (unsigned long long)got, (unsigned long long)want);
    assert_int_equal(rc, 0);
    assert_true(got == want);
}

static void expect_reject(const char *text)
{
    uint64_t got = 12345;
    int rc = tal_parse_size(text, &got);
    if (rc != TAL_EUSAGE)
        print_error("tal_parse_size(\"%s\") gave rc=%d bytes=%llu, want TAL_EUSAGE\n", text, rc,
                    (unsigned long long)got);
    assert_int_equal(rc, TAL_EUSAGE);
    /* a rejected size leaves the output alone */
    assert_true(got == 12345);
}

static void test_parse_size_plain_and_units(void **state)
{
    (void)state;
    expect_size("512", 512);
    expect_size("1", 1);
    expect_size("64K", 64 * KIB);
    expect_size("64k", 64 * KIB);
    expect_size("512M", 512 * MIB);
    expect_size("4G", 4 * GIB);
    expect_size("2T", 2 * TIB);
    expect_size("1T", TIB);
    expect_size("1024K", MIB);
}

static void test_parse_size_fractions(void **state)
{
    (void)state;
    expect_size("1.5G", 3 * GIB / 2);
    expect_size("0.5K", 512);
    expect_size("2.25M", 9 * MIB / 4);
    expect_size("1.5T", 3 * TIB / 2);
}

static void test_parse_size_suffix_forms(void **state)
{
    (void)state;
    expect_size("4GiB", 4 * GIB);
    expect_size("4GB", 4 * GIB);
    expect_size("4gib", 4 * GIB);
    expect_size("64KiB", 64 * KIB);
    expect_size("3MiB", 3 * MIB);
}

static void test_parse_size_rejects(void **state)
{
    (void)state;
    expect_reject("");
    expect_reject("0");
    expect_reject("0K");
    expect_reject("0.0G");
    expect_reject("-1");
    expect_reject("-1G");
    expect_reject("4X");
    expect_reject("G");
    expect_reject("K");
    expect_reject("1.5.5G");
    expect_reject("4 G");
    expect_reject(" 4G");
    expect_reject("4G ");
    expect_reject("4GiBB");
    expect_reject("4GX");
    expect_reject("4KM");
    expect_reject("abc");
    expect_reject(".");
    expect_reject("0.1"); /* less than one byte */
    expect_reject("1e400");
}

static void test_parse_size_null(void **state)
{
    uint64_t got = 7;
    (void)state;
    assert_int_equal(tal_parse_size(NULL, &got), TAL_EUSAGE);
    assert_true(got == 7);
}

static void test_parse_size_overflow_rejected(void **state)
{
    (void)state;
    /* 2^24 TiB = 2^64 bytes does not fit in a uint64_t */
    expect_reject("16777216T");
    expect_reject("99999999999T");
    expect_reject("99999999999999999999999");
}

/* Sizes between 2^63 and 2^64 fit in a uint64_t, so they must either parse exactly or
 * be rejected; they must not come back as some other number. */
static void test_parse_size_large_values_exact(void **state)
{
    static const char *texts[] = {"10000000T", "16777215T", "12000000000000000000"};
    (void)state;
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        uint64_t got = 0;
        int rc = tal_parse_size(texts[i], &got);
        if (rc == 0) {
            uint64_t want = i == 0   ? 10000000ull * TIB
                            : i == 1 ? 16777215ull * TIB
                                     : 12000000000000000000ull;
            if (got != want)
                print_error("tal_parse_size(\"%s\") = %llu, want %llu (or TAL_EUSAGE)\n", texts[i],
                            (unsigned long long)got, (unsigned long long)want);
            assert_true(got == want);
        } else {
            assert_int_equal(rc, TAL_EUSAGE);
        }
    }
    /* just below 2^63 still parses exactly */
    expect_size("8388607T", 8388607ull * TIB);
}

/* The header promises TAL_EUSAGE for anything but the listed forms; strtod's
 * hexadecimal and exponent syntaxes are not among them. */
static void test_parse_size_rejects_strtod_extras(void **state)
{
    (void)state;
    expect_reject("0x10");
    expect_reject("0x1p4");
    expect_reject("1e3");
    expect_reject("1E3K");
}

static void expect_format(uint64_t bytes, const char *want)
{
    char buf[64];
    const char *got;
    memset(buf, 'x', sizeof buf);
    got = tal_format_size(bytes, buf, sizeof buf);
    assert_ptr_equal(got, buf);
    assert_string_equal(got, want);
}

static void test_format_size(void **state)
{
    (void)state;
    expect_format(0, "0 B");
    expect_format(1, "1 B");
    expect_format(1023, "1023 B");
    expect_format(1024, "1.0 KiB");
    expect_format(1536, "1.5 KiB");
    expect_format(MIB, "1.0 MiB");
    expect_format(3 * GIB / 2, "1.5 GiB");
    expect_format(4 * GIB, "4.0 GiB");
    expect_format(2 * TIB, "2.0 TiB");
    expect_format(1024 * TIB, "1.0 PiB");
    /* PiB is the largest unit */
    expect_format(1024 * 1024 * TIB, "1024.0 PiB");
    expect_format(UINT64_MAX, "16384.0 PiB");
}

static void test_format_size_small_buffer(void **state)
{
    char buf[8];
    (void)state;
    memset(buf, 'x', sizeof buf);
    tal_format_size(3 * GIB / 2, buf, 4);
    assert_string_equal(buf, "1.5");
    assert_int_equal(buf[4], 'x'); /* nothing written past buf_len */
}

static void test_format_parse_round_trip(void **state)
{
    static const char *sizes[] = {"1.5G", "64K", "2T", "512M"};
    (void)state;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char buf[32], text[32];
        uint64_t a = 0, b = 0;
        assert_int_equal(tal_parse_size(sizes[i], &a), 0);
        tal_format_size(a, buf, sizeof buf);
        /* "1.5 GiB" -> "1.5GiB" */
        {
            size_t k = 0;
            for (const char *p = buf; *p && k + 1 < sizeof text; p++)
                if (*p != ' ') text[k++] = *p;
            text[k] = '\0';
        }
        assert_int_equal(tal_parse_size(text, &b), 0);
        assert_true(a == b);
    }
}

static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(tal_exit_code(TAL_OK), 0);
    assert_int_equal(tal_exit_code(TAL_EUSAGE), 2);
    assert_int_equal(tal_exit_code(TAL_EINPUT), 3);
    assert_int_equal(tal_exit_code(TAL_ENOTFOUND), 3);
    assert_int_equal(tal_exit_code(TAL_EMEMCAP), 4);
    assert_int_equal(tal_exit_code(TAL_EIO), 1);
    assert_int_equal(tal_exit_code(TAL_ENOMEM), 1);
    assert_int_equal(tal_exit_code(TAL_EEXIST), 1);
    assert_int_equal(tal_exit_code(-1000), 1);
}

static void test_strerror(void **state)
{
    static const int codes[] = {TAL_OK,     TAL_EIO,    TAL_EUSAGE,    TAL_EINPUT, TAL_EMEMCAP,
                                TAL_ENOMEM, TAL_EEXIST, TAL_ENOTFOUND, TAL_EINTR};
    const size_t n = sizeof codes / sizeof *codes;
    const char *unknown = tal_strerror(-1000);
    (void)state;
    assert_non_null(unknown);
    assert_string_equal(tal_strerror(TAL_OK), "success");
    assert_string_equal(tal_strerror(TAL_EINPUT), "invalid input");
    assert_string_equal(tal_strerror(TAL_ENOTFOUND), "not found");
    assert_string_equal(tal_strerror(TAL_EMEMCAP), "memory cap too small");
    assert_string_equal(tal_strerror(TAL_EUSAGE), "invalid usage");
    assert_string_equal(tal_strerror(TAL_EIO), "I/O error");
    /* every known code has its own non-empty text, different from the unknown one */
    for (size_t i = 0; i < n; i++) {
        const char *a = tal_strerror(codes[i]);
        assert_non_null(a);
        assert_true(strlen(a) > 0);
        assert_string_not_equal(a, unknown);
        for (size_t j = i + 1; j < n; j++) assert_string_not_equal(a, tal_strerror(codes[j]));
    }
    assert_string_equal(tal_strerror(1), unknown);
}

static void test_now_seconds_monotonic(void **state)
{
    double a, b;
    (void)state;
    a = tal_now_seconds();
    b = tal_now_seconds();
    assert_true(a > 0);
    assert_true(b >= a);
}

static void test_peak_rss(void **state)
{
    uint64_t rss;
    (void)state;
    rss = tal_peak_rss_bytes();
    /* on Linux VmHWM is available; a running process uses at least 64 KiB */
    if (access("/proc/self/status", R_OK) != 0) skip();
    assert_true(rss >= 64 * KIB);
    assert_true(rss % 1024 == 0);
}

/* Both paths (short records, long blocks with word loads) agree with a plain count,
 * and counts accumulate across calls. */
static void test_count_bytes(void **state)
{
    enum { LEN = 70001 };
    unsigned char *data = malloc(LEN);
    uint64_t want[256], got[256];
    unsigned seed = 3;
    (void)state;
    assert_non_null(data);
    memset(want, 0, sizeof want);
    memset(got, 0, sizeof got);
    for (size_t i = 0; i < LEN; i++) {
        /* long runs of one byte, then noise: the four-table path must not mix them up */
        data[i] = i < 20000 ? 'L' : (unsigned char)(rand_r(&seed) & 0xff);
        want[data[i]] += 2;
    }
    tal_count_bytes(got, data, LEN);      /* the word path, with an odd tail */
    for (size_t i = 0; i < LEN; i += 500) /* the short path */
        tal_count_bytes(got, data + i, LEN - i < 500 ? LEN - i : 500);
    assert_memory_equal(got, want, sizeof want);
    tal_count_bytes(got, data, 0);
    assert_memory_equal(got, want, sizeof want);
    free(data);
}

static void test_log_level(void **state)
{
    tal_log_level_t old = tal_log_get_level();
    (void)state;
    tal_log_set_level(TAL_LOG_QUIET);
    assert_int_equal(tal_log_get_level(), TAL_LOG_QUIET);
    tal_log_error("this message must not appear (%d)", 1);
    tal_log_set_level(TAL_LOG_DEBUG);
    assert_int_equal(tal_log_get_level(), TAL_LOG_DEBUG);
    tal_log_set_level(old);
    assert_int_equal(tal_log_get_level(), old);
}

/* Writes sizes that straddle buffers in every way through a writer thread, with and
 * without O_DIRECT, and checks the file's bytes, the returned checksum and size, and
 * reading back both flushed and still-buffered bytes. */
static void wfile_round_trip(int use_writer, int direct)
{
    enum { TOTAL = 3 * 1024 * 1024 + 123 };
    char dir[4096], path[4200];
    unsigned char *data = malloc(TOTAL), *back = malloc(TOTAL), probe[300];
    tal_atomic_dir_t ad;
    tal_wfile_t w;
    tal_writer_t *writer = NULL;
    uint64_t sum = 0, size = 0;
    size_t off = 0, step = 1;
    FILE *f;
    assert_non_null(data);
    assert_non_null(back);
    for (size_t i = 0; i < TOTAL; i++) data[i] = (unsigned char)(i * 2654435761u >> 13);
    assert_int_equal(tal_test_mkdtemp(dir, sizeof dir, "wfile"), 0);
    snprintf(path, sizeof path, "%s/out", dir);
    assert_int_equal(tal_atomic_dir_begin(&ad, path, 0, "meta"), 0);
    assert_int_equal(tal_wfile_open(&w, &ad, "data", 64 * 1024 + 5), 0);
    if (use_writer) {
        assert_int_equal(tal_writer_start(&writer), 0);
        assert_int_equal(tal_wfile_use_writer(&w, writer, direct), 0);
    } else if (direct) {
        tal_wfile_direct(&w);
    }
    while (off < TOTAL) {
        size_t n = step;
        if (n > TOTAL - off) n = TOTAL - off;
        assert_int_equal(tal_wfile_write(&w, data + off, n), 0);
        off += n;
        /* 1, 3, 9, ... bytes, then one write bigger than the buffer */
        step = step > 200000 ? 7 : step * 3;
        if (off > 1000 && off < 1100) {
            assert_int_equal(tal_wfile_pread(&w, 10, probe, sizeof probe), 0);
            assert_memory_equal(probe, data + 10, sizeof probe);
        }
    }
    assert_int_equal(tal_wfile_pread(&w, 70000, probe, sizeof probe), 0);
    assert_memory_equal(probe, data + 70000, sizeof probe);
    assert_int_equal(tal_wfile_pread(&w, TOTAL - sizeof probe, probe, sizeof probe), 0);
    assert_memory_equal(probe, data + TOTAL - sizeof probe, sizeof probe);
    assert_int_equal(tal_wfile_finish(&w, &sum, &size), 0);
    tal_writer_stop(writer);
    assert_true(size == TOTAL);
    assert_true(sum == XXH3_64bits(data, TOTAL));
    snprintf(path, sizeof path, "%s/data", ad.tmp_path);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(back, 1, TOTAL, f), TOTAL);
    assert_int_equal(fgetc(f), EOF);
    fclose(f);
    assert_memory_equal(back, data, TOTAL);
    tal_atomic_dir_abort(&ad);
    tal_test_rm_rf(dir);
    free(data);
    free(back);
}

static void test_wfile_buffered(void **state)
{
    (void)state;
    wfile_round_trip(0, 0);
}

static void test_wfile_writer_thread(void **state)
{
    (void)state;
    wfile_round_trip(1, 0);
}

static void test_wfile_direct_io(void **state)
{
    (void)state;
    wfile_round_trip(1, 1);
    wfile_round_trip(0, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size_plain_and_units),
        cmocka_unit_test(test_parse_size_fractions),
        cmocka_unit_test(test_parse_size_suffix_forms),
        cmocka_unit_test(test_parse_size_rejects),
        cmocka_unit_test(test_parse_size_null),
        cmocka_unit_test(test_parse_size_overflow_rejected),
        cmocka_unit_test(test_parse_size_large_values_exact),
        cmocka_unit_test(test_parse_size_rejects_strtod_extras),
        cmocka_unit_test(test_format_size),
        cmocka_unit_test(test_format_size_small_buffer),
        cmocka_unit_test(test_format_parse_round_trip),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_now_seconds_monotonic),
        cmocka_unit_test(test_peak_rss),
        cmocka_unit_test(test_log_level),
        cmocka_unit_test(test_count_bytes),
        cmocka_unit_test(test_wfile_buffered),
        cmocka_unit_test(test_wfile_writer_thread),
        cmocka_unit_test(test_wfile_direct_io),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
