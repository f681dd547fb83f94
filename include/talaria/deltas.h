/* Reading the delta store of a reduction (doc/format.md, "Delta store"): with the reduced
 * FASTA it was written beside, it gives back every original record byte for byte.
 *
 * Each record, in the original order, has its header, its length, a checksum of header and
 * residues, and either the index of the reference it is (a record of the reduced FASTA) or
 * an edit script against one. Each reference has its place in the reduced FASTA and a
 * checksum of its residues, so a FASTA that does not belong to the store is caught at the
 * first record that needs it. A handle is for one thread at a time: rebuilding a record
 * reads the reduced FASTA into buffers the handle owns. Errors are logged (talaria/log.h)
 * and returned as a negative tal_err_t (talaria/error.h). */
#ifndef TALARIA_DELTAS_H
#define TALARIA_DELTAS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "talaria/api.h"

TAL_BEGIN_DECLS

typedef struct tal_dstore tal_dstore_t;

enum {
    TAL_DREC_REFERENCE = 1, /* the record is reference `ref` itself (no delta) */
    TAL_DREC_IDENTICAL = 2, /* a member identical to its reference (no delta) */
    TAL_DREC_MINUS = 4      /* a member whose delta is against the reference's reverse
                               complement (nucleotides, format 1.2) */
};

/* One original record as the store keeps it. The pointers are into the store's mapping and
 * stay valid until tal_dstore_close. */
typedef struct {
    const char *header; /* without '>' and line end; not NUL-terminated */
    size_t header_len;
    uint64_t length;          /* residues */
    uint64_t checksum;        /* of header and residues (the store's record checksum) */
    uint32_t ref;             /* reference index (0-based, the reduced FASTA's record order) */
    uint32_t flags;           /* TAL_DREC_* */
    float identity, coverage; /* members: of the alignment that admitted them */
    const uint8_t *delta;     /* members that differ from their reference: the edit script */
    size_t delta_len;
} tal_drec_t;

/* One reference: where it is in the reduced FASTA. The layout is the file's (40 bytes). */
typedef struct {
    uint64_t fasta_offset; /* the record's '>' in the reduced FASTA */
    uint64_t fasta_len;    /* bytes of the record there, header line included */
    uint64_t length;       /* residues */
    uint64_t hash;         /* XXH3-64 of the residues */
    uint64_t record;       /* its index among the original records */
} tal_dref_t;

typedef struct {
    uint64_t records, references, members;
    uint64_t residues; /* of all original records */
    uint64_t reference_residues;
    uint64_t header_bytes, delta_bytes, file_bytes;
    double identity, coverage; /* the thresholds of the reduction */
    int nucleotide;
    const char *fasta_path; /* the reduced FASTA this store reads references from */
    /* format 1.1: the configuration the reduction ran with, "key = value  # origin" a
     * line (talaria config's keys that shape the output); "" when none was recorded */
    const char *provenance;
} tal_dinfo_t;

/* 1 if path is a delta store file (by its magic), 0 if not (or it cannot be read). */
TAL_EXPORT int tal_dstore_is(const char *path);

/* Opens a delta store. fasta names the reduced FASTA (NULL: the FASTA of the recorded name
 * beside the store, else the path recorded when it was written); it is opened on first use.
 * Every offset is checked here, so the other calls cannot read outside the file; a damaged
 * file is TAL_EINPUT naming it, one that cannot be opened (missing, unreadable, a
 * directory) TAL_EIO. With verify set the file's checksum is checked too, which reads the
 * whole file. */
TAL_EXPORT int tal_dstore_open(tal_dstore_t **out, const char *path, const char *fasta, int verify);
/* NULL is a no-op. */
TAL_EXPORT void tal_dstore_close(tal_dstore_t *d);
TAL_EXPORT void tal_dstore_info(const tal_dstore_t *d, tal_dinfo_t *info);
/* The path the store was opened with. */
TAL_EXPORT const char *tal_dstore_path(const tal_dstore_t *d);

/* Record i (0-based, original order). TAL_ENOTFOUND past the end, TAL_EINPUT (logged) if
 * its entry points outside the file. */
TAL_EXPORT int tal_dstore_record(const tal_dstore_t *d, uint64_t i, tal_drec_t *rec);
/* Reference k (0-based, the reduced FASTA's order); TAL_ENOTFOUND past the end. */
TAL_EXPORT int tal_dstore_reference(const tal_dstore_t *d, uint32_t k, tal_dref_t *ref);
/* The record whose accession is acc: the first header word, or else the ACC of a
 * "db|ACC|NAME" header (the first such record). TAL_ENOTFOUND, not logged, if none. */
TAL_EXPORT int tal_dstore_find(const tal_dstore_t *d, const char *acc, size_t acc_len, uint64_t *i);
/* The accession (primary key, the first word) of a header, pointing into it. */
TAL_EXPORT void tal_dstore_accession(const char *header, size_t len, const char **acc,
                                     size_t *acc_len);

/* Reference k's residues from the reduced FASTA, checked against its hash: TAL_EINPUT
 * (logged, naming the reference and record) if the FASTA does not belong, TAL_EIO (logged)
 * if it cannot be opened. *seq is owned by d and stays valid until the next call on d. */
TAL_EXPORT int tal_dstore_ref_residues(tal_dstore_t *d, uint32_t k, const char **seq, size_t *len);
/* Record i's residues rebuilt into *buf (malloc'd, grown as needed; *cap its size) and
 * checked against the record's checksum: TAL_EINPUT (logged) if they do not match. */
TAL_EXPORT int tal_dstore_rebuild(tal_dstore_t *d, uint64_t i, char **buf, size_t *cap,
                                  size_t *len);
/* The members of reference k: *count record indices in original order, in an array owned
 * by d (built on the first call, which reads every entry). */
TAL_EXPORT int tal_dstore_members(tal_dstore_t *d, uint32_t k, const uint64_t **members,
                                  uint64_t *count);

/* 1 if the store keeps its input's line layout (format 1.2, from talaria 0.3: how each
 * record was broken into lines, its line endings and blank lines), 0 if not. */
TAL_EXPORT int tal_dstore_has_layout(const tal_dstore_t *d);

/* tal_dstore_write_fasta's width for "as in the input" */
#define TAL_WIDTH_LAYOUT ((size_t)-1)

/* Writes records [first, first + count) rebuilt, as FASTA: ">header", then the residues in
 * lines of width (0: one line). An empty sequence still gets its (empty) line, so the
 * output of a whole store is the original file when that had one line per sequence.
 * With width TAL_WIDTH_LAYOUT and a store that keeps its input's layout, each record is
 * written in its own lines as in the input (line length, CRLF, blank lines); when
 * [first, first + count) is every record, the bytes before the first '>' and a missing
 * final newline are given back too, so the output is the input file byte for byte. A
 * store without a layout writes one line per sequence then. Stops at the first record
 * that fails (TAL_EINPUT, logged); TAL_EIO, not logged, if out's error flag is set (the
 * caller knows what out is). */
TAL_EXPORT int tal_dstore_write_fasta(tal_dstore_t *d, uint64_t first, uint64_t count, size_t width,
                                      FILE *out);

/* Checks a delta store whole: opens it with its file checksum checked (fasta as for
 * tal_dstore_open), then rebuilds every record against its checksum. 0 if every record
 * comes back; else the first failure, logged. */
TAL_EXPORT int tal_dstore_verify(const char *path, const char *fasta);

TAL_END_DECLS

#endif
