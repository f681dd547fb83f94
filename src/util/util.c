/* Human-readable sizes, a monotonic clock and the kernel's peak-RSS figure. */
#include "talaria/util.h"
#include "talaria/error.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tal_parse_size(const char *text, uint64_t *bytes)
{
    const char *p = text;
    uint64_t whole = 0, scale = 1, result;
    double fraction = 0, place = 0.1;
    int digits = 0;
    if (!text) return TAL_EUSAGE;
    /* plain decimals only; integer arithmetic keeps whole numbers exact up to 2^64 - 1 */
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (whole > (UINT64_MAX - 9) / 10) return TAL_EUSAGE;
        whole = whole * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, digits++, place /= 10) fraction += (*p - '0') * place;
    if (!digits) return TAL_EUSAGE;
    switch (toupper((unsigned char)*p)) {
    case '\0': break;
    case 'K': scale = 1ull << 10; p++; break;
    case 'M': scale = 1ull << 20; p++; break;
    case 'G': scale = 1ull << 30; p++; break;
    case 'T': scale = 1ull << 40; p++; break;
    default: return TAL_EUSAGE;
    }
    if (scale > 1 && (*p == 'i' || *p == 'I')) p++;
    if (*p == 'B' || *p == 'b') p++;
    if (*p) return TAL_EUSAGE;
    if (whole > UINT64_MAX / scale) return TAL_EUSAGE;
    result = whole * scale;
    if (fraction > 0) {
        double extra = fraction * (double)scale;
        if ((double)(UINT64_MAX - result) < extra) return TAL_EUSAGE;
        result += (uint64_t)llround(extra);
    }
    if (result == 0) return TAL_EUSAGE;
    *bytes = result;
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
