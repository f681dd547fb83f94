/* What the FASTA parser saw of a record's lines, beyond its header and residues: enough
 * for the store to keep the file's line layout (src/store/layout.c). Private to libtalaria. */
#ifndef TAL_FASTA_INTERNAL_H
#define TAL_FASTA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "talaria/fasta.h"

/* One run of equal residue lines: `repeat` lines of `len_cr` = (length << 1) | 1 when the
 * line ended with a carriage return before its '\n' (or before the end of the file). */
typedef struct {
    uint64_t len_cr;
    uint64_t repeat;
} tal_fasta_line_run_t;

typedef struct {
    int header_cr;                    /* the header line ended with '\r' */
    const tal_fasta_line_run_t *runs; /* the lines after the header, blank ones included */
    size_t run_count;
    int no_lf; /* the record's last line has no '\n': the file ends there */
} tal_fasta_lines_t;

/* The lines of the record tal_fasta_next returned last; valid until the next call. */
void tal_fasta_lines_(const tal_fasta_reader_t *r, tal_fasta_lines_t *lines);
/* The bytes before the first '>' (blank lines, spaces, tabs, carriage returns). */
const char *tal_fasta_preamble_(const tal_fasta_reader_t *r, size_t *len);

#endif
