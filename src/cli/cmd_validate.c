/* talaria validate: checks that a reduction gives back every original record byte for
 * byte, summarises it, and measures how many search hits survive reduce + expand. */
#define _GNU_SOURCE
#include "cli.h"
#include "talaria/deltas.h"
#include "talaria/error.h"
#include "talaria/expand.h"
#include "talaria/fasta.h"
#include "talaria/log.h"
#include "talaria/store.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <xxhash.h>

static const char help[] =
    "Usage: talaria validate [OPTIONS] ORIGINAL REDUCED.fasta DELTAS.tal\n"
    "\n"
    "Rebuild every record of a reduction and compare it with the original (a FASTA file,\n"
    "plain, gzip, zstd or lz4, or a store), record by record in order: header and\n"
    "residues must be identical. Prints a report on stdout, one 'key: value' per line:\n"
    "record counts, the fraction rebuilt exactly, reduction ratios, and the identity and\n"
    "coverage of the members. The first record that differs is named on stderr (exit 3).\n"
    "\n"
    "      --original-results FILE  hits of a search against the original database\n"
    "      --reduced-results FILE   hits of the same search against REDUCED.fasta; with\n"
    "                               both (tabular, -outfmt 6), the reduced hits are\n"
    "                               expanded as talaria expand does and the report adds\n"
    "                               how many (query, subject) pairs of the original\n"
    "                               search they recover\n"
    "  -q, --quiet                    only errors on stderr\n"
    "  -h, --help                     this help\n"
    "\n"
    "Exit codes: 0 every record rebuilt exactly, 1 I/O error, 2 usage, 3 a record differs,\n"
    "the record counts differ, or invalid input (named by file and line or record).\n";

/* Members' identities in twentieths from 0.50 up: [0.50,0.55) ... [0.95,1.00), then 1. */
#define BINS 10

typedef struct {
    tal_dstore_t *dstore;
    tal_dinfo_t info;
    const char *original;
    uint64_t seen, exact, failed;
    char *buf;
    size_t cap;
} check_t;

typedef struct {
    uint64_t exact_identity, below, bins[BINS];
    double identity_min, identity_sum, coverage_min, coverage_sum;
} member_stats_t;

/* ---- records ---- */

static void name_mismatch(const check_t *c, uint64_t i, const char *header, size_t header_len,
                          const char *what)
{
    const char *acc;
    size_t acc_len;
    tal_dstore_accession(header, header_len, &acc, &acc_len);
    tal_log_error("%s: record %llu (%.*s) %s", c->original, (unsigned long long)i + 1,
                  (int)(acc_len > 200 ? 200 : acc_len), acc, what);
}

/* Record i of the original against record i of the reduction. Only the first mismatch
 * is named; later ones are counted with the delta store's own messages silenced, so a
 * FASTA that does not belong gives one explanation, not one per record. */
static int check_record(check_t *c, const char *header, size_t header_len, const char *seq,
                        size_t seq_len)
{
    uint64_t i = c->seen++;
    const char *what = NULL;
    tal_drec_t rec;
    size_t len;
    int rc;
    if (i >= c->info.records) {
        what = "is not in the delta store (it has fewer records)";
    } else {
        if ((rc = tal_dstore_record(c->dstore, i, &rec)) < 0) return rc;
        if (rec.header_len != header_len || memcmp(rec.header, header, header_len)) {
            what = "has a different header in the delta store";
        } else {
            tal_log_level_t level = tal_log_get_level();
            if (c->failed) tal_log_set_level(TAL_LOG_QUIET);
            rc = tal_dstore_rebuild(c->dstore, i, &c->buf, &c->cap, &len);
            tal_log_set_level(level);
            if (rc == TAL_EINPUT)
                what = "cannot be rebuilt from the reduction";
            else if (rc < 0)
                return rc;
            else if (len != seq_len || memcmp(c->buf, seq, len))
                what = "is rebuilt with different residues";
        }
    }
    if (!what) {
        c->exact++;
        return 0;
    }
    if (!c->failed) name_mismatch(c, i, header, header_len, what);
    c->failed++;
    return 0;
}

