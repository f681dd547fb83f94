# memcheck.sh PROGRAM ARGS... : PROGRAM under valgrind's memcheck, for make check-valgrind.
# Exit 99 (a hard error to the test driver) on an invalid access, a use of uninitialised
# memory or a leak (definite, indirect or possible: every block is freed at exit, so any
# is ours). The report goes to stderr, or to a file of its own in $TAL_VALGRIND_LOGS when
# that is set (tests/valgrind/cli.sh reads them). No suppressions: none of the libraries
# (libc, SQLite, zlib, zstd, lz4, parasail, libnuma) has needed one; one would go in a file
# here, each entry saying why it is not our bug.
: "${TAL_SRCDIR:?run through make check-valgrind}" "${TAL_BUILDDIR:?run through make check-valgrind}"
log=
[ -z "${TAL_VALGRIND_LOGS:-}" ] || log="--log-file=$TAL_VALGRIND_LOGS/%p.memcheck"
# valgrind must run the real binary of a libtool wrapper script (a program linked with the
# uninstalled shared library), which libtool --mode=execute finds; it costs a third of a
# second a run, so only for a wrapper
run=
[ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ] || run="$TAL_BUILDDIR/libtool --mode=execute"
# shellcheck disable=SC2086 # run and TAL_VALGRIND_FLAGS (e.g. --track-origins=yes) are words
exec $run valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite,indirect,possible --show-leak-kinds=definite,indirect,possible \
    --num-callers=30 --vgdb=no ${log:+"$log"} ${TAL_VALGRIND_FLAGS:-} "$@"
