/* Unit tests for the TOML reader's API: tal_toml_get, key names, the positions of keys and
 * values, file order, the errors' messages and positions, and tal_toml_parse_file. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "test_support.h"

/* ---- the messages, through the log sink ---------------------------------------------- */

static char caught[4096];
static int caught_count;

static void catch_line(void *ctx, tal_log_level_t level, const char *line)
{
    (void)ctx;
    assert_int_equal(level, TAL_LOG_ERROR);
    snprintf(caught, sizeof caught, "%s", line);
    caught_count++;
}

static void catch_start(void)
{
    caught[0] = '\0';
    caught_count = 0;
    tal_log_set_level(TAL_LOG_ERROR);
    tal_log_set_sink(catch_line, NULL);
}

static void catch_stop(void)
{
    tal_log_set_sink(NULL, NULL);
    tal_log_set_level(TAL_LOG_QUIET);
}

/* Parses text from a buffer of exactly its length (no NUL after it), so that a read past
 * the end shows under ASan. */
static int parse(const char *text, tal_toml_doc_t *doc)
{
    size_t len = strlen(text);
    char *copy = malloc(len ? len : 1);
    int rc;
    assert_non_null(copy);
    memcpy(copy, text, len);
    rc = tal_toml_parse(copy, len, "test.toml", doc);
    free(copy);
    return rc;
}

static void parse_ok(const char *text, tal_toml_doc_t *doc)
{
    int rc;
    catch_start();
    rc = parse(text, doc);
    catch_stop();
    if (rc != 0) print_error("parsing \"%s\" failed: %s\n", text, caught);
    assert_int_equal(rc, 0);
    assert_int_equal(caught_count, 0);
}

static const tal_toml_value_t *get(const tal_toml_doc_t *doc, const char *key, tal_toml_type_t type)
{
    const tal_toml_value_t *v = tal_toml_get(doc, key);
    if (!v) print_error("no key %s\n", key);
    assert_non_null(v);
    assert_int_equal(v->type, type);
    assert_string_equal(v->key, key);
    return v;
}

/* ---- values and keys ----------------------------------------------------------------- */

static void test_get_values(void **state)
{
    tal_toml_doc_t doc;
    const tal_toml_value_t *v;
    (void)state;
    parse_ok("# a profile\n"
             "name = \"low \\u00e9\\tmemory\"\n"
             "path = 'C:\\tmp'\n"
             "[memory]\n"
             "max_memory = 4_096\n"
             "hex = 0xff\n"
             "min = -9223372036854775808\n"
             "ratio = 0.75\n"
             "neg_inf = -inf\n"
             "nan = nan\n"
             "low = true\n"
             "high = false\n"
             "sizes = [1, \"two\", [3.5], []]\n",
             &doc);
    assert_int_equal(doc.count, 11);
    assert_string_equal(doc.name, "test.toml");
    assert_string_equal(get(&doc, "name", TAL_TOML_STRING)->string, "low \xc3\xa9\tmemory");
    assert_string_equal(get(&doc, "path", TAL_TOML_STRING)->string, "C:\\tmp");
    assert_true(get(&doc, "memory.max_memory", TAL_TOML_INTEGER)->integer == 4096);
    assert_true(get(&doc, "memory.hex", TAL_TOML_INTEGER)->integer == 255);
    assert_true(get(&doc, "memory.min", TAL_TOML_INTEGER)->integer == INT64_MIN);
    assert_true(get(&doc, "memory.ratio", TAL_TOML_FLOAT)->number == 0.75);
    v = get(&doc, "memory.neg_inf", TAL_TOML_FLOAT);
    assert_true(isinf(v->number) && v->number < 0);
    assert_true(isnan(get(&doc, "memory.nan", TAL_TOML_FLOAT)->number));
    assert_int_equal(get(&doc, "memory.low", TAL_TOML_BOOL)->boolean, 1);
    assert_int_equal(get(&doc, "memory.high", TAL_TOML_BOOL)->boolean, 0);
    v = get(&doc, "memory.sizes", TAL_TOML_ARRAY);
    assert_int_equal(v->item_count, 4);
    assert_int_equal(v->items[0].type, TAL_TOML_INTEGER);
    assert_true(v->items[0].integer == 1);
    assert_null(v->items[0].key);
    assert_string_equal(v->items[1].string, "two");
    assert_int_equal(v->items[2].type, TAL_TOML_ARRAY);
    assert_int_equal(v->items[2].item_count, 1);
    assert_true(v->items[2].items[0].number == 3.5);
    assert_int_equal(v->items[3].type, TAL_TOML_ARRAY);
    assert_int_equal(v->items[3].item_count, 0);
    /* tables are not values, and keys are whole */
    assert_null(tal_toml_get(&doc, "memory"));
    assert_null(tal_toml_get(&doc, "max_memory"));
    assert_null(tal_toml_get(&doc, "memory.max"));
    assert_null(tal_toml_get(&doc, NULL));
    assert_null(tal_toml_get(NULL, "name"));
    tal_toml_free(&doc);
    assert_int_equal(doc.count, 0);
    assert_null(doc.values);
    tal_toml_free(&doc); /* twice is harmless */
}

