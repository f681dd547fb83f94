/* The memory plan of a reduction: what the run holds at once, from the record count
 * (per-record arrays), the threads (each worker's share) and the longest sequence (the
 * largest single alignment). The run goes through three phases, each freeing what it took
 * before the next: checking the input, clustering and writing. What the whole run holds
 * (the store's lengths and some residue starts) comes with the largest of them. The rest
 * of the cap goes to the two sorters alive together while clustering; the delta store's
 * key index has one sorter's room while writing. The sorters are gone while the passes
 * decide: -r's evidence then has one sorter's room (sort_bytes), and keeps no evidence
 * when a batch's new entries do not fit in it. */
#include "reduce_internal.h"
#include "delta_internal.h"
#include "mem/sorter_internal.h"
#include "store/store_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/util.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define OUTPUT_BUFFERS       ((uint64_t)8 << 20)
/* Before the input is indexed its longest sequence is unknown: planned as long as the
 * largest alignment allowed. */
#define ESTIMATED_MAX_LENGTH 8192

typedef struct {
    uint64_t fixed;      /* the largest phase but the sort buffers */
    uint64_t need;       /* the largest phase with the smallest sort buffers, or the indexing */
    uint64_t sort_bytes; /* each sort buffer under the cap */
} plan_figures_t;

/* What the whole run holds of the input: its lengths, 2 bytes a record (tal_lengths_t;
 * residues bounds the long ones), and where every TAL_STARTS_EVERY-th record's residues
 * start; a compact store's arrays come in held, its lengths among them (lengths_held). */
typedef struct {
    uint64_t records, residues, held;
    int lengths_held;
} input_t;

static uint64_t input_bytes(const input_t *in)
{
    uint64_t lengths = in->lengths_held ? 0 : tal_lengths_bytes(in->records, in->residues);
    return tal_sat_add(tal_sat_add(lengths, TAL_STARTS_BYTES(in->records)), in->held);
}

/* used: what the budget holds already; held: a compact store's arrays and header cache;
 * scan_held: what its scan reserves itself (chunk buffers); index_need: a FASTA input's
 * indexing. Sums saturate: a damaged meta field gives a need no cap meets. */
static void plan_figures(const input_t *in, uint64_t max_len, uint64_t used, uint64_t scan_held,
                         uint64_t index_need, const tal_reduce_opt_t *opt, uint64_t cap,
                         plan_figures_t *p)
{
    uint64_t records = in->records, n1 = tal_sat_add(records, 1), base, checking, clustering,
             writing, room, t;
    int threads = opt->threads;
    base = tal_sat_add(used, input_bytes(in));
    /* checking the input: the checksums, streamed, the scan's windows and its own buffers */
    checking = tal_sat_add(tal_sat_add(tal_sat_mul(8, n1), TAL_SCAN_WINDOWS), scan_held);
    /* clustering: the order and the ranks or references, and the bitmaps; --same-taxon's taxids
     * (read through a header window, released before the sorters start: less than they
     * take); the workers and the largest alignment; then the two sorters */
    clustering =
        tal_sat_add(tal_sat_mul(TAL_CLUSTER_BYTES_PER_RECORD + (opt->same_taxon ? 4 : 0), n1),
                    tal_sat_mul(TAL_CLUSTER_BITMAPS, TAL_BITMAP_BYTES(records)));
    clustering =
        tal_sat_add(clustering, (uint64_t)threads * TAL_CLUSTER_WORKER_BYTES + ((uint64_t)2 << 20));
    clustering = tal_sat_add(clustering, tal_align_bytes(max_len, max_len, TAL_CLUSTER_MAX_CELLS));
    /* writing: the references by id and the reference index; the member slots read at a
     * time, the header pages and the output buffers; then one sorter, the delta store's
     * key index's and, once that is done, --clstr's members by cluster */
    writing = tal_sat_add(tal_sat_mul(8, n1), TAL_MEMBER_SLOTS_READ * sizeof(tal_member_slot_t) +
                                                  TAL_HEADER_WINDOW + OUTPUT_BUFFERS + 8);
    t = clustering > writing ? clustering : writing;
    p->fixed = tal_sat_add(base, t > checking ? t : checking);
    p->need = tal_sat_add(base, tal_sat_add(clustering, 2 * TAL_SORTER_MIN_BUFFER));
    t = tal_sat_add(base, tal_sat_add(writing, TAL_SORTER_MIN_BUFFER));
    if (p->need < t) p->need = t;
    t = tal_sat_add(base, checking);
    if (p->need < t) p->need = t;
    t = tal_sat_add(used, index_need);
    if (p->need < t) p->need = t;
    /* each sorter's share of what clustering leaves, and no more than writing leaves */
    room = TAL_SORTER_DEFAULT_BUFFER;
    if (cap) {
        t = tal_sat_add(base, clustering);
        room = cap > t ? (cap - t) / 2 : 0;
        t = tal_sat_add(base, writing);
        if (cap < tal_sat_add(t, room)) room = cap > t ? cap - t : 0;
    }
    p->sort_bytes = opt->low_memory                    ? TAL_SORTER_MIN_BUFFER
                    : room < TAL_SORTER_DEFAULT_BUFFER ? room
                                                       : TAL_SORTER_DEFAULT_BUFFER;
}

