/* Unit tests for reference selection (src/reduce/cluster.c) on synthetic families with
 * known membership: members join a reference of their own family at or above the
 * thresholds (rechecked with a fresh alignment), duplicates collapse, unrelated
 * sequences stay references, and the result is the same on every run, and with several
 * ranks (threads standing in for MPI processes) the same as one process's. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "reduce/cluster_internal.h"
#include "talaria/error.h"
#include "reduce/delta_internal.h"

static const char AA[] = "ACDEFGHIKLMNPQRSTVWY";

typedef struct {
    uint64_t n;
    char **seqs;
    uint64_t *lens;
    int *family; /* -1: a singleton */
} set_t;

/* families x members at about (1 - mutation) identity, plus singletons and copies */
static set_t make_set(int families, int members, double mutation, int singletons, unsigned seed)
{
    set_t s;
    uint64_t cap = (uint64_t)families * (uint64_t)members + (uint64_t)singletons + 8, k = 0;
    s.seqs = calloc(cap, sizeof *s.seqs);
    s.lens = calloc(cap, sizeof *s.lens);
    s.family = calloc(cap, sizeof *s.family);
    for (int f = 0; f < families; f++) {
        size_t len = 150 + (size_t)(rand_r(&seed) % 300);
        char *base = malloc(len + 1);
        for (size_t i = 0; i < len; i++) base[i] = AA[rand_r(&seed) % 20];
        for (int m = 0; m < members; m++) {
            size_t ml = len - (size_t)(rand_r(&seed) % (len / 10)); /* up to 10% shorter */
            char *q = malloc(ml + 1);
            memcpy(q, base + (len - ml) / 2, ml);
            for (size_t e = 0; e < (size_t)((double)ml * mutation); e++)
                q[rand_r(&seed) % ml] = AA[rand_r(&seed) % 20];
            s.seqs[k] = q;
            s.lens[k] = ml;
            s.family[k++] = f;
        }
        free(base);
    }
    for (int g = 0; g < singletons; g++) {
        size_t len = 100 + (size_t)(rand_r(&seed) % 200);
        char *q = malloc(len + 1);
        for (size_t i = 0; i < len; i++) q[i] = AA[rand_r(&seed) % 20];
        s.seqs[k] = q;
        s.lens[k] = len;
        s.family[k++] = -1;
    }
    for (int d = 0; d < 4; d++) { /* exact copies of family members */
        uint64_t src = (uint64_t)d * 7;
        s.seqs[k] = malloc(s.lens[src] + 1);
        memcpy(s.seqs[k], s.seqs[src], s.lens[src]);
        s.lens[k] = s.lens[src];
        s.family[k++] = s.family[src];
    }
    s.n = k;
    return s;
}

static void free_set(set_t *s)
{
    for (uint64_t i = 0; i < s->n; i++) free(s->seqs[i]);
    free(s->seqs);
    free(s->lens);
    free(s->family);
}

static void check_clustering(double identity, double mutation)
{
    set_t s = make_set(30, 10, mutation, 40, 17);
    tal_cluster_opt_t opt;
    tal_cluster_t c, again;
    tal_aligner_t *a;
    uint64_t members = 0;
    tal_cluster_opt_init(&opt, 0);
    opt.identity = identity;
    assert_int_equal(tal_cluster_run(&opt, s.n, (const char *const *)s.seqs, s.lens, &c), 0);
    assert_int_equal(tal_aligner_create(&a, 0, 0), 0);
    assert_true(c.duplicates >= 4);
    for (uint64_t i = 0; i < s.n; i++) {
        uint32_t r = c.ref[i];
        tal_alignment_t al;
        if (r == i) continue;
        members++;
        assert_true(c.ref[r] == r);              /* a member's reference is a reference */
        assert_true(s.family[r] == s.family[i]); /* never across families */
        assert_true(s.family[i] >= 0);           /* singletons are unrelated */
        assert_true(s.lens[r] >= s.lens[i]);     /* longest first */
        assert_true(c.identity[i] + 1e-6 >= identity && c.coverage[i] + 1e-6 >= opt.coverage);
        /* an independent alignment of the pair agrees */
        assert_int_equal(tal_align(a, s.seqs[i], s.lens[i], s.seqs[r], s.lens[r], &al), 0);
        assert_true(al.identity + 1e-6 >= identity);
        assert_true(al.identity - c.identity[i] < 0.01 && c.identity[i] - al.identity < 0.01);
    }
    assert_int_equal(c.references + members, s.n);
    /* every singleton stays; families mostly collapse */
    assert_true(c.references >= 40 + 30);
    if (mutation <= 0.05) assert_true(c.references <= 40 + 30 * 3);
    /* deterministic */
    assert_int_equal(tal_cluster_run(&opt, s.n, (const char *const *)s.seqs, s.lens, &again), 0);
    assert_memory_equal(c.ref, again.ref, s.n * sizeof *c.ref);
    tal_cluster_free(&again);
    tal_cluster_free(&c);
    tal_aligner_free(a);
    free_set(&s);
}

