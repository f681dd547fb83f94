/* The TOML reader behind configuration files and profiles: one pass over the bytes with
 * line and column kept, every value stored under its full dotted key. Strict: whatever
 * TOML 1.0 forbids is an error, and what it allows but no key of ours takes is refused. */
#define _GNU_SOURCE
#include "toml_internal.h"
#include "config_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_SEP '\x1f' /* joins a key's parts in the canonical form: parts may hold '.' */

typedef struct {
    const char *s;
    size_t len, pos;
    int line, col;
    const char *name;
    tal_toml_doc_t *doc;
    size_t cap;
    char *table;   /* the current table, canonical ("" at the top) */
    char **canon;  /* canonical key of each value in doc */
    char **tables; /* tables defined by a [header], canonical */
    size_t ntables, tables_cap;
    int failed;
} parser_t;

typedef struct {
    char *data;
    size_t len, cap;
} buf_t;

static int fail_at(parser_t *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(parser_t *p, int line, int col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!p->failed) tal_log_error("%s:%d:%d: %s", p->name, line, col, msg);
    p->failed = 1;
    return TAL_EUSAGE;
}

#define FAIL(p, ...) fail_at(p, (p)->line, (p)->col, __VA_ARGS__)

static int buf_add(buf_t *b, const char *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        char *d;
        while (cap < b->len + len + 1) cap *= 2;
        if (!(d = realloc(b->data, cap))) return TAL_ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

/* ---- characters ---- */

static int peek(const parser_t *p, size_t ahead)
{
    return p->pos + ahead < p->len ? (unsigned char)p->s[p->pos + ahead] : -1;
}

static void advance(parser_t *p)
{
    unsigned char c = (unsigned char)p->s[p->pos++];
    if (c == '\n') {
        p->line++;
        p->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        p->col++; /* columns count characters, not UTF-8 continuation bytes */
    }
}

static int at(const parser_t *p, const char *text)
{
    size_t n = strlen(text);
    return p->pos + n <= p->len && !memcmp(p->s + p->pos, text, n);
}

static void skip_ws(parser_t *p)
{
    while (peek(p, 0) == ' ' || peek(p, 0) == '\t') advance(p);
}

/* A comment runs to the end of the line; control characters other than tab are errors. */
static int skip_comment(parser_t *p)
{
    if (peek(p, 0) != '#') return 0;
    while (p->pos < p->len && peek(p, 0) != '\n') {
        int c = peek(p, 0);
        if (c == '\r' && peek(p, 1) == '\n') break;
        if ((c < 0x20 && c != '\t') || c == 0x7f) return FAIL(p, "control character in a comment");
        advance(p);
    }
    return 0;
}

/* The end of a line (LF or CRLF) or of the file; 1 if at one, after consuming it. */
static int eol(parser_t *p)
{
    if (p->pos >= p->len) return 1;
    if (peek(p, 0) == '\n') return advance(p), 1;
    if (peek(p, 0) == '\r' && peek(p, 1) == '\n') return advance(p), advance(p), 1;
    return 0;
}

/* Whitespace, newlines and comments (inside arrays). */
static int skip_ws_nl(parser_t *p)
{
    int rc;
    for (;;) {
        skip_ws(p);
        if ((rc = skip_comment(p)) < 0) return rc;
        if (p->pos >= p->len || !eol(p)) return 0;
    }
}

/* Whether len bytes at s are valid UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF); *bad is the offset of the first bad byte. */
static int valid_utf8(const unsigned char *s, size_t len, size_t *bad)
{
    for (size_t i = 0; i < len;) {
        unsigned c = s[i], need, cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            need = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3, cp = c & 0x07;
        else
            return *bad = i, 0;
        for (unsigned k = 1; k <= need; k++) {
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80) return *bad = i, 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return *bad = i, 0;
        i += need + 1;
    }
    return 1;
}

static int put_utf8(buf_t *b, unsigned long cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80)
        out[0] = (char)cp, n = 1;
    else if (cp < 0x800)
        out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000)
        out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
        out[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    else
        out[0] = (char)(0xF0 | cp >> 18), out[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    return buf_add(b, out, n);
}

/* ---- strings ---- */

static int escape(parser_t *p, buf_t *b)
{
    int line = p->line, col = p->col, c;
    advance(p); /* the backslash */
    c = peek(p, 0);
    switch (c) {
    case 'b': advance(p); return buf_add(b, "\b", 1);
    case 't': advance(p); return buf_add(b, "\t", 1);
    case 'n': advance(p); return buf_add(b, "\n", 1);
    case 'f': advance(p); return buf_add(b, "\f", 1);
    case 'r': advance(p); return buf_add(b, "\r", 1);
    case '"': advance(p); return buf_add(b, "\"", 1);
    case '\\': advance(p); return buf_add(b, "\\", 1);
    case 'u':
    case 'U': {
        int digits = c == 'u' ? 4 : 8;
        unsigned long cp = 0;
        advance(p);
        for (int i = 0; i < digits; i++) {
            int h = peek(p, 0);
            if (h >= '0' && h <= '9')
                cp = cp * 16 + (unsigned long)(h - '0');
            else if (h >= 'a' && h <= 'f')
                cp = cp * 16 + (unsigned long)(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F')
                cp = cp * 16 + (unsigned long)(h - 'A' + 10);
            else
                return fail_at(p, line, col, "\\%c needs %d hexadecimal digits", c, digits);
            advance(p);
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return fail_at(p, line, col, "\\%c%0*lX is not a Unicode scalar value", c, digits, cp);
        return put_utf8(b, cp);
    }
    default: return fail_at(p, line, col, "invalid escape '\\%c' in a string", c > 0x20 ? c : '?');
    }
}

/* A string at the cursor (its opening quote); *out is malloc'd. */
static int string_value(parser_t *p, char **out)
{
    int line = p->line, col = p->col, quote = peek(p, 0), rc = 0;
    int multi = at(p, quote == '"' ? "\"\"\"" : "'''");
    buf_t b = {NULL, 0, 0};
    *out = NULL;
    if ((rc = buf_add(&b, "", 0)) < 0) return rc;
    for (int i = 0; i < (multi ? 3 : 1); i++) advance(p);
    if (multi) eol(p); /* a newline right after the opening quotes is not part of it */
    for (;;) {
        int c = peek(p, 0);
        if (c < 0) {
            rc = fail_at(p, line, col, "unterminated string");
            break;
        }
        if (c == quote) {
            if (!multi) {
                advance(p);
                break;
            }
            if (at(p, quote == '"' ? "\"\"\"" : "'''")) {
                /* up to two quotes may end the content right before the closing three */
                int extra = 0;
                while (extra < 2 && peek(p, 3 + (size_t)extra) == quote) extra++;
                for (int i = 0; i < extra; i++) {
                    char q = (char)quote;
                    if ((rc = buf_add(&b, &q, 1)) < 0) break;
                    advance(p);
                }
                for (int i = 0; i < 3; i++) advance(p);
                break;
            }
        }
        if (c == '\n' || (c == '\r' && peek(p, 1) == '\n')) {
            if (!multi) {
                rc = FAIL(p, "unterminated string (a newline before its closing quote)");
                break;
            }
            if (c == '\r') advance(p);
            advance(p);
            if ((rc = buf_add(&b, "\n", 1)) < 0) break;
            continue;
        }
        if (c == '\\' && quote == '"') {
            if (multi) {
                /* a backslash at the end of a line swallows the whitespace that follows */
                size_t q = p->pos + 1;
                while (q < p->len && (p->s[q] == ' ' || p->s[q] == '\t')) q++;
                if (q < p->len && (p->s[q] == '\n' ||
                                   (p->s[q] == '\r' && q + 1 < p->len && p->s[q + 1] == '\n'))) {
                    advance(p); /* the backslash */
                    while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos])) {
                        if (peek(p, 0) == '\r' && peek(p, 1) != '\n') break;
                        advance(p);
                    }
                    continue;
                }
            }
            if ((rc = escape(p, &b)) < 0) break;
            continue;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            rc = FAIL(p, "control character U+%04X in a string", c);
            break;
        }
        {
            char ch = (char)c;
            if ((rc = buf_add(&b, &ch, 1)) < 0) break;
            advance(p);
        }
    }
    if (rc < 0) {
        free(b.data);
        return rc;
    }
    *out = b.data;
    return 0;
}

