/* The talaria program: a table of commands, one function per file, from which the usage
 * text and `talaria help COMMAND` come. */
#include "config.h"

#include "cli.h"
#include "talaria/api.h"
#include "talaria/error.h"
#include "talaria/log.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"index", "build a store from FASTA (plain, gzip, zstd, lz4 or stdin)", cmd_index},
    {"get", "print records or regions of a store as FASTA", cmd_get},
    {"stats", "summarise a FASTA file or a store", cmd_stats},
    {"verify", "recompute every checksum of a store and check its offsets", cmd_verify},
    {"reduce", "pick reference sequences; store the others as deltas against them", cmd_reduce},
    {"reconstruct", "rebuild the original FASTA from a reduction, byte for byte", cmd_reconstruct},
    {"validate", "check a reduction against its original (and search hits)", cmd_validate},
    {"expand", "turn hits on references into hits on their members", cmd_expand},
    {"config", "show the effective configuration and the profiles", cmd_config},
};

#define COMMAND_COUNT (sizeof commands / sizeof *commands)

static void usage(FILE *f)
{
    fputs("Usage: talaria COMMAND [OPTIONS]\n"
          "\n"
          "Index, query, verify and losslessly reduce large protein and nucleotide sequence\n"
          "databases.\n"
          "\n"
          "Commands:\n",
          f);
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fputs("\n"
          "Run 'talaria COMMAND --help' or 'talaria help COMMAND' for a command's options.\n"
          "Exit codes: 0 success, 1 runtime or I/O failure, 2 usage error, 3 invalid input,\n"
          "4 memory cap too small.\n",
          f);
}

static int find_command(const char *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (!strcmp(name, commands[i].name)) return (int)i;
    return -1;
}

static int unknown_command(const char *name)
{
    fprintf(stderr, "talaria: unknown command '%s'\n\n", name);
    usage(stderr);
    return tal_exit_code(TAL_EUSAGE);
}

int main(int argc, char **argv)
{
    const char *cmd;
    int k;
    tal_log_set_prog("talaria");
    cli_install_signal_handlers();
    if (argc < 2) {
        usage(stderr);
        return tal_exit_code(TAL_EUSAGE);
    }
    cmd = argv[1];
    if (!strcmp(cmd, "help") && argc > 2) {
        /* talaria help COMMAND: that command's --help */
        char *help_argv[] = {argv[2], "--help", NULL};
        if ((k = find_command(argv[2])) < 0) return unknown_command(argv[2]);
        return commands[k].run(2, help_argv);
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("talaria %s\n", tal_version());
#ifdef HAVE_MPI
        printf("reduce runs across MPI ranks under mpirun or srun (Open MPI)\n");
#else
        printf("built without MPI (./configure --with-mpi for reduce across ranks)\n");
#endif
        return 0;
    }
    if ((k = find_command(cmd)) < 0) return unknown_command(cmd);
    return commands[k].run(argc - 1, argv + 1);
}
