/* The configuration schema and its layers: one table of keys (type, range, environment
 * variable, where it applies), values filled from defaults, a profile, a file, the
 * environment and flags, each keeping its origin for `talaria config show`. */
#define _GNU_SOURCE
#include "talaria/config.h"
#include "config_internal.h"
#include "toml_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern char **environ;

typedef enum { K_INT, K_SIZE, K_FLOAT, K_BOOL, K_CHOICE, K_STRING } key_type_t;

static const char *const huge_choices[] = {"off", "thp", "hugetlb", NULL};
static const char *const numa_choices[] = {"on", "off", NULL};
static const char *const codec_choices[] = {"none", "lz4", "zstd", NULL};
static const char *const strand_choices[] = {"both", "plus", NULL};
static const char *const aligner_choices[] = {"generic", "diamond", "mmseqs2", "blast",
                                              "lambda",  "kraken",  NULL};

typedef struct {
    const char *key; /* "table.name" or a top-level "name" */
    key_type_t type;
    double min, max;            /* K_INT, K_SIZE, K_FLOAT: the range */
    const char *const *choices; /* K_CHOICE */
    const char *fallback;       /* shown when not set: the command's own default */
} key_def_t;

/* The schema. Keep talaria.toml(5) and the etc/ profiles in step with it. */
static const key_def_t keys[] = {
    {"threads", K_INT, 1, 1024, NULL, "index and stats 2, reduce 1"},
    {"memory.max_memory", K_SIZE, 0, 0x1p62, NULL, "none"},
    {"memory.low_memory", K_BOOL, 0, 1, NULL, "false"},
    {"memory.tmp_dir", K_STRING, 0, 0, NULL, "$TMPDIR, else /tmp"},
    {"memory.huge_pages", K_CHOICE, 0, 0, huge_choices, "thp"},
    {"memory.numa", K_CHOICE, 0, 0, numa_choices, "on"},
    {"memory.cache_size", K_SIZE, 1 << 20, 0x1p40, NULL, "32M"},
    {"store.compress", K_CHOICE, 0, 0, codec_choices, "none"},
    {"store.level", K_INT, 0, 22, NULL, "the codec's default (lz4 1, zstd 3)"},
    {"store.chunk_size", K_SIZE, 64 << 10, 1 << 30, NULL, "4M"},
    {"reduce.identity", K_FLOAT, 0, 1, NULL, "0.9, or the aligner preset's"},
    {"reduce.coverage", K_FLOAT, 0, 1, NULL, "0.8, or the aligner preset's"},
    {"reduce.aligner", K_CHOICE, 0, 0, aligner_choices, "generic"},
    {"reduce.kmer_size", K_INT, 4, 31, NULL, "10 for proteins, 15 for nucleotides"},
    {"reduce.sketch_size", K_INT, 1, 256, NULL, "20"},
    {"reduce.candidates", K_INT, 1, 64, NULL, "8 for proteins, 32 for nucleotides"},
    {"reduce.strand", K_CHOICE, 0, 0, strand_choices, "both (nucleotides)"},
    {"reduce.same_taxon", K_BOOL, 0, 1, NULL, "false"},
};

#define KEY_COUNT (sizeof keys / sizeof *keys)

typedef struct {
    int set;
    tal_config_origin_t origin;
    char *where; /* "profile low", "config FILE:LINE", "env TALARIA_X", "--flag" */
    int64_t integer;
    double number;
    char *string;
} value_t;

struct tal_config {
    value_t values[KEY_COUNT];
};

static int key_index(const char *key)
{
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (!strcmp(keys[i].key, key)) return (int)i;
    return -1;
}

/* "memory.max_memory" -> "TALARIA_MAX_MEMORY" */
static void env_name(const key_def_t *k, char *buf, size_t size)
{
    const char *last = strrchr(k->key, '.');
    size_t n = (size_t)snprintf(buf, size, "TALARIA_%s", last ? last + 1 : k->key);
    for (size_t i = 8; i < n && i < size; i++) buf[i] = (char)toupper((unsigned char)buf[i]);
}

int tal_config_create(tal_config_t **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : TAL_ENOMEM;
}

static void value_clear(value_t *v)
{
    free(v->where);
    free(v->string);
    memset(v, 0, sizeof *v);
}

void tal_config_free(tal_config_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < KEY_COUNT; i++) value_clear(&c->values[i]);
    free(c);
}

/* ---- values ---- */

