/* talaria get: records or regions of a store as FASTA on stdout. */
#define _GNU_SOURCE
#include "cli.h"
#include "talaria/deltas.h"
#include "talaria/error.h"
#include "talaria/fasta.h"
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
    "DB.tal may also be the delta store of a reduction (talaria reduce): any original\n"
    "record is rebuilt from the reduced FASTA beside it and checked.\n"
    "\n"
    "  -f, --file FILE    read accessions from FILE, one per line ('-' for stdin)\n"
    "  -w, --width N      wrap residues at N per line (default 60; 0 = one line)\n"
    "      --profile NAME, --config FILE  settings (memory.cache_size, memory.huge_pages,\n"
    "                     memory.numa) from a profile or a TOML file; see talaria.toml(5)\n"
    "  -q, --quiet        only errors on stderr\n"
    "  -h, --help         this help\n";

/* A compressed store is read in batches: the records asked for are fetched in store
 * order (each chunk decompressed once per batch) into an arena, then printed in the
 * order asked. A batch ends at BATCH_QUERIES queries or BATCH_BYTES of output. */
#define BATCH_QUERIES 16384
#define BATCH_BYTES   (64u << 20)

typedef struct {
    char *text;              /* the query as given */
    size_t acc_len;          /* region: the accession part of text */
    uint64_t id, start, end; /* region: 1-based, end clamped later */
    int region;
    int found;                     /* 0: missing, 1: to fetch, 2: impossible length, -1: damaged */
    size_t header_off, header_len; /* in the header arena */
    size_t out_off, out_len;       /* residues in the arena */
} query_t;

typedef struct {
    tal_store_t *store;
    int batched;
    const uint64_t *lengths;
    uint64_t n_records, residues;
    query_t *batch;
    size_t n_batch, batch_bytes;
    char *arena;
    size_t arena_cap;
    char *harena; /* the batch's headers */
    size_t harena_cap, harena_used;
    size_t width;
    uint64_t missing;
    char **missing_names;
    size_t missing_cap;
    int corrupt;
    int failed;           /* out of memory */
    tal_dstore_t *dstore; /* a delta store: members are rebuilt from the reduced FASTA */
    char *dbuf;
    size_t dbuf_cap;
} get_ctx_t;

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

/* Records go to stdout with tal_fasta_write; a write error shows at the final fflush. */
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
        tal_fasta_write(stdout, rec.header, rec.header_len, rec.seq, rec.seq_len, g->width, 0);
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
    tal_fasta_write(stdout, NULL, 0, rec.seq + start - 1, (size_t)(end - start + 1), g->width, 0);
}

/* A record of a delta store (reference or member), rebuilt and checked. */
static void get_delta_one(get_ctx_t *g, const char *q)
{
    uint64_t id, start = 1, end = UINT64_MAX;
    size_t acc_len = strlen(q), len;
    int region = 0, rc;
    tal_drec_t rec;
    if (!*q) return;
    if (tal_dstore_find(g->dstore, q, acc_len, &id) < 0) {
        if (parse_region(q, &acc_len, &start, &end) < 0 ||
            tal_dstore_find(g->dstore, q, acc_len, &id) < 0) {
            note_missing(g, q);
            return;
        }
        region = 1;
    }
    if ((rc = tal_dstore_rebuild(g->dstore, id, &g->dbuf, &g->dbuf_cap, &len)) < 0 ||
        tal_dstore_record(g->dstore, id, &rec) < 0) {
        if (rc == TAL_ENOMEM)
            g->failed = 1;
        else
            g->corrupt = 1;
        return;
    }
    if (!region) {
        tal_fasta_write(stdout, rec.header, rec.header_len, g->dbuf, len, g->width, 0);
        return;
    }
    if (end > len) end = len;
    if (start > end) {
        tal_log_error("%s: region %s is outside the sequence (length %zu)",
                      tal_dstore_path(g->dstore), q, len);
        note_missing(g, q);
        return;
    }
    fprintf(stdout, ">%.*s:%llu-%llu\n", (int)acc_len, q, (unsigned long long)start,
            (unsigned long long)end);
    tal_fasta_write(stdout, NULL, 0, g->dbuf + start - 1, (size_t)(end - start + 1), g->width, 0);
}

static int by_id(const void *a, const void *b, void *arg)
{
    const query_t *q = arg;
    uint64_t x = q[*(const size_t *)a].id, y = q[*(const size_t *)b].id;
    return x < y ? -1 : x > y;
}

