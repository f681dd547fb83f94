/* talaria reduce: reference sequences to a FASTA file, every other sequence as a delta
 * against its reference (the delta store), the membership as TSV and optionally as a
 * CD-HIT .clstr file. All outputs are written beside their final paths under temporary
 * names and renamed into place only when every one of them is complete. */
#define _GNU_SOURCE
#include "cli.h"
#include "reduce/cluster_internal.h"
#include "reduce/delta_internal.h"
#include "mem/sorter_internal.h"
#include "reduce/dstore_internal.h"
#include "store/format_internal.h"
#include "store/store_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/scan.h"
#include "talaria/store.h"
#include "talaria/util.h"
#include "util/files_internal.h"

#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    "  BASE.members.tsv      member, reference, identity, coverage (--membership)\n"
    "\n"
    "  -i, --input PATH      FASTA (plain/gz/zst/lz4) or a store built by 'talaria index'\n"
    "  -o, --output PATH     the reduced FASTA\n"
    "  -m, --deltas PATH     the delta store (default BASE.deltas.tal)\n"
    "      --membership PATH the membership TSV (default BASE.members.tsv)\n"
    "      --clstr PATH      also write the clusters in CD-HIT's .clstr format\n"
    "      --identity F      minimum identity, 0 < F <= 1 (default 0.9)\n"
    "      --coverage F      minimum coverage of the member, 0 < F <= 1 (default 0.8)\n"
    "  -r, --ratio R         aim at R x N references instead (0 < R <= 1): the highest\n"
    "                        identity (down to 0.30) that gives at most that many\n"
    "  -a, --aligner NAME    preset for the aligner the output is for: diamond, mmseqs2,\n"
    "                        blast, lambda, kraken or generic (see below)\n"
    "  -t, --threads N       threads (default 1)\n"
    "      --tmp-dir DIR     scratch space: the indexed input, sort runs, candidates\n"
    "                        (default $TMPDIR or /tmp)\n"
    CLI_MEM_HELP
    "  -f, --force           replace existing outputs\n"
    "  -q, --quiet           only errors on stderr\n"
    "  -v, --verbose         more detail on stderr\n"
    "  -h, --help            this help\n"
    "\n"
    "Presets (identity / coverage unless given; side file BASE.taxid.tsv from OX=, TaxID=\n"
    "or taxid tags in the headers):\n"
    "  diamond  0.90 / 0.80, taxid map for 'diamond makedb --taxonmap'\n"
    "  mmseqs2  0.90 / 0.80, accession-taxid for 'mmseqs createtaxdb --tax-mapping-file'\n"
    "  blast    0.90 / 0.90, 'accession taxid' for 'makeblastdb -taxid_map'\n"
    "  lambda   0.90 / 0.80, accession-taxid map for 'lambda3 mkindexp --acc-tax-map'\n"
    "  kraken   0.95 / 0.90, headers tagged '|kraken:taxid|N' for kraken2-build\n"
    "  generic  0.90 / 0.80, no side file\n"
    "\n"
    "Exit codes: 0 done, 1 runtime or I/O failure, 2 usage, 3 invalid input.\n";

typedef enum { P_GENERIC, P_DIAMOND, P_MMSEQS2, P_BLAST, P_LAMBDA, P_KRAKEN } preset_t;

static const struct {
    const char *name;
    double identity, coverage;
} presets[] = {{"generic", 0.9, 0.8}, {"diamond", 0.9, 0.8}, {"mmseqs2", 0.9, 0.8},
               {"blast", 0.9, 0.9},   {"lambda", 0.9, 0.8},  {"kraken", 0.95, 0.9}};

typedef struct {
    /* options */
    const char *in, *out, *deltas, *members, *clstr, *tmpdir;
    double identity, coverage, ratio;
    int identity_set, coverage_set, threads, force, quiet;
    preset_t preset;
    /* state */
    char *scratch;            /* our directory under --tmp-dir */
    tal_store_t *store;
    tal_store_info_t info;
    const uint64_t *lens, *offsets, *checksums;
    uint64_t *own_offsets;    /* compressed input: offsets into the decoded file */
    int seq_fd;               /* the raw residues: read with pread, never mapped */
    char *buf;                /* the caller's thread's read buffer */
    size_t buf_cap;
    int delta_fd;
    FILE *delta_out;
    uint64_t delta_used;
    int result_fd;            /* a member_t per record id, on disk: not in memory */
    cli_mem_t mem;
    uint64_t sort_bytes;      /* the plan: each sorter's buffer */
    uint64_t held_input;      /* reserved for the store's mapped arrays and the scan */
    double started, last_progress;
    const char *stage;
    int progress_shown;
} reduce_t;

/* ---- small helpers ---- */

static char *base_of(const char *out)
{
    static const char *exts[] = {".fasta", ".fa", ".faa", ".fna", ".fas"};
    size_t len = strlen(out);
    for (size_t i = 0; i < sizeof exts / sizeof *exts; i++) {
        size_t e = strlen(exts[i]);
        if (len > e && !strcmp(out + len - e, exts[i])) return strndup(out, len - e);
    }
    return strdup(out);
}

static void progress(void *ctx, const char *stage, uint64_t done, uint64_t total)
{
    reduce_t *x = ctx;
    double now = tal_now_seconds();
    if (x->quiet) return;
    if (x->stage != stage) {
        x->stage = stage;
        tal_log_info("%s (%.1f s)", stage, now - x->started);
    }
    if (!isatty(2) || (now - x->last_progress < 0.5 && done != total)) return;
    x->last_progress = now;
    fprintf(stderr, "\r\033[Ktalaria reduce: %s %llu/%llu (%.0f%%), %.1f s", stage,
            (unsigned long long)done, (unsigned long long)total,
            total ? 100.0 * (double)done / (double)total : 100.0, now - x->started);
    x->progress_shown = 1;
}

