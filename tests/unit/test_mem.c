/* Unit tests for talaria's own memory: the budget, huge-page buffers (THP, hugetlbfs and
 * its fallback, NUMA binding), what tal_mem_inspect reads back from the kernel, and the
 * buffer pool. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/mem.h"
#include "test_support.h"

#define MIB       ((size_t)1 << 20)
#define HUGE_PAGE (2 * MIB)

/* ---- helpers ---- */

/* Redirects stderr to a temporary file until stderr_captured_bytes() says how much was
 * written to it. */
typedef struct {
    char dir[4096];
    char path[4200];
    int saved_fd;
} stderr_capture_t;

static void stderr_capture_begin(stderr_capture_t *cap)
{
    int fd;
    assert_int_equal(tal_test_mkdtemp(cap->dir, sizeof cap->dir, "mem"), 0);
    snprintf(cap->path, sizeof cap->path, "%s/stderr", cap->dir);
    fflush(stderr);
    cap->saved_fd = dup(STDERR_FILENO);
    assert_true(cap->saved_fd >= 0);
    fd = open(cap->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
}

static long stderr_capture_end(stderr_capture_t *cap)
{
    struct stat st;
    fflush(stderr);
    assert_int_equal(dup2(cap->saved_fd, STDERR_FILENO), STDERR_FILENO);
    close(cap->saved_fd);
    assert_int_equal(stat(cap->path, &st), 0);
    if (st.st_size > 0) {
        char text[512] = {0};
        FILE *f = fopen(cap->path, "r");
        if (f) {
            size_t n = fread(text, 1, sizeof text - 1, f);
            text[n] = '\0';
            fclose(f);
        }
        print_error("unexpected stderr output: %s\n", text);
    }
    tal_test_rm_rf(cap->dir);
    return (long)st.st_size;
}

/* The word in [brackets] of a sysfs setting such as "always [madvise] never". */
static int sysfs_selected(const char *path, const char *word)
{
    char line[256], want[64];
    FILE *f = fopen(path, "r");
    int found;
    if (!f) return 0;
    found = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    snprintf(want, sizeof want, "[%s]", word);
    return found && strstr(line, want) != NULL;
}

static long read_long_file(const char *path)
{
    long value = -1;
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    if (fscanf(f, "%ld", &value) != 1) value = -1;
    fclose(f);
    return value;
}

/* HugePages_Free from /proc/meminfo, -1 when unknown */
static long hugetlb_pages_free(void)
{
    char line[256];
    long value = -1;
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "HugePages_Free: %ld", &value) == 1) break;
    fclose(f);
    return value;
}

/* Every byte of the buffer is zero, then holds what was written to it. */
static void check_usable(unsigned char *p, size_t size)
{
    for (size_t i = 0; i < size; i += 4096) assert_int_equal(p[i], 0);
    assert_int_equal(p[size - 1], 0);
    memset(p, 0xa5, size);
    for (size_t i = 0; i < size; i += 4093) assert_int_equal(p[i], 0xa5);
    assert_int_equal(p[size - 1], 0xa5);
}

/* The kernel's policy for an address, and the lowest node in its mask. */
static int kernel_policy(const void *p, int *lowest_node)
{
    enum { LONG_BITS = CHAR_BIT * sizeof(unsigned long) };
    unsigned long mask[1024 / LONG_BITS] = {0};
    int mode = -1;
    *lowest_node = -1;
    if (get_mempolicy(&mode, mask, 1024, (void *)p, MPOL_F_ADDR) != 0) return -1;
    for (int node = 0; node < 1024; node++)
        if (mask[node / LONG_BITS] >> (node % LONG_BITS) & 1) {
            *lowest_node = node;
            break;
        }
    return mode;
}

/* ---- budget ---- */

static void test_budget_cap_and_refusal(void **state)
{
    tal_budget_t *budget = NULL;
    (void)state;
    assert_int_equal(tal_budget_create(&budget, 1000), 0);
    assert_non_null(budget);
    assert_true(tal_budget_cap(budget) == 1000);
    assert_int_equal(tal_budget_reserve(budget, TAL_MEM_CHUNKS, 600), 0);
    assert_int_equal(tal_budget_reserve(budget, TAL_MEM_SORT, 400), 0);
    assert_true(tal_budget_used(budget, TAL_MEM_COMPONENTS) == 1000);
    /* the cap is reached: even one byte more is refused, and nothing changes */
    assert_int_equal(tal_budget_reserve(budget, TAL_MEM_CHUNKS, 1), TAL_EMEMCAP);
    assert_int_equal(tal_budget_reserve(budget, TAL_MEM_OTHER, UINT64_MAX), TAL_EMEMCAP);
    assert_true(tal_budget_used(budget, TAL_MEM_COMPONENTS) == 1000);
    assert_true(tal_budget_used(budget, TAL_MEM_CHUNKS) == 600);
    assert_true(tal_budget_used(budget, TAL_MEM_OTHER) == 0);
    assert_true(tal_budget_peak(budget) == 1000);
    /* released bytes can be reserved again */
    tal_budget_release(budget, TAL_MEM_SORT, 400);
    assert_true(tal_budget_used(budget, TAL_MEM_COMPONENTS) == 600);
    assert_int_equal(tal_budget_reserve(budget, TAL_MEM_KMERS, 401), TAL_EMEMCAP);
    assert_int_equal(tal_budget_reserve(budget, TAL_MEM_KMERS, 400), 0);
    assert_true(tal_budget_used(budget, TAL_MEM_KMERS) == 400);
    tal_budget_destroy(budget);
}

