/* Error codes shared by every libtalaria module, and how they map to exit codes.
 * Functions return 0 (or a count) on success and a negative tal_err_t on failure. */
#ifndef TALARIA_ERROR_H
#define TALARIA_ERROR_H

#include "talaria/api.h"

TAL_BEGIN_DECLS

typedef enum {
    TAL_OK = 0,
    TAL_EIO = -1,       /* read/write/fsync failed, disk full */
    TAL_EUSAGE = -2,    /* bad argument from the caller */
    TAL_EINPUT = -3,    /* invalid input: bad FASTA, corrupt store */
    TAL_EMEMCAP = -4,   /* the memory cap is too small for the job */
    TAL_ENOMEM = -5,    /* an allocation failed */
    TAL_EEXIST = -6,    /* output exists and --force was not given */
    TAL_ENOTFOUND = -7, /* a requested accession or region is not in the store */
    TAL_EINTR = -8      /* interrupted by a signal */
} tal_err_t;

/* A short, fixed description of an error code. */
TAL_EXPORT const char *tal_strerror(int err);

/* The process exit code for an error (DESIGN.md: 1 runtime, 2 usage, 3 input, 4 cap). */
TAL_EXPORT int tal_exit_code(int err);

TAL_END_DECLS

#endif
