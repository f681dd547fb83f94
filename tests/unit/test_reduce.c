/* The reduce API (include/talaria/reduce.h) as a C user meets it: options and presets,
 * the memory plan, a run and its result against the files it wrote, a run from an open
 * store, the -r search, and the failures that must leave nothing behind. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "talaria/deltas.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/reduce.h"
#include "talaria/store.h"
#include "test_files.h"
#include "test_support.h"

#include <dirent.h>
#include <string.h>

static char dir[PATH_MAX];
static char tmp_dir[PATH_MAX + 8];

/* Families of 8 proteins: a random base of 150-250 residues and members with a few
 * substitutions at spread positions, so at 0.9 each family has one reference. */
static void write_families(const char *path, int families, unsigned seed)
{
    static const char aa[] = "ACDEFGHIKLMNPQRSTVWY";
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int fam = 0; fam < families; fam++) {
        char base[256];
        int len = 150 + (int)(rand_r(&seed) % 100);
        for (int i = 0; i < len; i++) base[i] = aa[rand_r(&seed) % 20];
        for (int m = 0; m < 8; m++) {
            char seq[256];
            memcpy(seq, base, (size_t)len);
            for (int k = 0; k < m; k++) {
                int at = (k * 37 + m * 11) % len;
                seq[at] = aa[(strchr(aa, seq[at]) - aa + 1 + k) % 20];
            }
            fprintf(f, ">fam%d_%d member %d OX=%d\n%.*s\n", fam, m, m, 9600 + fam, len, seq);
        }
    }
    assert_int_equal(fclose(f), 0);
}

static int count_lines(const char *path, char first)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int n = 0;
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (!first || line[0] == first) n++;
    fclose(f);
    return n;
}

static int dir_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static int setup(void **state)
{
    (void)state;
    tal_log_set_level(TAL_LOG_QUIET);
    if (tal_test_mkdtemp(dir, sizeof dir, "reduce-api") < 0) return -1;
    write_families(tal_test_join(dir, "in.fa"), 12, 7);
    snprintf(tmp_dir, sizeof tmp_dir, "%s/tmp", dir);
    mkdir(tmp_dir, 0700);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tal_test_rm_rf(dir);
    return 0;
}

static void test_opt_init_and_presets(void **state)
{
    tal_reduce_opt_t opt;
    (void)state;
    memset(&opt, 0x5a, sizeof opt);
    tal_reduce_opt_init(&opt);
    assert_true(opt.identity == 0.9 && opt.coverage == 0.8 && opt.ratio == 0);
    assert_int_equal(opt.threads, 1);
    assert_int_equal(opt.aligner, TAL_ALIGNER_GENERIC);
    assert_null(opt.budget);
    assert_null(opt.progress);
    assert_int_equal(tal_reduce_set_aligner(&opt, "kraken"), 0);
    assert_true(opt.identity == 0.95 && opt.coverage == 0.9);
    assert_int_equal(opt.aligner, TAL_ALIGNER_KRAKEN);
    assert_int_equal(tal_reduce_set_aligner(&opt, "blast"), 0);
    assert_true(opt.identity == 0.9 && opt.coverage == 0.9);
    assert_int_equal(tal_reduce_set_aligner(&opt, "nosuch"), TAL_EUSAGE);
    assert_int_equal(opt.aligner, TAL_ALIGNER_BLAST); /* unchanged by a refused name */
    for (int a = TAL_ALIGNER_GENERIC; a <= TAL_ALIGNER_KRAKEN; a++) {
        tal_reduce_opt_t o;
        tal_reduce_opt_init(&o);
        assert_int_equal(tal_reduce_set_aligner(&o, tal_aligner_name(a)), 0);
        assert_int_equal(o.aligner, a);
    }
    assert_null(tal_aligner_name(-1));
    assert_null(tal_aligner_name(TAL_ALIGNER_KRAKEN + 1));
}

