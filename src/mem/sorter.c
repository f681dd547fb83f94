/* External sorting within the budget (see sorter_internal.h). The buffer is our own
 * anonymous mapping, grown by mremap as records come and unmapped at the end, so the
 * bytes the budget counts are the bytes the kernel sees; once everything is spilled,
 * the same buffer is cut into the merge's read windows. */
#define _GNU_SOURCE
#include "sorter_internal.h"
#include "util/files_internal.h"

#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- in-place MSD radix sort by the first 8 bytes ---- */

static inline uint64_t key_at(const char *base, size_t i, size_t rs)
{
    uint64_t k;
    memcpy(&k, base + i * rs, 8);
    return k;
}

/* a before b: by the key, then (records of 16 bytes or more) by the second word */
static inline int rec_less(const char *a, const char *b, size_t rs)
{
    uint64_t ka = key_at(a, 0, rs), kb = key_at(b, 0, rs);
    if (ka != kb || rs < 16) return ka < kb;
    return key_at(a + 8, 0, rs) < key_at(b + 8, 0, rs);
}

static void insertion_sort(char *a, size_t n, size_t rs)
{
    char x[64];
    for (size_t i = 1; i < n; i++) {
        size_t j = i;
        if (!rec_less(a + i * rs, a + (j - 1) * rs, rs)) continue;
        memcpy(x, a + i * rs, rs);
        while (j > 0 && rec_less(x, a + (j - 1) * rs, rs)) {
            memcpy(a + j * rs, a + (j - 1) * rs, rs);
            j--;
        }
        memcpy(a + j * rs, x, rs);
    }
}

/* American flag sort: each bucket is filled by swapping records into place. word 0
 * sorts by the key, word 1 (records of 16 bytes or more) by the second 8 bytes. */
static void radix_level(char *a, size_t n, size_t rs, int shift, int word)
{
    size_t count[256] = {0}, start[256], next[256];
    char x[64], y[64];
    if (n <= 48) {
        insertion_sort(a, n, rs);
        return;
    }
    size_t off = word ? 8 : 0;
    for (size_t i = 0; i < n; i++) count[(key_at(a + off, i, rs) >> shift) & 0xff]++;
    start[0] = 0;
    for (int b = 1; b < 256; b++) start[b] = start[b - 1] + count[b - 1];
    memcpy(next, start, sizeof next);
    for (int b = 0; b < 256; b++) {
        size_t end = start[b] + count[b];
        while (next[b] < end) {
            int d;
            memcpy(x, a + next[b] * rs, rs);
            d = (int)((key_at(x + off, 0, rs) >> shift) & 0xff);
            while (d != b) {
                memcpy(y, a + next[d] * rs, rs);
                memcpy(a + next[d]++ * rs, x, rs);
                memcpy(x, y, rs);
                d = (int)((key_at(x + off, 0, rs) >> shift) & 0xff);
            }
            memcpy(a + next[b]++ * rs, x, rs);
        }
    }
    for (int b = 0; b < 256; b++) {
        if (count[b] < 2) continue;
        if (shift > 0)
            radix_level(a + start[b] * rs, count[b], rs, shift - 8, word);
        else if (word == 0 && rs >= 16)
            radix_level(a + start[b] * rs, count[b], rs, 56, 1); /* equal keys */
    }
}

