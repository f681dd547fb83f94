/* The TOML reader's API (src/config/toml_internal.h): values in file order under their
 * full dotted keys, the positions of keys and values, lookups, errors with the position
 * they name (caught through the log sink), and files that cannot be read. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "config/toml_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static char caught[1024];
static void catch_line(void *ctx, tal_log_level_t level, const char *line)
{
    (void)ctx;
    (void)level;
    snprintf(caught, sizeof caught, "%s", line);
}

static int parse(const char *text, tal_toml_doc_t *doc)
{
    caught[0] = '\0';
    return tal_toml_parse(text, strlen(text), "t.toml", doc);
}

static void test_values_keys_positions(void **state)
{
    tal_toml_doc_t doc;
    const tal_toml_value_t *v;
    (void)state;
    assert_int_equal(parse("threads = 4\n"
                           "[memory]\n"
                           "  max_memory = \"4G\"  # four\n"
                           "cache.size = 0x10\n"
                           "[reduce]\n"
                           "identity = 0.85\n"
                           "list = [1, 'two', [3.5]]\n"
                           "on = true\n",
                           &doc),
                     0);
    assert_int_equal(doc.count, 6);
    assert_string_equal(doc.name, "t.toml");
    /* file order, full keys */
    assert_string_equal(doc.values[0].key, "threads");
    assert_string_equal(doc.values[1].key, "memory.max_memory");
    assert_string_equal(doc.values[2].key, "memory.cache.size");
    assert_string_equal(doc.values[5].key, "reduce.on");
    v = tal_toml_get(&doc, "memory.max_memory");
    assert_non_null(v);
    assert_int_equal(v->type, TAL_TOML_STRING);
    assert_string_equal(v->string, "4G");
    assert_int_equal(v->key_line, 3);
    assert_int_equal(v->key_column, 3);
    assert_int_equal(v->line, 3);
    assert_int_equal(v->column, 16);
    v = tal_toml_get(&doc, "memory.cache.size");
    assert_int_equal(v->type, TAL_TOML_INTEGER);
    assert_int_equal(v->integer, 16);
    v = tal_toml_get(&doc, "reduce.identity");
    assert_int_equal(v->type, TAL_TOML_FLOAT);
    assert_true(fabs(v->number - 0.85) < 1e-12);
    v = tal_toml_get(&doc, "reduce.list");
    assert_int_equal(v->type, TAL_TOML_ARRAY);
    assert_int_equal(v->item_count, 3);
    assert_int_equal(v->items[0].integer, 1);
    assert_string_equal(v->items[1].string, "two");
    assert_int_equal(v->items[2].type, TAL_TOML_ARRAY);
    assert_true(v->items[2].items[0].number == 3.5);
    assert_null(v->items[0].key);
    v = tal_toml_get(&doc, "reduce.on");
    assert_int_equal(v->type, TAL_TOML_BOOL);
    assert_int_equal(v->boolean, 1);
    assert_null(tal_toml_get(&doc, "reduce"));
    assert_null(tal_toml_get(&doc, "nosuch"));
    tal_toml_free(&doc);
    assert_int_equal(doc.count, 0);
    assert_null(doc.values);
}

static void test_errors_name_their_position(void **state)
{
    static const struct {
        const char *text, *message;
    } cases[] = {
        {"a = 1\nb = \"open\n", "t.toml:2:10: unterminated string (a newline before"},
        {"a = 1\na = 2\n", "t.toml:2:1: duplicate key a (first on line 1)"},
        {"[t]\nx = 1\n[t]\n", "t.toml:3:1: table [t] is defined twice"},
        {"x = { a = 1 }\n", "t.toml:1:5: inline tables are not supported"},
        {"x = 1979-05-27\n", "t.toml:1:5: dates and times are not supported"},
        {"[[x]]\n", "t.toml:1:1: arrays of tables are not supported"},
        {"x = 99999999999999999999\n",
         "t.toml:1:5: integer '99999999999999999999' is out of range"},
        {"x = \"\\x\"\n", "t.toml:1:6: invalid escape '\\x'"},
        {"\n\n  x = \n", "t.toml:3:7: a value is missing"},
    };
    (void)state;
    tal_log_set_level(TAL_LOG_ERROR);
    tal_log_set_sink(catch_line, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tal_toml_doc_t doc;
        assert_int_equal(parse(cases[i].text, &doc), TAL_EUSAGE);
        if (!strstr(caught, cases[i].message)) fail_msg("'%s' gave '%s'", cases[i].text, caught);
        assert_int_equal(doc.count, 0); /* nothing is left on failure */
        assert_null(doc.values);
    }
    tal_log_set_sink(NULL, NULL);
}

static void test_unreadable_file(void **state)
{
    tal_toml_doc_t doc;
    (void)state;
    tal_log_set_level(TAL_LOG_ERROR);
    tal_log_set_sink(catch_line, NULL);
    caught[0] = '\0';
    assert_int_equal(tal_toml_parse_file("/nonexistent/talaria.toml", &doc), TAL_EIO);
    assert_non_null(strstr(caught, "/nonexistent/talaria.toml"));
    tal_log_set_sink(NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_keys_positions),
        cmocka_unit_test(test_errors_name_their_position),
        cmocka_unit_test(test_unreadable_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