/* ---- keys ---- */

static int bare_key_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* A dotted key: appended to canon (parts joined by KEY_SEP) and dotted (joined by '.'). */
static int key(parser_t *p, buf_t *canon, buf_t *dotted)
{
    int rc, first = 1;
    for (;;) {
        char *part = NULL;
        skip_ws(p);
        if (peek(p, 0) == '"' || peek(p, 0) == '\'') {
            if (at(p, "\"\"\"") || at(p, "'''"))
                return FAIL(p, "a key cannot be a multi-line string");
            if ((rc = string_value(p, &part)) < 0) return rc;
        } else {
            size_t start = p->pos;
            while (bare_key_char(peek(p, 0))) advance(p);
            if (p->pos == start) {
                int c = peek(p, 0);
                if (c < 0 || c == '\n' || c == '\r') return FAIL(p, "a key is missing");
                return FAIL(p, "unexpected '%c' where a key should be",
                            c >= 0x20 && c < 0x7f ? c : '?');
            }
            if (!(part = strndup(p->s + start, p->pos - start))) return TAL_ENOMEM;
        }
        if (!first) {
            char sep = KEY_SEP;
            if ((rc = buf_add(canon, &sep, 1)) < 0 || (rc = buf_add(dotted, ".", 1)) < 0) {
                free(part);
                return rc;
            }
        }
        rc = buf_add(canon, part, strlen(part));
        if (rc == 0) rc = buf_add(dotted, part, strlen(part));
        free(part);
        if (rc < 0) return rc;
        first = 0;
        skip_ws(p);
        if (peek(p, 0) != '.') return 0;
        advance(p);
    }
}