static int in_range(const key_def_t *k, double v)
{
    if (k->type == K_FLOAT) return v > k->min && v <= k->max; /* fractions: (0, 1] */
    return v >= k->min && v <= k->max;
}

static int parse_bool(const char *t, int *b)
{
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(t, yes[i])) return *b = 1, 0;
        if (!strcasecmp(t, no[i])) return *b = 0, 0;
    }
    return -1;
}

static int choice_of(const key_def_t *k, const char *t)
{
    /* "none" is what TALARIA_HUGE_PAGES took before the configuration existed */
    if (k->choices == huge_choices && !strcmp(t, "none")) t = "off";
    for (int i = 0; k->choices[i]; i++)
        if (!strcmp(k->choices[i], t)) return i;
    return -1;
}

/* A size limit of the schema as it would be written: "64K", "1G". */
static const char *size_name(double bytes, char *buf, size_t size)
{
    static const char units[] = "KMGT";
    char unit[2] = "";
    for (int u = 0; units[u] && bytes >= 1024 && fmod(bytes, 1024) == 0; u++) {
        bytes /= 1024;
        unit[0] = units[u];
    }
    snprintf(buf, size, "%.0f%s", bytes, unit);
    return buf;
}

/* What a key takes, for messages. */
static void describe(const key_def_t *k, char *buf, size_t size)
{
    char lo[32], hi[32];
    size_t at = 0;
    switch (k->type) {
    case K_INT: snprintf(buf, size, "a whole number from %.0f to %.0f", k->min, k->max); break;
    case K_SIZE:
        if (k->min > 0) /* a bounded size: say the bounds, not only the form */
            snprintf(buf, size, "a size from %s to %s, such as %s (or bytes)",
                     size_name(k->min, lo, sizeof lo), size_name(k->max, hi, sizeof hi),
                     k->fallback);
        else
            snprintf(buf, size, "a size such as 512M or 4G (or bytes)");
        break;
    case K_FLOAT: snprintf(buf, size, "a number in (0, 1]"); break;
    case K_BOOL: snprintf(buf, size, "true or false"); break;
    case K_STRING: snprintf(buf, size, "a string"); break;
    case K_CHOICE:
        at = (size_t)snprintf(buf, size, "one of");
        for (int i = 0; k->choices[i] && at < size; i++)
            at += (size_t)snprintf(buf + at, size - at, "%s %s", i ? "," : "", k->choices[i]);
        break;
    }
}

static int store(tal_config_t *c, int idx, const value_t *v, tal_config_origin_t origin,
                 const char *where)
{
    value_t *dst = &c->values[idx];
    char *w = strdup(where);
    if (!w) return TAL_ENOMEM;
    value_clear(dst);
    *dst = *v;
    dst->set = 1;
    dst->origin = origin;
    dst->where = w;
    return 0;
}

/* text into v for key k; 0, or -1 when it is not what k takes */
static int parse_text(const key_def_t *k, const char *text, value_t *v)
{
    char *end;
    int b;
    memset(v, 0, sizeof *v);
    switch (k->type) {
    case K_INT:
        errno = 0;
        v->integer = strtoll(text, &end, 10);
        return *text && !*end && !errno && in_range(k, (double)v->integer) ? 0 : -1;
    case K_SIZE: {
        uint64_t bytes;
        if (k == &keys[key_index("memory.max_memory")] &&
            (!strcmp(text, "none") || !strcmp(text, "0")))
            return v->integer = 0, 0;
        if (tal_parse_size(text, &bytes) < 0 || !in_range(k, (double)bytes)) return -1;
        v->integer = (int64_t)bytes;
        return 0;
    }
    case K_FLOAT:
        v->number = strtod(text, &end);
        return *text && !*end && in_range(k, v->number) ? 0 : -1;
    case K_BOOL:
        if (parse_bool(text, &b) < 0) return -1;
        v->integer = b;
        return 0;
    case K_CHOICE: {
        int i = choice_of(k, text);
        if (i < 0) return -1;
        v->integer = i;
        return (v->string = strdup(k->choices[i])) ? 0 : -1;
    }
    case K_STRING:
        if (!*text) return -1;
        return (v->string = strdup(text)) ? 0 : -1;
    }
    return -1;
}

