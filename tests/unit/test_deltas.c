/* Unit tests for talaria/deltas.h on a small delta store written here: lookups, rebuilt
 * records, members, the FASTA writer's bytes, and verify catching a foreign FASTA. */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "talaria/deltas.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "test_dstore.h"

static int setup(void **state)
{
    fixture_t *fx = malloc(sizeof *fx);
    if (!fx || fixture_build(fx) < 0) return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_free(*state);
    free(*state);
    return 0;
}

static void test_open_and_info(void **state)
{
    fixture_t *fx = *state;
    tal_dstore_t *d;
    tal_dinfo_t info;
    assert_int_equal(tal_dstore_is(fx->deltas), 1);
    assert_int_equal(tal_dstore_is(fx->fasta), 0);
    assert_int_equal(tal_dstore_open(&d, fx->deltas, NULL, 1), 0);
    tal_dstore_info(d, &info);
    assert_int_equal(info.records, FIX_RECORDS);
    assert_int_equal(info.references, FIX_REFERENCES);
    assert_int_equal(info.members, FIX_RECORDS - FIX_REFERENCES);
    assert_int_equal(info.residues, 130 + 130 + 80 + 80 + 110);
    assert_int_equal(info.reference_residues, 130 + 80);
    assert_string_equal(info.fasta_path, fx->fasta);
    assert_string_equal(tal_dstore_path(d), fx->deltas);
    tal_dstore_close(d);
    tal_dstore_close(NULL);
}

static void test_open_errors(void **state)
{
    fixture_t *fx = *state;
    char missing[PATH_MAX + 32];
    tal_dstore_t *d = (tal_dstore_t *)1;
    tal_log_level_t level = tal_log_get_level();
    snprintf(missing, sizeof missing, "%s/none.tal", fx->dir);
    tal_log_set_level(TAL_LOG_QUIET);
    /* missing or a directory: an I/O failure; a file that is not a delta store: bad input */
    assert_int_equal(tal_dstore_open(&d, missing, NULL, 0), TAL_EIO);
    assert_null(d);
    assert_int_equal(tal_dstore_open(&d, fx->dir, NULL, 0), TAL_EIO);
    assert_null(d);
    assert_int_equal(tal_dstore_open(&d, fx->fasta, NULL, 0), TAL_EINPUT);
    tal_log_set_level(level);
}

static void test_records_and_lookup(void **state)
{
    fixture_t *fx = *state;
    tal_dstore_t *d;
    tal_drec_t rec;
    tal_dref_t ref;
    uint64_t i;
    const char *acc;
    size_t acc_len;
    assert_int_equal(tal_dstore_open(&d, fx->deltas, NULL, 0), 0);
    for (uint64_t k = 0; k < FIX_RECORDS; k++) {
        assert_int_equal(tal_dstore_record(d, k, &rec), 0);
        assert_int_equal(rec.header_len, strlen(fix_headers[k]));
        assert_memory_equal(rec.header, fix_headers[k], rec.header_len);
        assert_int_equal(rec.length, fx->len[k]);
        assert_int_equal(rec.ref, fix_ref_of[k]);
        assert_int_equal(!!(rec.flags & TAL_DREC_REFERENCE), fix_is_ref[k]);
        assert_int_equal(rec.delta != NULL, k == 1 || k == 4);
    }
    assert_int_equal(tal_dstore_record(d, 3, &rec), 0);
    assert_int_equal(rec.flags, TAL_DREC_IDENTICAL);
    assert_int_equal(tal_dstore_record(d, FIX_RECORDS, &rec), TAL_ENOTFOUND);

    assert_int_equal(tal_dstore_reference(d, 1, &ref), 0);
    assert_int_equal(ref.record, 2);
    assert_int_equal(ref.length, 80);
    assert_int_equal(tal_dstore_reference(d, FIX_REFERENCES, &ref), TAL_ENOTFOUND);

    /* the first word, and the ACC of "db|ACC|NAME" */
    assert_int_equal(tal_dstore_find(d, "m3", 2, &i), 0);
    assert_int_equal(i, 4);
    assert_int_equal(tal_dstore_find(d, "sp|P22222|REF2_MOUSE", 20, &i), 0);
    assert_int_equal(i, 2);
    assert_int_equal(tal_dstore_find(d, "Q33333", 6, &i), 0);
    assert_int_equal(i, 3);
    assert_int_equal(tal_dstore_find(d, "Q3333", 5, &i), TAL_ENOTFOUND);
    assert_int_equal(tal_dstore_find(d, "REF2_MOUSE", 10, &i), TAL_ENOTFOUND);

    tal_dstore_accession(fix_headers[2], strlen(fix_headers[2]), &acc, &acc_len);
    assert_int_equal(acc_len, 20);
    assert_memory_equal(acc, "sp|P22222|REF2_MOUSE", 20);
    tal_dstore_close(d);
}