static void test_plan(void **state)
{
    tal_reduce_opt_t opt;
    tal_reduce_plan_t one, two, capped, low;
    tal_store_t *store;
    tal_index_opt_t io;
    (void)state;
    tal_reduce_opt_init(&opt);
    assert_int_equal(tal_reduce_plan(tal_test_join(dir, "in.fa"), &opt, &one), 0);
    assert_false(one.exact);
    assert_true(one.records > 0);
    assert_true(one.fits);
    assert_true(one.min_cap > one.need && one.min_cap % (1u << 20) == 0);
    /* a thread more needs a worker's share more */
    opt.threads = 2;
    assert_int_equal(tal_reduce_plan(tal_test_join(dir, "in.fa"), &opt, &two), 0);
    assert_true(two.need > one.need);
    /* under a cap below the need it does not fit; at min_cap it does, with smaller sorts */
    opt.max_memory = two.need / 2;
    assert_int_equal(tal_reduce_plan(tal_test_join(dir, "in.fa"), &opt, &capped), 0);
    assert_false(capped.fits);
    opt.max_memory = two.min_cap;
    assert_int_equal(tal_reduce_plan(tal_test_join(dir, "in.fa"), &opt, &capped), 0);
    assert_true(capped.fits);
    assert_true(capped.sort_bytes < two.sort_bytes);
    opt.low_memory = 1;
    assert_int_equal(tal_reduce_plan(tal_test_join(dir, "in.fa"), &opt, &low), 0);
    assert_true(low.sort_bytes <= capped.sort_bytes);
    /* a store: the exact record count */
    tal_index_opt_init(&io);
    assert_int_equal(
        tal_store_build(tal_test_join(dir, "in.fa"), tal_test_join(dir, "plan.tal"), &io, NULL), 0);
    tal_reduce_opt_init(&opt);
    assert_int_equal(tal_reduce_plan(tal_test_join(dir, "plan.tal"), &opt, &one), 0);
    assert_true(one.exact);
    assert_int_equal(one.records, 96);
    assert_int_equal(tal_store_open(&store, tal_test_join(dir, "plan.tal")), 0);
    tal_store_close(store);
    /* --same-taxon holds a taxid a record while clustering (a budget of our own: the
     * figures exactly; eight workers make clustering the largest phase) */
    opt.threads = 8;
    assert_int_equal(tal_budget_create(&opt.budget, 0), 0);
    assert_int_equal(tal_reduce_plan(tal_test_join(dir, "plan.tal"), &opt, &one), 0);
    opt.same_taxon = 1;
    assert_int_equal(tal_reduce_plan(tal_test_join(dir, "plan.tal"), &opt, &two), 0);
    assert_int_equal(two.need - one.need, 4 * (96 + 1));
    tal_budget_destroy(opt.budget);
    opt.budget = NULL;
    assert_int_equal(tal_reduce_plan(tal_test_join(dir, "missing.fa"), &opt, &one), TAL_EIO);
}

/* A store of n short records (10 to 40 residues), for the plan's growth per record. */
static void tiny_store(uint64_t n, const char *name)
{
    char fa[PATH_MAX + 16];
    tal_index_opt_t io;
    FILE *f;
    uint64_t x = 0x9E3779B97F4A7C15u;
    snprintf(fa, sizeof fa, "%s/%s.fa", dir, name);
    assert_non_null(f = fopen(fa, "w"));
    for (uint64_t i = 0; i < n; i++) {
        int len;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        len = 10 + (int)(x % 31);
        fprintf(f, ">t%llu\n", (unsigned long long)i);
        for (int k = 0; k < len; k++) fputc("ACDEFGHIKLMNPQRSTVWY"[(x >> (k % 48)) % 20], f);
        fputc('\n', f);
    }
    assert_int_equal(fclose(f), 0);
    tal_index_opt_init(&io);
    assert_int_equal(tal_store_build(fa, tal_test_join(dir, name), &io, NULL), 0);
}

/* The smallest workable cap grows by about 10 bytes a record (lengths 2, order 4, the
 * references 4, bitmaps and residue starts), not by the 24 to 32 of the whole arrays:
 * twice the records need at most 11 bytes a record more. */
static void test_plan_per_record(void **state)
{
    tal_reduce_opt_t opt;
    tal_reduce_plan_t small, big;
    const uint64_t n = 50000;
    (void)state;
    tiny_store(n, "tiny1.tal");
    tiny_store(2 * n, "tiny2.tal");
    tal_reduce_opt_init(&opt);
    opt.threads = 2;
    assert_int_equal(tal_budget_create(&opt.budget, 0), 0);
    assert_int_equal(tal_reduce_plan(tal_test_join(dir, "tiny1.tal"), &opt, &small), 0);
    assert_int_equal(tal_reduce_plan(tal_test_join(dir, "tiny2.tal"), &opt, &big), 0);
    assert_true(big.exact && big.records == 2 * n);
    assert_true(big.need > small.need);
    assert_true(big.need - small.need <= 11 * n);
    tal_budget_destroy(opt.budget);
}

typedef struct {
    int calls, writing, passes_seen;
    const char *last;
} progress_log_t;

static void on_progress(void *ctx, const tal_reduce_progress_t *p)
{
    progress_log_t *log = ctx;
    log->calls++;
    assert_non_null(p->stage);
    assert_true(p->total == 0 || p->done <= p->total);
    if (!strcmp(p->stage, "writing")) log->writing++;
    if (p->pass > log->passes_seen) log->passes_seen = p->pass;
    log->last = p->stage;
}

