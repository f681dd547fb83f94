/* A pool of equal-sized huge-page buffers (chunk buffers), reserved from a budget when
 * mapped and kept for reuse, so that the hot loop does not map and fault in memory.
 *
 * A buffer is told apart by its cap: cap == buffer_size is a pooled buffer; any other
 * cap (always larger) is a one-off mapping that tal_pool_put unmaps. */
#include "talaria/mem.h"

#include "talaria/error.h"
#include "talaria/log.h"

#include <numa.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HUGE_ALIGN TAL_HUGE_PAGE_BYTES

struct tal_pool {
    tal_pool_opt_t opt; /* buffer_size rounded up to 2 MiB */
    pthread_mutex_t lock;
    void **free_bufs; /* pooled buffers put back, a stack */
    unsigned n_free;
    unsigned n_buffers; /* pooled buffers mapped now */
    unsigned free_cap;  /* room in free_bufs, at least n_buffers so put never allocates */
    uint64_t one_off_bytes;
    int hugetlb;
    int numa_bound;
};

tal_huge_mode_t tal_huge_mode_from_env(void)
{
    const char *v = getenv("TALARIA_HUGE_PAGES");
    if (v && !strcmp(v, "hugetlb")) return TAL_HUGE_HUGETLB;
    if (v && (!strcmp(v, "none") || !strcmp(v, "off"))) return TAL_HUGE_NONE;
    return TAL_HUGE_THP;
}

void tal_pool_opt_init(tal_pool_opt_t *opt)
{
    opt->buffer_size = (size_t)4 << 20;
    opt->max_buffers = 0;
    opt->mode = tal_huge_mode_from_env();
    /* TALARIA_NUMA=off (memory.numa): no binding, first touch places the pages */
    opt->node = getenv("TALARIA_NUMA") && !strcmp(getenv("TALARIA_NUMA"), "off") ? TAL_NODE_ANY
                                                                                 : TAL_NODE_LOCAL;
    opt->budget = NULL;
    opt->component = TAL_MEM_CHUNKS;
}

/* Node numbers may have gaps, so the highest one bounds them rather than the count; node 0
 * always exists, with or without NUMA support. */
static int node_exists(int node)
{
    if (node <= 0) return 1;
    return numa_available() >= 0 && node <= numa_max_node();
}