static void progress_end(reduce_t *x)
{
    if (x->progress_shown) fputs("\r\033[K", stderr);
    x->progress_shown = 0;
}

/* The taxid in a header: OX=N (UniProt), TaxID=N (UniRef), taxid|N| or taxid=N. */
static long header_taxid(const char *h, size_t len)
{
    static const char *tags[] = {"OX=", "TaxID=", "taxid|", "taxid=", "tax_id="};
    for (size_t t = 0; t < sizeof tags / sizeof *tags; t++) {
        size_t tl = strlen(tags[t]);
        for (size_t i = 0; i + tl < len; i++) {
            if (memcmp(h + i, tags[t], tl) || (i && isalnum((unsigned char)h[i - 1]))) continue;
            if (!isdigit((unsigned char)h[i + tl])) continue;
            return strtol(h + i + tl, NULL, 10);
        }
    }
    return -1;
}

/* ---- input ---- */

static int make_scratch(reduce_t *x)
{
    const char *dir = x->tmpdir ? x->tmpdir : getenv("TMPDIR");
    struct stat st;
    if (!dir || !*dir) dir = "/tmp";
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        tal_log_error("--tmp-dir %s is not a directory", dir);
        return TAL_EIO;
    }
    if (asprintf(&x->scratch, "%s/talaria-reduce-XXXXXX", dir) < 0) return TAL_ENOMEM;
    if (!mkdtemp(x->scratch)) {
        tal_log_error("cannot create a scratch directory in %s: %s", dir, strerror(errno));
        free(x->scratch);
        x->scratch = NULL;
        return TAL_EIO;
    }
    tal_cleanup_extra_add(x->scratch, 1);
    return 0;
}

static int open_input(reduce_t *x)
{
    struct stat st;
    int rc;
    if (stat(x->in, &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = tal_store_open(&x->store, x->in);
    } else {
        tal_index_opt_t opt;
        tal_build_stats_t bs;
        char *path;
        tal_index_opt_init(&opt);
        opt.threads = x->threads;
        opt.budget = x->mem.budget;
        opt.low_memory = x->mem.low_memory;
        opt.progress = !x->quiet && isatty(2);
        if (asprintf(&path, "%s/input.tal", x->scratch) < 0) return TAL_ENOMEM;
        progress(x, "reading the input", 0, 0);
        rc = tal_store_build(x->in, path, &opt, &bs);
        if (rc == 0) rc = tal_store_open(&x->store, path);
        free(path);
    }
    if (rc < 0) return rc;
    tal_store_info(x->store, &x->info);
    return 0;
}

/* Header pages read so far leave the resident set (the page cache keeps them). */
static void release_headers(const reduce_t *x)
{
    tal_store_release_(x->store, TAL_SEC_HEADERS);
    tal_store_release_(x->store, TAL_SEC_HDR_OFFSETS);
}

/* Residues are read with pread from the store's residue file (raw stores) or from a
 * decoded copy in the scratch directory (compressed stores), never through a mapping:
 * the page cache holds them, not this process. Every record's checksum is checked on
 * the way, in one streaming pass. */
static int read_residues(void *ctx, uint64_t id, char **buf, size_t *cap, const char **seq)
{
    const reduce_t *x = ctx;
    size_t len = (size_t)x->lens[id], at = 0;
    if (len + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < len + 1) c *= 2;
        char *p = realloc(*buf, c);
        if (!p) return TAL_ENOMEM;
        *buf = p;
        *cap = c;
    }
    while (at < len) {
        ssize_t k = pread(x->seq_fd, *buf + at, len - at, (off_t)(x->offsets[id] + at));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            tal_log_error("%s: cannot read record %llu's residues: %s", x->in, (unsigned long long)id + 1,
                          k < 0 ? strerror(errno) : "file shorter than the store says");
            return k < 0 ? TAL_EIO : TAL_EINPUT;
        }
        at += (size_t)k;
    }
    *seq = *buf;
    return 0;
}

static int prepare_scan(reduce_t *x);

static int prepare_source(reduce_t *x)
{
    uint64_t n = x->info.records;
    int rc;
    /* for the scan: the checksums and the scan's windows */
    uint64_t scan_bytes = 8 * (n + 1) + 3 * ((uint64_t)4 << 20);
    if ((rc = tal_budget_reserve(x->mem.budget, TAL_MEM_INPUT, scan_bytes)) < 0) return rc;
    rc = prepare_scan(x);
    tal_budget_release(x->mem.budget, TAL_MEM_INPUT, scan_bytes);
    return rc;
}

