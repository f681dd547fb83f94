/* Fuzz harness for the reader of tabular hit files and for hit expansion: any bytes are
 * read as a BLAST -outfmt 6 file, then expanded over a tiny delta store, strict and not. */
#define _GNU_SOURCE
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "test_support.h"
#include "tiny_reduction.h"
#include "talaria/deltas.h"
#include "talaria/error.h"
#include "talaria/expand.h"
#include "talaria/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STOP_RC (-1000) /* what the stopping callback returns */

/* what the last input gave, for the built-in inputs' expectations */
static struct {
    int read_rc, strict_rc;
    uint64_t expanded;
} g_last;

static char g_dir[PATH_MAX];
static tal_dstore_t *g_dstore;
static int g_ready;

static void cleanup(void)
{
    if (!g_ready) return;
    tal_dstore_close(g_dstore);
    tal_test_rm_rf(g_dir);
    g_ready = 0;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_hits: invariant broken: %s\n", what);
    abort();
}

/* The tiny protein reduction, opened once. */
static void init(void)
{
    char fasta[PATH_MAX + 64], deltas[PATH_MAX + 64];
    if (g_ready) return;
    tal_log_set_level(TAL_LOG_QUIET);
    if (tal_test_mkdtemp(g_dir, sizeof g_dir, "fuzz-hits") < 0) fail("mkdtemp failed");
    g_ready = 1;
    atexit(cleanup);
    if (tiny_reduce(g_dir, "protein", tiny_protein, fasta, deltas, sizeof fasta) != 0)
        fail("cannot reduce the tiny input");
    if (tal_dstore_open(&g_dstore, deltas, fasta, 1) != 0) fail("cannot open its delta store");
}

typedef struct {
    uint64_t max_line; /* the input's lines */
    uint64_t hits, last_line;
    uint64_t members, unknown; /* what expansion should add and count */
    uint64_t stop_at;          /* 0, or return STOP_RC at that hit */
    int expanding;             /* the hit may carry a member's subject */
} state_t;

static void check_hit(state_t *st, const tal_hit_t *hit)
{
    volatile unsigned char sink = 0;
    if (!hit->line) fail("a hit without its line");
    if (memchr(hit->line, '\n', hit->len)) fail("a line end inside a line");
    if (hit->line_no < 1 || hit->line_no > st->max_line) fail("a line number past the input");
    if (st->expanding ? hit->line_no < st->last_line : hit->line_no <= st->last_line)
        fail("line numbers that do not increase");
    st->last_line = hit->line_no;
    if (hit->subject_at > hit->rest_at || hit->rest_at > hit->len) fail("columns out of order");
    for (size_t k = 0; k < hit->len; k++) sink ^= (unsigned char)hit->line[k];
    if (!hit->subject) {
        size_t i = 0;
        if (hit->subject_at != hit->len || hit->subject_len) fail("a comment with a subject");
        while (i < hit->len && hit->line[i] && strchr(" \t\r", hit->line[i])) i++;
        if (i < hit->len && hit->line[0] != '#') fail("a hit line taken for a comment");
        return;
    }
    if (hit->subject_len == 0) fail("an empty subject");
    if (memchr(hit->subject, '\t', hit->subject_len) ||
        memchr(hit->subject, '\n', hit->subject_len))
        fail("a subject across columns");
    for (size_t k = 0; k < hit->subject_len; k++) sink ^= (unsigned char)hit->subject[k];
    (void)sink;
    if (hit->subject_at == 0 || hit->line[hit->subject_at - 1] != '\t')
        fail("a subject that is not the second column");
    if (!st->expanding && (hit->subject != hit->line + hit->subject_at ||
                           hit->subject_len != hit->rest_at - hit->subject_at))
        fail("a subject that is not the line's second column");
}

/* tal_hits_read's callback: checks the hit and works out what expansion will do with it. */
static int on_hit(void *arg, const tal_hit_t *hit)
{
    state_t *st = arg;
    uint64_t id;
    check_hit(st, hit);
    st->hits++;
    if (hit->subject) {
        tal_drec_t rec;
        if (tal_subject_find(g_dstore, hit->subject, hit->subject_len, &id) != 0) {
            st->unknown++;
        } else if (tal_dstore_record(g_dstore, id, &rec) == 0 && rec.flags & TAL_DREC_REFERENCE) {
            const uint64_t *members;
            uint64_t count;
            if (tal_dstore_members(g_dstore, rec.ref, &members, &count) != 0)
                fail("members of a reference cannot be listed");
            st->members += count;
        }
    }
    return st->stop_at && st->hits == st->stop_at ? STOP_RC : 0;
}

static int on_expanded(void *arg, const tal_hit_t *hit)
{
    state_t *st = arg;
    check_hit(st, hit);
    st->hits++;
    return 0;
}

