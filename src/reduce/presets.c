/* The options of a reduction and the aligner presets: each aligner's thresholds, and how
 * its taxid side file is named and laid out, in one table; and the taxid of a header. */
#include "reduce_internal.h"
#include "talaria/error.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* NCBI's accession2taxid layout, which diamond makedb --taxonmap and lambda3 read */
#define NCBI_HEADER "accession\taccession.version\ttaxid\tgi\n"

/* The largest taxid a header may give (NCBI's are far below): it fits a uint32_t with
 * UINT32_MAX left for "none". */
#define TAXID_MAX 4000000000L

static const struct {
    const char *name;
    double identity, coverage;
    const char *side_suffix; /* BASE + this is the side file; NULL: none */
    const char *side_header; /* its first line */
} presets[] = {
    [TAL_ALIGNER_GENERIC] = {"generic", 0.9, 0.8, NULL, ""},
    [TAL_ALIGNER_DIAMOND] = {"diamond", 0.9, 0.8, ".taxid.tsv", NCBI_HEADER},
    [TAL_ALIGNER_MMSEQS2] = {"mmseqs2", 0.9, 0.8, ".taxid.tsv", "#accession\ttaxid\n"},
    [TAL_ALIGNER_BLAST] = {"blast", 0.9, 0.9, ".taxid.tsv", ""},
    /* lambda3 mkindexp --acc-tax-map takes only files named *.accession2taxid (or *.dat) */
    [TAL_ALIGNER_LAMBDA] = {"lambda", 0.9, 0.8, ".accession2taxid", NCBI_HEADER},
    [TAL_ALIGNER_KRAKEN] = {"kraken", 0.95, 0.9, NULL, ""},
};

#define PRESET_COUNT ((int)(sizeof presets / sizeof *presets))

void tal_reduce_opt_init(tal_reduce_opt_t *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->aligner = TAL_ALIGNER_GENERIC;
    opt->identity = presets[TAL_ALIGNER_GENERIC].identity;
    opt->coverage = presets[TAL_ALIGNER_GENERIC].coverage;
    opt->threads = 1;
}

int tal_reduce_set_aligner(tal_reduce_opt_t *opt, const char *name)
{
    for (int p = 0; p < PRESET_COUNT; p++) {
        if (strcmp(name, presets[p].name)) continue;
        opt->aligner = p;
        opt->identity = presets[p].identity;
        opt->coverage = presets[p].coverage;
        return 0;
    }
    return TAL_EUSAGE;
}

const char *tal_aligner_name(int aligner)
{
    return aligner >= 0 && aligner < PRESET_COUNT ? presets[aligner].name : NULL;
}

const char *tal_aligner_side_suffix(int aligner) { return presets[aligner].side_suffix; }

const char *tal_aligner_side_header(int aligner) { return presets[aligner].side_header; }

void tal_aligner_side_line(int aligner, FILE *f, const char *acc, size_t acc_len, long taxid)
{
    if (aligner == TAL_ALIGNER_DIAMOND || aligner == TAL_ALIGNER_LAMBDA) {
        /* NCBI's accession2taxid: accession without its version, with it, taxid, gi (none) */
        const char *dot = memchr(acc, '.', acc_len);
        fprintf(f, "%.*s\t%.*s\t%ld\t0\n", (int)(dot ? (size_t)(dot - acc) : acc_len), acc,
                (int)acc_len, acc, taxid);
    } else if (aligner == TAL_ALIGNER_BLAST) {
        fprintf(f, "%.*s %ld\n", (int)acc_len, acc, taxid);
    } else {
        fprintf(f, "%.*s\t%ld\n", (int)acc_len, acc, taxid);
    }
}

long tal_header_taxid(const char *h, size_t len)
{
    static const char *tags[] = {"OX=", "TaxID=", "taxid|", "taxid=", "tax_id="};
    for (size_t t = 0; t < sizeof tags / sizeof *tags; t++) {
        size_t tl = strlen(tags[t]);
        for (size_t i = 0; i + tl < len; i++) {
            long v = 0;
            size_t d = i + tl;
            if (memcmp(h + i, tags[t], tl) || (i && isalnum((unsigned char)h[i - 1]))) continue;
            if (!isdigit((unsigned char)h[d])) continue;
            /* digits up to a separator: "OX=96O6" or an endless number is malformed */
            for (; d < len && isdigit((unsigned char)h[d]); d++) {
                v = v * 10 + (h[d] - '0');
                if (v > TAXID_MAX) return TAL_TAXID_MALFORMED;
            }
            if (d < len && (isalnum((unsigned char)h[d]) || h[d] == '.' || h[d] == '_'))
                return TAL_TAXID_MALFORMED;
            return v;
        }
    }
    return TAL_TAXID_NONE;
}