/* An open store's figures for the plan. */
static void store_input(const tal_store_t *s, input_t *in)
{
    tal_store_info_t info;
    tal_store_info(s, &info);
    in->records = info.records;
    in->residues = info.residues;
    in->held = tal_store_held_bytes_(s); /* a compact store's, held for the whole run */
    in->lengths_held = tal_store_lengths_held_(s);
}

static uint64_t index_need(const char *fasta, const tal_reduce_opt_t *opt, tal_budget_t *budget)
{
    tal_index_opt_t io;
    tal_index_opt_init(&io);
    io.threads = opt->threads;
    io.budget = budget;
    io.low_memory = opt->low_memory;
    io.allow_duplicates = opt->allow_duplicates;
    return tal_index_plan(fasta, &io);
}

/* Rounded up to a whole MiB, the way people type it (down, at the top of the range). */
static uint64_t whole_mib(uint64_t bytes)
{
    return tal_sat_add(bytes, ((uint64_t)1 << 20) - 1) & ~(((uint64_t)1 << 20) - 1);
}

/* The smallest cap to name: a sixteenth above the need. */
static uint64_t cap_to_name(uint64_t need) { return whole_mib(tal_sat_add(need, need / 16)); }

static int too_small(uint64_t cap, uint64_t name, const char *why)
{
    char a[32];
    tal_format_size(cap, a, sizeof a);
    tal_log_error("reduce: --max-memory %s is below what this run needs (%s); the smallest cap "
                  "that works here is --max-memory %lluM",
                  a, why, (unsigned long long)(whole_mib(name) >> 20));
    return TAL_EMEMCAP;
}

int tal_reduction_plan(tal_reduction_t *x, int exact)
{
    tal_budget_t *b = x->budget;
    uint64_t cap = tal_budget_cap(b), max_len, need_index = 0, scan_held = 0;
    input_t in = {0, 0, 0, 0};
    plan_figures_t p;
    if (exact) {
        store_input(x->store, &in);
        max_len = x->info.max_length;
        scan_held = tal_scan_held_bytes_(x->store);
    } else {
        struct stat st;
        if (x->store || stat(x->in, &st) < 0 || S_ISDIR(st.st_mode))
            return 0; /* a store: planned once open (a missing input fails there) */
        in.records = tal_index_estimate(x->in);
        in.residues = (uint64_t)st.st_size;
        max_len = ESTIMATED_MAX_LENGTH;
        need_index = index_need(x->in, x->opt, b);
    }
    plan_figures(&in, max_len, tal_budget_used(b, TAL_MEM_COMPONENTS), scan_held, need_index,
                 x->opt, cap, &p);
    if (cap && p.need > cap)
        return too_small(cap, cap_to_name(p.need),
                         exact ? "per-record arrays, workers and sort buffers"
                               : "per-record arrays, workers and sort buffers, estimated");
    x->sort_bytes = p.sort_bytes;
    if (exact) {
        /* the store's lengths and the residue starts, for the whole run */
        x->held_input = input_bytes(&in);
        if (tal_budget_reserve(b, TAL_MEM_INPUT, x->held_input) < 0) {
            x->held_input = 0;
            return too_small(cap, tal_budget_refused(b) + p.need / 16, "the store's arrays");
        }
        tal_log_debug("memory plan: %llu records, fixed %llu MiB, sort buffers 2 x %llu MiB",
                      (unsigned long long)in.records, (unsigned long long)(p.fixed >> 20),
                      (unsigned long long)(p.sort_bytes >> 20));
    }
    return 0;
}

int tal_reduce_plan(const char *input, const tal_reduce_opt_t *opt, tal_reduce_plan_t *plan)
{
    struct stat st;
    uint64_t used, cap = opt->budget ? tal_budget_cap(opt->budget) : opt->max_memory;
    uint64_t max_len = ESTIMATED_MAX_LENGTH, need_index = 0, scan_held = 0;
    input_t in = {0, 0, 0, 0};
    plan_figures_t p;
    tal_rss_t rss;
    if (!input || opt->threads < 1) return TAL_EUSAGE;
    memset(plan, 0, sizeof *plan);
    if (opt->budget)
        used = tal_budget_used(opt->budget, TAL_MEM_COMPONENTS);
    else
        used = tal_rss_read(&rss) == 0 ? rss.rss : 0;
    if (stat(input, &st) == 0 && S_ISDIR(st.st_mode)) {
        tal_store_t *s;
        tal_store_info_t info;
        int rc = tal_store_open(&s, input);
        if (rc < 0) return rc;
        tal_store_info(s, &info);
        store_input(s, &in);
        scan_held = tal_scan_held_bytes_(s);
        tal_store_close(s);
        plan->records = info.records;
        max_len = info.max_length;
        plan->exact = 1;
    } else {
        if (stat(input, &st) < 0) {
            tal_log_error("cannot open %s: %m", input);
            return TAL_EIO;
        }
        tal_budget_t *capped = opt->budget;
        plan->records = in.records = tal_index_estimate(input);
        in.residues = (uint64_t)st.st_size;
        /* the indexing's buffers depend on the cap, as in the run */
        if (!capped && cap && tal_budget_create(&capped, cap) < 0) return TAL_ENOMEM;
        need_index = index_need(input, opt, capped);
        if (capped != opt->budget) tal_budget_destroy(capped);
    }
    plan_figures(&in, max_len, used, scan_held, need_index, opt, cap, &p);
    plan->need = p.need;
    plan->min_cap = cap_to_name(p.need);
    plan->sort_bytes = p.sort_bytes;
    plan->fits = !cap || p.need <= cap;
    return 0;
}
