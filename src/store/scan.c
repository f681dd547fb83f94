/* The streaming scan: blocks of whole records in store order, filled by an I/O thread
 * (raw stores: the block's pages faulted in; compressed stores: the chunk checked and
 * decompressed into a huge-page buffer) while the caller works on the previous one.
 * Three slots: filling, worked on, draining. Pages already used are dropped from the
 * mapping (MADV_DONTNEED), so resident memory stays at the three blocks plus a little. */
#define _GNU_SOURCE
#include "store_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/mem.h"
#include "talaria/scan.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS 3

enum { SLOT_FREE, SLOT_FILLED, SLOT_HELD };

typedef struct {
    int state;
    uint64_t seq;
    tal_scan_block_t block;
    char *buf; /* compressed stores: the decoded chunk */
    size_t cap;
} slot_t;

/* A mapped section whose pages are dropped up to a point as the scan passes them. */
typedef struct {
    const char *data;
    size_t size, dropped;
} drop_cursor_t;

enum { ARR_SEQ_OFFSETS, ARR_LENGTHS, ARR_CHECKSUMS, ARR_HDR_OFFSETS, ARR_HEADERS, ARR_COUNT };

struct tal_scan {
    const tal_store_t *s;
    tal_scan_opt_t opt;
    const tal_chunk_disk_t *chunks;
    uint64_t n_chunks, n_records, residue_count;
    const char *residues;
    size_t residues_size;
    const uint64_t *seq_offsets, *hdr_offsets;
    drop_cursor_t arrays[ARR_COUNT];
    drop_cursor_t raw_cursor; /* raw stores: the residues; compressed: the stored chunks */
    tal_pool_t *pool;
    tal_codec_ctx_t *ctx;
    uint64_t held_ctx; /* reserved for ctx */
    slot_t slots[SLOTS];
    uint64_t next_record, next_chunk; /* the producer's position */
    uint64_t produced, consumed;
    int finished, error, stop, threaded;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static size_t page_size(void)
{
    static size_t size;
    if (!size) size = (size_t)sysconf(_SC_PAGESIZE);
    return size;
}

/* Drops the pages of c wholly below offset upto. */
static void drop_to(drop_cursor_t *c, size_t upto)
{
    size_t page = page_size(), end;
    uintptr_t base = (uintptr_t)c->data;
    if (!c->data || upto <= c->dropped) return;
    if (upto > c->size) upto = c->size;
    end = (size_t)(((base + upto) & ~(uintptr_t)(page - 1)) - base);
    if (upto == c->size) end = upto; /* the last page goes too */
    if (end > c->dropped) {
        uintptr_t from = (base + c->dropped) & ~(uintptr_t)(page - 1);
        madvise((void *)from, (size_t)(base + end - from), MADV_DONTNEED);
        c->dropped = end;
    }
}

/* Reads one byte per page so the block's pages are in memory before the caller needs
 * them; the kernel's readahead does the rest. */
static void fault_in(const char *p, size_t len)
{
    volatile char sink = 0;
    size_t page = page_size();
    if (!len) return;
    madvise((void *)((uintptr_t)p & ~(uintptr_t)(page - 1)), len + page, MADV_WILLNEED);
    for (size_t i = 0; i < len; i += page) sink ^= p[i];
    sink ^= p[len - 1];
    (void)sink;
}

/* Fills slot with the next block; 0 with record_count 0 at the end. */
static int produce(tal_scan_t *sc, slot_t *slot)
{
    tal_scan_block_t *b = &slot->block;
    int rc;
    memset(b, 0, sizeof *b);
    b->slot = (int)(slot - sc->slots);
    if (sc->chunks) {
        const tal_chunk_disk_t *c;
        if (sc->next_chunk >= sc->n_chunks) return 0;
        c = &sc->chunks[sc->next_chunk];
        if (c->raw_size > slot->cap || !slot->buf) {
            void *buf;
            if (slot->buf) tal_pool_put(sc->pool, slot->buf, slot->cap);
            slot->buf = NULL;
            if ((rc = tal_pool_get(sc->pool, c->raw_size ? (size_t)c->raw_size : 1, &buf,
                                   &slot->cap)) < 0)
                return rc;
            slot->buf = buf;
        }
        if (sc->next_chunk + 1 < sc->n_chunks) {
            const tal_chunk_disk_t *n = c + 1;
            size_t page = page_size();
            uintptr_t from = ((uintptr_t)sc->residues + n->stored_offset) & ~(uintptr_t)(page - 1);
            madvise((void *)from, (size_t)n->stored_size + page, MADV_WILLNEED);
        }
        if ((rc = tal_store_chunk_decode(sc->s, sc->ctx, sc->next_chunk, slot->buf, slot->cap)) < 0)
            return rc;
        drop_to(&sc->raw_cursor, (size_t)(c->stored_offset + c->stored_size));
        b->first_record = c->first_record;
        b->record_count = c->record_count;
        b->raw_offset = c->raw_offset;
        b->residues = slot->buf;
        b->len = (size_t)c->raw_size;
        sc->next_chunk++;
        return 0;
    }
    if (sc->next_record >= sc->n_records) return 0;
    {
        uint64_t first = sc->next_record, end = first, start = sc->seq_offsets[first];
        const uint64_t *hdr = sc->opt.headers ? sc->hdr_offsets : NULL;
        /* whole records up to block_size residues, and as many header bytes when the
         * caller reads them (nr's merged headers outweigh short sequences), at least one */
        while (end < sc->n_records) {
            uint64_t next = sc->seq_offsets[end + 1];
            if (next < sc->seq_offsets[end] || next > sc->residue_count)
                return tal_store_corrupt_(sc->s, "the sequence offsets are out of order");
            if (end > first && (next - start > sc->opt.block_size ||
                                (hdr && hdr[end + 1] - hdr[first] > sc->opt.block_size)))
                break;
            end++;
        }
        b->first_record = first;
        b->record_count = end - first;
        b->raw_offset = start;
        b->len = (size_t)(sc->seq_offsets[end] - start);
        b->residues = sc->residues ? sc->residues + start : "";
        fault_in(b->residues, b->len);
        sc->next_record = end;
    }
    return 0;
}

static void *io_main(void *arg)
{
    tal_scan_t *sc = arg;
    pthread_mutex_lock(&sc->mu);
    for (;;) {
        slot_t *slot = NULL;
        int rc;
        while (!sc->stop && !sc->finished && !sc->error) {
            for (int i = 0; i < SLOTS && !slot; i++)
                if (sc->slots[i].state == SLOT_FREE) slot = &sc->slots[i];
            if (slot) break;
            pthread_cond_wait(&sc->cv, &sc->mu);
        }
        if (sc->stop || sc->finished || sc->error) break;
        pthread_mutex_unlock(&sc->mu);
        rc = produce(sc, slot);
        pthread_mutex_lock(&sc->mu);
        if (rc < 0)
            sc->error = rc;
        else if (slot->block.record_count == 0)
            sc->finished = 1;
        else {
            slot->state = SLOT_FILLED;
            slot->seq = sc->produced++;
        }
        pthread_cond_broadcast(&sc->cv);
    }
    pthread_mutex_unlock(&sc->mu);
    return NULL;
}

void tal_scan_opt_init(tal_scan_opt_t *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->threads = 2;
    opt->block_size = 4u << 20;
}

static void cursor_init(drop_cursor_t *c, const tal_store_t *s, uint32_t id)
{
    const void *data;
    size_t size;
    c->data = NULL;
    c->size = c->dropped = 0;
    if (tal_store_section_(s, id, &data, &size) && data) {
        c->data = data;
        c->size = size;
    }
}

uint64_t tal_scan_held_bytes_(const tal_store_t *s)
{
    uint64_t n_chunks, biggest;
    const tal_chunk_disk_t *chunks = tal_store_chunks_(s, &n_chunks);
    const void *data;
    size_t size;
    const tal_section_disk_t *residues = tal_store_section_(s, TAL_SEC_RESIDUES, &data, &size);
    tal_store_info_t info;
    if (!chunks) return 0;
    tal_store_info(s, &info);
    /* each slot's buffer is the pool's, or one of its own for a chunk past the size */
    biggest = info.chunk_size;
    for (uint64_t k = 0; k < n_chunks; k++)
        if (chunks[k].raw_size > biggest) biggest = chunks[k].raw_size;
    biggest = (biggest + TAL_HUGE_PAGE_BYTES - 1) & ~(uint64_t)(TAL_HUGE_PAGE_BYTES - 1);
    return SLOTS * biggest +
           tal_codec_ctx_footprint(residues ? residues->codec : TAL_CODEC_NONE, 0, 0, 0);
}

int tal_scan_open(tal_scan_t **out, const tal_store_t *s, const tal_scan_opt_t *opt)
{
    tal_scan_t *sc = calloc(1, sizeof *sc);
    tal_store_info_t info;
    int rc = TAL_ENOMEM;
    *out = NULL;
    if (!sc) return TAL_ENOMEM;
    sc->s = s;
    sc->opt = *opt;
    if (!sc->opt.block_size) sc->opt.block_size = 4u << 20;
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cv, NULL);
    tal_store_info(s, &info);
    sc->n_records = info.records;
    sc->residue_count = info.residues;
    cursor_init(&sc->raw_cursor, s, TAL_SEC_RESIDUES);
    sc->residues = sc->raw_cursor.data;
    sc->residues_size = sc->raw_cursor.size;
    cursor_init(&sc->arrays[ARR_SEQ_OFFSETS], s, TAL_SEC_SEQ_OFFSETS);
    cursor_init(&sc->arrays[ARR_LENGTHS], s, TAL_SEC_LENGTHS);
    cursor_init(&sc->arrays[ARR_CHECKSUMS], s, TAL_SEC_RECORD_CHECKSUMS);
    cursor_init(&sc->arrays[ARR_HDR_OFFSETS], s, TAL_SEC_HDR_OFFSETS);
    if (opt->headers) cursor_init(&sc->arrays[ARR_HEADERS], s, TAL_SEC_HEADERS);
    {
        uint64_t count; /* decoded on open in compressed stores of format 1.3 */
        sc->seq_offsets = tal_store_array_(s, TAL_SEC_SEQ_OFFSETS, &count);
        sc->hdr_offsets = tal_store_array_(s, TAL_SEC_HDR_OFFSETS, &count);
    }
    sc->chunks = tal_store_chunks_(s, &sc->n_chunks);
    if (sc->chunks) {
        tal_pool_opt_t po;
        const void *data;
        size_t size;
        const tal_section_disk_t *residues = tal_store_section_(s, TAL_SEC_RESIDUES, &data, &size);
        uint32_t codec = residues ? residues->codec : TAL_CODEC_NONE;
        uint64_t ctx_bytes = tal_codec_ctx_footprint(codec, 0, 0, 0);
        if ((rc = tal_budget_reserve(opt->budget, TAL_MEM_CHUNKS, ctx_bytes)) < 0) goto fail;
        sc->held_ctx = ctx_bytes;
        tal_pool_opt_init(&po);
        po.buffer_size = (size_t)info.chunk_size;
        po.max_buffers = SLOTS;
        po.budget = opt->budget;
        po.component = TAL_MEM_CHUNKS;
        if ((rc = tal_pool_create(&sc->pool, &po)) < 0) goto fail;
        if ((rc = tal_codec_ctx_create(&sc->ctx, 0, 0, 0)) < 0) goto fail;
    }
    if (opt->threads > 1) {
        if (pthread_create(&sc->thread, NULL, io_main, sc) != 0) {
            rc = TAL_ENOMEM;
            goto fail;
        }
        sc->threaded = 1;
    }
    *out = sc;
    return 0;
fail:
    tal_scan_close(sc);
    return rc;
}

