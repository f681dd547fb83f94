/* Unit tests for the external sorter: tal_sort_records against qsort, the in-memory path,
 * spilled runs merged in one pass and in several, the memory budget, spill directories
 * that do not work, a file size limit standing in for a full disk, and usage errors. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "test_support.h"
#include "mem/sorter_internal.h"
#include "talaria/error.h"
#include "talaria/mem.h"

#define MIB        ((uint64_t)1 << 20)
#define KIB        ((uint64_t)1 << 10)
#define MAX_RECORD 64
#define WORDS(rs)  ((rs) / 8)
/* records handed to tal_sorter_add at once: odd, so batches straddle buffer ends */
#define BATCH      12347

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t mix64(uint64_t x)
{
    uint64_t state = x;
    return splitmix64(&state);
}

/* ---- records ----
 * A record is its key, a second word that orders equal keys (records of 16 bytes or more)
 * and payload words derived from both, so a record torn apart shows. */

typedef struct {
    uint64_t key, tie;
} sort_pair_t;

static uint64_t payload_word(uint64_t key, uint64_t tie, size_t w)
{
    return mix64(key ^ mix64(tie + w));
}

static void make_record(uint64_t *rec, size_t rs, sort_pair_t pair)
{
    rec[0] = pair.key;
    if (rs >= 16) rec[1] = pair.tie;
    for (size_t w = 2; w < WORDS(rs); w++) rec[w] = payload_word(pair.key, pair.tie, w);
}

/* The key and (16 bytes or more) the second word of record i; tie 0 for 8-byte records. */
static sort_pair_t record_pair(const void *records, size_t i, size_t rs)
{
    sort_pair_t pair = {0, 0};
    memcpy(&pair.key, (const char *)records + i * rs, 8);
    if (rs >= 16) memcpy(&pair.tie, (const char *)records + i * rs + 8, 8);
    return pair;
}

static void check_record_whole(const void *records, size_t i, size_t rs)
{
    uint64_t rec[MAX_RECORD / 8];
    memcpy(rec, (const char *)records + i * rs, rs);
    for (size_t w = 2; w < WORDS(rs); w++) assert_true(rec[w] == payload_word(rec[0], rec[1], w));
}

static int pair_less(sort_pair_t a, sort_pair_t b)
{
    return a.key < b.key || (a.key == b.key && a.tie < b.tie);
}

static int cmp_pair(const void *a, const void *b)
{
    sort_pair_t x = *(const sort_pair_t *)a, y = *(const sort_pair_t *)b;
    return pair_less(y, x) - pair_less(x, y);
}

/* The record has the reference's key, and for 16 bytes or more its second word. */
static int pair_matches(sort_pair_t got, sort_pair_t want, size_t rs)
{
    return got.key == want.key && (rs < 16 || got.tie == want.tie);
}

/* ---- key patterns ---- */

typedef enum {
    KEYS_RANDOM, /* full 64-bit, with 0, UINT64_MAX and 2^63 mixed in */
    KEYS_FEW,    /* 37 distinct values spread over all bytes: many duplicates */
    KEYS_SORTED,
    KEYS_REVERSE,
    KEYS_EQUAL,
    KEYS_LOW_BYTE,  /* only the lowest byte varies: the radix sort goes all the way down */
    KEYS_HIGH_BYTE, /* only the highest byte varies */
    KEYS_PATTERNS
} key_pattern_t;

static uint64_t pattern_key(key_pattern_t pattern, size_t i, size_t n, uint64_t *rng)
{
    static const uint64_t extremes[] = {0, UINT64_MAX, (uint64_t)1 << 63, 1, UINT64_MAX - 1};
    uint64_t r = splitmix64(rng);
    switch (pattern) {
    case KEYS_RANDOM: return r % 11 == 0 ? extremes[r % 5] : r;
    case KEYS_FEW: return mix64(r % 37);
    case KEYS_SORTED: return (uint64_t)i * 0x0123456789ABull + (r & 0xff) / 128;
    case KEYS_REVERSE: return (uint64_t)(n - i) * 0x0123456789ABull;
    case KEYS_EQUAL: return 0xA5A5A5A5A5A5A5A5ull;
    case KEYS_LOW_BYTE: return 0x1122334455667700ull | (r & 0xff);
    case KEYS_HIGH_BYTE: return 0x00AABBCCDDEEFF11ull | (r << 56);
    default: fail();
    }
    return 0;
}

/* ---- 1: tal_sort_records against qsort ---- */

#define GUARD 64

