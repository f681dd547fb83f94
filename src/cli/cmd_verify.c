/* talaria verify: recompute every checksum of a store. */
#include "cli.h"
#include "talaria/error.h"
#include "talaria/store.h"

#include <getopt.h>
#include <stdio.h>

static const char help[] =
    "Usage: talaria verify [-q] DB.tal...\n"
    "\n"
    "Recompute every checksum of a store, check every offset, key and the SQLite catalog.\n"
    "Prints one line per good store; names the broken section of a bad one (exit 3).\n"
    "\n"
    "  -q, --quiet   print nothing for a good store\n"
    "  -h, --help    this help\n";

int cmd_verify(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c, quiet = 0, worst = 0;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'q': quiet = 1; break;
        case 'h': fputs(help, stdout); return 0;
        default: return cli_usage_error("verify", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error("verify", "missing DB.tal");
    for (int i = optind; i < argc; i++) {
        int rc = tal_store_verify(argv[i], quiet);
        int code = cli_exit(rc);
        if (code > worst) worst = code;
    }
    return worst;
}
