/* Memory that talaria maps itself, and the one budget per run that every large
 * allocation is reserved from.
 *
 * - Huge-page buffers: 2 MiB-aligned anonymous mappings with transparent huge pages
 *   requested before first touch (or explicit hugetlbfs pages when asked, falling back
 *   to THP when none are reserved), bound to a NUMA node when the machine has more
 *   than one, returned to the OS on free.
 * - A budget: a byte cap shared by all threads, with the bytes in use per component,
 *   so that what talaria believes it holds can be set beside what the kernel measures.
 * - A pool of equal-sized buffers (chunk buffers), reserved from a budget.
 * - A report of what the kernel actually did with a range: AnonHugePages from
 *   /proc/self/smaps and the NUMA policy from get_mempolicy. */
#ifndef TALARIA_MEM_H
#define TALARIA_MEM_H

#include "talaria/api.h"

#include <stddef.h>
#include <stdint.h>

TAL_BEGIN_DECLS

/* ---- huge-page buffers ---- */

/* The huge page size the buffers are aligned to and sized in multiples of. */
#define TAL_HUGE_PAGE_BYTES ((size_t)2 << 20)

typedef enum {
    TAL_HUGE_THP = 0,     /* madvise(MADV_HUGEPAGE) before first touch (the default) */
    TAL_HUGE_HUGETLB = 1, /* MAP_HUGETLB 2 MiB pages; THP when none are reserved */
    TAL_HUGE_NONE = 2     /* plain 4 KiB pages */
} tal_huge_mode_t;

/* Zero-filled THP mapping; NULL on failure. */
TAL_EXPORT void *tal_huge_alloc(size_t size);
TAL_EXPORT void tal_huge_free(void *p, size_t size);

/* As tal_huge_alloc with a mode and a NUMA node: node >= 0 binds the range to that node
 * (mbind, MPOL_BIND) before first touch; node == TAL_NODE_LOCAL binds to the calling
 * thread's node when libnuma reports more than one configured node and does nothing
 * otherwise (first touch), silently. *hugetlb (may be NULL) is set to 1 when the range
 * is backed by hugetlbfs pages. Free with tal_huge_free(p, size). */
#define TAL_NODE_LOCAL (-1)
/* No binding at all: first touch places the pages (memory.numa = off). */
#define TAL_NODE_ANY   (-2)
TAL_EXPORT void *tal_huge_alloc_ex(size_t size, tal_huge_mode_t mode, int node, int *hugetlb);

/* Configured NUMA nodes per libnuma; 1 when NUMA is unavailable. */
TAL_EXPORT int tal_numa_nodes(void);

/* What the kernel reports for the pages of [p, p + size). */
typedef struct {
    uint64_t rss_bytes;       /* Rss of the overlapping mappings, from smaps */
    uint64_t anon_huge_bytes; /* AnonHugePages of the overlapping mappings */
    uint64_t hugetlb_bytes;   /* Private_Hugetlb + Shared_Hugetlb */
    int policy;               /* MPOL_DEFAULT, MPOL_BIND, ... for p (get_mempolicy) */
    int bound_node;           /* the lowest node in the policy's mask, -1 if none */
} tal_mem_report_t;

/* 0, or TAL_EIO when /proc/self/smaps cannot be read (the policy fields are still
 * filled when get_mempolicy works). */
TAL_EXPORT int tal_mem_inspect(const void *p, size_t size, tal_mem_report_t *report);

/* ---- the budget ---- */

typedef enum {
    TAL_MEM_INPUT = 0, /* input and mapping windows */
    TAL_MEM_CHUNKS,    /* chunk buffers, compressor and decompressor contexts */
    TAL_MEM_KMERS,     /* k-mer tables */
    TAL_MEM_SORT,      /* sort runs and merge buffers */
    TAL_MEM_ALIGN,     /* alignment matrices */
    TAL_MEM_CATALOG,   /* SQLite page cache */
    TAL_MEM_RECORDS,   /* per-record arrays (lengths, ranks, references) */
    TAL_MEM_OTHER,
    TAL_MEM_COMPONENTS
} tal_mem_component_t;

typedef struct tal_budget tal_budget_t;

/* cap 0 means no cap (bytes are still counted). */
TAL_EXPORT int tal_budget_create(tal_budget_t **out, uint64_t cap);
TAL_EXPORT void tal_budget_destroy(tal_budget_t *budget);
/* Reserves bytes for a component: 0, or TAL_EMEMCAP (nothing reserved) when the cap
 * would be exceeded. A NULL budget accepts everything. Thread-safe. */
TAL_EXPORT int tal_budget_reserve(tal_budget_t *budget, tal_mem_component_t component,
                                  uint64_t bytes);
TAL_EXPORT void tal_budget_release(tal_budget_t *budget, tal_mem_component_t component,
                                   uint64_t bytes);
/* Counts bytes that are held whether the cap allows them or not (what the process
 * already holds when the budget is made); the next reservation then fails if the total
 * is over the cap. */
TAL_EXPORT void tal_budget_force(tal_budget_t *budget, tal_mem_component_t component,
                                 uint64_t bytes);
/* The total a refused reservation asked for (held + requested), the largest so far; 0 if
 * nothing was refused. What the cap would have to be for that reservation to pass. */