static void test_key_names(void **state)
{
    tal_toml_doc_t doc;
    (void)state;
    parse_ok("memory.max_memory = 1\n"
             "a.\"b c\" = 2\n"
             "\"a.b\" = 3\n"
             "\"plain\" = 4\n"
             "'' = 5\n"
             "\"q\\\"uote\" = 6\n"
             "[t . 'x y' ]\n"
             "k . \"tab\\t\" = 7\n",
             &doc);
    assert_true(get(&doc, "memory.max_memory", TAL_TOML_INTEGER)->integer == 1);
    /* a part that is not a bare key is quoted, so a."b c" and "a.b" stay apart */
    assert_true(get(&doc, "a.\"b c\"", TAL_TOML_INTEGER)->integer == 2);
    assert_true(get(&doc, "\"a.b\"", TAL_TOML_INTEGER)->integer == 3);
    assert_null(tal_toml_get(&doc, "a.b"));
    /* a quoted key that could be bare is the bare key */
    assert_true(get(&doc, "plain", TAL_TOML_INTEGER)->integer == 4);
    assert_true(get(&doc, "\"\"", TAL_TOML_INTEGER)->integer == 5);
    assert_true(get(&doc, "\"q\\\"uote\"", TAL_TOML_INTEGER)->integer == 6);
    assert_true(get(&doc, "t.\"x y\".k.\"tab\\u0009\"", TAL_TOML_INTEGER)->integer == 7);
    tal_toml_free(&doc);
}

static void test_file_order(void **state)
{
    static const char *const order[] = {"top", "b.one", "a.two", "a.three.x", "b.c.four", "z"};
    tal_toml_doc_t doc;
    (void)state;
    parse_ok("top = 1\n"
             "[b]\none = 1\n"
             "[a]\ntwo = 2\nthree.x = 3\n"
             "[b.c]\nfour = 4\n"
             "[y]\n[y.z]\n[empty]\n",
             &doc);
    assert_int_equal(doc.count, 5);
    for (size_t i = 0; i < doc.count; i++) assert_string_equal(doc.values[i].key, order[i]);
    tal_toml_free(&doc);
    parse_ok("", &doc);
    assert_int_equal(doc.count, 0);
    tal_toml_free(&doc);
}

static void expect_at(const tal_toml_value_t *v, int key_line, int key_column, int line, int column)
{
    if (v->key_line != key_line || v->key_column != key_column || v->line != line ||
        v->column != column)
        print_error("%s: key at %d:%d, value at %d:%d; want %d:%d and %d:%d\n",
                    v->key ? v->key : "(item)", v->key_line, v->key_column, v->line, v->column,
                    key_line, key_column, line, column);
    assert_int_equal(v->key_line, key_line);
    assert_int_equal(v->key_column, key_column);
    assert_int_equal(v->line, line);
    assert_int_equal(v->column, column);
}

