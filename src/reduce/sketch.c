/* k-mer min-hash sketches. Protein residues are first mapped to 13 classes of
 * residues that substitute for each other often (the idea behind MMseqs2's reduced
 * alphabets; this grouping is our own, from BLOSUM62's positive off-diagonal pairs),
 * so a member at 90% identity shares far more k-mers with its reference than it
 * would over 20 letters. */
#include "sketch_internal.h"

#include <pthread.h>
#include <string.h>

static signed char protein_class[256];
static signed char nucleotide_code[256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void init_tables(void)
{
    /* classes: A | C | D N | E Q | F Y | G | H | I V | K R | L M | P | S T | W */
    static const char *groups[13] = {"A",   "C",  "DNB", "EQZ", "FY", "G", "H",
                                     "IVJ", "KR", "LM",  "P",   "ST", "W"};
    memset(protein_class, -1, sizeof protein_class);
    memset(nucleotide_code, -1, sizeof nucleotide_code);
    for (int g = 0; g < 13; g++)
        for (const char *p = groups[g]; *p; p++) {
            protein_class[(unsigned char)*p] = (signed char)g;
            protein_class[(unsigned char)(*p + 32)] = (signed char)g; /* lowercase */
        }
    nucleotide_code['A'] = nucleotide_code['a'] = 0;
    nucleotide_code['C'] = nucleotide_code['c'] = 1;
    nucleotide_code['G'] = nucleotide_code['g'] = 2;
    nucleotide_code['T'] = nucleotide_code['t'] = 3;
    nucleotide_code['U'] = nucleotide_code['u'] = 3;
}

int tal_sketch_protein_class(unsigned char c)
{
    pthread_once(&tables_once, init_tables);
    return protein_class[c];
}

void tal_sketch_opt_init(tal_sketch_opt_t *opt, int nucleotide)
{
    opt->nucleotide = nucleotide;
    opt->k = nucleotide ? 15 : 10;
    opt->m = 20;
}

/* A 64-bit finaliser (splitmix64): k-mer codes are far from uniform. */
static inline uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Keeps the smallest distinct hashes in out[0..*n), ascending, at most m. */
static inline void keep(uint64_t *out, size_t *n, size_t m, uint64_t h)
{
    size_t i = *n;
    if (i == m && h >= out[m - 1]) return;
    while (i > 0 && out[i - 1] > h) i--;
    if (i > 0 && out[i - 1] == h) return; /* already kept */
    if (*n < m) (*n)++;
    memmove(out + i + 1, out + i, (*n - 1 - i) * sizeof *out);
    out[i] = h;
}

size_t tal_sketch(const tal_sketch_opt_t *opt, const char *seq, size_t len, uint64_t *out)
{
    const unsigned char *s = (const unsigned char *)seq;
    size_t n = 0, m = (size_t)opt->m, run = 0;
    int k = opt->k;
    pthread_once(&tables_once, init_tables);
    if (m == 0 || k <= 0) return 0;
    if (opt->nucleotide) {
        uint64_t fwd = 0, rev = 0, mask = k >= 32 ? ~0ull : (1ull << (2 * k)) - 1;
        for (size_t i = 0; i < len; i++) {
            int c = nucleotide_code[s[i]];
            if (c < 0) {
                run = 0;
                continue;
            }
            fwd = ((fwd << 2) | (uint64_t)c) & mask;
            rev = (rev >> 2) | ((uint64_t)(3 - c) << (2 * (k - 1)));
            if (++run >= (size_t)k) keep(out, &n, m, mix(fwd < rev ? fwd : rev));
        }
        return n;
    }
    {
        uint64_t code = 0, top = 1;
        for (int i = 1; i < k; i++) top *= 13; /* weight of the oldest letter */
        for (size_t i = 0; i < len; i++) {
            int c = protein_class[s[i]];
            if (c < 0) {
                run = 0;
                code = 0;
                continue;
            }
            if (run >= (size_t)k) code -= (uint64_t)protein_class[s[i - (size_t)k]] * top;
            code = code * 13 + (uint64_t)c;
            if (++run >= (size_t)k) keep(out, &n, m, mix(code));
        }
    }
    return n;
}
