/* Huge-page-friendly anonymous mappings, bound to a NUMA node on request, and a report of
 * what the kernel did with a range. Random access to big tables (the accession table
 * while indexing) is dominated by TLB misses on 4 KiB pages; huge pages remove most. */
#define _GNU_SOURCE
#include "talaria/mem.h"

#include "talaria/error.h"
#include "talaria/log.h"

#include <errno.h>
#include <limits.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_ALIGN    TAL_HUGE_PAGE_BYTES
/* log2 of the page size in the MAP_HUGETLB flags: ask for 2 MiB pages even where the
 * default hugetlbfs page size is 1 GiB */
#define MAP_HUGE_2MIB (21 << MAP_HUGE_SHIFT)
/* node masks passed to the kernel cover this many nodes (CONFIG_NODES_SHIFT is at most 10) */
#define MASK_NODES    1024
#define ULONG_BITS    (CHAR_BIT * sizeof(unsigned long))

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* The length actually mapped for a request; alloc and free must agree on it. */
static size_t map_len(size_t size) { return round_up(size ? size : 1, HUGE_ALIGN); }

/* ---- libnuma ---- */

static pthread_once_t numa_once = PTHREAD_ONCE_INIT;
static int numa_usable; /* numa_available() >= 0: the kernel takes memory policies */
static int numa_node_count = 1;

static void numa_probe(void)
{
    int nodes;
    if (numa_available() < 0) return;
    numa_usable = 1;
    nodes = numa_num_configured_nodes();
    numa_node_count = nodes > 1 ? nodes : 1;
}

int tal_numa_nodes(void)
{
    pthread_once(&numa_once, numa_probe);
    return numa_node_count;
}

/* mbind(MPOL_BIND) to one node: 0, or -1 with errno set. */
static int bind_to_node(void *p, size_t len, int node)
{
    unsigned long mask[MASK_NODES / ULONG_BITS] = {0};
    if (node < 0 || node >= MASK_NODES) {
        errno = EINVAL;
        return -1;
    }
    mask[(size_t)node / ULONG_BITS] = 1ul << ((size_t)node % ULONG_BITS);
    /* the kernel reads maxnode - 1 bits */
    return (int)mbind(p, len, MPOL_BIND, mask, (unsigned long)node + 2, 0);
}

/* Applies the node request to an untouched range: 0, or -1 with errno set when an
 * explicit node cannot be honoured. TAL_NODE_LOCAL never fails: where it cannot bind,
 * first touch places the pages. */
static int place_on_node(void *p, size_t len, int node)
{
    if (node == TAL_NODE_ANY) return 0;
    pthread_once(&numa_once, numa_probe);
    if (node == TAL_NODE_LOCAL) {
        int cpu, local;
        if (!numa_usable || numa_node_count < 2) return 0;
        cpu = sched_getcpu();
        local = cpu >= 0 ? numa_node_of_cpu(cpu) : -1;
        if (local < 0 || bind_to_node(p, len, local) != 0)
            tal_log_debug("huge buffer not bound to the local NUMA node (cpu %d)", cpu);
        return 0;
    }
    if (!numa_usable) {
        /* without memory policies everything is on node 0 already */
        if (node == 0) return 0;
        errno = EINVAL;
        return -1;
    }
    return bind_to_node(p, len, node);
}

/* ---- mappings ---- */

/* len bytes at a 2 MiB boundary, so that whole huge pages fit: a larger plain mapping
 * trimmed to an aligned window. */
static void *map_aligned(size_t len)
{
    size_t span = len + HUGE_ALIGN;
    char *raw, *aligned;
    raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    aligned = (char *)round_up((size_t)(uintptr_t)raw, HUGE_ALIGN);
    if (aligned > raw) munmap(raw, (size_t)(aligned - raw));
    if (raw + span > aligned + len) munmap(aligned + len, (size_t)(raw + span - (aligned + len)));
    return aligned;
}

