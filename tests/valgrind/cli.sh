# cli.sh SHELL TEST.sh : a CLI test, run by SHELL (make's, as for make check), with talaria
# and the other programs it runs (fuzz harnesses, toml_dump, the example program) under
# memcheck (tests/valgrind/memcheck.sh), for make check-valgrind. Each run's report goes to
# a file of its own; the test fails when any of them reports an error, even one whose exit
# code the test does not look at, and the reports are printed into the test's log.
: "${TAL_SRCDIR:?run through make check-valgrind}" "${TAL_BUILDDIR:?run through make check-valgrind}"
shell=$1
shift
name=$(basename "$1" .sh)
TAL_VALGRIND_LOGS="$TAL_BUILDDIR/tests/tmp/memcheck.$name.$$"
rm -rf "$TAL_VALGRIND_LOGS"
mkdir -p "$TAL_VALGRIND_LOGS" || exit 99
# TALARIA is run as a program ("$TALARIA" ..., sh -c "'$TALARIA' ..."): a script of one line
TAL_MEMCHECK="$shell $TAL_SRCDIR/tests/valgrind/memcheck.sh"
printf '#!/bin/sh\nexec "%s" "%s" "%s" "$@"\n' "$shell" "$TAL_SRCDIR/tests/valgrind/memcheck.sh" \
    "$TALARIA" >"$TAL_VALGRIND_LOGS/talaria"
chmod +x "$TAL_VALGRIND_LOGS/talaria"
TALARIA="$TAL_VALGRIND_LOGS/talaria"
TAL_VALGRIND=1
export TALARIA TAL_MEMCHECK TAL_VALGRIND TAL_VALGRIND_LOGS

"$shell" "$1"
rc=$?

runs=0
bad=0
for log in "$TAL_VALGRIND_LOGS"/*.memcheck; do
    [ -f "$log" ] || continue
    runs=$((runs + 1))
    # a run killed by the test (SIGKILL) has no summary and no error
    if grep -q 'ERROR SUMMARY: [1-9]' "$log"; then
        bad=$((bad + 1))
        echo "memcheck: errors in $(sed -n 's/^==[0-9]*== Command: //p' "$log" | head -1):"
        cat "$log"
    fi
    grep -h 'WARNING: unhandled\|Valgrind.*cannot\|valgrind: ' "$log" | sed 's/^/memcheck: /'
done
echo "memcheck: $runs runs, $bad with errors"
rm -rf "$TAL_VALGRIND_LOGS"
[ "$bad" -eq 0 ] || exit 1
exit $rc