static void test_rebuild_and_members(void **state)
{
    fixture_t *fx = *state;
    tal_dstore_t *d;
    char *buf = NULL;
    size_t cap = 0, len;
    const char *seq;
    const uint64_t *members;
    uint64_t count;
    assert_int_equal(tal_dstore_open(&d, fx->deltas, NULL, 0), 0);
    for (uint64_t k = 0; k < FIX_RECORDS; k++) {
        assert_int_equal(tal_dstore_rebuild(d, k, &buf, &cap, &len), 0);
        assert_int_equal(len, fx->len[k]);
        assert_memory_equal(buf, fx->seq[k], len);
    }
    /* the reference's residues come from the wrapped FASTA without its line breaks */
    assert_int_equal(tal_dstore_ref_residues(d, 0, &seq, &len), 0);
    assert_int_equal(len, 130);
    assert_memory_equal(seq, fx->seq[0], 130);

    assert_int_equal(tal_dstore_members(d, 0, &members, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(members[0], 1);
    assert_int_equal(members[1], 4);
    assert_int_equal(tal_dstore_members(d, 1, &members, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(members[0], 3);
    assert_int_equal(tal_dstore_members(d, 2, &members, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(tal_dstore_members(d, FIX_REFERENCES, &members, &count), TAL_ENOTFOUND);
    free(buf);
    tal_dstore_close(d);
}

/* The records as FASTA the way talaria reconstruct has always written them. */
static char *expected_fasta(const fixture_t *fx, int first, int count, size_t width)
{
    char *text;
    size_t size;
    FILE *f = open_memstream(&text, &size);
    for (int i = first; i < first + count; i++) {
        fprintf(f, ">%s\n", fix_headers[i]);
        if (!width || !fx->len[i]) fprintf(f, "%s\n", fx->seq[i]);
        for (size_t at = 0; width && at < fx->len[i]; at += width)
            fprintf(f, "%.*s\n", (int)(fx->len[i] - at < width ? fx->len[i] - at : width),
                    fx->seq[i] + at);
    }
    fclose(f);
    return text;
}

static char *written_fasta(tal_dstore_t *d, uint64_t first, uint64_t count, size_t width, int *rc)
{
    char *text;
    size_t size;
    FILE *f = open_memstream(&text, &size);
    *rc = tal_dstore_write_fasta(d, first, count, width, f);
    fclose(f);
    return text;
}

static void test_write_fasta(void **state)
{
    fixture_t *fx = *state;
    tal_dstore_t *d;
    static const size_t widths[] = {0, 60, 7, 130, 1};
    int rc;
    assert_int_equal(tal_dstore_open(&d, fx->deltas, NULL, 0), 0);
    for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
        char *want = expected_fasta(fx, 0, FIX_RECORDS, widths[w]);
        char *got = written_fasta(d, 0, FIX_RECORDS, widths[w], &rc);
        assert_int_equal(rc, 0);
        assert_string_equal(got, want);
        free(want);
        free(got);
    }
    {
        /* the empty record keeps its empty line, wrapped or not */
        char *got = written_fasta(d, 5, 1, 60, &rc);
        assert_int_equal(rc, 0);
        assert_string_equal(got, ">empty an empty reference\n\n");
        free(got);
    }
    {
        char *want = expected_fasta(fx, 2, 3, 50);
        char *got = written_fasta(d, 2, 3, 50, &rc);
        assert_int_equal(rc, 0);
        assert_string_equal(got, want);
        free(want);
        free(got);
    }
    free(written_fasta(d, 4, 3, 0, &rc));
    assert_int_equal(rc, TAL_ENOTFOUND);
    free(written_fasta(d, UINT64_MAX, 2, 0, &rc));
    assert_int_equal(rc, TAL_ENOTFOUND);
    tal_dstore_close(d);
}

/* Writes path as a copy of src with the n bytes at offset replaced by bytes. */
static void copy_with_bytes(const char *src, const char *path, long offset, const void *bytes,
                            size_t n)
{
    FILE *in = fopen(src, "rb"), *out = fopen(path, "wb");
    const unsigned char *with = bytes;
    int c;
    long at = 0;
    assert_non_null(in);
    assert_non_null(out);
    for (; (c = getc(in)) != EOF; at++)
        putc(at >= offset && at - offset < (long)n ? with[at - offset] : c, out);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static void copy_with_byte(const char *src, const char *path, long offset, char byte)
{
    copy_with_bytes(src, path, offset, &byte, 1);
}

static void test_verify(void **state)
{
    fixture_t *fx = *state;
    char other[PATH_MAX + 48], damaged[PATH_MAX + 48], *err;
    tal_dstore_t *d;
    capture_t cap;
    int rc;
    assert_int_equal(tal_dstore_verify(fx->deltas, NULL), 0);

    /* a reduced FASTA with one residue changed (line 2, column 6) does not belong */
    snprintf(other, sizeof other, "%s/other.fasta", fx->dir);
    copy_with_byte(fx->fasta, other, (long)strlen(fix_headers[0]) + 2 + 5,
                   fx->seq[0][5] == 'A' ? 'C' : 'A');
    capture_begin(&cap, fx);
    rc = tal_dstore_verify(fx->deltas, other);
    err = capture_end(&cap);
    assert_int_equal(rc, TAL_EINPUT);
    assert_non_null(strstr(err, "reference 1 (record 1) is not in"));
    free(err);

    /* one byte of a header changed: the layout is intact, only the checksum sees it */
    snprintf(damaged, sizeof damaged, "%s/damaged.tal", fx->dir);
    copy_with_byte(fx->deltas, damaged, 4096 + FIX_RECORDS * 56 + 3, 'X');
    assert_int_equal(tal_dstore_open(&d, damaged, fx->fasta, 0), 0);
    tal_dstore_close(d);
    capture_begin(&cap, fx);
    rc = tal_dstore_verify(damaged, fx->fasta);
    err = capture_end(&cap);
    assert_int_equal(rc, TAL_EINPUT);
    assert_non_null(strstr(err, "its checksum does not match"));
    free(err);
}

/* An entry's identity or coverage that is not a fraction (a NaN once crashed talaria
 * validate, which bins the identities) is refused like an offset outside the file. */
static void test_fractions_checked(void **state)
{
    fixture_t *fx = *state;
    char damaged[PATH_MAX + 48], *err;
    const float bad[] = {NAN, INFINITY, -0.5f, 1.5f};
    const long fields[] = {48, 52}; /* identity and coverage of entry 1 (record 2) */
    tal_dstore_t *d;
    tal_drec_t rec;
    capture_t cap;
    int rc;
    snprintf(damaged, sizeof damaged, "%s/fraction.tal", fx->dir);
    for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
        for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
            copy_with_bytes(fx->deltas, damaged, 4096 + 56 + fields[f], &bad[b], sizeof bad[b]);
            assert_int_equal(tal_dstore_open(&d, damaged, fx->fasta, 0), 0);
            capture_begin(&cap, fx);
            rc = tal_dstore_record(d, 1, &rec);
            err = capture_end(&cap);
            assert_int_equal(rc, TAL_EINPUT);
            assert_non_null(strstr(err, "record 2 has an identity or coverage outside [0, 1]"));
            free(err);
            assert_int_equal(tal_dstore_record(d, 0, &rec), 0); /* the others still read */
            tal_dstore_close(d);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_info),      cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_records_and_lookup), cmocka_unit_test(test_rebuild_and_members),
        cmocka_unit_test(test_write_fasta),        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_fractions_checked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
