/* lz4 and zstd behind one small interface, so the builder, the reader and the scan
 * treat every chunk the same way. */
#include "codec_internal.h"
#include "format_internal.h"
#include "talaria/error.h"

#include <limits.h>
#include <lz4.h>
#include <lz4hc.h>
#include <stdlib.h>
#include <string.h>
/* ZSTD_getCParams and the context size estimates; libzstd exports them */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

struct tal_codec_ctx {
    uint32_t codec;
    int level;
    size_t chunk_size; /* 0: tables sized for whatever is compressed */
    ZSTD_CCtx *zc;
    ZSTD_DCtx *zd;
    void *lz4hc_state;
};

const char *tal_codec_name(uint32_t codec)
{
    switch (codec) {
    case TAL_CODEC_NONE: return "none";
    case TAL_CODEC_LZ4: return "lz4";
    case TAL_CODEC_ZSTD: return "zstd";
    default: return "unknown";
    }
}

static int default_level(uint32_t codec, int level)
{
    /* zstd: 9, where chunks of proteins find their repeats within the chunk */
    return level ? level : (codec == TAL_CODEC_ZSTD ? 9 : 1);
}

int tal_codec_ctx_create(tal_codec_ctx_t **out, uint32_t codec, int level, size_t chunk_size)
{
    tal_codec_ctx_t *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c) return TAL_ENOMEM;
    c->codec = codec;
    c->level = default_level(codec, level);
    c->chunk_size = chunk_size;
    *out = c;
    return 0;
}

void tal_codec_ctx_free(tal_codec_ctx_t *c)
{
    if (!c) return;
    ZSTD_freeCCtx(c->zc);
    ZSTD_freeDCtx(c->zd);
    free(c->lz4hc_state);
    free(c);
}

/* zstd takes its parameters from a row of a table per level, the row chosen by the
 * source's size (up to 16 KiB, 128 KiB, 256 KiB, larger) and then shrunk to fit the
 * source. Within a row the memory only shrinks with the source, but the rows are not
 * ordered by memory, so the most a chunk of up to chunk_size can take is the largest of
 * the rows' upper ends. */
static size_t zstd_cctx_footprint(int level, size_t chunk_size)
{
    static const size_t row_ends[] = {16u << 10, 128u << 10, 256u << 10};
    size_t most = ZSTD_estimateCCtxSize_usingCParams(ZSTD_getCParams(level, chunk_size, 0));
    for (size_t i = 0; i < sizeof row_ends / sizeof *row_ends && row_ends[i] < chunk_size; i++) {
        size_t need = ZSTD_estimateCCtxSize_usingCParams(ZSTD_getCParams(level, row_ends[i], 0));
        if (need > most) most = need;
    }
    return most;
}

size_t tal_codec_ctx_footprint(uint32_t codec, int level, size_t chunk_size, int compress)
{
    size_t bytes = sizeof(tal_codec_ctx_t);
    level = default_level(codec, level);
    if (codec == TAL_CODEC_ZSTD)
        bytes += compress ? zstd_cctx_footprint(level, chunk_size ? chunk_size : 1)
                          : ZSTD_estimateDCtxSize();
    else if (codec == TAL_CODEC_LZ4 && compress)
        bytes += (size_t)(level >= LZ4HC_CLEVEL_MIN ? LZ4_sizeofStateHC() : LZ4_sizeofState());
    return bytes;
}

size_t tal_codec_ctx_held(const tal_codec_ctx_t *c)
{
    return sizeof *c + ZSTD_sizeof_CCtx(c->zc) + ZSTD_sizeof_DCtx(c->zd) +
           (c->lz4hc_state ? (size_t)LZ4_sizeofStateHC() : 0);
}

/* The parameters zstd would choose for a source of len bytes, but never those of a
 * source longer than a chunk: its window and tables then stay within the footprint. */
