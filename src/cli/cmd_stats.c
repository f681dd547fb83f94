/* talaria stats: summary of a FASTA file or a store. On a store it reads only the
 * lengths array and the meta section. */
#include "cli.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/mem.h"
#include "talaria/scan.h"
#include "talaria/seqstats.h"
#include "talaria/store.h"
#include "talaria/util.h"

#include <getopt.h>
#include <numaif.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
    "Usage: talaria stats [-i] FASTA|DB.tal [--format text|json|tsv]\n"
    "\n"
    "Count records and residues; min, max, mean and median length; N50; alphabet\n"
    "(protein or nucleotide) and residue composition. On a store only the lengths\n"
    "array is read, so it takes milliseconds; the store's codec, chunk count and\n"
    "compression ratio are shown, and for a compressed store whether its chunk buffers\n"
    "got huge pages and a NUMA binding, as the kernel reports them.\n"
    "\n"
    "  -i, --input PATH     FASTA file (plain, gzip, zstd, lz4, '-' for stdin) or store\n"
    "      --full           on a store: read every residue (a streaming scan that\n"
    "                       decompresses every chunk) and check the composition and the\n"
    "                       totals against the store's meta section\n"
    "      --format FMT     text (default), json or tsv\n"
    "  -t, --threads N      1 reads FASTA in this thread; 2 or more add a read-ahead\n"
    "                       (decompression) thread (default 2); -j N is the same\n"
    "      --profile NAME, --config FILE  settings (threads, memory.huge_pages,\n"
    "                       memory.numa) from a profile or a TOML file; see talaria.toml(5)\n"
    "  -q, --quiet          only errors on stderr\n"
    "  -h, --help           this help\n";

typedef enum { FMT_TEXT, FMT_JSON, FMT_TSV } out_format_t;

/* What a store adds to the statistics. */
typedef struct {
    int is_store;
    const char *codec;
    uint64_t chunks, chunk_size, stored_bytes;
    double ratio;
    char huge_pages[96], numa[96];
    double scan_seconds; /* --full: the scan's wall time */
    int full;
} store_extra_t;

static void print_extra(const store_extra_t *x, out_format_t fmt)
{
    if (!x->is_store) {
        if (fmt == FMT_JSON) printf("}\n");
        return;
    }
    switch (fmt) {
    case FMT_TEXT:
        printf("codec\t%s\nchunks\t%llu\nchunk_size\t%llu\nstored_residue_bytes\t%llu\n"
               "compression_ratio\t%.3f\nhuge_pages\t%s\nnuma\t%s\n",
               x->codec, (unsigned long long)x->chunks, (unsigned long long)x->chunk_size,
               (unsigned long long)x->stored_bytes, x->ratio, x->huge_pages, x->numa);
        if (x->full) printf("scan_seconds\t%.3f\n", x->scan_seconds);
        break;
    case FMT_JSON:
        printf(
            ",\"codec\":\"%s\",\"chunks\":%llu,\"chunk_size\":%llu,\"stored_residue_bytes\":%llu,"
            "\"compression_ratio\":%.3f,\"huge_pages\":",
            x->codec, (unsigned long long)x->chunks, (unsigned long long)x->chunk_size,
            (unsigned long long)x->stored_bytes, x->ratio);
        cli_json_string(stdout, x->huge_pages);
        printf(",\"numa\":");
        cli_json_string(stdout, x->numa);
        if (x->full) printf(",\"scan_seconds\":%.3f", x->scan_seconds);
        printf("}\n");
        break;
    case FMT_TSV: break; /* in the same row, by print_stats */
    }
}

