/* The compressing half of `index --compress`. The parsing thread fills a raw chunk
 * buffer; full chunks queue for the workers, which compress them in any order; a chunk
 * is written as soon as every earlier one is, by whichever worker finished last, so the
 * residues file and the chunk table come out in record order. In-flight chunks are
 * bounded, so memory stays at a few chunks per thread whatever the input size. */
#include "chunker_internal.h"
#include "codec_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

/* tal_pool maps its buffers in whole 2 MiB huge pages */
#define POOL_PAGE ((uint64_t)2 << 20)

typedef struct job {
    uint64_t seq_no;
    tal_chunk_disk_t entry;
    char *raw;
    size_t raw_cap, raw_len;
    char *stored; /* compressed bytes, or NULL when stored raw */
    size_t stored_cap, stored_len;
    int done;
    struct job *next; /* queue link */
} job_t;

struct tal_chunker {
    tal_chunker_opt_t opt;
    tal_wfile_t *out;
    uint64_t *composition;
    tal_pool_t *raw_pool, *stored_pool;
    job_t *current;
    uint64_t next_record, raw_offset, stored_offset;
    uint64_t submitted, written; /* chunks handed to workers / written out */
    /* work queue (FIFO) and finished-but-unwritten jobs, indexed by seq_no % window */
    job_t *queue_head, *queue_tail;
    job_t **done_ring;
    unsigned window;
    unsigned in_flight;
    tal_chunk_disk_t *table;
    uint64_t table_n, table_cap;
    uint64_t (*counts)[256]; /* per worker */
    int error, stop;
    pthread_t *threads;
    int n_threads;
    tal_codec_ctx_t **ctx; /* per worker; [0] also serves the caller without threads */
    uint64_t held_ctx;     /* reserved for ctx[] */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, room_cv;
};

static int compress_job(tal_chunker_t *c, tal_codec_ctx_t *ctx, uint64_t *counts, job_t *j)
{
    size_t bound = tal_codec_bound(c->opt.codec, j->raw_len);
    int rc;
    tal_count_bytes(counts, j->raw, j->raw_len);
    j->stored = NULL;
    j->stored_len = 0;
    if (j->raw_len) {
        void *buf;
        if ((rc = tal_pool_get(c->stored_pool, bound, &buf, &j->stored_cap)) < 0) return rc;
        j->stored = buf;
        if ((rc = tal_codec_compress(ctx, j->raw, j->raw_len, j->stored, j->stored_cap,
                                     &j->stored_len)) < 0)
            return rc;
        if (j->stored_len == 0) { /* did not pay: the chunk is stored raw */
            tal_pool_put(c->stored_pool, j->stored, j->stored_cap);
            j->stored = NULL;
        }
    }
    j->entry.codec = j->stored ? c->opt.codec : TAL_CODEC_NONE;
    j->entry.stored_size = j->stored ? j->stored_len : j->raw_len;
    j->entry.checksum = XXH3_64bits(j->stored ? j->stored : j->raw, j->entry.stored_size);
    return 0;
}

static void job_free(tal_chunker_t *c, job_t *j)
{
    if (!j) return;
    if (j->raw) tal_pool_put(c->raw_pool, j->raw, j->raw_cap);
    if (j->stored) tal_pool_put(c->stored_pool, j->stored, j->stored_cap);
    free(j);
}

/* Writes finished chunks that are next in order. Called with mu held. */
static int write_ready(tal_chunker_t *c)
{
    for (;;) {
        job_t *j = c->done_ring[c->written % c->window];
        int rc;
        if (!j || j->seq_no != c->written) return 0;
        c->done_ring[c->written % c->window] = NULL;
        if (c->table_n == c->table_cap) {
            uint64_t cap = c->table_cap ? c->table_cap * 2 : 256;
            tal_chunk_disk_t *t = realloc(c->table, cap * sizeof *t);
            if (!t) {
                job_free(c, j);
                return TAL_ENOMEM;
            }
            c->table = t;
            c->table_cap = cap;
        }
        j->entry.stored_offset = c->stored_offset;
        rc = tal_wfile_write(c->out, j->stored ? j->stored : j->raw, j->entry.stored_size);
        if (rc < 0) {
            job_free(c, j);
            return rc;
        }
        c->stored_offset += j->entry.stored_size;
        c->table[c->table_n++] = j->entry;
        c->written++;
        c->in_flight--;
        job_free(c, j);
        pthread_cond_broadcast(&c->room_cv);
    }
}

typedef struct {
    tal_chunker_t *c;
    int index;
} worker_arg_t;

