/* talaria index: FASTA -> store. */
#include "cli.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/store.h"
#include "talaria/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help[] =
    "Usage: talaria index -i FASTA -o DB.tal [OPTIONS]\n"
    "\n"
    "Build a memory-mapped store from FASTA. The input may be plain, gzip, zstd or lz4\n"
    "(recognised by its magic bytes) or '-' for stdin. The store is built beside the\n"
    "output path and renamed into place only when complete.\n"
    "\n"
    "  -i, --input FASTA        input file, or - for stdin\n"
    "  -o, --output DB.tal      store directory to create\n"
    "  -t, --threads N          1: everything in one thread; 2 or more (default 2): a\n"
    "                           read-ahead thread and a catalog thread besides the parser,\n"
    "                           and N threads compressing chunks\n"
    "  -j N                     same as --threads\n"
    "      --compress CODEC     none (default: raw residues, read in place), lz4 or zstd:\n"
    "                           residues in chunks compressed one by one\n"
    "      --level N            compression level (lz4 1-12, default 1, 3+ is HC; zstd\n"
    "                           1-22, default 9); headers at 9 or more\n"
    "      --chunk-size SIZE    raw residues per chunk (default 4M, 64K to 1G); a longer\n"
    "                           sequence gets a chunk of its own\n"
    "      --allow-duplicates   keep the first record of a repeated accession, skip the rest\n"
    "      --catalog-index      also index catalog.sqlite by accession for SQL queries\n"
    "                           (with --compress: also keep its per-record rows)\n"
    "                           (talaria's own lookups use the store's key table)\n" CLI_MEM_HELP
        CLI_CONFIG_HELP "  -f, --force              replace an existing store at the output path\n"
    "  -q, --quiet              only errors on stderr\n"
    "  -v, --verbose            timings of the build's phases\n"
    "  -h, --help               this help\n"
    "\n"
    "Exit codes: 0 ok, 1 I/O error or the output exists, 2 usage, 3 invalid input (the\n"
    "message names file and line).\n";

static void show_indexing(void *ctx, uint64_t records, uint64_t residues, double seconds, int final)
{
    char size[32];
    cli_progress_show(ctx, final, "indexing: %llu records, %s of residues, %.1f s",
                      (unsigned long long)records, tal_format_size(residues, size, sizeof size),
                      seconds);
}