static void test_run_and_result(void **state)
{
    tal_reduce_opt_t opt;
    tal_reduce_result_t r;
    tal_dstore_t *d;
    tal_dinfo_t info;
    progress_log_t log = {0};
    char out[PATH_MAX + 16], clstr[PATH_MAX + 16];
    (void)state;
    /* tal_test_join's buffers rotate: paths the options keep get their own */
    snprintf(out, sizeof out, "%s/run/red.fasta", dir);
    snprintf(clstr, sizeof clstr, "%s/run/red.clstr", dir);
    mkdir(tal_test_join(dir, "run"), 0700);
    tal_reduce_opt_init(&opt);
    assert_int_equal(tal_reduce_set_aligner(&opt, "diamond"), 0);
    opt.threads = 2;
    opt.tmp_dir = tmp_dir;
    opt.clstr_path = clstr;
    opt.progress = on_progress;
    opt.ctx = &log;
    assert_int_equal(tal_reduce_run(tal_test_join(dir, "in.fa"), out, &opt, &r), 0);
    assert_int_equal(r.records, 96);
    assert_int_equal(r.references + r.members, 96);
    assert_int_equal(r.references, 12); /* one per family */
    assert_int_equal((int)r.references, count_lines(out, '>'));
    assert_int_equal((int)r.members + 1, count_lines(r.membership_path, 0));
    assert_string_equal(r.deltas_path, tal_test_join(dir, "run/red.deltas.tal"));
    assert_string_equal(r.membership_path, tal_test_join(dir, "run/red.members.tsv"));
    assert_non_null(r.taxid_path);                          /* diamond's map */
    assert_int_equal(count_lines(r.taxid_path, 0), 1 + 96); /* every record, members too */
    assert_int_equal(count_lines(r.clstr_path, '>'), 12);
    assert_true(r.reference_residues < r.residues);
    assert_true(r.identity == 0.9 && r.passes == 1 && !r.nucleotide);
    assert_true(r.peak_rss > 0);
    assert_true(log.calls > 0 && log.writing > 0);
    assert_int_equal(log.passes_seen, 0);
    /* the delta store agrees, and nothing is left in the scratch space */
    assert_int_equal(tal_dstore_open(&d, r.deltas_path, NULL, 1), 0);
    tal_dstore_info(d, &info);
    assert_int_equal(info.records, 96);
    assert_int_equal(info.references, r.references);
    tal_dstore_close(d);
    assert_int_equal(tal_dstore_verify(r.deltas_path, NULL), 0);
    assert_int_equal(dir_entries(tmp_dir), 0);
    tal_reduce_result_free(&r);
    assert_null(r.deltas_path);
    /* the same outputs again are refused without force, and kept */
    assert_int_equal(tal_reduce_run(tal_test_join(dir, "in.fa"), out, &opt, NULL), TAL_EEXIST);
    assert_int_equal(count_lines(out, '>'), 12);
    opt.force = 1;
    assert_int_equal(tal_reduce_run(tal_test_join(dir, "in.fa"), out, &opt, NULL), 0);
}

static void test_run_store_matches_fasta(void **state)
{
    tal_reduce_opt_t opt;
    tal_store_t *store;
    tal_index_opt_t io;
    size_t a_len, b_len;
    char *a, *b;
    (void)state;
    mkdir(tal_test_join(dir, "s1"), 0700);
    mkdir(tal_test_join(dir, "s2"), 0700);
    tal_index_opt_init(&io);
    assert_int_equal(
        tal_store_build(tal_test_join(dir, "in.fa"), tal_test_join(dir, "in.tal"), &io, NULL), 0);
    assert_int_equal(tal_store_open(&store, tal_test_join(dir, "in.tal")), 0);
    tal_reduce_opt_init(&opt);
    opt.tmp_dir = tmp_dir;
    assert_int_equal(tal_reduce_run_store(store, tal_test_join(dir, "s1/red.fasta"), &opt, NULL),
                     0);
    /* the store stays open and usable */
    assert_int_equal(tal_store_find(store, "fam0_0", 6, &(uint64_t){0}), 0);
    tal_store_close(store);
    assert_int_equal(
        tal_reduce_run(tal_test_join(dir, "in.fa"), tal_test_join(dir, "s2/red.fasta"), &opt, NULL),
        0);
    a = tal_test_read_file(tal_test_join(dir, "s1/red.members.tsv"), &a_len);
    b = tal_test_read_file(tal_test_join(dir, "s2/red.members.tsv"), &b_len);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    free(a);
    free(b);
}

