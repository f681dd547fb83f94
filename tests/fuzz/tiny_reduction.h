/* Tiny FASTA inputs and their reduction by the library, for the fuzz harnesses of the delta
 * store and of hit expansion. tests/fuzz/corpus/deltas holds the same reductions made by
 * talaria reduce (see its README). Test code only. */
#ifndef TAL_FUZZ_TINY_REDUCTION_H
#define TAL_FUZZ_TINY_REDUCTION_H

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "talaria/reduce.h"

/* Two families (members with substitutions, an identical copy, a shorter member, one with
 * an insertion), a singleton and an empty record; UniProt and plain headers. */
static const char tiny_protein[] = ">sp|P11111|REF1_HUMAN reference one OX=9606\n"
                                   "NSSLQIRAQKIIALLMFYLAIYKAFYARRYLILNKQDNSQTGWLWCLDATNISFLLMRRD\n"
                                   "GSARSASERYDSAFIPNCVCPYMSTDIMEDVEIAPCECPFKIGWAITIEEFKPQCPRRRK\n"
                                   ">m1 a member with substitutions\n"
                                   "NSHLQIRAQKIIALLMFYLAIYKAFYARRYLILNKQDNSQTGWLPCLIATNISFLDMRRD\n"
                                   "GSARSASERYDSAFIPNCVCPYMSTDIMEDVEIAPCECPFKIGWAITIEEFKPQCPRRRK\n"
                                   ">tr|Q22222|M2_HUMAN an identical copy\n"
                                   "NSSLQIRAQKIIALLMFYLAIYKAFYARRYLILNKQDNSQTGWLWCLDATNISFLLMRRD\n"
                                   "GSARSASERYDSAFIPNCVCPYMSTDIMEDVEIAPCECPFKIGWAITIEEFKPQCPRRRK\n"
                                   ">m3 a shorter member\n"
                                   "IIALLMFYLAIYKAFYARRYLILNKQDNSQTGWLWCLDATNISFLLMRRDGSARSASERY\n"
                                   "DSAFIPNCVCPYMSTDIMEDVEIAPCECPFKIGWAITIEE\n"
                                   ">sp|P33333|REF2_MOUSE reference two\n"
                                   "CCAHQKTPEHEQELERQFPIFFPQTIPGNSGQHQASLWLEDLSIVSHWRTFSVDEMCRDS\n"
                                   "CTMVGENPLPDIHRHAAIMPYYHCKAPCFV\n"
                                   ">m4 a member with an insertion\n"
                                   "CCAHQKTPEHEQELERQFPIFFPQTIPGNSGQHQASLWLEWWWDLSIVSHWRTFSVDEMC\n"
                                   "RDSCTMVGENPLPDIHRHAAIMPYYHCKAPCFV\n"
                                   ">sp|P44444|LONE_RAT a singleton\n"
                                   "IHTVKTAYYTHSWSNFRGEHADNLEFCGYEINHWQDGDRDCWFFGHQCNEPQKEYPYHNR\n"
                                   ">empty no residues\n";

/* Two nucleotide families: a variant with substitutions and a deletion, an exact copy. */
static const char tiny_dna[] = ">chrA first\n"
                               "TACTGATGACTCGCTATATTACACCGTAAAACGAGTCTGTACAGGGTGAGTGTAAAGTGT\n"
                               "GCGATACATCCGTAGAGCGTGGCCCAAGAAAGCAATTGAAAGTAGTTTCCGCCCCTGACA\n"
                               "CCTAGGTGGTCGCTAAGATTTACCCACACGCGTATCCGTTGGCGTATACTCACCAACCTG\n"
                               "ATAGGGGCCAGCGGGACATA\n"
                               ">chrA_var a variant\n"
                               "TACTGATGACTCGCTATATTACACCGTAAAACGAGTCTGTACAGGGTGAGTGTAAAGTGT\n"
                               "GCGATACATCCGCAGAGCGTGGCCCAAGAAAGCAGTTGAAAGTTTCCGCCCCTGTCACCT\n"
                               "AGGTGGTCGCTAAGATTTACCCACACGCGTATCCGTTGGCGTATACTCACCAACCTGATA\n"
                               "GGGGCCAGCGCGACATG\n"
                               ">chrB second\n"
                               "GCGTCGAGTACGAGGGTGCACACTCCCCCTCCCTGAACGGCAAAAACCATTGGCCCGGTT\n"
                               "CGTCGATTTGCTCTTCCTATTAACTGGTACGAAGGGACTAGTCGATTCGGGGTACGACAT\n"
                               "GGCGATGTCCAGTGCAGGGCGGGCTTTAGG\n"
                               ">chrB_copy\n"
                               "GCGTCGAGTACGAGGGTGCACACTCCCCCTCCCTGAACGGCAAAAACCATTGGCCCGGTT\n"
                               "CGTCGATTTGCTCTTCCTATTAACTGGTACGAAGGGACTAGTCGATTCGGGGTACGACAT\n"
                               "GGCGATGTCCAGTGCAGGGCGGGCTTTAGG\n";

static const char tiny_single[] = ">only one\nMKVLA\n";

/* Writes text to DIR/NAME.fa and reduces it (one thread, scratch in dir) to DIR/NAME.fasta
 * and DIR/NAME.deltas.tal, whose paths go to fasta and deltas. 0, or the library's error. */
static int tiny_reduce(const char *dir, const char *name, const char *text, char *fasta,
                       char *deltas, size_t size)
{
    char input[PATH_MAX + 64];
    tal_reduce_opt_t opt;
    FILE *f;
    snprintf(input, sizeof input, "%s/%s.fa", dir, name);
    snprintf(fasta, size, "%s/%s.fasta", dir, name);
    snprintf(deltas, size, "%s/%s.deltas.tal", dir, name);
    if (!(f = fopen(input, "w"))) return -1;
    if (fputs(text, f) == EOF) {
        fclose(f);
        return -1;
    }
    if (fclose(f) != 0) return -1;
    tal_reduce_opt_init(&opt);
    opt.threads = 1;
    opt.tmp_dir = dir;
    return tal_reduce_run(input, fasta, &opt, NULL);
}

#endif
