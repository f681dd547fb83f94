/* The strict TOML reader behind talaria's configuration files: a UTF-8 check, then one pass
 * that keeps every key/value pair in file order with its position, every error with its own. */
#define _GNU_SOURCE
#include "toml_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deep enough for any configuration, shallow enough that hostile input cannot exhaust
 * the stack through the recursion in parse_value. */
#define MAX_ARRAY_DEPTH 32

/* ---- growing byte strings ------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
} strbuf_t;

static int sb_put(strbuf_t *sb, const void *data, size_t n)
{
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 64;
        char *p;
        while (cap < sb->len + n + 1) cap *= 2;
        p = realloc(sb->p, cap);
        if (!p) return TAL_ENOMEM;
        sb->p = p;
        sb->cap = cap;
    }
    if (n) memcpy(sb->p + sb->len, data, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
    return 0;
}

static int sb_putc(strbuf_t *sb, char c) { return sb_put(sb, &c, 1); }

/* ---- the keys and tables defined so far ---------------------------------------------- */

/* A table is made by a [header] (TABLE_HEADER), by the dotted keys of one section
 * (TABLE_DOTTED), or implicitly as the parent of either (no flag). TOML lets a header
 * define an implicit table once, and dotted keys add only to tables of their own section
 * or implicit ones. */
enum { NODE_VALUE = 1, NODE_TABLE };
enum { TABLE_HEADER = 1, TABLE_DOTTED = 2 };

typedef struct {
    char *key; /* the full canonical key; NULL: an empty slot */
    size_t len;
    int kind, flags;
    int section; /* TABLE_DOTTED: the section whose dotted keys made it */
    int line;    /* where it was defined, for messages */
} node_t;

typedef struct {
    node_t *slots;
    size_t cap, count;
} node_index_t;

static uint64_t hash_key(const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)key[i]) * 0x100000001b3ull;
    return h;
}

static node_t *index_find(const node_index_t *idx, const char *key, size_t len)
{
    if (!idx->cap) return NULL;
    for (size_t i = hash_key(key, len) & (idx->cap - 1);; i = (i + 1) & (idx->cap - 1)) {
        node_t *n = &idx->slots[i];
        if (!n->key) return NULL;
        if (n->len == len && !memcmp(n->key, key, len)) return n;
    }
}

static int index_grow(node_index_t *idx)
{
    size_t cap = idx->cap ? idx->cap * 2 : 64;
    node_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return TAL_ENOMEM;
    for (size_t i = 0; i < idx->cap; i++) {
        node_t *old = &idx->slots[i];
        size_t j;
        if (!old->key) continue;
        for (j = hash_key(old->key, old->len) & (cap - 1); slots[j].key; j = (j + 1) & (cap - 1))
            ;
        slots[j] = *old;
    }
    free(idx->slots);
    idx->slots = slots;
    idx->cap = cap;
    return 0;
}

/* Adds key (not yet present); *out is valid until the next insert. */
static int index_add(node_index_t *idx, const char *key, size_t len, int kind, int line,
                     node_t **out)
{
    node_t *n;
    size_t i;
    int rc;
    if ((idx->count + 1) * 2 > idx->cap && (rc = index_grow(idx)) < 0) return rc;
    for (i = hash_key(key, len) & (idx->cap - 1); idx->slots[i].key; i = (i + 1) & (idx->cap - 1))
        ;
    n = &idx->slots[i];
    n->key = malloc(len + 1);
    if (!n->key) return TAL_ENOMEM;
    memcpy(n->key, key, len);
    n->key[len] = '\0';
    n->len = len;
    n->kind = kind;
    n->flags = 0;
    n->section = 0;
    n->line = line;
    idx->count++;
    *out = n;
    return 0;
}

static void index_free(node_index_t *idx)
{
    for (size_t i = 0; i < idx->cap; i++) free(idx->slots[i].key);
    free(idx->slots);
    memset(idx, 0, sizeof *idx);
}

/* ---- the parser ---------------------------------------------------------------------- */

typedef struct {
    size_t off, line_start;
    int line;
} mark_t;

/* A key as parsed: its full canonical text (the current table's prefix included) and
 * where each of its own parts ends in that text, so that its parent tables can be looked
 * up as prefixes. */
typedef struct {
    strbuf_t text;
    size_t *ends;
    size_t count, cap;
} toml_key_t;

typedef struct {
    const char *text;
    size_t len, pos;
    const char *name;
    int line;
    size_t line_start;
    strbuf_t table; /* the current [table]'s canonical key, "" at the top */
    int section;    /* counts the table headers seen */
    size_t values_cap;
    node_index_t index;
    tal_toml_doc_t *doc;
    locale_t c_locale; /* floats are read the same whatever the program's locale */
} parser_t;

