/* What the program installs and the library must not: handlers that remove temporary
 * outputs when a signal ends the process, and quiet replacements for libnuma's hooks. */
#include "cli.h"
#include "talaria/log.h"
#include "talaria/util.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void on_signal(int sig)
{
    tal_cleanup_temporaries();
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* libnuma reports failures through numa_warn and numa_error, whose own versions print to
 * stderr and which a program may replace. Every NUMA failure in talaria ends in a
 * documented fallback (no binding), so libnuma's messages go to the debug log only. */
void numa_warn(int num, char *fmt, ...);
void numa_error(char *where);

void numa_warn(int num, char *fmt, ...)
{
    char msg[256];
    size_t len;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    len = strlen(msg);
    while (len > 0 && msg[len - 1] == '\n') msg[--len] = '\0';
    tal_log_debug("libnuma warning %d: %s", num, msg);
}

void numa_error(char *where) { tal_log_debug("libnuma: %s failed", where); }
