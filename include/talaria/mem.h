/* Large buffers mapped by talaria itself: 2 MiB-aligned anonymous mappings with
 * transparent huge pages requested before first touch, returned to the OS on free. */
#ifndef TALARIA_MEM_H
#define TALARIA_MEM_H

#include <stddef.h>

/* Zero-filled; NULL on failure. */
void *tal_huge_alloc(size_t size);
void tal_huge_free(void *p, size_t size);

#endif