static mark_t here(const parser_t *p)
{
    mark_t m = {p->pos, p->line_start, p->line};
    return m;
}

static mark_t here_at(const parser_t *p, size_t off)
{
    mark_t m = {off, p->line_start, p->line};
    return m;
}

static int column_of(const parser_t *p, mark_t m)
{
    int col = 1;
    for (size_t i = m.line_start; i < m.off && i < p->len; i++)
        col += ((unsigned char)p->text[i] & 0xc0) != 0x80;
    return col;
}

static int fail_at(const parser_t *p, mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(const parser_t *p, mark_t m, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    tal_log_error("%s:%d:%d: %s", p->name, m.line, column_of(p, m), what);
    return TAL_EUSAGE;
}

static int fail_nomem(const parser_t *p)
{
    tal_log_error("%s: out of memory", p->name);
    return TAL_ENOMEM;
}

static int cur(const parser_t *p) { return p->pos < p->len ? (unsigned char)p->text[p->pos] : -1; }

static int peek(const parser_t *p, size_t ahead)
{
    return p->pos + ahead < p->len ? (unsigned char)p->text[p->pos + ahead] : -1;
}

static int at_newline(const parser_t *p)
{
    return cur(p) == '\n' || (cur(p) == '\r' && peek(p, 1) == '\n');
}

static void take_newline(parser_t *p)
{
    p->pos += cur(p) == '\r' ? 2 : 1;
    p->line++;
    p->line_start = p->pos;
}

static int is_control(int c) { return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f; }

static int is_bare_key_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* How a character shows in a message. */
static const char *describe(const parser_t *p, size_t off, char *buf, size_t size)
{
    int c = off < p->len ? (unsigned char)p->text[off] : -1;
    if (c < 0) return "the end of the file";
    if (c == '\n' || (c == '\r' && off + 1 < p->len && p->text[off + 1] == '\n'))
        return "the end of the line";
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, size, "'%c'", c);
    else if (c < 0x80)
        snprintf(buf, size, "U+%04X", (unsigned)c);
    else
        snprintf(buf, size, "a non-ASCII character");
    return buf;
}

static void skip_ws(parser_t *p)
{
    while (cur(p) == ' ' || cur(p) == '\t') p->pos++;
}

/* At '#': to the end of the line (the newline is left for the caller). */
static int skip_comment(parser_t *p)
{
    p->pos++;
    while (p->pos < p->len && !at_newline(p)) {
        int c = cur(p);
        if (is_control(c))
            return fail_at(p, here(p), "control character U+%04X in a comment", (unsigned)c);
        p->pos++;
    }
    return 0;
}

/* After a value or a header: spaces, a comment, then a newline or the end of the file. */
static int end_line(parser_t *p, const char *after)
{
    char buf[32];
    int rc;
    skip_ws(p);
    if (cur(p) == '#' && (rc = skip_comment(p)) < 0) return rc;
    if (cur(p) < 0) return 0;
    if (at_newline(p)) {
        take_newline(p);
        return 0;
    }
    if (cur(p) == '\r') return fail_at(p, here(p), "carriage return without a line feed");
    return fail_at(p, here(p), "unexpected %s after %s (one per line, comments start with '#')",
                   describe(p, p->pos, buf, sizeof buf), after);
}

/* Whitespace, comments and newlines, as between array items. */
static int skip_blank(parser_t *p)
{
    int rc;
    for (;;) {
        skip_ws(p);
        if (cur(p) == '#') {
            if ((rc = skip_comment(p)) < 0) return rc;
        } else if (at_newline(p)) {
            take_newline(p);
        } else if (cur(p) == '\r') {
            return fail_at(p, here(p), "carriage return without a line feed");
        } else {
            return 0;
        }
    }
}

/* ---- strings ------------------------------------------------------------------------- */

