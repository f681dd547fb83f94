/* Input streams: plain, gzip (zlib), zstd and lz4-frame, detected by magic bytes.
 * The read-ahead thread keeps decompression off the parser's core. */
#include "instream_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4frame.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#define RAW_BUF_SIZE (1u << 20)
#define OUT_BUF_SIZE (4u << 20)
#define N_BUFS       3

typedef enum { FMT_PLAIN, FMT_GZIP, FMT_ZSTD, FMT_LZ4 } stream_format_t;

typedef struct {
    char *data;       /* owned buffer (decoding modes) */
    const char *view; /* what the consumer reads: data, or a window of the mapping */
    size_t len;
    int status; /* 1 data, 0 end, <0 error */
} block_t;

struct tal_instream {
    int fd;
    int own_fd;
    stream_format_t format;
    uint64_t stored_size;
    XXH3_state_t *stored_hash;
    /* raw (stored) bytes not yet consumed by the decoder */
    unsigned char *raw;
    size_t raw_pos, raw_len;
    int raw_eof;
    /* decoders */
    z_stream zs;
    int zs_ready, zs_member_done;
    ZSTD_DStream *zds;
    size_t zstd_last;
    LZ4F_dctx *lz4;
    size_t lz4_last;
    int finished;
    int failed; /* the decoder's error, given after the bytes decoded before it */
    /* plain regular files are mapped rather than copied; windows are dropped once read */
    const char *map;
    size_t map_size, map_pos;
    char error[256];
    /* buffers: without read-ahead only blocks[0] is used */
    block_t blocks[N_BUFS];
    int read_ahead;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int head, count;    /* filled blocks waiting for the consumer, ring order */
    int consumer_holds; /* index of the block the consumer holds, or -1 */
    int stop;
};

static int raw_fill(tal_instream_t *s)
{
    ssize_t n;
    if (s->raw_pos < s->raw_len || s->raw_eof) return 0;
    do n = read(s->fd, s->raw, RAW_BUF_SIZE);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        snprintf(s->error, sizeof s->error, "read failed: %s", strerror(errno));
        return TAL_EIO;
    }
    s->raw_pos = 0;
    s->raw_len = (size_t)n;
    if (n == 0)
        s->raw_eof = 1;
    else
        XXH3_64bits_update(s->stored_hash, s->raw, (size_t)n);
    return 0;
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* Decodes into out (capacity cap); returns bytes produced (0 only at the end) or <0. The
 * bytes decoded before an error come first, so that the parser names the line where the
 * damage is, not the start of the block; the error follows on the next call. */
