/* A reduction from start to end: checks the options and output paths, opens (or indexes)
 * the input, checks every record on one streaming pass, clusters (searching the identity
 * for a ratio), and hands the result to outputs.c. Scratch files live in one directory
 * under tmp_dir, removed at the end whatever happens. */
#define _GNU_SOURCE
#include "reduce_internal.h"
#include "delta_internal.h"
#include "dstore_internal.h"
#include "store/format_internal.h"
#include "store/store_internal.h"
#include "talaria/error.h"
#include "util/util_internal.h"
#include "talaria/log.h"
#include "talaria/scan.h"
#include "talaria/util.h"
#include "util/files_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* -r: the identity is searched by halving [RATIO_FLOOR, 1] RATIO_STEPS times */
#define RATIO_FLOOR 0.30
#define RATIO_STEPS 6

void tal_reduction_progress(tal_reduction_t *x, const char *stage, uint64_t done, uint64_t total)
{
    if (!x->opt->progress) return;
    x->progress.stage = stage;
    x->progress.done = done;
    x->progress.total = total;
    x->progress.seconds = tal_now_seconds() - x->started;
    x->opt->progress(x->opt->ctx, &x->progress);
}

static void cluster_progress(void *ctx, const char *stage, uint64_t done, uint64_t total)
{
    tal_reduction_progress(ctx, stage, done, total);
}

/* ---- options and paths ---- */

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

/* Whether two paths name one file: the same directory (resolved) and name. */
static int same_file(const char *a, const char *b)
{
    char *da = strdup(a), *db = strdup(b), ra[PATH_MAX], rb[PATH_MAX];
    const char *na = strrchr(a, '/') ? strrchr(a, '/') + 1 : a;
    const char *nb = strrchr(b, '/') ? strrchr(b, '/') + 1 : b;
    int same = !strcmp(a, b);
    if (!same && da && db && !strcmp(na, nb)) {
        char *sa = strrchr(da, '/'), *sb = strrchr(db, '/');
        if (sa) *sa = '\0';
        if (sb) *sb = '\0';
        same = realpath(sa ? (*da ? da : "/") : ".", ra) &&
               realpath(sb ? (*db ? db : "/") : ".", rb) && !strcmp(ra, rb);
    }
    free(da);
    free(db);
    return same;
}

static int fraction_ok(double v) { return v > 0.0 && v <= 1.0; }

static int check_options(const tal_reduce_opt_t *opt, const char *out)
{
    if (opt->strand != TAL_STRAND_BOTH && opt->strand != TAL_STRAND_PLUS) {
        tal_log_error("reduce: the strand must be TAL_STRAND_BOTH or TAL_STRAND_PLUS, not %d",
                      opt->strand);
        return TAL_EUSAGE;
    }
    const char *bad = NULL;
    if (!out || !*out)
        bad = "no output FASTA";
    else if (!fraction_ok(opt->coverage))
        bad = "the coverage must be in (0, 1]";
    else if (opt->ratio == 0 && !fraction_ok(opt->identity))
        bad = "the identity must be in (0, 1]";
    else if (opt->ratio != 0 && !fraction_ok(opt->ratio))
        bad = "the ratio must be in (0, 1]";
    else if (!tal_aligner_name(opt->aligner))
        bad = "unknown aligner preset";
    else if (opt->threads < 1 || opt->threads > 1024)
        bad = "threads must be 1 to 1024";
    if (!bad) return 0;
    tal_log_error("reduce: %s", bad);
    return TAL_EUSAGE;
}

