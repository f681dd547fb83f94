/* A small strict TOML 1.0 reader for talaria's configuration files (profiles such as
 * etc/low.toml, a user's --config file). Private to libtalaria. */
#ifndef TAL_TOML_INTERNAL_H
#define TAL_TOML_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* What it reads: comments; [table] and [a.b] headers; bare, quoted and dotted keys; basic,
 * literal and multi-line strings; integers (decimal, 0x, 0o, 0b), floats (inf, nan);
 * booleans; arrays. Valid TOML that configuration files do not need is refused with a
 * "... not supported in talaria configuration files" message: inline tables, arrays of
 * tables, dates and times, and NUL characters in strings (a C string could not hold them).
 *
 * Keys: the parts of a full key are joined with '.'; a part that is not a bare key
 * (A-Za-z0-9_-) is written as a TOML basic string, so a."b c" and "a.b" stay apart and
 * the key is itself valid TOML ('"', '\' and control characters escaped, controls as
 * \uXXXX). Columns count characters (UTF-8 code points) from 1; a tab is one. */

typedef enum {
    TAL_TOML_STRING = 1,
    TAL_TOML_INTEGER,
    TAL_TOML_FLOAT,
    TAL_TOML_BOOL,
    TAL_TOML_ARRAY
} tal_toml_type_t;

typedef struct tal_toml_value {
    tal_toml_type_t type;
    char *
        key; /* the full dotted key, e.g. "memory.max_memory" (table path + key); for array items NULL */
    char *string;    /* TAL_TOML_STRING: the decoded string (escapes resolved), NUL-terminated */
    int64_t integer; /* TAL_TOML_INTEGER */
    double number;   /* TAL_TOML_FLOAT */
    int boolean;     /* TAL_TOML_BOOL */
    struct tal_toml_value *items; /* TAL_TOML_ARRAY: its items (arrays may nest) */
    size_t item_count;
    int line, column;         /* 1-based position of the value in the file */
    int key_line, key_column; /* 1-based position of the key (0 for array items) */
} tal_toml_value_t;

typedef struct {
    tal_toml_value_t *values; /* every key/value pair, in file order, leaf values only */
    size_t count;
    char *name; /* the file's name as given, for messages */
} tal_toml_doc_t;

/* Parses text (len bytes, need not be NUL-terminated) named name in messages. On error:
 * TAL_EUSAGE (a configuration error is a usage error, exit 2), and the message
 * "NAME:LINE:COLUMN: WHAT" is logged with tal_log_error (e.g. "low.toml:3:14: unterminated string").
 * On success doc owns everything (tal_toml_free); on failure doc is left empty. */
int tal_toml_parse(const char *text, size_t len, const char *name, tal_toml_doc_t *doc);
/* Reads path and parses it; an unreadable file is TAL_EIO naming the path. */
int tal_toml_parse_file(const char *path, tal_toml_doc_t *doc);
void tal_toml_free(tal_toml_doc_t *doc);
/* The value of a full dotted key, or NULL. */
const tal_toml_value_t *tal_toml_get(const tal_toml_doc_t *doc, const char *key);

#endif