static void test_positions(void **state)
{
    tal_toml_doc_t doc;
    const tal_toml_value_t *v;
    (void)state;
    parse_ok("a = 1\n"
             "  bb  =   \"x\"\n"
             /* a tab and a two-byte letter are one column each */
             "\t\"\xc3\xa9\" = 'y' # c\n"
             "[t]\r\n"
             "d.e = [ 10,\r\n"
             /* the crab is four bytes, one column */
             "        \"\xf0\x9f\xa6\x80\", 30\n"
             "]\n"
             "m = \"\"\"\n"
             "x\n"
             "y\"\"\"\n"
             "n = 1\n"
             "arr = [\n"
             "  # c\n"
             "  true ]\n"
             "last = 2",
             &doc);
    expect_at(get(&doc, "a", TAL_TOML_INTEGER), 1, 1, 1, 5);
    expect_at(get(&doc, "bb", TAL_TOML_STRING), 2, 3, 2, 11);
    expect_at(get(&doc, "\"\xc3\xa9\"", TAL_TOML_STRING), 3, 2, 3, 8);
    v = get(&doc, "t.d.e", TAL_TOML_ARRAY);
    expect_at(v, 5, 1, 5, 7);
    assert_int_equal(v->item_count, 3);
    expect_at(&v->items[0], 0, 0, 5, 9);
    expect_at(&v->items[1], 0, 0, 6, 9);
    expect_at(&v->items[2], 0, 0, 6, 14);
    expect_at(get(&doc, "t.m", TAL_TOML_STRING), 8, 1, 8, 5);
    assert_string_equal(get(&doc, "t.m", TAL_TOML_STRING)->string, "x\ny");
    /* lines go on counting after a multi-line string and a multi-line array */
    expect_at(get(&doc, "t.n", TAL_TOML_INTEGER), 11, 1, 11, 5);
    v = get(&doc, "t.arr", TAL_TOML_ARRAY);
    expect_at(&v->items[0], 0, 0, 14, 3);
    expect_at(get(&doc, "t.last", TAL_TOML_INTEGER), 15, 1, 15, 8);
    tal_toml_free(&doc);
}

/* ---- errors -------------------------------------------------------------------------- */

typedef struct {
    const char *text;
    const char *message; /* what follows "talaria: error: " */
} error_case_t;

static const error_case_t error_cases[] = {
    {"a = \"abc", "test.toml:1:5: unterminated string"},
    {"x = 1\nlow = 'abc\n", "test.toml:2:7: unterminated string (a newline"},
    {"a = 1\nb = 2\na = 3\n", "test.toml:3:1: duplicate key a (first defined at line 1)"},
    {"[a]\n[b]\n  [a]\n", "test.toml:3:3: table [a] is defined twice (first at line 1)"},
    {"a = 1\n[a]\n", "test.toml:2:1: a is a value (line 1), it cannot also be a table"},
    {"[a.b]\n[a]\nb = 1\n", "test.toml:3:1: a.b is already a table (line 1), it cannot"},
    {"[f]\napple.color = 1\n[f.apple]\n",
     "test.toml:3:1: table [f.apple] is already defined by dotted keys at line 2"},
    {"[a.b]\n[a]\nb.c = 1\n", "test.toml:3:1: dotted keys cannot add to table [a.b]"},
    {"s = \"a\\qb\"", "test.toml:1:7: invalid escape '\\q'"},
    {"s = \"\\uDC00\"", "test.toml:1:6: \\uDC00 is not a Unicode scalar value"},
    {"s = 'a\x01'", "test.toml:1:7: control character U+0001 in a string"},
    {"n = 9223372036854775807\nm = 9223372036854775808", "test.toml:2:5: integer out of range"},
    {"n = -9223372036854775809", "test.toml:1:5: integer out of range"},
    {"n = 0x1_0000_0000_0000_0000", "test.toml:1:5: integer out of range"},
    {"n = 007", "test.toml:1:5: leading zeros are not allowed"},
    {"n = 1__2", "test.toml:1:6: '_' in a number must be between two digits"},
    {"n = _1", "test.toml:1:5: '_' in a number must be between two digits"},
    {"n = 1.", "test.toml:1:6: a '.' in a number must be followed by a digit"},
    {"n = .1", "test.toml:1:5: a number needs a digit before its '.'"},
    {"n = 1e+", "test.toml:1:6: the exponent of a number needs digits"},
    {"n = 0b12", "test.toml:1:8: unexpected '2' in a binary integer"},
    {"key\n", "test.toml:1:4: the key key has no value"},
    {"key =   # nothing\n", "test.toml:1:9: the key key has no value after '='"},
    {"a = 1 2", "test.toml:1:7: unexpected '2' after the value"},
    {"[t] x", "test.toml:1:5: unexpected 'x' after the table header"},
    {"a = \"\xc3\xa9\xff\"", "test.toml:1:7: invalid UTF-8 (byte 0xFF)"},
    {"a = \"x\ny\"", "test.toml:1:5: unterminated string (a newline"},
    {"a = 1\r\n\rb = 2", "test.toml:2:1: carriage return without a line feed"},
    {"a = [1,\n  2\n  3]", "test.toml:3:3: expected ',' or ']' after an array item, found '3'"},
    {"a = [1,\n", "test.toml:1:5: unterminated array"},
    {"a = word", "test.toml:1:5: expected a value (strings need quotes)"},
    {"p = { x = 1 }",
     "test.toml:1:5: inline tables are not supported in talaria configuration files"},
    {"\n [[p]]", "test.toml:2:2: arrays of tables ([[...]]) are not supported"},
    {"d = 2024-01-31", "test.toml:1:5: dates and times are not supported"},
    {"s = \"\\u0000\"", "test.toml:1:6: NUL characters are not supported"},
    {"a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
     "test.toml:1:37: arrays nested more than 32 deep"},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof error_cases / sizeof *error_cases; i++) {
        const error_case_t *c = &error_cases[i];
        tal_toml_doc_t doc;
        const char *at;
        int rc;
        catch_start();
        rc = parse(c->text, &doc);
        catch_stop();
        at = strstr(caught, "error: ");
        if (rc != TAL_EUSAGE || caught_count != 1 || !at ||
            strncmp(at + 7, c->message, strlen(c->message)))
            print_error("case %zu \"%s\": rc %d, %d message(s), last \"%s\"; want \"%s\"\n", i,
                        c->text, rc, caught_count, caught, c->message);
        assert_int_equal(rc, TAL_EUSAGE);
        assert_int_equal(caught_count, 1);
        assert_non_null(at);
        assert_int_equal(strncmp(at + 7, c->message, strlen(c->message)), 0);
        /* a refused document holds nothing */
        assert_int_equal(doc.count, 0);
        assert_null(doc.values);
        assert_null(doc.name);
        tal_toml_free(&doc);
    }
}