static void test_identity_90(void **state)
{
    (void)state;
    check_clustering(0.9, 0.03);
}

static void test_identity_70(void **state)
{
    (void)state;
    check_clustering(0.7, 0.12);
}

static void test_empty_and_tiny(void **state)
{
    const char *seqs[] = {"", "ACD", "", "ACD", "MKV"};
    uint64_t lens[] = {0, 3, 0, 3, 3};
    tal_cluster_opt_t opt;
    tal_cluster_t c;
    (void)state;
    tal_cluster_opt_init(&opt, 0);
    assert_int_equal(tal_cluster_run(&opt, 5, seqs, lens, &c), 0);
    assert_int_equal(c.ref[2], 0); /* empty duplicates empty */
    assert_int_equal(c.ref[3], 1); /* short duplicate */
    assert_int_equal(c.ref[4], 4);
    assert_int_equal(c.references, 3);
    tal_cluster_free(&c);
    assert_int_equal(tal_cluster_run(&opt, 0, seqs, lens, &c), 0);
    assert_int_equal(c.references, 0);
    tal_cluster_free(&c);
}

/* ref_only: the same references; the callbacks report each member once (aligned ones
 * with the identity the full result has, copies with their first copy), nothing else */
typedef struct {
    uint64_t n, calls;
    float *identity;
    int64_t *first; /* -1: not reported; else the first copy (or itself: aligned) */
} seen_t;

static int seen_member(void *ctx, uint64_t member, uint64_t ref, const void *alignment)
{
    seen_t *v = ctx;
    const tal_alignment_t *al = alignment;
    (void)ref;
    if (member >= v->n || v->first[member] != -1) return -1;
    v->first[member] = (int64_t)member;
    v->identity[member] = (float)al->identity;
    v->calls++;
    return 0;
}

static int seen_copy(void *ctx, uint64_t member, uint64_t first, uint64_t ref)
{
    seen_t *v = ctx;
    if (member >= v->n || v->first[member] != -1 || first >= member) return -1;
    /* the first copy is either the reference or already reported as aligned */
    if (first != ref && v->first[first] != (int64_t)first) return -1;
    v->first[member] = (int64_t)first;
    v->identity[member] = first == ref ? 1.0f : v->identity[first];
    v->calls++;
    return 0;
}

static void test_ref_only(void **state)
{
    set_t s = make_set(20, 8, 0.04, 20, 29);
    tal_cluster_opt_t opt;
    tal_cluster_t full, lean;
    seen_t v = {s.n, 0, calloc(s.n, sizeof(float)), malloc(s.n * sizeof(int64_t))};
    uint64_t members = 0;
    (void)state;
    for (uint64_t i = 0; i < s.n; i++) v.first[i] = -1;
    tal_cluster_opt_init(&opt, 0);
    opt.threads = 2;
    assert_int_equal(tal_cluster_run(&opt, s.n, (const char *const *)s.seqs, s.lens, &full), 0);
    opt.ref_only = 1;
    opt.on_member = seen_member;
    opt.on_copy = seen_copy;
    opt.ctx = &v;
    assert_int_equal(tal_cluster_run(&opt, s.n, (const char *const *)s.seqs, s.lens, &lean), 0);
    assert_null(lean.identity);
    assert_null(lean.twin);
    assert_memory_equal(full.ref, lean.ref, s.n * sizeof *full.ref);
    assert_int_equal(full.references, lean.references);
    assert_int_equal(full.duplicates, lean.duplicates);
    assert_true(lean.duplicates >= 4);
    for (uint64_t i = 0; i < s.n; i++) {
        if (full.ref[i] == i) {
            assert_true(v.first[i] == -1);
            continue;
        }
        members++;
        assert_true(v.first[i] >= 0);
        assert_true(v.identity[i] == full.identity[i]);
        if (full.twin[i] != i) assert_int_equal(v.first[i], full.twin[i]);
    }
    assert_int_equal(v.calls, members);
    tal_cluster_free(&full);
    tal_cluster_free(&lean);
    free(v.identity);
    free(v.first);
    free_set(&s);
}