static int check_fasta(check_t *c)
{
    tal_fasta_reader_t *r;
    tal_fasta_record_t rec;
    tal_fasta_opt_t opt;
    int rc;
    tal_fasta_opt_init(&opt);
    opt.read_ahead = 1;
    if ((rc = tal_fasta_open(&r, c->original, &opt)) < 0) return rc;
    while ((rc = tal_fasta_next(r, &rec)) > 0)
        if ((rc = check_record(c, rec.header, rec.header_len, rec.seq, rec.seq_len)) < 0) break;
    tal_fasta_close(r);
    return rc;
}

static int check_store(check_t *c)
{
    tal_store_t *s;
    tal_store_info_t info;
    tal_record_t rec;
    int rc;
    if ((rc = tal_store_open(&s, c->original)) < 0) return rc;
    tal_store_info(s, &info);
    for (uint64_t id = 0; id < info.records && rc == 0; id++) {
        if ((rc = tal_store_record(s, id, &rec)) < 0) break;
        rc = check_record(c, rec.header, rec.header_len, rec.seq, rec.seq_len);
    }
    tal_store_close(s);
    return rc;
}

/* Records of the delta store past the end of the original. */
static int check_extra(check_t *c)
{
    tal_drec_t rec;
    int rc;
    if (c->seen >= c->info.records) return 0;
    if ((rc = tal_dstore_record(c->dstore, c->seen, &rec)) < 0) return rc;
    if (!c->failed) {
        const char *acc;
        size_t acc_len;
        tal_dstore_accession(rec.header, rec.header_len, &acc, &acc_len);
        tal_log_error("%s: has %llu records, the delta store %llu; record %llu (%.*s) of %s is not "
                      "in the original",
                      c->original, (unsigned long long)c->seen, (unsigned long long)c->info.records,
                      (unsigned long long)c->seen + 1, (int)(acc_len > 200 ? 200 : acc_len), acc,
                      tal_dstore_path(c->dstore));
    }
    c->failed += c->info.records - c->seen;
    return 0;
}

/* Identity in twentieths; the float of k/20 may sit just below it, so nudge it up. */
static int identity_bin(float identity)
{
    double v = floor(((double)identity + 1e-7) * 20.0);
    return v >= 20.0 ? BINS : v < 10.0 ? -1 : (int)v - 10;
}

static int member_stats(const check_t *c, member_stats_t *m)
{
    tal_drec_t rec;
    int rc, members = 0;
    memset(m, 0, sizeof *m);
    for (uint64_t i = 0; i < c->info.records; i++) {
        int bin;
        if ((rc = tal_dstore_record(c->dstore, i, &rec)) < 0) return rc;
        if (rec.flags & TAL_DREC_REFERENCE) continue;
        bin = identity_bin(rec.identity);
        if (bin == BINS)
            m->exact_identity++;
        else if (bin < 0)
            m->below++;
        else
            m->bins[bin]++;
        if (!members++ || rec.identity < m->identity_min) m->identity_min = rec.identity;
        if (members == 1 || rec.coverage < m->coverage_min) m->coverage_min = rec.coverage;
        m->identity_sum += rec.identity;
        m->coverage_sum += rec.coverage;
    }
    return 0;
}

/* ---- hit recovery ---- */

/* The distinct (query, subject) pairs of a search, as "QUERY\tSUBJECT" keys. */
typedef struct {
    uint64_t hash, key_off;
    uint32_t key_len, found; /* key_len 0: an empty slot */
} pair_slot_t;

typedef struct {
    pair_slot_t *slots;
    size_t mask, count, recovered;
    char *keys;
    size_t keys_len, keys_cap;
    char *scratch; /* the key of an expanded hit */
    size_t scratch_cap;
} pairset_t;

static pair_slot_t *pair_slot(pairset_t *p, const char *key, size_t len, uint64_t hash)
{
    for (size_t at = (size_t)hash & p->mask;; at = (at + 1) & p->mask) {
        pair_slot_t *s = &p->slots[at];
        if (!s->key_len ||
            (s->hash == hash && s->key_len == len && !memcmp(p->keys + s->key_off, key, len)))
            return s;
    }
}