int tal_scan_next(tal_scan_t *sc, tal_scan_block_t *block)
{
    slot_t *slot = NULL;
    int rc = 0;
    if (!sc->threaded) {
        int held = 0;
        for (int i = 0; i < SLOTS; i++) held += sc->slots[i].state == SLOT_HELD;
        for (int i = 0; i < SLOTS && !slot; i++)
            if (sc->slots[i].state == SLOT_FREE) slot = &sc->slots[i];
        if (!slot || held >= SLOTS - 1) return TAL_EUSAGE; /* the caller holds too many */
        if (sc->error) return sc->error;
        if ((rc = produce(sc, slot)) < 0) return sc->error = rc;
        if (slot->block.record_count == 0) return 0;
        slot->state = SLOT_HELD;
        *block = slot->block;
        return 1;
    }
    pthread_mutex_lock(&sc->mu);
    {
        int held = 0;
        for (int i = 0; i < SLOTS; i++) held += sc->slots[i].state == SLOT_HELD;
        if (held >= SLOTS - 1) { /* the I/O thread needs a slot to fill */
            pthread_mutex_unlock(&sc->mu);
            return TAL_EUSAGE;
        }
    }
    for (;;) {
        for (int i = 0; i < SLOTS && !slot; i++)
            if (sc->slots[i].state == SLOT_FILLED && sc->slots[i].seq == sc->consumed)
                slot = &sc->slots[i];
        if (slot || sc->error || sc->finished) break;
        pthread_cond_wait(&sc->cv, &sc->mu);
    }
    if (slot) {
        slot->state = SLOT_HELD;
        sc->consumed++;
        *block = slot->block;
        rc = 1;
    } else {
        rc = sc->error ? sc->error : 0;
    }
    pthread_mutex_unlock(&sc->mu);
    return rc;
}

