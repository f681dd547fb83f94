/* Streaming FASTA reader: plain, gzip, zstd or lz4 input (by magic bytes) or stdin.
 * Validates as it reads; errors name the file and line. And the one FASTA record writer. */
#ifndef TALARIA_FASTA_H
#define TALARIA_FASTA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "talaria/api.h"

TAL_BEGIN_DECLS

typedef struct tal_fasta_reader tal_fasta_reader_t;

typedef struct {
    const char *header; /* without '>' and line end; not NUL-terminated */
    size_t header_len;
    const char *seq; /* residues without line breaks, case kept */
    size_t seq_len;
    uint64_t line;  /* 1-based line of the header */
    uint64_t index; /* 0-based record number */
} tal_fasta_record_t;

typedef struct {
    int read_ahead; /* decompress/read in a background thread */
} tal_fasta_opt_t;

TAL_EXPORT void tal_fasta_opt_init(tal_fasta_opt_t *opt);

/* path "-" is stdin. A file that is missing, unreadable or a directory is TAL_EIO (logged
 * naming it); one compressed with bzip2 or xz is TAL_EINPUT. */
TAL_EXPORT int tal_fasta_open(tal_fasta_reader_t **out, const char *path,
                              const tal_fasta_opt_t *opt);
/* Returns 1 and fills rec (valid until the next call), 0 at the end, <0 on error
 * (already logged with file and line). */
TAL_EXPORT int tal_fasta_next(tal_fasta_reader_t *r, tal_fasta_record_t *rec);
TAL_EXPORT const char *tal_fasta_path(const tal_fasta_reader_t *r);
TAL_EXPORT const char *tal_fasta_format(const tal_fasta_reader_t *r);
TAL_EXPORT uint64_t tal_fasta_stored_size(const tal_fasta_reader_t *r);
/* XXH3-64 of the bytes of the file as stored; complete once tal_fasta_next returned 0. */
TAL_EXPORT uint64_t tal_fasta_stored_hash(tal_fasta_reader_t *r);
TAL_EXPORT void tal_fasta_close(tal_fasta_reader_t *r);

enum {
    TAL_FASTA_EMPTY_LINE = 1 /* an empty sequence still gets its (empty) line */
};

/* Writes ">header" (unless header is NULL: the caller wrote its own) and seq in lines of
 * width residues (0: one line); an empty seq writes no line unless flags has
 * TAL_FASTA_EMPTY_LINE. TAL_EIO, not logged, if out's error flag is set. */
TAL_EXPORT int tal_fasta_write(FILE *out, const char *header, size_t header_len, const char *seq,
                               size_t seq_len, size_t width, unsigned flags);

/* 1 if c may appear in a sequence: letters, '*' and '-'. */
static inline int tal_is_residue(unsigned char c)
{
    unsigned char l = (unsigned char)(c | 0x20);
    return (l >= 'a' && l <= 'z') || c == '*' || c == '-';
}

TAL_END_DECLS

#endif
