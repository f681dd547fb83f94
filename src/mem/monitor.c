/* --monitor-memory: what the budget believes beside what the kernel measures, every few
 * seconds on stderr and once at the end, optionally as JSON (--memory-report). A gap
 * between the two is memory nobody reserved: the thing the cap must not miss. */
#define _GNU_SOURCE
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/mem.h"
#include "talaria/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tal_rss_read(tal_rss_t *rss)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int found = 0;
    memset(rss, 0, sizeof *rss);
    if (!f) return TAL_EIO;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6))
            rss->rss = strtoull(line + 6, NULL, 10) * 1024, found++;
        else if (!strncmp(line, "VmHWM:", 6))
            rss->hwm = strtoull(line + 6, NULL, 10) * 1024, found++;
    }
    fclose(f);
    return found == 2 ? 0 : TAL_EIO;
}

struct tal_memmon {
    tal_budget_t *budget;
    double interval, started;
    int print;
    char *command;
    FILE *json;
    char *json_path;
    int samples;
    pthread_t thread;
    int running, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void mib(char *buf, size_t size, uint64_t bytes)
{
    snprintf(buf, size, "%.1f", (double)bytes / 1048576.0);
}

static void sample(tal_memmon_t *m, int final)
{
    tal_rss_t rss;
    uint64_t tracked = tal_budget_used(m->budget, TAL_MEM_COMPONENTS),
             peak = tal_budget_peak(m->budget);
    uint64_t cap = tal_budget_cap(m->budget);
    double t = tal_now_seconds() - m->started;
    char a[32];
    tal_rss_read(&rss);
    if (m->print) {
        char line[1024];
        size_t at = 0;
        at += (size_t)snprintf(line + at, sizeof line - at, "memory %s %.1fs: tracked",
                               final ? "final" : "at", t);
        for (int c = 0; c < TAL_MEM_COMPONENTS; c++) {
            uint64_t u = tal_budget_used(m->budget, (tal_mem_component_t)c);
            if (!u) continue;
            mib(a, sizeof a, u);
            at += (size_t)snprintf(line + at, sizeof line - at, " %s %s",
                                   tal_mem_component_name((tal_mem_component_t)c), a);
            if (at >= sizeof line) break;
        }
        if (at < sizeof line) {
            char b[32], c2[32], d[32];
            mib(a, sizeof a, tracked);
            mib(b, sizeof b, peak);
            mib(c2, sizeof c2, rss.rss);
            mib(d, sizeof d, rss.hwm);
            snprintf(line + at, sizeof line - at,
                     " = %s MiB (peak %s); VmRSS %s, VmHWM %s MiB; gap %+.1f%% of VmHWM%s", a, b,
                     c2, d,
                     rss.hwm ? 100.0 * ((double)peak - (double)rss.hwm) / (double)rss.hwm : 0.0,
                     cap ? "" : " (no cap)");
        }
        /* straight to stderr: the log level must not hide what was asked for */
        fprintf(stderr, "talaria %s: %s\n", m->command, line);
    }
    if (m->json) {
        fprintf(m->json,
                "%s\n    {\"seconds\": %.3f, \"tracked\": %llu, \"tracked_peak\": %llu, \"vmrss\": "
                "%llu, "
                "\"vmhwm\": %llu, \"components\": {",
                m->samples ? "," : "", t, (unsigned long long)tracked, (unsigned long long)peak,
                (unsigned long long)rss.rss, (unsigned long long)rss.hwm);
        for (int c = 0; c < TAL_MEM_COMPONENTS; c++)
            fprintf(m->json, "%s\"%s\": %llu", c ? ", " : "",
                    tal_mem_component_name((tal_mem_component_t)c),
                    (unsigned long long)tal_budget_used(m->budget, (tal_mem_component_t)c));
        fprintf(m->json, "}}");
        m->samples++;
        if (final)
            fprintf(m->json,
                    "\n  ],\n  \"cap\": %llu,\n  \"tracked_peak\": %llu,\n  \"vmhwm\": %llu,\n"
                    "  \"gap_fraction\": %.4f\n}\n",
                    (unsigned long long)cap, (unsigned long long)peak, (unsigned long long)rss.hwm,
                    rss.hwm ? ((double)peak - (double)rss.hwm) / (double)rss.hwm : 0.0);
        fflush(m->json);
    }
}

static void *monitor_main(void *arg)
{
    tal_memmon_t *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        struct timespec ts;
        double when = m->interval;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)when;
        ts.tv_nsec += (long)((when - (double)(time_t)when) * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&m->cv, &m->mu, &ts) == ETIMEDOUT && !m->stop) {
            pthread_mutex_unlock(&m->mu);
            sample(m, 0);
            pthread_mutex_lock(&m->mu);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int tal_memmon_start(tal_memmon_t **out, tal_budget_t *budget, double interval, int print,
                     const char *json_path, const char *command)
{
    tal_memmon_t *m = calloc(1, sizeof *m);
    *out = NULL;
    if (!m) return TAL_ENOMEM;
    m->budget = budget;
    m->interval = interval > 0 ? interval : 5.0;
    m->print = print;
    m->started = tal_now_seconds();
    m->command = strdup(command ? command : "");
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    if (json_path) {
        m->json_path = strdup(json_path);
        if (!(m->json = fopen(json_path, "w"))) {
            tal_log_error("cannot write the memory report %s: %s", json_path, strerror(errno));
            free(m->json_path);
            free(m->command);
            free(m);
            return TAL_EIO;
        }
        fprintf(m->json, "{\n  \"command\": \"%s\",\n  \"samples\": [", m->command);
    }
    if (pthread_create(&m->thread, NULL, monitor_main, m) == 0) m->running = 1;
    *out = m;
    return 0;
}

int tal_memmon_stop(tal_memmon_t *m)
{
    int rc = 0;
    if (!m) return 0;
    if (m->running) {
        pthread_mutex_lock(&m->mu);
        m->stop = 1;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->thread, NULL);
    }
    sample(m, 1);
    if (m->json && (ferror(m->json) | fclose(m->json))) {
        tal_log_error("cannot write the memory report %s: %s", m->json_path, strerror(errno));
        rc = TAL_EIO;
    }
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m->json_path);
    free(m->command);
    free(m);
    return rc;
}
