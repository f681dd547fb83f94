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

# unwrap FASTA : one line per header and per sequence, as talaria get -w 0 prints
unwrap() {
    awk '{ sub(/\r$/, "") } /^>/ { if (seq != "") print seq; print; seq = ""; next } { seq = seq $0 } END { if (seq != "") print seq }' "$1"
}

finish() {
    if [ "$FAILS" -ne 0 ]; then
        echo "$FAILS check(s) failed" >&2
        exit 1
    fi
    exit 0
}