static int prepare_scan(reduce_t *x)
{
    uint64_t n = x->info.records, at = 0;
    int rc = 0, raw = !strcmp(x->info.codec, "none");
    FILE *f = NULL;
    char path[4200];
    const void *sums;
    size_t sums_size;
    tal_scan_t *scan = NULL;
    tal_scan_opt_t so;
    tal_scan_block_t b;
    if (tal_store_lengths(x->store, &x->lens) < 0) return TAL_EINPUT;
    if (!tal_store_section_(x->store, TAL_SEC_RECORD_CHECKSUMS, &sums, &sums_size) || sums_size < n * 8)
        return TAL_EINPUT;
    x->checksums = sums;
    if (raw) {
        if ((rc = tal_store_residue_file_(x->store, path, sizeof path, &x->offsets)) < 0) return rc;
        for (uint64_t i = 0; i < n; i++)
            if (x->offsets[i + 1] < x->offsets[i] || x->offsets[i + 1] - x->offsets[i] != x->lens[i])
                return tal_store_corrupt_(x->store, "record offsets and lengths disagree");
    } else {
        int fd;
        snprintf(path, sizeof path, "%s/residues", x->scratch);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || !(f = fdopen(fd, "w"))) {
            tal_log_error("cannot create %s: %s", path, strerror(errno));
            if (fd >= 0) close(fd);
            return TAL_EIO;
        }
        setvbuf(f, NULL, _IOFBF, 1u << 20);
        if (!(x->own_offsets = malloc((size_t)(n + 1) * sizeof *x->own_offsets))) rc = TAL_ENOMEM;
        x->offsets = x->own_offsets;
    }
    tal_scan_opt_init(&so);
    so.threads = x->threads > 1 ? 2 : 1;
    so.headers = 1; /* the checksums read every header: their pages go as well */
    so.budget = x->mem.budget;
    if (rc == 0) rc = tal_scan_open(&scan, x->store, &so);
    while (rc == 0 && (rc = tal_scan_next(scan, &b)) > 0) {
        for (uint64_t i = b.first_record; i < b.first_record + b.record_count && rc >= 0; i++) {
            tal_record_t rec;
            if ((rc = tal_scan_record(scan, &b, i, &rec)) < 0) break;
            if (raw) continue;
            x->own_offsets[i] = at;
            if (rec.seq_len && fwrite(rec.seq, 1, rec.seq_len, f) != rec.seq_len) {
                tal_log_error("cannot write %s: %s", path, strerror(errno));
                rc = TAL_EIO;
            }
            at += rec.seq_len;
        }
        progress(x, "checking the input", b.first_record + b.record_count, n);
        tal_scan_release(scan, &b);
        if (rc > 0) rc = 0;
    }
    if (scan) tal_scan_close(scan);
    if (rc > 0) rc = 0;
    release_headers(x);
    tal_store_release_(x->store, TAL_SEC_RECORD_CHECKSUMS);
    if (!raw) {
        x->own_offsets[n] = at;
        if (rc == 0 && fflush(f) != 0) {
            tal_log_error("cannot write %s: %s", path, strerror(errno));
            rc = TAL_EIO;
        }
        fclose(f);
    }
    if (rc == 0) {
        x->seq_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (x->seq_fd < 0) {
            tal_log_error("cannot open %s: %s", path, strerror(errno));
            rc = TAL_EIO;
        }
    }
    return rc;
}

/* ---- clustering ----
 * What each member needs at the end (its alignment's identity and coverage, where its
 * delta is) goes to a file of fixed slots by record id as it is decided, and is read
 * back in record order while writing: memory holds 4 bytes a record (its reference),
 * not 24. References' slots stay zero (a hole in the file). */
typedef struct {
    float identity, coverage;
    uint64_t delta_off;
    uint32_t delta_len, flags; /* flags: M_* */
} member_t;

enum { M_ALIGNED = 1, M_IDENTICAL = 2 /* an exact copy of its reference: no delta */ };

#define SLOTS_READ 4096 /* member_t slots read at once while writing */

static int result_io(const reduce_t *x, member_t *m, size_t count, uint64_t id, int write)
{
    size_t bytes = count * sizeof *m, at = 0;
    off_t where = (off_t)(id * sizeof *m);
    while (at < bytes) {
        ssize_t k = write ? pwrite(x->result_fd, (const char *)m + at, bytes - at, where + (off_t)at)
                          : pread(x->result_fd, (char *)m + at, bytes - at, where + (off_t)at);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            tal_log_error("cannot %s the member list in %s: %s", write ? "write" : "read", x->scratch,
                          k < 0 ? strerror(errno) : "file too short");
            return TAL_EIO;
        }
        at += (size_t)k;
    }
    return 0;
}

static int on_member(void *ctx, uint64_t member, uint64_t ref, const void *alignment)
{
    reduce_t *x = ctx;
    const tal_alignment_t *al = alignment;
    member_t m = {(float)al->identity, (float)al->coverage, x->delta_used, 0, M_ALIGNED};
    (void)ref;
    if (al->delta_len > UINT32_MAX) return TAL_EUSAGE;
    m.delta_len = (uint32_t)al->delta_len;
    if (al->delta_len && fwrite(al->delta, 1, al->delta_len, x->delta_out) != al->delta_len) {
        tal_log_error("cannot write to %s: %s", x->scratch, strerror(errno));
        return TAL_EIO;
    }
    x->delta_used += al->delta_len;
    return result_io(x, &m, 1, member, 1);
}

/* Exact copies share their first copy's delta, or are their reference's copy. */
static int on_copy(void *ctx, uint64_t member, uint64_t first, uint64_t ref)
{
    reduce_t *x = ctx;
    member_t m = {1.0f, 1.0f, 0, 0, M_IDENTICAL};
    int rc;
    if (first != ref && (rc = result_io(x, &m, 1, first, 0)) < 0) return rc;
    return result_io(x, &m, 1, member, 1);
}

/* ---- the memory plan ----
 * What the run holds at once, from the record count (per-record arrays), the threads
 * (each worker's share) and the longest sequence (the largest single alignment); the
 * rest of the cap goes to the two sorters that are alive together. Before the input is
 * indexed the record count is estimated from the first MiB of the FASTA. */
#define SORT_DEFAULT ((uint64_t)128 << 20)
#define HEADER_WINDOW ((uint64_t)8 << 20) /* header pages touched between releases */