/* ---- numbers ---- */

/* digits with single underscores between them; base 10, 16, 8 or 2. */
static int digit_run(const char *s, size_t len, int base)
{
    if (!len || s[0] == '_' || s[len - 1] == '_') return 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i], v;
        if (c == '_') {
            if (s[i + 1] == '_') return 0;
            continue;
        }
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            return 0;
        if (v >= base) return 0;
    }
    return 1;
}

static char *without_underscores(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t n = 0;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] != '_') out[n++] = s[i];
    out[n] = '\0';
    return out;
}

/* A number token (integer or float) of len bytes into v. */
static int number(parser_t *p, const char *s, size_t len, int line, int col, tal_toml_value_t *v)
{
    const char *body = s;
    size_t blen = len;
    int sign = 0;
    char *clean;
    if (*s == '+' || *s == '-') sign = *s, body++, blen--;
    if ((blen == 3 && (!memcmp(body, "inf", 3) || !memcmp(body, "nan", 3)))) {
        v->type = TAL_TOML_FLOAT;
        v->number = body[0] == 'i' ? INFINITY : NAN;
        if (sign == '-') v->number = -v->number;
        return 0;
    }
    if (blen > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'o' || body[1] == 'b')) {
        int base = body[1] == 'x' ? 16 : body[1] == 'o' ? 8 : 2;
        unsigned long long u;
        if (sign)
            return fail_at(p, line, col, "a %s integer cannot have a sign",
                           base == 16  ? "hexadecimal"
                           : base == 8 ? "octal"
                                       : "binary");
        if (!digit_run(body + 2, blen - 2, base))
            return fail_at(p, line, col, "invalid number '%.*s'", (int)len, s);
        if (!(clean = without_underscores(body + 2, blen - 2))) return TAL_ENOMEM;
        errno = 0;
        u = strtoull(clean, NULL, base);
        free(clean);
        if (errno || u > (unsigned long long)INT64_MAX)
            return fail_at(p, line, col, "integer '%.*s' is out of range", (int)len, s);
        v->type = TAL_TOML_INTEGER;
        v->integer = (int64_t)u;
        return 0;
    }
    {
        /* decimal: int part [frac] [exp] */
        size_t i = 0, int_end, frac_start = 0, frac_end = 0, exp_start = 0;
        int is_float = 0;
        while (i < blen && (body[i] == '_' || (body[i] >= '0' && body[i] <= '9'))) i++;
        int_end = i;
        if (!digit_run(body, int_end, 10))
            return fail_at(p, line, col, "invalid number '%.*s'", (int)len, s);
        if (int_end > 1 && body[0] == '0')
            return fail_at(p, line, col, "invalid number '%.*s' (leading zero)", (int)len, s);
        if (i < blen && body[i] == '.') {
            frac_start = ++i;
            while (i < blen && (body[i] == '_' || (body[i] >= '0' && body[i] <= '9'))) i++;
            frac_end = i;
            if (!digit_run(body + frac_start, frac_end - frac_start, 10))
                return fail_at(p, line, col, "invalid number '%.*s'", (int)len, s);
            is_float = 1;
        }
        if (i < blen && (body[i] == 'e' || body[i] == 'E')) {
            i++;
            if (i < blen && (body[i] == '+' || body[i] == '-')) i++;
            exp_start = i;
            while (i < blen && (body[i] == '_' || (body[i] >= '0' && body[i] <= '9'))) i++;
            if (!digit_run(body + exp_start, i - exp_start, 10))
                return fail_at(p, line, col, "invalid number '%.*s'", (int)len, s);
            is_float = 1;
        }
        if (i != blen) return fail_at(p, line, col, "invalid value '%.*s'", (int)len, s);
        if (!(clean = without_underscores(s, len))) return TAL_ENOMEM;
        errno = 0;
        if (is_float) {
            v->type = TAL_TOML_FLOAT;
            v->number = strtod(clean, NULL);
        } else {
            v->type = TAL_TOML_INTEGER;
            v->integer = strtoll(clean, NULL, 10);
        }
        free(clean);
        if (!is_float && errno == ERANGE)
            return fail_at(p, line, col, "integer '%.*s' is out of range", (int)len, s);
        return 0;
    }
}

