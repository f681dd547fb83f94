/* talaria expand: search hits on the references of a reduction turned into hits on
 * every member too, streaming line by line; the expander is shared with validate. */
#define _GNU_SOURCE
#include "cli.h"
#include "expand.h"
#include "store/format_internal.h"
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
    "Usage: talaria expand -d DELTAS.tal [-r REDUCED.fasta] [-o OUT] [HITS.m8]\n"
    "\n"
    "Read tabular search hits (BLAST or DIAMOND -outfmt 6: query, subject, ...) against a\n"
    "reduced database and write each hit line unchanged, followed, when its subject is a\n"
    "reference, by one copy per member of that reference with the subject (column 2)\n"
    "replaced by the member's accession. Hits on members pass through unchanged, as do\n"
    "comment and blank lines. HITS '-' or absent is stdin. Subjects that are not in the\n"
    "delta store pass through unchanged and are counted in a warning at the end.\n"
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
    "Exit codes: 0 ok, 1 I/O error or the output exists, 2 usage, 3 invalid input (a line\n"
    "without two tab-separated fields, named by file and line; a damaged delta store).\n";

enum { SUBJECT_UNKNOWN, SUBJECT_REFERENCE, SUBJECT_MEMBER };

int cli_hit_fields(const char *line, size_t len, size_t *subject_at, size_t *subject_end)
{
    const char *tab, *next;
    size_t i = 0, end;
    if (len && line[0] == '#') return 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    if (i == len) return 0;
    if (!(tab = memchr(line, '\t', len))) return -1;
    *subject_at = (size_t)(tab - line) + 1;
    next = memchr(line + *subject_at, '\t', len - *subject_at);
    end = next ? (size_t)(next - line) : len;
    while (!next && end > *subject_at && line[end - 1] == '\r') end--;
    if (end == *subject_at) return -1;
    *subject_end = end;
    return 1;
}

void cli_expander_init(cli_expander_t *x, tal_dstore_t *dstore, int strict)
{
    memset(x, 0, sizeof *x);
    x->dstore = dstore;
    x->strict = strict;
}

void cli_expander_free(cli_expander_t *x)
{
    free(x->first_unknown);
    free(x->last);
    memset(x, 0, sizeof *x);
}

/* Classifies a subject, reusing the previous line's answer when it is the same. */
static int look_up(cli_expander_t *x, const char *subject, size_t len)
{
    uint64_t i;
    tal_drec_t rec;
    tal_keys_t keys;
    int rc;
    if (x->last && x->last_len == len && !memcmp(x->last, subject, len)) return 0;
    if (len + 1 > x->last_cap) {
        char *p = realloc(x->last, len + 1);
        if (!p) return TAL_ENOMEM;
        x->last = p;
        x->last_cap = len + 1;
    }
    x->last_len = SIZE_MAX; /* no valid cache until the lookup is complete */
    x->last_kind = SUBJECT_UNKNOWN;
    x->member_count = 0;
    if (tal_dstore_find(x->dstore, subject, len, &i) == 0) {
        if ((rc = tal_dstore_record(x->dstore, i, &rec)) < 0) return rc;
        if (rec.flags & TAL_DREC_REFERENCE) {
            if ((rc = tal_dstore_members(x->dstore, rec.ref, &x->members, &x->member_count)) < 0)
                return rc;
            tal_header_keys(rec.header, rec.header_len, &keys);
            x->last_alias = keys.primary_len != len || memcmp(keys.primary, subject, len) != 0;
            x->last_kind = SUBJECT_REFERENCE;
        } else {
            x->last_kind = SUBJECT_MEMBER;
        }
    }
    memcpy(x->last, subject, len);
    x->last_len = len;
    return 0;
}

static int note_unknown(cli_expander_t *x, const char *name, uint64_t line_no, const char *subject,
                        size_t len)
{
    if (x->strict) {
        tal_log_error("%s line %llu: subject '%.*s' is not in %s", name, (unsigned long long)line_no,
                      (int)(len > 200 ? 200 : len), subject, tal_dstore_path(x->dstore));
        return TAL_ENOTFOUND;
    }
    if (!x->unknown_lines++) {
        if (!(x->first_unknown = strndup(subject, len))) return TAL_ENOMEM;
        x->first_unknown_line = line_no;
    }
    return 0;
}

/* The members of the reference the hit is on; each named the way the hit named the
 * reference (first word, or the ACC of "db|ACC|NAME" when the member has one). */
static int emit_members(cli_expander_t *x, cli_hit_t *hit, cli_hit_fn emit, void *arg)
{
    for (uint64_t k = 0; k < x->member_count; k++) {
        tal_drec_t rec;
        tal_keys_t keys;
        int rc;
        if ((rc = tal_dstore_record(x->dstore, x->members[k], &rec)) < 0) return rc;
        tal_header_keys(rec.header, rec.header_len, &keys);
        if (x->last_alias && keys.alias) {
            hit->subject = keys.alias;
            hit->subject_len = keys.alias_len;
        } else {
            hit->subject = keys.primary;
            hit->subject_len = keys.primary_len;
        }
        if ((rc = emit(arg, hit)) < 0) return rc;
    }
    return 0;
}