/* Second words: full 64-bit, or (odd patterns) 0..3 so that whole pairs repeat too. */
static void check_sort_records(key_pattern_t pattern, size_t n, size_t rs)
{
    uint64_t rng = 0x5EED0000u + (uint64_t)pattern * 1000003u + n * 7u + rs;
    sort_pair_t *pairs = malloc((n ? n : 1) * sizeof *pairs);
    unsigned char *block = malloc(n * rs + 2 * GUARD);
    unsigned char *records = block + GUARD;
    uint64_t rec[MAX_RECORD / 8];
    assert_non_null(pairs);
    assert_non_null(block);
    memset(block, 0xEE, n * rs + 2 * GUARD);
    for (size_t i = 0; i < n; i++) {
        pairs[i].key = pattern_key(pattern, i, n, &rng);
        pairs[i].tie = splitmix64(&rng) >> (pattern % 2 ? 62 : 0);
        make_record(rec, rs, pairs[i]);
        memcpy(records + i * rs, rec, rs);
    }
    qsort(pairs, n, sizeof *pairs, cmp_pair);
    tal_sort_records(records, n, rs);
    for (size_t i = 0; i < GUARD; i++) {
        assert_int_equal(block[i], 0xEE);
        assert_int_equal(records[n * rs + i], 0xEE);
    }
    /* equal to the qsorted pairs position by position: in order and the same multiset */
    for (size_t i = 0; i < n; i++) {
        sort_pair_t got = record_pair(records, i, rs);
        if (!pair_matches(got, pairs[i], rs))
            fail_msg("pattern %d, n %zu, record size %zu: record %zu is %016llx/%016llx, expected "
                     "%016llx/%016llx",
                     (int)pattern, n, rs, i, (unsigned long long)got.key,
                     (unsigned long long)got.tie, (unsigned long long)pairs[i].key,
                     (unsigned long long)pairs[i].tie);
        check_record_whole(records, i, rs);
    }
    free(block);
    free(pairs);
}

