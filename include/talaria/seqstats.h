/* Summary statistics of a set of sequences: counts, lengths, N50, alphabet, composition. */
#ifndef TALARIA_SEQSTATS_H
#define TALARIA_SEQSTATS_H

#include "talaria/api.h"

#include <stdint.h>

TAL_BEGIN_DECLS

typedef struct {
    uint64_t records;
    uint64_t residues;
    uint64_t min_length, max_length, n50;
    double mean_length, median_length;
    int alphabet; /* tal_alphabet_t */
    uint64_t composition[256];
} tal_seqstats_t;

/* Fills the length statistics from a lengths array (composition is left alone).
 * TAL_EINPUT if the lengths add up to more than 2^64 - 1 (a damaged lengths array). */
TAL_EXPORT int tal_seqstats_from_lengths(const uint64_t *lengths, uint64_t n, tal_seqstats_t *st);
/* Streams a FASTA file and fills everything. */
TAL_EXPORT int tal_seqstats_fasta(const char *path, int read_ahead, tal_seqstats_t *st);
/* Nucleotide if at least 90% of residues are A, C, G, T, U or N (any case). */
TAL_EXPORT int tal_guess_alphabet(const uint64_t composition[256], uint64_t residues);
TAL_EXPORT const char *tal_alphabet_name(int alphabet);

TAL_END_DECLS

#endif