/* ---- values ---- */

static void value_free(tal_toml_value_t *v)
{
    free(v->key);
    free(v->string);
    for (size_t i = 0; i < v->item_count; i++) value_free(&v->items[i]);
    free(v->items);
    memset(v, 0, sizeof *v);
}

static int value(parser_t *p, tal_toml_value_t *v, int depth);

static int array_value(parser_t *p, tal_toml_value_t *v, int depth)
{
    int rc, line = p->line, col = p->col;
    size_t cap = 0;
    v->type = TAL_TOML_ARRAY;
    advance(p); /* [ */
    for (;;) {
        if ((rc = skip_ws_nl(p)) < 0) return rc;
        if (peek(p, 0) == ']') {
            advance(p);
            return 0;
        }
        if (p->pos >= p->len) return fail_at(p, line, col, "unterminated array");
        if (v->item_count == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            tal_toml_value_t *items = realloc(v->items, ncap * sizeof *items);
            if (!items) return TAL_ENOMEM;
            v->items = items;
            cap = ncap;
        }
        memset(&v->items[v->item_count], 0, sizeof *v->items);
        rc = value(p, &v->items[v->item_count], depth + 1);
        v->item_count++;
        if (rc < 0) return rc;
        if ((rc = skip_ws_nl(p)) < 0) return rc;
        if (peek(p, 0) == ',') {
            advance(p);
            continue;
        }
        if (peek(p, 0) == ']') {
            advance(p);
            return 0;
        }
        if (p->pos >= p->len) return fail_at(p, line, col, "unterminated array");
        return FAIL(p, "expected ',' or ']' in an array");
    }
}

static int value(parser_t *p, tal_toml_value_t *v, int depth)
{
    int c = peek(p, 0);
    v->line = p->line;
    v->column = p->col;
    if (depth > 64) return FAIL(p, "arrays nested too deeply");
    if (c == '"' || c == '\'') {
        v->type = TAL_TOML_STRING;
        return string_value(p, &v->string);
    }
    if (c == '[') return array_value(p, v, depth);
    if (c == '{') return FAIL(p, "inline tables are not supported in talaria configuration files");
    if (c < 0 || c == '\n' || c == '\r' || c == '#') return FAIL(p, "a value is missing");
    {
        size_t start = p->pos;
        int line = p->line, col = p->col;
        while (p->pos < p->len) {
            int d = peek(p, 0);
            if (!(bare_key_char(d) || d == '+' || d == '.' || d == ':')) break;
            advance(p);
        }
        if (p->pos == start)
            return FAIL(p, "unexpected '%c' where a value should be",
                        c >= 0x20 && c < 0x7f ? c : '?');
        if (p->pos - start == 4 && !memcmp(p->s + start, "true", 4))
            return v->type = TAL_TOML_BOOL, v->boolean = 1, 0;
        if (p->pos - start == 5 && !memcmp(p->s + start, "false", 5))
            return v->type = TAL_TOML_BOOL, v->boolean = 0, 0;
        /* 1979-05-27 and 07:32:00 */
        if (memchr(p->s + start, ':', p->pos - start) ||
            (p->pos - start >= 10 && p->s[start + 4] == '-' && p->s[start + 7] == '-'))
            return fail_at(p, line, col,
                           "dates and times are not supported in talaria configuration files");
        return number(p, p->s + start, p->pos - start, line, col, v);
    }
}

/* ---- tables and keys ---- */

