/* Prints a TOML file as parsed by libtalaria's reader, as flat JSON ({"dotted.key": value}),
 * for tests/cli/toml_corpus.sh to compare with Python's tomllib. Exit 2 on a parse error
 * (the reader's message on stderr), 1 when the file cannot be read. inf and nan are the
 * strings "inf", "-inf" and "nan"; other floats print so that they read back exactly. */
#include "config/toml_internal.h"
#include "talaria/error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void json_string(const char *s)
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

static void print_value(const tal_toml_value_t *v)
{
    switch (v->type) {
    case TAL_TOML_STRING: json_string(v->string); break;
    case TAL_TOML_INTEGER: printf("%lld", (long long)v->integer); break;
    case TAL_TOML_FLOAT:
        if (isnan(v->number))
            printf("\"nan\"");
        else if (isinf(v->number))
            printf(v->number < 0 ? "\"-inf\"" : "\"inf\"");
        else {
            char text[64];
            snprintf(text, sizeof text, "%.17g", v->number);
            /* a float stays a float in JSON: 1.0, not 1 */
            printf("%s%s", text, strpbrk(text, ".e") ? "" : ".0");
        }
        break;
    case TAL_TOML_BOOL: printf(v->boolean ? "true" : "false"); break;
    case TAL_TOML_ARRAY:
        putchar('[');
        for (size_t i = 0; i < v->item_count; i++) {
            if (i) putchar(',');
            print_value(&v->items[i]);
        }
        putchar(']');
        break;
    }
}

int main(int argc, char **argv)
{
    tal_toml_doc_t doc;
    int rc;
    if (argc != 2) {
        fprintf(stderr, "usage: toml_dump FILE.toml\n");
        return 2;
    }
    if ((rc = tal_toml_parse_file(argv[1], &doc)) < 0) return tal_exit_code(rc);
    putchar('{');
    for (size_t i = 0; i < doc.count; i++) {
        if (i) putchar(',');
        json_string(doc.values[i].key);
        putchar(':');
        print_value(&doc.values[i]);
    }
    printf("}\n");
    tal_toml_free(&doc);
    return 0;
}