/* The same for bare 64-bit keys, without the copies. */
static void radix_level_u64(uint64_t *a, size_t n, int shift)
{
    size_t count[256] = {0}, start[256], next[256];
    if (n <= 48) {
        for (size_t i = 1; i < n; i++) {
            uint64_t x = a[i];
            size_t j = i;
            while (j > 0 && a[j - 1] > x) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = x;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) count[(a[i] >> shift) & 0xff]++;
    start[0] = 0;
    for (int b = 1; b < 256; b++) start[b] = start[b - 1] + count[b - 1];
    memcpy(next, start, sizeof next);
    for (int b = 0; b < 256; b++) {
        size_t end = start[b] + count[b];
        while (next[b] < end) {
            uint64_t x = a[next[b]];
            int d = (int)((x >> shift) & 0xff);
            while (d != b) {
                uint64_t y = a[next[d]];
                a[next[d]++] = x;
                x = y;
                d = (int)((x >> shift) & 0xff);
            }
            a[next[b]++] = x;
        }
    }
    if (shift == 0) return;
    for (int b = 0; b < 256; b++)
        if (count[b] > 1) radix_level_u64(a + start[b], count[b], shift - 8);
}

void tal_sort_records(void *base, size_t n, size_t record_size)
{
    if (record_size == 8)
        radix_level_u64(base, n, 56);
    else
        radix_level(base, n, record_size, 56, 0);
}

/* ---- the sorter ---- */

#define WINDOW_MIN ((size_t)64 << 10)
#define FAN_IN_MAX 256

typedef struct {
    uint64_t offset, records; /* where the run starts in the file, and its length */
} run_t;

typedef struct {
    uint64_t offset, left; /* the next record to load, and how many remain on disk */
    char *window;
    size_t capacity, pos, avail; /* in records */
} source_t;

struct tal_sorter {
    tal_sorter_opt_t opt;
    char tmp_dir[4096];
    char *buf;
    size_t buf_bytes, buf_max; /* mapped, and the most allowed */
    size_t count;              /* records in the buffer */
    int fd;
    uint64_t file_end, spilled, records, largest, runs_made;
    run_t *runs;
    size_t n_runs, runs_cap;
    int finished;
    /* the final merge (or the one in-memory batch) */
    source_t *src;
    int *heap;
    size_t n_src, heap_len;
    char *out;
    size_t out_cap;
    int memory_done;
    int error; /* a failure in finish or a merge: every later read returns it */
};

static int grow(tal_sorter_t *s, size_t bytes)
{
    void *p;
    if (bytes > s->buf_max) bytes = s->buf_max;
    if (bytes <= s->buf_bytes) return TAL_EMEMCAP;
    if (tal_budget_reserve(s->opt.budget, s->opt.component, bytes - s->buf_bytes) < 0)
        return TAL_EMEMCAP;
    p = s->buf ? mremap(s->buf, s->buf_bytes, bytes, MREMAP_MAYMOVE)
               : mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        tal_budget_release(s->opt.budget, s->opt.component, bytes - s->buf_bytes);
        return TAL_ENOMEM;
    }
    s->buf = p;
    s->buf_bytes = bytes;
    if (bytes > s->largest) s->largest = bytes;
    return 0;
}