TAL_EXPORT uint64_t tal_budget_refused(const tal_budget_t *budget);
TAL_EXPORT uint64_t tal_budget_cap(const tal_budget_t *budget);
/* Bytes held now by one component, or by all when component is TAL_MEM_COMPONENTS. */
TAL_EXPORT uint64_t tal_budget_used(const tal_budget_t *budget, tal_mem_component_t component);
/* The highest total ever held. */
TAL_EXPORT uint64_t tal_budget_peak(const tal_budget_t *budget);
TAL_EXPORT const char *tal_mem_component_name(tal_mem_component_t component);

/* A zero-filled buffer of our own (an anonymous mapping, returned to the kernel by
 * tal_budget_free) whose bytes are reserved first: 0, TAL_EMEMCAP (nothing reserved)
 * or TAL_ENOMEM. bytes == 0 gives a NULL buffer and 0. */
TAL_EXPORT int tal_budget_alloc(tal_budget_t *budget, tal_mem_component_t component, size_t bytes,
                                void **out);
TAL_EXPORT void tal_budget_free(tal_budget_t *budget, tal_mem_component_t component, void *p,
                                size_t bytes);

/* As tal_budget_reserve, but when the cap refuses, waits for bytes released by other
 * threads (tal_budget_release wakes it) for as long as some other reservation made with
 * waiting is held; TAL_EMEMCAP when none is (waiting could not help). For per-thread work
 * memory that threads take and give back (alignment matrices): threads then take turns
 * instead of exceeding the cap, and the result does not depend on the cap. Pair with
 * tal_budget_release_waited. */
TAL_EXPORT int tal_budget_reserve_wait(tal_budget_t *budget, tal_mem_component_t component,
                                       uint64_t bytes);
TAL_EXPORT void tal_budget_release_waited(tal_budget_t *budget, tal_mem_component_t component,
                                          uint64_t bytes);

/* ---- what the kernel measures ---- */

typedef struct {
    uint64_t rss; /* VmRSS */
    uint64_t hwm; /* VmHWM: the peak resident set */
} tal_rss_t;
/* From /proc/self/status; TAL_EIO when it cannot be read. */
TAL_EXPORT int tal_rss_read(tal_rss_t *rss);

/* --monitor-memory: a thread that prints, every interval seconds and once at the end,
 * the budget's bytes per component beside VmRSS and VmHWM; with json_path, the final
 * figures (and each sample) are also written there as JSON. */
typedef struct tal_memmon tal_memmon_t;
TAL_EXPORT int tal_memmon_start(tal_memmon_t **out, tal_budget_t *budget, double interval,
                                int print, const char *json_path, const char *command);
/* The final report; then stops the thread. Returns the JSON file's write status. */
TAL_EXPORT int tal_memmon_stop(tal_memmon_t *mon);

/* ---- a pool of chunk buffers ---- */

typedef struct tal_pool tal_pool_t;

typedef struct {
    size_t buffer_size;   /* bytes per pooled buffer (rounded up to 2 MiB) */
    unsigned max_buffers; /* pooled buffers that may exist at once; 0 = no limit */
    tal_huge_mode_t mode;
    int node;             /* TAL_NODE_LOCAL or a node number */
    tal_budget_t *budget; /* may be NULL */
    tal_mem_component_t component;
} tal_pool_opt_t;

/* 4 MiB, no limit, local node, no budget; the page mode from tal_huge_mode_from_env. */
TAL_EXPORT void tal_pool_opt_init(tal_pool_opt_t *opt);
/* TALARIA_HUGE_PAGES=hugetlb asks for explicit hugetlbfs pages (THP when none are
 * reserved), =none for 4 KiB pages; THP otherwise. Until configuration profiles exist
 * this is how a site opts in to hugetlbfs. */
TAL_EXPORT tal_huge_mode_t tal_huge_mode_from_env(void);
TAL_EXPORT int tal_pool_create(tal_pool_t **out, const tal_pool_opt_t *opt);
/* Frees every buffer; all must have been put back. */
TAL_EXPORT void tal_pool_destroy(tal_pool_t *pool);

/* A buffer of at least size bytes: a pooled one (reused or newly mapped) when size <=
 * buffer_size, else a one-off mapping of its own. Reserved from the budget when newly
 * mapped. Returns 0, TAL_EMEMCAP (budget refused, or max_buffers reached) or
 * TAL_ENOMEM. *cap receives the buffer's usable size. Thread-safe. */
TAL_EXPORT int tal_pool_get(tal_pool_t *pool, size_t size, void **buf, size_t *cap);
/* Gives a buffer back: pooled ones are kept for reuse, one-off ones unmapped and their
 * bytes released. */
TAL_EXPORT void tal_pool_put(tal_pool_t *pool, void *buf, size_t cap);

typedef struct {
    unsigned buffers; /* pooled buffers mapped now */
    uint64_t bytes;   /* bytes mapped now, pooled and one-off */
    int hugetlb;      /* 1 if any buffer came from hugetlbfs */
    int numa_bound;   /* 1 if buffers were bound to a node */
} tal_pool_stats_t;
TAL_EXPORT void tal_pool_stats(tal_pool_t *pool, tal_pool_stats_t *stats);

TAL_END_DECLS

#endif
