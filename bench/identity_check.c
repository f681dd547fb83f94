/* identity_check: exact semi-global alignment under talaria's own scoring, written apart
 * from talaria and parasail, for bench/identity.sh.
 *
 *   identity_check MATRIX OPEN EXTEND < pairs
 *
 * MATRIX is a score matrix in NCBI/EMBOSS layout (EMBOSS's EBLOSUM62). Each input line
 * is NAME<TAB>MEMBER<TAB>REFERENCE (residues). The member is aligned end to end, the
 * reference's ends are free, a gap of length L costs OPEN + (L - 1) x EXTEND, the full
 * matrix is filled (no band). Among all alignments of the best score it keeps the lowest
 * and highest identity (identical columns / member length) and coverage (member residues
 * in aligned columns / member length). Output: NAME score id_min id_max cov_min cov_max.
 * A reported identity or coverage outside [min, max] comes from an alignment that is not
 * optimal under that scoring. O(member x reference) time, O(reference) memory. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEG (INT_MIN / 4)

typedef struct {
    int s, imin, imax, cmin, cmax;
} cell_t;

static int score[256][256];

static int load_matrix(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[4096], cols[64];
    int ncols = 0;
    if (!f) return -1;
    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b++) score[a][b] = NEG; /* filled from 'X' below */
    while (fgets(line, sizeof line, f)) {
        char *p = line, *tok;
        if (line[0] == '#' || line[0] == '\n') continue;
        if (!ncols) {
            while ((tok = strtok(p, " \t\r\n")) && ncols < 64) {
                cols[ncols++] = tok[0];
                p = NULL;
            }
            continue;
        }
        tok = strtok(p, " \t\r\n");
        if (!tok) continue;
        unsigned char row = (unsigned char)tok[0];
        for (int c = 0; c < ncols && (tok = strtok(NULL, " \t\r\n")); c++) {
            unsigned char col = (unsigned char)cols[c];
            int v = atoi(tok);
            score[row][col] = score[tolower(row)][col] = score[row][tolower(col)] =
                score[tolower(row)][tolower(col)] = v;
        }
    }
    fclose(f);
    if (!ncols || score['X']['X'] == NEG) return -1;
    for (int a = 0; a < 256; a++) /* anything outside the matrix scores as X */
        for (int b = 0; b < 256; b++)
            if (score[a][b] == NEG) {
                int ra = score[a]['A'] == NEG ? 'X' : a, rb = score['A'][b] == NEG ? 'X' : b;
                score[a][b] = score[ra][rb] == NEG ? score['X']['X'] : score[ra][rb];
            }
    return 0;
}

/* best of two with the identity and coverage ranges of the tied ones */
static cell_t pick(cell_t a, cell_t b)
{
    if (a.s > b.s) return a;
    if (b.s > a.s) return b;
    if (b.imin < a.imin) a.imin = b.imin;
    if (b.imax > a.imax) a.imax = b.imax;
    if (b.cmin < a.cmin) a.cmin = b.cmin;
    if (b.cmax > a.cmax) a.cmax = b.cmax;
    return a;
}

static cell_t step(cell_t a, int d, int di, int dc)
{
    if (a.s <= NEG) return a;
    a.s += d;
    a.imin += di;
    a.imax += di;
    a.cmin += dc;
    a.cmax += dc;
    return a;
}

int main(int argc, char **argv)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    cell_t *H = NULL, *F = NULL, *nH = NULL;
    size_t rows_cap = 0;
    if (argc != 4 || load_matrix(argv[1]) < 0) {
        fprintf(stderr,
                "usage: identity_check MATRIX OPEN EXTEND < NAME<TAB>MEMBER<TAB>REFERENCE lines\n");
        return 2;
    }
    int open = atoi(argv[2]), ext = atoi(argv[3]);
    const cell_t none = {NEG, 0, 0, 0, 0}, zero = {0, 0, 0, 0, 0};
    while ((len = getline(&line, &cap, stdin)) > 0) {
        char *name = strtok(line, "\t\r\n"), *m = strtok(NULL, "\t\r\n"),
             *r = strtok(NULL, "\t\r\n");
        if (!name || !m || !r || !*m) continue;
        size_t ml = strlen(m), rl = strlen(r);
        if (rl + 1 > rows_cap) {
            rows_cap = rl + 1;
            H = realloc(H, rows_cap * sizeof *H);
            nH = realloc(nH, rows_cap * sizeof *nH);
            F = realloc(F, rows_cap * sizeof *F);
            if (!H || !nH || !F) return 1;
        }
        for (size_t j = 0; j <= rl; j++) {
            H[j] = zero; /* the reference's head is free */
            F[j] = none;
        }
        for (size_t i = 1; i <= ml; i++) {
            unsigned char a = (unsigned char)m[i - 1];
            cell_t e = none;
            for (size_t j = 0; j <= rl; j++) {
                /* F: a member residue against a gap; E: a reference residue skipped */
                F[j] = pick(step(H[j], -open, 0, 0), step(F[j], -ext, 0, 0));
                cell_t h = F[j];
                if (j > 0) {
                    unsigned char b = (unsigned char)r[j - 1];
                    e = pick(step(nH[j - 1], -open, 0, 0), step(e, -ext, 0, 0));
                    h = pick(h, e);
                    h = pick(h, step(H[j - 1], score[a][b], toupper(a) == toupper(b), 1));
                }
                nH[j] = h;
            }
            cell_t *t = H;
            H = nH;
            nH = t;
        }
        cell_t best = none;
        for (size_t j = 0; j <= rl; j++) best = pick(best, H[j]); /* the reference's tail is free */
        printf("%s\t%d\t%.6f\t%.6f\t%.6f\t%.6f\n", name, best.s, (double)best.imin / (double)ml,
               (double)best.imax / (double)ml, (double)best.cmin / (double)ml,
               (double)best.cmax / (double)ml);
    }
    free(line);
    free(H);
    free(nH);
    free(F);
    return 0;
}