int cli_expand_stream(cli_expander_t *x, FILE *in, const char *name, cli_hit_fn emit, void *arg)
{
    char *line = NULL;
    size_t cap = 0, subject_at = 0, subject_end = 0;
    ssize_t n;
    uint64_t line_no = 0;
    int rc = 0, kind;
    while ((n = getline(&line, &cap, in)) >= 0) {
        cli_hit_t hit;
        line_no++;
        if (n > 0 && line[n - 1] == '\n') n--;
        memset(&hit, 0, sizeof hit);
        hit.line = line;
        hit.len = (size_t)n;
        kind = cli_hit_fields(line, (size_t)n, &subject_at, &subject_end);
        if (kind < 0) {
            tal_log_error("%s line %llu: not a tabular hit (needs a query and a subject, "
                          "separated by a tab)",
                          name, (unsigned long long)line_no);
            rc = TAL_EINPUT;
            break;
        }
        if (kind == 0) {
            hit.subject_at = hit.rest_at = hit.len;
            if ((rc = emit(arg, &hit)) < 0) break;
            continue;
        }
        hit.subject_at = subject_at;
        hit.rest_at = subject_end;
        hit.subject = line + subject_at;
        hit.subject_len = subject_end - subject_at;
        if ((rc = look_up(x, hit.subject, hit.subject_len)) < 0) break;
        if (x->last_kind == SUBJECT_UNKNOWN &&
            (rc = note_unknown(x, name, line_no, hit.subject, hit.subject_len)) < 0)
            break;
        if ((rc = emit(arg, &hit)) < 0) break;
        if (x->last_kind == SUBJECT_REFERENCE && (rc = emit_members(x, &hit, emit, arg)) < 0) break;
    }
    if (!rc && ferror(in)) {
        tal_log_error("cannot read %s: %s", name, strerror(errno));
        rc = TAL_EIO;
    }
    free(line);
    return rc;
}

void cli_expander_warn(const cli_expander_t *x, const char *name)
{
    if (!x->unknown_lines) return;
    tal_log_warn("%s: %llu hit line%s name%s a subject that is not in %s (the first: '%s' on "
                 "line %llu); passed through unchanged",
                 name, (unsigned long long)x->unknown_lines, x->unknown_lines == 1 ? "" : "s",
                 x->unknown_lines == 1 ? "s" : "", tal_dstore_path(x->dstore), x->first_unknown,
                 (unsigned long long)x->first_unknown_line);
}

/* ---- output ---- */

/* Where hits go: stdout, or --output through a tal_outfile_t. */
typedef struct {
    FILE *f;
    const char *name; /* for messages */
} sink_t;

static int write_hit(void *arg, const cli_hit_t *hit)
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
    static const struct option longopts[] = {{"deltas", required_argument, NULL, 'd'},
                                             {"reduced", required_argument, NULL, 'r'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"force", no_argument, NULL, 'f'},
                                             {"strict", no_argument, NULL, OPT_STRICT},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *deltas = NULL, *reduced = NULL, *out_path = NULL, *hits = "-";
    tal_dstore_t *dstore = NULL;
    cli_expander_t x;
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
    if (optind < argc) return cli_usage_error("expand", "unexpected argument '%s'", argv[optind]);
    if (!deltas) return cli_usage_error("expand", "missing -d DELTAS.tal");
    if (out_path && !strcmp(out_path, "-")) out_path = NULL;
    if (out_path && !force && access(out_path, F_OK) == 0) {
        tal_log_error("%s already exists; use --force to replace it", out_path);
        return tal_exit_code(TAL_EEXIST);
    }
    if ((rc = tal_dstore_open(&dstore, deltas, reduced, 0)) < 0) return tal_exit_code(rc);
    if (strcmp(hits, "-") && !(in = fopen(hits, "r"))) {
        rc = errno == ENOENT ? TAL_EINPUT : TAL_EIO;
        tal_log_error("cannot open %s: %s", hits, strerror(errno));
        tal_dstore_close(dstore);
        return tal_exit_code(rc);
    }
    if (out_path) {
        if ((rc = tal_outfile_open(&of, out_path, force)) < 0) {
            if (in != stdin) fclose(in);
            tal_dstore_close(dstore);
            return tal_exit_code(rc);
        }
        sink.f = of.f;
        sink.name = out_path;
    } else {
        setvbuf(sink.f, NULL, _IOFBF, 1 << 20);
    }
    cli_expander_init(&x, dstore, strict);
    rc = cli_expand_stream(&x, in, strcmp(hits, "-") ? hits : "stdin", write_hit, &sink);
    if (in != stdin) fclose(in);
    if (out_path) {
        if (rc == 0) rc = tal_outfile_commit(&of, force);
        tal_outfile_abort(&of); /* after an error: removes the temporary file */
    } else if (fflush(stdout) != 0 && !rc) {
        tal_log_error("cannot write to stdout: %s", strerror(errno));
        rc = TAL_EIO;
    }
    if (rc == 0) cli_expander_warn(&x, strcmp(hits, "-") ? hits : "stdin");
    cli_expander_free(&x);
    tal_dstore_close(dstore);
    return tal_exit_code(rc);
}