int cmd_index(int argc, char **argv)
{
    static const struct option longopts[] = {{"input", required_argument, NULL, 'i'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"allow-duplicates", no_argument, NULL, 'D'},
                                             {"catalog-index", no_argument, NULL, 'N'},
                                             {"force", no_argument, NULL, 'f'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"compress", required_argument, NULL, 'C'},
                                             {"level", required_argument, NULL, 'L'},
                                             {"chunk-size", required_argument, NULL, 'S'},
                                             CLI_MEM_LONGOPTS,
                                             CLI_CONFIG_LONGOPTS,
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *level_arg = NULL;
    const char *in = NULL, *out = NULL;
    tal_index_opt_t opt;
    tal_build_stats_t st;
    cli_mem_t mem;
    cli_progress_t bar;
    cli_config_t conf = {0};
    char provenance[4096]; /* the configuration, for the catalog */
    int c, rc, quiet = 0, threads = 0, compress = -1;
    uint64_t chunk_size = 0;
    memset(&mem, 0, sizeof mem);
    tal_index_opt_init(&opt);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:o:t:j:fqvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 'o': out = optarg; break;
        case 't':
        case 'j':
            if (cli_parse_threads("index", optarg, &threads) < 0) return cli_exit(TAL_EUSAGE);
            break;
        case 'C':
            if (!strcmp(optarg, "none"))
                compress = TAL_COMPRESS_NONE;
            else if (!strcmp(optarg, "lz4"))
                compress = TAL_COMPRESS_LZ4;
            else if (!strcmp(optarg, "zstd"))
                compress = TAL_COMPRESS_ZSTD;
            else
                return cli_usage_error("index", "--compress must be none, lz4 or zstd, not '%s'",
                                       optarg);
            break;
        case 'L': level_arg = optarg; break;
        case 'S': {
            uint64_t size;
            if (tal_parse_size(optarg, &size) < 0 || size < (64u << 10) || size > (1u << 30))
                return cli_usage_error(
                    "index", "--chunk-size must be a size from 64K to 1G, not '%s'", optarg);
            chunk_size = size;
            break;
        }
        case 'D': opt.allow_duplicates = 1; break;
        case 'N': opt.catalog_index = 1; break;
        case 'f': opt.force = 1; break;
        case 'q':
            quiet = 1;
            cli_quieter();
            break;
        case 'v': cli_louder(); break;
        case 'h': fputs(help, stdout); return 0;
        default:
            if ((rc = cli_mem_option("index", c, optarg, &mem)) < 0) return cli_exit(TAL_EUSAGE);
            if (rc || cli_config_option(c, optarg, &conf)) break;
            return cli_usage_error("index", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("index", "unexpected argument '%s'", argv[optind]);
    if (!in) return cli_usage_error("index", "missing -i FASTA");
    if (!out) return cli_usage_error("index", "missing -o DB.tal");
    /* the profile, file and environment under the flags */
    if ((rc = cli_config_load(&conf)) < 0) {
        cli_config_end(&conf);
        return cli_exit(rc);
    }
    tal_config_index_opt(conf.cfg, &opt);
    cli_config_mem(&conf, &mem);
    {
        char *summary = tal_config_summary(conf.cfg, 1);
        snprintf(provenance, sizeof provenance, "%s", summary ? summary : "");
        free(summary);
    }
    cli_config_end(&conf);
    opt.provenance = provenance;
    if (threads) opt.threads = threads;
    if (compress >= 0) {
        opt.compress = compress;
        if (!level_arg) opt.level = 0; /* a level chosen for another codec does not carry */
    }
    if (chunk_size) opt.chunk_size = chunk_size;
    if (opt.level && !level_arg) {
        int hi = opt.compress == TAL_COMPRESS_ZSTD ? 22 : 12;
        if (opt.compress == TAL_COMPRESS_NONE)
            opt.level = 0; /* store.level without a codec */
        else if (opt.level > hi)
            return cli_usage_error("index", "store.level for %s must be 1 to %d, not %d",
                                   opt.compress == TAL_COMPRESS_ZSTD ? "zstd" : "lz4", hi,
                                   opt.level);
    }
    if (level_arg) {
        int lo = 1, hi = opt.compress == TAL_COMPRESS_ZSTD ? 22 : 12;
        char *end;
        long level = strtol(level_arg, &end, 10);
        if (opt.compress == TAL_COMPRESS_NONE)
            return cli_usage_error("index", "--level needs --compress lz4 or zstd");
        if (!*level_arg || *end || level < lo || level > hi)
            return cli_usage_error("index", "--level for %s must be %d to %d, not '%s'",
                                   opt.compress == TAL_COMPRESS_ZSTD ? "zstd" : "lz4", lo, hi,
                                   level_arg);
        opt.level = (int)level;
    }
    cli_progress_init(&bar, quiet);
    opt.progress = show_indexing;
    opt.progress_ctx = &bar;
    if (mem.stream) tal_log_info("--stream: index always streams its input");
    if ((rc = cli_mem_begin("index", &mem)) < 0) return cli_exit(rc);
    opt.budget = mem.budget;
    opt.low_memory = mem.low_memory;
    {
        /* planning: the buffers and the accession table, beside what is held already */
        uint64_t need = tal_budget_used(mem.budget, TAL_MEM_COMPONENTS) + tal_index_plan(in, &opt);
        if (mem.cap && need > mem.cap)
            rc = cli_mem_too_small("index", &mem, need + need / 16,
                                   "buffers and the accession table");
        else
            rc = tal_store_build(in, out, &opt, &st);
    }
    if (rc == TAL_EMEMCAP && tal_budget_refused(mem.budget) > mem.cap && mem.cap)
        cli_mem_too_small("index", &mem,
                          tal_budget_refused(mem.budget) + tal_budget_refused(mem.budget) / 16,
                          "a reservation was refused");
    cli_progress_end(&bar);
    if (cli_mem_end(&mem) < 0 && rc == 0) rc = TAL_EIO;
    if (rc < 0) {
        if (rc == TAL_ENOMEM) tal_log_error("out of memory while indexing %s", in);
        return cli_exit(rc);
    }
    if (!quiet) {
        char size[32];
        fprintf(stderr, "talaria: indexed %llu records, %s of residues into %s in %.2f s",
                (unsigned long long)st.records, tal_format_size(st.residues, size, sizeof size),
                out, st.seconds);
        if (st.duplicates_skipped)
            fprintf(stderr, " (%llu duplicate accessions skipped)",
                    (unsigned long long)st.duplicates_skipped);
        fprintf(stderr, "; peak RSS %s\n",
                tal_format_size(tal_peak_rss_bytes(), size, sizeof size));
    }
    return 0;
}
