/* Unit tests for talaria/expand.h over a small delta store written here: which hits come
 * out and how members are named, unknown subjects counted or refused, and bad lines named
 * by file and line. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "talaria/deltas.h"
#include "talaria/error.h"
#include "talaria/expand.h"
#include "talaria/log.h"
#include "test_dstore.h"

typedef struct {
    fixture_t fx;
    tal_dstore_t *d;
} state_t;

/* The emitted hits as lines, the way talaria expand writes them. */
typedef struct {
    char *text;
    size_t size;
    FILE *f;
    int hits, comments;
    int fail_after; /* > 0: the hit with this number returns TAL_EIO */
} sink_t;

static int collect(void *arg, const tal_hit_t *hit)
{
    sink_t *s = arg;
    if (s->fail_after && s->hits + s->comments + 1 == s->fail_after) return TAL_EIO;
    if (!hit->subject) {
        s->comments++;
        fprintf(s->f, "%.*s\n", (int)hit->len, hit->line);
        return 0;
    }
    s->hits++;
    fprintf(s->f, "%.*s%.*s%.*s\n", (int)hit->subject_at, hit->line, (int)hit->subject_len,
            hit->subject, (int)(hit->len - hit->rest_at), hit->line + hit->rest_at);
    return 0;
}

static void sink_open(sink_t *s)
{
    memset(s, 0, sizeof *s);
    s->f = open_memstream(&s->text, &s->size);
}

static void sink_close(sink_t *s)
{
    fclose(s->f);
    s->f = NULL;
}

static int setup(void **state)
{
    state_t *st = calloc(1, sizeof *st);
    if (!st || fixture_build(&st->fx) < 0 || tal_dstore_open(&st->d, st->fx.deltas, NULL, 0) < 0)
        return -1;
    *state = st;
    return 0;
}

static int teardown(void **state)
{
    state_t *st = *state;
    tal_dstore_close(st->d);
    fixture_free(&st->fx);
    free(st);
    return 0;
}

static int feed(tal_expander_t *x, const char *line, uint64_t line_no)
{
    return tal_expander_feed(x, line, strlen(line), "hits.m8", line_no);
}

static void test_members_named_like_the_reference(void **state)
{
    state_t *st = *state;
    tal_expander_t *x;
    sink_t s;
    sink_open(&s);
    assert_int_equal(tal_expander_create(&x, st->d, 0, collect, &s), 0);
    /* by ACC: the members by ACC when they have one, else their first word */
    assert_int_equal(feed(x, "q1\tP11111\t99.0\t130\n", 1), 0);
    assert_int_equal(feed(x, "q2\tP22222\t98.0", 2), 0);
    /* by first word */
    assert_int_equal(feed(x, "q3\tsp|P22222|REF2_MOUSE\t97.0\r", 3), 0);
    /* a member, a reference without members, a comment and a blank line pass once */
    assert_int_equal(feed(x, "q4\tm3\t90.0", 4), 0);
    assert_int_equal(feed(x, "q5\tempty", 5), 0);
    assert_int_equal(feed(x, "# BLASTP 2.14", 6), 0);
    assert_int_equal(feed(x, "", 7), 0);
    sink_close(&s);
    assert_string_equal(s.text, "q1\tP11111\t99.0\t130\n"
                                "q1\tm1\t99.0\t130\n"
                                "q1\tm3\t99.0\t130\n"
                                "q2\tP22222\t98.0\n"
                                "q2\tQ33333\t98.0\n"
                                "q3\tsp|P22222|REF2_MOUSE\t97.0\r\n"
                                "q3\ttr|Q33333|M2_RAT\t97.0\r\n"
                                "q4\tm3\t90.0\n"
                                "q5\tempty\n"
                                "# BLASTP 2.14\n"
                                "\n");
    assert_int_equal(s.hits, 9);
    assert_int_equal(s.comments, 2);
    assert_int_equal(tal_expander_unknown(x, NULL, NULL), 0);
    tal_expander_free(x);
    tal_expander_free(NULL);
    free(s.text);
}

