/* talaria's configuration: one schema for every key a flag can set, filled in layers
 * (built-in defaults < profile < configuration file < TALARIA_* environment < flags), each
 * value remembering where it came from. It fills the option structs of the other modules;
 * it runs no work. The file format and every key are in talaria.toml(5). */
#ifndef TALARIA_CONFIG_H
#define TALARIA_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "talaria/api.h"
#include "talaria/reduce.h"
#include "talaria/store.h"

TAL_BEGIN_DECLS

typedef struct tal_config tal_config_t;

/* Where a value came from, lowest precedence first. */
typedef enum {
    TAL_CONFIG_DEFAULT = 0,
    TAL_CONFIG_PROFILE,
    TAL_CONFIG_FILE,
    TAL_CONFIG_ENV,
    TAL_CONFIG_FLAG
} tal_config_origin_t;

/* Every key at its built-in default. */
TAL_EXPORT int tal_config_create(tal_config_t **out);
TAL_EXPORT void tal_config_free(tal_config_t *c);

/* A profile by name: $XDG_CONFIG_HOME/talaria/NAME.toml (else ~/.config/talaria), then
 * SYSCONFDIR/talaria/NAME.toml, then the profiles built into the library (low, balanced,
 * high). An unknown profile, and any error in the file, is TAL_EUSAGE (logged naming the
 * file, line and column, or the profiles there are). */
TAL_EXPORT int tal_config_load_profile(tal_config_t *c, const char *name);
/* A configuration file (TOML). Unknown keys and tables, wrong types and values out of
 * range are TAL_EUSAGE naming the key, file, line and column; unreadable is TAL_EIO. */
TAL_EXPORT int tal_config_load_file(tal_config_t *c, const char *path);
/* The TALARIA_* environment variables: TALARIA_ + the key's last part upper-cased
 * (TALARIA_MAX_MEMORY, TALARIA_THREADS, ...). An unknown TALARIA_ variable or a bad value
 * is TAL_EUSAGE naming it. */
TAL_EXPORT int tal_config_load_env(tal_config_t *c);
/* Sets key ("memory.max_memory", "threads", ...) from text, as a flag would; where names
 * the source in messages and in tal_config_write (e.g. "--max-memory"). */
TAL_EXPORT int tal_config_set(tal_config_t *c, const char *key, const char *text,
                              tal_config_origin_t origin, const char *where);

/* Whether key has a value (keys without a default are the command's own default until
 * set), and its origin. */
TAL_EXPORT int tal_config_is_set(const tal_config_t *c, const char *key);
TAL_EXPORT tal_config_origin_t tal_config_origin(const tal_config_t *c, const char *key);
/* Typed values (0, 0.0 or NULL for a key that is not set or not of that type). Sizes are
 * bytes; booleans and integers are integers; choices are strings. */
TAL_EXPORT int64_t tal_config_int(const tal_config_t *c, const char *key);
TAL_EXPORT double tal_config_float(const tal_config_t *c, const char *key);
TAL_EXPORT const char *tal_config_string(const tal_config_t *c, const char *key);

/* The set values into the option structs of index and reduce (the rest is left as is). */
TAL_EXPORT void tal_config_index_opt(const tal_config_t *c, tal_index_opt_t *opt);
TAL_EXPORT void tal_config_reduce_opt(const tal_config_t *c, tal_reduce_opt_t *opt);

/* Every key, "key = value  # origin" a line (json: one object); keys without a value are
 * shown as the command's default. */
TAL_EXPORT int tal_config_write(const tal_config_t *c, FILE *out, int json);
/* The keys that are set, "key = value  # origin" a line, for provenance (malloc'd; NULL on
 * ENOMEM). With outputs_only, the keys that cannot change what a run writes ([memory] and
 * threads) are left out, so outputs stay the same under any cap or thread count. */
TAL_EXPORT char *tal_config_summary(const tal_config_t *c, int outputs_only);

/* The profiles that can be named: built-in ones and files in the search path, each with
 * its memory.max_memory (0: none) and where it is. Calls fn once per profile. */
TAL_EXPORT int tal_config_profiles(void (*fn)(void *arg, const char *name, uint64_t max_memory,
                                              const char *where),
                                   void *arg);

TAL_END_DECLS

#endif