static void flush_batch(get_ctx_t *g)
{
    size_t *order, total = 0;
    if (!g->n_batch) return;
    order = malloc(g->n_batch * sizeof *order);
    for (size_t i = 0; i < g->n_batch; i++) {
        query_t *q = &g->batch[i];
        if (order) order[i] = i;
        if (q->found) {
            q->out_off = total;
            total += q->out_len;
        }
    }
    if (total > g->arena_cap) {
        char *a = realloc(g->arena, total);
        if (a) {
            g->arena = a;
            g->arena_cap = total;
        }
    }
    if (!order || total > g->arena_cap) {
        tal_log_error("out of memory for a batch of %zu records", g->n_batch);
        g->failed = 1;
        for (size_t i = 0; i < g->n_batch; i++) free(g->batch[i].text);
        g->n_batch = g->batch_bytes = 0;
        free(order);
        return;
    }
    qsort_r(order, g->n_batch, sizeof *order, by_id, g->batch);
    for (size_t k = 0; k < g->n_batch; k++) {
        query_t *q = &g->batch[order[k]];
        tal_record_t rec;
        if (!q->found) continue;
        if (q->found == 2 || tal_store_record(g->store, q->id, &rec) < 0) {
            if (q->found == 2) tal_store_record(g->store, q->id, &rec); /* names the record */
            q->found = -1;
            g->corrupt = 1;
            continue;
        }
        /* the header is copied: in random-access mode the next record reuses its buffer */
        if (g->harena_used + rec.header_len > g->harena_cap) {
            size_t cap = g->harena_cap ? g->harena_cap : 1 << 16;
            char *p;
            while (cap < g->harena_used + rec.header_len) cap *= 2;
            if (!(p = realloc(g->harena, cap))) {
                tal_log_error("out of memory for a batch of %zu records", g->n_batch);
                q->found = -1;
                g->failed = 1;
                continue;
            }
            g->harena = p;
            g->harena_cap = cap;
        }
        memcpy(g->harena + g->harena_used, rec.header, rec.header_len);
        q->header_off = g->harena_used;
        g->harena_used += rec.header_len;
        q->header_len = rec.header_len;
        if (q->region) {
            uint64_t end = q->end > rec.seq_len ? rec.seq_len : q->end;
            q->end = end;
            if (q->start > end || end - q->start + 1 != q->out_len) {
                q->found = -1; /* the lengths array disagreed with the record */
                g->corrupt = 1;
                continue;
            }
            memcpy(g->arena + q->out_off, rec.seq + q->start - 1, q->out_len);
        } else {
            if (rec.seq_len != q->out_len) {
                q->found = -1;
                g->corrupt = 1;
                continue;
            }
            memcpy(g->arena + q->out_off, rec.seq, q->out_len);
        }
    }
    for (size_t i = 0; i < g->n_batch; i++) {
        query_t *q = &g->batch[i];
        if (q->found == 0) note_missing(g, q->text);
        if (q->found == 1) {
            if (q->region) {
                fprintf(stdout, ">%.*s:%llu-%llu\n", (int)q->acc_len, q->text,
                        (unsigned long long)q->start, (unsigned long long)q->end);
                tal_fasta_write(stdout, NULL, 0, g->arena + q->out_off, q->out_len, g->width, 0);
            } else {
                tal_fasta_write(stdout, g->harena + q->header_off, q->header_len,
                                g->arena + q->out_off, q->out_len, g->width, 0);
            }
        }
        free(q->text);
    }
    free(order);
    g->n_batch = g->batch_bytes = 0;
    g->harena_used = 0;
}

/* Resolves a query now (so an unknown accession costs nothing later) and queues it. */
static void queue_one(get_ctx_t *g, const char *text)
{
    query_t *q;
    uint64_t len;
    if (!*text) return;
    if (!g->batch && !(g->batch = malloc(BATCH_QUERIES * sizeof *g->batch))) {
        tal_log_error("out of memory");
        g->failed = 1;
        return;
    }
    q = &g->batch[g->n_batch];
    memset(q, 0, sizeof *q);
    if (!(q->text = strdup(text))) {
        g->failed = 1;
        return;
    }
    if (tal_store_find(g->store, text, strlen(text), &q->id) == 0) {
        q->found = 1;
    } else if (parse_region(text, &q->acc_len, &q->start, &q->end) == 0 &&
               tal_store_find(g->store, text, q->acc_len, &q->id) == 0) {
        q->found = 1;
        q->region = 1;
    }
    if (q->found) {
        len = q->id < g->n_records ? g->lengths[q->id] : 0;
        if (len > g->residues) { /* a damaged lengths array: fetching will say so */
            q->found = 2;
            len = 0;
        }
        if (q->found == 2) {
            q->out_len = 0;
        } else if (q->region) {
            uint64_t end = q->end > len ? len : q->end;
            if (q->start > end) {
                tal_log_error("%s: region %s is outside the sequence (length %llu)",
                              tal_store_path(g->store), text, (unsigned long long)len);
                q->found = 0;
            } else {
                q->out_len = (size_t)(end - q->start + 1);
            }
        } else {
            q->out_len = (size_t)len;
        }
    }
    if (g->n_batch && g->batch_bytes + q->out_len > BATCH_BYTES) {
        /* this query opens the next batch: the arena stays near BATCH_BYTES */
        query_t next = *q;
        flush_batch(g);
        g->batch[0] = next;
        q = &g->batch[0];
    }
    g->batch_bytes += q->out_len;
    g->n_batch++;
    if (g->n_batch == BATCH_QUERIES) flush_batch(g);
}