/* The outputs' paths, none of them the input or each other, none existing unless force. */
static int output_paths(tal_reduction_t *x)
{
    const tal_reduce_opt_t *opt = x->opt;
    const char *side = tal_aligner_side_suffix(opt->aligner);
    char *base = base_of(x->out);
    int rc = 0;
    if (!base) return TAL_ENOMEM;
    if (opt->deltas_path)
        x->deltas_path = strdup(opt->deltas_path);
    else if (asprintf(&x->deltas_path, "%s.deltas.tal", base) < 0)
        x->deltas_path = NULL;
    if (opt->membership_path)
        x->members_path = strdup(opt->membership_path);
    else if (asprintf(&x->members_path, "%s.members.tsv", base) < 0)
        x->members_path = NULL;
    if (side && asprintf(&x->taxid_path, "%s%s", base, side) < 0) x->taxid_path = NULL;
    free(base);
    if (!x->deltas_path || !x->members_path || (side && !x->taxid_path)) return TAL_ENOMEM;
    const char *outs[] = {x->out, x->deltas_path, x->members_path, opt->clstr_path, x->taxid_path};
    size_t count = sizeof outs / sizeof *outs;
    for (size_t a = 0; a < count && rc == 0; a++)
        if (outs[a] && a < 4 && same_file(x->in, outs[a])) {
            tal_log_error("reduce: the input %s would be overwritten by an output", x->in);
            rc = TAL_EUSAGE;
        }
    for (size_t a = 0; a < count && rc == 0; a++)
        for (size_t b = a + 1; b < count && rc == 0; b++)
            if (outs[a] && outs[b] && same_file(outs[a], outs[b])) {
                tal_log_error("reduce: two outputs would be written to %s", outs[a]);
                rc = TAL_EUSAGE;
            }
    for (size_t o = 0; o < count && rc == 0; o++) {
        struct stat st;
        if (outs[o] && !opt->force && stat(outs[o], &st) == 0) {
            tal_log_error("%s already exists; use --force to replace it", outs[o]);
            rc = TAL_EEXIST;
        }
    }
    return rc;
}

/* ---- input ---- */

static void indexing_progress(void *ctx, uint64_t records, uint64_t residues, double seconds,
                              int final)
{
    (void)residues;
    (void)seconds;
    (void) final;
    tal_reduction_progress(ctx, "reading the input", records, 0);
}

/* Several ranks share this run (opt.comm): rank 0 writes the outputs. */
static int distributed(const tal_reduction_t *x) { return x->opt->comm && x->opt->comm->size > 1; }

static int writes_outputs(const tal_reduction_t *x)
{
    return !distributed(x) || x->opt->comm->rank == 0;
}

