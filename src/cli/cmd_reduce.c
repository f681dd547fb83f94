/* talaria reduce: flags into a tal_reduce_opt_t, the run through libtalaria (reduce.h),
 * progress on the terminal and the summary on stderr (and as JSON with --summary-json). */
#include "config.h"

#include "cli.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/reduce.h"
#include "talaria/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help[] =
    "Usage: talaria reduce -i FASTA|DB.tal -o REDUCED.fasta [OPTIONS]\n"
    "\n"
    "Pick reference sequences and store every other sequence losslessly as a delta\n"
    "against one of them. A sequence joins a reference only if an alignment shows at\n"
    "least the identity (identical residues / the member's length, as CD-HIT -c) and\n"
    "the coverage (aligned member residues / the member's length). Longest first.\n"
    "\n"
    "Outputs (BASE is REDUCED without .fasta/.fa/.faa/.fna):\n"
    "  REDUCED.fasta         the references, original headers, 60 residues per line\n"
    "  BASE.deltas.tal       the delta store (-m); 'talaria reconstruct' gives back the input\n"
    "  BASE.members.tsv      member, reference, identity, coverage (--membership); for\n"
    "                        nucleotides a fifth column, the strand (+ or -)\n"
    "\n"
    "  -i, --input PATH      FASTA (plain/gz/zst/lz4) or a store built by 'talaria index'\n"
    "  -o, --output PATH     the reduced FASTA\n"
    "  -m, --deltas PATH     the delta store (default BASE.deltas.tal)\n"
    "      --membership PATH the membership TSV (default BASE.members.tsv)\n"
    "      --clstr PATH      also write the clusters in CD-HIT's .clstr format\n"
    "      --summary-json FILE  the end-of-run summary (counts, residues, ratios, identity\n"
    "                        used, time, peak RSS, outputs) as JSON\n"
    "      --identity F      minimum identity, 0 < F <= 1 (default 0.9)\n"
    "      --coverage F      minimum coverage of the member, 0 < F <= 1 (default 0.8)\n"
    "  -r, --ratio R         aim at R x N references instead (0 < R <= 1): the highest\n"
    "                        identity (down to 0.30) that gives at most that many\n"
    "      --strand S        nucleotides: both (default: a member may join a reference's\n"
    "                        reverse complement, and comes back in its own orientation)\n"
    "                        or plus\n"
    "  -a, --aligner NAME    preset for the aligner the output is for: diamond, mmseqs2,\n"
    "                        blast, lambda, kraken or generic (see below)\n"
    "      --allow-duplicates  FASTA input: keep the first record of a repeated accession\n"
    "                        and leave the rest out (counted in a warning)\n"
    "      --same-taxon      a member joins only a reference with the same taxid (OX=,\n"
    "                        TaxID=, taxid tags); records without one join only each other\n"
    "  -t, --threads N       threads (default 1)\n"
    "      --tmp-dir DIR     scratch space: the indexed input, sort runs, candidates,\n"
    "                        -r's evidence\n"
    "                        (default $TMPDIR or /tmp)\n" CLI_MEM_HELP CLI_CONFIG_HELP
    "  -f, --force           replace existing outputs\n"
    "  -q, --quiet           only errors on stderr\n"
    "  -v, --verbose         more detail on stderr\n"
    "  -h, --help            this help\n"
    "\n"
    "Presets (identity / coverage unless given; a side file with every input accession,\n"
    "references and members, and its own taxid from OX=, TaxID= or taxid tags):\n"
    "  diamond  0.90 / 0.80, BASE.taxid.tsv in NCBI's accession2taxid layout, for\n"
    "           'diamond makedb --taxonmap'\n"
    "  mmseqs2  0.90 / 0.80, BASE.taxid.tsv (accession, taxid), for 'mmseqs createtaxdb\n"
    "           ... --tax-mapping-file'\n"
    "  blast    0.90 / 0.90, BASE.taxid.tsv ('accession taxid'), for 'makeblastdb\n"
    "           -taxid_map'\n"
    "  lambda   0.90 / 0.80, BASE.accession2taxid (NCBI's layout; lambda3 takes only\n"
    "           that extension), for 'lambda3 mkindexp --acc-tax-map'\n"
    "  kraken   0.95 / 0.90, headers tagged '|kraken:taxid|N' for kraken2-build\n"
    "  generic  0.90 / 0.80, no side file\n"
    "\n"
    "Under mpirun or srun (talaria built with MPI): one reduction across the ranks, the\n"
    "same outputs, written by rank 0. Give every rank the same store on shared storage;\n"
    "-t, --max-memory and --monitor-memory are per rank (see talaria-reduce(1)).\n"
    "\n"
    "Exit codes: 0 done, 1 runtime or I/O failure, 2 usage, 3 invalid input,\n"
    "4 memory cap too small.\n";

