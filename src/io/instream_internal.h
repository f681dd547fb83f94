/* A byte stream from a plain, gzip, zstd or lz4 file (or stdin), recognised by its
 * magic bytes, optionally read ahead by a background thread into three buffers. */
#ifndef TAL_INSTREAM_INTERNAL_H
#define TAL_INSTREAM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct tal_instream tal_instream_t;

/* path "-" reads stdin. With read_ahead, a thread fills buffers while the caller parses. */
int tal_instream_open(tal_instream_t **out, const char *path, int read_ahead);
/* The bytes a stream holds at most: its read and decode buffers, or the mapped windows
 * of a plain file in flight. */
size_t tal_instream_footprint(int read_ahead);
/* Gives the next block of decompressed bytes, valid until the next call.
 * Returns 1 with a block, 0 at the end, or a negative error; on error
 * tal_instream_error() describes it (without file or line: the caller adds them). */
int tal_instream_next(tal_instream_t *s, const char **data, size_t *len);
const char *tal_instream_error(const tal_instream_t *s);
const char *tal_instream_format(const tal_instream_t *s);
/* Size in bytes of the file as stored (0 for pipes), and a hash of the stored bytes read so far. */
uint64_t tal_instream_stored_size(const tal_instream_t *s);
uint64_t tal_instream_stored_hash(tal_instream_t *s);
void tal_instream_close(tal_instream_t *s);

#endif
