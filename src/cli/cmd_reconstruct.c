/* talaria reconstruct: the original records of a reduction, byte for byte, from the
 * reduced FASTA and the delta store. */
#define _GNU_SOURCE
#include "cli.h"
#include "reduce/dstore_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "util/files_internal.h"

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
    "  -w, --width N         residues per line (default 0: one line per record)\n"
    "  -f, --force           replace an existing --output\n"
    "  -q, --quiet           only errors on stderr\n"
    "  -h, --help            this help\n";

static int emit(FILE *f, tal_dstore_t *d, uint64_t i, size_t width, char **buf, size_t *cap)
{
    tal_drec_t rec;
    size_t len;
    int rc;
    if ((rc = tal_dstore_rebuild(d, i, buf, cap, &len)) < 0) return rc;
    tal_dstore_record(d, i, &rec);
    fputc('>', f);
    fwrite(rec.header, 1, rec.header_len, f);
    fputc('\n', f);
    if (!width) {
        fwrite(*buf, 1, len, f);
        fputc('\n', f);
    } else {
        for (size_t p = 0; p < len; p += width) {
            fwrite(*buf + p, 1, len - p < width ? len - p : width, f);
            fputc('\n', f);
        }
        if (!len) fputc('\n', f);
    }
    return ferror(f) ? TAL_EIO : 0;
}

int cmd_reconstruct(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"references", required_argument, NULL, 'r'}, {"deltas", required_argument, NULL, 'd'},
        {"output", required_argument, NULL, 'o'},     {"ids", required_argument, NULL, 'I'},
        {"width", required_argument, NULL, 'w'},      {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},            {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *refs = NULL, *deltas = NULL, *out = NULL, *ids = NULL;
    size_t width = 0, cap = 0;
    int force = 0, opt, rc = 0;
    char *buf = NULL;
    FILE *f = stdout;
    tal_outfile_t of = {0};
    tal_dstore_t *d = NULL;
    uint64_t missing = 0, written = 0;
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
                return cli_usage_error("reconstruct", "--width must be 0 to 1000000, not '%s'", optarg);
            width = (size_t)v;
            break;
        }
        case 'f': force = 1; break;
        case 'q': cli_quieter(); break;
        case 'h': fputs(help, stdout); return 0;
        default:
            return cli_usage_error("reconstruct", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("reconstruct", "unexpected argument '%s'", argv[optind]);
    if (!deltas) return cli_usage_error("reconstruct", "missing -d DELTAS.tal");
    if (out && !force && access(out, F_OK) == 0) { /* before the work, not after */
        tal_log_error("%s already exists; use --force to replace it", out);
        return tal_exit_code(TAL_EEXIST);
    }
    if ((rc = tal_dstore_open(&d, deltas, refs, 0)) < 0) return tal_exit_code(rc);
    if (out) {
        if ((rc = tal_outfile_open(&of, out, force)) < 0) goto done;
        f = of.f;
    } else {
        setvbuf(f, NULL, _IOFBF, 1u << 20);
    }
    if (!ids) {
        tal_dinfo_t info;
        tal_dstore_info(d, &info);
        for (uint64_t i = 0; i < info.records && rc == 0; i++, written++) rc = emit(f, d, i, width, &buf, &cap);
    } else {
        FILE *in = strcmp(ids, "-") ? fopen(ids, "r") : stdin;
        char *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        if (!in) {
            tal_log_error("%s: cannot open: %s", ids, strerror(errno));
            rc = TAL_EINPUT;
            goto done;
        }
        while (rc == 0 && (len = getline(&line, &lcap, in)) >= 0) {
            uint64_t i;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
                line[--len] = '\0';
            if (!len) continue;
            if (tal_dstore_find(d, line, (size_t)len, &i) < 0) {
                if (missing++ < 10) tal_log_error("%s: not in %s", line, deltas);
                continue;
            }
            rc = emit(f, d, i, width, &buf, &cap);
            written++;
        }
        free(line);
        if (in != stdin) fclose(in);
    }
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
    free(buf);
    tal_dstore_close(d);
    return rc < 0 ? tal_exit_code(rc) : 0;
}