static int make_scratch(tal_reduction_t *x)
{
    const char *dir = x->opt->tmp_dir ? x->opt->tmp_dir : getenv("TMPDIR");
    struct stat st;
    if (!dir || !*dir) dir = "/tmp";
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        tal_log_error("--tmp-dir %s is not a directory", dir);
        return TAL_EIO;
    }
    /* scratch directories of killed runs go first (files_internal.h); not with several
     * ranks, which may share --tmp-dir across nodes, where a lock may hold on one node only */
    if (!distributed(x)) tal_sweep_temporaries(dir, "talaria-reduce-");
    for (;;) {
        int fd;
        if (asprintf(&x->scratch, "%s/talaria-reduce-XXXXXX", dir) < 0) return TAL_ENOMEM;
        if (!mkdtemp(x->scratch)) {
            tal_log_error("cannot create a scratch directory in %s: %s", dir, strerror(errno));
            free(x->scratch);
            x->scratch = NULL;
            return TAL_EIO;
        }
        if ((fd = open(x->scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
            tal_log_error("cannot open the scratch directory %s: %s", x->scratch, strerror(errno));
            rmdir(x->scratch);
            free(x->scratch);
            x->scratch = NULL;
            return TAL_EIO;
        }
        if (tal_temp_lock(fd) == 0) {
            tal_cleanup_extra_add(x->scratch, 1, fd);
            return 0;
        }
        close(fd); /* another run's sweep took it before the lock: make another */
        free(x->scratch);
    }
}

/* Rank 0's code (and, with path, the path of size bytes it names) to every rank. */
static int share_code(const tal_reduction_t *x, int rc, char *path, size_t size)
{
    const tal_reduce_comm_t *cm = x->opt->comm;
    char msg[4 + 4096];
    int32_t v = rc;
    if (!distributed(x)) return rc;
    memset(msg, 0, sizeof msg);
    memcpy(msg, &v, 4);
    if (path && size) snprintf(msg + 4, sizeof msg - 4, "%s", path);
    if (cm->bcast(cm->ctx, msg, path ? sizeof msg : 4) < 0) return TAL_EIO;
    memcpy(&v, msg, 4);
    if (path && size) snprintf(path, size, "%s", msg + 4);
    return v;
}

/* Several ranks: every rank must see rank 0's store (a different or damaged copy on a
 * node would change the outputs); its records and residues are compared. */
static int same_store(const tal_reduction_t *x)
{
    const tal_reduce_comm_t *cm = x->opt->comm;
    uint64_t v[2] = {x->info.records, x->info.residues};
    int rc;
    if (!distributed(x)) return 0;
    if ((rc = cm->bcast(cm->ctx, v, sizeof v)) < 0) return rc;
    if (v[0] == x->info.records && v[1] == x->info.residues) return 0;
    tal_log_error("%s: this rank's store has %llu records and %llu residues, rank 0's %llu and "
                  "%llu: every rank must open the same store",
                  x->in, (unsigned long long)x->info.records, (unsigned long long)x->info.residues,
                  (unsigned long long)v[0], (unsigned long long)v[1]);
    return TAL_EINPUT;
}

static int open_input(tal_reduction_t *x)
{
    struct stat st;
    int rc;
    if (x->store) {
        rc = 0;
    } else if (!writes_outputs(x)) {
        /* rank 0 says which store it opened: INPUT, or the store it indexed the FASTA into
         * (in its scratch directory, on storage every rank sees: --tmp-dir) */
        char path[4096] = "";
        if ((rc = share_code(x, 0, path, sizeof path)) == 0 &&
            (rc = tal_store_open(&x->store, path)) < 0)
            tal_log_error("cannot open %s, the store rank 0 reduces: every rank must see it at "
                          "the same path",
                          path);
        x->own_store = rc == 0;
    } else if (stat(x->in, &st) == 0 && S_ISDIR(st.st_mode)) {
        char path[4096];
        rc = tal_store_open(&x->store, x->in);
        x->own_store = rc == 0;
        snprintf(path, sizeof path, "%s", x->in);
        rc = share_code(x, rc, path, sizeof path);
    } else {
        tal_index_opt_t opt;
        tal_build_stats_t bs;
        char *path;
        tal_index_opt_init(&opt);
        opt.threads = x->opt->threads;
        opt.budget = x->budget;
        opt.low_memory = x->opt->low_memory;
        opt.allow_duplicates = x->opt->allow_duplicates;
        opt.progress = indexing_progress;
        opt.progress_ctx = x;
        if (asprintf(&path, "%s/input.tal", x->scratch) < 0) return TAL_ENOMEM;
        tal_reduction_progress(x, "reading the input", 0, 0);
        rc = tal_store_build(x->in, path, &opt, &bs);
        if (rc == 0) rc = tal_store_open(&x->store, path);
        x->own_store = rc == 0;
        rc = share_code(x, rc, path, strlen(path) + 1);
        free(path);
        if (rc == 0 && bs.duplicates_skipped)
            tal_log_warn(
                "%s: %llu record%s with an accession seen before left out (--allow-duplicates)",
                x->in, (unsigned long long)bs.duplicates_skipped,
                bs.duplicates_skipped == 1 ? "" : "s");
    }
    if (rc < 0) return rc;
    tal_store_info(x->store, &x->info);
    return same_store(x);
}

void tal_reduction_release_headers(tal_reduction_t *x)
{
    tal_store_release_(x->store, TAL_SEC_HEADERS);
    tal_store_release_(x->store, TAL_SEC_HDR_OFFSETS);
    x->window = 0;
}

int tal_reduction_header(tal_reduction_t *x, uint64_t id, const char **h, size_t *len)
{
    uintptr_t at, end;
    int rc = tal_store_header_(x->store, id, h, len);
    if (rc < 0) return rc;
    /* a raw store's headers come through its mapping, in order: the pages from the
     * window's first header to this one's end are resident (a compact store's come from
     * its chunk cache, where this only releases now and then) */
    at = (uintptr_t)*h;
    end = at + *len;
    if (x->window &&
        (at < x->window || end - x->window > TAL_HEADER_WINDOW - ((uintptr_t)256 << 10)))
        tal_reduction_release_headers(x); /* the pages go; *h stays readable, from the cache */
    if (!x->window) x->window = at;
    return 0;
}

/* Residues are read with pread from the store's residue file (raw stores) or from a
 * decoded copy in the scratch directory (compressed stores), never through a mapping:
 * the page cache holds them, not this process. */
int tal_reduction_residues(void *ctx, uint64_t id, char **buf, size_t *cap, const char **seq)
{
    const tal_reduction_t *x = ctx;
    size_t len = (size_t)tal_length(&x->lengths, id), at = 0;
    uint64_t start = x->starts[id / TAL_STARTS_EVERY];
    int rc;
    for (uint64_t i = id & ~(uint64_t)(TAL_STARTS_EVERY - 1); i < id; i++)
        start += tal_length(&x->lengths, i);
    if ((rc = tal_buf_reserve(buf, cap, len + 1)) < 0) return rc;
    while (at < len) {
        ssize_t k = pread(x->seq_fd, *buf + at, len - at, (off_t)(start + at));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            tal_log_error("%s: cannot read record %llu's residues: %s", x->in,
                          (unsigned long long)id + 1,
                          k < 0 ? strerror(errno) : "file shorter than the store says");
            return k < 0 ? TAL_EIO : TAL_EINPUT;
        }
        at += (size_t)k;
    }
    *seq = *buf;
    return 0;
}