static long decode(tal_instream_t *s, char *out, size_t cap)
{
    size_t produced = 0;
    int rc = 0;
    if (s->failed) return s->failed;
    while (produced < cap && !s->finished) {
        if ((rc = raw_fill(s)) < 0) goto fail;
        if (s->format == FMT_PLAIN) {
            size_t n = s->raw_len - s->raw_pos;
            if (n == 0 && !s->raw_eof && cap - produced >= RAW_BUF_SIZE) {
                /* read straight into the caller's buffer: one copy fewer */
                ssize_t got;
                do got = read(s->fd, out + produced, cap - produced);
                while (got < 0 && errno == EINTR);
                if (got < 0) {
                    snprintf(s->error, sizeof s->error, "read failed: %s", strerror(errno));
                    rc = TAL_EIO;
                    goto fail;
                }
                if (got == 0) {
                    s->raw_eof = 1;
                    s->finished = 1;
                    break;
                }
                XXH3_64bits_update(s->stored_hash, out + produced, (size_t)got);
                produced += (size_t)got;
                continue;
            }
            if (s->raw_eof) {
                s->finished = 1;
                break;
            }
            if (n > cap - produced) n = cap - produced;
            memcpy(out + produced, s->raw + s->raw_pos, n);
            s->raw_pos += n;
            produced += n;
        } else if (s->format == FMT_GZIP) {
            if (s->raw_eof) {
                if (!s->zs_member_done) {
                    snprintf(s->error, sizeof s->error, "gzip stream is truncated");
                    rc = TAL_EINPUT;
                    goto fail;
                }
                s->finished = 1;
                break;
            }
            if (s->zs_member_done) {
                /* concatenated members (bgzip, cat a.gz b.gz) or zero padding */
                size_t avail = s->raw_len - s->raw_pos;
                if (all_zero(s->raw + s->raw_pos, avail)) {
                    s->raw_pos = s->raw_len;
                    continue;
                }
                if (s->raw[s->raw_pos] != 0x1f) {
                    snprintf(s->error, sizeof s->error, "unexpected data after the gzip stream");
                    rc = TAL_EINPUT;
                    goto fail;
                }
                inflateReset(&s->zs);
                s->zs_member_done = 0;
            }
            s->zs.next_in = s->raw + s->raw_pos;
            s->zs.avail_in = (uInt)(s->raw_len - s->raw_pos);
            s->zs.next_out = (Bytef *)out + produced;
            s->zs.avail_out = (uInt)(cap - produced);
            rc = inflate(&s->zs, Z_NO_FLUSH);
            produced = cap - s->zs.avail_out;
            s->raw_pos = s->raw_len - s->zs.avail_in;
            if (rc == Z_STREAM_END)
                s->zs_member_done = 1;
            else if (rc != Z_OK && rc != Z_BUF_ERROR) {
                snprintf(s->error, sizeof s->error, "gzip data is corrupt (%s)",
                         s->zs.msg ? s->zs.msg : "inflate failed");
                rc = TAL_EINPUT;
                goto fail;
            }
        } else if (s->format == FMT_ZSTD) {
            ZSTD_inBuffer in = {s->raw + s->raw_pos, s->raw_len - s->raw_pos, 0};
            ZSTD_outBuffer o = {out + produced, cap - produced, 0};
            if (s->raw_eof) {
                if (s->zstd_last != 0) {
                    /* the decoder may still hold output; give it a chance */
                    size_t r = ZSTD_decompressStream(s->zds, &o, &in);
                    produced += o.pos;
                    if (!ZSTD_isError(r) && o.pos) {
                        s->zstd_last = r;
                        continue;
                    }
                    snprintf(s->error, sizeof s->error, "zstd stream is truncated");
                    rc = TAL_EINPUT;
                    goto fail;
                }
                s->finished = 1;
                break;
            }
            s->zstd_last = ZSTD_decompressStream(s->zds, &o, &in);
            if (ZSTD_isError(s->zstd_last)) {
                snprintf(s->error, sizeof s->error, "zstd data is corrupt (%s)",
                         ZSTD_getErrorName(s->zstd_last));
                rc = TAL_EINPUT;
                goto fail;
            }
            produced += o.pos;
            s->raw_pos += in.pos;
        } else {
            size_t in_len = s->raw_len - s->raw_pos, out_len = cap - produced;
            if (s->raw_eof) {
                if (s->lz4_last != 0) {
                    snprintf(s->error, sizeof s->error, "lz4 stream is truncated");
                    rc = TAL_EINPUT;
                    goto fail;
                }
                s->finished = 1;
                break;
            }
            s->lz4_last = LZ4F_decompress(s->lz4, out + produced, &out_len, s->raw + s->raw_pos,
                                          &in_len, NULL);
            if (LZ4F_isError(s->lz4_last)) {
                snprintf(s->error, sizeof s->error, "lz4 data is corrupt (%s)",
                         LZ4F_getErrorName(s->lz4_last));
                rc = TAL_EINPUT;
                goto fail;
            }
            produced += out_len;
            s->raw_pos += in_len;
        }
    }
    return (long)produced;
fail:
    s->failed = rc;
    return produced ? (long)produced : rc;
}