/* Subjects as the aligners print talaria's headers, and members' own titles */
static void test_subject_forms_and_titles(void **state)
{
    state_t *st = *state;
    tal_expander_t *x;
    sink_t s;
    sink_open(&s);
    assert_int_equal(tal_expander_create(&x, st->d, 1, collect, &s), 0);
    /* -a kraken's tag; MMseqs2's ACC of lcl|; a version; the tag on the ACC form */
    assert_int_equal(feed(x, "q1\tsp|P22222|REF2_MOUSE|kraken:taxid|10090\t9", 1), 0);
    assert_int_equal(feed(x, "q2\tlcl|P22222\t9", 2), 0);
    assert_int_equal(feed(x, "q3\tP22222.4\t9", 3), 0);
    assert_int_equal(feed(x, "q4\tP22222|kraken:taxid|10090\t9", 4), 0);
    /* stitle as DIAMOND prints it (whole header), as BLAST does (description), tagged */
    assert_int_equal(feed(x, "q5\tP22222\t9\tsp|P22222|REF2_MOUSE reference two\treference two", 5),
                     0);
    assert_int_equal(
        feed(x, "q6\tsp|P11111|REF1_HUMAN\tsp|P11111|REF1_HUMAN|kraken:taxid|9606 reference one\r",
             6),
        0);
    /* a column that only looks like the title is left alone */
    assert_int_equal(feed(x, "q7\tP22222\treference two!\tsp|P22222|REF2_MOUSE", 7), 0);
    sink_close(&s);
    assert_string_equal(s.text,
                        "q1\tsp|P22222|REF2_MOUSE|kraken:taxid|10090\t9\n"
                        "q1\ttr|Q33333|M2_RAT\t9\n"
                        "q2\tlcl|P22222\t9\n"
                        "q2\tQ33333\t9\n"
                        "q3\tP22222.4\t9\n"
                        "q3\tQ33333\t9\n"
                        "q4\tP22222|kraken:taxid|10090\t9\n"
                        "q4\tQ33333\t9\n"
                        "q5\tP22222\t9\tsp|P22222|REF2_MOUSE reference two\treference two\n"
                        "q5\tQ33333\t9\ttr|Q33333|M2_RAT identical to two\tidentical to two\n"
                        "q6\tsp|P11111|REF1_HUMAN\tsp|P11111|REF1_HUMAN|kraken:taxid|9606 "
                        "reference one\r\n"
                        "q6\tm1\tm1 a member of one with two substitutions\r\n"
                        "q6\tm3\tm3 a shorter member of one\r\n"
                        "q7\tP22222\treference two!\tsp|P22222|REF2_MOUSE\n"
                        "q7\tQ33333\treference two!\tsp|P22222|REF2_MOUSE\n");
    tal_expander_free(x);
    free(s.text);
}

static void test_unknown_subjects(void **state)
{
    state_t *st = *state;
    tal_expander_t *x;
    sink_t s;
    const char *first = NULL;
    uint64_t first_line = 0;
    capture_t cap;
    char *err;
    sink_open(&s);
    assert_int_equal(tal_expander_create(&x, st->d, 0, collect, &s), 0);
    assert_int_equal(feed(x, "q1\tm1", 1), 0);
    assert_int_equal(feed(x, "q1\tnosuchA\t1", 2), 0);
    assert_int_equal(feed(x, "q2\tnosuchA\t1", 3), 0);
    assert_int_equal(feed(x, "q2\tnosuchB", 4), 0);
    assert_int_equal(feed(x, "q3\tP11111", 5), 0);
    sink_close(&s);
    assert_int_equal(s.hits, 4 + 3);
    assert_non_null(strstr(s.text, "q2\tnosuchB\n"));
    assert_int_equal(tal_expander_unknown(x, &first, &first_line), 3);
    assert_string_equal(first, "nosuchA");
    assert_int_equal(first_line, 2);
    capture_begin(&cap, &st->fx);
    tal_expander_warn(x, "hits.m8");
    err = capture_end(&cap);
    assert_non_null(strstr(err, "warning: hits.m8: 3 hit lines name a subject that is not in "));
    assert_non_null(strstr(err, "(the first: 'nosuchA' on line 2); passed through unchanged\n"));
    tal_expander_free(x);
    free(s.text);
    free(err);

    /* strict: the first unknown subject is an error naming file and line */
    sink_open(&s);
    assert_int_equal(tal_expander_create(&x, st->d, 1, collect, &s), 0);
    assert_int_equal(feed(x, "q1\tm1", 1), 0);
    capture_begin(&cap, &st->fx);
    assert_int_equal(feed(x, "q1\tnosuchA\t1", 2), TAL_ENOTFOUND);
    err = capture_end(&cap);
    assert_non_null(strstr(err, "error: hits.m8: line 2: subject 'nosuchA' is not in "));
    sink_close(&s);
    assert_int_equal(s.hits, 1);
    tal_expander_free(x);
    free(s.text);
    free(err);
}

