/* talaria get: records or regions of a store as FASTA on stdout. */
#include "cli.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/store.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "Usage: talaria get [OPTIONS] DB.tal [ACC | ACC:START-END]...\n"
    "\n"
    "Print records of a store as FASTA on stdout, in the order asked. ACC is the first\n"
    "word of the header, or ACC in a 'db|ACC|NAME' header. ACC:START-END prints residues\n"
    "START to END (1-based, inclusive, as samtools faidx; END past the end is clamped).\n"
    "Accessions that are not found are listed on stderr after the rest is printed (exit 3).\n"
    "\n"
    "  -f, --file FILE    read accessions from FILE, one per line ('-' for stdin)\n"
    "  -w, --width N      wrap residues at N per line (default 60; 0 = one line)\n"
    "  -q, --quiet        only errors on stderr\n"
    "  -h, --help         this help\n";

typedef struct {
    tal_store_t *store;
    size_t width;
    uint64_t missing;
    char **missing_names;
    size_t missing_cap;
    int corrupt;
} get_ctx_t;

static void put_wrapped(const char *seq, size_t len, size_t width)
{
    if (len == 0) return;
    if (width == 0 || len <= width) {
        fwrite_unlocked(seq, 1, len, stdout);
        putc_unlocked('\n', stdout);
        return;
    }
    for (size_t i = 0; i < len; i += width) {
        size_t n = len - i < width ? len - i : width;
        fwrite_unlocked(seq + i, 1, n, stdout);
        putc_unlocked('\n', stdout);
    }
}

static void note_missing(get_ctx_t *g, const char *name)
{
    if (g->missing < 20) {
        if (g->missing == g->missing_cap) {
            size_t cap = g->missing_cap ? g->missing_cap * 2 : 8;
            char **p = realloc(g->missing_names, cap * sizeof *p);
            if (!p) {
                g->missing++;
                return;
            }
            g->missing_names = p;
            g->missing_cap = cap;
        }
        g->missing_names[g->missing] = strdup(name);
    }
    g->missing++;
}

/* Parses a 1-based position with optional thousands commas. */
static int parse_pos(const char *s, const char *end, uint64_t *v)
{
    uint64_t x = 0;
    int digits = 0;
    for (; s < end; s++) {
        if (*s == ',') continue;
        if (*s < '0' || *s > '9' || x > UINT64_MAX / 10 - 1) return -1;
        x = x * 10 + (uint64_t)(*s - '0');
        digits++;
    }
    if (!digits) return -1;
    *v = x;
    return 0;
}

/* Splits "ACC:START-END" / "ACC:START" / "ACC:START-"; returns 0 if it is a region. */
static int parse_region(const char *q, size_t *acc_len, uint64_t *start, uint64_t *end)
{
    const char *colon = strrchr(q, ':'), *dash, *stop;
    if (!colon || colon == q) return -1;
    stop = colon + strlen(colon);
    dash = strchr(colon + 1, '-');
    if (parse_pos(colon + 1, dash ? dash : stop, start) < 0 || *start == 0) return -1;
    if (dash && dash + 1 < stop) {
        if (parse_pos(dash + 1, stop, end) < 0) return -1;
    } else {
        *end = UINT64_MAX;
    }
    *acc_len = (size_t)(colon - q);
    return 0;
}

static void get_one(get_ctx_t *g, const char *q)
{
    uint64_t id, start, end;
    size_t acc_len;
    tal_record_t rec;
    if (!*q) return;
    if (tal_store_find(g->store, q, strlen(q), &id) == 0) {
        if (tal_store_record(g->store, id, &rec) < 0) {
            g->corrupt = 1;
            return;
        }
        putc_unlocked('>', stdout);
        fwrite_unlocked(rec.header, 1, rec.header_len, stdout);
        putc_unlocked('\n', stdout);
        put_wrapped(rec.seq, rec.seq_len, g->width);
        return;
    }
    if (parse_region(q, &acc_len, &start, &end) < 0 ||
        tal_store_find(g->store, q, acc_len, &id) < 0) {
        note_missing(g, q);
        return;
    }
    if (tal_store_record(g->store, id, &rec) < 0) {
        g->corrupt = 1;
        return;
    }
    if (end > rec.seq_len) end = rec.seq_len;
    if (start > end) {
        tal_log_error("%s: region %s is outside the sequence (length %zu)",
                      tal_store_path(g->store), q, rec.seq_len);
        note_missing(g, q);
        return;
    }
    fprintf(stdout, ">%.*s:%llu-%llu\n", (int)acc_len, q, (unsigned long long)start,
            (unsigned long long)end);
    put_wrapped(rec.seq + start - 1, (size_t)(end - start + 1), g->width);
}

static int get_from_file(get_ctx_t *g, const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    if (!f) {
        tal_log_error("cannot open %s: %s", path, strerror(errno));
        return errno == ENOENT ? TAL_EINPUT : TAL_EIO;
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                         line[n - 1] == '\t'))
            line[--n] = '\0';
        get_one(g, line);
    }
    free(line);
    if (ferror(f)) {
        tal_log_error("cannot read %s: %s", path, strerror(errno));
        if (f != stdin) fclose(f);
        return TAL_EIO;
    }
    if (f != stdin) fclose(f);
    return 0;
}

int cmd_get(int argc, char **argv)
{
    static const struct option longopts[] = {{"file", required_argument, NULL, 'f'},
                                             {"width", required_argument, NULL, 'w'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *id_file = NULL;
    get_ctx_t g;
    int c, rc = 0;
    char *end;
    long w;
    memset(&g, 0, sizeof g);
    g.width = 60;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:w:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': id_file = optarg; break;
        case 'w':
            w = strtol(optarg, &end, 10);
            if (!*optarg || *end || w < 0)
                return cli_usage_error("get", "--width must be 0 or a positive number, not '%s'",
                                       optarg);
            g.width = (size_t)w;
            break;
        case 'q': cli_quieter(); break;
        case 'h': fputs(help, stdout); return 0;
        default: return cli_usage_error("get", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error("get", "missing DB.tal");
    if (optind + 1 >= argc && !id_file)
        return cli_usage_error("get", "give accessions as arguments or with -f FILE");
    if ((rc = tal_store_open(&g.store, argv[optind])) < 0) return tal_exit_code(rc);
    setvbuf(stdout, NULL, _IOFBF, 1 << 20);
    for (int i = optind + 1; i < argc; i++) get_one(&g, argv[i]);
    if (id_file) rc = get_from_file(&g, id_file);
    if (fflush(stdout) != 0) {
        tal_log_error("cannot write to stdout: %s", strerror(errno));
        rc = TAL_EIO;
    }
    if (g.missing) {
        fprintf(stderr, "talaria get: %llu accession%s not found in %s:",
                (unsigned long long)g.missing, g.missing == 1 ? "" : "s", argv[optind]);
        for (uint64_t i = 0; i < g.missing && i < 20; i++)
            fprintf(stderr, " %s", g.missing_names[i] ? g.missing_names[i] : "?");
        fprintf(stderr, "%s\n", g.missing > 20 ? " ..." : "");
        if (!rc) rc = TAL_ENOTFOUND;
    }
    if (g.corrupt && !rc) rc = TAL_EINPUT;
    for (uint64_t i = 0; i < g.missing && i < 20; i++) free(g.missing_names[i]);
    free(g.missing_names);
    tal_store_close(g.store);
    return tal_exit_code(rc);
}