/* The store's lengths, 2 bytes a record (a compact store's own array is used in place),
 * and for a raw store every TAL_STARTS_EVERY-th residue start from its offsets, which are
 * checked against the lengths. The mapped pages go as they are read. */
static int take_lengths(tal_reduction_t *x, const uint64_t *lens, const uint64_t *offsets)
{
    uint64_t n = x->info.records, window = (uint64_t)1 << 16;
    int rc, held = tal_store_lengths_held_(x->store);
    if (held)
        tal_lengths_wrap(&x->lengths, lens);
    else if ((rc = tal_lengths_create(&x->lengths, n, x->info.residues)) < 0)
        return rc;
    if (held && !offsets) return 0;
    for (uint64_t i = 0; i < n; i++) {
        if (offsets) {
            if (offsets[i + 1] < offsets[i] || offsets[i + 1] - offsets[i] != lens[i])
                return tal_store_corrupt_(x->store, "record offsets and lengths disagree");
            if (i % TAL_STARTS_EVERY == 0) x->starts[i / TAL_STARTS_EVERY] = offsets[i];
        }
        if (!held && tal_lengths_set(&x->lengths, i, lens[i]) < 0)
            return tal_store_corrupt_(x->store, "record lengths exceed the residue count");
        if ((i + 1) % window == 0 && !held) {
            tal_store_release_range_(x->store, TAL_SEC_LENGTHS, (i + 1 - window) * 8, (i + 1) * 8);
            if (offsets)
                tal_store_release_range_(x->store, TAL_SEC_SEQ_OFFSETS, (i + 1 - window) * 8,
                                         (i + 1) * 8);
        }
    }
    if (!held) tal_store_release_(x->store, TAL_SEC_LENGTHS);
    if (offsets) tal_store_release_(x->store, TAL_SEC_SEQ_OFFSETS);
    return 0;
}

/* Every record's checksum checked in one streaming pass; a compressed store's residues
 * decoded into the scratch directory on the way. */