void tal_scan_release(tal_scan_t *sc, tal_scan_block_t *block)
{
    slot_t *slot;
    uint64_t end_record;
    if (!block || block->slot < 0 || block->slot >= SLOTS) return;
    slot = &sc->slots[block->slot];
    end_record = block->first_record + block->record_count;
    /* Blocks are released in order in practice; dropping is cumulative either way. */
    if (!sc->chunks) drop_to(&sc->raw_cursor, (size_t)(block->raw_offset + block->len));
    drop_to(&sc->arrays[ARR_SEQ_OFFSETS], (size_t)end_record * 8);
    drop_to(&sc->arrays[ARR_LENGTHS], (size_t)end_record * 8);
    drop_to(&sc->arrays[ARR_CHECKSUMS], (size_t)end_record * 8);
    if (sc->opt.headers && sc->hdr_offsets) {
        uint64_t h = sc->hdr_offsets[end_record];
        if (h <= sc->arrays[ARR_HEADERS].size) drop_to(&sc->arrays[ARR_HEADERS], (size_t)h);
    }
    drop_to(&sc->arrays[ARR_HDR_OFFSETS], (size_t)end_record * 8);
    block->slot = -1;
    if (!sc->threaded) {
        slot->state = SLOT_FREE;
        return;
    }
    pthread_mutex_lock(&sc->mu);
    slot->state = SLOT_FREE;
    pthread_cond_broadcast(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
}

int tal_scan_record(tal_scan_t *sc, const tal_scan_block_t *block, uint64_t id, tal_record_t *rec)
{
    if (id < block->first_record || id - block->first_record >= block->record_count)
        return TAL_EUSAGE;
    return tal_store_record_at_(sc->s, id, block->residues, block->raw_offset, block->len, rec);
}

size_t tal_scan_buffer_bytes(const tal_scan_t *sc)
{
    size_t total = 0;
    tal_scan_t *m = (tal_scan_t *)sc; /* the lock, not the data, is mutated */
    if (sc->threaded) pthread_mutex_lock(&m->mu);
    for (int i = 0; i < SLOTS; i++) total += sc->slots[i].buf ? sc->slots[i].cap : 0;
    if (sc->threaded) pthread_mutex_unlock(&m->mu);
    return total;
}

void tal_scan_close(tal_scan_t *sc)
{
    if (!sc) return;
    if (sc->threaded) {
        pthread_mutex_lock(&sc->mu);
        sc->stop = 1;
        pthread_cond_broadcast(&sc->cv);
        pthread_mutex_unlock(&sc->mu);
        pthread_join(sc->thread, NULL);
    }
    for (int i = 0; i < SLOTS; i++)
        if (sc->slots[i].buf) tal_pool_put(sc->pool, sc->slots[i].buf, sc->slots[i].cap);
    tal_pool_destroy(sc->pool);
    tal_codec_ctx_free(sc->ctx);
    tal_budget_release(sc->opt.budget, TAL_MEM_CHUNKS, sc->held_ctx);
    pthread_mutex_destroy(&sc->mu);
    pthread_cond_destroy(&sc->cv);
    free(sc);
}
