/* The memory options of index and reduce: the cap, the monitor, and how malloc is set up
 * so that what the budget counts is what the kernel sees. */
#include "cli.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/util.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

int cli_mem_option(const char *cmd, int opt, const char *arg, cli_mem_t *m)
{
    switch (opt) {
    case CLI_OPT_MAX_MEMORY:
        m->cap_set = 1;
        if (tal_parse_size(arg, &m->cap) < 0) {
            cli_usage_error(cmd, "--max-memory must be a size such as 512M or 4G, not '%s'", arg);
            return -1;
        }
        return 1;
    case CLI_OPT_MONITOR: {
        char *end;
        m->monitor = 1;
        m->interval = 5.0;
        if (arg && (m->interval = strtod(arg, &end), !*arg || *end || !(m->interval >= 0.1))) {
            cli_usage_error(cmd, "--monitor-memory takes seconds (0.1 or more), not '%s'", arg);
            return -1;
        }
        return 1;
    }
    case CLI_OPT_REPORT: m->report = arg; return 1;
    case CLI_OPT_LOW_MEMORY: m->low_memory = 1; return 1;
    case CLI_OPT_STREAM: m->stream = 1; return 1;
    default: return 0;
    }
}

int cli_mem_begin(const char *cmd, cli_mem_t *m)
{
    tal_rss_t rss;
    int rc;
    /* Big blocks come from their own mappings and go back to the kernel when freed (a
     * fixed threshold: glibc's sliding one would keep freed blocks in the heap), the heap
     * is trimmed, and threads share two arenas instead of one each. The same with and
     * without a cap, so the runs compute the same things. */
    mallopt(M_MMAP_THRESHOLD, 256 << 10);
    mallopt(M_TRIM_THRESHOLD, 1 << 20);
    mallopt(M_ARENA_MAX, 2);
    if ((rc = tal_budget_create(&m->budget, m->cap)) < 0) return rc;
    /* what the process holds already (program, libraries, stacks) counts as well */
    if (tal_rss_read(&rss) == 0) tal_budget_force(m->budget, TAL_MEM_OTHER, rss.rss);
    if (m->monitor || m->report)
        if ((rc = tal_memmon_start(&m->mon, m->budget, m->interval > 0 ? m->interval : 5.0,
                                   m->monitor, m->report, cmd)) < 0)
            return rc;
    return 0;
}

int cli_mem_end(cli_mem_t *m)
{
    int rc = tal_memmon_stop(m->mon);
    m->mon = NULL;
    tal_budget_destroy(m->budget);
    m->budget = NULL;
    return rc;
}

int cli_mem_too_small(const char *cmd, const cli_mem_t *m, uint64_t need, const char *why)
{
    char a[32], b[32];
    /* rounded up to a whole MiB, the way people type it */
    uint64_t mib = (need + (1u << 20) - 1) >> 20;
    tal_format_size(m->cap, a, sizeof a);
    snprintf(b, sizeof b, "%lluM", (unsigned long long)mib);
    tal_log_error("%s: --max-memory %s is below what this run needs (%s); the smallest cap "
                  "that works here is --max-memory %s",
                  cmd, a, why, b);
    return TAL_EMEMCAP;
}
