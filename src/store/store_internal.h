/* What verify needs from an open store beyond the public API. */
#ifndef TAL_STORE_INTERNAL_H
#define TAL_STORE_INTERNAL_H

#include "format_internal.h"
#include "talaria/store.h"

/* The section's table entry (NULL if absent) and its mapped bytes. */
const tal_section_disk_t *tal_store_section_(const tal_store_t *s, uint32_t id, const void **data,
                                             size_t *size);

#endif
