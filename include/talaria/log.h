/* A levelled logger writing to stderr: the only global state in libtalaria. */
#ifndef TALARIA_LOG_H
#define TALARIA_LOG_H

#include "talaria/api.h"

TAL_BEGIN_DECLS

typedef enum { TAL_LOG_QUIET = 0, TAL_LOG_ERROR, TAL_LOG_WARN, TAL_LOG_INFO, TAL_LOG_DEBUG } tal_log_level_t;

TAL_EXPORT void tal_log_set_level(tal_log_level_t level);
TAL_EXPORT tal_log_level_t tal_log_get_level(void);
/* The program name that prefixes every message ("talaria"). */
TAL_EXPORT void tal_log_set_prog(const char *prog);

TAL_EXPORT void tal_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
TAL_EXPORT void tal_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
TAL_EXPORT void tal_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
TAL_EXPORT void tal_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

TAL_END_DECLS

#endif
