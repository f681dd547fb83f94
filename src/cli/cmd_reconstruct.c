/* talaria reconstruct: the original records of a reduction, byte for byte, from the
 * reduced FASTA and the delta store. */
#define _GNU_SOURCE
#include "cli.h"
#include "talaria/deltas.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help[] =
    "Usage: talaria reconstruct -r REDUCED.fasta -d DELTAS.tal [-o FULL.fasta] [OPTIONS]\n"
    "\n"
    "Rebuild the original records of a reduction, headers and residues byte for byte, in\n"
    "the original order (or the order of --ids). Every record is checked against the\n"
    "checksum it had before the reduction: a reduced FASTA that does not belong to the\n"
    "delta store is exit 3, naming the first record that fails.\n"
    "\n"
    "  -r, --references PATH the reduced FASTA (default: the one beside DELTAS.tal)\n"
    "  -d, --deltas PATH     the delta store written by 'talaria reduce'\n"
    "  -o, --output PATH     write here (default stdout); written whole or not at all\n"
    "      --ids FILE        only these accessions, one per line ('-' for stdin)\n"
    "  -w, --width N         residues per line; 0: one line per record (default: the lines\n"
    "                        of the input, so the whole input comes back byte for byte;\n"
    "                        one line per record for delta stores older than talaria 0.3)\n"
    "  -f, --force           replace an existing --output\n"
    "  -q, --quiet           only errors on stderr\n"
    "  -h, --help            this help\n";

/* --ids: the records asked for, in the order asked. */
typedef struct {
    tal_dstore_t *d;
    const char *deltas; /* as the user named it */
    const char *list;   /* the --ids file, "-" for stdin */
    FILE *f;
    size_t width;
    uint64_t missing, written;
} ids_ctx_t;

static int emit_id(void *arg, const char *id, size_t len, uint64_t line)
{
    ids_ctx_t *c = arg;
    uint64_t i;
    if (tal_dstore_find(c->d, id, len, &i) < 0) {
        if (c->missing++ < 10)
            tal_log_error("%s: line %llu: %s is not in %s",
                          strcmp(c->list, "-") ? c->list : "<stdin>", (unsigned long long)line, id,
                          c->deltas);
        return 0;
    }
    c->written++;
    return tal_dstore_write_fasta(c->d, i, 1, c->width, c->f);
}

int cmd_reconstruct(int argc, char **argv)
{
    static const struct option longopts[] = {{"references", required_argument, NULL, 'r'},
                                             {"deltas", required_argument, NULL, 'd'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"ids", required_argument, NULL, 'I'},
                                             {"width", required_argument, NULL, 'w'},
                                             {"force", no_argument, NULL, 'f'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *refs = NULL, *deltas = NULL, *out = NULL, *ids = NULL;
    size_t width = TAL_WIDTH_LAYOUT;
    int force = 0, opt, rc = 0;
    FILE *f = stdout;
    tal_outfile_t of = {0};
    tal_dstore_t *d = NULL;
    uint64_t missing = 0, written = 0;
    unsigned long errors;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "r:d:o:w:fqh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r': refs = optarg; break;
        case 'd': deltas = optarg; break;
        case 'o': out = optarg; break;
        case 'I': ids = optarg; break;
        case 'w': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 0 || v > 1000000)
                return cli_usage_error("reconstruct", "--width must be 0 to 1000000, not '%s'",
                                       optarg);
            width = (size_t)v;
            break;
        }
        case 'f': force = 1; break;
        case 'q': cli_quieter(); break;
        case 'h': fputs(help, stdout); return 0;
        default:
            return cli_usage_error("reconstruct", "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("reconstruct", "unexpected argument '%s'", argv[optind]);
    if (!deltas) return cli_usage_error("reconstruct", "missing -d DELTAS.tal");
    if (out && !force && access(out, F_OK) == 0) { /* before the work, not after */
        tal_log_error("%s already exists; use --force to replace it", out);
        return cli_exit(TAL_EEXIST);
    }
    if ((rc = tal_dstore_open(&d, deltas, refs, 0)) < 0) return cli_exit(rc);
    if (out) {
        if ((rc = tal_outfile_open(&of, out, force)) < 0) goto done;
        f = of.f;
    } else {
        setvbuf(f, NULL, _IOFBF, 1u << 20);
    }
    errors = tal_log_error_count();
    if (width == TAL_WIDTH_LAYOUT && !tal_dstore_has_layout(d))
        tal_log_warn("%s keeps no line layout (written before talaria 0.3, or its input lost "
                     "records): one line per sequence",
                     deltas);
    if (!ids) {
        tal_dinfo_t info;
        tal_dstore_info(d, &info);
        rc = tal_dstore_write_fasta(d, 0, info.records, width, f);
        written = info.records;
    } else {
        static const cli_ids_opt_t ids_opt = {"%s: cannot open: %s", 1, 1};
        ids_ctx_t c = {d, deltas, ids, f, width, 0, 0};
        rc = cli_read_ids(ids, &ids_opt, emit_id, &c);
        missing = c.missing;
        written = c.written;
    }
    if (rc == TAL_EIO && tal_log_error_count() == errors) /* the writes: the library has no name */
        tal_log_error("cannot write %s: %s", out ? out : "to stdout", strerror(errno));
    if (rc == 0 && out) {
        rc = tal_outfile_commit(&of, force);
    } else if (rc == 0 && (fflush(f) != 0 || ferror(f))) {
        tal_log_error("cannot write to stdout: %s", strerror(errno));
        rc = TAL_EIO;
    }
    if (rc == 0 && missing) {
        tal_log_error("%llu accession(s) not found", (unsigned long long)missing);
        rc = TAL_ENOTFOUND;
    }
    if (rc == 0) tal_log_info("%llu records rebuilt", (unsigned long long)written);
done:
    tal_outfile_abort(&of); /* nothing left to do after a commit */
    tal_dstore_close(d);
    return rc < 0 ? cli_exit(rc) : 0;
}