static void test_budget_components_and_peak(void **state)
{
    tal_budget_t *budget = NULL;
    uint64_t sum = 0;
    (void)state;
    assert_int_equal(tal_budget_create(&budget, 0), 0);
    for (int c = 0; c < TAL_MEM_COMPONENTS; c++)
        assert_int_equal(tal_budget_reserve(budget, (tal_mem_component_t)c, 100u * (c + 1)), 0);
    for (int c = 0; c < TAL_MEM_COMPONENTS; c++) {
        assert_true(tal_budget_used(budget, (tal_mem_component_t)c) == 100u * (c + 1));
        sum += 100u * (c + 1);
    }
    assert_true(tal_budget_used(budget, TAL_MEM_COMPONENTS) == sum);
    assert_true(tal_budget_peak(budget) == sum);
    /* the peak stays when bytes are released */
    uint64_t other = 100u * (TAL_MEM_OTHER + 1);
    tal_budget_release(budget, TAL_MEM_OTHER, other);
    tal_budget_release(budget, TAL_MEM_INPUT, 50);
    assert_true(tal_budget_used(budget, TAL_MEM_OTHER) == 0);
    assert_true(tal_budget_used(budget, TAL_MEM_INPUT) == 50);
    assert_true(tal_budget_used(budget, TAL_MEM_COMPONENTS) == sum - other - 50);
    assert_true(tal_budget_peak(budget) == sum);
    /* releasing more than a component holds releases only what it holds */
    tal_budget_release(budget, TAL_MEM_INPUT, 1000);
    assert_true(tal_budget_used(budget, TAL_MEM_INPUT) == 0);
    assert_true(tal_budget_used(budget, TAL_MEM_COMPONENTS) == sum - other - 100);
    assert_true(tal_budget_used(budget, TAL_MEM_CHUNKS) == 200);
    /* a new high raises the peak */
    assert_int_equal(tal_budget_reserve(budget, TAL_MEM_ALIGN, 50000), 0);
    assert_true(tal_budget_peak(budget) == sum - other - 100 + 50000);
    tal_budget_destroy(budget);
}

static void test_budget_unlimited_counts(void **state)
{
    tal_budget_t *budget = NULL;
    (void)state;
    assert_int_equal(tal_budget_create(&budget, 0), 0);
    assert_true(tal_budget_cap(budget) == 0);
    assert_int_equal(tal_budget_reserve(budget, TAL_MEM_SORT, (uint64_t)1 << 50), 0);
    assert_int_equal(tal_budget_reserve(budget, TAL_MEM_SORT, (uint64_t)1 << 50), 0);
    assert_true(tal_budget_used(budget, TAL_MEM_SORT) == (uint64_t)1 << 51);
    /* a total that would wrap around is refused even without a cap */
    assert_int_equal(tal_budget_reserve(budget, TAL_MEM_SORT, UINT64_MAX), TAL_EMEMCAP);
    assert_true(tal_budget_used(budget, TAL_MEM_COMPONENTS) == (uint64_t)1 << 51);
    tal_budget_destroy(budget);
}

static void test_budget_null_accepts(void **state)
{
    (void)state;
    assert_int_equal(tal_budget_reserve(NULL, TAL_MEM_CHUNKS, UINT64_MAX), 0);
    tal_budget_release(NULL, TAL_MEM_CHUNKS, 12345);
    assert_true(tal_budget_cap(NULL) == 0);
    assert_true(tal_budget_used(NULL, TAL_MEM_CHUNKS) == 0);
    assert_true(tal_budget_used(NULL, TAL_MEM_COMPONENTS) == 0);
    assert_true(tal_budget_peak(NULL) == 0);
    tal_budget_destroy(NULL);
}

