/* Error descriptions and the exit code each error maps to. */
#include "talaria/error.h"

const char *tal_strerror(int err)
{
    switch (err) {
    case TAL_OK: return "success";
    case TAL_EIO: return "I/O error";
    case TAL_EUSAGE: return "invalid usage";
    case TAL_EINPUT: return "invalid input";
    case TAL_EMEMCAP: return "memory cap too small";
    case TAL_ENOMEM: return "out of memory";
    case TAL_EEXIST: return "output exists";
    case TAL_ENOTFOUND: return "not found";
    case TAL_EINTR: return "interrupted";
    default: return "unknown error";
    }
}

int tal_exit_code(int err)
{
    switch (err) {
    case TAL_OK: return 0;
    case TAL_EUSAGE: return 2;
    case TAL_EINPUT:
    case TAL_ENOTFOUND: return 3;
    case TAL_EMEMCAP: return 4;
    default: return 1;
    }
}