/* The text need not end in NUL: len bytes are the whole input. */
static void test_length_bounds_the_text(void **state)
{
    tal_toml_doc_t doc;
    (void)state;
    assert_int_equal(tal_toml_parse("a = 12345", 6, "cut.toml", &doc), 0);
    assert_true(get(&doc, "a", TAL_TOML_INTEGER)->integer == 12);
    tal_toml_free(&doc);
    catch_start();
    assert_int_equal(tal_toml_parse("a = \"x\" # more", 6, NULL, &doc), TAL_EUSAGE);
    catch_stop();
    assert_non_null(strstr(caught, ":1:5: unterminated string"));
}

/* ---- files --------------------------------------------------------------------------- */

static void test_parse_file(void **state)
{
    char dir[4096], path[4200], missing[4200];
    tal_toml_doc_t doc;
    FILE *fp;
    (void)state;
    assert_int_equal(tal_test_mkdtemp(dir, sizeof dir, "toml"), 0);
    snprintf(path, sizeof path, "%s/low.toml", dir);
    snprintf(missing, sizeof missing, "%s/missing.toml", dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("[memory]\nmax_memory = \"4G\"\n", fp);
    fclose(fp);
    assert_int_equal(tal_toml_parse_file(path, &doc), 0);
    assert_string_equal(doc.name, path);
    assert_string_equal(get(&doc, "memory.max_memory", TAL_TOML_STRING)->string, "4G");
    tal_toml_free(&doc);

    /* errors name the file as given */
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("[memory]\nmax_memory = 4G\n", fp);
    fclose(fp);
    catch_start();
    assert_int_equal(tal_toml_parse_file(path, &doc), TAL_EUSAGE);
    catch_stop();
    assert_non_null(strstr(caught, path));
    assert_non_null(strstr(caught, "low.toml:2:15: unexpected 'G' in a number"));

    /* a missing file and a directory are I/O errors naming the path */
    catch_start();
    assert_int_equal(tal_toml_parse_file(missing, &doc), TAL_EIO);
    catch_stop();
    assert_int_equal(caught_count, 1);
    assert_non_null(strstr(caught, missing));
    assert_int_equal(doc.count, 0);
    assert_null(doc.values);
    assert_int_equal(tal_exit_code(TAL_EUSAGE), 2);
    catch_start();
    assert_int_equal(tal_toml_parse_file(dir, &doc), TAL_EIO);
    catch_stop();
    assert_non_null(strstr(caught, dir));
    tal_test_rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_values), cmocka_unit_test(test_key_names),
        cmocka_unit_test(test_file_order), cmocka_unit_test(test_positions),
        cmocka_unit_test(test_errors),     cmocka_unit_test(test_length_bounds_the_text),
        cmocka_unit_test(test_parse_file),
    };
    tal_log_set_level(TAL_LOG_QUIET);
    return cmocka_run_group_tests_name("toml", tests, NULL, NULL);
}
