/* Shared pieces of the talaria commands: each command is one function in its own file. */
#ifndef TAL_CLI_H
#define TAL_CLI_H

#include <stdint.h>

int cmd_index(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_reduce(int argc, char **argv);
int cmd_reconstruct(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_expand(int argc, char **argv);

/* Prints "talaria CMD: MSG" and a pointer to --help; returns exit code 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses -t/--threads values (1..1024). */
int cli_parse_threads(const char *cmd, const char *text, int *threads);
/* -q and -v adjust the log level. */
void cli_quieter(void);
void cli_louder(void);

#endif
