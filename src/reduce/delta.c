/* Applying a member's delta to its reference. Deltas come from disk, so every count is
 * checked against both the reference and the output before it is used. */
#include "delta_internal.h"
#include "talaria/error.h"

#include <string.h>

int tal_delta_apply(const uint8_t *delta, size_t delta_len, const char *ref, size_t ref_len,
                    char *out, size_t out_len)
{
    size_t d = 0, r = 0, o = 0;
    while (d < delta_len) {
        uint64_t v = 0, count;
        unsigned shift = 0;
        int op;
        for (;;) { /* LEB128, at most 10 bytes */
            uint8_t byte;
            if (d >= delta_len || shift > 63) return TAL_EINPUT;
            byte = delta[d++];
            v |= (uint64_t)(byte & 0x7f) << shift;
            shift += 7;
            if (!(byte & 0x80)) break;
        }
        op = (int)(v & 3);
        count = v >> 2;
        if (count == 0) return TAL_EINPUT;
        switch (op) {
        case TAL_DELTA_COPY:
            if (count > ref_len - r || count > out_len - o) return TAL_EINPUT;
            memcpy(out + o, ref + r, count);
            r += count;
            o += count;
            break;
        case TAL_DELTA_SUB:
        case TAL_DELTA_INS:
            if (count > delta_len - d || count > out_len - o) return TAL_EINPUT;
            if (op == TAL_DELTA_SUB) {
                if (count > ref_len - r) return TAL_EINPUT;
                r += count;
            }
            memcpy(out + o, delta + d, count);
            d += count;
            o += count;
            break;
        default: /* TAL_DELTA_SKIP */
            if (count > ref_len - r) return TAL_EINPUT;
            r += count;
            break;
        }
    }
    return o == out_len ? 0 : TAL_EINPUT;
}

void tal_revcomp(const char *seq, size_t len, char *out)
{
    static const char from[] = "ACGTURYKMBVDHacgturykmbvdh", to[] = "TGCAAYRMKVBHDtgcaayrmkvbhd";
    unsigned char table[256];
    int rna = memchr(seq, 'U', len) || memchr(seq, 'u', len);
    if (rna && (memchr(seq, 'T', len) || memchr(seq, 't', len))) rna = 0;
    for (int c = 0; c < 256; c++) table[c] = (unsigned char)c;
    for (size_t k = 0; from[k]; k++) table[(unsigned char)from[k]] = (unsigned char)to[k];
    if (rna) {
        table['A'] = 'U';
        table['a'] = 'u';
    }
    for (size_t i = 0; i < len; i++) out[len - 1 - i] = (char)table[(unsigned char)seq[i]];
}