static int put_utf8(strbuf_t *sb, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return sb_put(sb, b, n);
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* At '\' in a basic string: one escape, decoded into out. */
static int parse_escape(parser_t *p, strbuf_t *out)
{
    static const char from[] = "btnfr\"\\", to[] = "\b\t\n\f\r\"\\";
    mark_t at = here(p);
    int c = peek(p, 1);
    const char *simple = c > 0 ? strchr(from, c) : NULL;
    char buf[32];
    if (simple) {
        p->pos += 2;
        return sb_putc(out, to[simple - from]) < 0 ? fail_nomem(p) : 0;
    }
    if (c == 'u' || c == 'U') {
        size_t digits = c == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (size_t i = 0; i < digits; i++) {
            int h = hex_value(peek(p, 2 + i));
            if (h < 0) return fail_at(p, at, "\\%c needs %zu hexadecimal digits", c, digits);
            cp = cp << 4 | (uint32_t)h;
        }
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return fail_at(p, at, "\\%c%0*X is not a Unicode scalar value", c, (int)digits,
                           (unsigned)cp);
        if (cp == 0)
            return fail_at(p, at,
                           "NUL characters are not supported in talaria configuration files");
        p->pos += 2 + digits;
        return put_utf8(out, cp) < 0 ? fail_nomem(p) : 0;
    }
    if (c > 0x20 && c < 0x7f)
        return fail_at(p, at,
                       "invalid escape '\\%c' (TOML has \\b \\t \\n \\f \\r \\\" \\\\ \\u \\U)", c);
    return fail_at(p, at, "invalid escape: '\\' followed by %s",
                   describe(p, p->pos + 1, buf, sizeof buf));
}

/* At a quote: a one-line basic ("...") or literal ('...') string, decoded into out. */
static int parse_line_string(parser_t *p, strbuf_t *out)
{
    mark_t open = here(p);
    int quote = cur(p), rc;
    p->pos++;
    for (;;) {
        int c = cur(p);
        if (c < 0) return fail_at(p, open, "unterminated string");
        if (c == '\n' || c == '\r')
            return fail_at(p, open,
                           "unterminated string (a newline cannot be in a one-line string; "
                           "use %s for several lines)",
                           quote == '"' ? "\"\"\"" : "'''");
        if (c == quote) {
            p->pos++;
            return 0;
        }
        if (c == '\\' && quote == '"') {
            if ((rc = parse_escape(p, out)) < 0) return rc;
            continue;
        }
        if (is_control(c))
            return fail_at(p, here(p),
                           "control character U+%04X in a string (write it as an escape)",
                           (unsigned)c);
        if (sb_putc(out, (char)c) < 0) return fail_nomem(p);
        p->pos++;
    }
}

/* At """ or ''': a multi-line string. The newline right after the opening quotes is not
 * part of it, CRLF reads as LF, and in """ a '\' at the end of a line joins the next
 * non-blank text. */
static int parse_multiline_string(parser_t *p, strbuf_t *out)
{
    mark_t open = here(p);
    int quote = cur(p), rc;
    p->pos += 3;
    if (at_newline(p)) take_newline(p);
    for (;;) {
        int c = cur(p);
        if (c < 0) return fail_at(p, open, "unterminated multi-line string");
        if (c == quote) {
            size_t n = 0;
            while (peek(p, n) == quote) n++;
            if (n >= 3) {
                /* up to two quotes may end the content right before the closing three */
                size_t keep = n > 5 ? 2 : n - 3;
                if (sb_put(out, p->text + p->pos, keep) < 0) return fail_nomem(p);
                p->pos += keep + 3;
                return 0;
            }
            if (sb_put(out, p->text + p->pos, n) < 0) return fail_nomem(p);
            p->pos += n;
            continue;
        }
        if (at_newline(p)) {
            if (sb_putc(out, '\n') < 0) return fail_nomem(p);
            take_newline(p);
            continue;
        }
        if (c == '\\' && quote == '"') {
            size_t i = 1;
            int d;
            while ((d = peek(p, i)) == ' ' || d == '\t') i++;
            if (d == '\n' || (d == '\r' && peek(p, i + 1) == '\n')) {
                p->pos += i;
                while (cur(p) == ' ' || cur(p) == '\t' || at_newline(p)) {
                    if (at_newline(p))
                        take_newline(p);
                    else
                        p->pos++;
                }
                continue;
            }
            if ((rc = parse_escape(p, out)) < 0) return rc;
            continue;
        }
        if (is_control(c))
            return fail_at(p, here(p),
                           "control character U+%04X in a string (write it as an escape)",
                           (unsigned)c);
        if (sb_putc(out, (char)c) < 0) return fail_nomem(p);
        p->pos++;
    }
}

/* ---- keys ---------------------------------------------------------------------------- */

/* At a non-ASCII character right after a bare key, or where a key should start. */
static int fail_bare_key(const parser_t *p)
{
    return fail_at(p, here(p),
                   "a bare key can only hold A-Z a-z 0-9 _ - (put other keys in quotes)");
}

/* Appends one decoded key part in canonical form: bare when it can be, else quoted. */
static int put_key_part(strbuf_t *sb, const char *s, size_t n)
{
    size_t i;
    int rc = 0;
    for (i = 0; i < n && is_bare_key_char((unsigned char)s[i]); i++)
        ;
    if (n && i == n) return sb_put(sb, s, n);
    rc = sb_putc(sb, '"');
    for (i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rc = sb_put(sb, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04X", c);
            rc = sb_put(sb, esc, 6);
        } else {
            rc = sb_putc(sb, (char)c);
        }
    }
    return rc < 0 ? rc : sb_putc(sb, '"');
}

static void key_free(toml_key_t *key)
{
    free(key->text.p);
    free(key->ends);
    memset(key, 0, sizeof *key);
}

/* A key (parts joined by '.', blanks around the dots) appended to prefix. */
static int parse_key(parser_t *p, const strbuf_t *prefix, toml_key_t *key)
{
    strbuf_t part = {0};
    char buf[32];
    int rc = 0;
    memset(key, 0, sizeof *key);
    if (sb_put(&key->text, prefix->p, prefix->len) < 0) goto nomem;
    for (;;) {
        int c = cur(p);
        part.len = 0;
        if (c == '"' || c == '\'') {
            if (peek(p, 1) == c && peek(p, 2) == c) {
                rc = fail_at(p, here(p), "a multi-line string cannot be a key");
                goto fail;
            }
            if ((rc = parse_line_string(p, &part)) < 0) goto fail;
        } else if (is_bare_key_char(c)) {
            size_t start = p->pos;
            while (is_bare_key_char(cur(p))) p->pos++;
            if (sb_put(&part, p->text + start, p->pos - start) < 0) goto nomem;
        } else if (c >= 0x80) {
            rc = fail_bare_key(p);
            goto fail;
        } else {
            rc = fail_at(p, here(p), "expected a key, found %s",
                         describe(p, p->pos, buf, sizeof buf));
            goto fail;
        }
        if (key->text.len && sb_putc(&key->text, '.') < 0) goto nomem;
        if (put_key_part(&key->text, part.p ? part.p : "", part.len) < 0) goto nomem;
        if (key->count == key->cap) {
            size_t cap = key->cap ? key->cap * 2 : 8;
            size_t *ends = realloc(key->ends, cap * sizeof *ends);
            if (!ends) goto nomem;
            key->ends = ends;
            key->cap = cap;
        }
        key->ends[key->count++] = key->text.len;
        skip_ws(p);
        if (cur(p) != '.') break;
        p->pos++;
        skip_ws(p);
    }
    free(part.p);
    return 0;
nomem:
    rc = fail_nomem(p);
fail:
    free(part.p);
    key_free(key);
    return rc;
}

/* The parent tables of a key (all its parts but the last): created when missing, and
 * refused when one is a value. Dotted keys (dotted != 0) also mark them as theirs. */
static int define_parents(parser_t *p, const toml_key_t *key, mark_t at, int dotted)
{
    int rc;
    for (size_t i = 0; i + 1 < key->count; i++) {
        size_t len = key->ends[i];
        node_t *n = index_find(&p->index, key->text.p, len);
        if (!n) {
            if ((rc = index_add(&p->index, key->text.p, len, NODE_TABLE, p->line, &n)) < 0)
                return fail_nomem(p);
        } else if (n->kind == NODE_VALUE) {
            return fail_at(p, at, "%.*s is a value (line %d), it cannot also be a table", (int)len,
                           key->text.p, n->line);
        } else if (dotted && (n->flags & TABLE_HEADER)) {
            return fail_at(p, at,
                           "dotted keys cannot add to table [%.*s], defined by its header at "
                           "line %d",
                           (int)len, key->text.p, n->line);
        } else if (dotted && (n->flags & TABLE_DOTTED) && n->section != p->section) {
            return fail_at(p, at,
                           "dotted keys cannot add to table %.*s, defined by dotted keys at line "
                           "%d",
                           (int)len, key->text.p, n->line);
        }
        if (dotted && !(n->flags & TABLE_DOTTED)) {
            n->flags |= TABLE_DOTTED;
            n->section = p->section;
            n->line = p->line;
        }
    }
    return 0;
}

/* At '[': a [table] header; it becomes the current table. */
static int parse_header(parser_t *p)
{
    mark_t at = here(p);
    strbuf_t root = {0};
    toml_key_t key = {0};
    node_t *n;
    char buf[32];
    int rc;
    if (peek(p, 1) == '[')
        return fail_at(
            p, at, "arrays of tables ([[...]]) are not supported in talaria configuration files");
    p->pos++;
    skip_ws(p);
    if ((rc = parse_key(p, &root, &key)) < 0) return rc;
    if (cur(p) >= 0x80) {
        rc = fail_bare_key(p);
        goto out;
    }
    if (cur(p) != ']') {
        rc = fail_at(p, here(p), "expected ']' after the table name, found %s",
                     describe(p, p->pos, buf, sizeof buf));
        goto out;
    }
    p->pos++;
    if ((rc = define_parents(p, &key, at, 0)) < 0) goto out;
    n = index_find(&p->index, key.text.p, key.text.len);
    if (!n) {
        if ((rc = index_add(&p->index, key.text.p, key.text.len, NODE_TABLE, p->line, &n)) < 0) {
            rc = fail_nomem(p);
            goto out;
        }
    } else if (n->kind == NODE_VALUE) {
        rc = fail_at(p, at, "%s is a value (line %d), it cannot also be a table", key.text.p,
                     n->line);
        goto out;
    } else if (n->flags & TABLE_HEADER) {
        rc = fail_at(p, at, "table [%s] is defined twice (first at line %d)", key.text.p, n->line);
        goto out;
    } else if (n->flags & TABLE_DOTTED) {
        rc = fail_at(p, at, "table [%s] is already defined by dotted keys at line %d", key.text.p,
                     n->line);
        goto out;
    }
    n->flags |= TABLE_HEADER;
    n->line = p->line;
    p->section++;
    p->table.len = 0;
    if (sb_put(&p->table, key.text.p, key.text.len) < 0) rc = fail_nomem(p);
out:
    key_free(&key);
    return rc;
}

/* ---- values -------------------------------------------------------------------------- */

static void value_free(tal_toml_value_t *v)
{
    free(v->key);
    free(v->string);
    for (size_t i = 0; i < v->item_count; i++) value_free(&v->items[i]);
    free(v->items);
    memset(v, 0, sizeof *v);
}

/* Ends a value: anything that can follow one on its line or in an array. */
static int ends_value(int c)
{
    return c < 0 || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '#' || c == ',' ||
           c == ']';
}

static int is_digit_of(int c, int base)
{
    if (base == 16) return hex_value(c) >= 0;
    return c >= '0' && c < '0' + base;
}

/* "a hexadecimal", "an octal", ... for messages. */
static const char *base_name(int base)
{
    return base == 16 ? "a hexadecimal" : base == 8 ? "an octal" : base == 2 ? "a binary" : "a";
}

/* Digits of base from off, one '_' allowed only between two digits; *end: after them. */
static int scan_digits(parser_t *p, size_t off, size_t token_end, int base, size_t *end)
{
    const char *s = p->text;
    char buf[32];
    if (off >= token_end || !is_digit_of((unsigned char)s[off], base)) {
        if (off < token_end && s[off] == '_')
            return fail_at(p, here_at(p, off), "'_' in a number must be between two digits");
        return fail_at(p, here_at(p, off), "expected %s digit, found %s", base_name(base),
                       off < token_end ? describe(p, off, buf, sizeof buf)
                                       : "the end of the number");
    }
    while (off < token_end) {
        if (is_digit_of((unsigned char)s[off], base)) {
            off++;
        } else if (s[off] == '_') {
            if (off + 1 >= token_end || !is_digit_of((unsigned char)s[off + 1], base))
                return fail_at(p, here_at(p, off), "'_' in a number must be between two digits");
            off++;
        } else {
            break;
        }
    }
    *end = off;
    return 0;
}

/* The digits (and '_') in [off, end) as an int64, negated when neg. */
static int to_integer(parser_t *p, mark_t at, size_t off, size_t end, int base, int neg,
                      int64_t *out)
{
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
    for (; off < end; off++) {
        int d = hex_value((unsigned char)p->text[off]);
        if (d < 0) continue; /* '_' */
        if (v > (limit - (uint64_t)d) / (uint64_t)base)
            return fail_at(p, at, "integer out of range (talaria reads 64-bit signed integers)");
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int to_float(parser_t *p, size_t off, size_t end, double *out)
{
    char small[64], *copy = small, *tail;
    size_t n = 0;
    int rc = 0;
    if (end - off >= sizeof small && !(copy = malloc(end - off + 1))) return fail_nomem(p);
    for (; off < end; off++)
        if (p->text[off] != '_') copy[n++] = p->text[off];
    copy[n] = '\0';
    if (!p->c_locale && !(p->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0))) {
        rc = fail_nomem(p);
        goto out;
    }
    /* overflow gives inf and underflow 0 or a subnormal, as other TOML readers do */
    *out = strtod_l(copy, &tail, p->c_locale);
out:
    if (copy != small) free(copy);
    return rc;
}

/* Integers and floats, after TOML's grammar: no leading zeros, '_' between digits, a
 * digit on each side of '.', no sign on 0x/0o/0b. */
static int parse_number(parser_t *p, tal_toml_value_t *v)
{
    const char *s = p->text;
    mark_t at = here(p);
    size_t start = p->pos, end = p->pos, i = p->pos, j;
    int neg = 0, is_float = 0, rc;
    char buf[32];
    while (end < p->len &&
           (is_bare_key_char((unsigned char)s[end]) || s[end] == '+' || s[end] == '.'))
        end++;
    if (s[i] == '+' || s[i] == '-') neg = s[i++] == '-';
    if (end - i == 3 && (!memcmp(s + i, "inf", 3) || !memcmp(s + i, "nan", 3))) {
        v->type = TAL_TOML_FLOAT;
        v->number = s[i] == 'i' ? INFINITY : NAN;
        if (neg) v->number = -v->number;
        p->pos = end;
        return 0;
    }
    if (i + 1 < end && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'o' || s[i + 1] == 'b')) {
        int base = s[i + 1] == 'x' ? 16 : s[i + 1] == 'o' ? 8 : 2;
        if (i != start)
            return fail_at(p, at,
                           "a sign is not allowed on a hexadecimal, octal or binary integer");
        if ((rc = scan_digits(p, i + 2, end, base, &j)) < 0) return rc;
        if (j != end)
            return fail_at(p, here_at(p, j), "unexpected %s in %s integer",
                           describe(p, j, buf, sizeof buf), base_name(base));
        if ((rc = to_integer(p, at, i + 2, end, base, 0, &v->integer)) < 0) return rc;
        v->type = TAL_TOML_INTEGER;
        p->pos = end;
        return 0;
    }
    if (i < end && s[i] == '.')
        return fail_at(p, here_at(p, i), "a number needs a digit before its '.' (0.5, not .5)");
    if (i < end && s[i] == '0' && i + 1 < end &&
        (is_digit_of((unsigned char)s[i + 1], 10) || s[i + 1] == '_'))
        return fail_at(p, here_at(p, i), "leading zeros are not allowed in a number");
    if (i == end || (s[i] != '_' && !is_digit_of((unsigned char)s[i], 10)))
        return fail_at(p, at, "expected a value (strings need quotes)");
    if ((rc = scan_digits(p, i, end, 10, &j)) < 0) return rc;
    if (j < end && s[j] == '.') {
        if (j + 1 >= end || !is_digit_of((unsigned char)s[j + 1], 10))
            return fail_at(p, here_at(p, j), "a '.' in a number must be followed by a digit");
        if ((rc = scan_digits(p, j + 1, end, 10, &j)) < 0) return rc;
        is_float = 1;
    }
    if (j < end && (s[j] == 'e' || s[j] == 'E')) {
        size_t e = j++;
        if (j < end && (s[j] == '+' || s[j] == '-')) j++;
        if (j == end) return fail_at(p, here_at(p, e), "the exponent of a number needs digits");
        if ((rc = scan_digits(p, j, end, 10, &j)) < 0) return rc;
        is_float = 1;
    }
    if (j != end)
        return fail_at(p, here_at(p, j), "unexpected %s in a number",
                       describe(p, j, buf, sizeof buf));
    if (is_float) {
        if ((rc = to_float(p, start, end, &v->number)) < 0) return rc;
        v->type = TAL_TOML_FLOAT;
    } else {
        if ((rc = to_integer(p, at, i, end, 10, neg, &v->integer)) < 0) return rc;
        v->type = TAL_TOML_INTEGER;
    }
    p->pos = end;
    return 0;
}

/* A date (1979-05-27) or a time (07:32:00) starts like this. */
static int looks_like_datetime(const parser_t *p)
{
    int d[4];
    for (int k = 0; k < 4; k++) d[k] = is_digit_of(peek(p, (size_t)k), 10);
    return (d[0] && d[1] && d[2] && d[3] && peek(p, 4) == '-') ||
           (d[0] && d[1] && peek(p, 2) == ':');
}

static int parse_value(parser_t *p, tal_toml_value_t *v, int depth);

/* At '[': an array, its items on any number of lines, with comments and a trailing comma. */
static int parse_array(parser_t *p, tal_toml_value_t *v, int depth)
{
    mark_t open = here(p);
    size_t cap = 0;
    char buf[32];
    int rc;
    if (depth >= MAX_ARRAY_DEPTH)
        return fail_at(p, open, "arrays nested more than %d deep", MAX_ARRAY_DEPTH);
    v->type = TAL_TOML_ARRAY;
    p->pos++;
    for (;;) {
        if ((rc = skip_blank(p)) < 0) return rc;
        if (cur(p) < 0) return fail_at(p, open, "unterminated array (no ']')");
        if (cur(p) == ']') break;
        if (v->item_count == cap) {
            size_t new_cap = cap ? cap * 2 : 4;
            tal_toml_value_t *items = realloc(v->items, new_cap * sizeof *items);
            if (!items) return fail_nomem(p);
            memset(items + cap, 0, (new_cap - cap) * sizeof *items);
            v->items = items;
            cap = new_cap;
        }
        /* counted first, so that value_free frees a half-parsed item */
        if ((rc = parse_value(p, &v->items[v->item_count++], depth + 1)) < 0) return rc;
        if ((rc = skip_blank(p)) < 0) return rc;
        if (cur(p) == ',') {
            p->pos++;
            continue;
        }
        if (cur(p) == ']') break;
        if (cur(p) < 0) return fail_at(p, open, "unterminated array (no ']')");
        return fail_at(p, here(p), "expected ',' or ']' after an array item, found %s",
                       describe(p, p->pos, buf, sizeof buf));
    }
    p->pos++;
    return 0;
}

/* One value at the current position. On failure v may hold a part (value_free). */
static int parse_value(parser_t *p, tal_toml_value_t *v, int depth)
{
    mark_t at = here(p);
    strbuf_t text = {0};
    char buf[32];
    int c = cur(p), rc;
    v->line = at.line;
    v->column = column_of(p, at);
    if (c == '"' || c == '\'') {
        if (peek(p, 1) == c && peek(p, 2) == c)
            rc = parse_multiline_string(p, &text);
        else
            rc = parse_line_string(p, &text);
        if (rc == 0 && !text.p && sb_put(&text, "", 0) < 0) rc = fail_nomem(p);
        if (rc < 0) {
            free(text.p);
            return rc;
        }
        v->type = TAL_TOML_STRING;
        v->string = text.p;
        return 0;
    }
    if (c == '[') return parse_array(p, v, depth);
    if (c == '{')
        return fail_at(p, at, "inline tables are not supported in talaria configuration files");
    if (c == 't' || c == 'f') {
        size_t n = c == 't' ? 4 : 5;
        if (p->len - p->pos >= n && !memcmp(p->text + p->pos, c == 't' ? "true" : "false", n) &&
            ends_value(peek(p, n))) {
            v->type = TAL_TOML_BOOL;
            v->boolean = c == 't';
            p->pos += n;
            return 0;
        }
        return fail_at(p, at, "expected a value (strings need quotes)");
    }
    if (looks_like_datetime(p))
        return fail_at(p, at, "dates and times are not supported in talaria configuration files");
    if (is_digit_of(c, 10) || c == '+' || c == '-' || c == '.' || c == '_' || c == 'i' || c == 'n')
        return parse_number(p, v);
    if (c < 0 || at_newline(p) || c == '#') return fail_at(p, at, "expected a value");
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
        return fail_at(p, at, "expected a value (strings need quotes)");
    return fail_at(p, at, "expected a value, found %s", describe(p, p->pos, buf, sizeof buf));
}

/* key = value, the key relative to the current table. */
static int parse_keyval(parser_t *p)
{
    mark_t at = here(p);
    toml_key_t key = {0};
    tal_toml_value_t v;
    node_t *n;
    char buf[32];
    int rc;
    memset(&v, 0, sizeof v);
    if ((rc = parse_key(p, &p->table, &key)) < 0) return rc;
    if (cur(p) >= 0x80) {
        rc = fail_bare_key(p);
        goto fail;
    }
    if (cur(p) != '=') {
        if (cur(p) < 0 || at_newline(p) || cur(p) == '#')
            rc = fail_at(p, here(p), "the key %s has no value (expected '=' and a value)",
                         key.text.p);
        else
            rc = fail_at(p, here(p), "expected '=' after the key %s, found %s", key.text.p,
                         describe(p, p->pos, buf, sizeof buf));
        goto fail;
    }
    p->pos++;
    skip_ws(p);
    if (cur(p) < 0 || at_newline(p) || cur(p) == '#' || cur(p) == '\r') {
        rc = fail_at(p, here(p), "the key %s has no value after '='", key.text.p);
        goto fail;
    }
    if ((rc = define_parents(p, &key, at, 1)) < 0) goto fail;
    n = index_find(&p->index, key.text.p, key.text.len);
    if (n) {
        if (n->kind == NODE_VALUE)
            rc = fail_at(p, at, "duplicate key %s (first defined at line %d)", key.text.p, n->line);
        else
            rc = fail_at(p, at, "%s is already a table (line %d), it cannot also be a value",
                         key.text.p, n->line);
        goto fail;
    }
    if ((rc = index_add(&p->index, key.text.p, key.text.len, NODE_VALUE, p->line, &n)) < 0) {
        rc = fail_nomem(p);
        goto fail;
    }
    if ((rc = parse_value(p, &v, 0)) < 0) goto fail;
    if (p->doc->count == p->values_cap) {
        size_t cap = p->values_cap ? p->values_cap * 2 : 16;
        tal_toml_value_t *values = realloc(p->doc->values, cap * sizeof *values);
        if (!values) {
            rc = fail_nomem(p);
            goto fail;
        }
        p->doc->values = values;
        p->values_cap = cap;
    }
    v.key = key.text.p;
    key.text.p = NULL;
    v.key_line = at.line;
    v.key_column = column_of(p, at);
    p->doc->values[p->doc->count++] = v;
    key_free(&key);
    return 0;
fail:
    value_free(&v);
    key_free(&key);
    return rc;
}

/* The whole input must be UTF-8 (no overlong forms, no surrogates), as TOML requires. */
static int check_utf8(parser_t *p)
{
    const unsigned char *s = (const unsigned char *)p->text;
    size_t i = 0;
    while (i < p->len) {
        unsigned c = s[i];
        size_t n;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            if (c == '\n') {
                p->line++;
                p->line_start = i + 1;
            }
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else {
            goto bad;
        }
        if (i + n > p->len || s[i + 1] < lo || s[i + 1] > hi) goto bad;
        for (size_t k = 2; k < n; k++)
            if ((s[i + k] & 0xc0) != 0x80) goto bad;
        i += n;
    }
    p->line = 1;
    p->line_start = 0;
    return 0;
bad:
    return fail_at(p, here_at(p, i), "invalid UTF-8 (byte 0x%02X)", (unsigned)s[i]);
}

static int parse_document(parser_t *p)
{
    char buf[32];
    int rc;
    if ((rc = check_utf8(p)) < 0) return rc;
    for (;;) {
        skip_ws(p);
        if (cur(p) < 0) return 0;
        if (at_newline(p)) {
            take_newline(p);
            continue;
        }
        if (cur(p) == '#') {
            if ((rc = skip_comment(p)) < 0) return rc;
            continue;
        }
        if (cur(p) == '[') {
            if ((rc = parse_header(p)) < 0 || (rc = end_line(p, "the table header")) < 0) return rc;
            continue;
        }
        if (cur(p) == '\r') return fail_at(p, here(p), "carriage return without a line feed");
        if (cur(p) == '=') return fail_at(p, here(p), "a key is missing before '='");
        if (cur(p) >= 0x80) return fail_bare_key(p);
        if (!is_bare_key_char(cur(p)) && cur(p) != '"' && cur(p) != '\'')
            return fail_at(p, here(p), "expected a key, a [table] or a comment, found %s",
                           describe(p, p->pos, buf, sizeof buf));
        if ((rc = parse_keyval(p)) < 0 || (rc = end_line(p, "the value")) < 0) return rc;
    }
}

int tal_toml_parse(const char *text, size_t len, const char *name, tal_toml_doc_t *doc)
{
    parser_t p;
    int rc;
    memset(doc, 0, sizeof *doc);
    memset(&p, 0, sizeof p);
    p.text = text;
    p.len = len;
    p.name = name ? name : "(config)";
    p.line = 1;
    p.doc = doc;
    if (len > INT_MAX) {
        rc = fail_at(&p, here(&p), "too large for a configuration file");
        goto fail;
    }
    if (!(doc->name = strdup(p.name)) || sb_put(&p.table, "", 0) < 0) {
        rc = fail_nomem(&p);
        goto fail;
    }
    if ((rc = parse_document(&p)) < 0) goto fail;
    goto out;
fail:
    tal_toml_free(doc);
out:
    free(p.table.p);
    index_free(&p.index);
    if (p.c_locale) freelocale(p.c_locale);
    return rc;
}

int tal_toml_parse_file(const char *path, tal_toml_doc_t *doc)
{
    FILE *fp = NULL;
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    int rc = 0;
    memset(doc, 0, sizeof *doc);
    if (!(fp = fopen(path, "rb"))) goto io_error;
    for (;;) {
        if (len == cap) {
            size_t new_cap = cap ? cap * 2 : 4096;
            char *p = realloc(text, new_cap);
            if (!p) {
                tal_log_error("%s: out of memory", path);
                rc = TAL_ENOMEM;
                goto out;
            }
            text = p;
            cap = new_cap;
        }
        n = fread(text + len, 1, cap - len, fp);
        len += n;
        if (n == 0) break;
    }
    if (ferror(fp)) goto io_error;
    rc = tal_toml_parse(text, len, path, doc);
    goto out;
io_error:
    tal_log_error("cannot read %s: %s", path, strerror(errno));
    rc = TAL_EIO;
out:
    if (fp) fclose(fp);
    free(text);
    return rc;
}

void tal_toml_free(tal_toml_doc_t *doc)
{
    if (!doc) return;
    for (size_t i = 0; i < doc->count; i++) value_free(&doc->values[i]);
    free(doc->values);
    free(doc->name);
    memset(doc, 0, sizeof *doc);
}

const tal_toml_value_t *tal_toml_get(const tal_toml_doc_t *doc, const char *key)
{
    if (!doc || !key) return NULL;
    for (size_t i = 0; i < doc->count; i++)
        if (!strcmp(doc->values[i].key, key)) return &doc->values[i];
    return NULL;
}
