# Usage errors are exit 2 with a hint; --help and --version work for every command.
. "$(dirname "$0")/lib.sh"

expect_exit 0 "$TALARIA" --version && grep -q '^talaria [0-9]' "$T/out" || fail "--version"
expect_exit 0 "$TALARIA" --help
expect_exit 2 "$TALARIA"
expect_exit 2 "$TALARIA" frobnicate && expect_stderr "unknown command 'frobnicate'"
for cmd in index get stats verify; do
    expect_exit 0 "$TALARIA" "$cmd" --help && grep -q "Usage: talaria $cmd" "$T/out" || fail "$cmd --help"
    expect_exit 2 "$TALARIA" "$cmd" --no-such-option && expect_stderr "Try 'talaria $cmd --help'"
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
