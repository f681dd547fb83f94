/* A small strict TOML 1.0 reader for talaria's configuration files: tables, dotted and
 * quoted keys, strings (basic, literal, multi-line), integers, floats, booleans and arrays.
 * What no configuration key takes (inline tables, arrays of tables, dates) is refused by
 * name. Every error is logged as "NAME:LINE:COLUMN: WHAT". Private to libtalaria. */
#ifndef TAL_TOML_INTERNAL_H
#define TAL_TOML_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    TAL_TOML_STRING = 1,
    TAL_TOML_INTEGER,
    TAL_TOML_FLOAT,
    TAL_TOML_BOOL,
    TAL_TOML_ARRAY
} tal_toml_type_t;

typedef struct tal_toml_value {
    tal_toml_type_t type;
    char *key;    /* the full dotted key ("memory.max_memory"); NULL for array items */
    char *string; /* TAL_TOML_STRING: decoded, NUL-terminated */
    int64_t integer;
    double number;
    int boolean;
    struct tal_toml_value *items; /* TAL_TOML_ARRAY */
    size_t item_count;
    int line, column;         /* 1-based, of the value */
    int key_line, key_column; /* 1-based, of the key */
} tal_toml_value_t;

typedef struct {
    tal_toml_value_t *values; /* every key/value pair, in file order */
    size_t count;
    char *name; /* the file as messages name it */
} tal_toml_doc_t;

/* Parses len bytes of text named name in messages. TAL_EUSAGE (logged) on any error; on
 * success doc owns everything (tal_toml_free). */
int tal_toml_parse(const char *text, size_t len, const char *name, tal_toml_doc_t *doc);
/* Reads and parses path; TAL_EIO (logged, naming the path) when it cannot be read. */
int tal_toml_parse_file(const char *path, tal_toml_doc_t *doc);
void tal_toml_free(tal_toml_doc_t *doc);
/* The value of a full dotted key, or NULL. */
const tal_toml_value_t *tal_toml_get(const tal_toml_doc_t *doc, const char *key);

#endif