/* stop_above: a pass stops once it has more references than that, and one that stays
 * within it is the full pass */
static void test_stop_above(void **state)
{
    set_t s = make_set(20, 8, 0.04, 30, 31);
    tal_cluster_opt_t opt;
    tal_cluster_t full, part;
    (void)state;
    tal_cluster_opt_init(&opt, 0);
    assert_int_equal(tal_cluster_run(&opt, s.n, (const char *const *)s.seqs, s.lens, &full), 0);
    assert_false(full.stopped);
    assert_true(full.references > 10);
    opt.stop_above = full.references - 1;
    assert_int_equal(tal_cluster_run(&opt, s.n, (const char *const *)s.seqs, s.lens, &part), 0);
    assert_true(part.stopped);
    assert_true(part.references > opt.stop_above);
    tal_cluster_free(&part);
    opt.stop_above = full.references;
    assert_int_equal(tal_cluster_run(&opt, s.n, (const char *const *)s.seqs, s.lens, &part), 0);
    assert_false(part.stopped);
    assert_int_equal(part.references, full.references);
    assert_memory_equal(part.ref, full.ref, s.n * sizeof *full.ref);
    tal_cluster_free(&part);
    tal_cluster_free(&full);
    free_set(&s);
}

/* opt.group: a sequence joins only its own group (copies included); one group for all
 * is the same as none */
static void test_groups(void **state)
{
    set_t s = make_set(20, 8, 0.04, 10, 37);
    tal_cluster_opt_t opt;
    tal_cluster_t plain, split, one;
    uint32_t *group = calloc(s.n, sizeof *group);
    uint64_t crossing = 0;
    (void)state;
    tal_cluster_opt_init(&opt, 0);
    assert_int_equal(tal_cluster_run(&opt, s.n, (const char *const *)s.seqs, s.lens, &plain), 0);
    for (uint64_t i = 0; i < s.n; i++) crossing += plain.ref[i] % 2 != i % 2;
    assert_true(crossing > 0); /* without groups, odd and even records share clusters */
    opt.group = group;
    assert_int_equal(tal_cluster_run(&opt, s.n, (const char *const *)s.seqs, s.lens, &one), 0);
    assert_memory_equal(plain.ref, one.ref, s.n * sizeof *plain.ref);
    for (uint64_t i = 0; i < s.n; i++) group[i] = (uint32_t)(i % 2);
    opt.threads = 2;
    assert_int_equal(tal_cluster_run(&opt, s.n, (const char *const *)s.seqs, s.lens, &split), 0);
    for (uint64_t i = 0; i < s.n; i++) {
        assert_true(split.ref[i] % 2 == i % 2);
        if (split.twin[i] != i) assert_true(split.twin[i] % 2 == i % 2);
    }
    assert_true(split.references > plain.references);
    tal_cluster_free(&plain);
    tal_cluster_free(&one);
    tal_cluster_free(&split);
    free(group);
    free_set(&s);
}

static int from_seqs(void *ctx, uint64_t id, char **buf, size_t *cap, const char **seq)
{
    (void)buf;
    (void)cap;
    *seq = ((char **)ctx)[id];
    return 0;
}

typedef struct {
    uint64_t calls, sum; /* a sum over the members of a hash of (member, ref, delta) */
} delta_sum_t;

static int sum_member(void *ctx, uint64_t member, uint64_t ref, const void *alignment)
{
    delta_sum_t *d = ctx;
    const tal_alignment_t *al = alignment;
    uint64_t h = member * 1000003u + ref;
    for (size_t i = 0; i < al->delta_len; i++) h = h * 131 + al->delta[i];
    d->calls++;
    d->sum += h;
    return 0;
}

/* Lengths at 2 bytes a record: the long ones come back from their table, and more long
 * ones than the residues allow are refused (a damaged store); where long records may be
 * many, one array of 8 bytes a record. */
