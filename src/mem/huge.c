/* Huge-page-friendly anonymous mappings. Random access to big tables (the accession
 * table while indexing) is dominated by TLB misses on 4 KiB pages; THP removes most. */
#include "talaria/mem.h"

#include <stdint.h>
#include <sys/mman.h>

#define HUGE_ALIGN ((size_t)2 << 20)

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

void *tal_huge_alloc(size_t size)
{
    size_t len = round_up(size ? size : 1, HUGE_ALIGN), span = len + HUGE_ALIGN;
    char *raw, *aligned;
    raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    /* trim to a 2 MiB-aligned window so whole huge pages fit */
    aligned = (char *)round_up((size_t)(uintptr_t)raw, HUGE_ALIGN);
    if (aligned > raw) munmap(raw, (size_t)(aligned - raw));
    if (raw + span > aligned + len) munmap(aligned + len, (size_t)(raw + span - (aligned + len)));
    madvise(aligned, len, MADV_HUGEPAGE);
    return aligned;
}

void tal_huge_free(void *p, size_t size)
{
    if (p) munmap(p, round_up(size ? size : 1, HUGE_ALIGN));
}
