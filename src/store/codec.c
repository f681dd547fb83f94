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
#include <zstd.h>
#include <zstd_errors.h>

struct tal_codec_ctx {
    uint32_t codec;
    int level;
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

int tal_codec_ctx_create(tal_codec_ctx_t **out, uint32_t codec, int level)
{
    tal_codec_ctx_t *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c) return TAL_ENOMEM;
    c->codec = codec;
    c->level = level ? level : (codec == TAL_CODEC_ZSTD ? 3 : 1);
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

size_t tal_codec_bound(uint32_t codec, size_t raw)
{
    if (codec == TAL_CODEC_ZSTD) return ZSTD_compressBound(raw);
    if (codec == TAL_CODEC_LZ4 && raw <= LZ4_MAX_INPUT_SIZE) return (size_t)LZ4_compressBound((int)raw);
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
        if (!c->zc) {
            if (!(c->zc = ZSTD_createCCtx())) return TAL_ENOMEM;
            ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel, c->level);
            ZSTD_CCtx_setParameter(c->zc, ZSTD_c_contentSizeFlag, 1);
            ZSTD_CCtx_setParameter(c->zc, ZSTD_c_checksumFlag, 0); /* the chunk table has one */
        }
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

int tal_codec_decompress(tal_codec_ctx_t *c, uint32_t codec, const char *src, size_t len,
                         char *dst, size_t raw_len)
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
