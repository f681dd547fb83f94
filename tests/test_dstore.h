/* A small delta store written with the library's own writer and aligner, for the tests of
 * talaria/deltas.h and talaria/expand.h; and a capture of stderr to read log messages. */
#ifndef TAL_TEST_DSTORE_H
#define TAL_TEST_DSTORE_H

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "reduce/delta_internal.h"
#include "reduce/dstore_internal.h"
#include "store/format_internal.h"
#include "test_support.h"

/* Six records in three clusters. Reference 0 (record 0) has two members that differ from
 * it (records 1 and 4), reference 1 (record 2) one identical member (record 3), and
 * reference 2 (record 5) is an empty sequence without members. */
#define FIX_RECORDS    6
#define FIX_REFERENCES 3

static const char *const fix_headers[FIX_RECORDS] = {
    "sp|P11111|REF1_HUMAN reference one", "m1 a member of one with two substitutions",
    "sp|P22222|REF2_MOUSE reference two", "tr|Q33333|M2_RAT identical to two",
    "m3 a shorter member of one",         "empty an empty reference",
};
static const uint32_t fix_ref_of[FIX_RECORDS] = {0, 0, 1, 1, 0, 2};
static const int fix_is_ref[FIX_RECORDS] = {1, 0, 1, 0, 0, 1};

typedef struct {
    char dir[PATH_MAX];
    char fasta[PATH_MAX + 32];  /* the reduced FASTA */
    char deltas[PATH_MAX + 32]; /* the delta store beside it */
    char *seq[FIX_RECORDS];     /* the original residues */
    size_t len[FIX_RECORDS];
} fixture_t;

static char *fix_protein(size_t n, unsigned seed)
{
    static const char aa[] = "ACDEFGHIKLMNPQRSTVWY";
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++) s[i] = aa[rand_r(&seed) % 20];
    s[n] = '\0';
    return s;
}

