/* The store's SQLite catalog: accession -> record id, taxid, organism, length, and the
 * build's provenance. Filled in a background thread when threads allow it. */
#ifndef TAL_CATALOG_INTERNAL_H
#define TAL_CATALOG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct tal_catalog_writer tal_catalog_writer_t;

/* per_record 0 (format 1.3 compressed stores): no records table; the taxa table counts
 * each taxid's records instead. */
int tal_catalog_create(tal_catalog_writer_t **out, const char *path, int threaded,
                       unsigned cache_kib, int per_record);
/* Queues a record; accession, alias, taxid and organism are parsed from the header by
 * the catalog's thread. */
int tal_catalog_add(tal_catalog_writer_t *w, uint64_t id, const char *header, size_t header_len,
                    uint64_t length);
int tal_catalog_set(tal_catalog_writer_t *w, const char *key, const char *value);
/* Waits for the writer, commits and closes; with make_index, indexes accession and alias. */
int tal_catalog_finish(tal_catalog_writer_t *w, int make_index);
/* Commits and closes (provenance goes in between finish and close). Frees w. */
int tal_catalog_close(tal_catalog_writer_t *w);
void tal_catalog_abort(tal_catalog_writer_t *w);

/* Parses taxid (OX= or TaxID=) and organism (OS= or Tax=) from a UniProt/UniRef header. */
void tal_header_taxon(const char *header, size_t len, int64_t *taxid, const char **organism,
                      size_t *organism_len);

#endif
