/* talaria expand: search hits on the references of a reduction turned into hits on
 * every member too, streaming line by line (the expander is libtalaria's, talaria/expand.h). */
#define _GNU_SOURCE
#include "cli.h"
#include "talaria/deltas.h"
#include "talaria/error.h"
#include "talaria/expand.h"
#include "talaria/log.h"
#include "talaria/util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help[] =
    "Usage: talaria expand -d DELTAS.tal [-r REDUCED.fasta] [-o OUT] [HITS.m8]\n"
    "\n"
    "Read tabular search hits (BLAST or DIAMOND -outfmt 6: query, subject, ...) against a\n"
    "reduced database and write each hit line unchanged, followed, when its subject is a\n"
    "reference, by one copy per member of that reference with the subject (column 2)\n"
    "replaced by the member's accession, and any title column after it (stitle,\n"
    "salltitles, theader: the reference's whole header or its description) replaced by\n"
    "the member's own. Subjects are found as printed, or without a '|kraken:taxid|N' tag\n"
    "(-a kraken), as the ACC of a 'db|ACC|...' id, with or without a '.N' version. Hits\n"
    "on members pass through unchanged, as do comment and blank lines. HITS '-' or\n"
    "absent is stdin. Subjects that are not in the delta store pass through unchanged and\n"
    "are counted in a warning at the end.\n"
    "\n"
    "  -d, --deltas FILE    the delta store written by talaria reduce (required)\n"
    "  -r, --reduced FASTA  the reduced FASTA (default: the one beside the delta store;\n"
    "                       expand reads only the delta store)\n"
    "  -o, --output FILE    write here (atomically: a temporary file beside, renamed when\n"
    "                       complete) instead of stdout\n"
    "  -f, --force          replace an existing --output file\n"
    "      --strict         a subject that is not in the delta store is an error (exit 3)\n"
    "  -q, --quiet          only errors on stderr\n"
    "  -h, --help           this help\n"
    "\n"
    "Exit codes: 0 ok, 1 I/O error (a file missing or unreadable) or the output exists,\n"
    "2 usage, 3 invalid input (a line without two tab-separated fields or with a NUL\n"
    "byte, named by file and line; a damaged delta store).\n";

/* ---- output ---- */

/* Where hits go: stdout, or --output through a tal_outfile_t. */
typedef struct {
    FILE *f;
    const char *name; /* for messages */
} sink_t;

static int write_hit(void *arg, const tal_hit_t *hit)
{
    sink_t *s = arg;
    if (!hit->subject) {
        fwrite_unlocked(hit->line, 1, hit->len, s->f);
    } else {
        fwrite_unlocked(hit->line, 1, hit->subject_at, s->f);
        fwrite_unlocked(hit->subject, 1, hit->subject_len, s->f);
        fwrite_unlocked(hit->line + hit->rest_at, 1, hit->len - hit->rest_at, s->f);
    }
    putc_unlocked('\n', s->f);
    if (ferror_unlocked(s->f)) {
        tal_log_error("cannot write %s: %s", s->name, strerror(errno));
        return TAL_EIO;
    }
    return 0;
}

int cmd_expand(int argc, char **argv)
{
    enum { OPT_STRICT = 256 };
    static const struct option longopts[] = {
        {"deltas", required_argument, NULL, 'd'},  {"reduced", required_argument, NULL, 'r'},
        {"output", required_argument, NULL, 'o'},  {"force", no_argument, NULL, 'f'},
        {"strict", no_argument, NULL, OPT_STRICT}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    const char *deltas = NULL, *reduced = NULL, *out_path = NULL, *hits = "-", *name;
    tal_dstore_t *dstore = NULL;
    tal_expander_t *x = NULL;
    sink_t sink = {stdout, "stdout"};
    tal_outfile_t of = {0};
    FILE *in = stdin;
    int c, rc, force = 0, strict = 0;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:r:o:fqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': deltas = optarg; break;
        case 'r': reduced = optarg; break;
        case 'o': out_path = optarg; break;
        case 'f': force = 1; break;
        case OPT_STRICT: strict = 1; break;
        case 'q': cli_quieter(); break;
        case 'h': fputs(help, stdout); return 0;
        default:
            return cli_usage_error("expand", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) hits = argv[optind++];
    name = strcmp(hits, "-") ? hits : "<stdin>"; /* in messages, as the FASTA reader says it */
    if (optind < argc) return cli_usage_error("expand", "unexpected argument '%s'", argv[optind]);
    if (!deltas) return cli_usage_error("expand", "missing -d DELTAS.tal");
    if (out_path && !strcmp(out_path, "-")) out_path = NULL;
    if (out_path && !force && access(out_path, F_OK) == 0) {
        tal_log_error("%s already exists; use --force to replace it", out_path);
        return cli_exit(TAL_EEXIST);
    }
    if ((rc = tal_dstore_open(&dstore, deltas, reduced, 0)) < 0) return cli_exit(rc);
    if (strcmp(hits, "-") && !(in = fopen(hits, "r"))) {
        tal_log_error("cannot open %s: %s", hits, strerror(errno));
        tal_dstore_close(dstore);
        return cli_exit(TAL_EIO);
    }
    if (out_path) {
        if ((rc = tal_outfile_open(&of, out_path, force)) < 0) {
            if (in != stdin) fclose(in);
            tal_dstore_close(dstore);
            return cli_exit(rc);
        }
        sink.f = of.f;
        sink.name = out_path;
    } else {
        setvbuf(sink.f, NULL, _IOFBF, 1 << 20);
    }
    if ((rc = tal_expander_create(&x, dstore, strict, write_hit, &sink)) == 0)
        rc = tal_expander_feed_file(x, in, name);
    if (in != stdin) fclose(in);
    if (out_path) {
        if (rc == 0) rc = tal_outfile_commit(&of, force);
        tal_outfile_abort(&of); /* after an error: removes the temporary file */
    } else if (fflush(stdout) != 0 && !rc) {
        tal_log_error("cannot write to stdout: %s", strerror(errno));
        rc = TAL_EIO;
    }
    if (rc == 0) tal_expander_warn(x, name);
    tal_expander_free(x);
    tal_dstore_close(dstore);
    return cli_exit(rc);
}
