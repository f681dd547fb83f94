/* A progress line on stderr when it is a terminal: redrawn in place (carriage return,
 * erase to the end of the line), at most twice a second, and erased when done. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "talaria/util.h"

void cli_progress_init(cli_progress_t *p, int quiet)
{
    p->enabled = !quiet && isatty(2);
    p->shown = 0;
    p->last = 0;
}

void cli_progress_show(cli_progress_t *p, int force, const char *fmt, ...)
{
    va_list ap;
    double now;
    if (!p->enabled) return;
    now = tal_now_seconds();
    if (!force && p->shown && now - p->last < 0.5) return;
    p->last = now;
    fputs("\r\033[K", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
    p->shown = 1;
}

void cli_progress_end(cli_progress_t *p)
{
    if (p->shown) fputs("\r\033[K", stderr);
    p->shown = 0;
}
