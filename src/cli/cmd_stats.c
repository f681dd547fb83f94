/* talaria stats: summary of a FASTA file or a store. On a store it reads only the
 * lengths array and the meta section. */
#include "cli.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/seqstats.h"
#include "talaria/store.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
    "Usage: talaria stats [-i] FASTA|DB.tal [--format text|json|tsv]\n"
    "\n"
    "Count records and residues; min, max, mean and median length; N50; alphabet\n"
    "(protein or nucleotide) and residue composition. On a store only the lengths\n"
    "array is read, so it takes milliseconds.\n"
    "\n"
    "  -i, --input PATH     FASTA file (plain, gzip, zstd, lz4, '-' for stdin) or store\n"
    "      --format FMT     text (default), json or tsv\n"
    "  -t, --threads N      1 reads FASTA in this thread; 2 or more add a read-ahead\n"
    "                       (decompression) thread (default 2); -j N is the same\n"
    "  -q, --quiet          only errors on stderr\n"
    "  -h, --help           this help\n";

typedef enum { FMT_TEXT, FMT_JSON, FMT_TSV } out_format_t;

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_stats(const char *path, const char *kind, const tal_seqstats_t *st,
                        out_format_t fmt)
{
    int first = 1;
    switch (fmt) {
    case FMT_TEXT:
        printf("file\t%s\nkind\t%s\nrecords\t%llu\nresidues\t%llu\n", path, kind,
               (unsigned long long)st->records, (unsigned long long)st->residues);
        printf("min_length\t%llu\nmax_length\t%llu\nmean_length\t%.2f\nmedian_length\t%.1f\n"
               "n50\t%llu\nalphabet\t%s\ncomposition\t",
               (unsigned long long)st->min_length, (unsigned long long)st->max_length,
               st->mean_length, st->median_length, (unsigned long long)st->n50,
               tal_alphabet_name(st->alphabet));
        for (int c = 0; c < 256; c++) {
            if (!st->composition[c]) continue;
            printf("%s%c:%llu(%.2f%%)", first ? "" : " ", c,
                   (unsigned long long)st->composition[c],
                   100.0 * (double)st->composition[c] / (double)st->residues);
            first = 0;
        }
        putchar('\n');
        break;
    case FMT_JSON:
        printf("{\"file\":");
        json_string(path);
        printf(",\"kind\":\"%s\",\"records\":%llu,\"residues\":%llu,\"min_length\":%llu,"
               "\"max_length\":%llu,\"mean_length\":%.2f,\"median_length\":%.1f,\"n50\":%llu,"
               "\"alphabet\":\"%s\",\"composition\":{",
               kind, (unsigned long long)st->records, (unsigned long long)st->residues,
               (unsigned long long)st->min_length, (unsigned long long)st->max_length,
               st->mean_length, st->median_length, (unsigned long long)st->n50,
               tal_alphabet_name(st->alphabet));
        for (int c = 0; c < 256; c++) {
            if (!st->composition[c]) continue;
            printf("%s\"%c\":%llu", first ? "" : ",", c, (unsigned long long)st->composition[c]);
            first = 0;
        }
        printf("}}\n");
        break;
    case FMT_TSV:
        printf("file\tkind\trecords\tresidues\tmin_length\tmax_length\tmean_length\tmedian_length"
               "\tn50\talphabet\tcomposition\n");
        printf("%s\t%s\t%llu\t%llu\t%llu\t%llu\t%.2f\t%.1f\t%llu\t%s\t", path, kind,
               (unsigned long long)st->records, (unsigned long long)st->residues,
               (unsigned long long)st->min_length, (unsigned long long)st->max_length,
               st->mean_length, st->median_length, (unsigned long long)st->n50,
               tal_alphabet_name(st->alphabet));
        for (int c = 0; c < 256; c++) {
            if (!st->composition[c]) continue;
            printf("%s%c:%llu", first ? "" : ",", c, (unsigned long long)st->composition[c]);
            first = 0;
        }
        putchar('\n');
        break;
    }
}

static int store_stats(const char *path, tal_seqstats_t *st)
{
    tal_store_t *s;
    tal_store_info_t info;
    const uint64_t *lengths;
    int rc = tal_store_open(&s, path);
    if (rc < 0) return rc;
    tal_store_info(s, &info);
    if ((rc = tal_store_lengths(s, &lengths)) == 0)
        rc = tal_seqstats_from_lengths(lengths, info.records, st);
    if (rc == 0) {
        memcpy(st->composition, info.composition, sizeof st->composition);
        st->alphabet = info.alphabet;
        if (st->residues != info.residues || st->min_length != info.min_length ||
            st->max_length != info.max_length) {
            tal_log_error("%s: the lengths section disagrees with the meta section; the store is "
                          "damaged",
                          path);
            rc = TAL_EINPUT;
        }
    }
    tal_store_close(s);
    return rc;
}

int cmd_stats(int argc, char **argv)
{
    static const struct option longopts[] = {{"input", required_argument, NULL, 'i'},
                                             {"format", required_argument, NULL, 'F'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *in = NULL, *kind;
    out_format_t fmt = FMT_TEXT;
    tal_seqstats_t st;
    struct stat sb;
    int c, rc, threads = 2;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:t:j:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 'F':
            if (!strcmp(optarg, "text")) fmt = FMT_TEXT;
            else if (!strcmp(optarg, "json")) fmt = FMT_JSON;
            else if (!strcmp(optarg, "tsv")) fmt = FMT_TSV;
            else return cli_usage_error("stats", "--format must be text, json or tsv, not '%s'", optarg);
            break;
        case 't':
        case 'j':
            if (cli_parse_threads("stats", optarg, &threads) < 0) return 2;
            break;
        case 'q': cli_quieter(); break;
        case 'h': fputs(help, stdout); return 0;
        default: return cli_usage_error("stats", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (!in && optind < argc) in = argv[optind++];
    if (optind < argc) return cli_usage_error("stats", "unexpected argument '%s'", argv[optind]);
    if (!in) return cli_usage_error("stats", "missing -i FASTA|DB.tal");
    memset(&st, 0, sizeof st);
    if (strcmp(in, "-") && stat(in, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        kind = "store";
        rc = store_stats(in, &st);
    } else {
        kind = "fasta";
        rc = tal_seqstats_fasta(in, threads > 1, &st);
    }
    if (rc < 0) return tal_exit_code(rc);
    print_stats(in, kind, &st, fmt);
    return 0;
}