static int scan_input(tal_reduction_t *x)
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
    const uint64_t *lens, *offsets = NULL;
    if (tal_store_lengths(x->store, &lens) < 0) return TAL_EINPUT;
    if (!tal_store_section_(x->store, TAL_SEC_RECORD_CHECKSUMS, &sums, &sums_size) ||
        sums_size < n * 8)
        return TAL_EINPUT;
    x->checksums = sums;
    if (!(x->starts = malloc(TAL_STARTS_BYTES(n)))) return TAL_ENOMEM;
    if (raw && (rc = tal_store_residue_file_(x->store, path, sizeof path, &offsets)) < 0) return rc;
    if ((rc = take_lengths(x, lens, offsets)) < 0) return rc;
    if (!raw) {
        int fd;
        snprintf(path, sizeof path, "%s/residues", x->scratch);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || !(f = fdopen(fd, "w"))) {
            tal_log_error("cannot create %s: %s", path, strerror(errno));
            if (fd >= 0) close(fd);
            return TAL_EIO;
        }
        setvbuf(f, NULL, _IOFBF, 1u << 20);
    }
    tal_scan_opt_init(&so);
    so.threads = x->opt->threads > 1 ? 2 : 1;
    so.headers = 1; /* the checksums read every header: their pages go as well */
    so.block_size = TAL_SCAN_BLOCK;
    so.budget = x->budget;
    /* with several ranks, rank 0 checks a raw store for all: it alone writes, and its
     * failure stops every rank */
    if (rc == 0 && (!raw || writes_outputs(x))) rc = tal_scan_open(&scan, x->store, &so);
    while (rc == 0 && scan && (rc = tal_scan_next(scan, &b)) > 0) {
        for (uint64_t i = b.first_record; i < b.first_record + b.record_count && rc >= 0; i++) {
            tal_record_t rec;
            if ((rc = tal_scan_record(scan, &b, i, &rec)) < 0) break;
            if (raw) continue;
            if (i % TAL_STARTS_EVERY == 0) x->starts[i / TAL_STARTS_EVERY] = at;
            if (rec.seq_len && fwrite(rec.seq, 1, rec.seq_len, f) != rec.seq_len) {
                tal_log_error("cannot write %s: %s", path, strerror(errno));
                rc = TAL_EIO;
            }
            at += rec.seq_len;
        }
        tal_reduction_progress(x, "checking the input", b.first_record + b.record_count, n);
        tal_scan_release(scan, &b);
        if (rc > 0) rc = 0;
    }
    if (scan) tal_scan_close(scan);
    if (rc > 0) rc = 0;
    tal_reduction_release_headers(x);
    tal_store_release_(x->store, TAL_SEC_RECORD_CHECKSUMS);
    /* the scan drops each block's pages as it goes, but the kernel maps a few around each
     * fault, behind that mark too: 15 MB of a 2.8 GB residue file stayed resident */
    tal_store_release_(x->store, TAL_SEC_RESIDUES);
    if (!raw) {
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

static int check_input(tal_reduction_t *x)
{
    /* for the scan: the checksums and the scan's windows */
    uint64_t scan_bytes = 8 * (x->info.records + 1) + TAL_SCAN_WINDOWS;
    int rc;
    if ((rc = tal_budget_reserve(x->budget, TAL_MEM_INPUT, scan_bytes)) == 0) {
        rc = scan_input(x);
        tal_budget_release(x->budget, TAL_MEM_INPUT, scan_bytes);
    }
    if (rc == TAL_EMEMCAP) /* the plan counts this phase: a bug if it happens */
        tal_log_error("reduce: the memory cap leaves no room to check %s (its scan's buffers)",
                      x->in);
    return rc;
}

/* ---- clustering ---- */

int tal_reduction_slots(const tal_reduction_t *x, tal_member_slot_t *m, size_t count, uint64_t id,
                        int write)
{
    size_t bytes = count * sizeof *m, at = 0;
    off_t where = (off_t)(id * sizeof *m);
    while (at < bytes) {
        ssize_t k = write
                        ? pwrite(x->result_fd, (const char *)m + at, bytes - at, where + (off_t)at)
                        : pread(x->result_fd, (char *)m + at, bytes - at, where + (off_t)at);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            tal_log_error("cannot %s the member list in %s: %s", write ? "write" : "read",
                          x->scratch, k < 0 ? strerror(errno) : "file too short");
            return TAL_EIO;
        }
        at += (size_t)k;
    }
    return 0;
}

static int on_member(void *ctx, uint64_t member, uint64_t ref, const void *alignment)
{
    tal_reduction_t *x = ctx;
    const tal_alignment_t *al = alignment;
    tal_member_slot_t m = {(float)al->identity, (float)al->coverage, x->delta_used, 0,
                           TAL_MEMBER_ALIGNED | (al->minus ? TAL_MEMBER_MINUS : 0u)};
    (void)ref;
    if (al->delta_len > UINT32_MAX) return TAL_EUSAGE;
    m.delta_len = (uint32_t)al->delta_len;
    if (al->delta_len && fwrite(al->delta, 1, al->delta_len, x->delta_out) != al->delta_len) {
        tal_log_error("cannot write to %s: %s", x->scratch, strerror(errno));
        return TAL_EIO;
    }
    x->delta_used += al->delta_len;
    return tal_reduction_slots(x, &m, 1, member, 1);
}

/* Exact copies share their first copy's delta, or are their reference's copy. */
static int on_copy(void *ctx, uint64_t member, uint64_t first, uint64_t ref)
{
    tal_reduction_t *x = ctx;
    tal_member_slot_t m = {1.0f, 1.0f, 0, 0, TAL_MEMBER_IDENTICAL};
    int rc;
    if (first != ref && (rc = tal_reduction_slots(x, &m, 1, first, 0)) < 0) return rc;
    return tal_reduction_slots(x, &m, 1, member, 1);
}