/* The originals, the reduced FASTA (references wrapped at 60), and the store. Returns 0. */
static int fixture_build(fixture_t *fx)
{
    char delta_path[PATH_MAX + 32];
    uint64_t delta_off[FIX_RECORDS] = {0}, delta_len[FIX_RECORDS] = {0}, delta_bytes = 0;
    uint64_t header_bytes = 0;
    float identity[FIX_RECORDS], coverage[FIX_RECORDS];
    tal_aligner_t *aligner;
    tal_dwriter_t *w;
    tal_dlayout_t layout;
    FILE *fasta;
    int delta_fd;

    memset(fx, 0, sizeof *fx);
    if (tal_test_mkdtemp(fx->dir, sizeof fx->dir, "dstore") < 0) return -1;
    snprintf(fx->fasta, sizeof fx->fasta, "%s/red.fasta", fx->dir);
    snprintf(fx->deltas, sizeof fx->deltas, "%s/red.deltas.tal", fx->dir);
    snprintf(delta_path, sizeof delta_path, "%s/deltas.tmp", fx->dir);
    fx->seq[0] = fix_protein(130, 7);
    fx->seq[1] = strdup(fx->seq[0]);
    fx->seq[1][20] = fx->seq[1][20] == 'W' ? 'Y' : 'W';
    fx->seq[1][70] = fx->seq[1][70] == 'W' ? 'Y' : 'W';
    fx->seq[2] = fix_protein(80, 11);
    fx->seq[3] = strdup(fx->seq[2]);
    fx->seq[4] = strndup(fx->seq[0] + 10, 110);
    fx->seq[5] = strdup("");
    for (int i = 0; i < FIX_RECORDS; i++) {
        fx->len[i] = strlen(fx->seq[i]);
        header_bytes += strlen(fix_headers[i]);
        identity[i] = coverage[i] = 1.0f;
    }

    /* the members' deltas, in a file of their own as reduce writes them */
    if (tal_aligner_create(&aligner, 0, 0) < 0) return -1;
    delta_fd = open(delta_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (delta_fd < 0) return -1;
    for (int i = 0; i < FIX_RECORDS; i++) {
        tal_alignment_t al;
        int ref_record = i == 1 || i == 4 ? 0 : -1;
        if (ref_record < 0) continue;
        if (tal_align(aligner, fx->seq[i], fx->len[i], fx->seq[ref_record], fx->len[ref_record],
                      &al) < 0 ||
            write(delta_fd, al.delta, al.delta_len) != (ssize_t)al.delta_len)
            return -1;
        delta_off[i] = delta_bytes;
        delta_len[i] = al.delta_len;
        delta_bytes += al.delta_len;
        identity[i] = (float)al.identity;
        coverage[i] = (float)al.coverage;
    }
    tal_aligner_free(aligner);

    memset(&layout, 0, sizeof layout);
    layout.records = FIX_RECORDS;
    layout.references = FIX_REFERENCES;
    layout.header_bytes = header_bytes;
    layout.delta_bytes = delta_bytes;
    layout.identity = 0.9;
    layout.coverage = 0.8;
    layout.fasta_path = fx->fasta;
    layout.tmp_dir = fx->dir;
    if (tal_dwriter_open(&w, fx->deltas, &layout) < 0) return -1;
    if (!(fasta = fopen(fx->fasta, "w"))) return -1;
    for (int i = 0; i < FIX_RECORDS; i++) {
        tal_drec_t rec;
        memset(&rec, 0, sizeof rec);
        rec.header = fix_headers[i];
        rec.header_len = strlen(fix_headers[i]);
        rec.length = fx->len[i];
        rec.checksum = tal_record_checksum(rec.header, rec.header_len, fx->seq[i], fx->len[i]);
        rec.ref = fix_ref_of[i];
        rec.flags = fix_is_ref[i] ? TAL_DREC_REFERENCE : i == 3 ? TAL_DREC_IDENTICAL : 0;
        rec.identity = identity[i];
        rec.coverage = coverage[i];
        rec.delta_len = delta_len[i];
        if (tal_dwriter_record(w, &rec, delta_off[i]) < 0) return -1;
        if (fix_is_ref[i]) {
            tal_dref_t ref;
            long start = ftell(fasta);
            fprintf(fasta, ">%s\n", fix_headers[i]);
            for (size_t at = 0; at < fx->len[i]; at += 60)
                fprintf(fasta, "%.*s\n", (int)(fx->len[i] - at < 60 ? fx->len[i] - at : 60),
                        fx->seq[i] + at);
            ref.fasta_offset = (uint64_t)start;
            ref.fasta_len = (uint64_t)(ftell(fasta) - start);
            ref.length = fx->len[i];
            ref.hash = XXH3_64bits(fx->seq[i], fx->len[i]);
            ref.record = (uint64_t)i;
            if (tal_dwriter_reference(w, &ref) < 0) return -1;
        }
    }
    if (fclose(fasta) != 0 || tal_dwriter_copy_deltas(w, delta_fd) < 0 || tal_dwriter_finish(w) < 0)
        return -1;
    close(delta_fd);
    unlink(delta_path);
    return 0;
}

static void fixture_free(fixture_t *fx)
{
    for (int i = 0; i < FIX_RECORDS; i++) free(fx->seq[i]);
    tal_test_rm_rf(fx->dir);
}

/* stderr into a file until capture_end, which returns what was written (malloc'd). */
typedef struct {
    int saved_fd;
    char path[PATH_MAX + 32];
} capture_t;

static void capture_begin(capture_t *cap, const fixture_t *fx)
{
    int fd;
    snprintf(cap->path, sizeof cap->path, "%s/stderr", fx->dir);
    fflush(stderr);
    cap->saved_fd = dup(STDERR_FILENO);
    fd = open(cap->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

static char *capture_end(capture_t *cap)
{
    char *text = calloc(1, 1 << 16);
    FILE *f;
    fflush(stderr);
    dup2(cap->saved_fd, STDERR_FILENO);
    close(cap->saved_fd);
    if ((f = fopen(cap->path, "r"))) {
        size_t n = fread(text, 1, (1 << 16) - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    return text;
}

#endif