static void test_lengths(void **state)
{
    const uint64_t n = 1000;
    uint64_t residues = 0, lens[1000];
    tal_lengths_t l;
    (void)state;
    for (uint64_t i = 0; i < n; i++) lens[i] = i % 500;
    lens[5] = 65535;
    lens[400] = 1000000;
    lens[999] = 65536;
    lens[7] = 65534;
    for (uint64_t i = 0; i < n; i++) residues += lens[i];
    assert_int_equal(tal_lengths_create(&l, n, residues), 0);
    assert_null(l.whole);
    for (uint64_t i = 0; i < n; i++) assert_int_equal(tal_lengths_set(&l, i, lens[i]), 0);
    for (uint64_t i = 0; i < n; i++) assert_int_equal(tal_length(&l, i), lens[i]);
    assert_int_equal(l.n_long, 3);
    assert_true(tal_lengths_bytes(n, residues) >= 2 * n + 16 * l.n_long);
    assert_true(tal_lengths_bytes(n, residues) < 8 * n);
    tal_lengths_free(&l);
    /* 70,000 residues: room for two long lengths (residues / 65,535, plus one) */
    assert_int_equal(tal_lengths_create(&l, n, 70000), 0);
    assert_int_equal(tal_lengths_set(&l, 0, 65535), 0);
    assert_int_equal(tal_lengths_set(&l, 1, 65535), 0);
    assert_int_equal(tal_lengths_set(&l, 2, 65535), TAL_EINPUT);
    tal_lengths_free(&l);
    /* three genomes: every length in one array */
    assert_int_equal(tal_lengths_create(&l, 3, 3000000), 0);
    assert_non_null(l.whole);
    assert_int_equal(tal_lengths_bytes(3, 3000000), 8 * 4);
    for (uint64_t i = 0; i < 3; i++) assert_int_equal(tal_lengths_set(&l, i, 1000000 - i), 0);
    for (uint64_t i = 0; i < 3; i++) assert_int_equal(tal_length(&l, i), 1000000 - i);
    tal_lengths_free(&l);
}

/* -r's evidence: passes at several identities decide exactly as passes without it (the
 * same references, identities, coverages and counts), align less, and a pass at an
 * identity seen before computes nothing, not even the deltas it hands out */
static void test_evidence(void **state)
{
    static const double ids[] = {0.65, 0.3, 0.475, 0.5625, 0.9, 0.8, 0.6, 0.65};
    set_t s = make_set(30, 8, 0.3, 30, 41);
    tal_seq_source_t src = {from_seqs, s.seqs};
    tal_cluster_opt_t opt;
    tal_cluster_prep_t *plain, *kept;
    tal_cluster_t a, b;
    delta_sum_t da = {0, 0}, db = {0, 0};
    uint64_t computed_plain = 0, computed_kept = 0, reused = 0;
    tal_cluster_opt_init(&opt, 0);
    opt.threads = 2;
    uint64_t residues = 0;
    tal_lengths_t whole, compact;
    (void)state;
    /* one prep reads the caller's lengths, the other 2-byte copies of them */
    for (uint64_t i = 0; i < s.n; i++) residues += s.lens[i];
    tal_lengths_wrap(&whole, s.lens);
    assert_int_equal(tal_lengths_create(&compact, s.n, residues), 0);
    for (uint64_t i = 0; i < s.n; i++) assert_int_equal(tal_lengths_set(&compact, i, s.lens[i]), 0);
    assert_int_equal(tal_cluster_prepare(&opt, s.n, &src, &whole, &plain), 0);
    assert_int_equal(tal_cluster_prepare(&opt, s.n, &src, &compact, &kept), 0);
    assert_int_equal(tal_cluster_keep_evidence(kept, (uint64_t)64 << 20, 0.3), 0);
    for (size_t k = 0; k < sizeof ids / sizeof *ids; k++) {
        opt.identity = ids[k];
        assert_int_equal(tal_cluster_decide(plain, &opt, &a), 0);
        assert_int_equal(tal_cluster_decide(kept, &opt, &b), 0);
        assert_memory_equal(a.ref, b.ref, s.n * sizeof *a.ref);
        assert_memory_equal(a.identity, b.identity, s.n * sizeof *a.identity);
        assert_memory_equal(a.coverage, b.coverage, s.n * sizeof *a.coverage);
        assert_int_equal(a.alignments, b.alignments);
        assert_int_equal(a.filtered, b.filtered);
        assert_int_equal(a.banded, b.banded);
        assert_int_equal(a.computed, a.alignments);
        assert_int_equal(a.reused, 0);
        assert_int_equal(b.computed + b.reused, b.alignments + b.filtered);
        computed_plain += a.computed;
        computed_kept += b.computed;
        reused += b.reused;
        if (k + 1 == sizeof ids / sizeof *ids) {
            assert_true(b.alignments > 0);
            assert_int_equal(b.computed, 0); /* 0.65 again */
        }
        tal_cluster_free(&a);
        tal_cluster_free(&b);
    }
    assert_true(reused > 0);
    assert_true(computed_kept < computed_plain);
    /* the pass that hands out the deltas: the same deltas, read back */
    opt.identity = 0.5625;
    opt.ref_only = 1;
    opt.on_member = sum_member;
    opt.ctx = &da;
    assert_int_equal(tal_cluster_decide(plain, &opt, &a), 0);
    opt.ctx = &db;
    assert_int_equal(tal_cluster_decide(kept, &opt, &b), 0);
    assert_memory_equal(a.ref, b.ref, s.n * sizeof *a.ref);
    assert_true(da.calls > 0);
    assert_int_equal(da.calls, db.calls);
    assert_true(da.sum == db.sum);
    assert_int_equal(b.computed, 0); /* the deltas too come from the evidence */
    assert_int_equal(b.reused, a.alignments + a.filtered);
    tal_cluster_free(&a);
    tal_cluster_free(&b);
    tal_cluster_prep_free(plain);
    tal_cluster_prep_free(kept);
    tal_lengths_free(&compact);
    free_set(&s);
}