/* hugetlbfs pages are aligned by the kernel; NULL when none are reserved */
static void *map_hugetlb(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MIB, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void *huge_map(size_t size, tal_huge_mode_t mode, int bind, int node, int *hugetlb)
{
    size_t len;
    void *p = NULL;
    int from_hugetlb = 0;
    if (hugetlb) *hugetlb = 0;
    if ((mode != TAL_HUGE_THP && mode != TAL_HUGE_HUGETLB && mode != TAL_HUGE_NONE) ||
        node < TAL_NODE_ANY) {
        errno = EINVAL;
        return NULL;
    }
    if (size > SIZE_MAX - 2 * HUGE_ALIGN) {
        errno = ENOMEM;
        return NULL;
    }
    len = map_len(size);
    if (mode == TAL_HUGE_HUGETLB) {
        p = map_hugetlb(len);
        from_hugetlb = p != NULL;
    }
    if (!p) p = map_aligned(len);
    if (!p) return NULL;
    /* both advice and policy must be set before the first touch to take effect */
    if (!from_hugetlb) madvise(p, len, mode == TAL_HUGE_NONE ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
    if (bind && place_on_node(p, len, node) != 0) {
        int err = errno;
        munmap(p, len);
        errno = err;
        return NULL;
    }
    if (hugetlb) *hugetlb = from_hugetlb;
    return p;
}

void *tal_huge_alloc(size_t size) { return huge_map(size, TAL_HUGE_THP, 0, TAL_NODE_LOCAL, NULL); }

void *tal_huge_alloc_ex(size_t size, tal_huge_mode_t mode, int node, int *hugetlb)
{
    return huge_map(size, mode, 1, node, hugetlb);
}

void tal_huge_free(void *p, size_t size)
{
    if (p) munmap(p, map_len(size));
}

/* ---- what the kernel did ---- */

/* Adds the smaps counters of every mapping overlapping [lo, hi). */
static int read_smaps(uintptr_t lo, uintptr_t hi, tal_mem_report_t *report)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char *line = NULL;
    size_t line_cap = 0;
    int overlaps = 0;
    if (!f) return TAL_EIO;
    while (getline(&line, &line_cap, f) > 0) {
        unsigned long start, end;
        unsigned long long kib;
        char perms[8], field[32];
        if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3) {
            /* a mapping's header line: its counters follow */
            overlaps = lo < hi && start < hi && end > lo;
            continue;
        }
        if (!overlaps || sscanf(line, "%31[^:]: %llu kB", field, &kib) != 2) continue;
        if (strcmp(field, "Rss") == 0)
            report->rss_bytes += kib * 1024;
        else if (strcmp(field, "AnonHugePages") == 0)
            report->anon_huge_bytes += kib * 1024;
        else if (strcmp(field, "Private_Hugetlb") == 0 || strcmp(field, "Shared_Hugetlb") == 0)
            report->hugetlb_bytes += kib * 1024;
    }
    free(line);
    fclose(f);
    return 0;
}

int tal_mem_inspect(const void *p, size_t size, tal_mem_report_t *report)
{
    unsigned long mask[MASK_NODES / ULONG_BITS] = {0};
    uintptr_t lo = (uintptr_t)p, hi = size > UINTPTR_MAX - lo ? UINTPTR_MAX : lo + size;
    int mode, rc;
    memset(report, 0, sizeof *report);
    /* -1: get_mempolicy failed (an unmapped address, or no NUMA support) */
    report->policy = -1;
    report->bound_node = -1;
    rc = read_smaps(lo, hi, report);
    if (get_mempolicy(&mode, mask, MASK_NODES, (void *)lo, MPOL_F_ADDR) == 0) {
        report->policy = mode;
        if (mode == MPOL_BIND || mode == MPOL_PREFERRED || mode == MPOL_PREFERRED_MANY) {
            for (int node = 0; node < MASK_NODES; node++)
                if (mask[(size_t)node / ULONG_BITS] >> ((size_t)node % ULONG_BITS) & 1) {
                    report->bound_node = node;
                    break;
                }
        }
    }
    return rc;
}