/* One pass of the ratio search: whether identity keeps at most target references. */
static int try_identity(tal_reduction_t *x, tal_cluster_opt_t *opt, tal_cluster_prep_t *prep,
                        tal_cluster_t *c, double identity, uint64_t target, int *fits)
{
    int rc;
    opt->identity = identity;
    x->progress.pass = ++x->passes;
    x->progress.identity = identity;
    if ((rc = tal_cluster_decide(prep, opt, c)) < 0) return rc;
    *fits = c->references <= target;
    x->computed += c->computed;
    tal_log_info("-r: identity %.4f gives %s%llu references (target %llu)", identity,
                 c->stopped ? "more than " : "",
                 (unsigned long long)(c->stopped ? target : c->references),
                 (unsigned long long)target);
    tal_log_debug("-r: identity %.4f: %llu alignments computed, %llu verdicts from earlier passes",
                  identity, (unsigned long long)c->computed, (unsigned long long)c->reused);
    tal_cluster_free(c);
    return 0;
}

/* The highest identity whose reference count is within ratio x N: halving [0.30, 1] six
 * times. The floor is tried only once the middle gives too many, and a pass stops as soon
 * as it has more references than the target. */
static int search_identity(tal_reduction_t *x, tal_cluster_opt_t *opt, tal_cluster_prep_t *prep,
                           tal_cluster_t *c)
{
    double lo = RATIO_FLOOR, hi = 1.0, best = -1;
    uint64_t target = (uint64_t)(x->opt->ratio * (double)x->info.records + 0.5);
    int rc;
    if (target < 1) target = 1;
    opt->stop_above = target;
    for (int step = 1; step <= RATIO_STEPS; step++) {
        double mid = (lo + hi) / 2;
        int fits;
        if ((rc = try_identity(x, opt, prep, c, mid, target, &fits)) < 0) return rc;
        if (fits) {
            best = lo = mid;
            continue;
        }
        hi = mid;
        if (step == 1) {
            if ((rc = try_identity(x, opt, prep, c, lo, target, &fits)) < 0) return rc;
            if (!fits) break;
            best = lo;
        }
    }
    opt->stop_above = 0;
    if (best < 0) {
        tal_log_warn("-r %.3g: even identity 0.30 keeps more than %llu references; using 0.30",
                     x->opt->ratio, (unsigned long long)target);
        best = RATIO_FLOOR;
    }
    x->identity = best;
    x->progress.pass = 0;
    x->progress.identity = best;
    return 0;
}

static int scratch_file(tal_reduction_t *x, const char *name, int *fd)
{
    char *path;
    if (asprintf(&path, "%s/%s", x->scratch, name) < 0) return TAL_ENOMEM;
    *fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (*fd < 0) tal_log_error("cannot create %s: %s", path, strerror(errno));
    free(path);
    return *fd < 0 ? TAL_EIO : 0;
}

/* --same-taxon: every record's taxid from its header, UINT32_MAX for none (malformed
 * tags included, counted in a warning). */
static int read_taxids(tal_reduction_t *x, uint32_t *group)
{
    uint64_t n = x->info.records, none = 0, malformed = 0;
    int rc;
    for (uint64_t i = 0; i < n; i++) {
        const char *h;
        size_t len;
        long tax;
        if ((rc = tal_reduction_header(x, i, &h, &len)) < 0) return rc;
        tax = tal_header_taxid(h, len);
        group[i] = tax >= 0 ? (uint32_t)tax : UINT32_MAX;
        none += tax < 0;
        malformed += tax == TAL_TAXID_MALFORMED;
    }
    tal_reduction_release_headers(x);
    if (none)
        tal_log_warn("--same-taxon: %llu of %llu records have no taxid in their header (OX=, "
                     "TaxID=, taxid|N|)%s; they join only each other",
                     (unsigned long long)none, (unsigned long long)n,
                     malformed ? ", some with a tag that is not a whole number" : "");
    return 0;
}

