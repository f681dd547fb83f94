# The fuzz harnesses replay their built-in inputs without crashing.
. "$(dirname "$0")/lib.sh"
for h in fuzz_fasta fuzz_store; do
    "$TAL_BUILDDIR/tests/fuzz/$h" >"$T/out" 2>&1 || fail "$h exited $?: $(tail -5 "$T/out")"
done
finish
