/* The talaria program: dispatches to one command per file. */
#include "cli.h"
#include "talaria/log.h"

#include <stdio.h>
#include <string.h>

#include "config.h"

static const char usage_text[] =
    "Usage: talaria COMMAND [OPTIONS]\n"
    "\n"
    "Index, query and verify large protein and nucleotide sequence databases.\n"
    "\n"
    "Commands:\n"
    "  index    build a store from FASTA (plain, gzip, zstd, lz4 or stdin)\n"
    "  get      print records or regions of a store as FASTA\n"
    "  stats    summarise a FASTA file or a store\n"
    "  verify   recompute every checksum of a store and check its offsets\n"
    "  reduce   pick reference sequences; store the others as deltas against them\n"
    "  reconstruct  rebuild the original FASTA from a reduction, byte for byte\n"
    "  validate check a reduction against its original (and search hits)\n"
    "  expand   turn hits on references into hits on their members\n"
    "\n"
    "Run 'talaria COMMAND --help' for a command's options.\n"
    "Exit codes: 0 success, 1 runtime or I/O failure, 2 usage error, 3 invalid input,\n"
    "4 memory cap too small.\n";

int main(int argc, char **argv)
{
    const char *cmd;
    tal_log_set_prog("talaria");
    cli_install_signal_handlers();
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("talaria %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "index")) return cmd_index(argc - 1, argv + 1);
    if (!strcmp(cmd, "get")) return cmd_get(argc - 1, argv + 1);
    if (!strcmp(cmd, "stats")) return cmd_stats(argc - 1, argv + 1);
    if (!strcmp(cmd, "verify")) return cmd_verify(argc - 1, argv + 1);
    if (!strcmp(cmd, "reduce")) return cmd_reduce(argc - 1, argv + 1);
    if (!strcmp(cmd, "reconstruct")) return cmd_reconstruct(argc - 1, argv + 1);
    if (!strcmp(cmd, "validate")) return cmd_validate(argc - 1, argv + 1);
    if (!strcmp(cmd, "expand")) return cmd_expand(argc - 1, argv + 1);
    fprintf(stderr, "talaria: unknown command '%s'\n\n%s", cmd, usage_text);
    return 2;
}