static void test_budget_component_names(void **state)
{
    static const char *want[] = {"input",     "chunks",  "k-mers",  "sort",
                                 "alignment", "catalog", "records", "other"};
    (void)state;
    assert_int_equal(sizeof want / sizeof *want, TAL_MEM_COMPONENTS);
    for (int c = 0; c < TAL_MEM_COMPONENTS; c++)
        assert_string_equal(tal_mem_component_name((tal_mem_component_t)c), want[c]);
}

enum { RACE_THREADS = 4, RACE_STEP = 7, RACE_CAP = RACE_STEP * 10007 };

typedef struct {
    tal_budget_t *budget;
    uint64_t reserved; /* bytes this thread was granted and still holds */
    int churn;         /* reserve and release instead of filling up */
} race_arg_t;

static void *race_reserve(void *p)
{
    race_arg_t *arg = p;
    if (!arg->churn) {
        /* take the budget in steps until it refuses */
        while (tal_budget_reserve(arg->budget, TAL_MEM_CHUNKS, RACE_STEP) == 0)
            arg->reserved += RACE_STEP;
        return NULL;
    }
    for (int i = 0; i < 20000; i++) {
        uint64_t bytes = (uint64_t)(i % 5 + 1) * 1000;
        if (tal_budget_reserve(arg->budget, TAL_MEM_SORT, bytes) == 0)
            tal_budget_release(arg->budget, TAL_MEM_SORT, bytes);
    }
    return NULL;
}

static void test_budget_concurrent_never_exceeds_cap(void **state)
{
    tal_budget_t *budget = NULL;
    pthread_t threads[RACE_THREADS];
    race_arg_t args[RACE_THREADS];
    uint64_t granted = 0;
    (void)state;
    /* four threads race to fill the budget: together they get exactly the cap */
    assert_int_equal(tal_budget_create(&budget, RACE_CAP), 0);
    for (int t = 0; t < RACE_THREADS; t++) {
        args[t] = (race_arg_t){budget, 0, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, race_reserve, &args[t]), 0);
    }
    for (int t = 0; t < RACE_THREADS; t++) {
        pthread_join(threads[t], NULL);
        granted += args[t].reserved;
    }
    assert_true(granted == RACE_CAP);
    assert_true(tal_budget_used(budget, TAL_MEM_CHUNKS) == RACE_CAP);
    assert_true(tal_budget_peak(budget) == RACE_CAP);
    tal_budget_destroy(budget);

    /* reserve-and-release churn against a cap that fits only a few at once: the peak
     * can never go above the cap, and every byte comes back */
    assert_int_equal(tal_budget_create(&budget, 12000), 0);
    for (int t = 0; t < RACE_THREADS; t++) {
        args[t] = (race_arg_t){budget, 0, 1};
        assert_int_equal(pthread_create(&threads[t], NULL, race_reserve, &args[t]), 0);
    }
    for (int t = 0; t < RACE_THREADS; t++) pthread_join(threads[t], NULL);
    assert_true(tal_budget_peak(budget) <= 12000);
    assert_true(tal_budget_peak(budget) >= 5000);
    assert_true(tal_budget_used(budget, TAL_MEM_COMPONENTS) == 0);
    tal_budget_destroy(budget);
}

/* ---- huge-page buffers ---- */

static void test_huge_alloc_modes_aligned_zeroed(void **state)
{
    static const tal_huge_mode_t modes[] = {TAL_HUGE_THP, TAL_HUGE_HUGETLB, TAL_HUGE_NONE};
    static const size_t sizes[] = {1, HUGE_PAGE, 3 * MIB + 5};
    unsigned char *p;
    (void)state;
    p = tal_huge_alloc(3 * MIB);
    assert_non_null(p);
    assert_true((uintptr_t)p % HUGE_PAGE == 0);
    check_usable(p, 3 * MIB);
    tal_huge_free(p, 3 * MIB);
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            int hugetlb = -1;
            p = tal_huge_alloc_ex(sizes[s], modes[m], TAL_NODE_LOCAL, &hugetlb);
            assert_non_null(p);
            assert_true((uintptr_t)p % HUGE_PAGE == 0);
            assert_true(hugetlb == 0 || hugetlb == 1);
            if (modes[m] != TAL_HUGE_HUGETLB) assert_int_equal(hugetlb, 0);
            check_usable(p, sizes[s]);
            tal_huge_free(p, sizes[s]);
        }
    /* bad arguments */
    assert_null(tal_huge_alloc_ex(MIB, (tal_huge_mode_t)7, TAL_NODE_LOCAL, NULL));
    assert_null(tal_huge_alloc_ex(MIB, TAL_HUGE_THP, TAL_NODE_ANY - 1, NULL));
    {
        /* no binding at all (memory.numa = off): a usable range */
        void *unbound = tal_huge_alloc_ex(MIB, TAL_HUGE_THP, TAL_NODE_ANY, NULL);
        assert_non_null(unbound);
        check_usable(unbound, MIB);
        tal_huge_free(unbound, MIB);
    }
    assert_null(tal_huge_alloc_ex(SIZE_MAX - 10, TAL_HUGE_THP, TAL_NODE_LOCAL, NULL));
}