static int plan_memory(reduce_t *x, int exact)
{
    tal_budget_t *b = x->mem.budget;
    uint64_t cap = x->mem.cap, n, max_len, fixed, need, room, index_need = 0;
    int threads = x->threads;
    if (exact) {
        n = x->info.records;
        max_len = x->info.max_length;
    } else {
        struct stat st;
        if (stat(x->in, &st) == 0 && S_ISDIR(st.st_mode)) return 0; /* a store: planned once open */
        n = tal_index_estimate(x->in);
        max_len = 8192; /* unknown yet: as long as the largest alignment allowed */
        index_need = tal_index_plan(x->in, &(tal_index_opt_t){.threads = x->threads, .budget = b,
                                                                 .low_memory = x->mem.low_memory});
    }
    /* the store's lengths, offsets and checksums, mapped or copied, and the scan */
    x->held_input = exact ? 16 * (n + 1) : 0; /* lengths and offsets, for the whole run */
    fixed = tal_budget_used(b, TAL_MEM_COMPONENTS) + 16 * (n + 1) + 3 * ((uint64_t)4 << 20);
    /* clustering; later the references by id and the reference index (8), and for
     * --clstr the members by cluster (4 more and 4 per reference) */
    fixed += TAL_CLUSTER_BYTES_PER_RECORD * (n + 1);
    fixed += (uint64_t)threads * TAL_CLUSTER_WORKER_BYTES + ((uint64_t)2 << 20);
    fixed += tal_align_bytes(max_len, max_len, TAL_CLUSTER_MAX_CELLS);
    fixed += HEADER_WINDOW + ((uint64_t)8 << 20); /* header pages, output buffers */
    need = fixed + 2 * TAL_SORTER_MIN_BUFFER;
    if (need < tal_budget_used(b, TAL_MEM_COMPONENTS) + index_need) need = tal_budget_used(b, TAL_MEM_COMPONENTS) + index_need;
    if (cap && need > cap)
        return cli_mem_too_small("reduce", &x->mem, need + need / 16,
                                 exact ? "per-record arrays, workers and sort buffers"
                                       : "per-record arrays, workers and sort buffers, estimated");
    room = cap ? (cap - fixed) / 2 : SORT_DEFAULT;
    x->sort_bytes = x->mem.low_memory ? TAL_SORTER_MIN_BUFFER : room < SORT_DEFAULT ? room : SORT_DEFAULT;
    if (exact) {
        if (tal_budget_reserve(b, TAL_MEM_INPUT, x->held_input) < 0) {
            x->held_input = 0;
            return cli_mem_too_small("reduce", &x->mem, tal_budget_refused(b) + need / 16, "the store's arrays");
        }
        tal_log_debug("memory plan: %llu records, fixed %llu MiB, sort buffers 2 x %llu MiB",
                      (unsigned long long)n, (unsigned long long)(fixed >> 20),
                      (unsigned long long)(x->sort_bytes >> 20));
    }
    return 0;
}

/* One pass at identity for -r: whether it keeps at most target references. */
static int try_identity(tal_cluster_opt_t *opt, tal_cluster_prep_t *prep, tal_cluster_t *c, double identity,
                        uint64_t target, int *fits)
{
    int rc;
    opt->identity = identity;
    if ((rc = tal_cluster_decide(prep, opt, c)) < 0) return rc;
    *fits = c->references <= target;
    tal_log_info("-r: identity %.4f gives %s%llu references (target %llu)", identity, c->stopped ? "more than " : "",
                 (unsigned long long)(c->stopped ? target : c->references), (unsigned long long)target);
    tal_cluster_free(c);
    return 0;
}

static int cluster(reduce_t *x, tal_cluster_t *c)
{
    tal_cluster_opt_t opt;
    tal_cluster_prep_t *prep = NULL;
    uint64_t n = x->info.records;
    int rc;
    char *path;
    tal_seq_source_t src = {read_residues, x};
    tal_cluster_opt_init(&opt, x->info.alphabet == TAL_ALPHABET_NUCLEOTIDE);
    opt.coverage = x->coverage;
    opt.threads = x->threads;
    opt.progress = progress;
    opt.ctx = x;
    opt.budget = x->mem.budget;
    opt.tmp_dir = x->scratch;
    opt.sort_bytes = x->sort_bytes;
    opt.ref_only = 1;
    /* ranks, copies and candidates do not depend on the thresholds: once */
    if ((rc = tal_cluster_prepare(&opt, n, &src, x->lens, &prep)) < 0) return rc;
    if (x->ratio > 0) {
        /* the highest identity whose reference count is within R x N: halving [0.30, 1]
         * six times. The floor is tried only once the middle gives too many, and a pass
         * stops as soon as it has more references than the target. */
        double lo = 0.30, hi = 1.0, best = -1;
        uint64_t target = (uint64_t)(x->ratio * (double)n + 0.5);
        if (target < 1) target = 1;
        opt.stop_above = target;
        for (int step = 1; step < 7; step++) {
            double mid = (lo + hi) / 2;
            int fits;
            if ((rc = try_identity(&opt, prep, c, mid, target, &fits)) < 0) goto out;
            if (fits) {
                best = lo = mid;
                continue;
            }
            hi = mid;
            if (step == 1) {
                if ((rc = try_identity(&opt, prep, c, lo, target, &fits)) < 0) goto out;
                if (!fits) break;
                best = lo;
            }
        }
        opt.stop_above = 0;
        if (best < 0) {
            tal_log_warn("-r %.3g: even identity 0.30 keeps more than %llu references; using 0.30",
                         x->ratio, (unsigned long long)target);
            best = 0.30;
        }
        x->identity = best;
    }
    opt.identity = x->identity;
    opt.on_member = on_member;
    opt.on_copy = on_copy;
    if (asprintf(&path, "%s/members", x->scratch) < 0) {
        rc = TAL_ENOMEM;
        goto out;
    }
    x->result_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (x->result_fd < 0 || ftruncate(x->result_fd, (off_t)((n + 1) * sizeof(member_t))) < 0) {
        tal_log_error("cannot create %s: %s", path, strerror(errno));
        free(path);
        rc = TAL_EIO;
        goto out;
    }
    free(path);
    if (asprintf(&path, "%s/deltas", x->scratch) < 0) {
        rc = TAL_ENOMEM;
        goto out;
    }
    x->delta_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (x->delta_fd < 0 || !(x->delta_out = fdopen(dup(x->delta_fd), "w"))) {
        tal_log_error("cannot create %s: %s", path, strerror(errno));
        free(path);
        rc = TAL_EIO;
        goto out;
    }
    free(path);
    setvbuf(x->delta_out, NULL, _IOFBF, 1u << 20);
    if ((rc = tal_cluster_decide(prep, &opt, c)) < 0) goto out;
    if (fflush(x->delta_out) != 0 || ferror(x->delta_out)) {
        tal_log_error("cannot write to %s: %s", x->scratch, strerror(errno));
        rc = TAL_EIO;
    }
out:
    tal_cluster_prep_free(prep);
    return rc;
}