static void test_ratio_search(void **state)
{
    tal_reduce_opt_t opt;
    tal_reduce_result_t r;
    progress_log_t log = {0};
    (void)state;
    mkdir(tal_test_join(dir, "ratio"), 0700);
    tal_reduce_opt_init(&opt);
    opt.ratio = 0.25;
    opt.tmp_dir = tmp_dir;
    opt.progress = on_progress;
    opt.ctx = &log;
    assert_int_equal(tal_reduce_run(tal_test_join(dir, "in.fa"),
                                    tal_test_join(dir, "ratio/red.fasta"), &opt, &r),
                     0);
    assert_true(r.references <= 24); /* 0.25 x 96 */
    assert_true(r.passes > 1);
    assert_true(log.passes_seen >= 1 && log.passes_seen == r.passes - 1);
    assert_true(r.identity >= 0.3 && r.identity <= 1.0);
    tal_reduce_result_free(&r);
}

/* The library's messages, caught through the log sink instead of stderr. */
static char caught[4096];
static void catch_line(void *ctx, tal_log_level_t level, const char *line)
{
    (void)ctx;
    if (level == TAL_LOG_ERROR && !caught[0]) snprintf(caught, sizeof caught, "%s", line);
}

static void test_failures_leave_nothing(void **state)
{
    tal_reduce_opt_t opt;
    tal_reduce_plan_t plan;
    char want[64];
    unsigned long long named;
    (void)state;
    mkdir(tal_test_join(dir, "fail"), 0700);
    tal_reduce_opt_init(&opt);
    opt.tmp_dir = tmp_dir;
    /* a cap below the plan: the message, through the sink, names the plan's smallest cap */
    opt.max_memory = 1 << 20;
    assert_int_equal(tal_reduce_plan(tal_test_join(dir, "in.fa"), &opt, &plan), 0);
    assert_false(plan.fits);
    caught[0] = '\0';
    tal_log_set_level(TAL_LOG_ERROR);
    tal_log_set_sink(catch_line, NULL);
    assert_int_equal(tal_reduce_run(tal_test_join(dir, "in.fa"),
                                    tal_test_join(dir, "fail/red.fasta"), &opt, NULL),
                     TAL_EMEMCAP);
    tal_log_set_sink(NULL, NULL);
    tal_log_set_level(TAL_LOG_QUIET);
    /* the same figure as the plan's, give or take the pages the process touched between */
    snprintf(want, sizeof want, "the smallest cap that works here is --max-memory ");
    assert_non_null(strstr(caught, want));
    named = strtoull(strstr(caught, want) + strlen(want), NULL, 10);
    assert_true(named + 1 >= plan.min_cap >> 20 && named <= (plan.min_cap >> 20) + 1);
    assert_null(strchr(caught, '\n'));
    opt.max_memory = 0;
    /* an output that is the input */
    assert_int_equal(
        tal_reduce_run(tal_test_join(dir, "in.fa"), tal_test_join(dir, "in.fa"), &opt, NULL),
        TAL_EUSAGE);
    /* bad options */
    opt.identity = 1.5;
    assert_int_equal(tal_reduce_run(tal_test_join(dir, "in.fa"),
                                    tal_test_join(dir, "fail/red.fasta"), &opt, NULL),
                     TAL_EUSAGE);
    opt.identity = 0.9;
    opt.threads = 0;
    assert_int_equal(tal_reduce_run(tal_test_join(dir, "in.fa"),
                                    tal_test_join(dir, "fail/red.fasta"), &opt, NULL),
                     TAL_EUSAGE);
    opt.threads = 1;
    /* bad FASTA */
    tal_test_write_file(tal_test_join(dir, "bad.fa"), ">a\nAC GT\n", 9);
    assert_int_equal(tal_reduce_run(tal_test_join(dir, "bad.fa"),
                                    tal_test_join(dir, "fail/red.fasta"), &opt, NULL),
                     TAL_EINPUT);
    assert_int_equal(dir_entries(tal_test_join(dir, "fail")), 0);
    assert_int_equal(dir_entries(tmp_dir), 0);
    /* the input is intact */
    assert_int_equal(count_lines(tal_test_join(dir, "in.fa"), '>'), 96);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opt_init_and_presets),    cmocka_unit_test(test_plan),
        cmocka_unit_test(test_plan_per_record),         cmocka_unit_test(test_run_and_result),
        cmocka_unit_test(test_run_store_matches_fasta), cmocka_unit_test(test_ratio_search),
        cmocka_unit_test(test_failures_leave_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