typedef struct {
    cli_progress_t bar;
    int quiet;
    const char *stage; /* the stage last announced */
} display_t;

static void show_progress(void *ctx, const tal_reduce_progress_t *p)
{
    display_t *d = ctx;
    char pass[64] = "";
    if (d->quiet) return;
    if (d->stage != p->stage) {
        d->stage = p->stage;
        tal_log_info("%s (%.1f s)", p->stage, p->seconds);
    }
    if (p->pass) snprintf(pass, sizeof pass, "-r pass %d, identity %.4f: ", p->pass, p->identity);
    if (p->total)
        cli_progress_show(&d->bar, 0, "talaria reduce: %s%s %llu/%llu (%.0f%%), %.1f s", pass,
                          p->stage, (unsigned long long)p->done, (unsigned long long)p->total,
                          100.0 * (double)p->done / (double)p->total, p->seconds);
    else
        cli_progress_show(&d->bar, 0, "talaria reduce: %s%s, %.1f s", pass, p->stage, p->seconds);
}

static double ratio_of(uint64_t num, uint64_t den) { return den ? (double)num / (double)den : 0.0; }

static void print_summary(const tal_reduce_result_t *r)
{
    char a[32], b[32], p[32], minus[64] = "";
    if (r->nucleotide)
        snprintf(minus, sizeof minus, ", %llu on the minus strand", (unsigned long long)r->minus);
    fprintf(stderr,
            "talaria reduce: %llu sequences (%s residues) -> %llu references (%s residues) in %s\n"
            "  members %llu (%llu exact copies%s), identity >= %.4g, coverage >= %.4g\n"
            "  reduction %.3fx sequences, %.3fx residues; %llu alignments (%llu banded), "
            "%llu candidates filtered\n"
            "  %.2f s, peak RSS %s; deltas in %s\n",
            (unsigned long long)r->records, tal_format_size(r->residues, a, sizeof a),
            (unsigned long long)r->references, tal_format_size(r->reference_residues, b, sizeof b),
            r->fasta_path, (unsigned long long)r->members, (unsigned long long)r->duplicates, minus,
            r->identity, r->coverage, ratio_of(r->records, r->references),
            ratio_of(r->residues, r->reference_residues), (unsigned long long)r->alignments,
            (unsigned long long)r->banded, (unsigned long long)r->filtered, r->seconds,
            tal_format_size(r->peak_rss, p, sizeof p), r->deltas_path);
    if (r->passes > 1)
        fprintf(stderr,
                "  search: %d passes, %llu alignments computed in all; the last pass took %llu "
                "verdicts from the earlier ones\n",
                r->passes, (unsigned long long)r->computed, (unsigned long long)r->reused);
}

static void json_path(FILE *f, const char *key, const char *path, int last)
{
    fprintf(f, "    \"%s\": ", key);
    if (path)
        cli_json_string(f, path);
    else
        fputs("null", f);
    fputs(last ? "\n" : ",\n", f);
}

static int write_summary_json(const char *path, const tal_reduce_opt_t *opt,
                              const tal_reduce_result_t *r, int force)
{
    tal_outfile_t of = {0};
    int rc;
    if ((rc = tal_outfile_open(&of, path, force)) < 0) return rc;
    fprintf(of.f,
            "{\n  \"records\": %llu,\n  \"references\": %llu,\n  \"members\": %llu,\n"
            "  \"exact_copies\": %llu,\n  \"minus_strand\": %llu,\n  \"residues\": %llu,\n"
            "  \"reference_residues\": %llu,\n"
            "  \"reduction_ratio_records\": %.6f,\n  \"reduction_ratio_residues\": %.6f,\n"
            "  \"identity\": %.6g,\n  \"coverage\": %.6g,\n",
            (unsigned long long)r->records, (unsigned long long)r->references,
            (unsigned long long)r->members, (unsigned long long)r->duplicates,
            (unsigned long long)r->minus, (unsigned long long)r->residues,
            (unsigned long long)r->reference_residues, ratio_of(r->records, r->references),
            ratio_of(r->residues, r->reference_residues), r->identity, r->coverage);
    if (opt->ratio > 0)
        fprintf(of.f, "  \"ratio\": %.6g,\n", opt->ratio);
    else
        fputs("  \"ratio\": null,\n", of.f);
    fprintf(
        of.f,
        "  \"passes\": %d,\n  \"alphabet\": \"%s\",\n  \"aligner\": \"%s\",\n  \"threads\": %d,\n"
        "  \"alignments\": %llu,\n  \"banded_alignments\": %llu,\n  \"candidates_filtered\": "
        "%llu,\n  \"alignments_computed\": %llu,\n  \"verdicts_reused\": %llu,\n"
        "  \"seconds\": %.3f,\n  \"peak_rss_bytes\": %llu,\n  \"outputs\": {\n",
        r->passes, r->nucleotide ? "nucleotide" : "protein", tal_aligner_name(opt->aligner),
        opt->threads, (unsigned long long)r->alignments, (unsigned long long)r->banded,
        (unsigned long long)r->filtered, (unsigned long long)r->computed,
        (unsigned long long)r->reused, r->seconds, (unsigned long long)r->peak_rss);
    json_path(of.f, "fasta", r->fasta_path, 0);
    json_path(of.f, "deltas", r->deltas_path, 0);
    json_path(of.f, "membership", r->membership_path, 0);
    json_path(of.f, "clstr", r->clstr_path, 0);
    json_path(of.f, "taxid", r->taxid_path, 1);
    fputs("  }\n}\n", of.f);
    rc = tal_outfile_commit(&of, force);
    tal_outfile_abort(&of);
    return rc;
}