static int cluster(tal_reduction_t *x, tal_cluster_t *c)
{
    tal_cluster_opt_t opt;
    tal_cluster_prep_t *prep = NULL;
    uint64_t n = x->info.records;
    uint32_t *group = NULL;
    size_t group_bytes = ((size_t)n + 1) * sizeof *group;
    int rc;
    tal_seq_source_t src = {tal_reduction_residues, x};
    tal_cluster_opt_init(&opt, x->info.alphabet == TAL_ALPHABET_NUCLEOTIDE);
    if (x->opt->kmer_size) {
        if (!opt.nucleotide && x->opt->kmer_size > 16) {
            tal_log_error("reduce: a k-mer size of %d is above 16, the most for proteins",
                          x->opt->kmer_size);
            return TAL_EUSAGE;
        }
        opt.sketch.k = x->opt->kmer_size;
    }
    if (x->opt->sketch_size) opt.sketch.m = x->opt->sketch_size;
    if (x->opt->candidates) opt.candidates = x->opt->candidates;
    opt.both_strands = opt.nucleotide && x->opt->strand == TAL_STRAND_BOTH;
    opt.coverage = x->coverage;
    opt.threads = x->opt->threads;
    opt.progress = cluster_progress;
    opt.ctx = x;
    opt.budget = x->budget;
    opt.tmp_dir = x->scratch;
    opt.sort_bytes = x->sort_bytes;
    opt.ref_only = 1;
    opt.comm = x->opt->comm;
    if (x->opt->same_taxon) {
        if ((rc = tal_budget_alloc(x->budget, TAL_MEM_RECORDS, group_bytes, (void **)&group)) < 0)
            return rc;
        if ((rc = read_taxids(x, group)) < 0) goto out;
        opt.group = group;
    }
    /* ranks, copies and candidates do not depend on the thresholds: once */
    if ((rc = tal_cluster_prepare(&opt, n, &src, &x->lengths, &prep)) < 0) goto out;
    /* -r: the passes share their evidence (a pair's words do not depend on the identity,
     * nor its alignment but through the band), in the room one sorter had (planned, and
     * free while deciding) */
    if (x->opt->ratio > 0 &&
        (rc = tal_cluster_keep_evidence(prep, x->sort_bytes, RATIO_FLOOR)) < 0) {
        if (rc != TAL_EMEMCAP) goto out;
        tal_log_debug("-r: no room to keep the passes' evidence; each pass aligns anew");
    }
    if (x->opt->ratio > 0 && (rc = search_identity(x, &opt, prep, c)) < 0) goto out;
    opt.identity = x->identity;
    opt.on_member = on_member;
    opt.on_copy = on_copy;
    if ((rc = scratch_file(x, "members", &x->result_fd)) < 0) goto out;
    if (ftruncate(x->result_fd, (off_t)((n + 1) * sizeof(tal_member_slot_t))) < 0) {
        tal_log_error("cannot create %s/members: %s", x->scratch, strerror(errno));
        rc = TAL_EIO;
        goto out;
    }
    if ((rc = scratch_file(x, "deltas", &x->delta_fd)) < 0) goto out;
    if (!(x->delta_out = fdopen(dup(x->delta_fd), "w"))) {
        tal_log_error("cannot create %s/deltas: %s", x->scratch, strerror(errno));
        rc = TAL_EIO;
        goto out;
    }
    setvbuf(x->delta_out, NULL, _IOFBF, 1u << 20);
    x->passes++;
    if ((rc = tal_cluster_decide(prep, &opt, c)) < 0) goto out;
    x->computed += c->computed;
    if (fflush(x->delta_out) != 0 || ferror(x->delta_out)) {
        tal_log_error("cannot write to %s: %s", x->scratch, strerror(errno));
        rc = TAL_EIO;
    }
out:
    tal_cluster_prep_free(prep);
    tal_budget_free(x->budget, TAL_MEM_RECORDS, group, group_bytes);
    return rc;
}

/* ---- the run ---- */

static void fill_result(const tal_reduction_t *x, const tal_cluster_t *c, tal_reduce_result_t *r)
{
    r->records = c->n;
    r->references = c->references;
    r->members = c->n - c->references;
    r->duplicates = c->duplicates;
    r->minus = x->minus;
    r->residues = x->info.residues;
    for (uint64_t i = 0; i < c->n; i++)
        if (c->ref[i] == i) r->reference_residues += tal_length(&x->lengths, i);
    r->alignments = c->alignments;
    r->banded = c->banded;
    r->filtered = c->filtered;
    r->computed = x->computed;
    r->reused = c->reused;
    r->identity = x->identity;
    r->coverage = x->coverage;
    r->passes = x->passes;
    r->nucleotide = x->info.alphabet == TAL_ALPHABET_NUCLEOTIDE;
    r->seconds = tal_now_seconds() - x->started;
    r->peak_rss = tal_peak_rss_bytes();
    r->fasta_path = strdup(x->out);
    r->deltas_path = strdup(x->deltas_path);
    r->membership_path = strdup(x->members_path);
    r->clstr_path = x->opt->clstr_path ? strdup(x->opt->clstr_path) : NULL;
    r->taxid_path = x->taxid_path ? strdup(x->taxid_path) : NULL;
}

