/* Human-readable sizes, a monotonic clock and the kernel's peak-RSS figure. */
#include "talaria/util.h"
#include "talaria/api.h"
#include "talaria/error.h"
#include "util_internal.h"

#include "config.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *tal_version(void) { return PACKAGE_VERSION; }

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
        for (p++; *p >= '0' && *p <= '9'; p++, digits++, place /= 10)
            fraction += (*p - '0') * place;
    if (!digits) return TAL_EUSAGE;
    switch (toupper((unsigned char)*p)) {
    case '\0': break;
    case 'K':
        scale = 1ull << 10;
        p++;
        break;
    case 'M':
        scale = 1ull << 20;
        p++;
        break;
    case 'G':
        scale = 1ull << 30;
        p++;
        break;
    case 'T':
        scale = 1ull << 40;
        p++;
        break;
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

void tal_count_bytes(uint64_t counts[256], const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t c[4][256];
    size_t i = 0;
    if (len < 1024) { /* a short record: clearing four tables would cost more */
        for (; i < len; i++) counts[p[i]]++;
        return;
    }
    /* Four tables so runs of one residue do not serialise on one counter; bytes come
     * from 64-bit words, which halves the loads. u32 counters, flushed every 1 GiB. */
    while (i < len) {
        size_t end = len - i > (1u << 30) ? i + (1u << 30) : len;
        memset(c, 0, sizeof c);
        for (; i + 16 <= end; i += 16) {
            uint64_t w, v;
            memcpy(&w, p + i, 8);
            memcpy(&v, p + i + 8, 8);
            c[0][w & 255]++;
            c[1][(w >> 8) & 255]++;
            c[2][(w >> 16) & 255]++;
            c[3][(w >> 24) & 255]++;
            c[0][(w >> 32) & 255]++;
            c[1][(w >> 40) & 255]++;
            c[2][(w >> 48) & 255]++;
            c[3][w >> 56]++;
            c[0][v & 255]++;
            c[1][(v >> 8) & 255]++;
            c[2][(v >> 16) & 255]++;
            c[3][(v >> 24) & 255]++;
            c[0][(v >> 32) & 255]++;
            c[1][(v >> 40) & 255]++;
            c[2][(v >> 48) & 255]++;
            c[3][v >> 56]++;
        }
        for (; i < end; i++) c[0][p[i]]++;
        for (int k = 0; k < 256; k++) counts[k] += (uint64_t)c[0][k] + c[1][k] + c[2][k] + c[3][k];
    }
}

int tal_buf_reserve(char **buf, size_t *cap, size_t need)
{
    size_t c = *cap ? *cap : 4096;
    char *p;
    if (need <= *cap) return 0;
    while (c < need) c *= 2;
    if (!(p = realloc(*buf, c))) return TAL_ENOMEM;
    *buf = p;
    *cap = c;
    return 0;
}
