/* Fuzz harness for the TOML reader and the configuration loader: any bytes are parsed as a
 * --config file is, loaded into a configuration, then written out and summarised. */
#define _GNU_SOURCE
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "config/toml_internal.h"
#include "replay.h"
#include "talaria/config.h"
#include "talaria/error.h"
#include "talaria/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *g_null;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_toml: invariant broken: %s\n", what);
    abort();
}

static void close_null(void)
{
    if (g_null) fclose(g_null);
    g_null = NULL;
}

static void init(void)
{
    if (g_null) return;
    tal_log_set_level(TAL_LOG_QUIET);
    if (!(g_null = fopen("/dev/null", "w"))) fail("cannot open /dev/null");
    atexit(close_null);
}

/* A value as the reader gave it: a known type, positions inside the text, strings whole. */
static void check_value(const tal_toml_value_t *v, int lines, int depth)
{
    volatile size_t sink;
    if (v->type < TAL_TOML_STRING || v->type > TAL_TOML_ARRAY) fail("a value of no known type");
    if (v->line < 1 || v->line > lines || v->column < 1) fail("a value placed outside the text");
    if (depth > 100000) fail("arrays nested past any input's depth");
    if (v->type == TAL_TOML_STRING) {
        if (!v->string) fail("a string value without its text");
        sink = strlen(v->string);
        (void)sink;
    }
    if (v->type == TAL_TOML_ARRAY) {
        if (v->item_count && !v->items) fail("an array without its items");
        for (size_t i = 0; i < v->item_count; i++) {
            if (v->items[i].key) fail("an array item with a key");
            check_value(&v->items[i], lines, depth + 1);
        }
    }
}

static void check_doc(const tal_toml_doc_t *doc, const uint8_t *data, size_t size)
{
    int lines = 1;
    for (size_t i = 0; i < size; i++) lines += data[i] == '\n';
    if (doc->count && !doc->values) fail("values counted but not there");
    for (size_t i = 0; i < doc->count; i++) {
        const tal_toml_value_t *v = &doc->values[i];
        if (!v->key) fail("a value without a key"); /* '' is a key: TOML allows it */
        if (v->key_line < 1 || v->key_line > lines || v->key_column < 1)
            fail("a key placed outside the text");
        if (v->key_line > v->line) fail("a value before its key");
        /* not always v itself: "a.b" and a.b are two keys with one dotted name */
        if (!tal_toml_get(doc, v->key) || strcmp(tal_toml_get(doc, v->key)->key, v->key))
            fail("a key that cannot be looked up");
        check_value(v, lines, 0);
    }
}

/* The summary is "key = value  # origin" a line. */
static void check_summary(const char *summary)
{
    const char *line = summary;
    if (!summary) fail("no summary");
    while (*line) {
        const char *end = strchr(line, '\n');
        const char *eq = strstr(line, " = ");
        if (!end) fail("a summary line without its line end");
        if (!eq || eq > end || eq == line) fail("a summary line that is not key = value");
        line = end + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    tal_toml_doc_t doc;
    tal_config_t *c = NULL;
    int parse_rc, load_rc;
    char *summary;
    init();

    parse_rc = tal_toml_parse(text, size, "fuzz.toml", &doc);
    if (parse_rc != 0 && parse_rc != TAL_EUSAGE) fail("tal_toml_parse gave an unexpected error");
    if (parse_rc == 0) check_doc(&doc, data, size);

    if (tal_config_create(&c) != 0) fail("tal_config_create failed");
    load_rc = tal_config_load_text(c, text, size, "fuzz.toml");
    if (load_rc != 0 && load_rc != TAL_EUSAGE)
        fail("tal_config_load_text gave an unexpected error");
    if (parse_rc != 0 && load_rc == 0) fail("the loader took a file the reader refused");
    if (load_rc == 0)
        for (size_t i = 0; i < doc.count; i++)
            if (!tal_config_is_set(c, doc.values[i].key) ||
                tal_config_origin(c, doc.values[i].key) != TAL_CONFIG_FILE)
                fail("a key of the file that the configuration does not have from it");
    if (tal_config_write(c, g_null, 0) != 0 || tal_config_write(c, g_null, 1) != 0)
        fail("tal_config_write failed");
    for (int outputs_only = 0; outputs_only < 2; outputs_only++) {
        summary = tal_config_summary(c, outputs_only);
        check_summary(summary);
        free(summary);
    }
    tal_config_free(c);
    if (parse_rc == 0) tal_toml_free(&doc);
    return 0;
}

#ifndef TAL_LIBFUZZER

/* ---- built-in inputs (the seed corpus is tests/data/toml, tests/data/config, etc) ---- */

static const char *const texts[] = {
    "",
    "threads = 4\n[memory]\nmax_memory = \"16G\"\nhuge_pages = \"thp\"\n",
    "threads = 4\r\n[reduce]\r\nidentity = 0.9\r\ncoverage = 0.8\r\n",
    "memory.max_memory = 17179869184\nstore.compress = 'zstd'\n",
    "[memory]\nmax_memory = \"16G\"\n[memory]\n",
    "threads = 4\nthreads = 5\n",
    "a = [1, [2, [3, [4, [5]]]], \"x\", 'y', 1.5, true]\n",
    "s = \"\"\"\nline \\\n  continued\"\"\"\n",
    "s = \"\"\"\\",
    "s = '''",
    "s = \"\\u00e9\\U0001F600\\t\"\n",
    "\"quoted.key\" = 1\n'lit' = 2\na.\"b c\".d = 3\n",
    "[a.b]\nc = 1\n[a]\nd = 2\n",
    "x = 0x7fffffffffffffff\ny = -0o17\nz = 0b101\nf = -inf\ng = nan\nh = 1e308\n",
    "x = 9223372036854775808\n",
    "x = 1__0\n",
    "x = {a = 1}\n",
    "[[t]]\n",
    "d = 1979-05-27\n",
    "[\n",
    "= 1\n",
    "a =\n",
    "a = [1,\n2,\n",
    "a = \"unterminated\n",
    "\xef\xbb\xbfthreads = 1\n",
    "threads = 1 # comment\n# only a comment",
    "threads = 1\r",
    "reduce.identity = 1.5\n",
    "store.compress = \"brotli\"\n",
    "memory.max_memory = \"12Q\"\n",
    "unknown = 1\n",
    "[nothing]\nx = 1\n",
};

static int run_builtin(void)
{
    static const char with_nul[] = "threads = 4\n\0x = 1\n";
    static const char bad_utf8[] = "s = \"\xc3\x28\"\n";
    int count = 0;
    char deep[4096];
    size_t n = 0;
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++, count++)
        LLVMFuzzerTestOneInput((const uint8_t *)texts[i], strlen(texts[i]));
    LLVMFuzzerTestOneInput((const uint8_t *)with_nul, sizeof with_nul - 1);
    LLVMFuzzerTestOneInput((const uint8_t *)bad_utf8, sizeof bad_utf8 - 1);
    count += 2;
    /* an array nested deeper than any file would be */
    n += (size_t)snprintf(deep, sizeof deep, "a = ");
    while (n < sizeof deep - 2) deep[n++] = '[';
    LLVMFuzzerTestOneInput((const uint8_t *)deep, n);
    count++;
    /* every prefix of a whole configuration */
    {
        const char *whole = texts[1];
        for (size_t len = 0; len <= strlen(whole); len++, count++)
            LLVMFuzzerTestOneInput((const uint8_t *)whole, len);
    }
    return count;
}

int main(int argc, char **argv) { return replay_main("fuzz_toml", argc, argv, run_builtin); }

#endif