static int reduce(tal_reduction_t *x, tal_reduce_result_t *result)
{
    const tal_reduce_opt_t *opt = x->opt;
    tal_cluster_t c;
    int rc;
    memset(&c, 0, sizeof c);
    x->started = tal_now_seconds();
    x->identity = opt->identity;
    x->coverage = opt->coverage;
    x->delta_fd = x->result_fd = x->seq_fd = -1;
    if ((rc = check_options(opt, x->out)) < 0) return rc;
    if ((rc = output_paths(x)) < 0) goto out;
    if (opt->budget) {
        x->budget = opt->budget;
    } else {
        tal_rss_t rss;
        if ((rc = tal_budget_create(&x->own_budget, opt->max_memory)) < 0) goto out;
        /* what the process holds already (program, libraries, stacks) counts as well */
        if (tal_rss_read(&rss) == 0) tal_budget_force(x->own_budget, TAL_MEM_OTHER, rss.rss);
        x->budget = x->own_budget;
    }
    if ((rc = make_scratch(x)) < 0) goto out;
    if ((rc = tal_reduction_plan(x, 0)) < 0) goto out;
    if ((rc = open_input(x)) < 0) goto out;
    if ((rc = tal_reduction_plan(x, 1)) < 0) goto out;
    if ((rc = check_input(x)) < 0) goto out;
    if ((rc = cluster(x, &c)) < 0) goto out;
    if (writes_outputs(x)) rc = tal_reduction_write(x, &c);
    if ((rc = share_code(x, rc, NULL, 0)) < 0) goto out;
    if (result) fill_result(x, &c, result);
out:
    if (rc == TAL_ENOMEM) tal_log_error("out of memory while reducing %s", x->in);
    tal_cluster_free(&c);
    if (x->seq_fd >= 0) close(x->seq_fd);
    free(x->starts);
    tal_lengths_free(&x->lengths);
    free(x->buf);
    if (x->store && x->own_store) tal_store_close(x->store);
    if (x->delta_out) fclose(x->delta_out);
    if (x->delta_fd >= 0) close(x->delta_fd);
    if (x->result_fd >= 0) close(x->result_fd);
    if (x->scratch) tal_cleanup_extra_done(x->scratch, 1);
    free(x->scratch);
    if (x->held_input) tal_budget_release(x->budget, TAL_MEM_INPUT, x->held_input);
    tal_budget_destroy(x->own_budget);
    free(x->deltas_path);
    free(x->members_path);
    free(x->taxid_path);
    return rc;
}

int tal_reduce_run(const char *input, const char *out_fasta, const tal_reduce_opt_t *opt,
                   tal_reduce_result_t *result)
{
    tal_reduction_t x;
    if (result) memset(result, 0, sizeof *result);
    if (!input || !opt) return TAL_EUSAGE;
    memset(&x, 0, sizeof x);
    x.opt = opt;
    x.in = input;
    x.out = out_fasta;
    return reduce(&x, result);
}

int tal_reduce_run_store(tal_store_t *store, const char *out_fasta, const tal_reduce_opt_t *opt,
                         tal_reduce_result_t *result)
{
    tal_reduction_t x;
    if (result) memset(result, 0, sizeof *result);
    if (!store || !opt) return TAL_EUSAGE;
    memset(&x, 0, sizeof x);
    x.opt = opt;
    x.in = tal_store_path(store);
    x.out = out_fasta;
    x.store = store;
    return reduce(&x, result);
}

void tal_reduce_result_free(tal_reduce_result_t *r)
{
    if (!r) return;
    free(r->fasta_path);
    free(r->deltas_path);
    free(r->membership_path);
    free(r->clstr_path);
    free(r->taxid_path);
    memset(r, 0, sizeof *r);
}
