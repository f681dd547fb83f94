/* What the configuration module shares with itself and the build: the profiles built
 * into the library (generated from etc/NAME.toml by the build) and a whole-file reader. */
#ifndef TAL_CONFIG_INTERNAL_H
#define TAL_CONFIG_INTERNAL_H

#include <stddef.h>

typedef struct {
    const char *name; /* "low" for etc/low.toml */
    const char *text; /* the file's bytes */
} tal_builtin_profile_t;

extern const tal_builtin_profile_t tal_builtin_profiles[];
extern const size_t tal_builtin_profile_count;

/* The whole of path into *text (NUL-terminated, malloc'd), *size bytes; TAL_EIO naming
 * the path when it cannot be read. */
int tal_config_read_file(const char *path, char **text, size_t *size);

#endif