/* ---- outputs ---- */


static void write_accession(FILE *f, const char *h, size_t len)
{
    const char *acc;
    size_t acc_len;
    tal_dstore_accession(h, len, &acc, &acc_len);
    fwrite(acc, 1, acc_len, f);
}

static int write_outputs(reduce_t *x, const tal_cluster_t *c, char *deltas_path, char *members_path,
                         char *taxid_path)
{
    uint64_t n = x->info.records, R = c->references, fasta_at = 0, k = 0, clstr_held = 0;
    uint32_t *ref_index = NULL;
    uint32_t *mstart = NULL, *mlist = NULL;
    uint64_t held = (n + 1) * 4 + SLOTS_READ * sizeof(member_t);
    member_t *slots = NULL;
    tal_outfile_t fasta = {0}, members = {0}, clstr = {0}, taxid = {0};
    tal_dwriter_t *dw = NULL;
    char *dtmp = NULL;
    long missing_taxid = 0;
    int rc, nucleotide = x->info.alphabet == TAL_ALPHABET_NUCLEOTIDE;
    tal_dlayout_t layout;

    /* the reference index and the member slots read at a time (the checksums' pages
     * go with the header pages, in the header window) */
    if ((rc = tal_budget_reserve(x->mem.budget, TAL_MEM_RECORDS, held)) < 0) return rc;
    if (!(ref_index = malloc((size_t)(n + 1) * sizeof *ref_index)) || !(slots = malloc(SLOTS_READ * sizeof *slots))) {
        free(ref_index);
        tal_budget_release(x->mem.budget, TAL_MEM_RECORDS, held);
        return TAL_ENOMEM;
    }
    for (uint64_t i = 0; i < n; i++) ref_index[i] = c->ref[i] == i ? (uint32_t)k++ : UINT32_MAX;
    if ((rc = tal_outfile_open(&fasta, x->out, x->force)) < 0) goto fail;
    if ((rc = tal_outfile_open(&members, members_path, x->force)) < 0) goto fail;
    if (x->clstr && (rc = tal_outfile_open(&clstr, x->clstr, x->force)) < 0) goto fail;
    if (taxid_path && (rc = tal_outfile_open(&taxid, taxid_path, x->force)) < 0) goto fail;
    if (asprintf(&dtmp, "%s.tmp-%d", deltas_path, (int)getpid()) < 0) goto nomem;
    tal_cleanup_extra_add(dtmp, 0);
    layout = (tal_dlayout_t){n,           R,           x->info.header_bytes, x->delta_used, x->identity, x->coverage,
                             nucleotide,  x->out,      x->mem.budget,        x->scratch,     x->sort_bytes};
    if ((rc = tal_dwriter_open(&dw, dtmp, &layout)) < 0) goto fail;
    fprintf(members.f, "#member\treference\tidentity\tcoverage\n");
    if (taxid.f) {
        if (x->preset == P_DIAMOND) fprintf(taxid.f, "accession\taccession.version\ttaxid\tgi\n");
        else if (x->preset == P_MMSEQS2 || x->preset == P_LAMBDA) fprintf(taxid.f, "#accession\ttaxid\n");
    }

    /* references: the reduced FASTA, in input order */
    progress(x, "writing", 0, n);
    for (uint64_t i = 0; i < n; i++) {
        tal_record_t rec;
        tal_dref_t dref;
        const char *seq;
        uint64_t len = x->lens[i], start = fasta_at;
        long tax;
        if ((i & 4095) == 0) release_headers(x);
        if (c->ref[i] != i) continue;
        if ((rc = tal_store_header_(x->store, i, &rec.header, &rec.header_len)) < 0) goto fail;
        if ((rc = read_residues(x, i, &x->buf, &x->buf_cap, &seq)) < 0) goto fail;
        tax = x->preset != P_GENERIC ? header_taxid(rec.header, rec.header_len) : -1;
        if (x->preset != P_GENERIC && tax < 0) missing_taxid++;
        fputc('>', fasta.f);
        if (x->preset == P_KRAKEN && tax >= 0) {
            const char *acc;
            size_t acc_len;
            tal_dstore_accession(rec.header, rec.header_len, &acc, &acc_len);
            fasta_at += (uint64_t)fprintf(fasta.f, "%.*s|kraken:taxid|%ld", (int)(acc + acc_len - rec.header),
                                          rec.header, tax);
            fwrite(acc + acc_len, 1, rec.header_len - (size_t)(acc + acc_len - rec.header), fasta.f);
            fasta_at += rec.header_len - (size_t)(acc + acc_len - rec.header) + 1;
        } else {
            fwrite(rec.header, 1, rec.header_len, fasta.f);
            fasta_at += rec.header_len + 1;
        }
        fputc('\n', fasta.f);
        fasta_at++;
        for (uint64_t p = 0; p < len; p += 60) {
            size_t w = len - p < 60 ? (size_t)(len - p) : 60;
            fwrite(seq + p, 1, w, fasta.f);
            fputc('\n', fasta.f);
            fasta_at += w + 1;
        }
        if (taxid.f && tax >= 0) {
            /* the aligners name "db|ACC|NAME" sequences ACC */
            tal_keys_t keys;
            const char *acc;
            size_t acc_len;
            tal_header_keys(rec.header, rec.header_len, &keys);
            acc = keys.alias ? keys.alias : keys.primary;
            acc_len = keys.alias ? keys.alias_len : keys.primary_len;
            if (x->preset == P_DIAMOND) {
                const char *dot = memchr(acc, '.', acc_len);
                fprintf(taxid.f, "%.*s\t%.*s\t%ld\t0\n", (int)(dot ? (size_t)(dot - acc) : acc_len), acc,
                        (int)acc_len, acc, tax);
            } else if (x->preset == P_BLAST) {
                fprintf(taxid.f, "%.*s %ld\n", (int)acc_len, acc, tax);
            } else if (x->preset != P_KRAKEN) {
                fprintf(taxid.f, "%.*s\t%ld\n", (int)acc_len, acc, tax);
            }
        }
        dref = (tal_dref_t){start, fasta_at - start, len, XXH3_64bits(seq, (size_t)len), i};
        if ((rc = tal_dwriter_reference(dw, &dref)) < 0) goto fail;
    }

    /* every record, in input order: the delta store and the membership */
    for (uint64_t i = 0; i < n; i++) {
        tal_record_t rec;
        tal_drec_t d;
        uint64_t r = c->ref[i], doff = 0;
        const member_t *m = &slots[i % SLOTS_READ];
        if ((i & 65535) == 0) progress(x, "writing", i, n);
        if ((i & 4095) == 0) {
            release_headers(x);
            tal_store_release_(x->store, TAL_SEC_RECORD_CHECKSUMS);
        }
        if (i % SLOTS_READ == 0 &&
            (rc = result_io(x, slots, n - i < SLOTS_READ ? (size_t)(n - i) : SLOTS_READ, i, 0)) < 0)
            goto fail;
        if ((rc = tal_store_header_(x->store, i, &rec.header, &rec.header_len)) < 0) goto fail;
        memset(&d, 0, sizeof d);
        d.header = rec.header;
        d.header_len = rec.header_len;
        d.length = x->lens[i];
        d.checksum = x->checksums[i]; /* tal_record_checksum, checked by the first pass */
        d.ref = ref_index[r];
        if (r == i) {
            d.flags = TAL_DREC_REFERENCE;
            d.identity = d.coverage = 1.0f;
        } else if (!(m->flags & (M_ALIGNED | M_IDENTICAL))) {
            tal_log_error("internal error: record %llu has no reference in %s", (unsigned long long)i + 1,
                          x->scratch);
            rc = TAL_EIO;
            goto fail;
        } else {
            d.identity = m->identity;
            d.coverage = m->coverage;
            if (m->flags & M_IDENTICAL) {
                d.flags = TAL_DREC_IDENTICAL;
            } else {
                doff = m->delta_off;
                d.delta_len = m->delta_len;
            }
        }
        if ((rc = tal_dwriter_record(dw, &d, doff)) < 0) goto fail;
        if (r != i) {
            tal_record_t rr;
            if ((rc = tal_store_header_(x->store, r, &rr.header, &rr.header_len)) < 0) goto fail;
            write_accession(members.f, rec.header, rec.header_len);
            fputc('\t', members.f);
            write_accession(members.f, rr.header, rr.header_len);
            fprintf(members.f, "\t%.4f\t%.4f\n", (double)d.identity, (double)d.coverage);
        }
    }
    if ((rc = tal_dwriter_copy_deltas(dw, x->delta_fd)) < 0) goto fail;
    if ((rc = tal_dwriter_finish(dw)) < 0) goto fail;
    dw = NULL;

    /* CD-HIT's .clstr: clusters in reference order, the reference first */
    if (clstr.f) {
        if ((rc = tal_budget_reserve(x->mem.budget, TAL_MEM_RECORDS, 4 * (R + 2 + n + 1))) < 0) goto fail;
        clstr_held = 4 * (R + 2 + n + 1);
        if (!(mstart = calloc((size_t)R + 2, sizeof *mstart)) || !(mlist = malloc((size_t)n * sizeof *mlist + 8)))
            goto nomem;
        for (uint64_t i = 0; i < n; i++)
            if (c->ref[i] != i) mstart[ref_index[c->ref[i]] + 2]++;
        for (uint64_t q = 0; q < R; q++) mstart[q + 2] += mstart[q + 1];
        for (uint64_t i = 0; i < n; i++)
            if (c->ref[i] != i) mlist[mstart[ref_index[c->ref[i]] + 1]++] = (uint32_t)i;
        k = 0;
        for (uint64_t i = 0; i < n; i++) {
            tal_record_t rec;
            const char *unit = nucleotide ? "nt" : "aa";
            if (c->ref[i] != i) continue;
            if ((rc = tal_store_header_(x->store, i, &rec.header, &rec.header_len)) < 0) goto fail;
            fprintf(clstr.f, ">Cluster %llu\n0\t%llu%s, >", (unsigned long long)k,
                    (unsigned long long)x->lens[i], unit);
            write_accession(clstr.f, rec.header, rec.header_len);
            fputs("... *\n", clstr.f);
            for (uint64_t m = mstart[k]; m < mstart[k + 1]; m++) {
                uint64_t id = mlist[m];
                if ((rc = result_io(x, slots, 1, id, 0)) < 0) goto fail;
                if ((rc = tal_store_header_(x->store, id, &rec.header, &rec.header_len)) < 0) goto fail;
                fprintf(clstr.f, "%llu\t%llu%s, >", (unsigned long long)(m - mstart[k] + 1),
                        (unsigned long long)x->lens[id], unit);
                write_accession(clstr.f, rec.header, rec.header_len);
                fprintf(clstr.f, "... at %s%.2f%%\n", nucleotide ? "+/" : "", 100.0 * (double)slots[0].identity);
            }
            k++;
        }
    }
    if (missing_taxid && x->preset != P_GENERIC)
        tal_log_warn("%ld of %llu references have no taxid in their header (OX=, TaxID=, taxid|N|)%s",
                     missing_taxid, (unsigned long long)R,
                     x->preset == P_KRAKEN ? "; their headers are left as they are" : "");

    /* everything is complete: into place */
    if ((rc = tal_outfile_close(&fasta)) < 0 || (rc = tal_outfile_close(&members)) < 0 ||
        (rc = tal_outfile_close(&clstr)) < 0 || (rc = tal_outfile_close(&taxid)) < 0)
        goto fail;
    if ((x->force ? rename(dtmp, deltas_path)
                  : renameat2(AT_FDCWD, dtmp, AT_FDCWD, deltas_path, RENAME_NOREPLACE)) < 0) {
        tal_log_error("cannot rename %s to %s: %s", dtmp, deltas_path, strerror(errno));
        rc = TAL_EIO;
        goto fail;
    }
    tal_cleanup_extra_done(dtmp, 0);
    if ((rc = tal_outfile_commit(&fasta, x->force)) < 0 ||
        (rc = tal_outfile_commit(&members, x->force)) < 0 ||
        (rc = tal_outfile_commit(&clstr, x->force)) < 0 || (rc = tal_outfile_commit(&taxid, x->force)) < 0)
        goto fail;
    rc = 0;
    goto done;
nomem:
    rc = TAL_ENOMEM;
fail:
    tal_outfile_abort(&fasta);
    tal_outfile_abort(&members);
    tal_outfile_abort(&clstr);
    tal_outfile_abort(&taxid);
    if (dw) tal_dwriter_abort(dw);
    if (dtmp) tal_cleanup_extra_done(dtmp, 0);
done:
    free(dtmp);
    free(ref_index);
    free(slots);
    tal_budget_release(x->mem.budget, TAL_MEM_RECORDS, held + clstr_held);
    free(mstart);
    free(mlist);
    return rc;
}

