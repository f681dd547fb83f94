/* Small helpers the CLI and library share: human sizes, monotonic time, peak RSS, and
 * output files written whole or not at all. */
#ifndef TALARIA_UTIL_H
#define TALARIA_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "talaria/api.h"

TAL_BEGIN_DECLS

/* Parses "512", "64K", "512M", "4G", "1.5G", "2T" (binary units) into bytes.
 * Returns 0, or TAL_EUSAGE for anything else (including zero and overflow). */
TAL_EXPORT int tal_parse_size(const char *text, uint64_t *bytes);

/* Formats bytes as "1.5 GiB" into buf. */
TAL_EXPORT const char *tal_format_size(uint64_t bytes, char *buf, size_t buf_len);

TAL_EXPORT double tal_now_seconds(void);

/* VmHWM of this process in bytes, from /proc/self/status (0 if unavailable). */
TAL_EXPORT uint64_t tal_peak_rss_bytes(void);
/* Adds the count of every byte value in data to counts[256] (residue composition). */
TAL_EXPORT void tal_count_bytes(uint64_t counts[256], const void *data, size_t len);

/* One output file written whole or not at all: PATH.tmp-XXXXXX beside PATH (removed by
 * abort, or by tal_cleanup_temporaries from a signal handler), fsynced, then renamed into place. Without force an existing
 * PATH is TAL_EEXIST, at open and again at the rename (a file that appeared meanwhile
 * is not replaced). A zeroed struct is a valid "not open" state for abort. */
typedef struct {
    const char *path;
    char *tmp;
    FILE *f; /* 1 MiB buffered */
} tal_outfile_t;

TAL_EXPORT int tal_outfile_open(tal_outfile_t *o, const char *path, int force);
/* Flushes, fsyncs and closes; the file keeps its temporary name. */
TAL_EXPORT int tal_outfile_close(tal_outfile_t *o);
/* Closes if still open, renames into place and syncs the directory. */
TAL_EXPORT int tal_outfile_commit(tal_outfile_t *o, int force);
/* Closes and removes the temporary file (no-op after commit, or on a zeroed struct). */
TAL_EXPORT void tal_outfile_abort(tal_outfile_t *o);

/* Removes every temporary output of the runs in progress (a store being built, a
 * reduction's scratch directory and unfinished outputs). Async-signal-safe: a program's
 * SIGINT/SIGTERM handler calls it, then ends the process. The library installs no
 * signal handler of its own. */
TAL_EXPORT void tal_cleanup_temporaries(void);

TAL_END_DECLS

#endif
