/* Shared pieces of the talaria commands: each command is one function in its own file. */
#ifndef TAL_CLI_H
#define TAL_CLI_H

#include "talaria/config.h"
#include "talaria/mem.h"
#include "talaria/reduce.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int cmd_index(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_reduce(int argc, char **argv);
int cmd_reconstruct(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_expand(int argc, char **argv);
int cmd_config(int argc, char **argv);

/* ---- common.c ---- */

/* Prints "talaria CMD: MSG" and a pointer to --help; returns exit code 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses -t/--threads values (1..1024). */
int cli_parse_threads(const char *cmd, const char *text, int *threads);
/* -q and -v adjust the log level. */
/* The exit code for a library error (tal_exit_code), after saying "out of memory" for an
 * allocation failure that nothing has explained yet. */
int cli_exit(int err);

#ifdef HAVE_MPI
/* Started as one of several MPI ranks (mpirun, srun): MPI initialised and *comm set for
 * tal_reduce_opt_t.comm, returning the rank count; started alone: 0, MPI untouched. */
int cli_mpi_begin(int *argc, char ***argv, tal_reduce_comm_t *comm);
/* The run's exit status code: a failure with several ranks stops them all (MPI_Abort)
 * with it; else rank 0 says (unless quiet) what the ranks sent each other and their peak
 * resident sets, and MPI is finalised. Returns code. */
int cli_mpi_end(const tal_reduce_comm_t *comm, int code, int quiet);
#endif
void cli_quieter(void);
void cli_louder(void);

/* s as a JSON string, quoted and escaped (stats --format json, reduce --summary-json). */
void cli_json_string(FILE *f, const char *s);

/* SIGINT, SIGTERM and SIGHUP remove the temporary outputs, then end the process. */
void cli_install_signal_handlers(void);

/* A progress line on stderr, only when it is a terminal and not -q. */
typedef struct {
    int enabled, shown;
    double last;
} cli_progress_t;
void cli_progress_init(cli_progress_t *p, int quiet);
/* Redraws the line (at most every half second unless force). */
void cli_progress_show(cli_progress_t *p, int force, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Erases the line, if one is shown. */
void cli_progress_end(cli_progress_t *p);

/* How a command reads an id list. The commands' differences are kept as they were before
 * they shared this reader (their messages are documented and tested). A list that cannot
 * be opened, missing or unreadable, is TAL_EIO in every command. */
typedef struct {
    const char *open_error; /* a format taking the path and strerror: "cannot open %s: %s" */
    int trim_tabs;          /* trailing tabs go too */
    int read_errors;        /* a read error is TAL_EIO ("cannot read PATH: ..."), not the end */
} cli_ids_opt_t;

/* Called with each id (NUL-terminated) and its line in the list; a negative return stops
 * the reading. */
typedef int (*cli_id_fn)(void *arg, const char *id, size_t len, uint64_t line);

/* Reads accessions one per line from path ('-': stdin): trailing CR, LF and spaces
 * trimmed, blank lines skipped. Returns 0, the callback's error, or the list's. */
int cli_read_ids(const char *path, const cli_ids_opt_t *opt, cli_id_fn fn, void *arg);

/* --profile and --config (index, reduce, get, stats): the layers under the flags. */
typedef struct {
    const char *profile, *file;
    tal_config_t *cfg;
} cli_config_t;

enum { CLI_OPT_PROFILE = 0x1100, CLI_OPT_CONFIG };
#define CLI_CONFIG_LONGOPTS                                                                        \
    {"profile", required_argument, NULL, CLI_OPT_PROFILE},                                         \
    {                                                                                              \
        "config", required_argument, NULL, CLI_OPT_CONFIG                                          \
    }
#define CLI_CONFIG_HELP                                                                            \
    "      --profile NAME       settings for a kind of machine: low, balanced, high or your\n"     \
    "                           own (talaria config profiles); flags and TALARIA_* win\n"          \
    "      --config FILE        settings from a TOML file (talaria.toml(5)), over the profile\n"

/* 1 if opt was --profile or --config (recorded), 0 if not. */
int cli_config_option(int opt, const char *arg, cli_config_t *c);
/* Defaults < profile < file < environment; the huge-page and NUMA keys into the
 * environment the buffer pools read. TAL_EUSAGE (logged) for a bad profile, file or
 * variable. */
int cli_config_load(cli_config_t *c);
void cli_config_end(cli_config_t *c);

/* The memory options index and reduce share. */
typedef struct {
    uint64_t cap;       /* --max-memory; 0: none */
    int cap_set;        /* --max-memory was given (it beats the configuration) */
    int monitor;        /* --monitor-memory */
    double interval;    /* its period in seconds */
    const char *report; /* --memory-report FILE */
    int low_memory;     /* --low-memory: the smallest plan that runs */
    int stream;         /* --stream: stream the input even when it would fit */
    tal_budget_t *budget;
    tal_memmon_t *mon;
} cli_mem_t;

enum {
    CLI_OPT_MAX_MEMORY = 0x1000,
    CLI_OPT_MONITOR,
    CLI_OPT_REPORT,
    CLI_OPT_LOW_MEMORY,
    CLI_OPT_STREAM
};
#define CLI_MEM_LONGOPTS                                                                           \
    {"max-memory", required_argument, NULL, CLI_OPT_MAX_MEMORY},                                   \
        {"monitor-memory", optional_argument, NULL, CLI_OPT_MONITOR},                              \
        {"memory-report", required_argument, NULL, CLI_OPT_REPORT},                                \
        {"low-memory", no_argument, NULL, CLI_OPT_LOW_MEMORY},                                     \
    {                                                                                              \
        "stream", no_argument, NULL, CLI_OPT_STREAM                                                \
    }
#define CLI_MEM_HELP                                                                               \
    "      --max-memory SIZE    a hard cap on the peak resident set (VmHWM), e.g. 256M, 4G:\n"     \
    "                           buffers are planned within it and work spills to --tmp-dir;\n"     \
    "                           below the smallest workable cap: exit 4 naming it\n"               \
    "      --monitor-memory[=S] every S seconds (default 5) and at the end, the bytes held per\n"  \
    "                           component beside VmRSS and VmHWM, on stderr\n"                     \
    "      --memory-report FILE the same figures as JSON\n"                                        \
    "      --low-memory         the smallest plan that still runs (slower)\n"                      \
    "      --stream             stream the input even when it would fit in memory (both\n"         \
    "                           commands always stream now; accepted for scripts)\n"

/* 1 if opt was one of the memory options (handled), 0 if not, -1 after a usage error. */
int cli_mem_option(const char *cmd, int opt, const char *arg, cli_mem_t *m);
/* Sets malloc up (few arenas, big blocks mapped and returned), creates the budget with
 * what the process already holds reserved, starts the monitor. */
int cli_mem_begin(const char *cmd, cli_mem_t *m);
/* Stops the monitor (its final line) and frees the budget. */
int cli_mem_end(cli_mem_t *m);
/* Logs that the cap is too small, naming the smallest that would do; TAL_EMEMCAP. */
int cli_mem_too_small(const char *cmd, const cli_mem_t *m, uint64_t need, const char *why);

/* memory.max_memory and memory.low_memory under the flags that were not given. */
void cli_config_mem(const cli_config_t *c, cli_mem_t *m);

#endif