/* Whether prefix is a whole-part prefix of key (both canonical). */
static int part_prefix(const char *prefix, const char *key)
{
    size_t n = strlen(prefix);
    return !strncmp(prefix, key, n) && key[n] == KEY_SEP;
}

static int header(parser_t *p)
{
    buf_t canon = {NULL, 0, 0}, dotted = {NULL, 0, 0};
    int line = p->line, col = p->col, rc;
    if (at(p, "[["))
        return FAIL(p, "arrays of tables are not supported in talaria configuration files");
    advance(p);
    if ((rc = buf_add(&canon, "", 0)) < 0 || (rc = buf_add(&dotted, "", 0)) < 0) goto out;
    if ((rc = key(p, &canon, &dotted)) < 0) goto out;
    skip_ws(p);
    if (peek(p, 0) != ']') {
        rc = FAIL(p, "expected ']' to close the table header");
        goto out;
    }
    advance(p);
    for (size_t i = 0; i < p->ntables; i++)
        if (!strcmp(p->tables[i], canon.data)) {
            rc = fail_at(p, line, col, "table [%s] is defined twice", dotted.data);
            goto out;
        }
    for (size_t i = 0; i < p->doc->count; i++)
        if (!strcmp(p->canon[i], canon.data) || part_prefix(p->canon[i], canon.data)) {
            rc = fail_at(p, line, col, "[%s] redefines the key %s as a table", dotted.data,
                         p->doc->values[i].key);
            goto out;
        }
    if (p->ntables == p->tables_cap) {
        size_t cap = p->tables_cap ? p->tables_cap * 2 : 8;
        char **t = realloc(p->tables, cap * sizeof *t);
        if (!t) {
            rc = TAL_ENOMEM;
            goto out;
        }
        p->tables = t;
        p->tables_cap = cap;
    }
    p->tables[p->ntables++] = strdup(canon.data);
    free(p->table);
    p->table = canon.data;
    canon.data = NULL;
out:
    free(canon.data);
    free(dotted.data);
    return rc;
}

static int keyval(parser_t *p)
{
    buf_t canon = {NULL, 0, 0}, dotted = {NULL, 0, 0};
    int key_line = p->line, key_col = p->col, rc;
    tal_toml_value_t v;
    memset(&v, 0, sizeof v);
    if ((rc = buf_add(&canon, p->table, strlen(p->table))) < 0 ||
        (rc = buf_add(&dotted, "", 0)) < 0)
        goto out;
    if (*p->table) {
        char sep = KEY_SEP;
        /* the dotted form: the current table's parts then the key's */
        for (const char *t = p->table; *t; t++) {
            char ch = *t == KEY_SEP ? '.' : *t;
            if ((rc = buf_add(&dotted, &ch, 1)) < 0) goto out;
        }
        if ((rc = buf_add(&canon, &sep, 1)) < 0 || (rc = buf_add(&dotted, ".", 1)) < 0) goto out;
    }
    if ((rc = key(p, &canon, &dotted)) < 0) goto out;
    if (peek(p, 0) != '=') {
        rc = FAIL(p, "expected '=' after the key %s", dotted.data);
        goto out;
    }
    advance(p);
    skip_ws(p);
    for (size_t i = 0; i < p->doc->count; i++) {
        if (!strcmp(p->canon[i], canon.data)) {
            rc = fail_at(p, key_line, key_col, "duplicate key %s (first on line %d)", dotted.data,
                         p->doc->values[i].key_line);
            goto out;
        }
        if (part_prefix(p->canon[i], canon.data)) {
            rc = fail_at(p, key_line, key_col, "%s redefines the key %s as a table", dotted.data,
                         p->doc->values[i].key);
            goto out;
        }
        if (part_prefix(canon.data, p->canon[i])) {
            rc = fail_at(p, key_line, key_col, "the key %s is already a table", dotted.data);
            goto out;
        }
    }
    for (size_t i = 0; i < p->ntables; i++)
        if (!strcmp(p->tables[i], canon.data)) {
            rc = fail_at(p, key_line, key_col, "the key %s is already a table", dotted.data);
            goto out;
        }
    if ((rc = value(p, &v, 0)) < 0) goto out;
    skip_ws(p);
    if ((rc = skip_comment(p)) < 0) goto out;
    if (!eol(p)) {
        rc = FAIL(p, "unexpected text after the value of %s", dotted.data);
        goto out;
    }
    if (p->doc->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        tal_toml_value_t *vals = realloc(p->doc->values, cap * sizeof *vals);
        char **canons;
        if (!vals) {
            rc = TAL_ENOMEM;
            goto out;
        }
        p->doc->values = vals;
        if (!(canons = realloc(p->canon, cap * sizeof *canons))) {
            rc = TAL_ENOMEM;
            goto out;
        }
        p->canon = canons;
        p->cap = cap;
    }
    v.key = dotted.data;
    v.key_line = key_line;
    v.key_column = key_col;
    dotted.data = NULL;
    p->canon[p->doc->count] = canon.data;
    canon.data = NULL;
    p->doc->values[p->doc->count++] = v;
    memset(&v, 0, sizeof v);
out:
    value_free(&v);
    free(canon.data);
    free(dotted.data);
    return rc;
}

