/* Sequence sketches for the reduction: the m smallest hashes of a sequence's k-mers,
 * over a reduced 13-letter alphabet for proteins (so conservative substitutions keep
 * k-mers shared) or over canonical k-mers for nucleotides (both strands). Two
 * sequences with a hash in common are candidates for an alignment. */
#ifndef TAL_SKETCH_INTERNAL_H
#define TAL_SKETCH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int nucleotide; /* 0 protein, 1 nucleotide */
    int k;          /* k-mer length: protein 1-16, nucleotide 1-31 */
    int m;          /* hashes kept per sequence */
} tal_sketch_opt_t;

/* Protein k = 10, m = 20; nucleotide k = 15, m = 20. */
void tal_sketch_opt_init(tal_sketch_opt_t *opt, int nucleotide);
/* The reduced protein letter of a byte (0-12), or -1 for a byte that is no residue
 * class (X, *, -, digits...): k-mers across it are not used. Case-blind. */
int tal_sketch_protein_class(unsigned char c);
/* Writes the (up to opt->m) smallest distinct k-mer hashes of seq, ascending, to out
 * (room for opt->m); returns how many. */
size_t tal_sketch(const tal_sketch_opt_t *opt, const char *seq, size_t len, uint64_t *out);

#endif