static void fill_block(tal_instream_t *s, block_t *b)
{
    long n;
    if (s->map) {
        size_t len = s->map_size - s->map_pos;
        if (len > OUT_BUF_SIZE) len = OUT_BUF_SIZE;
        b->view = s->map + s->map_pos;
        b->len = len;
        b->status = len ? 1 : 0;
        s->map_pos += len;
        /* hashing touches every page, so the thread that fills also faults them in */
        XXH3_64bits_update(s->stored_hash, b->view, len);
        return;
    }
    n = decode(s, b->data, OUT_BUF_SIZE);
    b->view = b->data;
    b->len = n > 0 ? (size_t)n : 0;
    b->status = n > 0 ? 1 : (int)n;
}

/* The consumer is done with a block: a mapped window's pages leave our RSS. */
static void release_block(tal_instream_t *s, block_t *b)
{
    if (s->map && b->len) {
        size_t off = (size_t)(b->view - s->map), start = off & ~(size_t)4095;
        madvise((void *)(s->map + start), off + b->len - start, MADV_DONTNEED);
    }
}

static void *read_ahead_main(void *arg)
{
    tal_instream_t *s = arg;
    int slot = 0;
    for (;;) {
        block_t *b;
        pthread_mutex_lock(&s->mu);
        /* count includes the block the consumer holds, so it is never refilled early */
        while (!s->stop && s->count == N_BUFS) pthread_cond_wait(&s->cv, &s->mu);
        if (s->stop) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        pthread_mutex_unlock(&s->mu);
        b = &s->blocks[slot];
        fill_block(s, b);
        pthread_mutex_lock(&s->mu);
        s->count++;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        slot = (slot + 1) % N_BUFS;
        if (b->status <= 0) break;
    }
    return NULL;
}

int tal_instream_next(tal_instream_t *s, const char **data, size_t *len)
{
    block_t *b;
    if (!s->read_ahead) {
        b = &s->blocks[0];
        if (b->status > 0) release_block(s, b);
        fill_block(s, b);
    } else {
        pthread_mutex_lock(&s->mu);
        if (s->consumer_holds >= 0) {
            release_block(s, &s->blocks[s->head]);
            s->head = (s->head + 1) % N_BUFS;
            s->count--;
            s->consumer_holds = -1;
            pthread_cond_broadcast(&s->cv);
        }
        while (s->count == 0) pthread_cond_wait(&s->cv, &s->mu);
        b = &s->blocks[s->head];
        if (b->status > 0) s->consumer_holds = s->head;
        pthread_mutex_unlock(&s->mu);
    }
    if (b->status <= 0) return b->status;
    *data = b->view;
    *len = b->len;
    return 1;
}

static int detect_format(tal_instream_t *s, const char *path)
{
    const unsigned char *m;
    int rc = raw_fill(s);
    if (rc) return rc;
    m = s->raw;
    if (s->raw_len >= 2 && m[0] == 0x1f && m[1] == 0x8b) {
        s->format = FMT_GZIP;
        if (inflateInit2(&s->zs, 15 + 32) != Z_OK) return TAL_ENOMEM;
        s->zs_ready = 1;
    } else if (s->raw_len >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) {
        s->format = FMT_ZSTD;
        s->zds = ZSTD_createDStream();
        if (!s->zds) return TAL_ENOMEM;
        ZSTD_initDStream(s->zds);
    } else if (s->raw_len >= 4 && m[0] == 0x04 && m[1] == 0x22 && m[2] == 0x4d && m[3] == 0x18) {
        s->format = FMT_LZ4;
        if (LZ4F_isError(LZ4F_createDecompressionContext(&s->lz4, LZ4F_VERSION))) return TAL_ENOMEM;
    } else if (s->raw_len >= 3 && m[0] == 'B' && m[1] == 'Z' && m[2] == 'h') {
        tal_log_error("%s: bzip2-compressed input is not supported; use gzip, zstd or lz4, or "
                      "decompress it first",
                      path);
        return TAL_EINPUT;
    } else if (s->raw_len >= 6 && !memcmp(m,
                                          "\xfd"
                                          "7zXZ",
                                          5)) {
        tal_log_error("%s: xz-compressed input is not supported; use gzip, zstd or lz4, or "
                      "decompress it first",
                      path);
        return TAL_EINPUT;
    } else {
        s->format = FMT_PLAIN;
    }
    return 0;
}

