/* Small helpers shared by the library's modules. Private to libtalaria. */
#ifndef TAL_UTIL_INTERNAL_H
#define TAL_UTIL_INTERNAL_H

#include <stddef.h>

/* Makes *buf (of *cap bytes, NULL and 0 at first) hold at least need bytes, doubling from
 * 4 KiB; its contents are kept. 0, or TAL_ENOMEM (then *buf and *cap are as they were). */
int tal_buf_reserve(char **buf, size_t *cap, size_t need);

#endif