int tal_sorter_create(tal_sorter_t **out, const tal_sorter_opt_t *opt)
{
    tal_sorter_t *s;
    const char *dir = opt->tmp_dir;
    int rc;
    *out = NULL;
    if (opt->record_size < 8 || opt->record_size > 64 || opt->record_size % 8) return TAL_EUSAGE;
    if (!(s = calloc(1, sizeof *s))) return TAL_ENOMEM;
    s->opt = *opt;
    s->fd = -1;
    if (!dir || !*dir) dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    snprintf(s->tmp_dir, sizeof s->tmp_dir, "%s", dir);
    s->buf_max = opt->buffer_bytes < TAL_SORTER_MIN_BUFFER ? TAL_SORTER_MIN_BUFFER
                                                           : (size_t)opt->buffer_bytes;
    s->buf_max -= s->buf_max % opt->record_size;
    if ((rc = grow(s, (size_t)1 << 20)) < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int open_spill(tal_sorter_t *s)
{
    if (s->fd >= 0) return 0;
    if ((s->fd = tal_unnamed_file(s->tmp_dir)) < 0) {
        tal_log_error("cannot spill %s to --tmp-dir %s: %s",
                      s->opt.what ? s->opt.what : "sort runs", s->tmp_dir, strerror(errno));
        return TAL_EIO;
    }
    return 0;
}

static int spill_error(tal_sorter_t *s, int err, uint64_t pending)
{
    char need[32];
    uint64_t expected = s->opt.expected > s->records ? s->opt.expected : s->records;
    uint64_t total = expected * s->opt.record_size,
             more = total > s->file_end ? total - s->file_end : 0;
    if (more < pending) more = pending;
    tal_log_error("cannot spill %s to --tmp-dir %s: %s; about %s more free space is needed there",
                  s->opt.what ? s->opt.what : "sort runs", s->tmp_dir, strerror(err),
                  tal_format_size(more, need, sizeof need));
    return TAL_EIO;
}

static int write_at(tal_sorter_t *s, const char *data, size_t len, uint64_t offset)
{
    size_t done = 0;
    while (done < len) {
        ssize_t k = pwrite(s->fd, data + done, len - done, (off_t)(offset + done));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return spill_error(s, k < 0 ? errno : ENOSPC, len - done);
        done += (size_t)k;
    }
    s->spilled += len;
    return 0;
}

static int add_run(tal_sorter_t *s, uint64_t offset, uint64_t records)
{
    if (s->n_runs == s->runs_cap) {
        size_t cap = s->runs_cap ? 2 * s->runs_cap : 16;
        run_t *r = realloc(s->runs, cap * sizeof *r);
        if (!r) return TAL_ENOMEM;
        s->runs = r;
        s->runs_cap = cap;
    }
    s->runs[s->n_runs++] = (run_t){offset, records};
    return 0;
}

static int spill(tal_sorter_t *s)
{
    size_t bytes = s->count * s->opt.record_size;
    int rc;
    if (!s->count) return 0;
    if ((rc = open_spill(s)) < 0) return rc;
    tal_sort_records(s->buf, s->count, s->opt.record_size);
    if ((rc = write_at(s, s->buf, bytes, s->file_end)) < 0) return rc;
    if ((rc = add_run(s, s->file_end, s->count)) < 0) return rc;
    s->file_end += bytes;
    s->count = 0;
    s->runs_made++;
    return 0;
}

int tal_sorter_add(tal_sorter_t *s, const void *records, size_t count)
{
    const char *p = records;
    size_t rs = s->opt.record_size;
    int rc;
    if (s->finished) return TAL_EUSAGE;
    while (count) {
        size_t room = s->buf_bytes / rs - s->count, take;
        if (!room) {
            /* a bigger buffer if the budget allows, else a run to disk */
            if (grow(s, s->buf_bytes * 2) < 0 && (rc = spill(s)) < 0) return rc;
            continue;
        }
        take = room < count ? room : count;
        memcpy(s->buf + s->count * rs, p, take * rs);
        s->count += take;
        s->records += take;
        p += take * rs;
        count -= take;
    }
    return 0;
}

/* ---- merging ---- */

static int load(tal_sorter_t *s, source_t *src)
{
    size_t rs = s->opt.record_size,
           want = src->left < src->capacity ? (size_t)src->left : src->capacity;
    size_t done = 0, bytes = want * rs;
    while (done < bytes) {
        ssize_t k = pread(s->fd, src->window + done, bytes - done, (off_t)(src->offset + done));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            tal_log_error("cannot read back %s from --tmp-dir %s: %s",
                          s->opt.what ? s->opt.what : "sort runs", s->tmp_dir,
                          k < 0 ? strerror(errno) : "the spill file is shorter than written");
            return TAL_EIO;
        }
        done += (size_t)k;
    }
    src->offset += bytes;
    src->left -= want;
    src->pos = 0;
    src->avail = want;
    return 0;
}

static inline int src_less(const tal_sorter_t *s, int a, int b)
{
    size_t rs = s->opt.record_size;
    const source_t *x = &s->src[a], *y = &s->src[b];
    return rec_less(x->window + x->pos * rs, y->window + y->pos * rs, rs);
}

static void sift_down(tal_sorter_t *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->heap_len && src_less(s, s->heap[l], s->heap[m])) m = l;
        if (r < s->heap_len && src_less(s, s->heap[r], s->heap[m])) m = r;
        if (m == i) return;
        int t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
}

/* Sets up a merge of runs [first, first + k): the buffer is cut into k read windows and
 * one output window. */