static void *worker_main(void *arg)
{
    worker_arg_t *wa = arg;
    tal_chunker_t *c = wa->c;
    int index = wa->index;
    free(wa);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        job_t *j;
        int rc;
        while (!c->queue_head && !c->stop) pthread_cond_wait(&c->work_cv, &c->mu);
        if (!c->queue_head) break;
        int failed;
        j = c->queue_head;
        c->queue_head = j->next;
        if (!c->queue_head) c->queue_tail = NULL;
        failed = c->error != 0;
        pthread_mutex_unlock(&c->mu);
        rc = failed ? 0 : compress_job(c, c->ctx[index], c->counts[index], j);
        pthread_mutex_lock(&c->mu);
        if (rc < 0 && !c->error) c->error = rc;
        c->done_ring[j->seq_no % c->window] = j;
        if (!c->error && (rc = write_ready(c)) < 0) c->error = rc;
        if (c->error) pthread_cond_broadcast(&c->room_cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static uint64_t pool_pages(size_t bytes)
{
    return ((uint64_t)bytes + POOL_PAGE - 1) / POOL_PAGE * POOL_PAGE;
}

static uint64_t contexts_footprint(const tal_chunker_opt_t *opt)
{
    uint64_t contexts = (uint64_t)(opt->threads > 0 ? opt->threads : 1);
    return contexts * tal_codec_ctx_footprint(opt->codec, opt->level, opt->chunk_size, 1);
}

uint64_t tal_chunker_footprint(const tal_chunker_opt_t *opt)
{
    uint64_t raw = pool_pages(opt->chunk_size);
    uint64_t stored = pool_pages(tal_codec_bound(opt->codec, opt->chunk_size));
    uint64_t window = opt->threads > 0 ? 2 * (uint64_t)opt->threads + 2 : 1;
    /* in flight: window chunks, raw and compressed; the one being filled besides them when
     * workers compress (without them a chunk is written before the next is started) */
    return contexts_footprint(opt) + window * (raw + stored) + (opt->threads > 0 ? raw : 0);
}

int tal_chunker_start(tal_chunker_t **out, const tal_chunker_opt_t *opt, tal_wfile_t *residues,
                      uint64_t *composition)
{
    tal_chunker_t *c = calloc(1, sizeof *c);
    tal_pool_opt_t po;
    int rc = TAL_ENOMEM, workers = opt->threads > 0 ? opt->threads : 0;
    uint64_t ctx_bytes = contexts_footprint(opt);
    *out = NULL;
    if (!c) return TAL_ENOMEM;
    c->opt = *opt;
    c->out = residues;
    c->composition = composition;
    c->window = (unsigned)(workers ? 2 * workers + 2 : 1);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->work_cv, NULL);
    pthread_cond_init(&c->room_cv, NULL);
    c->done_ring = calloc(c->window, sizeof *c->done_ring);
    c->counts = calloc((size_t)(workers ? workers : 1), sizeof *c->counts);
    c->ctx = calloc((size_t)(workers ? workers : 1), sizeof *c->ctx);
    c->threads = calloc((size_t)(workers ? workers : 1), sizeof *c->threads);
    if (!c->done_ring || !c->counts || !c->ctx || !c->threads) goto fail;
    /* zstd's tables come to tens of MiB a context at high levels: held for the whole build */
    if ((rc = tal_budget_reserve(opt->budget, TAL_MEM_CHUNKS, ctx_bytes)) < 0) {
        int contexts = workers ? workers : 1;
        char size[32];
        tal_log_error("%d %s compression context%s of %s each do not fit in --max-memory; a lower "
                      "--level or fewer threads need less",
                      contexts, tal_codec_name(opt->codec), contexts > 1 ? "s" : "",
                      tal_format_size(ctx_bytes / (uint64_t)contexts, size, sizeof size));
        goto fail;
    }
    c->held_ctx = ctx_bytes;
    for (int i = 0; i < (workers ? workers : 1); i++)
        if ((rc = tal_codec_ctx_create(&c->ctx[i], opt->codec, opt->level, opt->chunk_size)) < 0)
            goto fail;
    tal_pool_opt_init(&po);
    po.buffer_size = opt->chunk_size;
    po.budget = opt->budget;
    po.component = TAL_MEM_CHUNKS;
    if ((rc = tal_pool_create(&c->raw_pool, &po)) < 0) goto fail;
    po.buffer_size = tal_codec_bound(opt->codec, opt->chunk_size);
    if ((rc = tal_pool_create(&c->stored_pool, &po)) < 0) goto fail;
    for (int i = 0; i < workers; i++) {
        worker_arg_t *wa = malloc(sizeof *wa);
        if (!wa) {
            rc = TAL_ENOMEM;
            goto fail;
        }
        wa->c = c;
        wa->index = i;
        if (pthread_create(&c->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            rc = TAL_ENOMEM;
            goto fail;
        }
        c->n_threads++;
    }
    *out = c;
    return 0;
fail:
    tal_chunker_abort(c);
    return rc;
}

/* Hands the current chunk to the workers (or compresses it here without them). */
static int submit(tal_chunker_t *c)
{
    job_t *j = c->current;
    int rc = 0;
    c->current = NULL;
    if (!j) return 0;
    j->seq_no = c->submitted++;
    j->entry.raw_size = j->raw_len;
    pthread_mutex_lock(&c->mu);
    if (!c->n_threads) {
        c->in_flight++;
        pthread_mutex_unlock(&c->mu);
        rc = compress_job(c, c->ctx[0], c->counts[0], j);
        pthread_mutex_lock(&c->mu);
        c->done_ring[0] = j;
        if (rc < 0) {
            c->done_ring[0] = NULL;
            job_free(c, j);
        } else {
            rc = write_ready(c);
        }
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    /* bounded: at most window chunks between the parser and the file */
    while (c->in_flight >= c->window && !c->error) pthread_cond_wait(&c->room_cv, &c->mu);
    if (c->error) {
        rc = c->error;
        pthread_mutex_unlock(&c->mu);
        job_free(c, j);
        return rc;
    }
    c->in_flight++;
    j->next = NULL;
    if (c->queue_tail)
        c->queue_tail->next = j;
    else
        c->queue_head = j;
    c->queue_tail = j;
    pthread_cond_signal(&c->work_cv);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int tal_chunker_add(tal_chunker_t *c, const char *seq, size_t len)
{
    job_t *j = c->current;
    int rc;
    /* a chunk over chunk_size holds one record only, even after empty records */
    if (j && j->entry.record_count && j->raw_len + len > c->opt.chunk_size) {
        if ((rc = submit(c)) < 0) return rc;
        j = NULL;
    }
    if (!j) {
        void *buf;
        j = calloc(1, sizeof *j);
        if (!j) return TAL_ENOMEM;
        rc = tal_pool_get(c->raw_pool, len > c->opt.chunk_size ? len : c->opt.chunk_size, &buf,
                          &j->raw_cap);
        if (rc < 0) {
            free(j);
            return rc;
        }
        j->raw = buf;
        j->entry.first_record = c->next_record;
        j->entry.raw_offset = c->raw_offset;
        c->current = j;
    }
    memcpy(j->raw + j->raw_len, seq, len);
    j->raw_len += len;
    j->entry.record_count++;
    c->next_record++;
    c->raw_offset += len;
    return 0;
}

static void stop_workers(tal_chunker_t *c)
{
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_broadcast(&c->work_cv);
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < c->n_threads; i++) pthread_join(c->threads[i], NULL);
    c->n_threads = 0;
}

int tal_chunker_finish(tal_chunker_t *c, tal_chunk_disk_t **table, uint64_t *count)
{
    int rc = submit(c);
    stop_workers(c); /* workers drain the queue before they stop */
    if (!rc) rc = c->error;
    if (!rc && c->written != c->submitted) rc = TAL_EIO;
    if (!rc) {
        int workers = c->opt.threads > 0 ? c->opt.threads : 1;
        for (int i = 0; i < workers; i++)
            for (int k = 0; k < 256; k++) c->composition[k] += c->counts[i][k];
        *table = c->table;
        *count = c->table_n;
        c->table = NULL;
    }
    tal_chunker_abort(c);
    return rc;
}

void tal_chunker_abort(tal_chunker_t *c)
{
    if (!c) return;
    /* queued chunks are dropped, not compressed and written */
    pthread_mutex_lock(&c->mu);
    if (!c->error) c->error = TAL_EINTR;
    pthread_mutex_unlock(&c->mu);
    stop_workers(c);
    job_free(c, c->current);
    while (c->queue_head) {
        job_t *j = c->queue_head;
        c->queue_head = j->next;
        job_free(c, j);
    }
    if (c->done_ring)
        for (unsigned i = 0; i < c->window; i++) job_free(c, c->done_ring[i]);
    if (c->ctx)
        for (int i = 0; i < (c->opt.threads > 0 ? c->opt.threads : 1); i++)
            tal_codec_ctx_free(c->ctx[i]);
    tal_budget_release(c->opt.budget, TAL_MEM_CHUNKS, c->held_ctx);
    tal_pool_destroy(c->raw_pool);
    tal_pool_destroy(c->stored_pool);
    free(c->ctx);
    free(c->counts);
    free(c->threads);
    free(c->done_ring);
    free(c->table);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->work_cv);
    pthread_cond_destroy(&c->room_cv);
    free(c);
}
