# The fuzz harnesses replay their built-in inputs, then every file of their seed corpus
# (tests/fuzz/seeds.sh), without crashing.
. "$(dirname "$0")/lib.sh"
. "$TAL_SRCDIR/tests/fuzz/seeds.sh"
for h in $FUZZ_HARNESSES; do
    $MEMCHECK "$TAL_BUILDDIR/tests/fuzz/$h" >"$T/out" 2>&1 || fail "$h exited $?: $(tail -5 "$T/out")"
    seeds=$(fuzz_seeds "$TAL_SRCDIR" "$h")
    [ -n "$seeds" ] || continue
    # shellcheck disable=SC2086 # one path a line, none with blanks
    want=$(find $seeds -type f ! -name '.*' | wc -l)
    [ "$want" -gt 0 ] || fail "$h: no seed files in $seeds"
    # shellcheck disable=SC2086
    $MEMCHECK "$TAL_BUILDDIR/tests/fuzz/$h" $seeds >"$T/out" 2>&1 || fail "$h exited $?: $(tail -5 "$T/out")"
    grep -qx "$h: $want files replayed" "$T/out" ||
        fail "$h did not replay its $want seed files: $(tail -5 "$T/out")"
done
finish
