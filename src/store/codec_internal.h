/* Chunk compression for the store: lz4 (block API; HC for levels 3 and up) and zstd (one
 * frame per chunk). A context per thread; nothing here starts threads of its own. */
#ifndef TAL_CODEC_INTERNAL_H
#define TAL_CODEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct tal_codec_ctx tal_codec_ctx_t;

/* level 0 picks the codec's default (lz4: 1, the fast mode; zstd: 9). chunk_size is the
 * most raw bytes a chunk aims at: a longer one (a record of its own) is compressed with
 * the tables of a chunk_size one, so the context never holds more than
 * tal_codec_ctx_footprint says. 0 for a context that only decompresses. */
int tal_codec_ctx_create(tal_codec_ctx_t **out, uint32_t codec, int level, size_t chunk_size);
void tal_codec_ctx_free(tal_codec_ctx_t *ctx);
/* The most bytes a context of codec and level holds once it has compressed (compress 1)
 * or decompressed (compress 0) chunks of chunk_size: what to reserve from a budget for it.
 * Counts lz4's fast-mode state, which lives on the stack, as held. */
size_t tal_codec_ctx_footprint(uint32_t codec, int level, size_t chunk_size, int compress);
/* The bytes the context holds now. */
size_t tal_codec_ctx_held(const tal_codec_ctx_t *ctx);
/* Room a compressed chunk of raw bytes may need. */
size_t tal_codec_bound(uint32_t codec, size_t raw);
/* Compresses src into dst (cap >= tal_codec_bound); *stored_len is 0 when the result
 * would not be smaller than the input (the chunk is then stored raw). */
int tal_codec_compress(tal_codec_ctx_t *ctx, const char *src, size_t len, char *dst, size_t cap,
                       size_t *stored_len);
/* Decompresses exactly raw_len bytes; TAL_EINPUT if the data does not decode to that. */
int tal_codec_decompress(tal_codec_ctx_t *ctx, uint32_t codec, const char *src, size_t len,
                         char *dst, size_t raw_len);

#endif
