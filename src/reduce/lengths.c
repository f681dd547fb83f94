/* Record lengths at 2 bytes a record (cluster_internal.h): protein and amplicon lengths
 * fit in 16 bits; the few longer records (genomes, titins) go in a table searched by id. */
#include "cluster_internal.h"
#include "delta_internal.h"
#include "talaria/error.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* At most this many lengths of residues residues in all reach TAL_LENGTH_LONG. */
static uint64_t long_bound(uint64_t n, uint64_t residues)
{
    uint64_t b = residues / TAL_LENGTH_LONG + 1;
    return b < n ? b : n;
}

/* Where long records may be many (genomes, long reads), 8 bytes a record in one array
 * cost less than 2 a record and 16 a long one. */
static int whole_is_smaller(uint64_t n, uint64_t residues)
{
    return tal_sat_mul(16, long_bound(n, residues)) >= tal_sat_mul(6, tal_sat_add(n, 1));
}

uint64_t tal_lengths_bytes(uint64_t n, uint64_t residues)
{
    if (whole_is_smaller(n, residues)) return tal_sat_mul(8, tal_sat_add(n, 1));
    return tal_sat_add(tal_sat_mul(2, tal_sat_add(n, 1)), tal_sat_mul(16, long_bound(n, residues)));
}

int tal_lengths_create(tal_lengths_t *l, uint64_t n, uint64_t residues)
{
    memset(l, 0, sizeof *l);
    if (whole_is_smaller(n, residues)) {
        if (!(l->owned = malloc(((size_t)n + 1) * sizeof *l->owned))) return TAL_ENOMEM;
        l->whole = l->owned;
        return 0;
    }
    l->long_cap = long_bound(n, residues);
    if (!(l->shorts = malloc(((size_t)n + 1) * sizeof *l->shorts))) return TAL_ENOMEM;
    if (l->long_cap) {
        /* anonymous pages: only those the table fills are ever resident */
        void *p = mmap(NULL, (size_t)l->long_cap * 16, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            tal_lengths_free(l);
            return TAL_ENOMEM;
        }
        l->longs = p;
    }
    return 0;
}

int tal_lengths_set(tal_lengths_t *l, uint64_t id, uint64_t len)
{
    if (l->owned) {
        l->owned[id] = len;
        return 0;
    }
    if (len < TAL_LENGTH_LONG) {
        l->shorts[id] = (uint16_t)len;
        return 0;
    }
    if (l->n_long == l->long_cap) return TAL_EINPUT;
    l->shorts[id] = TAL_LENGTH_LONG;
    l->longs[2 * l->n_long] = id;
    l->longs[2 * l->n_long + 1] = len;
    l->n_long++;
    return 0;
}

void tal_lengths_wrap(tal_lengths_t *l, const uint64_t *whole)
{
    memset(l, 0, sizeof *l);
    l->whole = whole;
}

void tal_lengths_free(tal_lengths_t *l)
{
    if (!l) return;
    free(l->owned);
    free(l->shorts);
    if (l->longs) munmap(l->longs, (size_t)l->long_cap * 16);
    memset(l, 0, sizeof *l);
}

uint64_t tal_length_long_(const tal_lengths_t *l, uint64_t id)
{
    uint64_t lo = 0, hi = l->n_long;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (l->longs[2 * mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < l->n_long && l->longs[2 * lo] == id ? l->longs[2 * lo + 1] : 0;
}