int tal_toml_parse(const char *text, size_t len, const char *name, tal_toml_doc_t *doc)
{
    parser_t p;
    size_t bad;
    int rc = 0;
    memset(doc, 0, sizeof *doc);
    memset(&p, 0, sizeof p);
    p.s = text;
    p.len = len;
    p.line = p.col = 1;
    p.name = name;
    p.doc = doc;
    if (!(doc->name = strdup(name)) || !(p.table = strdup(""))) {
        rc = TAL_ENOMEM;
        goto out;
    }
    if (!valid_utf8((const unsigned char *)text, len, &bad)) {
        while (p.pos < bad) advance(&p);
        rc = FAIL(&p, "invalid UTF-8");
        goto out;
    }
    while (rc == 0 && p.pos < p.len) {
        skip_ws(&p);
        if ((rc = skip_comment(&p)) < 0) break;
        if (eol(&p)) continue;
        if (peek(&p, 0) == '\r') {
            rc = FAIL(&p, "a carriage return without a line feed");
            break;
        }
        if (peek(&p, 0) == '[') {
            if ((rc = header(&p)) < 0) break;
            skip_ws(&p);
            if ((rc = skip_comment(&p)) < 0) break;
            if (!eol(&p)) rc = FAIL(&p, "unexpected text after the table header");
        } else {
            rc = keyval(&p);
        }
    }
out:
    if (p.canon)
        for (size_t i = 0; i < doc->count; i++) free(p.canon[i]);
    free(p.canon);
    for (size_t i = 0; i < p.ntables; i++) free(p.tables[i]);
    free(p.tables);
    free(p.table);
    if (rc < 0) {
        if (rc == TAL_ENOMEM) tal_log_error("%s: out of memory", name);
        tal_toml_free(doc);
        return rc == TAL_ENOMEM ? rc : TAL_EUSAGE;
    }
    return 0;
}

int tal_config_read_file(const char *path, char **text, size_t *size)
{
    FILE *f = fopen(path, "rb");
    buf_t b = {NULL, 0, 0};
    char chunk[65536];
    size_t n;
    *text = NULL;
    *size = 0;
    if (!f) {
        tal_log_error("cannot open %s: %s", path, strerror(errno));
        return TAL_EIO;
    }
    if (buf_add(&b, "", 0) < 0) {
        fclose(f);
        return TAL_ENOMEM;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_add(&b, chunk, n) < 0) {
            fclose(f);
            free(b.data);
            return TAL_ENOMEM;
        }
    if (ferror(f)) {
        tal_log_error("cannot read %s: %s", path, strerror(errno));
        fclose(f);
        free(b.data);
        return TAL_EIO;
    }
    fclose(f);
    *text = b.data;
    *size = b.len;
    return 0;
}

int tal_toml_parse_file(const char *path, tal_toml_doc_t *doc)
{
    char *text;
    size_t size;
    int rc;
    memset(doc, 0, sizeof *doc);
    if ((rc = tal_config_read_file(path, &text, &size)) < 0) return rc;
    rc = tal_toml_parse(text, size, path, doc);
    free(text);
    return rc;
}

void tal_toml_free(tal_toml_doc_t *doc)
{
    for (size_t i = 0; i < doc->count; i++) value_free(&doc->values[i]);
    free(doc->values);
    free(doc->name);
    memset(doc, 0, sizeof *doc);
}

const tal_toml_value_t *tal_toml_get(const tal_toml_doc_t *doc, const char *key)
{
    for (size_t i = 0; i < doc->count; i++)
        if (!strcmp(doc->values[i].key, key)) return &doc->values[i];
    return NULL;
}