static void ask(get_ctx_t *g, const char *text)
{
    if (g->dstore)
        get_delta_one(g, text);
    else if (g->batched)
        queue_one(g, text);
    else
        get_one(g, text);
}

static int ask_id(void *arg, const char *id, size_t len, uint64_t line)
{
    (void)len;
    (void)line; /* the accessions not found are listed together at the end */
    ask(arg, id);
    return 0;
}

int cmd_get(int argc, char **argv)
{
    static const struct option longopts[] = {{"file", required_argument, NULL, 'f'},
                                             {"width", required_argument, NULL, 'w'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_CONFIG_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *id_file = NULL;
    cli_config_t conf = {0};
    uint64_t cache = 0;
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
        default:
            if (cli_config_option(c, optarg, &conf)) break;
            return cli_usage_error("get", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error("get", "missing DB.tal");
    if (optind + 1 >= argc && !id_file)
        return cli_usage_error("get", "give accessions as arguments or with -f FILE");
    rc = cli_config_load(&conf);
    if (rc == 0 && tal_config_is_set(conf.cfg, "memory.cache_size"))
        cache = (uint64_t)tal_config_int(conf.cfg, "memory.cache_size");
    cli_config_end(&conf);
    if (rc < 0) return cli_exit(rc);
    if (tal_dstore_is(argv[optind])) {
        if ((rc = tal_dstore_open(&g.dstore, argv[optind], NULL, 0)) < 0) return cli_exit(rc);
    } else if ((rc = tal_store_open(&g.store, argv[optind])) < 0) {
        return cli_exit(rc);
    } else if (cache && (rc = tal_store_set_cache(g.store, (size_t)cache)) < 0) {
        tal_store_close(g.store);
        return cli_exit(rc);
    }
    setvbuf(stdout, NULL, _IOFBF, 1 << 20);
    if (g.store) {
        tal_store_info_t info;
        /* a few records out of many: pread, not the mappings (a small resident set) */
        tal_store_set_random_access(g.store, 1);
        tal_store_info(g.store, &info);
        g.batched = info.chunk_count > 0;
        g.n_records = info.records;
        g.residues = info.residues;
        tal_store_lengths(g.store, &g.lengths);
    }
    for (int i = optind + 1; i < argc; i++) ask(&g, argv[i]);
    if (id_file) {
        static const cli_ids_opt_t ids = {"cannot open %s: %s", 1, 1};
        rc = cli_read_ids(id_file, &ids, ask_id, &g);
    }
    flush_batch(&g);
    free(g.batch);
    free(g.arena);
    free(g.harena);
    if (g.failed && !rc) rc = TAL_ENOMEM;
    if (fflush(stdout) != 0) {
        tal_log_error("cannot write to stdout: %s", strerror(errno));
        rc = TAL_EIO;
    }
    if (g.missing) {
        fprintf(stderr,
                "talaria get: %llu accession%s not found in %s:", (unsigned long long)g.missing,
                g.missing == 1 ? "" : "s", argv[optind]);
        for (uint64_t i = 0; i < g.missing && i < 20; i++)
            fprintf(stderr, " %s", g.missing_names[i] ? g.missing_names[i] : "?");
        fprintf(stderr, "%s\n", g.missing > 20 ? " ..." : "");
        if (!rc) rc = TAL_ENOTFOUND;
    }
    if (g.corrupt && !rc) rc = TAL_EINPUT;
    for (uint64_t i = 0; i < g.missing && i < 20; i++) free(g.missing_names[i]);
    free(g.missing_names);
    if (g.store) tal_store_close(g.store);
    tal_dstore_close(g.dstore);
    free(g.dbuf);
    return cli_exit(rc);
}
