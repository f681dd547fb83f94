/* The line layout of a FASTA file (doc/format.md §4.5): how its records were broken into
 * lines, so that the file can be written back byte for byte. Kept by a store (section
 * 10) and copied into a delta store. Private to libtalaria. */
#ifndef TAL_LAYOUT_INTERNAL_H
#define TAL_LAYOUT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "io/fasta_internal.h"
#include "talaria/mem.h"

#define TAL_LAYOUT_HEAD      48u
#define TAL_LAYOUT_ENTRY     24u
#define TAL_LAYOUT_EXPLICIT  1u /* entry flags: the record's lines are listed */
#define TAL_LAYOUT_CRLF      2u /* lines end "\r\n" (explicit: the header line does) */
#define TAL_LAYOUT_BLANKS(f) (((f) >> 8) & 0xffu) /* blank lines after each record */
#define TAL_LAYOUT_FLAG_MASK 0xff03u
enum { TAL_LAYOUT_END_COMPLETE = 0, TAL_LAYOUT_END_NO_EOL = 1, TAL_LAYOUT_END_NO_LF = 2 };

/* ---- building one from the parser's view of each record ---- */
typedef struct tal_layout_enc tal_layout_enc_t;

int tal_layout_enc_new(tal_layout_enc_t **out, tal_budget_t *budget);
int tal_layout_enc_preamble(tal_layout_enc_t *e, const char *bytes, size_t len);
/* The next record. TAL_ENOMEM only if memory runs out; a budget that refuses more makes
 * the encoder give up quietly (tal_layout_enc_finish then has no layout). */
int tal_layout_enc_add(tal_layout_enc_t *e, const tal_fasta_lines_t *lines);
/* The section's bytes (malloc'd) for the records added; *data NULL and *size 0 when the
 * layout was given up. */
int tal_layout_enc_finish(tal_layout_enc_t *e, unsigned char **data, size_t *size);
/* 1 if the encoder gave up (the budget refused its buffers). */
int tal_layout_enc_gave_up(const tal_layout_enc_t *e);
void tal_layout_enc_free(tal_layout_enc_t *e);

/* ---- reading one (a section's bytes, from a mapping) ---- */
typedef struct {
    const unsigned char *data;
    size_t size;
    uint64_t records, width, preamble_bytes, entry_count, lines_bytes;
    uint32_t flags, end;
    const unsigned char *preamble, *entries, *lines;
} tal_layout_t;

/* Checks that the header and the parts tile size exactly for a file of records records;
 * NULL, or what is wrong (for "the layout section is damaged: WHAT"). */
const char *tal_layout_open(tal_layout_t *l, const void *data, size_t size, uint64_t records);
/* Checks every entry: in order, inside the records, known flags, and each listed record's
 * lines adding up to its length(ctx, i). NULL, or what is wrong. */
const char *tal_layout_check(const tal_layout_t *l, uint64_t (*length)(void *ctx, uint64_t i),
                             void *ctx);
/* Writes record i as it was in the file: '>', its header and residues in its lines. With
 * whole set, record 0 gets the bytes before the first '>' and the last record the file's
 * own end. TAL_EINPUT, not logged, if the layout does not fit the record (damage);
 * TAL_EIO, not logged, if out's error flag is set. */
int tal_layout_write(const tal_layout_t *l, uint64_t i, const char *header, size_t header_len,
                     const char *seq, size_t seq_len, int whole, FILE *out);

#endif