/* tal_huge_free unmaps the whole rounded-up range */
static void test_huge_free_unmaps(void **state)
{
    size_t size = 3 * MIB + 1;
    unsigned char *p, vec[1];
    tal_mem_report_t report;
    (void)state;
    p = tal_huge_alloc_ex(size, TAL_HUGE_NONE, TAL_NODE_LOCAL, NULL);
    assert_non_null(p);
    memset(p, 1, size);
    tal_huge_free(p, size);
    /* mincore fails with ENOMEM on unmapped pages: the tail of the last huge page too */
    assert_int_equal(mincore(p + 4 * MIB - 4096, 4096, vec), -1);
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(mincore(p, 4096, vec), -1);
    assert_int_equal(tal_mem_inspect(p, 4 * MIB, &report), 0);
    assert_true(report.rss_bytes == 0);
}

static void test_numa_nodes(void **state)
{
    int nodes = tal_numa_nodes();
    (void)state;
    assert_true(nodes >= 1);
    assert_int_equal(tal_numa_nodes(), nodes);
    if (numa_available() < 0)
        assert_int_equal(nodes, 1);
    else
        assert_int_equal(nodes, numa_num_configured_nodes() > 1 ? numa_num_configured_nodes() : 1);
}

static void test_huge_bind_node0(void **state)
{
    size_t size = 4 * MIB;
    unsigned char *p;
    tal_mem_report_t report;
    int lowest = -2;
    (void)state;
    if (numa_available() < 0) skip(); /* no memory policies: nothing to see */
    p = tal_huge_alloc_ex(size, TAL_HUGE_THP, 0, NULL);
    assert_non_null(p);
    memset(p, 7, size);
    assert_int_equal(kernel_policy(p, &lowest), MPOL_BIND);
    assert_int_equal(lowest, 0);
    assert_int_equal(kernel_policy(p + size - 1, &lowest), MPOL_BIND);
    assert_int_equal(tal_mem_inspect(p, size, &report), 0);
    assert_int_equal(report.policy, MPOL_BIND);
    assert_int_equal(report.bound_node, 0);
    assert_true(report.rss_bytes >= size);
    tal_huge_free(p, size);
    /* a node that does not exist cannot be bound to */
    assert_null(tal_huge_alloc_ex(size, TAL_HUGE_THP, tal_numa_nodes() + 5, NULL));
}

static void test_huge_local_single_node_quiet(void **state)
{
    stderr_capture_t cap;
    size_t size = 4 * MIB;
    unsigned char *p;
    tal_mem_report_t report;
    int lowest = -2;
    (void)state;
    if (tal_numa_nodes() > 1) skip(); /* binds to the local node there */
    tal_log_set_level(TAL_LOG_WARN);
    stderr_capture_begin(&cap);
    p = tal_huge_alloc_ex(size, TAL_HUGE_THP, TAL_NODE_LOCAL, NULL);
    if (p) memset(p, 3, size);
    assert_int_equal(stderr_capture_end(&cap), 0);
    assert_non_null(p);
    if (numa_available() >= 0) {
        assert_int_equal(kernel_policy(p, &lowest), MPOL_DEFAULT);
        assert_int_equal(lowest, -1);
        assert_int_equal(tal_mem_inspect(p, size, &report), 0);
        assert_int_equal(report.policy, MPOL_DEFAULT);
        assert_int_equal(report.bound_node, -1);
    }
    tal_huge_free(p, size);
}

/* libnuma's own warnings (here: a node string it cannot parse) are kept off stderr by the
 * program's replacements of its hooks (src/cli/signals.c, linked into this test: the
 * library itself overrides nothing) */
static void test_libnuma_warnings_quiet(void **state)
{
    stderr_capture_t cap;
    struct bitmask *mask;
    (void)state;
    tal_log_set_level(TAL_LOG_WARN);
    stderr_capture_begin(&cap);
    mask = numa_parse_nodestring("no-such-node");
    numa_warn(1, "a warning %d\n", 1);
    numa_error("an error");
    assert_int_equal(stderr_capture_end(&cap), 0);
    assert_null(mask);
}

