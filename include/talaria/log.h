/* A levelled logger writing to stderr: the only global state in libtalaria. */
#ifndef TALARIA_LOG_H
#define TALARIA_LOG_H

typedef enum { TAL_LOG_QUIET = 0, TAL_LOG_ERROR, TAL_LOG_WARN, TAL_LOG_INFO, TAL_LOG_DEBUG } tal_log_level_t;

void tal_log_set_level(tal_log_level_t level);
tal_log_level_t tal_log_get_level(void);
/* The program name that prefixes every message ("talaria"). */
void tal_log_set_prog(const char *prog);

void tal_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tal_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tal_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tal_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
