/* The delta store of a reduction (doc/format.md, "Delta store"): one file that, with
 * the reduced FASTA it was written beside, gives back every original record byte for
 * byte. Each record (in the original order) has its header, its length, a checksum of
 * header and residues, and either the index of the reference it is (a record of the
 * reduced FASTA) or an edit script against one. Each reference has its place in the
 * reduced FASTA and a checksum of its residues, so a FASTA that does not belong to the
 * store is caught at the first record that needs it. */
#ifndef TAL_DSTORE_INTERNAL_H
#define TAL_DSTORE_INTERNAL_H

#include <stddef.h>
#include "talaria/mem.h"

#include <stdint.h>

#define TAL_DSTORE_MAGIC "TALDELTA"

enum {
    TAL_DREC_REFERENCE = 1, /* the record is reference `ref` itself (no delta) */
    TAL_DREC_IDENTICAL = 2  /* a member identical to its reference (no delta) */
};

typedef struct {
    const char *header;
    size_t header_len;
    uint64_t length;     /* residues */
    uint64_t checksum;   /* tal_record_checksum(header, residues) */
    uint32_t ref;        /* reference index (0-based, the reduced FASTA's record order) */
    uint32_t flags;      /* TAL_DREC_* */
    float identity, coverage; /* members: of the alignment that admitted them */
    const uint8_t *delta;
    size_t delta_len;
} tal_drec_t;

typedef struct {
    uint64_t fasta_offset; /* the record's '>' in the reduced FASTA */
    uint64_t fasta_len;    /* bytes of the record there, header line included */
    uint64_t length;       /* residues */
    uint64_t hash;         /* XXH3-64 of the residues */
    uint64_t record;       /* its index among the original records */
} tal_dref_t;

/* ---- writing ---- */
typedef struct tal_dwriter tal_dwriter_t;

typedef struct {
    uint64_t records, references;
    uint64_t header_bytes, delta_bytes; /* totals, known before writing */
    double identity, coverage;
    int nucleotide;
    const char *fasta_path; /* the reduced FASTA, as the user named it */
    tal_budget_t *budget;   /* the key index is sorted within it (NULL: none) */
    const char *tmp_dir;    /* where that sort spills (NULL: $TMPDIR, else /tmp) */
    uint64_t sort_bytes;    /* the sort buffer's most (0: 128 MiB) */
} tal_dlayout_t;

/* Creates path (which must not exist; the caller renames it into place). */
int tal_dwriter_open(tal_dwriter_t **out, const char *path, const tal_dlayout_t *layout);
/* Records in the original order; delta_off is into the delta bytes (written by
 * tal_dwriter_copy_deltas). */
int tal_dwriter_record(tal_dwriter_t *w, const tal_drec_t *rec, uint64_t delta_off);
int tal_dwriter_reference(tal_dwriter_t *w, const tal_dref_t *ref);
/* Copies delta_bytes bytes from fd (from offset 0) as the delta section. */
int tal_dwriter_copy_deltas(tal_dwriter_t *w, int fd);
/* Writes the key index, the header and the checksum, fsyncs; the file is complete. */
int tal_dwriter_finish(tal_dwriter_t *w);
/* Closes and removes the file. */
void tal_dwriter_abort(tal_dwriter_t *w);

/* ---- reading ---- */
typedef struct tal_dstore tal_dstore_t;

typedef struct {
    uint64_t records, references, members;
    uint64_t residues;           /* of all original records */
    uint64_t reference_residues;
    uint64_t header_bytes, delta_bytes, file_bytes;
    double identity, coverage;
    int nucleotide;
    const char *fasta_path; /* the reduced FASTA this store reads references from */
} tal_dinfo_t;

/* 1 if path is a delta store file (by its magic), 0 if not. */
int tal_dstore_is(const char *path);
/* Opens a delta store; fasta overrides the reduced FASTA's path (NULL: the FASTA of the
 * same name beside the store, else the path recorded when it was written). Every
 * offset is checked; a damaged file is TAL_EINPUT naming it. verify also checks the
 * file's checksum (reads it all). */
int tal_dstore_open(tal_dstore_t **out, const char *path, const char *fasta, int verify);
void tal_dstore_close(tal_dstore_t *d);
void tal_dstore_info(const tal_dstore_t *d, tal_dinfo_t *info);
const char *tal_dstore_path(const tal_dstore_t *d);
int tal_dstore_record(const tal_dstore_t *d, uint64_t i, tal_drec_t *rec);
int tal_dstore_reference(const tal_dstore_t *d, uint32_t k, tal_dref_t *ref);
/* A record by accession (first header word, or ACC of "db|ACC|NAME"). */
int tal_dstore_find(const tal_dstore_t *d, const char *acc, size_t acc_len, uint64_t *i);
/* Reference k's residues from the reduced FASTA, checked against its hash: TAL_EINPUT
 * (logged, naming the reference and record) if the FASTA does not belong. The pointer
 * stays valid until the next call. Not thread-safe. */
int tal_dstore_ref_residues(tal_dstore_t *d, uint32_t k, const char **seq, size_t *len);
/* Record i rebuilt into *buf (grown as needed), checked against its checksum. */
int tal_dstore_rebuild(tal_dstore_t *d, uint64_t i, char **buf, size_t *cap, size_t *len);
/* The members of reference k: *count record indices (into an array owned by d). */
int tal_dstore_members(tal_dstore_t *d, uint32_t k, const uint64_t **members, uint64_t *count);
/* The accession (primary key) of a header. */
void tal_dstore_accession(const char *header, size_t len, const char **acc, size_t *acc_len);

#endif
