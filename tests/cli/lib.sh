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

# families LETTERS MIN SPAN MAXSIZE MAXPCT WIDTH WANT SEED PREFIX : WANT sequences of
# MIN to MIN+SPAN letters in families of 1-MAXSIZE (a random base; members with
# 1-MAXPCT% substitutions), WIDTH letters a line, headers "PREFIXf_m member m of family f".
# A Park-Miller generator: every awk writes the same.
families() {
    awk -v L="$1" -v min="$2" -v span="$3" -v maxsize="$4" -v maxpct="$5" -v width="$6" \
        -v want="$7" -v seed="$8" -v prefix="$9" '
function rnd(n) { seed = (seed * 16807) % 2147483647; return seed % n }
function randseq(len,   s, j) { s = ""; for (j = 0; j < len; j++) s = s substr(L, rnd(nl) + 1, 1); return s }
function vary(s, pct,   k, p, c, nsub) {
    nsub = int(length(s) * pct / 100)
    for (k = 0; k < nsub; k++) {
        p = rnd(length(s)) + 1
        c = index(L, substr(s, p, 1))
        s = substr(s, 1, p - 1) substr(L, (c + rnd(nl - 1)) % nl + 1, 1) substr(s, p + 1)
    }
    return s
}
function put(h, s,   j) { print ">" h; for (j = 1; j <= length(s); j += width) print substr(s, j, width) }
BEGIN {
    nl = length(L)
    for (f = 1; n < want; f++) {
        base = randseq(min + rnd(span + 1))
        size = 1 + rnd(maxsize)
        for (m = 1; m <= size && n < want; m++) {
            put(sprintf("%s%d_%d member %d of family %d", prefix, f, m, m, f), m == 1 ? base : vary(base, 1 + rnd(maxpct)))
            n++
        }
    }
}'
}

# protein_families WANT SEED PREFIX : proteins of 100-300 residues in families of 1-16,
# members with 1-12% substitutions, 60 residues a line
protein_families() { families ACDEFGHIKLMNPQRSTVWY 100 200 16 12 60 "$@"; }

# nucleotide_families WANT SEED PREFIX : sequences of 300-600 bases in families of 1-12,
# members with 1-10% substitutions, 70 bases a line
nucleotide_families() { families ACGT 300 300 12 10 70 "$@"; }

finish() {
    if [ "$FAILS" -ne 0 ]; then
        echo "$FAILS check(s) failed" >&2
        exit 1
    fi
    exit 0
}