int tal_config_set(tal_config_t *c, const char *key, const char *text, tal_config_origin_t origin,
                   const char *where)
{
    int idx = key_index(key), rc;
    value_t v;
    char what[160];
    if (idx < 0) {
        tal_log_error("%s: unknown configuration key '%s'", where, key);
        return TAL_EUSAGE;
    }
    if (parse_text(&keys[idx], text, &v) < 0) {
        free(v.string);
        describe(&keys[idx], what, sizeof what);
        tal_log_error("%s: %s must be %s, not '%s'", where, key, what, text);
        return TAL_EUSAGE;
    }
    if ((rc = store(c, idx, &v, origin, where)) < 0) free(v.string);
    return rc;
}

/* A TOML value into v for key k; 0, or -1 when its type or value is not what k takes. */
static int from_toml(const key_def_t *k, const tal_toml_value_t *t, value_t *v)
{
    memset(v, 0, sizeof *v);
    switch (k->type) {
    case K_INT:
        if (t->type != TAL_TOML_INTEGER || !in_range(k, (double)t->integer)) return -1;
        v->integer = t->integer;
        return 0;
    case K_SIZE:
        if (t->type == TAL_TOML_INTEGER) {
            if (!(k == &keys[key_index("memory.max_memory")] && t->integer == 0) &&
                !in_range(k, (double)t->integer))
                return -1;
            v->integer = t->integer;
            return 0;
        }
        return t->type == TAL_TOML_STRING ? parse_text(k, t->string, v) : -1;
    case K_FLOAT:
        if (t->type == TAL_TOML_FLOAT)
            v->number = t->number;
        else if (t->type == TAL_TOML_INTEGER)
            v->number = (double)t->integer;
        else
            return -1;
        return in_range(k, v->number) ? 0 : -1;
    case K_BOOL:
        if (t->type != TAL_TOML_BOOL) return -1;
        v->integer = t->boolean;
        return 0;
    case K_CHOICE:
    case K_STRING: return t->type == TAL_TOML_STRING ? parse_text(k, t->string, v) : -1;
    }
    return -1;
}

static int known_table(const char *key, size_t len)
{
    static const char *tables[] = {"memory", "store", "reduce"};
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++)
        if (strlen(tables[i]) == len && !strncmp(tables[i], key, len)) return 1;
    return 0;
}

/* Every value of a parsed file into c; name is the file as messages call it, label the
 * origin as tal_config_write shows it ("profile low", "config PATH"). */
static int load_doc(tal_config_t *c, const tal_toml_doc_t *doc, const char *name,
                    tal_config_origin_t origin, const char *label)
{
    for (size_t i = 0; i < doc->count; i++) {
        const tal_toml_value_t *t = &doc->values[i];
        const char *dot = strchr(t->key, '.');
        int idx = key_index(t->key), rc;
        char where[4200], what[160];
        value_t v;
        if (idx < 0) {
            if (dot && !known_table(t->key, (size_t)(dot - t->key)))
                tal_log_error("%s:%d:%d: unknown table [%.*s] (talaria.toml(5) lists the tables: "
                              "memory, store, reduce)",
                              name, t->key_line, t->key_column, (int)(dot - t->key), t->key);
            else
                tal_log_error("%s:%d:%d: unknown key '%s' (talaria.toml(5) lists the keys)", name,
                              t->key_line, t->key_column, t->key);
            return TAL_EUSAGE;
        }
        if (from_toml(&keys[idx], t, &v) < 0) {
            free(v.string);
            describe(&keys[idx], what, sizeof what);
            tal_log_error("%s:%d:%d: %s must be %s", name, t->line, t->column, t->key, what);
            return TAL_EUSAGE;
        }
        /* a profile is named; a file is named with the line */
        if (origin == TAL_CONFIG_PROFILE)
            snprintf(where, sizeof where, "%s", label);
        else
            snprintf(where, sizeof where, "%s:%d", label, t->key_line);
        if ((rc = store(c, idx, &v, origin, where)) < 0) {
            free(v.string);
            return rc;
        }
    }
    return 0;
}

int tal_config_load_text(tal_config_t *c, const char *text, size_t len, const char *name)
{
    tal_toml_doc_t doc;
    char label[4200];
    int rc;
    if ((rc = tal_toml_parse(text, len, name, &doc)) < 0) return rc;
    snprintf(label, sizeof label, "config %s", name);
    rc = load_doc(c, &doc, name, TAL_CONFIG_FILE, label);
    tal_toml_free(&doc);
    return rc;
}