static int zstd_size_tables(tal_codec_ctx_t *c, size_t len)
{
    ZSTD_compressionParameters p =
        ZSTD_getCParams(c->level, c->chunk_size && len > c->chunk_size ? c->chunk_size : len, 0);
    const struct {
        ZSTD_cParameter param;
        int value;
    } set[] = {{ZSTD_c_windowLog, (int)p.windowLog}, {ZSTD_c_chainLog, (int)p.chainLog},
               {ZSTD_c_hashLog, (int)p.hashLog},     {ZSTD_c_searchLog, (int)p.searchLog},
               {ZSTD_c_minMatch, (int)p.minMatch},   {ZSTD_c_targetLength, (int)p.targetLength},
               {ZSTD_c_strategy, (int)p.strategy}};
    for (size_t i = 0; i < sizeof set / sizeof *set; i++)
        if (ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, set[i].param, set[i].value)))
            return TAL_EUSAGE;
    return 0;
}

size_t tal_codec_bound(uint32_t codec, size_t raw)
{
    if (codec == TAL_CODEC_ZSTD) return ZSTD_compressBound(raw);
    if (codec == TAL_CODEC_LZ4 && raw <= LZ4_MAX_INPUT_SIZE)
        return (size_t)LZ4_compressBound((int)raw);
    return raw;
}

int tal_codec_compress(tal_codec_ctx_t *c, const char *src, size_t len, char *dst, size_t cap,
                       size_t *stored_len)
{
    *stored_len = 0;
    if (len == 0) return 0;
    if (c->codec == TAL_CODEC_LZ4) {
        int n;
        if (len > LZ4_MAX_INPUT_SIZE || cap > INT_MAX) return 0; /* stored raw */
        if (c->level >= LZ4HC_CLEVEL_MIN) {
            if (!c->lz4hc_state && !(c->lz4hc_state = malloc((size_t)LZ4_sizeofStateHC())))
                return TAL_ENOMEM;
            n = LZ4_compress_HC_extStateHC(c->lz4hc_state, src, dst, (int)len, (int)cap, c->level);
        } else {
            n = LZ4_compress_default(src, dst, (int)len, (int)cap);
        }
        if (n > 0 && (size_t)n < len) *stored_len = (size_t)n;
        return 0;
    }
    if (c->codec == TAL_CODEC_ZSTD) {
        size_t n;
        int rc;
        if (!c->zc) {
            if (!(c->zc = ZSTD_createCCtx())) return TAL_ENOMEM;
            ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel, c->level);
            ZSTD_CCtx_setParameter(c->zc, ZSTD_c_contentSizeFlag, 1);
            ZSTD_CCtx_setParameter(c->zc, ZSTD_c_checksumFlag, 0); /* the chunk table has one */
        }
        if ((rc = zstd_size_tables(c, len)) < 0) return rc;
        n = ZSTD_compress2(c->zc, dst, cap, src, len);
        if (ZSTD_isError(n)) {
            if (ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation) return TAL_ENOMEM;
            return 0;
        }
        if (n < len) *stored_len = n;
        return 0;
    }
    return 0;
}

int tal_codec_decompress(tal_codec_ctx_t *c, uint32_t codec, const char *src, size_t len, char *dst,
                         size_t raw_len)
{
    switch (codec) {
    case TAL_CODEC_NONE:
        if (len != raw_len) return TAL_EINPUT;
        if (len) memcpy(dst, src, len);
        return 0;
    case TAL_CODEC_LZ4: {
        int n;
        if (len > INT_MAX || raw_len > INT_MAX) return TAL_EINPUT;
        n = LZ4_decompress_safe(src, dst, (int)len, (int)raw_len);
        return n >= 0 && (size_t)n == raw_len ? 0 : TAL_EINPUT;
    }
    case TAL_CODEC_ZSTD: {
        size_t n;
        unsigned long long content = ZSTD_getFrameContentSize(src, len);
        if (content != raw_len) return TAL_EINPUT;
        if (!c->zd && !(c->zd = ZSTD_createDCtx())) return TAL_ENOMEM;
        n = ZSTD_decompressDCtx(c->zd, dst, raw_len, src, len);
        return !ZSTD_isError(n) && n == raw_len ? 0 : TAL_EINPUT;
    }
    default: return TAL_EINPUT;
    }
}