/* ---- several ranks through tal_reduce_comm_t: threads standing in for processes ---- */

#define MAX_RANKS 4

typedef struct message {
    void *data;
    size_t len;
    struct message *next;
} message_t;

typedef struct {
    int size;
    pthread_mutex_t mu;
    pthread_barrier_t bar;
    const void *part[MAX_RANKS]; /* gather: each rank's data, until rank 0 copied it */
    size_t part_len[MAX_RANKS];
    void *shared; /* bcast: rank 0's data */
    message_t *head[MAX_RANKS], *tail[MAX_RANKS];
    uint64_t counter[2];
    uint64_t posted; /* messages, for the test */
} world_t;

typedef struct {
    world_t *w;
    int rank;
    tal_reduce_comm_t comm;
    tal_cluster_opt_t opt;
    const set_t *set;
    tal_cluster_t out;
    int rc;
} rank_t;

static int w_gather(void *ctx, const void *data, size_t len, void **all, size_t *lens)
{
    rank_t *me = ctx;
    world_t *w = me->w;
    w->part[me->rank] = data;
    w->part_len[me->rank] = len;
    *all = NULL;
    pthread_barrier_wait(&w->bar);
    if (me->rank == 0) {
        size_t total = 0, at = 0;
        for (int r = 0; r < w->size; r++) total += w->part_len[r];
        *all = malloc(total ? total : 1);
        for (int r = 0; r < w->size; r++) {
            memcpy((char *)*all + at, w->part[r], w->part_len[r]);
            lens[r] = w->part_len[r];
            at += w->part_len[r];
        }
    }
    pthread_barrier_wait(&w->bar); /* the parts are the callers' again */
    return 0;
}

static int w_bcast(void *ctx, void *data, size_t len)
{
    rank_t *me = ctx;
    world_t *w = me->w;
    if (me->rank == 0) w->shared = data;
    pthread_barrier_wait(&w->bar);
    if (me->rank != 0) memcpy(data, w->shared, len);
    pthread_barrier_wait(&w->bar);
    return 0;
}

