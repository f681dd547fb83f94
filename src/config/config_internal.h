/* What the configuration module shares with itself and the build: the profiles built
 * into the library (generated from etc/NAME.toml by the build), a whole-file reader and a
 * loader of configuration text. */
#ifndef TAL_CONFIG_INTERNAL_H
#define TAL_CONFIG_INTERNAL_H

#include <stddef.h>

#include "talaria/config.h"

typedef struct {
    const char *name; /* "low" for etc/low.toml */
    const char *text; /* the file's bytes */
} tal_builtin_profile_t;

extern const tal_builtin_profile_t tal_builtin_profiles[];
extern const size_t tal_builtin_profile_count;

/* len bytes of TOML named name in messages into c, as tal_config_load_file loads a file
 * (the fuzz harness's way in, without a file). */
int tal_config_load_text(tal_config_t *c, const char *text, size_t len, const char *name);

/* The whole of path into *text (NUL-terminated, malloc'd), *size bytes; TAL_EIO naming
 * the path when it cannot be read. */
int tal_config_read_file(const char *path, char **text, size_t *size);

#endif