int tal_pool_create(tal_pool_t **out, const tal_pool_opt_t *opt)
{
    tal_pool_t *pool;
    *out = NULL;
    if (!opt || opt->buffer_size == 0 || opt->buffer_size > SIZE_MAX / 2 ||
        (opt->mode != TAL_HUGE_THP && opt->mode != TAL_HUGE_HUGETLB &&
         opt->mode != TAL_HUGE_NONE) ||
        opt->node < TAL_NODE_ANY || !node_exists(opt->node) || (int)opt->component < 0 ||
        opt->component >= TAL_MEM_COMPONENTS)
        return TAL_EUSAGE;
    pool = calloc(1, sizeof *pool);
    if (!pool) return TAL_ENOMEM;
    if (pthread_mutex_init(&pool->lock, NULL) != 0) {
        free(pool);
        return TAL_ENOMEM;
    }
    pool->opt = *opt;
    pool->opt.buffer_size = (opt->buffer_size + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
    *out = pool;
    return 0;
}

void tal_pool_destroy(tal_pool_t *pool)
{
    if (!pool) return;
    if (pool->n_free != pool->n_buffers)
        tal_log_debug("buffer pool destroyed with %u buffers not put back",
                      pool->n_buffers - pool->n_free);
    for (unsigned i = 0; i < pool->n_free; i++) {
        tal_huge_free(pool->free_bufs[i], pool->opt.buffer_size);
        tal_budget_release(pool->opt.budget, pool->opt.component, pool->opt.buffer_size);
    }
    free(pool->free_bufs);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

/* Maps size bytes reserved from the budget; the caller holds the lock. */
static int map_reserved(tal_pool_t *pool, size_t size, void **buf)
{
    int hugetlb = 0, rc;
    rc = tal_budget_reserve(pool->opt.budget, pool->opt.component, size);
    if (rc != 0) return rc;
    *buf = tal_huge_alloc_ex(size, pool->opt.mode, pool->opt.node, &hugetlb);
    if (!*buf) {
        tal_budget_release(pool->opt.budget, pool->opt.component, size);
        return TAL_ENOMEM;
    }
    if (hugetlb) pool->hugetlb = 1;
    /* what tal_huge_alloc_ex does: an explicit node is bound to, the local one only where
     * there is more than one */
    if (numa_available() >= 0 && pool->opt.node != TAL_NODE_ANY &&
        (pool->opt.node >= 0 || tal_numa_nodes() > 1))
        pool->numa_bound = 1;
    return 0;
}

static int get_one_off(tal_pool_t *pool, size_t size, void **buf, size_t *cap)
{
    size_t len = (size + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
    int rc;
    pthread_mutex_lock(&pool->lock);
    rc = map_reserved(pool, len, buf);
    if (rc == 0) {
        pool->one_off_bytes += len;
        *cap = len;
    }
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

int tal_pool_get(tal_pool_t *pool, size_t size, void **buf, size_t *cap)
{
    size_t buffer_size = pool->opt.buffer_size;
    int rc = 0;
    *buf = NULL;
    *cap = 0;
    if (size > buffer_size) {
        if (size > SIZE_MAX - HUGE_ALIGN) return TAL_ENOMEM;
        return get_one_off(pool, size, buf, cap);
    }
    pthread_mutex_lock(&pool->lock);
    if (pool->n_free > 0) {
        *buf = pool->free_bufs[--pool->n_free];
        *cap = buffer_size;
        goto out;
    }
    if (pool->opt.max_buffers && pool->n_buffers >= pool->opt.max_buffers) {
        rc = TAL_EMEMCAP;
        goto out;
    }
    if (pool->free_cap == pool->n_buffers) {
        unsigned grown = pool->free_cap ? 2 * pool->free_cap : 8;
        void **bufs = realloc(pool->free_bufs, grown * sizeof *bufs);
        if (!bufs) {
            rc = TAL_ENOMEM;
            goto out;
        }
        pool->free_bufs = bufs;
        pool->free_cap = grown;
    }
    rc = map_reserved(pool, buffer_size, buf);
    if (rc == 0) {
        pool->n_buffers++;
        *cap = buffer_size;
    }
out:
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

void tal_pool_put(tal_pool_t *pool, void *buf, size_t cap)
{
    if (!buf) return;
    if (cap != pool->opt.buffer_size) {
        /* a one-off mapping: unmapping a large range can take a while, outside the lock */
        tal_huge_free(buf, cap);
        tal_budget_release(pool->opt.budget, pool->opt.component, cap);
        pthread_mutex_lock(&pool->lock);
        pool->one_off_bytes -= cap < pool->one_off_bytes ? cap : pool->one_off_bytes;
        pthread_mutex_unlock(&pool->lock);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    if (pool->n_free < pool->n_buffers) {
        pool->free_bufs[pool->n_free++] = buf;
    } else {
        tal_log_debug("buffer pool: a buffer was put back twice");
    }
    pthread_mutex_unlock(&pool->lock);
}

void tal_pool_stats(tal_pool_t *pool, tal_pool_stats_t *stats)
{
    pthread_mutex_lock(&pool->lock);
    stats->buffers = pool->n_buffers;
    stats->bytes = (uint64_t)pool->n_buffers * pool->opt.buffer_size + pool->one_off_bytes;
    stats->hugetlb = pool->hugetlb;
    stats->numa_bound = pool->numa_bound;
    pthread_mutex_unlock(&pool->lock);
}