static FILE *open_input(const uint8_t *data, size_t size)
{
    /* fmemopen refuses an empty buffer */
    FILE *in = size ? fmemopen((void *)(uintptr_t)data, size, "r") : fopen("/dev/null", "r");
    if (!in) fail("cannot open the input as a stream");
    return in;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    state_t read = {0}, stopped = {0}, expanded[2];
    int read_rc, stop_rc, rc[2];
    uint64_t max_line = 1;
    FILE *in;
    init();
    for (size_t i = 0; i < size; i++) max_line += data[i] == '\n';

    read.max_line = max_line;
    in = open_input(data, size);
    read_rc = tal_hits_read(in, "fuzz.m8", on_hit, &read);
    fclose(in);
    if (read_rc != 0 && read_rc != TAL_EINPUT) fail("tal_hits_read gave an unexpected error");

    /* a callback's error stops the reading and is what it returns */
    stopped.max_line = max_line;
    stopped.stop_at = 3;
    in = open_input(data, size);
    stop_rc = tal_hits_read(in, "fuzz.m8", on_hit, &stopped);
    fclose(in);
    if (read.hits >= 3 ? stop_rc != STOP_RC || stopped.hits != 3 : stop_rc != read_rc)
        fail("a callback's error does not stop the reading");

    for (int strict = 0; strict < 2; strict++) {
        tal_expander_t *x = NULL;
        const char *first = NULL;
        uint64_t first_line = 0, unknown;
        memset(&expanded[strict], 0, sizeof expanded[strict]);
        expanded[strict].max_line = max_line;
        expanded[strict].expanding = 1;
        if (tal_expander_create(&x, g_dstore, strict, on_expanded, &expanded[strict]) != 0)
            fail("cannot create an expander");
        in = open_input(data, size);
        rc[strict] = tal_expander_feed_file(x, in, "fuzz.m8");
        fclose(in);
        unknown = tal_expander_unknown(x, &first, &first_line);
        if (unknown && (!first || first_line < 1 || first_line > max_line))
            fail("unknown subjects without the first of them");
        tal_expander_warn(x, "fuzz.m8");
        tal_expander_free(x);
        if (strict) {
            if (rc[1] != 0 && rc[1] != TAL_EINPUT && rc[1] != TAL_ENOTFOUND)
                fail("strict expansion gave an unexpected error");
            if (unknown) fail("strict expansion counted unknown subjects");
            if (rc[1] != TAL_ENOTFOUND && rc[1] != rc[0]) fail("strict and not disagree");
            if (rc[1] == 0 && expanded[1].hits != expanded[0].hits)
                fail("strict expansion wrote other hits");
            if (rc[0] == 0 && read.unknown == 0 && rc[1] != 0)
                fail("strict expansion refused known subjects");
        } else {
            if (rc[0] != read_rc) fail("expansion and reading disagree on the input");
            if (unknown != read.unknown) fail("expansion counted other unknown subjects");
            if (expanded[0].hits != read.hits + read.members)
                fail("expansion wrote another number of hits than the store's members give");
        }
    }
    g_last.read_rc = read_rc;
    g_last.strict_rc = rc[1];
    g_last.expanded = expanded[0].hits;
    return 0;
}

#ifndef TAL_LIBFUZZER

/* ---- built-in inputs (the seed corpus is tests/fuzz/corpus/hits) ---------------------- */

static const char *const texts[] = {
    "q1\tsp|P11111|REF1_HUMAN\t100.0\t120\t0\t0\t1\t120\t1\t120\t1e-80\t250\n",
    "q1\tP11111\t99\nq1\tP11111\t98\nq2\tm1\nq3\tP33333\t1\nq4\tm4\n",
    "# BLASTP\n# Fields: query, subject\n\nq1\tP44444\n   \n\t\t\n",
    "q1\tnot_there\nq2\tP11111\n",
    "q1\n",
    "q1\t\n",
    "q1\tP11111\r\nq2\tempty\r\n",
    "q1\tP11111\t\r\n\r\n",
    "q1\tP11111",
    "\tP11111\n",
    "#",
    "\n\n\n",
    "q1\tP11111\tx\tx\tx\tx\tx\tx\tx\tx\tx\tx\tx\tx\tx\tx\n",
};

static const struct {
    const char *text;
    int read_rc, strict_rc;
    uint64_t expanded;
} expected[] = {
    {"q1\tsp|P11111|REF1_HUMAN\t100\n", 0, 0, 4},
    {"q1\tP11111\nq1\tm1\n", 0, 0, 5},
    {"q1\tm4\r\n# c\n\n", 0, 0, 4},
    {"q1\tP44444\nq2\tempty\n", 0, 0, 2},
    {"q1\tP11111\nq2\tnot_there\n", 0, TAL_ENOTFOUND, 5},
    {"q1\tP11111\nq2\n", TAL_EINPUT, TAL_EINPUT, 4},
};

static int run_builtin(void)
{
    static const char with_nul[] = "q1\tP11111\n\0\tP11111\nq2\tP1\0"
                                   "11\n";
    int count = 0;
    char *big;
    size_t n = 0;
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++, count++)
        LLVMFuzzerTestOneInput((const uint8_t *)texts[i], strlen(texts[i]));
    /* what the tiny reduction gives: reference 1 has three members, m4 one */
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++, count++) {
        LLVMFuzzerTestOneInput((const uint8_t *)expected[i].text, strlen(expected[i].text));
        if (g_last.read_rc != expected[i].read_rc || g_last.strict_rc != expected[i].strict_rc ||
            g_last.expanded != expected[i].expanded) {
            fprintf(stderr, "fuzz_hits: '%s' gave %d, %d and %llu hits\n", expected[i].text,
                    g_last.read_rc, g_last.strict_rc, (unsigned long long)g_last.expanded);
            abort();
        }
    }
    LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
    LLVMFuzzerTestOneInput((const uint8_t *)with_nul, sizeof with_nul - 1);
    count += 2;
    /* a line of a megabyte, then many hits on one reference */
    if (!(big = malloc(3u << 20))) fail("out of memory");
    memcpy(big, "q\t", 2);
    for (n = 2; n < (1u << 20); n++) big[n] = 'P';
    big[n++] = '\n';
    while (n < (2u << 20)) n += (size_t)sprintf(big + n, "q%zu\tP11111\t1\n", n);
    LLVMFuzzerTestOneInput((const uint8_t *)big, n);
    free(big);
    count++;
    return count;
}

int main(int argc, char **argv) { return replay_main("fuzz_hits", argc, argv, run_builtin); }

#endif