static int merge_begin(tal_sorter_t *s, size_t first, size_t k)
{
    size_t rs = s->opt.record_size, per = s->buf_bytes / (k + 1) / rs;
    int rc;
    free(s->src);
    free(s->heap);
    s->src = calloc(k, sizeof *s->src);
    s->heap = calloc(k, sizeof *s->heap);
    if (!s->src || !s->heap) return TAL_ENOMEM;
    s->n_src = k;
    s->heap_len = 0;
    for (size_t i = 0; i < k; i++) {
        source_t *src = &s->src[i];
        src->offset = s->runs[first + i].offset;
        src->left = s->runs[first + i].records;
        src->window = s->buf + i * per * rs;
        src->capacity = per;
        if ((rc = load(s, src)) < 0) return rc;
        if (src->avail) s->heap[s->heap_len++] = (int)i;
    }
    for (size_t i = s->heap_len; i-- > 0;) sift_down(s, i);
    s->out = s->buf + k * per * rs;
    s->out_cap = per;
    return 0;
}

/* Fills the output window: how many records it holds, or a negative error. */
static int64_t merge_some(tal_sorter_t *s)
{
    size_t rs = s->opt.record_size, n = 0;
    int rc;
    while (n < s->out_cap && s->heap_len) {
        source_t *src = &s->src[s->heap[0]];
        memcpy(s->out + n * rs, src->window + src->pos * rs, rs);
        n++;
        if (++src->pos == src->avail) {
            if (src->left && (rc = load(s, src)) < 0) return rc;
            if (src->pos == src->avail) s->heap[0] = s->heap[--s->heap_len];
        }
        if (s->heap_len) sift_down(s, 0);
    }
    return (int64_t)n;
}

static size_t fan_in(const tal_sorter_t *s)
{
    size_t f = s->buf_bytes / WINDOW_MIN;
    f = f > 2 ? f - 1 : 1;
    return f > FAN_IN_MAX ? FAN_IN_MAX : f;
}

int tal_sorter_finish(tal_sorter_t *s)
{
    int rc;
    if (s->finished) return TAL_EUSAGE;
    s->finished = 1;
    if (!s->n_runs) {
        tal_sort_records(s->buf, s->count, s->opt.record_size);
        return 0;
    }
    if ((rc = spill(s)) < 0) return s->error = rc;
    /* too many runs for one merge: merge the first few into one, again and again */
    while (s->n_runs > fan_in(s)) {
        size_t k = fan_in(s);
        uint64_t start = s->file_end, total = 0;
        int64_t got;
        if ((rc = merge_begin(s, 0, k)) < 0) return s->error = rc;
        while ((got = merge_some(s)) > 0) {
            size_t bytes = (size_t)got * s->opt.record_size;
            if ((rc = write_at(s, s->out, bytes, s->file_end)) < 0) return s->error = rc;
            s->file_end += bytes;
            total += (uint64_t)got;
        }
        if (got < 0) return s->error = (int)got;
        for (size_t i = 0; i < k; i++) /* the merged runs' disk space back */
            fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)s->runs[i].offset,
                      (off_t)(s->runs[i].records * s->opt.record_size));
        memmove(s->runs, s->runs + k, (s->n_runs - k) * sizeof *s->runs);
        s->n_runs -= k;
        if ((rc = add_run(s, start, total)) < 0) return s->error = rc;
    }
    if ((rc = merge_begin(s, 0, s->n_runs)) < 0) s->error = rc;
    return rc;
}

int tal_sorter_read(tal_sorter_t *s, const void **records, size_t *count)
{
    int64_t got;
    if (!s->finished) return TAL_EUSAGE;
    if (s->error) return s->error;
    if (!s->n_runs) {
        if (s->memory_done || !s->count) return 0;
        s->memory_done = 1;
        *records = s->buf;
        *count = s->count;
        return 1;
    }
    if ((got = merge_some(s)) < 0) return s->error = (int)got;
    if (!got) return 0;
    *records = s->out;
    *count = (size_t)got;
    return 1;
}

void tal_sorter_stats(const tal_sorter_t *s, tal_sorter_stats_t *stats)
{
    stats->records = s->records;
    stats->runs = s->runs_made;
    stats->spilled_bytes = s->spilled;
    stats->buffer_bytes = s->largest;
}

void tal_sorter_destroy(tal_sorter_t *s)
{
    if (!s) return;
    if (s->buf) {
        munmap(s->buf, s->buf_bytes);
        tal_budget_release(s->opt.budget, s->opt.component, s->buf_bytes);
    }
    if (s->fd >= 0) close(s->fd);
    free(s->runs);
    free(s->src);
    free(s->heap);
    free(s);
}