static void test_huge_thp_backed(void **state)
{
    const char *enabled = "/sys/kernel/mm/transparent_hugepage/enabled";
    size_t size = 8 * MIB;
    tal_mem_report_t report = {0};
    (void)state;
    if (!sysfs_selected(enabled, "madvise") && !sysfs_selected(enabled, "always")) skip();
    /* the kernel may not find free 2 MiB blocks under fragmentation: try a few times */
    for (int attempt = 0; attempt < 5; attempt++) {
        unsigned char *p = tal_huge_alloc_ex(size, TAL_HUGE_THP, TAL_NODE_LOCAL, NULL);
        assert_non_null(p);
        memset(p, 1, size);
        assert_int_equal(tal_mem_inspect(p, size, &report), 0);
        assert_true(report.rss_bytes >= size);
        tal_huge_free(p, size);
        if (report.anon_huge_bytes > 0) break;
        usleep(100000);
    }
    if (report.anon_huge_bytes == 0) print_error("no AnonHugePages after 5 attempts\n");
    assert_true(report.anon_huge_bytes > 0);
    assert_true(report.anon_huge_bytes % HUGE_PAGE == 0);
}

/* TAL_HUGE_NONE asks for no huge pages even where THP is "always" */
static void test_huge_none_plain_pages(void **state)
{
    size_t size = 8 * MIB;
    tal_mem_report_t report;
    unsigned char *p;
    (void)state;
    p = tal_huge_alloc_ex(size, TAL_HUGE_NONE, TAL_NODE_LOCAL, NULL);
    assert_non_null(p);
    memset(p, 1, size);
    assert_int_equal(tal_mem_inspect(p, size, &report), 0);
    assert_true(report.rss_bytes >= size);
    assert_true(report.anon_huge_bytes == 0);
    assert_true(report.hugetlb_bytes == 0);
    tal_huge_free(p, size);
}

static void test_hugetlb_fallback_without_reserved_pages(void **state)
{
    size_t size = 3 * MIB;
    stderr_capture_t cap;
    tal_mem_report_t report;
    unsigned char *p;
    int hugetlb = -1;
    (void)state;
    if (read_long_file("/proc/sys/vm/nr_hugepages") != 0 ||
        read_long_file("/proc/sys/vm/nr_overcommit_hugepages") > 0)
        skip();
    tal_log_set_level(TAL_LOG_WARN);
    stderr_capture_begin(&cap);
    p = tal_huge_alloc_ex(size, TAL_HUGE_HUGETLB, TAL_NODE_LOCAL, &hugetlb);
    assert_int_equal(stderr_capture_end(&cap), 0);
    assert_non_null(p);
    assert_int_equal(hugetlb, 0);
    assert_true((uintptr_t)p % HUGE_PAGE == 0);
    check_usable(p, size);
    assert_int_equal(tal_mem_inspect(p, size, &report), 0);
    assert_true(report.hugetlb_bytes == 0);
    assert_true(report.rss_bytes >= size);
    tal_huge_free(p, size);
}

/* Runs only where 2 MiB hugetlbfs pages are reserved (echo 4 > /proc/sys/vm/nr_hugepages). */
static void test_hugetlb_reserved_pages(void **state)
{
    size_t size = 3 * MIB;
    tal_mem_report_t report;
    unsigned char *p;
    int hugetlb = -1;
    (void)state;
    if (hugetlb_pages_free() < 2) skip();
    p = tal_huge_alloc_ex(size, TAL_HUGE_HUGETLB, 0, &hugetlb);
    assert_non_null(p);
    assert_int_equal(hugetlb, 1);
    check_usable(p, size);
    assert_int_equal(tal_mem_inspect(p, size, &report), 0);
    assert_true(report.hugetlb_bytes == 2 * HUGE_PAGE);
    if (numa_available() >= 0) assert_int_equal(report.bound_node, 0);
    tal_huge_free(p, size);
    assert_int_equal(tal_mem_inspect(p, size, &report), 0);
    assert_true(report.hugetlb_bytes == 0);
}

static void test_inspect_unmapped_range(void **state)
{
    size_t size = 4 * MIB;
    tal_mem_report_t report;
    void *p;
    (void)state;
    /* a range that was mapped and is not any more */
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    memset(p, 1, size);
    assert_int_equal(munmap(p, size), 0);
    memset(&report, 0x55, sizeof report);
    assert_int_equal(tal_mem_inspect(p, size, &report), 0);
    assert_true(report.rss_bytes == 0);
    assert_true(report.anon_huge_bytes == 0);
    assert_true(report.hugetlb_bytes == 0);
    assert_int_equal(report.bound_node, -1);
    /* NULL and an empty range */
    assert_int_equal(tal_mem_inspect(NULL, 4096, &report), 0);
    assert_true(report.rss_bytes == 0);
    assert_int_equal(tal_mem_inspect(&report, 0, &report), 0);
    assert_true(report.rss_bytes == 0);
}

