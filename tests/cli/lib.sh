# Helpers for the CLI tests: each test is a shell script that exits 0 on success.
# TALARIA, TAL_SRCDIR and TAL_BUILDDIR come from make check (AM_TESTS_ENVIRONMENT).
set -u
: "${TALARIA:?run through make check}"
DATA="$TAL_SRCDIR/tests/data"
T="$TAL_BUILDDIR/tests/tmp/$(basename "$0" .sh).$$"
rm -rf "$T"
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
FAILS=0

fail() {
    echo "FAIL: $*" >&2
    FAILS=$((FAILS + 1))
}

# expect_exit CODE CMD... : runs CMD, keeps stdout in $T/out and stderr in $T/err
expect_exit() {
    want=$1
    shift
    "$@" >"$T/out" 2>"$T/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "'$*' exited $got, expected $want; stderr: $(head -c 400 "$T/err")"
        return 1
    fi
    return 0
}

# expect_stderr TEXT : the last command's stderr contains TEXT
expect_stderr() {
    grep -qF -- "$1" "$T/err" || fail "stderr lacks '$1': $(head -c 400 "$T/err")"
}

# sanitized : true when talaria is built with AddressSanitizer, whose shadow memory,
# redzones and quarantine count in the resident set but are not the program's memory: the
# peak-within-the-cap checks hold for the real build and are skipped under ASan
sanitized() {
    ldd "$TALARIA" 2>/dev/null | grep -q 'libasan'
}

# under_valgrind : true when make check-valgrind runs talaria under memcheck
# (tests/valgrind/cli.sh), whose own memory and shadow memory count in the resident set as
# ASan's do: the peak-within-the-cap checks are skipped under it too
under_valgrind() {
    [ -n "${TAL_VALGRIND:-}" ]
}

# $MEMCHECK PROGRAM ARGS... : PROGRAM under memcheck in make check-valgrind, as TALARIA is
# there; PROGRAM itself otherwise. For the test programs other than talaria.
MEMCHECK=${TAL_MEMCHECK:-}

# unwrap FASTA : one line per header and per sequence, as talaria get -w 0 prints
unwrap() {
    awk '{ sub(/\r$/, "") } /^>/ { if (seq != "") print seq; print; seq = ""; next } { seq = seq $0 } END { if (seq != "") print seq }' "$1"
}

# protein_families WANT SEED PREFIX : WANT proteins of 100-300 residues in families of
# 1-16 (a random base; members with 1-12% substitutions), 60 residues a line, headers
# "PREFIXf_m member m of family f". A Park-Miller generator: every awk writes the same.
protein_families() {
    awk -v want="$1" -v seed="$2" -v prefix="$3" '
function rnd(n) { seed = (seed * 16807) % 2147483647; return seed % n }
function randseq(len,   s, j) { s = ""; for (j = 0; j < len; j++) s = s substr(AA, rnd(20) + 1, 1); return s }
function vary(s, pct,   k, p, c, nsub) {
    nsub = int(length(s) * pct / 100)
    for (k = 0; k < nsub; k++) {
        p = rnd(length(s)) + 1
        c = index(AA, substr(s, p, 1))
        s = substr(s, 1, p - 1) substr(AA, (c + rnd(19)) % 20 + 1, 1) substr(s, p + 1)
    }
    return s
}
function put(h, s,   j) { print ">" h; for (j = 1; j <= length(s); j += 60) print substr(s, j, 60) }
BEGIN {
    AA = "ACDEFGHIKLMNPQRSTVWY"
    for (f = 1; n < want; f++) {
        base = randseq(100 + rnd(201))
        size = 1 + rnd(16)
        for (m = 1; m <= size && n < want; m++) {
            put(sprintf("%s%d_%d member %d of family %d", prefix, f, m, m, f), m == 1 ? base : vary(base, 1 + rnd(12)))
            n++
        }
    }
}'
}

# nucleotide_families WANT SEED PREFIX : WANT sequences of 300-600 bases in families of
# 1-12 (a random base; members with 1-10% substitutions), 70 bases a line
nucleotide_families() {
    awk -v want="$1" -v seed="$2" -v prefix="$3" '
function rnd(n) { seed = (seed * 16807) % 2147483647; return seed % n }
function randseq(len,   s, j) { s = ""; for (j = 0; j < len; j++) s = s substr(NT, rnd(4) + 1, 1); return s }
function vary(s, pct,   k, p, c, nsub) {
    nsub = int(length(s) * pct / 100)
    for (k = 0; k < nsub; k++) {
        p = rnd(length(s)) + 1
        c = index(NT, substr(s, p, 1))
        s = substr(s, 1, p - 1) substr(NT, (c + rnd(3)) % 4 + 1, 1) substr(s, p + 1)
    }
    return s
}
function put(h, s,   j) { print ">" h; for (j = 1; j <= length(s); j += 70) print substr(s, j, 70) }
BEGIN {
    NT = "ACGT"
    for (f = 1; n < want; f++) {
        base = randseq(300 + rnd(301))
        size = 1 + rnd(12)
        for (m = 1; m <= size && n < want; m++) {
            put(sprintf("%s%d_%d member %d of family %d", prefix, f, m, m, f), m == 1 ? base : vary(base, 1 + rnd(10)))
            n++
        }
    }
}'
}

finish() {
    if [ "$FAILS" -ne 0 ]; then
        echo "$FAILS check(s) failed" >&2
        exit 1
    fi
    exit 0
}
