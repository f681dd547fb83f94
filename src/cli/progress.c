/* A progress line on stderr when it is a terminal: redrawn in place (carriage return,
 * erase to the end of the line), at most twice a second, and erased when done. While a
 * line is up, the library's messages come through a log sink that erases it first, so a
 * warning never lands in the middle of it. */
#include "cli.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "talaria/log.h"
#include "talaria/util.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cli_progress_t *active; /* the line the sink erases */

static void erase_line(cli_progress_t *p)
{
    if (p && p->shown) fputs("\r\033[K", stderr);
    if (p) p->shown = 0;
}

static void log_line(void *ctx, tal_log_level_t level, const char *line)
{
    (void)ctx;
    (void)level;
    pthread_mutex_lock(&lock);
    erase_line(active);
    fprintf(stderr, "%s\n", line);
    pthread_mutex_unlock(&lock);
}

void cli_progress_init(cli_progress_t *p, int quiet)
{
    p->enabled = !quiet && isatty(2);
    p->shown = 0;
    p->last = 0;
    if (!p->enabled) return;
    pthread_mutex_lock(&lock);
    active = p;
    pthread_mutex_unlock(&lock);
    tal_log_set_sink(log_line, NULL);
}

void cli_progress_show(cli_progress_t *p, int force, const char *fmt, ...)
{
    va_list ap;
    double now;
    if (!p->enabled) return;
    now = tal_now_seconds();
    if (!force && p->shown && now - p->last < 0.5) return;
    p->last = now;
    pthread_mutex_lock(&lock);
    fputs("\r\033[K", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
    p->shown = 1;
    pthread_mutex_unlock(&lock);
}

void cli_progress_end(cli_progress_t *p)
{
    if (!p->enabled) return;
    tal_log_set_sink(NULL, NULL);
    pthread_mutex_lock(&lock);
    erase_line(p);
    if (active == p) active = NULL;
    pthread_mutex_unlock(&lock);
}