/* Rss counts the pages touched. The kernel may merge the mapping with a neighbour of the
 * same kind, whose pages smaps counts too, so only the difference is exact. */
static void test_inspect_counts_touched_pages(void **state)
{
    size_t size = 4 * MIB;
    tal_mem_report_t before, after;
    unsigned char *p;
    (void)state;
    p = tal_huge_alloc_ex(size, TAL_HUGE_NONE, TAL_NODE_LOCAL, NULL);
    assert_non_null(p);
    assert_int_equal(tal_mem_inspect(p, size, &before), 0);
    memset(p, 1, MIB);
    assert_int_equal(tal_mem_inspect(p, size, &after), 0);
    assert_true(after.rss_bytes >= before.rss_bytes + MIB);
    assert_true(after.rss_bytes < before.rss_bytes + 2 * MIB);
    tal_huge_free(p, size);
}

/* ---- pool ---- */

static void test_pool_reuses_buffers(void **state)
{
    tal_pool_opt_t opt;
    tal_pool_t *pool = NULL;
    tal_pool_stats_t stats;
    void *a = NULL, *b = NULL, *c = NULL;
    size_t cap_a = 0, cap_b = 0, cap_c = 0;
    (void)state;
    tal_pool_opt_init(&opt);
    assert_true(opt.buffer_size == 4 * MIB);
    assert_int_equal(opt.max_buffers, 0);
    assert_int_equal(opt.node, TAL_NODE_LOCAL);
    assert_int_equal(opt.mode, TAL_HUGE_THP);
    assert_null(opt.budget);
    opt.buffer_size = 3 * MIB; /* rounded up to 4 MiB */
    assert_int_equal(tal_pool_create(&pool, &opt), 0);
    assert_int_equal(tal_pool_get(pool, 100, &a, &cap_a), 0);
    assert_non_null(a);
    assert_true(cap_a == 4 * MIB);
    assert_true((uintptr_t)a % HUGE_PAGE == 0);
    check_usable(a, cap_a);
    assert_int_equal(tal_pool_get(pool, 4 * MIB, &b, &cap_b), 0);
    assert_true(b != a);
    assert_true(cap_b == 4 * MIB);
    tal_pool_stats(pool, &stats);
    assert_int_equal(stats.buffers, 2);
    assert_true(stats.bytes == 8 * MIB);
    assert_int_equal(stats.hugetlb, 0);
    /* a buffer put back is the next one handed out, no new mapping */
    tal_pool_put(pool, a, cap_a);
    assert_int_equal(tal_pool_get(pool, 0, &c, &cap_c), 0);
    assert_ptr_equal(c, a);
    assert_true(cap_c == 4 * MIB);
    assert_int_equal(((unsigned char *)c)[12345], 0xa5); /* kept, not remapped */
    tal_pool_stats(pool, &stats);
    assert_int_equal(stats.buffers, 2);
    tal_pool_put(pool, b, cap_b);
    tal_pool_put(pool, c, cap_c);
    tal_pool_stats(pool, &stats);
    assert_int_equal(stats.buffers, 2);
    tal_pool_destroy(pool);
}

