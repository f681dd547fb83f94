/* Writing one FASTA record, wrapped or on one line: the bytes talaria get and reconstruct
 * print, so the two commands and the delta store's writer cannot drift apart. */
#define _GNU_SOURCE
#include "talaria/error.h"
#include "talaria/fasta.h"

#include <stdio.h>

int tal_fasta_write(FILE *out, const char *header, size_t header_len, const char *seq,
                    size_t seq_len, size_t width, unsigned flags)
{
    int rc;
    /* one lock per record, not per line: records of millions of short lines are common */
    flockfile(out);
    if (header) {
        putc_unlocked('>', out);
        fwrite_unlocked(header, 1, header_len, out);
        putc_unlocked('\n', out);
    }
    if (seq_len == 0) {
        if (flags & TAL_FASTA_EMPTY_LINE) putc_unlocked('\n', out);
    } else if (width == 0 || seq_len <= width) {
        fwrite_unlocked(seq, 1, seq_len, out);
        putc_unlocked('\n', out);
    } else {
        for (size_t at = 0; at < seq_len; at += width) {
            fwrite_unlocked(seq + at, 1, seq_len - at < width ? seq_len - at : width, out);
            putc_unlocked('\n', out);
        }
    }
    rc = ferror_unlocked(out) ? TAL_EIO : 0;
    funlockfile(out);
    return rc;
}
