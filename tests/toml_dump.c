/* Prints a TOML file as flat JSON ({"dotted.key": value, ...}) for tests/cli/toml_corpus.sh,
 * which compares it with what Python's tomllib reads; exits 2 when the file is refused. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config/toml_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"

static void put_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* Floats keep a '.' or an exponent so that Python reads them back as floats, and %.17g
 * gives back the same double; inf and nan use the names Python's json module accepts. */
static void put_json_float(double x)
{
    char buf[64];
    if (isnan(x)) {
        fputs("NaN", stdout);
        return;
    }
    if (isinf(x)) {
        fputs(x < 0 ? "-Infinity" : "Infinity", stdout);
        return;
    }
    snprintf(buf, sizeof buf, "%.17g", x);
    fputs(buf, stdout);
    if (!strpbrk(buf, ".e")) fputs(".0", stdout);
}

static void put_json_value(const tal_toml_value_t *v)
{
    switch (v->type) {
    case TAL_TOML_STRING: put_json_string(v->string); break;
    case TAL_TOML_INTEGER: printf("%lld", (long long)v->integer); break;
    case TAL_TOML_FLOAT: put_json_float(v->number); break;
    case TAL_TOML_BOOL: fputs(v->boolean ? "true" : "false", stdout); break;
    case TAL_TOML_ARRAY:
        putchar('[');
        for (size_t i = 0; i < v->item_count; i++) {
            if (i) fputs(", ", stdout);
            put_json_value(&v->items[i]);
        }
        putchar(']');
        break;
    }
}

int main(int argc, char **argv)
{
    tal_toml_doc_t doc;
    int rc;
    tal_log_set_prog("toml_dump");
    if (argc != 2) {
        fprintf(stderr, "usage: toml_dump FILE.toml\n");
        return 2;
    }
    if ((rc = tal_toml_parse_file(argv[1], &doc)) < 0) return tal_exit_code(rc);
    putchar('{');
    for (size_t i = 0; i < doc.count; i++) {
        fputs(i ? ",\n " : "", stdout);
        put_json_string(doc.values[i].key);
        fputs(": ", stdout);
        put_json_value(&doc.values[i]);
    }
    puts("}");
    tal_toml_free(&doc);
    return 0;
}