static void print_stats(const char *path, const char *kind, const tal_seqstats_t *st,
                        out_format_t fmt, const store_extra_t *x)
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
            printf("%s%c:%llu(%.2f%%)", first ? "" : " ", c, (unsigned long long)st->composition[c],
                   100.0 * (double)st->composition[c] / (double)st->residues);
            first = 0;
        }
        putchar('\n');
        break;
    case FMT_JSON:
        printf("{\"file\":");
        cli_json_string(stdout, path);
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
        printf("}"); /* the object is closed by print_extra */
        break;
    case FMT_TSV:
        printf("file\tkind\trecords\tresidues\tmin_length\tmax_length\tmean_length\tmedian_length"
               "\tn50\talphabet\tcomposition%s%s\n",
               x->is_store ? "\tcodec\tchunks\tchunk_size\tstored_residue_bytes\tcompression_ratio"
                             "\thuge_pages\tnuma"
                           : "",
               x->is_store && x->full ? "\tscan_seconds" : "");
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
        if (x->is_store) {
            printf("\t%s\t%llu\t%llu\t%llu\t%.3f\t%s\t%s", x->codec, (unsigned long long)x->chunks,
                   (unsigned long long)x->chunk_size, (unsigned long long)x->stored_bytes, x->ratio,
                   x->huge_pages, x->numa);
            if (x->full) printf("\t%.3f", x->scan_seconds);
        }
        putchar('\n');
        break;
    }
}

/* Reads what the kernel did with a chunk buffer into words for the report. */
static void describe_buffer(const tal_mem_report_t *r, store_extra_t *x)
{
    char a[32];
    if (r->hugetlb_bytes)
        snprintf(x->huge_pages, sizeof x->huge_pages, "hugetlbfs (%s)",
                 tal_format_size(r->hugetlb_bytes, a, sizeof a));
    else if (r->anon_huge_bytes)
        snprintf(x->huge_pages, sizeof x->huge_pages, "transparent (AnonHugePages %s)",
                 tal_format_size(r->anon_huge_bytes, a, sizeof a));
    else
        snprintf(x->huge_pages, sizeof x->huge_pages, "none (4 KiB pages)");
    if (r->policy == MPOL_BIND && r->bound_node >= 0)
        snprintf(x->numa, sizeof x->numa, "bound to node %d", r->bound_node);
    else if (tal_numa_nodes() <= 1)
        snprintf(x->numa, sizeof x->numa, "single node (first touch)");
    else
        snprintf(x->numa, sizeof x->numa, "not bound");
}

/* --full: every residue through the streaming scan; the composition and totals must
 * agree with the meta section. */
static int full_scan(tal_store_t *s, const char *path, int threads, const tal_store_info_t *info,
                     store_extra_t *x)
{
    tal_scan_opt_t so;
    tal_scan_t *scan;
    tal_scan_block_t block;
    uint64_t counts[256], residues = 0, records = 0;
    tal_mem_report_t report;
    int rc, reported = 0;
    double t0 = tal_now_seconds();
    memset(counts, 0, sizeof counts);
    tal_scan_opt_init(&so);
    so.threads = threads;
    if ((rc = tal_scan_open(&scan, s, &so)) < 0) return rc;
    while ((rc = tal_scan_next(scan, &block)) > 0) {
        tal_count_bytes(counts, block.residues, block.len);
        residues += block.len;
        records += block.record_count;
        if (!reported && info->chunk_count &&
            tal_mem_inspect(block.residues, block.len, &report) == 0) {
            describe_buffer(&report, x);
            reported = 1;
        }
        tal_scan_release(scan, &block);
    }
    tal_scan_close(scan);
    if (rc < 0) return rc;
    x->scan_seconds = tal_now_seconds() - t0;
    if (records != info->records || residues != info->residues ||
        memcmp(counts, info->composition, sizeof counts)) {
        tal_log_error("%s: the residues disagree with the meta section's counts; the store is "
                      "damaged",
                      path);
        return TAL_EINPUT;
    }
    return 0;
}

