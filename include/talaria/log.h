/* A levelled logger: messages go to stderr, or to a sink the program sets. The level, the
 * prefix and the sink are the only global state in libtalaria. */
#ifndef TALARIA_LOG_H
#define TALARIA_LOG_H

#include "talaria/api.h"

TAL_BEGIN_DECLS

typedef enum {
    TAL_LOG_QUIET = 0,
    TAL_LOG_ERROR,
    TAL_LOG_WARN,
    TAL_LOG_INFO,
    TAL_LOG_DEBUG
} tal_log_level_t;

TAL_EXPORT void tal_log_set_level(tal_log_level_t level);
TAL_EXPORT tal_log_level_t tal_log_get_level(void);
/* The program name that prefixes every message ("talaria"). */
TAL_EXPORT void tal_log_set_prog(const char *prog);

/* Where messages go instead of stderr: sink gets the level and the whole line ("PROG:
 * error: ...", no newline); NULL: stderr again. Called from any thread, one message at a
 * time per call; set it before the library's threads start. */
typedef void (*tal_log_sink_fn)(void *ctx, tal_log_level_t level, const char *line);
TAL_EXPORT void tal_log_set_sink(tal_log_sink_fn sink, void *ctx);

TAL_EXPORT void tal_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
TAL_EXPORT void tal_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
TAL_EXPORT void tal_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
TAL_EXPORT void tal_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* How many errors tal_log_error has reported so far (shown or not): a program can tell
 * whether a failure has been explained yet. */
TAL_EXPORT unsigned long tal_log_error_count(void);

TAL_END_DECLS

#endif