static int pairset_grow(pairset_t *p)
{
    size_t size = p->slots ? (p->mask + 1) * 2 : 1024;
    pair_slot_t *old = p->slots, *fresh = calloc(size, sizeof *fresh);
    size_t old_size = p->slots ? p->mask + 1 : 0;
    if (!fresh) return TAL_ENOMEM;
    p->slots = fresh;
    p->mask = size - 1;
    for (size_t i = 0; i < old_size; i++) {
        if (!old[i].key_len) continue;
        for (size_t at = (size_t)old[i].hash & p->mask;; at = (at + 1) & p->mask) {
            if (!fresh[at].key_len) {
                fresh[at] = old[i];
                break;
            }
        }
    }
    free(old);
    return 0;
}

static int pairset_add(pairset_t *p, const char *key, size_t len)
{
    uint64_t hash = XXH3_64bits(key, len);
    pair_slot_t *s;
    int rc;
    if (len > UINT32_MAX) return TAL_EINPUT;
    if ((p->count + 1) * 2 > (p->slots ? p->mask + 1 : 0) && (rc = pairset_grow(p)) < 0) return rc;
    s = pair_slot(p, key, len, hash);
    if (s->key_len) return 0;
    if (p->keys_len + len > p->keys_cap) {
        size_t cap = p->keys_cap ? p->keys_cap : 1 << 16;
        char *k;
        while (cap < p->keys_len + len) cap *= 2;
        if (!(k = realloc(p->keys, cap))) return TAL_ENOMEM;
        p->keys = k;
        p->keys_cap = cap;
    }
    memcpy(p->keys + p->keys_len, key, len);
    s->hash = hash;
    s->key_off = p->keys_len;
    s->key_len = (uint32_t)len;
    p->keys_len += len;
    p->count++;
    return 0;
}

static void pairset_free(pairset_t *p)
{
    free(p->slots);
    free(p->keys);
    free(p->scratch);
}

/* A hit of the original search: its pair, "QUERY\tSUBJECT". */
static int add_pair(void *arg, const tal_hit_t *hit)
{
    return hit->subject ? pairset_add(arg, hit->line, hit->rest_at) : 0;
}

static int load_pairs(pairset_t *p, const char *path)
{
    FILE *f = fopen(path, "r");
    int rc;
    if (!f) {
        tal_log_error("cannot open %s: %s", path, strerror(errno));
        return TAL_EIO;
    }
    rc = tal_hits_read(f, path, add_pair, p);
    fclose(f);
    return rc;
}

/* An expanded hit of the reduced search: marks its pair found. */
static int mark_pair(void *arg, const tal_hit_t *hit)
{
    pairset_t *p = arg;
    size_t len = hit->subject_at + hit->subject_len;
    pair_slot_t *s;
    if (!hit->subject || !p->count) return 0;
    if (len > p->scratch_cap) {
        char *b = realloc(p->scratch, len * 2);
        if (!b) return TAL_ENOMEM;
        p->scratch = b;
        p->scratch_cap = len * 2;
    }
    memcpy(p->scratch, hit->line, hit->subject_at);
    memcpy(p->scratch + hit->subject_at, hit->subject, hit->subject_len);
    s = pair_slot(p, p->scratch, len, XXH3_64bits(p->scratch, len));
    if (s->key_len && !s->found) {
        s->found = 1;
        p->recovered++;
    }
    return 0;
}

static int hit_recovery(tal_dstore_t *dstore, const char *original, const char *reduced,
                        pairset_t *p)
{
    tal_expander_t *x;
    FILE *f;
    int rc;
    if ((rc = load_pairs(p, original)) < 0) return rc;
    if (!(f = fopen(reduced, "r"))) {
        tal_log_error("cannot open %s: %s", reduced, strerror(errno));
        return TAL_EIO;
    }
    if ((rc = tal_expander_create(&x, dstore, 0, mark_pair, p)) == 0) {
        rc = tal_expander_feed_file(x, f, reduced);
        if (rc == 0) tal_expander_warn(x, reduced);
        tal_expander_free(x);
    }
    fclose(f);
    return rc;
}

/* ---- report ---- */

static double ratio(uint64_t num, uint64_t den) { return den ? (double)num / (double)den : 0.0; }