static int parse_fraction(const char *name, const char *text, double *v)
{
    char *end;
    double d = strtod(text, &end);
    if (!*text || *end || !(d > 0.0 && d <= 1.0)) {
        cli_usage_error("reduce", "%s must be a number in (0, 1], not '%s'", name, text);
        return -1;
    }
    *v = d;
    return 0;
}

int cmd_reduce(int argc, char **argv)
{
    enum {
        OPT_MEMBERSHIP = 0x100,
        OPT_CLSTR,
        OPT_IDENTITY,
        OPT_COVERAGE,
        OPT_TMP_DIR,
        OPT_STRAND,
        OPT_SUMMARY_JSON,
        OPT_ALLOW_DUPLICATES,
        OPT_SAME_TAXON
    };
    static const struct option longopts[] = {
        {"input", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'},
        {"deltas", required_argument, NULL, 'm'},
        {"membership", required_argument, NULL, OPT_MEMBERSHIP},
        {"clstr", required_argument, NULL, OPT_CLSTR},
        {"summary-json", required_argument, NULL, OPT_SUMMARY_JSON},
        {"identity", required_argument, NULL, OPT_IDENTITY},
        {"coverage", required_argument, NULL, OPT_COVERAGE},
        {"ratio", required_argument, NULL, 'r'},
        {"aligner", required_argument, NULL, 'a'},
        {"strand", required_argument, NULL, OPT_STRAND},
        {"allow-duplicates", no_argument, NULL, OPT_ALLOW_DUPLICATES},
        {"same-taxon", no_argument, NULL, OPT_SAME_TAXON},
        {"threads", required_argument, NULL, 't'},
        {"tmp-dir", required_argument, NULL, OPT_TMP_DIR},
        {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        CLI_MEM_LONGOPTS,
        CLI_CONFIG_LONGOPTS,
        {NULL, 0, NULL, 0}};
    tal_reduce_opt_t opt;
    cli_config_t conf = {0};
    char *provenance = NULL; /* the configuration, for the delta store */
    tal_reduce_result_t result;
    cli_mem_t mem;
    display_t display;
    const char *in = NULL, *out = NULL, *aligner = NULL, *summary_json = NULL, *tmp_dir = NULL;
    const char *identity_text = NULL, *coverage_text = NULL, *strand = NULL;
    double identity = 0, coverage = 0;
    int c, rc, threads = 0, same_taxon = 0, code;
    char mem_name[32] = "reduce";
#ifdef HAVE_MPI
    tal_reduce_comm_t comm;
    char report_path[4096];
    memset(&comm, 0, sizeof comm);
#endif
    tal_reduce_opt_init(&opt);
    memset(&mem, 0, sizeof mem);
    memset(&display, 0, sizeof display);
    memset(&result, 0, sizeof result);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:o:m:r:a:t:j:fqvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 'o': out = optarg; break;
        case 'm': opt.deltas_path = optarg; break;
        case OPT_MEMBERSHIP: opt.membership_path = optarg; break;
        case OPT_CLSTR: opt.clstr_path = optarg; break;
        case OPT_SUMMARY_JSON: summary_json = optarg; break;
        case OPT_IDENTITY:
            identity_text = optarg;
            if (parse_fraction("--identity", optarg, &identity) < 0) return cli_exit(TAL_EUSAGE);
            break;
        case OPT_COVERAGE:
            coverage_text = optarg;
            if (parse_fraction("--coverage", optarg, &coverage) < 0) return cli_exit(TAL_EUSAGE);
            break;
        case 'r':
            if (parse_fraction("-r", optarg, &opt.ratio) < 0) return cli_exit(TAL_EUSAGE);
            break;
        case 'a': aligner = optarg; break;
        case OPT_STRAND: strand = optarg; break;
        case OPT_ALLOW_DUPLICATES: opt.allow_duplicates = 1; break;
        case OPT_SAME_TAXON: same_taxon = 1; break;
        case 't':
        case 'j':
            if (cli_parse_threads("reduce", optarg, &threads) < 0) return cli_exit(TAL_EUSAGE);
            break;
        case OPT_TMP_DIR: tmp_dir = optarg; break;
        case 'f': opt.force = 1; break;
        case 'q':
            display.quiet = 1;
            cli_quieter();
            break;
        case 'v': cli_louder(); break;
        case 'h': fputs(help, stdout); return 0;
        default:
            if ((rc = cli_mem_option("reduce", c, optarg, &mem)) < 0) return cli_exit(TAL_EUSAGE);
            if (rc || cli_config_option(c, optarg, &conf)) break;
            return cli_usage_error("reduce", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("reduce", "unexpected argument '%s'", argv[optind]);
    if (!in) return cli_usage_error("reduce", "missing -i FASTA|DB.tal");
    if (!out) return cli_usage_error("reduce", "missing -o REDUCED.fasta");
    if (opt.ratio > 0 && identity > 0)
        return cli_usage_error("reduce", "-r and --identity exclude each other");
    if (aligner && tal_reduce_set_aligner(&opt, aligner) < 0)
        return cli_usage_error(
            "reduce", "-a must be diamond, mmseqs2, blast, lambda, kraken or generic, not '%s'",
            aligner);
    /* the profile, file and environment, then the flags that are configuration keys on
     * top, so the delta store records them too; then the preset's thresholds, then the
     * thresholds set in any layer */
    if ((rc = cli_config_load(&conf)) < 0) goto out;
    if ((aligner &&
         (rc = tal_config_set(conf.cfg, "reduce.aligner", aligner, TAL_CONFIG_FLAG, "-a")) < 0) ||
        (identity_text && (rc = tal_config_set(conf.cfg, "reduce.identity", identity_text,
                                               TAL_CONFIG_FLAG, "--identity")) < 0) ||
        (coverage_text && (rc = tal_config_set(conf.cfg, "reduce.coverage", coverage_text,
                                               TAL_CONFIG_FLAG, "--coverage")) < 0) ||
        (strand && (rc = tal_config_set(conf.cfg, "reduce.strand", strand, TAL_CONFIG_FLAG,
                                        "--strand")) < 0) ||
        (same_taxon && (rc = tal_config_set(conf.cfg, "reduce.same_taxon", "true", TAL_CONFIG_FLAG,
                                            "--same-taxon")) < 0))
        goto out;
    tal_config_reduce_opt(conf.cfg, &opt);
    cli_config_mem(&conf, &mem);
    if (!(provenance = tal_config_summary(conf.cfg, 1))) {
        rc = TAL_ENOMEM;
        goto out;
    }
    opt.provenance = provenance;
    if (threads) opt.threads = threads;
    if (tmp_dir) opt.tmp_dir = tmp_dir;
    if (summary_json && !opt.force && access(summary_json, F_OK) == 0) {
        tal_log_error("%s already exists; use --force to replace it", summary_json);
        rc = TAL_EEXIST;
        goto out;
    }
#ifdef HAVE_MPI
    /* under mpirun or srun: one reduction across the ranks, rank 0 writing and reporting */
    if ((rc = cli_mpi_begin(&argc, &argv, &comm)) < 0) goto out;
    if (comm.size > 1) {
        opt.comm = &comm;
        if (comm.rank != 0) { /* their warnings are rank 0's too; their errors their own */
            display.quiet = 1;
            summary_json = NULL;
            cli_quieter();
        }
        /* --monitor-memory names the rank; --memory-report FILE is rank 0's, FILE.rankN
         * the others' */
        snprintf(mem_name, sizeof mem_name, "reduce[rank %d]", comm.rank);
        if (mem.report && comm.rank != 0) {
            snprintf(report_path, sizeof report_path, "%s.rank%d", mem.report, comm.rank);
            mem.report = report_path;
        }
    }
#endif
    if ((rc = cli_mem_begin(mem_name, &mem)) < 0) goto out;
    cli_progress_init(&display.bar, display.quiet);
    opt.budget = mem.budget;
    opt.low_memory = mem.low_memory;
    opt.progress = show_progress;
    opt.ctx = &display;
    rc = tal_reduce_run(in, out, &opt, &result);
    cli_progress_end(&display.bar);
    if (rc == 0 && !display.quiet) print_summary(&result);
    if (rc == 0 && summary_json) rc = write_summary_json(summary_json, &opt, &result, opt.force);
    if (cli_mem_end(&mem) < 0 && rc == 0) rc = TAL_EIO;
    tal_reduce_result_free(&result);
out:
    free(provenance);
    cli_config_end(&conf);
    code = rc < 0 ? cli_exit(rc) : 0;
#ifdef HAVE_MPI
    code = cli_mpi_end(&comm, code, display.quiet);
#endif
    return code;
}
