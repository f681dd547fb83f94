/* The memory budget: one byte cap shared by every thread of a run, with the bytes held
 * per component, so that what talaria believes it holds can be set beside what the
 * kernel measures. Lock-free: the total is claimed with compare-exchange. */
#include "talaria/mem.h"

#include "talaria/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

struct tal_budget {
    uint64_t cap; /* 0: no cap */
    _Atomic uint64_t total;
    _Atomic uint64_t peak;
    _Atomic uint64_t used[TAL_MEM_COMPONENTS];
    /* reservations made with tal_budget_reserve_wait */
    pthread_mutex_t wait_mu;
    pthread_cond_t wait_cv;
    uint64_t waited_held;
    _Atomic uint64_t refused; /* the largest total a refused reservation asked for */
};

static int valid_component(tal_mem_component_t component)
{
    return (int)component >= 0 && component < TAL_MEM_COMPONENTS;
}

int tal_budget_create(tal_budget_t **out, uint64_t cap)
{
    tal_budget_t *budget = calloc(1, sizeof *budget);
    *out = NULL;
    if (!budget) return TAL_ENOMEM;
    budget->cap = cap;
    atomic_init(&budget->total, 0);
    atomic_init(&budget->peak, 0);
    atomic_init(&budget->refused, 0);
    for (int c = 0; c < TAL_MEM_COMPONENTS; c++) atomic_init(&budget->used[c], 0);
    pthread_mutex_init(&budget->wait_mu, NULL);
    pthread_cond_init(&budget->wait_cv, NULL);
    *out = budget;
    return 0;
}

void tal_budget_destroy(tal_budget_t *budget)
{
    if (!budget) return;
    pthread_mutex_destroy(&budget->wait_mu);
    pthread_cond_destroy(&budget->wait_cv);
    free(budget);
}

int tal_budget_reserve(tal_budget_t *budget, tal_mem_component_t component, uint64_t bytes)
{
    uint64_t total, peak;
    if (!budget) return 0;
    if (!valid_component(component)) return TAL_EUSAGE;
    total = atomic_load(&budget->total);
    /* claim the bytes only if the total that results stays within the cap, so that
     * concurrent reservations can never overshoot it together */
    do {
        if (bytes > UINT64_MAX - total || (budget->cap && total + bytes > budget->cap)) {
            uint64_t want = bytes > UINT64_MAX - total ? UINT64_MAX : total + bytes,
                     seen = atomic_load(&budget->refused);
            while (seen < want && !atomic_compare_exchange_weak(&budget->refused, &seen, want)) {
            }
            return TAL_EMEMCAP;
        }
    } while (!atomic_compare_exchange_weak(&budget->total, &total, total + bytes));
    atomic_fetch_add(&budget->used[component], bytes);
    total += bytes;
    peak = atomic_load(&budget->peak);
    while (peak < total && !atomic_compare_exchange_weak(&budget->peak, &peak, total)) {
    }
    return 0;
}

void tal_budget_release(tal_budget_t *budget, tal_mem_component_t component, uint64_t bytes)
{
    uint64_t held;
    if (!budget || !valid_component(component)) return;
    /* never release more than the component holds: a caller's mistake must not wrap the
     * counters around and lift the cap */
    held = atomic_load(&budget->used[component]);
    do {
        if (bytes > held) bytes = held;
    } while (!atomic_compare_exchange_weak(&budget->used[component], &held, held - bytes));
    atomic_fetch_sub(&budget->total, bytes);
}

void tal_budget_force(tal_budget_t *budget, tal_mem_component_t component, uint64_t bytes)
{
    uint64_t total, peak;
    if (!budget || !valid_component(component)) return;
    atomic_fetch_add(&budget->used[component], bytes);
    total = atomic_fetch_add(&budget->total, bytes) + bytes;
    peak = atomic_load(&budget->peak);
    while (peak < total && !atomic_compare_exchange_weak(&budget->peak, &peak, total)) {
    }
}

uint64_t tal_budget_refused(const tal_budget_t *budget)
{
    return budget ? atomic_load(&budget->refused) : 0;
}

int tal_budget_reserve_wait(tal_budget_t *budget, tal_mem_component_t component, uint64_t bytes)
{
    int rc;
    if (!budget || tal_budget_reserve(budget, component, bytes) == 0) {
        if (budget) {
            pthread_mutex_lock(&budget->wait_mu);
            budget->waited_held += bytes;
            pthread_mutex_unlock(&budget->wait_mu);
        }
        return 0;
    }
    /* retried under the lock that releases take, so no release is missed */
    pthread_mutex_lock(&budget->wait_mu);
    for (;;) {
        if ((rc = tal_budget_reserve(budget, component, bytes)) == 0) {
            budget->waited_held += bytes;
            break;
        }
        if (rc != TAL_EMEMCAP || budget->waited_held == 0) break;
        pthread_cond_wait(&budget->wait_cv, &budget->wait_mu);
    }
    pthread_mutex_unlock(&budget->wait_mu);
    return rc;
}

void tal_budget_release_waited(tal_budget_t *budget, tal_mem_component_t component, uint64_t bytes)
{
    if (!budget) return;
    pthread_mutex_lock(&budget->wait_mu);
    tal_budget_release(budget, component, bytes);
    budget->waited_held -= bytes < budget->waited_held ? bytes : budget->waited_held;
    pthread_cond_broadcast(&budget->wait_cv);
    pthread_mutex_unlock(&budget->wait_mu);
}

int tal_budget_alloc(tal_budget_t *budget, tal_mem_component_t component, size_t bytes, void **out)
{
    void *p;
    int rc;
    *out = NULL;
    if (!bytes) return 0;
    if ((rc = tal_budget_reserve(budget, component, bytes)) < 0) return rc;
    p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        tal_budget_release(budget, component, bytes);
        return TAL_ENOMEM;
    }
    *out = p;
    return 0;
}

void tal_budget_free(tal_budget_t *budget, tal_mem_component_t component, void *p, size_t bytes)
{
    if (!p) return;
    munmap(p, bytes);
    tal_budget_release(budget, component, bytes);
}

uint64_t tal_budget_cap(const tal_budget_t *budget) { return budget ? budget->cap : 0; }

uint64_t tal_budget_used(const tal_budget_t *budget, tal_mem_component_t component)
{
    if (!budget) return 0;
    if (component == TAL_MEM_COMPONENTS) return atomic_load(&budget->total);
    return valid_component(component) ? atomic_load(&budget->used[component]) : 0;
}

uint64_t tal_budget_peak(const tal_budget_t *budget)
{
    return budget ? atomic_load(&budget->peak) : 0;
}

const char *tal_mem_component_name(tal_mem_component_t component)
{
    switch (component) {
    case TAL_MEM_INPUT: return "input";
    case TAL_MEM_CHUNKS: return "chunks";
    case TAL_MEM_KMERS: return "k-mers";
    case TAL_MEM_SORT: return "sort";
    case TAL_MEM_ALIGN: return "alignment";
    case TAL_MEM_CATALOG: return "catalog";
    case TAL_MEM_RECORDS: return "records";
    case TAL_MEM_OTHER: return "other";
    case TAL_MEM_COMPONENTS: return "total";
    }
    return "unknown";
}