int tal_config_read_file(const char *path, char **text, size_t *size)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    *text = NULL;
    *size = 0;
    if (!f) {
        tal_log_error("cannot open %s: %s", path, strerror(errno));
        return TAL_EIO;
    }
    do {
        if (len + 65536 + 1 > cap) {
            char *b = realloc(buf, cap = (len + 65536 + 1) * 2);
            if (!b) {
                free(buf);
                fclose(f);
                return TAL_ENOMEM;
            }
            buf = b;
        }
        n = fread(buf + len, 1, 65536, f);
        len += n;
    } while (n > 0);
    if (ferror(f)) {
        tal_log_error("cannot read %s: %s", path, strerror(errno));
        free(buf);
        fclose(f);
        return TAL_EIO;
    }
    fclose(f);
    buf[len] = '\0';
    *text = buf;
    *size = len;
    return 0;
}

int tal_config_load_file(tal_config_t *c, const char *path)
{
    char *text;
    size_t size;
    int rc;
    if ((rc = tal_config_read_file(path, &text, &size)) < 0) return rc;
    rc = tal_config_load_text(c, text, size, path);
    free(text);
    return rc;
}

/* ---- profiles ---- */

/* The folders a profile is looked for in, in order; *count of them. */
static void profile_dirs(char dirs[2][2048], int *count)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    *count = 0;
    if (xdg && *xdg)
        snprintf(dirs[(*count)++], 2048, "%s/talaria", xdg);
    else if (home && *home)
        snprintf(dirs[(*count)++], 2048, "%s/.config/talaria", home);
    snprintf(dirs[(*count)++], 2048, "%s/talaria", TAL_SYSCONFDIR);
}

static int valid_profile_name(const char *name)
{
    if (!*name || strlen(name) > 64) return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') return 0;
    return 1;
}

int tal_config_load_profile(tal_config_t *c, const char *name)
{
    char dirs[2][2048], path[4300], label[128];
    int n, rc;
    tal_toml_doc_t doc;
    struct stat st;
    if (!valid_profile_name(name)) {
        tal_log_error("--profile '%s': a profile is named by letters, digits, '-' and '_'", name);
        return TAL_EUSAGE;
    }
    snprintf(label, sizeof label, "profile %s", name);
    profile_dirs(dirs, &n);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s.toml", dirs[i], name);
        if (stat(path, &st) != 0) continue;
        if ((rc = tal_toml_parse_file(path, &doc)) < 0) return rc;
        rc = load_doc(c, &doc, path, TAL_CONFIG_PROFILE, label);
        tal_toml_free(&doc);
        return rc;
    }
    for (size_t i = 0; i < tal_builtin_profile_count; i++) {
        char builtin[128];
        if (strcmp(tal_builtin_profiles[i].name, name)) continue;
        snprintf(builtin, sizeof builtin, "(built-in) %s.toml", name);
        if ((rc = tal_toml_parse(tal_builtin_profiles[i].text, strlen(tal_builtin_profiles[i].text),
                                 builtin, &doc)) < 0)
            return rc;
        rc = load_doc(c, &doc, builtin, TAL_CONFIG_PROFILE, label);
        tal_toml_free(&doc);
        return rc;
    }
    tal_log_error("unknown profile '%s': 'talaria config profiles' lists them (built in: low, "
                  "balanced, high; your own go in %s/%s.toml)",
                  name, dirs[0], name);
    return TAL_EUSAGE;
}

/* A profile's memory.max_memory, from its text. */
static uint64_t profile_cap(const char *text, size_t len, const char *name)
{
    tal_config_t c;
    tal_toml_doc_t doc;
    uint64_t cap = 0;
    tal_log_level_t level = tal_log_get_level();
    memset(&c, 0, sizeof c);
    tal_log_set_level(TAL_LOG_QUIET); /* a broken profile is named when it is used */
    if (tal_toml_parse(text, len, name, &doc) == 0) {
        if (load_doc(&c, &doc, name, TAL_CONFIG_PROFILE, name) == 0)
            cap = (uint64_t)tal_config_int(&c, "memory.max_memory");
        tal_toml_free(&doc);
    }
    tal_log_set_level(level);
    for (size_t i = 0; i < KEY_COUNT; i++) value_clear(&c.values[i]);
    return cap;
}

/* Whether name is among the first count of names. */
static int seen_name(char (*names)[128], size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}

