/* The evidence files of a clustering's passes: fixed-size entries appended after each
 * batch of a pass as one segment of that batch, a batch's segments read back together
 * (and sorted) when a later pass reaches the batch; and the deltas of the alignments
 * that may be a member's, appended as they are computed and read back one by one. Memory: the new entries
 * of one batch and the loaded ones of one batch, reserved from the budget (TAL_MEM_ALIGN,
 * the pass's working memory); the file holds the rest, in the scratch directory. */
#define _GNU_SOURCE
#include "evidence_internal.h"
#include "util/files_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    uint64_t offset; /* in the file, in entries */
    uint32_t count;
    uint32_t prev; /* the batch's previous segment, or UINT32_MAX */
} segment_t;

struct tal_evidence {
    int fd, delta_fd;
    uint64_t delta_end; /* bytes in the delta file (atomic) */
    char dir[4096];
    tal_budget_t *budget;
    uint64_t batches, batch, max_bytes, end; /* end: entries in the file */
    uint32_t *head;                          /* by batch: its last segment, or UINT32_MAX */
    segment_t *segs;
    size_t n_segs, segs_cap;
    uint64_t current; /* the batch between begin and end */
    /* the new entries of the current batch (added from several threads) */
    tal_evidence_entry_t *added;
    uint64_t added_cap, added_used; /* added_used: atomic */
    /* the loaded entries of the current batch, sorted */
    tal_evidence_entry_t *loaded;
    size_t loaded_count, loaded_bytes;
};

/* An unlinked file in dir. */
static int scratch_file(const char *dir, int *fd)
{
    if ((*fd = tal_unnamed_file(dir)) >= 0) return 0;
    tal_log_error("cannot create the evidence file in --tmp-dir %s: %s", dir, strerror(errno));
    return TAL_EIO;
}

int tal_evidence_create(tal_evidence_t **out, const char *dir, uint64_t n, uint64_t batch,
                        uint64_t per_batch, uint64_t max_bytes, tal_budget_t *budget)
{
    tal_evidence_t *ev;
    uint64_t added_bytes;
    int rc;
    *out = NULL;
    /* half the room at most for the new entries (a pass rarely needs per_batch: most ranks
     * try a candidate or two); those past it are not kept */
    if (per_batch > max_bytes / 2 / sizeof(tal_evidence_entry_t))
        per_batch = max_bytes / 2 / sizeof(tal_evidence_entry_t);
    if (per_batch < batch) return TAL_EMEMCAP;
    added_bytes = per_batch * sizeof(tal_evidence_entry_t);
    if (!(ev = calloc(1, sizeof *ev))) return TAL_ENOMEM;
    ev->fd = ev->delta_fd = -1;
    ev->budget = budget;
    ev->batch = batch;
    ev->batches = (n + batch - 1) / batch;
    ev->max_bytes = max_bytes;
    ev->added_cap = per_batch;
    snprintf(ev->dir, sizeof ev->dir, "%s", dir);
    if ((rc = tal_budget_reserve(budget, TAL_MEM_ALIGN, added_bytes)) < 0) {
        free(ev);
        return rc;
    }
    if (!(ev->added = malloc(added_bytes ? added_bytes : 1)) ||
        !(ev->head = malloc((ev->batches + 1) * sizeof *ev->head))) {
        rc = TAL_ENOMEM;
        goto fail;
    }
    memset(ev->head, 0xff, (ev->batches + 1) * sizeof *ev->head);
    if ((rc = scratch_file(dir, &ev->fd)) < 0 || (rc = scratch_file(dir, &ev->delta_fd)) < 0)
        goto fail;
    *out = ev;
    return 0;
fail:
    tal_evidence_free(ev);
    return rc;
}

void tal_evidence_free(tal_evidence_t *ev)
{
    if (!ev) return;
    if (ev->loaded) {
        free(ev->loaded);
        tal_budget_release(ev->budget, TAL_MEM_ALIGN, ev->loaded_bytes);
    }
    tal_budget_release(ev->budget, TAL_MEM_ALIGN, ev->added_cap * sizeof *ev->added);
    free(ev->added);
    free(ev->head);
    free(ev->segs);
    if (ev->fd >= 0) close(ev->fd);
    if (ev->delta_fd >= 0) close(ev->delta_fd);
    free(ev);
}

static int io_all(const tal_evidence_t *ev, int fd, void *data, size_t len, uint64_t at, int write)
{
    size_t done = 0;
    while (done < len) {
        ssize_t k = write ? pwrite(fd, (char *)data + done, len - done, (off_t)(at + done))
                          : pread(fd, (char *)data + done, len - done, (off_t)(at + done));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            tal_log_error("cannot %s the evidence file in --tmp-dir %s: %s",
                          write ? "write" : "read", ev->dir,
                          k < 0   ? strerror(errno)
                          : write ? "no space"
                                  : "it is shorter than written");
            return TAL_EIO;
        }
        done += (size_t)k;
    }
    return 0;
}

