# Usage errors are exit 2 with a hint; --help and --version work for every command.
. "$(dirname "$0")/lib.sh"

expect_exit 0 "$TALARIA" --version && grep -q '^talaria [0-9]' "$T/out" || fail "--version"
expect_exit 0 "$TALARIA" --help && cp "$T/out" "$T/main_help"
expect_exit 2 "$TALARIA"
expect_exit 2 "$TALARIA" frobnicate && expect_stderr "unknown command 'frobnicate'"
expect_exit 2 "$TALARIA" help frobnicate && expect_stderr "unknown command 'frobnicate'"
expect_exit 0 "$TALARIA" help && cmp -s "$T/out" "$T/main_help" || fail "talaria help differs from talaria --help"
for cmd in index get stats verify reduce reconstruct validate expand config; do
    expect_exit 0 "$TALARIA" "$cmd" --help && grep -q "Usage: talaria $cmd" "$T/out" || fail "$cmd --help"
    cp "$T/out" "$T/cmd_help"
    expect_exit 2 "$TALARIA" "$cmd" --no-such-option && expect_stderr "Try 'talaria $cmd --help'"
    grep -q "^  $cmd " "$T/main_help" || fail "talaria --help does not list $cmd"
    expect_exit 0 "$TALARIA" help "$cmd" && cmp -s "$T/out" "$T/cmd_help" || fail "talaria help $cmd differs from $cmd --help"
    [ -f "$TAL_SRCDIR/man/talaria-$cmd.1" ] && grep -q "^\.BR talaria\\\\-$cmd (1)" "$TAL_SRCDIR/man/talaria.1" ||
        fail "$cmd has no manual page, or talaria(1) does not refer to it"
done
expect_exit 2 "$TALARIA" index -i "$DATA/small.fa" && expect_stderr "missing -o"
expect_exit 2 "$TALARIA" index -o "$T/x.tal" && expect_stderr "missing -i"
expect_exit 2 "$TALARIA" index -i "$DATA/small.fa" -o "$T/x.tal" -t 0 && expect_stderr "--threads"
expect_exit 2 "$TALARIA" index -i "$DATA/small.fa" -o "$T/x.tal" -j abc
[ -e "$T/x.tal" ] && fail "a usage error created output"
expect_exit 2 "$TALARIA" get
expect_exit 2 "$TALARIA" get "$T/x.tal"
expect_exit 2 "$TALARIA" get -w -3 "$T/x.tal" a
expect_exit 2 "$TALARIA" verify
finish