int tal_config_profiles(void (*fn)(void *arg, const char *name, uint64_t max_memory,
                                   const char *where),
                        void *arg)
{
    /* in the order --profile looks, each name once: the one it would load */
    char dirs[2][2048], names[256][128];
    size_t count = 0;
    int n;
    profile_dirs(dirs, &n);
    for (int i = 0; i < n; i++) {
        struct dirent **list;
        int entries = scandir(dirs[i], &list, NULL, alphasort);
        for (int e = 0; e < entries; e++) {
            size_t len = strlen(list[e]->d_name);
            char path[4500], name[128], *text;
            size_t size;
            if (len > 5 && !strcmp(list[e]->d_name + len - 5, ".toml") && len - 5 < sizeof name &&
                count < sizeof names / sizeof *names) {
                snprintf(name, sizeof name, "%.*s", (int)(len - 5), list[e]->d_name);
                snprintf(path, sizeof path, "%s/%s", dirs[i], list[e]->d_name);
                if (valid_profile_name(name) && !seen_name(names, count, name) &&
                    tal_config_read_file(path, &text, &size) == 0) {
                    snprintf(names[count++], sizeof *names, "%s", name);
                    fn(arg, name, profile_cap(text, size, path), path);
                    free(text);
                }
            }
            free(list[e]);
        }
        if (entries >= 0) free(list);
    }
    for (size_t i = 0; i < tal_builtin_profile_count; i++) {
        const char *text = tal_builtin_profiles[i].text;
        if (seen_name(names, count, tal_builtin_profiles[i].name)) continue;
        fn(arg, tal_builtin_profiles[i].name, profile_cap(text, strlen(text), "built-in"),
           "built-in");
    }
    return 0;
}

/* ---- environment ---- */

int tal_config_load_env(tal_config_t *c)
{
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        char name[64];
        size_t i;
        int rc;
        if (strncmp(*e, "TALARIA_", 8) || !eq) continue;
        for (i = 0; i < KEY_COUNT; i++) {
            env_name(&keys[i], name, sizeof name);
            if (strlen(name) == (size_t)(eq - *e) && !strncmp(*e, name, (size_t)(eq - *e))) break;
        }
        if (i == KEY_COUNT) {
            tal_log_error("unknown environment variable %.*s (talaria.toml(5) lists the TALARIA_ "
                          "variables)",
                          (int)(eq - *e), *e);
            return TAL_EUSAGE;
        }
        char where[80];
        snprintf(where, sizeof where, "env %s", name);
        if ((rc = tal_config_set(c, keys[i].key, eq + 1, TAL_CONFIG_ENV, where)) < 0) return rc;
    }
    return 0;
}

/* ---- reading ---- */

static const value_t *value_of(const tal_config_t *c, const char *key)
{
    int idx = key_index(key);
    return idx >= 0 && c->values[idx].set ? &c->values[idx] : NULL;
}

int tal_config_is_set(const tal_config_t *c, const char *key) { return value_of(c, key) != NULL; }

tal_config_origin_t tal_config_origin(const tal_config_t *c, const char *key)
{
    const value_t *v = value_of(c, key);
    return v ? v->origin : TAL_CONFIG_DEFAULT;
}

int64_t tal_config_int(const tal_config_t *c, const char *key)
{
    const value_t *v = value_of(c, key);
    return v ? v->integer : 0;
}

double tal_config_float(const tal_config_t *c, const char *key)
{
    const value_t *v = value_of(c, key);
    return v ? v->number : 0.0;
}

const char *tal_config_string(const tal_config_t *c, const char *key)
{
    const value_t *v = value_of(c, key);
    return v ? v->string : NULL;
}

void tal_config_index_opt(const tal_config_t *c, tal_index_opt_t *opt)
{
    if (tal_config_is_set(c, "threads")) opt->threads = (int)tal_config_int(c, "threads");
    if (tal_config_is_set(c, "memory.low_memory"))
        opt->low_memory = (int)tal_config_int(c, "memory.low_memory");
    if (tal_config_is_set(c, "store.compress"))
        opt->compress = (int)tal_config_int(c, "store.compress"); /* the choices' order */
    if (tal_config_is_set(c, "store.level")) opt->level = (int)tal_config_int(c, "store.level");
    if (tal_config_is_set(c, "store.chunk_size"))
        opt->chunk_size = (uint64_t)tal_config_int(c, "store.chunk_size");
}