static int by_pair(const void *a, const void *b)
{
    const tal_evidence_entry_t *x = a, *y = b;
    if (x->member != y->member) return x->member < y->member ? -1 : 1;
    return x->root < y->root ? -1 : x->root > y->root;
}

int tal_evidence_begin(tal_evidence_t *ev, uint64_t batch)
{
    uint64_t count = 0, bytes, room = ev->max_bytes - ev->added_cap * sizeof *ev->added;
    uint32_t last = UINT32_MAX; /* the oldest segment loaded */
    size_t at = 0;
    int rc;
    ev->current = batch;
    ev->added_used = 0;
    ev->loaded_count = 0;
    if (batch >= ev->batches) return 0;
    /* the newest segments that fit; what is left out is computed again (and kept again):
     * slower, the same result */
    for (uint32_t s = ev->head[batch]; s != UINT32_MAX; s = ev->segs[s].prev) {
        if ((count + ev->segs[s].count) * sizeof *ev->loaded > room) break;
        count += ev->segs[s].count;
        last = s;
    }
    bytes = count * sizeof *ev->loaded;
    if (!count || tal_budget_reserve(ev->budget, TAL_MEM_ALIGN, bytes) < 0) return 0;
    if (!(ev->loaded = malloc(bytes))) {
        tal_budget_release(ev->budget, TAL_MEM_ALIGN, bytes);
        return TAL_ENOMEM;
    }
    ev->loaded_bytes = bytes;
    for (uint32_t s = ev->head[batch]; s != UINT32_MAX; s = ev->segs[s].prev) {
        const segment_t *g = &ev->segs[s];
        if ((rc = io_all(ev, ev->fd, ev->loaded + at, g->count * sizeof *ev->loaded,
                         g->offset * sizeof *ev->loaded, 0)) < 0)
            return rc;
        at += g->count;
        if (s == last) break;
    }
    qsort(ev->loaded, at, sizeof *ev->loaded, by_pair);
    ev->loaded_count = at;
    return 0;
}

const tal_evidence_entry_t *tal_evidence_find(const tal_evidence_t *ev, uint32_t member,
                                              uint32_t root, size_t *count)
{
    size_t lo = 0, hi = ev->loaded_count, end;
    tal_evidence_entry_t key;
    key.member = member;
    key.root = root;
    *count = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (by_pair(&ev->loaded[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (end = lo; end < ev->loaded_count && !by_pair(&ev->loaded[end], &key); end++) continue;
    *count = end - lo;
    return end > lo ? ev->loaded + lo : NULL;
}

void tal_evidence_add(tal_evidence_t *ev, const tal_evidence_entry_t *e)
{
    uint64_t at = __atomic_fetch_add(&ev->added_used, 1, __ATOMIC_RELAXED);
    if (at < ev->added_cap) ev->added[at] = *e;
}

int tal_evidence_put_delta(tal_evidence_t *ev, const uint8_t *delta, size_t len, uint64_t *at)
{
    *at = __atomic_fetch_add(&ev->delta_end, len, __ATOMIC_RELAXED);
    return io_all(ev, ev->delta_fd, (void *)(uintptr_t)delta, len, *at, 1);
}

int tal_evidence_delta(tal_evidence_t *ev, uint64_t at, size_t len, uint8_t *out)
{
    return io_all(ev, ev->delta_fd, out, len, at, 0);
}

int tal_evidence_end(tal_evidence_t *ev, int keep)
{
    uint64_t count = ev->added_used < ev->added_cap ? ev->added_used : ev->added_cap;
    int rc = 0;
    if (ev->loaded) {
        free(ev->loaded);
        ev->loaded = NULL;
        tal_budget_release(ev->budget, TAL_MEM_ALIGN, ev->loaded_bytes);
        ev->loaded_bytes = 0;
    }
    ev->loaded_count = 0;
    ev->added_used = 0;
    if (!keep || !count || ev->current >= ev->batches) return 0;
    if (ev->n_segs == ev->segs_cap) {
        size_t cap = ev->segs_cap ? 2 * ev->segs_cap : 256;
        segment_t *p = realloc(ev->segs, cap * sizeof *p);
        if (!p) return TAL_ENOMEM;
        ev->segs = p;
        ev->segs_cap = cap;
    }
    if ((rc = io_all(ev, ev->fd, ev->added, count * sizeof *ev->added, ev->end * sizeof *ev->added,
                     1)) < 0)
        return rc;
    ev->segs[ev->n_segs] = (segment_t){ev->end, (uint32_t)count, ev->head[ev->current]};
    ev->head[ev->current] = (uint32_t)ev->n_segs++;
    ev->end += count;
    ev->added_used = 0;
    return 0;
}
