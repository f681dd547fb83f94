/* Small helpers the CLI and library share: human sizes, monotonic time, peak RSS. */
#ifndef TALARIA_UTIL_H
#define TALARIA_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parses "512", "64K", "512M", "4G", "1.5G", "2T" (binary units) into bytes.
 * Returns 0, or TAL_EUSAGE for anything else (including zero and overflow). */
int tal_parse_size(const char *text, uint64_t *bytes);

/* Formats bytes as "1.5 GiB" into buf. */
const char *tal_format_size(uint64_t bytes, char *buf, size_t buf_len);

double tal_now_seconds(void);

/* VmHWM of this process in bytes, from /proc/self/status (0 if unavailable). */
uint64_t tal_peak_rss_bytes(void);
/* Adds the count of every byte value in data to counts[256] (residue composition). */
void tal_count_bytes(uint64_t counts[256], const void *data, size_t len);

/* Removes every temporary output of the runs in progress (a store being built, a
 * reduction's scratch directory and unfinished outputs). Async-signal-safe: a program's
 * SIGINT/SIGTERM handler calls it, then ends the process. The library installs no
 * signal handler of its own. */
void tal_cleanup_temporaries(void);

#endif