static int w_post(void *ctx, const void *data, size_t len)
{
    rank_t *me = ctx;
    world_t *w = me->w;
    pthread_mutex_lock(&w->mu);
    for (int r = 0; r < w->size; r++) {
        message_t *m;
        if (r == me->rank) continue;
        m = calloc(1, sizeof *m);
        m->data = malloc(len ? len : 1);
        memcpy(m->data, data, len);
        m->len = len;
        if (w->tail[r])
            w->tail[r]->next = m;
        else
            w->head[r] = m;
        w->tail[r] = m;
        w->posted++;
    }
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static int w_poll(void *ctx, void **data, size_t *len)
{
    rank_t *me = ctx;
    world_t *w = me->w;
    message_t *m;
    pthread_mutex_lock(&w->mu);
    if ((m = w->head[me->rank]) != NULL) {
        w->head[me->rank] = m->next;
        if (!m->next) w->tail[me->rank] = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    if (!m) return 0;
    *data = m->data;
    *len = m->len;
    free(m);
    return 1;
}

static int w_fetch_add(void *ctx, int k, uint64_t add, uint64_t *before)
{
    rank_t *me = ctx;
    *before = __atomic_fetch_add(&me->w->counter[k], add, __ATOMIC_SEQ_CST);
    return 0;
}

static int w_set(void *ctx, int k, uint64_t value)
{
    rank_t *me = ctx;
    __atomic_store_n(&me->w->counter[k], value, __ATOMIC_SEQ_CST);
    return 0;
}

static void *rank_main(void *arg)
{
    rank_t *me = arg;
    me->rc = tal_cluster_run(&me->opt, me->set->n, (const char *const *)me->set->seqs,
                             me->set->lens, &me->out);
    return NULL;
}

static int count_member(void *ctx, uint64_t member, uint64_t ref, const void *alignment)
{
    (void)member;
    (void)ref;
    (void)alignment;
    ++*(uint64_t *)ctx;
    return 0;
}

/* Two and three ranks, one or two workers each, over more than one batch of 4,096: every
 * rank's result is one process's, only rank 0 reports members, and the ranks did talk. */
static void test_ranks(void **state)
{
    set_t s = make_set(220, 20, 0.12, 60, 29);
    tal_cluster_opt_t opt;
    tal_cluster_t one;
    uint64_t one_members = 0;
    (void)state;
    assert_true(s.n > 4096);
    tal_cluster_opt_init(&opt, 0);
    opt.identity = 0.8;
    opt.threads = 2;
    opt.on_member = count_member;
    opt.ctx = &one_members;
    assert_int_equal(tal_cluster_run(&opt, s.n, (const char *const *)s.seqs, s.lens, &one), 0);
    assert_true(one.references < s.n / 2);
    for (int size = 2; size <= 3; size++) {
        world_t w;
        rank_t ranks[MAX_RANKS];
        pthread_t tids[MAX_RANKS];
        uint64_t members[MAX_RANKS] = {0};
        memset(&w, 0, sizeof w);
        w.size = size;
        pthread_mutex_init(&w.mu, NULL);
        pthread_barrier_init(&w.bar, NULL, (unsigned)size);
        for (int r = 0; r < size; r++) {
            ranks[r] = (rank_t){.w = &w, .rank = r, .opt = opt, .set = &s};
            ranks[r].comm = (tal_reduce_comm_t){r,      size,   &ranks[r],   w_gather, w_bcast,
                                                w_post, w_poll, w_fetch_add, w_set};
            ranks[r].opt.comm = &ranks[r].comm;
            ranks[r].opt.threads = 1 + r % 2;
            ranks[r].opt.ctx = &members[r];
            assert_int_equal(pthread_create(&tids[r], NULL, rank_main, &ranks[r]), 0);
        }
        for (int r = 0; r < size; r++) pthread_join(tids[r], NULL);
        for (int r = 0; r < size; r++) {
            assert_int_equal(ranks[r].rc, 0);
            assert_int_equal(ranks[r].out.references, one.references);
            assert_memory_equal(ranks[r].out.ref, one.ref, s.n * sizeof *one.ref);
            assert_memory_equal(ranks[r].out.identity, one.identity, s.n * sizeof *one.identity);
            assert_memory_equal(ranks[r].out.coverage, one.coverage, s.n * sizeof *one.coverage);
            assert_int_equal(members[r], r == 0 ? one_members : 0);
            tal_cluster_free(&ranks[r].out);
        }
        /* every decision but the copies' went to every other rank */
        assert_true(w.posted >= (s.n - one.duplicates) * (uint64_t)(size - 1));
        for (int r = 0; r < size; r++) assert_null(w.head[r]); /* and was taken */
        assert_int_equal(w.counter[0] + w.counter[1] > 0, 1);
        pthread_barrier_destroy(&w.bar);
        pthread_mutex_destroy(&w.mu);
    }
    tal_cluster_free(&one);
    free_set(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_90),    cmocka_unit_test(test_identity_70),
        cmocka_unit_test(test_ref_only),       cmocka_unit_test(test_stop_above),
        cmocka_unit_test(test_empty_and_tiny), cmocka_unit_test(test_groups),
        cmocka_unit_test(test_lengths),        cmocka_unit_test(test_evidence),
        cmocka_unit_test(test_ranks),
    };
    return cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
}