static int store_stats(const char *path, int full, int threads, tal_seqstats_t *st,
                       store_extra_t *x)
{
    tal_store_t *s;
    tal_store_info_t info;
    const uint64_t *lengths;
    tal_mem_report_t report;
    int rc = tal_store_open(&s, path);
    if (rc < 0) return rc;
    tal_store_info(s, &info);
    x->is_store = 1;
    x->full = full;
    x->codec = info.codec;
    x->chunks = info.chunk_count;
    x->chunk_size = info.chunk_size;
    x->stored_bytes = info.stored_residue_bytes;
    x->ratio =
        info.stored_residue_bytes ? (double)info.residues / (double)info.stored_residue_bytes : 1.0;
    snprintf(x->huge_pages, sizeof x->huge_pages, "n/a (raw residues are read in place)");
    snprintf(x->numa, sizeof x->numa, "n/a (raw residues are read in place)");
    if ((rc = tal_store_lengths(s, &lengths)) == 0)
        rc = tal_seqstats_from_lengths(lengths, info.records, st);
    if (rc == 0) {
        memcpy(st->composition, info.composition, sizeof st->composition);
        st->alphabet = info.alphabet;
    }
    /* TAL_EINPUT: the lengths add up to more than a 64-bit count */
    if (rc == TAL_EINPUT ||
        (rc == 0 && (st->residues != info.residues || st->min_length != info.min_length ||
                     st->max_length != info.max_length))) {
        tal_log_error("%s: the lengths section disagrees with the meta section; the store is "
                      "damaged",
                      path);
        rc = TAL_EINPUT;
    }
    /* a compressed store: decode its first chunk into a buffer and ask the kernel */
    if (rc == 0 && !full && info.chunk_count) {
        rc = tal_store_buffer_report(s, &report);
        if (rc == 0) describe_buffer(&report, x);
        if (rc == TAL_EIO || rc == TAL_ENOTFOUND) rc = 0; /* smaps unreadable: say nothing */
    }
    if (rc == 0 && full) rc = full_scan(s, path, threads, &info, x);
    tal_store_close(s);
    return rc;
}

int cmd_stats(int argc, char **argv)
{
    static const struct option longopts[] = {{"input", required_argument, NULL, 'i'},
                                             {"format", required_argument, NULL, 'F'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"full", no_argument, NULL, 'U'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_CONFIG_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    cli_config_t conf = {0};
    const char *in = NULL, *kind;
    out_format_t fmt = FMT_TEXT;
    tal_seqstats_t st;
    store_extra_t extra;
    struct stat sb;
    int c, rc, threads = 0, full = 0;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:t:j:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 'F':
            if (!strcmp(optarg, "text"))
                fmt = FMT_TEXT;
            else if (!strcmp(optarg, "json"))
                fmt = FMT_JSON;
            else if (!strcmp(optarg, "tsv"))
                fmt = FMT_TSV;
            else
                return cli_usage_error("stats", "--format must be text, json or tsv, not '%s'",
                                       optarg);
            break;
        case 't':
        case 'j':
            if (cli_parse_threads("stats", optarg, &threads) < 0) return cli_exit(TAL_EUSAGE);
            break;
        case 'U': full = 1; break;
        case 'q': cli_quieter(); break;
        case 'h': fputs(help, stdout); return 0;
        default:
            if (cli_config_option(c, optarg, &conf)) break;
            return cli_usage_error("stats", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (!in && optind < argc) in = argv[optind++];
    if (optind < argc) return cli_usage_error("stats", "unexpected argument '%s'", argv[optind]);
    if (!in) return cli_usage_error("stats", "missing -i FASTA|DB.tal");
    /* -t, else the configuration's threads, else 2 */
    rc = cli_config_load(&conf);
    if (rc == 0 && !threads)
        threads =
            tal_config_is_set(conf.cfg, "threads") ? (int)tal_config_int(conf.cfg, "threads") : 2;
    cli_config_end(&conf);
    if (rc < 0) return cli_exit(rc);
    memset(&st, 0, sizeof st);
    memset(&extra, 0, sizeof extra);
    if (strcmp(in, "-") && stat(in, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        kind = "store";
        rc = store_stats(in, full, threads, &st, &extra);
    } else {
        kind = "fasta";
        rc = tal_seqstats_fasta(in, threads > 1, &st);
    }
    if (rc < 0) return cli_exit(rc);
    print_stats(in, kind, &st, fmt, &extra);
    print_extra(&extra, fmt);
    return 0;
}