static void test_sort_records_like_qsort(void **state)
{
    static const size_t sizes[] = {0,  1,   2,   3,   47,   48,   49,    50,
                                   97, 255, 256, 257, 1000, 4099, 100000};
    static const size_t record_sizes[] = {8, 16, 24, 64};
    (void)state;
    for (int pattern = 0; pattern < KEYS_PATTERNS; pattern++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (size_t r = 0; r < sizeof record_sizes / sizeof *record_sizes; r++) {
                /* equal keys of 16 bytes or more are put in order by insertion sort, which
                 * is quadratic: long runs of one key stay short here */
                if (record_sizes[r] >= 16 && sizes[s] > 4099 &&
                    (pattern == KEYS_EQUAL || pattern == KEYS_FEW))
                    continue;
                check_sort_records((key_pattern_t)pattern, sizes[s], record_sizes[r]);
            }
}

/* Every record size the sorter accepts (8..64 in steps of 8). */
static void test_sort_records_every_size(void **state)
{
    (void)state;
    for (size_t rs = 8; rs <= MAX_RECORD; rs += 8) {
        check_sort_records(KEYS_RANDOM, 3000, rs);
        check_sort_records(KEYS_FEW, 3000, rs);
    }
}

/* ---- helpers for sorters ---- */

static char tmp_root[4096];

static int group_setup(void **state)
{
    (void)state;
    return tal_test_mkdtemp(tmp_root, sizeof tmp_root, "sorter");
}

static int group_teardown(void **state)
{
    (void)state;
    tal_test_rm_rf(tmp_root);
    return 0;
}

/* A fresh, empty directory for one sorter's runs. */
static void fresh_dir(char *dir, size_t size, const char *name)
{
    snprintf(dir, size, "%s/%s-XXXXXX", tmp_root, name);
    assert_non_null(mkdtemp(dir));
}

static size_t dir_entries(const char *dir)
{
    size_t n = 0;
    struct dirent *e;
    DIR *d = opendir(dir);
    assert_non_null(d);
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static size_t open_fds(void)
{
    size_t n = 0;
    struct dirent *e;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void opt_init(tal_sorter_opt_t *opt, size_t rs, uint64_t buffer_bytes, const char *dir)
{
    memset(opt, 0, sizeof *opt);
    opt->record_size = rs;
    opt->buffer_bytes = buffer_bytes;
    opt->tmp_dir = dir;
    opt->what = "test records";
    opt->component = TAL_MEM_SORT;
}

/* Adds n records made by pair_of(i) in batches of BATCH, checking the budget (if any)
 * after each; returns the first error, or 0. */
typedef sort_pair_t (*pair_fn_t)(uint64_t i, void *arg);

static int add_records(tal_sorter_t *s, size_t rs, uint64_t n, pair_fn_t pair_of, void *arg,
                       tal_budget_t *budget)
{
    uint64_t *batch = malloc(BATCH * rs);
    int rc = 0;
    assert_non_null(batch);
    for (uint64_t done = 0; done < n && !rc;) {
        size_t count = n - done < BATCH ? (size_t)(n - done) : BATCH;
        for (size_t j = 0; j < count; j++)
            make_record(batch + j * WORDS(rs), rs, pair_of(done + j, arg));
        rc = tal_sorter_add(s, batch, count);
        done += count;
        if (budget)
            assert_true(tal_budget_used(budget, TAL_MEM_COMPONENTS) <= tal_budget_cap(budget));
    }
    free(batch);
    return rc;
}

/* Reads everything back, checking the order (by key, then for 16 bytes or more by the
 * second word) and that records are whole; calls check(position, pair) for each and
 * returns how many came. read must then keep returning 0. */
typedef void (*check_fn_t)(uint64_t position, sort_pair_t pair, size_t rs, void *arg);

static uint64_t read_all(tal_sorter_t *s, size_t rs, check_fn_t check, void *arg)
{
    const void *records;
    size_t count;
    uint64_t total = 0;
    sort_pair_t prev = {0, 0};
    int rc;
    while ((rc = tal_sorter_read(s, &records, &count)) == 1) {
        assert_true(count > 0);
        for (size_t i = 0; i < count; i++) {
            sort_pair_t pair = record_pair(records, i, rs);
            if (total + i > 0 && pair_less(pair, prev))
                fail_msg("out of order at record %llu: %016llx/%016llx after %016llx/%016llx",
                         (unsigned long long)(total + i), (unsigned long long)pair.key,
                         (unsigned long long)pair.tie, (unsigned long long)prev.key,
                         (unsigned long long)prev.tie);
            prev = pair;
            check_record_whole(records, i, rs);
            if (check) check(total + i, pair, rs, arg);
        }
        total += count;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(tal_sorter_read(s, &records, &count), 0);
    assert_int_equal(tal_sorter_read(s, &records, &count), 0);
    return total;
}

/* Pairs from an array, and the check against its qsorted copy. */
typedef struct {
    const sort_pair_t *pairs;  /* in the order added */
    const sort_pair_t *sorted; /* the reference */
    uint64_t n;
} array_pairs_t;

static sort_pair_t pair_from_array(uint64_t i, void *arg)
{
    return ((array_pairs_t *)arg)->pairs[i];
}

static void check_against_sorted(uint64_t position, sort_pair_t pair, size_t rs, void *arg)
{
    const array_pairs_t *a = arg;
    assert_true(position < a->n);
    if (!pair_matches(pair, a->sorted[position], rs))
        fail_msg("record %llu: %016llx/%016llx, expected %016llx/%016llx",
                 (unsigned long long)position, (unsigned long long)pair.key,
                 (unsigned long long)pair.tie, (unsigned long long)a->sorted[position].key,
                 (unsigned long long)a->sorted[position].tie);
}

/* Random keys, a quarter of them repeating an earlier key so that equal keys meet in
 * different runs; second words 0..2, so that whole pairs repeat as well. */
static void random_pairs(array_pairs_t *a, uint64_t n, uint64_t seed)
{
    sort_pair_t *pairs = malloc(n * sizeof *pairs), *sorted = malloc(n * sizeof *sorted);
    uint64_t rng = seed;
    assert_non_null(pairs);
    assert_non_null(sorted);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = splitmix64(&rng);
        pairs[i].key = (i > 0 && r % 4 == 0) ? pairs[(r >> 8) % i].key : r;
        pairs[i].tie = splitmix64(&rng) % 3;
    }
    memcpy(sorted, pairs, n * sizeof *pairs);
    qsort(sorted, n, sizeof *sorted, cmp_pair);
    a->pairs = pairs;
    a->sorted = sorted;
    a->n = n;
}

static void free_pairs(array_pairs_t *a)
{
    free((void *)a->pairs);
    free((void *)a->sorted);
}

/* Pairs without a reference array: for a bijection perm of [0, n), record i is
 * (perm(i) / 2 * STRIDE, perm(i) % 2), so the sorted output at position j must be
 * (j / 2 * STRIDE, j % 2): every key twice, second words 0 then 1. perm mixes i within
 * the next power of two and walks the cycle back into [0, n). */
typedef struct {
    uint64_t n, mask, stride;
} perm_pairs_t;

static void perm_pairs_init(perm_pairs_t *p, uint64_t n)
{
    p->n = n;
    p->mask = 1;
    while (p->mask < n) p->mask <<= 1;
    p->mask--;
    p->stride = UINT64_MAX / (n / 2 + 1);
}

/* Each step (times an odd number plus a constant, xor with itself shifted right) is a
 * bijection modulo mask + 1, a power of two. */
static uint64_t perm_mix(uint64_t x, uint64_t mask)
{
    int half = 0;
    for (uint64_t m = mask; m; m >>= 2) half++;
    for (int round = 0; round < 3; round++) {
        x = (x * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) & mask;
        x ^= x >> half;
    }
    return x;
}

static sort_pair_t pair_from_perm(uint64_t i, void *arg)
{
    const perm_pairs_t *p = arg;
    uint64_t x = i;
    do x = perm_mix(x, p->mask);
    while (x >= p->n);
    return (sort_pair_t){(x / 2) * p->stride, x % 2};
}

static void check_perm_position(uint64_t position, sort_pair_t pair, size_t rs, void *arg)
{
    const perm_pairs_t *p = arg;
    sort_pair_t want = {(position / 2) * p->stride, position % 2};
    assert_true(position < p->n);
    if (!pair_matches(pair, want, rs))
        fail_msg("record %llu: %016llx/%016llx, expected %016llx/%016llx",
                 (unsigned long long)position, (unsigned long long)pair.key,
                 (unsigned long long)pair.tie, (unsigned long long)want.key,
                 (unsigned long long)want.tie);
}

/* perm is a bijection: each of the n/2 keys comes exactly twice, once with each second
 * word. */
static void test_perm_pairs_are_a_permutation(void **state)
{
    perm_pairs_t p;
    uint64_t n = 100001;
    unsigned char *seen = calloc(n / 2 + 1, 1);
    (void)state;
    assert_non_null(seen);
    perm_pairs_init(&p, n);
    for (uint64_t i = 0; i < n; i++) {
        sort_pair_t pair = pair_from_perm(i, &p);
        assert_int_equal(pair.key % p.stride, 0);
        assert_true(pair.key / p.stride <= n / 2);
        assert_true(pair.tie < 2);
        seen[pair.key / p.stride] |= (unsigned char)(1u << pair.tie);
    }
    for (uint64_t k = 0; k < n / 2; k++) assert_int_equal(seen[k], 3);
    assert_int_equal(seen[n / 2], 1);
    free(seen);
}

/* ---- 2: everything fits: sorted in memory, nothing spilled ---- */

static void test_no_spill(void **state)
{
    static const size_t chunks[] = {1, 7, 1000, 65536, 3, 100000, 0, 29653};
    char dir[4200];
    array_pairs_t a;
    tal_sorter_t *s;
    tal_sorter_opt_t opt;
    tal_sorter_stats_t st;
    uint64_t n = 200000, done = 0;
    size_t rs = 16, fds = open_fds();
    uint64_t *batch = malloc(100000 * rs);
    (void)state;
    assert_non_null(batch);
    fresh_dir(dir, sizeof dir, "nospill");
    random_pairs(&a, n, 2);
    opt_init(&opt, rs, 64 * MIB, dir);
    assert_int_equal(tal_sorter_create(&s, &opt), 0);
    /* uneven batches, one of them empty */
    for (size_t c = 0; done < n; c = (c + 1) % (sizeof chunks / sizeof *chunks)) {
        size_t count = chunks[c] < n - done ? chunks[c] : (size_t)(n - done);
        for (size_t j = 0; j < count; j++)
            make_record(batch + j * WORDS(rs), rs, a.pairs[done + j]);
        assert_int_equal(tal_sorter_add(s, batch, count), 0);
        done += count;
    }
    assert_int_equal(tal_sorter_finish(s), 0);
    tal_sorter_stats(s, &st);
    assert_int_equal(st.runs, 0);
    assert_int_equal(st.spilled_bytes, 0);
    assert_int_equal(st.records, n);
    assert_true(st.buffer_bytes >= n * rs && st.buffer_bytes <= 64 * MIB);
    assert_int_equal(read_all(s, rs, check_against_sorted, &a), n);
    tal_sorter_destroy(s);
    assert_int_equal(dir_entries(dir), 0);
    assert_int_equal(open_fds(), fds);
    free_pairs(&a);
    free(batch);
}

static void test_empty_sorter(void **state)
{
    tal_sorter_t *s;
    tal_sorter_opt_t opt;
    tal_sorter_stats_t st;
    const void *records = NULL;
    size_t count = 0;
    (void)state;
    opt_init(&opt, 8, 0, tmp_root);
    assert_int_equal(tal_sorter_create(&s, &opt), 0);
    assert_int_equal(tal_sorter_finish(s), 0);
    assert_int_equal(tal_sorter_read(s, &records, &count), 0);
    tal_sorter_stats(s, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.runs, 0);
    tal_sorter_destroy(s);
    tal_sorter_destroy(NULL);
}

/* ---- 3: spilled runs, merged in one pass ---- */

static void check_spilled(size_t rs, uint64_t n, uint64_t buffer_bytes, uint64_t seed)
{
    char dir[4200];
    array_pairs_t a;
    tal_sorter_t *s;
    tal_sorter_opt_t opt;
    tal_sorter_stats_t st;
    size_t fds = open_fds();
    fresh_dir(dir, sizeof dir, "spill");
    random_pairs(&a, n, seed);
    opt_init(&opt, rs, buffer_bytes, dir);
    assert_int_equal(tal_sorter_create(&s, &opt), 0);
    assert_int_equal(add_records(s, rs, n, pair_from_array, &a, NULL), 0);
    assert_int_equal(tal_sorter_finish(s), 0);
    tal_sorter_stats(s, &st);
    assert_true(st.runs > 1);
    assert_true(st.runs <= 31); /* one merge pass */
    assert_int_equal(st.records, n);
    assert_int_equal(st.spilled_bytes, n * rs);
    assert_true(st.buffer_bytes <=
                (buffer_bytes > TAL_SORTER_MIN_BUFFER ? buffer_bytes : TAL_SORTER_MIN_BUFFER));
    /* the runs live in an unnamed file */
    assert_int_equal(dir_entries(dir), 0);
    assert_int_equal(read_all(s, rs, check_against_sorted, &a), n);
    tal_sorter_destroy(s);
    assert_int_equal(dir_entries(dir), 0);
    assert_int_equal(open_fds(), fds);
    free_pairs(&a);
}

static void test_spill_u64(void **state)
{
    (void)state;
    check_spilled(8, 3000000, TAL_SORTER_MIN_BUFFER, 3);
}

static void test_spill_24_byte_records(void **state)
{
    (void)state;
    check_spilled(24, 1000000, TAL_SORTER_MIN_BUFFER, 4);
}

static void test_spill_64_byte_records(void **state)
{
    (void)state;
    check_spilled(64, 300000, TAL_SORTER_MIN_BUFFER, 5);
}

/* buffer_bytes below the minimum is raised to it. */
static void test_spill_tiny_buffer_asked(void **state)
{
    (void)state;
    check_spilled(16, 500000, 4096, 6);
}

/* A buffer size that is neither a power of two nor a multiple of the record size. */
static void test_spill_odd_buffer(void **state)
{
    (void)state;
    check_spilled(24, 700000, 3 * MIB + 5, 7);
}

/* Four 8-byte keys, so nearly every comparison in the merge is a tie: each key must
 * still come out exactly as often as it went in. */
static uint64_t four_keys(uint64_t i) { return mix64(i) % 4 * 0x4000000000000001ull; }

static void test_spill_ties_u64(void **state)
{
    char dir[4200];
    tal_sorter_t *s;
    tal_sorter_opt_t opt;
    tal_sorter_stats_t st;
    uint64_t n = 3000000, total = 0, prev = 0, want[4] = {0}, got[4] = {0};
    uint64_t *batch = malloc(BATCH * 8);
    const uint64_t *records;
    size_t count;
    int rc;
    (void)state;
    assert_non_null(batch);
    fresh_dir(dir, sizeof dir, "ties8");
    opt_init(&opt, 8, TAL_SORTER_MIN_BUFFER, dir);
    assert_int_equal(tal_sorter_create(&s, &opt), 0);
    for (uint64_t done = 0; done < n;) {
        size_t c = n - done < BATCH ? (size_t)(n - done) : BATCH;
        for (size_t j = 0; j < c; j++) {
            batch[j] = four_keys(done + j);
            want[batch[j] / 0x4000000000000001ull]++;
        }
        assert_int_equal(tal_sorter_add(s, batch, c), 0);
        done += c;
    }
    assert_int_equal(tal_sorter_finish(s), 0);
    tal_sorter_stats(s, &st);
    assert_true(st.runs > 1);
    while ((rc = tal_sorter_read(s, (const void **)&records, &count)) == 1) {
        for (size_t i = 0; i < count; i++) {
            assert_int_equal(records[i] % 0x4000000000000001ull, 0);
            assert_true(records[i] >= prev);
            prev = records[i];
            got[records[i] / 0x4000000000000001ull]++;
        }
        total += count;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(total, n);
    for (int k = 0; k < 4; k++) assert_int_equal(got[k], want[k]);
    tal_sorter_destroy(s);
    assert_int_equal(dir_entries(dir), 0);
    free(batch);
}

/* 24-byte records: 4096 keys and second words 0..2, so whole pairs tie across runs;
 * the third word is the record's index, and each index must come out exactly once. */
static sort_pair_t indexed_pair(uint64_t i)
{
    return (sort_pair_t){mix64(i) % 4096 * 0x000FFFFFFFFFFFFFull, mix64(~i) % 3};
}

static void test_spill_ties_keep_every_record(void **state)
{
    char dir[4200];
    tal_sorter_t *s;
    tal_sorter_opt_t opt;
    tal_sorter_stats_t st;
    uint64_t n = 700000, total = 0;
    sort_pair_t prev = {0, 0};
    size_t rs = 24;
    uint64_t *batch = malloc(BATCH * rs);
    unsigned char *seen = calloc(n, 1);
    const void *records;
    size_t count;
    int rc;
    (void)state;
    assert_non_null(batch);
    assert_non_null(seen);
    fresh_dir(dir, sizeof dir, "ties");
    opt_init(&opt, rs, TAL_SORTER_MIN_BUFFER, dir);
    assert_int_equal(tal_sorter_create(&s, &opt), 0);
    for (uint64_t done = 0; done < n;) {
        size_t c = n - done < BATCH ? (size_t)(n - done) : BATCH;
        for (size_t j = 0; j < c; j++) {
            sort_pair_t pair = indexed_pair(done + j);
            batch[3 * j] = pair.key;
            batch[3 * j + 1] = pair.tie;
            batch[3 * j + 2] = done + j;
        }
        assert_int_equal(tal_sorter_add(s, batch, c), 0);
        done += c;
    }
    assert_int_equal(tal_sorter_finish(s), 0);
    tal_sorter_stats(s, &st);
    assert_true(st.runs > 1);
    while ((rc = tal_sorter_read(s, &records, &count)) == 1) {
        for (size_t i = 0; i < count; i++) {
            uint64_t rec[3];
            sort_pair_t pair, want;
            memcpy(rec, (const char *)records + i * rs, rs);
            pair = (sort_pair_t){rec[0], rec[1]};
            assert_true(rec[2] < n);
            assert_int_equal(seen[rec[2]], 0);
            seen[rec[2]] = 1;
            want = indexed_pair(rec[2]);
            assert_true(pair.key == want.key && pair.tie == want.tie);
            assert_false(pair_less(pair, prev));
            prev = pair;
        }
        total += count;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(total, n);
    tal_sorter_destroy(s);
    assert_int_equal(dir_entries(dir), 0);
    free(seen);
    free(batch);
}

/* ---- 4: more runs than one merge takes: merged in several passes ---- */

static void check_multi_pass(size_t rs, uint64_t n, tal_budget_t *budget, uint64_t min_runs)
{
    char dir[4200];
    perm_pairs_t p;
    tal_sorter_t *s;
    tal_sorter_opt_t opt;
    tal_sorter_stats_t st;
    size_t fds = open_fds();
    fresh_dir(dir, sizeof dir, "multipass");
    perm_pairs_init(&p, n);
    opt_init(&opt, rs, budget ? 64 * MIB : TAL_SORTER_MIN_BUFFER, dir);
    opt.budget = budget;
    opt.expected = n;
    assert_int_equal(tal_sorter_create(&s, &opt), 0);
    assert_int_equal(add_records(s, rs, n, pair_from_perm, &p, budget), 0);
    assert_int_equal(tal_sorter_finish(s), 0);
    if (budget) assert_true(tal_budget_used(budget, TAL_MEM_COMPONENTS) <= tal_budget_cap(budget));
    tal_sorter_stats(s, &st);
    assert_true(st.runs >= min_runs);
    assert_int_equal(st.records, n);
    /* the passes before the last wrote their merged runs too */
    assert_true(st.spilled_bytes > n * rs);
    assert_int_equal(dir_entries(dir), 0);
    assert_int_equal(read_all(s, rs, check_perm_position, &p), n);
    tal_sorter_destroy(s);
    assert_int_equal(dir_entries(dir), 0);
    assert_int_equal(open_fds(), fds);
}

/* 2 MiB buffer: fan-in 31; 80 MB of keys make 39 runs. */
static void test_multi_pass_u64(void **state)
{
    (void)state;
    check_multi_pass(8, 10000000, NULL, 32);
}

/* ---- 5: the budget ---- */

static void test_budget_refuses_first_megabyte(void **state)
{
    tal_budget_t *budget;
    tal_sorter_t *s = (tal_sorter_t *)&s; /* not NULL, so create must clear it */
    tal_sorter_opt_t opt;
    (void)state;
    assert_int_equal(tal_budget_create(&budget, 512 * KIB), 0);
    opt_init(&opt, 8, 64 * MIB, tmp_root);
    opt.budget = budget;
    assert_int_equal(tal_sorter_create(&s, &opt), TAL_EMEMCAP);
    assert_null(s);
    assert_int_equal(tal_budget_used(budget, TAL_MEM_COMPONENTS), 0);
    tal_budget_destroy(budget);
}

/* A budget that allows 2 MiB but not 4: the buffer stops at 2 MiB and spills. */
static void test_budget_caps_buffer(void **state)
{
    tal_budget_t *budget;
    char dir[4200];
    perm_pairs_t p;
    tal_sorter_t *s;
    tal_sorter_opt_t opt;
    tal_sorter_stats_t st;
    uint64_t n = 2000000;
    (void)state;
    assert_int_equal(tal_budget_create(&budget, 3 * MIB), 0);
    fresh_dir(dir, sizeof dir, "budget");
    perm_pairs_init(&p, n);
    opt_init(&opt, 8, 64 * MIB, dir);
    opt.budget = budget;
    assert_int_equal(tal_sorter_create(&s, &opt), 0);
    assert_int_equal(tal_budget_used(budget, TAL_MEM_SORT), MIB);
    assert_int_equal(add_records(s, 8, n, pair_from_perm, &p, budget), 0);
    assert_int_equal(tal_sorter_finish(s), 0);
    tal_sorter_stats(s, &st);
    assert_int_equal(st.buffer_bytes, 2 * MIB);
    assert_true(st.runs > 1);
    assert_int_equal(tal_budget_used(budget, TAL_MEM_SORT), 2 * MIB);
    assert_int_equal(tal_budget_used(budget, TAL_MEM_COMPONENTS), 2 * MIB);
    assert_int_equal(read_all(s, 8, check_perm_position, &p), n);
    assert_true(tal_budget_peak(budget) <= 3 * MIB);
    tal_sorter_destroy(s);
    assert_int_equal(tal_budget_used(budget, TAL_MEM_COMPONENTS), 0);
    assert_int_equal(dir_entries(dir), 0);
    tal_budget_destroy(budget);
}

/* A budget of 1.5 MiB leaves the first megabyte only: fan-in 15, so 24 MB of keys (23
 * runs) already need two merge passes. */
static void test_budget_small_multi_pass(void **state)
{
    tal_budget_t *budget;
    (void)state;
    assert_int_equal(tal_budget_create(&budget, 3 * MIB / 2), 0);
    check_multi_pass(8, 3000000, budget, 16);
    assert_true(tal_budget_peak(budget) <= MIB);
    assert_int_equal(tal_budget_used(budget, TAL_MEM_COMPONENTS), 0);
    tal_budget_destroy(budget);
}

static void test_budget_small_multi_pass_24(void **state)
{
    tal_budget_t *budget;
    (void)state;
    assert_int_equal(tal_budget_create(&budget, 3 * MIB / 2), 0);
    check_multi_pass(24, 1000000, budget, 16);
    assert_int_equal(tal_budget_used(budget, TAL_MEM_COMPONENTS), 0);
    tal_budget_destroy(budget);
}

/* 64-byte records, fan-in 15 and 60 runs: four passes before the last merge. */
static void test_budget_small_four_passes_64(void **state)
{
    tal_budget_t *budget;
    (void)state;
    assert_int_equal(tal_budget_create(&budget, 3 * MIB / 2), 0);
    check_multi_pass(64, 60 * MIB / 64, budget, 60);
    assert_int_equal(tal_budget_used(budget, TAL_MEM_COMPONENTS), 0);
    tal_budget_destroy(budget);
}

/* ---- 6: a spill directory that does not work, and a disk that fills ---- */

/* stderr into a file while a test provokes an error message. */
typedef struct {
    int saved;
    char path[4200];
} capture_t;

static void capture_begin(capture_t *c)
{
    int fd;
    snprintf(c->path, sizeof c->path, "%s/stderr-XXXXXX", tmp_root);
    fd = mkstemp(c->path);
    assert_true(fd >= 0);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
}

/* The captured text (malloc'd), also passed on to the real stderr; stderr is back. */
static char *capture_end(capture_t *c)
{
    FILE *fp;
    size_t got;
    char *text = calloc(1, 65536);
    assert_non_null(text);
    fflush(stderr);
    assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
    close(c->saved);
    fp = fopen(c->path, "r");
    assert_non_null(fp);
    got = fread(text, 1, 65535, fp);
    text[got] = '\0';
    fclose(fp);
    unlink(c->path);
    fputs(text, stderr);
    return text;
}

static sort_pair_t pair_random(uint64_t i, void *arg)
{
    (void)arg;
    return (sort_pair_t){mix64(i), i};
}

/* Adds n keys and finishes; returns the first error. */
static int add_and_finish(tal_sorter_t *s, size_t rs, uint64_t n)
{
    int rc = add_records(s, rs, n, pair_random, NULL, NULL);
    return rc < 0 ? rc : tal_sorter_finish(s);
}

static void check_bad_tmp_dir(const char *bad)
{
    tal_sorter_t *s;
    tal_sorter_opt_t opt;
    capture_t cap;
    char *text;
    size_t fds = open_fds();
    opt_init(&opt, 8, TAL_SORTER_MIN_BUFFER, bad);
    assert_int_equal(tal_sorter_create(&s, &opt), 0);
    capture_begin(&cap);
    /* 2.4 MB: more than the buffer holds */
    assert_int_equal(add_and_finish(s, 8, 300000), TAL_EIO);
    text = capture_end(&cap);
    assert_non_null(strstr(text, bad));
    assert_non_null(strstr(text, "test records"));
    tal_sorter_destroy(s);
    assert_int_equal(open_fds(), fds);
    free(text);
}

static void test_tmp_dir_missing(void **state)
{
    char bad[4200];
    (void)state;
    snprintf(bad, sizeof bad, "%s/no-such-dir", tmp_root);
    check_bad_tmp_dir(bad);
}

static void test_tmp_dir_is_a_file(void **state)
{
    char bad[4200];
    FILE *fp;
    (void)state;
    snprintf(bad, sizeof bad, "%s/plain-file", tmp_root);
    fp = fopen(bad, "w");
    assert_non_null(fp);
    fclose(fp);
    check_bad_tmp_dir(bad);
    unlink(bad);
}

/* But a missing directory does not matter when nothing spills. */
static void test_tmp_dir_missing_unused(void **state)
{
    char bad[4200];
    tal_sorter_t *s;
    tal_sorter_opt_t opt;
    (void)state;
    snprintf(bad, sizeof bad, "%s/no-such-dir", tmp_root);
    opt_init(&opt, 8, TAL_SORTER_MIN_BUFFER, bad);
    assert_int_equal(tal_sorter_create(&s, &opt), 0);
    assert_int_equal(add_and_finish(s, 8, 200000), 0);
    assert_int_equal(read_all(s, 8, NULL, NULL), 200000);
    tal_sorter_destroy(s);
}

/* A full disk without a file system of our own: RLIMIT_FSIZE makes writes past the limit
 * fail with EFBIG (SIGXFSZ ignored). limit is the most the spill file may hold. */
static void check_file_limit(uint64_t limit, size_t rs, uint64_t n, tal_budget_t *budget,
                             int fails_in_finish)
{
    char dir[4200];
    tal_sorter_t *s;
    tal_sorter_opt_t opt;
    struct rlimit saved, lim;
    struct sigaction ign, old;
    capture_t cap;
    char *text;
    int rc;
    fresh_dir(dir, sizeof dir, "full");
    opt_init(&opt, rs, budget ? 64 * MIB : TAL_SORTER_MIN_BUFFER, dir);
    opt.budget = budget;
    opt.expected = n;
    assert_int_equal(tal_sorter_create(&s, &opt), 0);
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    assert_int_equal(sigaction(SIGXFSZ, &ign, &old), 0);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    lim = saved;
    lim.rlim_cur = (rlim_t)limit;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    capture_begin(&cap);
    rc = add_records(s, rs, n, pair_random, NULL, NULL);
    if (fails_in_finish) {
        assert_int_equal(rc, 0);
        rc = tal_sorter_finish(s);
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    assert_int_equal(sigaction(SIGXFSZ, &old, NULL), 0);
    text = capture_end(&cap);
    assert_int_equal(rc, TAL_EIO);
    assert_non_null(strstr(text, dir));
    assert_non_null(strstr(text, "free space"));
    tal_sorter_destroy(s);
    assert_int_equal(dir_entries(dir), 0);
    free(text);
}

/* The second run does not fit: tal_sorter_add fails. */
static void test_disk_full_while_adding(void **state)
{
    (void)state;
    check_file_limit(3 * MIB, 8, 1000000, NULL, 0);
}

/* All 17 runs of a 1 MiB buffer fit, the first merge pass does not: finish fails. */
static void test_disk_full_while_merging(void **state)
{
    tal_budget_t *budget;
    (void)state;
    assert_int_equal(tal_budget_create(&budget, 3 * MIB / 2), 0);
    check_file_limit(20 * MIB, 8, 17 * MIB / 8, budget, 1);
    assert_int_equal(tal_budget_used(budget, TAL_MEM_COMPONENTS), 0);
    tal_budget_destroy(budget);
}

/* ---- 8: usage errors ---- */

static void test_bad_record_sizes(void **state)
{
    static const size_t bad[] = {0, 4, 7, 12, 63, 72, 128};
    tal_sorter_opt_t opt;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tal_sorter_t *s = (tal_sorter_t *)&opt; /* not NULL, so create must clear it */
        opt_init(&opt, bad[i], TAL_SORTER_MIN_BUFFER, tmp_root);
        assert_int_equal(tal_sorter_create(&s, &opt), TAL_EUSAGE);
        assert_null(s);
    }
}

static void check_call_order(uint64_t n)
{
    char dir[4200];
    tal_sorter_t *s;
    tal_sorter_opt_t opt;
    tal_sorter_stats_t st;
    const void *records;
    size_t count;
    uint64_t key = 42;
    fresh_dir(dir, sizeof dir, "order");
    opt_init(&opt, 8, TAL_SORTER_MIN_BUFFER, dir);
    assert_int_equal(tal_sorter_create(&s, &opt), 0);
    assert_int_equal(tal_sorter_read(s, &records, &count), TAL_EUSAGE);
    assert_int_equal(add_records(s, 8, n, pair_random, NULL, NULL), 0);
    assert_int_equal(tal_sorter_read(s, &records, &count), TAL_EUSAGE);
    assert_int_equal(tal_sorter_finish(s), 0);
    assert_int_equal(tal_sorter_add(s, &key, 1), TAL_EUSAGE);
    assert_int_equal(tal_sorter_finish(s), TAL_EUSAGE);
    assert_int_equal(read_all(s, 8, NULL, NULL), n);
    assert_int_equal(tal_sorter_add(s, &key, 1), TAL_EUSAGE);
    tal_sorter_stats(s, &st);
    assert_int_equal(st.records, n);
    tal_sorter_destroy(s);
    assert_int_equal(dir_entries(dir), 0);
}

static void test_call_order_in_memory(void **state)
{
    (void)state;
    check_call_order(1000);
}

static void test_call_order_spilled(void **state)
{
    (void)state;
    check_call_order(600000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sort_records_like_qsort),
        cmocka_unit_test(test_sort_records_every_size),
        cmocka_unit_test(test_perm_pairs_are_a_permutation),
        cmocka_unit_test(test_no_spill),
        cmocka_unit_test(test_empty_sorter),
        cmocka_unit_test(test_spill_u64),
        cmocka_unit_test(test_spill_24_byte_records),
        cmocka_unit_test(test_spill_64_byte_records),
        cmocka_unit_test(test_spill_tiny_buffer_asked),
        cmocka_unit_test(test_spill_odd_buffer),
        cmocka_unit_test(test_spill_ties_u64),
        cmocka_unit_test(test_spill_ties_keep_every_record),
        cmocka_unit_test(test_multi_pass_u64),
        cmocka_unit_test(test_budget_refuses_first_megabyte),
        cmocka_unit_test(test_budget_caps_buffer),
        cmocka_unit_test(test_budget_small_multi_pass),
        cmocka_unit_test(test_budget_small_multi_pass_24),
        cmocka_unit_test(test_budget_small_four_passes_64),
        cmocka_unit_test(test_tmp_dir_missing),
        cmocka_unit_test(test_tmp_dir_is_a_file),
        cmocka_unit_test(test_tmp_dir_missing_unused),
        cmocka_unit_test(test_disk_full_while_adding),
        cmocka_unit_test(test_disk_full_while_merging),
        cmocka_unit_test(test_bad_record_sizes),
        cmocka_unit_test(test_call_order_in_memory),
        cmocka_unit_test(test_call_order_spilled),
    };
    return cmocka_run_group_tests_name("sorter", tests, group_setup, group_teardown);
}