void tal_config_reduce_opt(const tal_config_t *c, tal_reduce_opt_t *opt)
{
    /* the preset first: identity and coverage set anywhere override its thresholds */
    if (tal_config_is_set(c, "reduce.aligner"))
        tal_reduce_set_aligner(opt, tal_config_string(c, "reduce.aligner"));
    if (tal_config_is_set(c, "reduce.identity"))
        opt->identity = tal_config_float(c, "reduce.identity");
    if (tal_config_is_set(c, "reduce.coverage"))
        opt->coverage = tal_config_float(c, "reduce.coverage");
    if (tal_config_is_set(c, "threads")) opt->threads = (int)tal_config_int(c, "threads");
    if (tal_config_is_set(c, "memory.low_memory"))
        opt->low_memory = (int)tal_config_int(c, "memory.low_memory");
    if (tal_config_is_set(c, "memory.max_memory"))
        opt->max_memory = (uint64_t)tal_config_int(c, "memory.max_memory");
    if (tal_config_is_set(c, "memory.tmp_dir"))
        opt->tmp_dir = tal_config_string(c, "memory.tmp_dir");
    if (tal_config_is_set(c, "reduce.kmer_size"))
        opt->kmer_size = (int)tal_config_int(c, "reduce.kmer_size");
    if (tal_config_is_set(c, "reduce.sketch_size"))
        opt->sketch_size = (int)tal_config_int(c, "reduce.sketch_size");
    if (tal_config_is_set(c, "reduce.candidates"))
        opt->candidates = (int)tal_config_int(c, "reduce.candidates");
    if (tal_config_is_set(c, "reduce.strand"))
        opt->strand = (int)tal_config_int(c, "reduce.strand"); /* the choices' order */
    if (tal_config_is_set(c, "reduce.same_taxon"))
        opt->same_taxon = (int)tal_config_int(c, "reduce.same_taxon");
}

/* A value as a configuration file would say it. */
static void format_value(const key_def_t *k, const value_t *v, char *buf, size_t size, int quote)
{
    const char *q = quote ? "\"" : "";
    switch (k->type) {
    case K_INT: snprintf(buf, size, "%lld", (long long)v->integer); break;
    case K_FLOAT: snprintf(buf, size, "%.6g", v->number); break;
    case K_BOOL: snprintf(buf, size, "%s", v->integer ? "true" : "false"); break;
    case K_SIZE:
        if (!v->integer)
            snprintf(buf, size, "%snone%s", q, q);
        else if (v->integer % (1 << 30) == 0)
            snprintf(buf, size, "%s%lldG%s", q, (long long)(v->integer >> 30), q);
        else if (v->integer % (1 << 20) == 0)
            snprintf(buf, size, "%s%lldM%s", q, (long long)(v->integer >> 20), q);
        else if (v->integer % (1 << 10) == 0)
            snprintf(buf, size, "%s%lldK%s", q, (long long)(v->integer >> 10), q);
        else
            snprintf(buf, size, "%lld", (long long)v->integer);
        break;
    case K_CHOICE:
    case K_STRING: snprintf(buf, size, "%s%s%s", q, v->string, q); break;
    }
}

static void json_text(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

int tal_config_write(const tal_config_t *c, FILE *out, int json)
{
    if (json) fputs("{\n", out);
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const value_t *v = &c->values[i];
        char text[4200], env[64];
        env_name(&keys[i], env, sizeof env);
        if (v->set) format_value(&keys[i], v, text, sizeof text, 0);
        if (json) {
            fprintf(out, "  \"%s\": {\"value\": ", keys[i].key);
            if (!v->set)
                fputs("null", out);
            else if (keys[i].type == K_CHOICE || keys[i].type == K_STRING || keys[i].type == K_SIZE)
                json_text(out, text);
            else
                fputs(text, out);
            fputs(", \"origin\": ", out);
            json_text(out, v->set ? v->where : "default");
            fputs(", \"default\": ", out);
            json_text(out, keys[i].fallback);
            fprintf(out, ", \"env\": \"%s\"}%s\n", env, i + 1 < KEY_COUNT ? "," : "");
        } else if (v->set) {
            fprintf(out, "%s = %s  # %s\n", keys[i].key, text, v->where);
        } else {
            fprintf(out, "%s = (%s)  # default\n", keys[i].key, keys[i].fallback);
        }
    }
    if (json) fputs("}\n", out);
    return ferror(out) ? TAL_EIO : 0;
}

char *tal_config_summary(const tal_config_t *c, int outputs_only)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) return NULL;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        char text[4200];
        if (!c->values[i].set) continue;
        if (outputs_only &&
            (!strncmp(keys[i].key, "memory.", 7) || !strcmp(keys[i].key, "threads")))
            continue;
        format_value(&keys[i], &c->values[i], text, sizeof text, 0);
        fprintf(f, "%s = %s  # %s\n", keys[i].key, text, c->values[i].where);
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