static void test_bad_lines(void **state)
{
    state_t *st = *state;
    tal_expander_t *x;
    sink_t s;
    capture_t cap;
    char *err;
    sink_open(&s);
    assert_int_equal(tal_expander_create(&x, st->d, 0, collect, &s), 0);
    capture_begin(&cap, &st->fx);
    assert_int_equal(feed(x, "just_one_field", 12), TAL_EINPUT);
    assert_int_equal(feed(x, "q\t\t1.0", 13), TAL_EINPUT); /* an empty subject */
    err = capture_end(&cap);
    assert_string_equal(err, "talaria: error: hits.m8: line 12: not a tabular hit "
                             "(needs a query and a subject, separated by a tab)\n"
                             "talaria: error: hits.m8: line 13: not a tabular hit "
                             "(needs a query and a subject, separated by a tab)\n");
    sink_close(&s);
    assert_int_equal(s.hits + s.comments, 0);
    tal_expander_free(x);
    free(s.text);
    free(err);
}

static FILE *text_file(const char *text)
{
    FILE *f = tmpfile();
    fputs(text, f);
    rewind(f);
    return f;
}

static void test_feed_file(void **state)
{
    state_t *st = *state;
    tal_expander_t *x;
    sink_t s;
    capture_t cap;
    char *err;
    FILE *in = text_file("# hits\nq1\tP22222\t1\nq2\tnosuch\t2\n");
    sink_open(&s);
    assert_int_equal(tal_expander_create(&x, st->d, 0, collect, &s), 0);
    assert_int_equal(tal_expander_feed_file(x, in, "a.m8"), 0);
    fclose(in);
    sink_close(&s);
    assert_string_equal(s.text, "# hits\nq1\tP22222\t1\nq1\tQ33333\t1\nq2\tnosuch\t2\n");
    {
        const char *first;
        uint64_t line;
        assert_int_equal(tal_expander_unknown(x, &first, &line), 1);
        assert_int_equal(line, 3);
    }
    tal_expander_free(x);
    free(s.text);

    /* the reading stops at the bad line, named by the file's name and its line */
    in = text_file("q1\tm1\n\nbroken\nq3\tm3\n");
    sink_open(&s);
    assert_int_equal(tal_expander_create(&x, st->d, 0, collect, &s), 0);
    capture_begin(&cap, &st->fx);
    assert_int_equal(tal_expander_feed_file(x, in, "b.m8"), TAL_EINPUT);
    err = capture_end(&cap);
    fclose(in);
    sink_close(&s);
    assert_non_null(strstr(err, "b.m8: line 3: not a tabular hit"));
    assert_string_equal(s.text, "q1\tm1\n\n");
    tal_expander_free(x);
    free(s.text);
    free(err);

    /* the callback's error stops it too */
    in = text_file("q1\tP11111\nq2\tm1\n");
    sink_open(&s);
    s.fail_after = 2;
    assert_int_equal(tal_expander_create(&x, st->d, 0, collect, &s), 0);
    assert_int_equal(tal_expander_feed_file(x, in, "c.m8"), TAL_EIO);
    fclose(in);
    sink_close(&s);
    assert_string_equal(s.text, "q1\tP11111\n");
    tal_expander_free(x);
    free(s.text);
}

static int count_pairs(void *arg, const tal_hit_t *hit)
{
    if (hit->subject) (*(int *)arg)++;
    return 0;
}

static void test_hit_reader(void **state)
{
    tal_hit_t hit;
    int pairs = 0;
    FILE *in;
    (void)state;
    assert_int_equal(tal_hit_parse("q\ts\r\n", 5, "x", 1, &hit), 0);
    assert_int_equal(hit.len, 4);
    assert_int_equal(hit.subject_len, 1);
    assert_int_equal(hit.subject_at, 2);
    assert_int_equal(hit.rest_at, 3);
    assert_int_equal(hit.line_no, 1);
    assert_int_equal(tal_hit_parse("  \t", 3, "x", 2, &hit), 0);
    assert_null(hit.subject);
    assert_int_equal(hit.subject_at, 3);
    /* a NUL byte (a compressed or binary file) is refused, not passed on as a subject */
    assert_int_equal(tal_hit_parse("q\ts\0x\n", 6, "x", 3, &hit), TAL_EINPUT);
    in = text_file("a\tb\t1\n# c\na\tc\n\n");
    assert_int_equal(tal_hits_read(in, "p.m8", count_pairs, &pairs), 0);
    fclose(in);
    assert_int_equal(pairs, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members_named_like_the_reference),
        cmocka_unit_test(test_subject_forms_and_titles),
        cmocka_unit_test(test_unknown_subjects),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_feed_file),
        cmocka_unit_test(test_hit_reader),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
