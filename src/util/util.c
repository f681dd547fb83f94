/* Human-readable sizes, a monotonic clock and the kernel's peak-RSS figure. */
#include "talaria/util.h"
#include "talaria/error.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tal_parse_size(const char *text, uint64_t *bytes)
{
    char *end = NULL;
    double value, scale = 1.0;
    if (!text || !*text || (!isdigit((unsigned char)text[0]) && text[0] != '.')) return TAL_EUSAGE;
    errno = 0;
    value = strtod(text, &end);
    if (errno || end == text || !(value > 0)) return TAL_EUSAGE;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': scale = 1024.0; end++; break;
    case 'M': scale = 1024.0 * 1024; end++; break;
    case 'G': scale = 1024.0 * 1024 * 1024; end++; break;
    case 'T': scale = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: return TAL_EUSAGE;
    }
    if (*end == 'i' || *end == 'I') end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return TAL_EUSAGE;
    value *= scale;
    if (value < 1.0 || value >= 18446744073709551615.0) return TAL_EUSAGE;
    *bytes = (uint64_t)llround(value);
    return 0;
}

const char *tal_format_size(uint64_t bytes, char *buf, size_t buf_len)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, buf_len, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, buf_len, "%.1f %s", v, units[u]);
    return buf;
}

double tal_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t tal_peak_rss_bytes(void)
{
    char line[256];
    uint64_t kib = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kib = strtoull(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib * 1024;
}