static void test_pool_max_buffers(void **state)
{
    tal_pool_opt_t opt;
    tal_pool_t *pool = NULL;
    void *bufs[3] = {NULL};
    size_t caps[3] = {0};
    void *extra = (void *)1;
    size_t extra_cap = 1;
    (void)state;
    tal_pool_opt_init(&opt);
    opt.buffer_size = HUGE_PAGE;
    opt.max_buffers = 3;
    assert_int_equal(tal_pool_create(&pool, &opt), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(tal_pool_get(pool, HUGE_PAGE, &bufs[i], &caps[i]), 0);
    /* all three out: the fourth is refused at once, not waited for */
    assert_int_equal(tal_pool_get(pool, HUGE_PAGE, &extra, &extra_cap), TAL_EMEMCAP);
    assert_null(extra);
    assert_true(extra_cap == 0);
    tal_pool_put(pool, bufs[1], caps[1]);
    assert_int_equal(tal_pool_get(pool, 1, &extra, &extra_cap), 0);
    assert_ptr_equal(extra, bufs[1]);
    tal_pool_put(pool, extra, extra_cap);
    tal_pool_put(pool, bufs[0], caps[0]);
    tal_pool_put(pool, bufs[2], caps[2]);
    tal_pool_destroy(pool);
}

static void test_pool_budget(void **state)
{
    tal_budget_t *budget = NULL;
    tal_pool_opt_t opt;
    tal_pool_t *pool = NULL;
    tal_pool_stats_t stats;
    void *a = NULL, *b = NULL, *big = NULL;
    size_t cap_a = 0, cap_b = 0, cap_big = 0;
    (void)state;
    assert_int_equal(tal_budget_create(&budget, 10 * MIB), 0);
    tal_pool_opt_init(&opt);
    opt.buffer_size = 4 * MIB;
    opt.budget = budget;
    opt.component = TAL_MEM_CHUNKS;
    assert_int_equal(tal_pool_create(&pool, &opt), 0);
    assert_int_equal(tal_pool_get(pool, MIB, &a, &cap_a), 0);
    assert_int_equal(tal_pool_get(pool, MIB, &b, &cap_b), 0);
    assert_true(tal_budget_used(budget, TAL_MEM_CHUNKS) == 8 * MIB);
    /* a third buffer would pass the 10 MiB cap */
    assert_int_equal(tal_pool_get(pool, MIB, &big, &cap_big), TAL_EMEMCAP);
    assert_null(big);
    assert_true(tal_budget_used(budget, TAL_MEM_CHUNKS) == 8 * MIB);
    tal_pool_stats(pool, &stats);
    assert_int_equal(stats.buffers, 2);
    /* a pooled buffer put back stays reserved: no room for a 6 MiB one-off */
    tal_pool_put(pool, b, cap_b);
    assert_int_equal(tal_pool_get(pool, 5 * MIB, &big, &cap_big), TAL_EMEMCAP);
    assert_true(tal_budget_used(budget, TAL_MEM_CHUNKS) == 8 * MIB);
    tal_pool_put(pool, a, cap_a);
    tal_pool_destroy(pool);
    assert_true(tal_budget_used(budget, TAL_MEM_COMPONENTS) == 0);

    /* a one-off buffer is reserved in whole huge pages and released when put back */

    assert_int_equal(tal_pool_create(&pool, &opt), 0);
    assert_int_equal(tal_pool_get(pool, 5 * MIB + 1, &big, &cap_big), 0);
    assert_true(cap_big == 6 * MIB);
    check_usable(big, cap_big);
    assert_true(tal_budget_used(budget, TAL_MEM_CHUNKS) == 6 * MIB);
    tal_pool_stats(pool, &stats);
    assert_int_equal(stats.buffers, 0);
    assert_true(stats.bytes == 6 * MIB);
    assert_int_equal(tal_pool_get(pool, MIB, &a, &cap_a), 0);
    tal_pool_stats(pool, &stats);
    assert_int_equal(stats.buffers, 1);
    assert_true(stats.bytes == 10 * MIB);
    tal_pool_put(pool, big, cap_big);
    assert_true(tal_budget_used(budget, TAL_MEM_CHUNKS) == 4 * MIB);
    tal_pool_stats(pool, &stats);
    assert_true(stats.bytes == 4 * MIB);
    tal_pool_put(pool, a, cap_a);
    tal_pool_destroy(pool);
    assert_true(tal_budget_used(budget, TAL_MEM_COMPONENTS) == 0);
    assert_true(tal_budget_peak(budget) == 10 * MIB);
    tal_budget_destroy(budget);
}

static void test_pool_node_and_bad_options(void **state)
{
    tal_pool_opt_t opt;
    tal_pool_t *pool = (tal_pool_t *)1;
    tal_pool_stats_t stats;
    void *buf = NULL;
    size_t cap = 0;
    (void)state;
    tal_pool_opt_init(&opt);
    opt.buffer_size = 0;
    assert_int_equal(tal_pool_create(&pool, &opt), TAL_EUSAGE);
    assert_null(pool);
    tal_pool_opt_init(&opt);
    opt.node = 100000;
    assert_int_equal(tal_pool_create(&pool, &opt), TAL_EUSAGE);
    opt.node = TAL_NODE_ANY - 1;
    assert_int_equal(tal_pool_create(&pool, &opt), TAL_EUSAGE);
    /* TALARIA_NUMA=off (memory.numa = off) asks for no binding */
    setenv("TALARIA_NUMA", "off", 1);
    tal_pool_opt_init(&opt);
    assert_int_equal(opt.node, TAL_NODE_ANY);
    unsetenv("TALARIA_NUMA");
    tal_pool_opt_init(&opt);
    assert_int_equal(opt.node, TAL_NODE_LOCAL);

    tal_pool_opt_init(&opt);
    opt.buffer_size = HUGE_PAGE;
    opt.node = 0;
    assert_int_equal(tal_pool_create(&pool, &opt), 0);
    tal_pool_stats(pool, &stats);
    assert_int_equal(stats.buffers, 0);
    assert_true(stats.bytes == 0);
    assert_int_equal(tal_pool_get(pool, 10, &buf, &cap), 0);
    memset(buf, 1, cap);
    tal_pool_stats(pool, &stats);
    assert_int_equal(stats.numa_bound, numa_available() >= 0);
    if (numa_available() >= 0) {
        tal_mem_report_t report;
        assert_int_equal(tal_mem_inspect(buf, cap, &report), 0);
        assert_int_equal(report.policy, MPOL_BIND);
        assert_int_equal(report.bound_node, 0);
    }
    tal_pool_put(pool, buf, cap);
    tal_pool_destroy(pool);
}

enum { POOL_THREADS = 4 };

static void *pool_worker(void *p)
{
    tal_pool_t *pool = p;
    for (int i = 0; i < 200; i++) {
        void *buf = NULL;
        size_t cap = 0;
        if (tal_pool_get(pool, 1000, &buf, &cap) != 0) return (void *)1;
        /* nobody else holds this buffer: what is written stays */
        memset(buf, i & 0xff, 4096);
        for (int k = 0; k < 4096; k += 512)
            if (((unsigned char *)buf)[k] != (i & 0xff)) return (void *)2;
        tal_pool_put(pool, buf, cap);
    }
    return NULL;
}

/* one buffer per thread at most: the limit of four buffers is never hit */
static void test_pool_threads(void **state)
{
    tal_pool_opt_t opt;
    tal_pool_t *pool = NULL;
    tal_pool_stats_t stats;
    pthread_t threads[POOL_THREADS];
    (void)state;
    tal_pool_opt_init(&opt);
    opt.buffer_size = HUGE_PAGE;
    opt.max_buffers = POOL_THREADS;
    assert_int_equal(tal_pool_create(&pool, &opt), 0);
    for (int t = 0; t < POOL_THREADS; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, pool_worker, pool), 0);
    for (int t = 0; t < POOL_THREADS; t++) {
        void *result = (void *)3;
        pthread_join(threads[t], &result);
        assert_null(result);
    }
    tal_pool_stats(pool, &stats);
    assert_true(stats.buffers >= 1 && stats.buffers <= POOL_THREADS);
    tal_pool_destroy(pool);
}

