/* talaria config: the effective configuration, key by key with where each value came
 * from (show), and the profiles there are (profiles). It reads; it changes nothing. */
#include "cli.h"
#include "talaria/config.h"
#include "talaria/error.h"
#include "talaria/util.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char help[] =
    "Usage: talaria config show [--profile NAME] [--config FILE] [--format text|json]\n"
    "       talaria config profiles\n"
    "\n"
    "show: every configuration key with its effective value and where it came from:\n"
    "'default', 'profile NAME:LINE', 'config FILE:LINE' or 'env TALARIA_X'. Precedence,\n"
    "lowest first: built-in defaults, --profile, --config, TALARIA_* environment variables,\n"
    "then a command's own flags. Keys without a value show the command's own default.\n"
    "profiles: the profiles --profile can name, with their memory cap and where they are.\n"
    "\n"
    "      --profile NAME       low, balanced, high, or one of your own\n"
    "                           ($XDG_CONFIG_HOME/talaria/NAME.toml)\n"
    "      --config FILE        a TOML configuration file (talaria.toml(5))\n"
    "      --format FORMAT      text (default) or json\n"
    "  -h, --help               this help\n"
    "\n"
    "Exit codes: 0 done, 2 usage or a bad configuration (named by file, line and column).\n";

static void print_profile(void *arg, const char *name, uint64_t max_memory, const char *where)
{
    char size[32];
    (void)arg;
    if (max_memory)
        tal_format_size(max_memory, size, sizeof size);
    else
        snprintf(size, sizeof size, "no cap");
    printf("%-12s max_memory %-10s %s\n", name, size, where);
}

int cmd_config(int argc, char **argv)
{
    enum { OPT_FORMAT = 0x100 };
    static const struct option longopts[] = {{"format", required_argument, NULL, OPT_FORMAT},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_CONFIG_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    cli_config_t conf = {0};
    const char *action;
    int c, rc, json = 0;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_FORMAT:
            if (!strcmp(optarg, "json"))
                json = 1;
            else if (strcmp(optarg, "text"))
                return cli_usage_error("config", "--format must be text or json, not '%s'", optarg);
            break;
        case 'h': fputs(help, stdout); return 0;
        default:
            if (cli_config_option(c, optarg, &conf)) break;
            return cli_usage_error("config", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error("config", "missing 'show' or 'profiles'");
    action = argv[optind++];
    if (optind < argc) return cli_usage_error("config", "unexpected argument '%s'", argv[optind]);
    if (!strcmp(action, "profiles")) {
        if (conf.profile || conf.file || json)
            return cli_usage_error("config", "'profiles' takes no options");
        rc = tal_config_profiles(print_profile, NULL);
    } else if (!strcmp(action, "show")) {
        if ((rc = cli_config_load(&conf)) == 0) rc = tal_config_write(conf.cfg, stdout, json);
        cli_config_end(&conf);
    } else {
        return cli_usage_error("config", "unknown action '%s': 'show' or 'profiles'", action);
    }
    if (rc == 0 && fflush(stdout) != 0) rc = TAL_EIO;
    return rc < 0 ? cli_exit(rc) : 0;
}