/* Whether two paths name one file: the same directory (resolved) and name. */
static int same_file(const char *a, const char *b)
{
    char *da = strdup(a), *db = strdup(b), ra[PATH_MAX], rb[PATH_MAX];
    const char *na = strrchr(a, '/') ? strrchr(a, '/') + 1 : a, *nb = strrchr(b, '/') ? strrchr(b, '/') + 1 : b;
    int same = !strcmp(a, b);
    if (!same && da && db && !strcmp(na, nb)) {
        char *sa = strrchr(da, '/'), *sb = strrchr(db, '/');
        if (sa) *sa = '\0';
        if (sb) *sb = '\0';
        same = realpath(sa ? (*da ? da : "/") : ".", ra) && realpath(sb ? (*db ? db : "/") : ".", rb) &&
               !strcmp(ra, rb);
    }
    free(da);
    free(db);
    return same;
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
    static const struct option longopts[] = {
        {"input", required_argument, NULL, 'i'},     {"output", required_argument, NULL, 'o'},
        {"deltas", required_argument, NULL, 'm'},    {"membership", required_argument, NULL, 'M'},
        {"clstr", required_argument, NULL, 'C'},     {"identity", required_argument, NULL, 'I'},
        {"coverage", required_argument, NULL, 'c'},  {"ratio", required_argument, NULL, 'r'},
        {"aligner", required_argument, NULL, 'a'},   {"threads", required_argument, NULL, 't'},
        {"tmp-dir", required_argument, NULL, 'T'},   {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},           {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},            CLI_MEM_LONGOPTS,
        {NULL, 0, NULL, 0}};
    reduce_t x;
    tal_cluster_t c;
    char *base = NULL, *deltas = NULL, *members = NULL, *taxid = NULL;
    int opt, rc;
    memset(&x, 0, sizeof x);
    memset(&c, 0, sizeof c);
    x.identity = 0.9;
    x.coverage = 0.8;
    x.threads = 1;
    x.delta_fd = -1;
    x.result_fd = -1;
    x.seq_fd = -1;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "i:o:m:r:a:t:j:fqvh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'i': x.in = optarg; break;
        case 'o': x.out = optarg; break;
        case 'm': x.deltas = optarg; break;
        case 'M': x.members = optarg; break;
        case 'C': x.clstr = optarg; break;
        case 'I':
            if (parse_fraction("--identity", optarg, &x.identity) < 0) return 2;
            x.identity_set = 1;
            break;
        case 'c':
            if (parse_fraction("--coverage", optarg, &x.coverage) < 0) return 2;
            x.coverage_set = 1;
            break;
        case 'r':
            if (parse_fraction("-r", optarg, &x.ratio) < 0) return 2;
            break;
        case 'a': {
            size_t p;
            for (p = 0; p < sizeof presets / sizeof *presets; p++)
                if (!strcmp(optarg, presets[p].name)) break;
            if (p == sizeof presets / sizeof *presets)
                return cli_usage_error("reduce", "-a must be diamond, mmseqs2, blast, lambda, kraken or "
                                                 "generic, not '%s'", optarg);
            x.preset = (preset_t)p;
            break;
        }
        case 't':
        case 'j':
            if (cli_parse_threads("reduce", optarg, &x.threads) < 0) return 2;
            break;
        case 'T': x.tmpdir = optarg; break;
        case 'f': x.force = 1; break;
        case 'q': x.quiet = 1; cli_quieter(); break;
        case 'v': cli_louder(); break;
        case 'h': fputs(help, stdout); return 0;
        default:
            if ((rc = cli_mem_option("reduce", opt, optarg, &x.mem)) < 0) return 2;
            if (rc) break;
            return cli_usage_error("reduce", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("reduce", "unexpected argument '%s'", argv[optind]);
    if (!x.in) return cli_usage_error("reduce", "missing -i FASTA|DB.tal");
    if (!x.out) return cli_usage_error("reduce", "missing -o REDUCED.fasta");
    if (x.ratio > 0 && x.identity_set)
        return cli_usage_error("reduce", "-r and --identity exclude each other");
    if (!x.identity_set) x.identity = presets[x.preset].identity;
    if (!x.coverage_set) x.coverage = presets[x.preset].coverage;
    if (!(base = base_of(x.out))) return tal_exit_code(TAL_ENOMEM);
    if (x.deltas) deltas = strdup(x.deltas);
    else if (asprintf(&deltas, "%s.deltas.tal", base) < 0) deltas = NULL;
    if (x.members) members = strdup(x.members);
    else if (asprintf(&members, "%s.members.tsv", base) < 0) members = NULL;
    int side = x.preset != P_GENERIC && x.preset != P_KRAKEN; /* kraken: taxids go in headers */
    if (side && asprintf(&taxid, "%s.taxid.tsv", base) < 0) taxid = NULL;
    if (!deltas || !members || (side && !taxid)) {
        rc = TAL_ENOMEM;
        goto out;
    }
    if (same_file(x.in, x.out) || same_file(x.in, deltas) || same_file(x.in, members) ||
        (x.clstr && same_file(x.in, x.clstr))) {
        rc = cli_usage_error("reduce", "the input %s would be overwritten by an output", x.in);
        goto usage;
    }
    {
        const char *outs[] = {x.out, deltas, members, x.clstr, taxid};
        for (size_t a = 0; a < sizeof outs / sizeof *outs; a++)
            for (size_t b2 = a + 1; b2 < sizeof outs / sizeof *outs; b2++)
                if (outs[a] && outs[b2] && same_file(outs[a], outs[b2])) {
                    rc = cli_usage_error("reduce", "two outputs would be written to %s", outs[a]);
                    goto usage;
                }
    }
    {
        struct stat st;
        const char *outs[] = {x.out, deltas, members, x.clstr, taxid};
        for (size_t o = 0; o < sizeof outs / sizeof *outs; o++)
            if (outs[o] && !x.force && stat(outs[o], &st) == 0) {
                tal_log_error("%s already exists; use --force to replace it", outs[o]);
                rc = TAL_EEXIST;
                goto out;
            }
    }
    x.started = tal_now_seconds();
    if ((rc = cli_mem_begin("reduce", &x.mem)) < 0) goto out;
    if ((rc = make_scratch(&x)) < 0) goto out;
    if ((rc = plan_memory(&x, 0)) < 0) goto out;
    if ((rc = open_input(&x)) < 0) goto out;
    if ((rc = plan_memory(&x, 1)) < 0) goto out;
    if ((rc = prepare_source(&x)) < 0) goto out;
    if ((rc = cluster(&x, &c)) < 0) goto out;
    if ((rc = write_outputs(&x, &c, deltas, members, taxid)) < 0) goto out;
    progress_end(&x);
    if (!x.quiet) {
        char a[32], b[32], p[32];
        uint64_t ref_res = 0;
        for (uint64_t i = 0; i < c.n; i++)
            if (c.ref[i] == i) ref_res += x.lens[i];
        fprintf(stderr,
                "talaria reduce: %llu sequences (%s residues) -> %llu references (%s residues) in %s\n"
                "  members %llu (%llu exact copies), identity >= %.4g, coverage >= %.4g\n"
                "  reduction %.3fx sequences, %.3fx residues; %llu alignments (%llu banded), "
                "%llu candidates filtered\n"
                "  %.2f s, peak RSS %s; deltas in %s\n",
                (unsigned long long)c.n, tal_format_size(x.info.residues, a, sizeof a),
                (unsigned long long)c.references, tal_format_size(ref_res, b, sizeof b), x.out,
                (unsigned long long)(c.n - c.references), (unsigned long long)c.duplicates, x.identity,
                x.coverage, c.references ? (double)c.n / (double)c.references : 0.0,
                ref_res ? (double)x.info.residues / (double)ref_res : 0.0,
                (unsigned long long)c.alignments, (unsigned long long)c.banded,
                (unsigned long long)c.filtered, tal_now_seconds() - x.started,
                tal_format_size(tal_peak_rss_bytes(), p, sizeof p), deltas);
    }
    goto out;
usage:
    free(base);
    free(deltas);
    free(members);
    free(taxid);
    return rc;
out:
    progress_end(&x);
    if (rc == TAL_ENOMEM) tal_log_error("out of memory while reducing %s", x.in);
    tal_cluster_free(&c);
    if (x.seq_fd >= 0) close(x.seq_fd);
    free(x.own_offsets);
    free(x.buf);
    if (x.store) tal_store_close(x.store);
    if (x.delta_out) fclose(x.delta_out);
    if (x.delta_fd >= 0) close(x.delta_fd);
    if (x.result_fd >= 0) close(x.result_fd);
    if (x.scratch) tal_cleanup_extra_done(x.scratch, 1);
    free(x.scratch);
    if (x.held_input) tal_budget_release(x.mem.budget, TAL_MEM_INPUT, x.held_input);
    if (x.mem.budget && cli_mem_end(&x.mem) < 0 && rc == 0) rc = TAL_EIO;
    free(base);
    free(deltas);
    free(members);
    free(taxid);
    return rc < 0 ? tal_exit_code(rc) : 0;
}
