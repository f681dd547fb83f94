/* What several talaria commands share: usage errors, -t and -q/-v, and reading a list
 * of accessions. */
#define _GNU_SOURCE
#include "cli.h"
#include "talaria/error.h"
#include "talaria/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "talaria %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'talaria %s --help'.\n", cmd);
    return tal_exit_code(TAL_EUSAGE);
}

int cli_parse_threads(const char *cmd, const char *text, int *threads)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end || v < 1 || v > 1024) {
        cli_usage_error(cmd, "--threads must be a whole number from 1 to 1024, not '%s'", text);
        return -1;
    }
    *threads = (int)v;
    return 0;
}

int cli_exit(int err)
{
    if (err == TAL_ENOMEM && tal_log_error_count() == 0) tal_log_error("out of memory");
    return tal_exit_code(err);
}

void cli_quieter(void) { tal_log_set_level(TAL_LOG_ERROR); }
void cli_louder(void)
{
    tal_log_level_t l = tal_log_get_level();
    tal_log_set_level(l < TAL_LOG_INFO ? TAL_LOG_INFO : TAL_LOG_DEBUG);
}

int cli_read_ids(const char *path, const cli_ids_opt_t *opt, cli_id_fn fn, void *arg)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t line_no = 0;
    int rc = 0;
    if (!f) {
        tal_log_error(opt->open_error, path, strerror(errno));
        return TAL_EIO;
    }
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        line_no++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                         (opt->trim_tabs && line[n - 1] == '\t')))
            line[--n] = '\0';
        if (n > 0) rc = fn(arg, line, (size_t)n, line_no);
    }
    if (rc == 0 && opt->read_errors && (ferror(f) || !feof(f))) { /* not the end: failed */
        tal_log_error("cannot read %s: %s", path, strerror(errno));
        rc = TAL_EIO;
    }
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}
