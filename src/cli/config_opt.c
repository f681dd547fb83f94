/* --profile and --config, shared by index, reduce, get and stats: the configuration is
 * built in layers (defaults < profile < file < TALARIA_* environment), then each command
 * puts its flags on top. The pools' huge-page and NUMA settings reach the library through
 * the environment variables it reads. */
#include "cli.h"
#include "talaria/error.h"
#include "talaria/log.h"

#include <stdlib.h>
#include <string.h>

int cli_config_option(int opt, const char *arg, cli_config_t *c)
{
    switch (opt) {
    case CLI_OPT_PROFILE: c->profile = arg; return 1;
    case CLI_OPT_CONFIG: c->file = arg; return 1;
    default: return 0;
    }
}

int cli_config_load(cli_config_t *c)
{
    int rc;
    if ((rc = tal_config_create(&c->cfg)) < 0) return rc;
    if (c->profile && (rc = tal_config_load_profile(c->cfg, c->profile)) < 0) return rc;
    if (c->file && (rc = tal_config_load_file(c->cfg, c->file)) < 0) return rc;
    if ((rc = tal_config_load_env(c->cfg)) < 0) return rc;
    /* the buffer pools read these (the environment has already had its say above) */
    if (tal_config_is_set(c->cfg, "memory.huge_pages")) {
        const char *mode = tal_config_string(c->cfg, "memory.huge_pages");
        setenv("TALARIA_HUGE_PAGES", strcmp(mode, "off") ? mode : "none", 1);
    }
    if (tal_config_is_set(c->cfg, "memory.numa"))
        setenv("TALARIA_NUMA", tal_config_string(c->cfg, "memory.numa"), 1);
    return 0;
}

void cli_config_mem(const cli_config_t *c, cli_mem_t *m)
{
    if (!m->cap_set && tal_config_is_set(c->cfg, "memory.max_memory"))
        m->cap = (uint64_t)tal_config_int(c->cfg, "memory.max_memory");
    if (!m->low_memory && tal_config_is_set(c->cfg, "memory.low_memory"))
        m->low_memory = (int)tal_config_int(c->cfg, "memory.low_memory");
}

void cli_config_end(cli_config_t *c)
{
    tal_config_free(c->cfg);
    c->cfg = NULL;
}