/* TALARIA_HUGE_PAGES picks the pool's page mode; anything else means THP. */
static void test_huge_mode_from_env(void **state)
{
    tal_pool_opt_t opt;
    (void)state;
    setenv("TALARIA_HUGE_PAGES", "hugetlb", 1);
    tal_pool_opt_init(&opt);
    assert_int_equal(opt.mode, TAL_HUGE_HUGETLB);
    setenv("TALARIA_HUGE_PAGES", "none", 1);
    tal_pool_opt_init(&opt);
    assert_int_equal(opt.mode, TAL_HUGE_NONE);
    setenv("TALARIA_HUGE_PAGES", "off", 1); /* memory.huge_pages = "off" */
    tal_pool_opt_init(&opt);
    assert_int_equal(opt.mode, TAL_HUGE_NONE);
    setenv("TALARIA_HUGE_PAGES", "bogus", 1);
    tal_pool_opt_init(&opt);
    assert_int_equal(opt.mode, TAL_HUGE_THP);
    unsetenv("TALARIA_HUGE_PAGES");
    tal_pool_opt_init(&opt);
    assert_int_equal(opt.mode, TAL_HUGE_THP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_cap_and_refusal),
        cmocka_unit_test(test_budget_components_and_peak),
        cmocka_unit_test(test_budget_unlimited_counts),
        cmocka_unit_test(test_budget_null_accepts),
        cmocka_unit_test(test_budget_component_names),
        cmocka_unit_test(test_budget_concurrent_never_exceeds_cap),
        cmocka_unit_test(test_huge_local_single_node_quiet),
        cmocka_unit_test(test_libnuma_warnings_quiet),
        cmocka_unit_test(test_huge_alloc_modes_aligned_zeroed),
        cmocka_unit_test(test_huge_free_unmaps),
        cmocka_unit_test(test_numa_nodes),
        cmocka_unit_test(test_huge_bind_node0),
        cmocka_unit_test(test_huge_thp_backed),
        cmocka_unit_test(test_huge_none_plain_pages),
        cmocka_unit_test(test_hugetlb_fallback_without_reserved_pages),
        cmocka_unit_test(test_hugetlb_reserved_pages),
        cmocka_unit_test(test_inspect_unmapped_range),
        cmocka_unit_test(test_inspect_counts_touched_pages),
        cmocka_unit_test(test_pool_reuses_buffers),
        cmocka_unit_test(test_pool_max_buffers),
        cmocka_unit_test(test_pool_budget),
        cmocka_unit_test(test_pool_node_and_bad_options),
        cmocka_unit_test(test_pool_threads),
        cmocka_unit_test(test_huge_mode_from_env),
    };
    return cmocka_run_group_tests_name("mem", tests, NULL, NULL);
}
