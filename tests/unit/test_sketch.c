/* Unit tests for k-mer sketches (src/reduce/sketch.c): determinism, the reduced
 * protein alphabet, shared hashes between related sequences and few between unrelated
 * ones, both strands for nucleotides, and edge cases. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "reduce/sketch_internal.h"

static const char AA[] = "ACDEFGHIKLMNPQRSTVWY";

static char *random_seq(size_t n, const char *alphabet, size_t na, unsigned *seed)
{
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++) s[i] = alphabet[rand_r(seed) % na];
    s[n] = '\0';
    return s;
}

static size_t shared(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
    size_t i = 0, j = 0, n = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) {
            n++;
            i++;
            j++;
        } else if (a[i] < b[j]) {
            i++;
        } else {
            j++;
        }
    }
    return n;
}

static void test_deterministic_sorted_distinct(void **state)
{
    tal_sketch_opt_t o;
    unsigned seed = 1;
    char *s = random_seq(500, AA, 20, &seed);
    uint64_t a[20], b[20];
    size_t na, nb;
    (void)state;
    tal_sketch_opt_init(&o, 0);
    na = tal_sketch(&o, s, 500, a);
    nb = tal_sketch(&o, s, 500, b);
    assert_int_equal(na, 20);
    assert_int_equal(nb, 20);
    assert_memory_equal(a, b, sizeof a);
    for (size_t i = 1; i < na; i++) assert_true(a[i - 1] < a[i]);
    free(s);
}

static void test_reduced_alphabet_swaps(void **state)
{
    tal_sketch_opt_t o;
    const char *a = "MKLIVAAGSTDEKRFYLMNQ", *b = "MKLVIAAGTSNQRKYFMLDE";
    uint64_t ha[20], hb[20];
    size_t na, nb;
    (void)state;
    tal_sketch_opt_init(&o, 0);
    /* I/V, S/T, D/N, E/Q, K/R, F/Y, L/M swapped: the same classes, the same sketch */
    na = tal_sketch(&o, a, strlen(a), ha);
    nb = tal_sketch(&o, b, strlen(b), hb);
    assert_int_equal(na, 11);
    assert_int_equal(na, nb);
    assert_memory_equal(ha, hb, na * sizeof *ha);
    assert_int_equal(tal_sketch_protein_class('i'), tal_sketch_protein_class('V'));
    assert_true(tal_sketch_protein_class('W') != tal_sketch_protein_class('F'));
    assert_int_equal(tal_sketch_protein_class('X'), -1);
    assert_int_equal(tal_sketch_protein_class('*'), -1);
}

static void test_related_share_unrelated_do_not(void **state)
{
    tal_sketch_opt_t o;
    unsigned seed = 5;
    size_t related = 0, unrelated = 0;
    (void)state;
    tal_sketch_opt_init(&o, 0);
    for (int t = 0; t < 50; t++) {
        char *r = random_seq(400, AA, 20, &seed), *m = strdup(r),
             *u = random_seq(400, AA, 20, &seed);
        uint64_t hr[20], hm[20], hu[20];
        size_t nr, nm, nu;
        for (int e = 0; e < 40; e++) m[rand_r(&seed) % 400] = AA[rand_r(&seed) % 20]; /* ~90% */
        nr = tal_sketch(&o, r, 400, hr);
        nm = tal_sketch(&o, m, 400, hm);
        nu = tal_sketch(&o, u, 400, hu);
        if (shared(hr, nr, hm, nm) > 0) related++;
        if (shared(hr, nr, hu, nu) > 0) unrelated++;
        free(r);
        free(m);
        free(u);
    }
    assert_true(related >= 45);  /* nearly every 90% pair is a candidate */
    assert_true(unrelated <= 2); /* random pairs almost never are */
}

static void test_invalid_bytes_break_kmers(void **state)
{
    tal_sketch_opt_t o;
    uint64_t h[20];
    (void)state;
    tal_sketch_opt_init(&o, 0);
    assert_int_equal(tal_sketch(&o, "ACDEFGHIK", 9, h), 0);        /* shorter than k */
    assert_int_equal(tal_sketch(&o, "ACDEFGHIKL", 10, h), 1);      /* exactly one */
    assert_int_equal(tal_sketch(&o, "ACDEFXGHIKLMNPQ", 15, h), 0); /* X every < k */
    assert_int_equal(tal_sketch(&o, "ACDEFGHIKLXMNPQRSTVWY", 21, h), 2);
    assert_int_equal(tal_sketch(&o, "", 0, h), 0);
    o.m = 3;
    assert_int_equal(tal_sketch(&o, "ACDEFGHIKLMNPQRSTVWYACDEFG", 26, h), 3);
}

static void test_nucleotide_both_strands(void **state)
{
    tal_sketch_opt_t o;
    unsigned seed = 9;
    char *s = random_seq(300, "ACGT", 4, &seed), *rc = malloc(301);
    uint64_t a[20], b[20];
    size_t na, nb;
    (void)state;
    for (size_t i = 0; i < 300; i++) {
        char c = s[299 - i];
        rc[i] = c == 'A' ? 'T' : c == 'C' ? 'G' : c == 'G' ? 'C' : 'A';
    }
    rc[300] = '\0';
    tal_sketch_opt_init(&o, 1);
    na = tal_sketch(&o, s, 300, a);
    nb = tal_sketch(&o, rc, 300, b);
    assert_int_equal(na, 20);
    assert_int_equal(nb, 20);
    assert_memory_equal(a, b, sizeof a); /* canonical k-mers: the same on either strand */
    free(s);
    free(rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_sorted_distinct),
        cmocka_unit_test(test_reduced_alphabet_swaps),
        cmocka_unit_test(test_related_share_unrelated_do_not),
        cmocka_unit_test(test_invalid_bytes_break_kmers),
        cmocka_unit_test(test_nucleotide_both_strands),
    };
    return cmocka_run_group_tests_name("sketch", tests, NULL, NULL);
}
