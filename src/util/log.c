/* The levelled logger. Messages go to stderr in one write each so that
 * lines from concurrent threads do not interleave. */
#include "talaria/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static tal_log_level_t log_level = TAL_LOG_WARN;
static const char *log_prog = "talaria";
static tal_log_sink_fn log_sink;
static void *log_sink_ctx;
static unsigned long log_errors;

void tal_log_set_level(tal_log_level_t level) { log_level = level; }
tal_log_level_t tal_log_get_level(void) { return log_level; }
unsigned long tal_log_error_count(void) { return __atomic_load_n(&log_errors, __ATOMIC_RELAXED); }
void tal_log_set_prog(const char *prog) { log_prog = prog; }
void tal_log_set_sink(tal_log_sink_fn sink, void *ctx)
{
    log_sink = sink;
    log_sink_ctx = ctx;
}

static void log_emit(tal_log_level_t level, const char *tag, const char *fmt, va_list ap)
{
    char line[4096];
    int n;
    if (level == TAL_LOG_ERROR) __atomic_add_fetch(&log_errors, 1, __ATOMIC_RELAXED);
    if (level > log_level) return;
    n = snprintf(line, sizeof line, "%s: %s", log_prog, tag);
    if (n < 0) return;
    if ((size_t)n < sizeof line) {
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        if (m > 0) n += m;
    }
    if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2;
    if (log_sink) {
        line[n] = '\0';
        log_sink(log_sink_ctx, level, line);
        return;
    }
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
}

#define LOG_FN(name, level, tag)                                                                   \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_emit(level, tag, fmt, ap);                                                             \
        va_end(ap);                                                                                \
    }

LOG_FN(tal_log_error, TAL_LOG_ERROR, "error: ")
LOG_FN(tal_log_warn, TAL_LOG_WARN, "warning: ")
LOG_FN(tal_log_info, TAL_LOG_INFO, "")
LOG_FN(tal_log_debug, TAL_LOG_DEBUG, "debug: ")
