/* The memory budget: one byte cap shared by every thread of a run, with the bytes held
 * per component, so that what talaria believes it holds can be set beside what the
 * kernel measures. Lock-free: the total is claimed with compare-exchange. */
#include "talaria/mem.h"

#include "talaria/error.h"

#include <stdatomic.h>
#include <stdlib.h>

struct tal_budget {
    uint64_t cap; /* 0: no cap */
    _Atomic uint64_t total;
    _Atomic uint64_t peak;
    _Atomic uint64_t used[TAL_MEM_COMPONENTS];
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
    for (int c = 0; c < TAL_MEM_COMPONENTS; c++) atomic_init(&budget->used[c], 0);
    *out = budget;
    return 0;
}

void tal_budget_destroy(tal_budget_t *budget) { free(budget); }

int tal_budget_reserve(tal_budget_t *budget, tal_mem_component_t component, uint64_t bytes)
{
    uint64_t total, peak;
    if (!budget) return 0;
    if (!valid_component(component)) return TAL_EUSAGE;
    total = atomic_load(&budget->total);
    /* claim the bytes only if the total that results stays within the cap, so that
     * concurrent reservations can never overshoot it together */
    do {
        if (bytes > UINT64_MAX - total || (budget->cap && total + bytes > budget->cap))
            return TAL_EMEMCAP;
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
    case TAL_MEM_OTHER: return "other";
    case TAL_MEM_COMPONENTS: return "total";
    }
    return "unknown";
}