int tal_instream_open(tal_instream_t **out, const char *path, int read_ahead)
{
    tal_instream_t *s = calloc(1, sizeof *s);
    struct stat st;
    int rc = TAL_ENOMEM, i;
    *out = NULL;
    if (!s) return TAL_ENOMEM;
    s->fd = -1;
    s->consumer_holds = -1;
    s->raw = malloc(RAW_BUF_SIZE);
    s->stored_hash = XXH3_createState();
    if (!s->raw || !s->stored_hash) goto fail;
    XXH3_64bits_reset(s->stored_hash);
    for (i = 0; i < (read_ahead ? N_BUFS : 1); i++) {
        s->blocks[i].data = malloc(OUT_BUF_SIZE);
        s->blocks[i].status = 1;
        if (!s->blocks[i].data) goto fail;
    }
    if (!strcmp(path, "-")) {
        s->fd = 0;
    } else {
        s->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (s->fd < 0) {
            /* missing or unreadable: an I/O failure, not bad input */
            tal_log_error("cannot open %s: %s", path, strerror(errno));
            rc = TAL_EIO;
            goto fail;
        }
        s->own_fd = 1;
    }
    if (fstat(s->fd, &st) == 0 && S_ISREG(st.st_mode)) {
        s->stored_size = (uint64_t)st.st_size;
        posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    } else if (fstat(s->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        tal_log_error("cannot read %s: %s (a FASTA file is needed)", path, strerror(EISDIR));
        rc = TAL_EIO;
        goto fail;
    }
    if ((rc = detect_format(s, path)) < 0) {
        if (rc == TAL_EIO) tal_log_error("%s: %s", path, s->error);
        goto fail;
    }
    if (s->format == FMT_PLAIN && s->stored_size > 0 && s->stored_size <= SIZE_MAX) {
        void *m = mmap(NULL, (size_t)s->stored_size, PROT_READ, MAP_PRIVATE, s->fd, 0);
        if (m != MAP_FAILED) {
            madvise(m, (size_t)s->stored_size, MADV_SEQUENTIAL);
            s->map = m;
            s->map_size = (size_t)s->stored_size;
            XXH3_64bits_reset(s->stored_hash); /* rehashed from the mapping */
        }
    }
    if (read_ahead) {
        s->read_ahead = 1;
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        if (pthread_create(&s->thread, NULL, read_ahead_main, s) != 0) {
            s->read_ahead = 0;
            pthread_mutex_destroy(&s->mu);
            pthread_cond_destroy(&s->cv);
        }
    }
    *out = s;
    return 0;
fail:
    tal_instream_close(s);
    return rc;
}

size_t tal_instream_footprint(int read_ahead)
{
    return RAW_BUF_SIZE + (size_t)(read_ahead ? N_BUFS : 1) * OUT_BUF_SIZE;
}

const char *tal_instream_error(const tal_instream_t *s) { return s->error; }

const char *tal_instream_format(const tal_instream_t *s)
{
    static const char *names[] = {"plain", "gzip", "zstd", "lz4"};
    return names[s->format];
}

uint64_t tal_instream_stored_size(const tal_instream_t *s) { return s->stored_size; }
uint64_t tal_instream_stored_hash(tal_instream_t *s) { return XXH3_64bits_digest(s->stored_hash); }

void tal_instream_close(tal_instream_t *s)
{
    if (!s) return;
    if (s->read_ahead) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
    }
    if (s->zs_ready) inflateEnd(&s->zs);
    if (s->zds) ZSTD_freeDStream(s->zds);
    if (s->lz4) LZ4F_freeDecompressionContext(s->lz4);
    if (s->map) munmap((void *)s->map, s->map_size);
    if (s->own_fd && s->fd >= 0) close(s->fd);
    for (int i = 0; i < N_BUFS; i++) free(s->blocks[i].data);
    if (s->stored_hash) XXH3_freeState(s->stored_hash);
    free(s->raw);
    free(s);
}