static void print_report(const check_t *c, const member_stats_t *m, const pairset_t *hits)
{
    uint64_t total = c->seen > c->info.records ? c->seen : c->info.records;
    printf("records: %llu\nreferences: %llu\nmembers: %llu\n", (unsigned long long)c->info.records,
           (unsigned long long)c->info.references, (unsigned long long)c->info.members);
    printf("records_original: %llu\nrecords_exact: %llu\n", (unsigned long long)c->seen,
           (unsigned long long)c->exact);
    printf("sequence_coverage: %.6f\n", total ? ratio(c->exact, total) : 1.0);
    printf("reduction_ratio_records: %.6f\n", ratio(c->info.records, c->info.references));
    printf("reduction_ratio_residues: %.6f\n", ratio(c->info.residues, c->info.reference_residues));
    printf("identity_1.00: %llu\n", (unsigned long long)m->exact_identity);
    for (int b = BINS - 1; b >= 0; b--)
        printf("identity_ge_0.%02d: %llu\n", 50 + 5 * b, (unsigned long long)m->bins[b]);
    printf("identity_lt_0.50: %llu\n", (unsigned long long)m->below);
    if (c->info.members) {
        double n = (double)c->info.members;
        printf("identity_min: %.6f\nidentity_mean: %.6f\ncoverage_min: %.6f\ncoverage_mean: %.6f\n",
               m->identity_min, m->identity_sum / n, m->coverage_min, m->coverage_sum / n);
    } else {
        printf("identity_min: NA\nidentity_mean: NA\ncoverage_min: NA\ncoverage_mean: NA\n");
    }
    if (hits) {
        printf("hits_original: %llu\nhits_recovered: %llu\n", (unsigned long long)hits->count,
               (unsigned long long)hits->recovered);
        printf("hit_recovery: %.6f\n", hits->count ? ratio(hits->recovered, hits->count) : 1.0);
    }
}

int cmd_validate(int argc, char **argv)
{
    enum { OPT_ORIGINAL_RESULTS = 256, OPT_REDUCED_RESULTS };
    static const struct option longopts[] = {
        {"original-results", required_argument, NULL, OPT_ORIGINAL_RESULTS},
        {"reduced-results", required_argument, NULL, OPT_REDUCED_RESULTS},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *original_hits = NULL, *reduced_hits = NULL;
    check_t c;
    member_stats_t m;
    pairset_t pairs;
    struct stat sb;
    int opt, rc;
    memset(&c, 0, sizeof c);
    memset(&pairs, 0, sizeof pairs);
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_ORIGINAL_RESULTS: original_hits = optarg; break;
        case OPT_REDUCED_RESULTS: reduced_hits = optarg; break;
        case 'q': cli_quieter(); break;
        case 'h': fputs(help, stdout); return 0;
        default:
            return cli_usage_error("validate", "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        }
    }
    if (argc - optind < 3)
        return cli_usage_error("validate", "needs ORIGINAL, REDUCED.fasta and DELTAS.tal");
    if (argc - optind > 3)
        return cli_usage_error("validate", "unexpected argument '%s'", argv[optind + 3]);
    if (!original_hits != !reduced_hits)
        return cli_usage_error("validate", "--original-results and --reduced-results go together");
    c.original = argv[optind];
    if ((rc = tal_dstore_open(&c.dstore, argv[optind + 2], argv[optind + 1], 1)) < 0)
        return cli_exit(rc);
    tal_dstore_info(c.dstore, &c.info);
    if (strcmp(c.original, "-") && stat(c.original, &sb) == 0 && S_ISDIR(sb.st_mode))
        rc = check_store(&c);
    else
        rc = check_fasta(&c);
    if (rc == 0) rc = check_extra(&c);
    if (rc == 0) rc = member_stats(&c, &m);
    if (rc == 0 && original_hits) rc = hit_recovery(c.dstore, original_hits, reduced_hits, &pairs);
    if (rc == 0) {
        print_report(&c, &m, original_hits ? &pairs : NULL);
        if (fflush(stdout) != 0) {
            tal_log_error("cannot write to stdout: %s", strerror(errno));
            rc = TAL_EIO;
        }
    }
    if (rc == 0 && c.failed) {
        tal_log_error("%llu of %llu records differ from their rebuild from %s and %s",
                      (unsigned long long)c.failed,
                      (unsigned long long)(c.seen > c.info.records ? c.seen : c.info.records),
                      argv[optind + 1], argv[optind + 2]);
        rc = TAL_EINPUT;
    }
    pairset_free(&pairs);
    free(c.buf);
    tal_dstore_close(c.dstore);
    return cli_exit(rc);
}
