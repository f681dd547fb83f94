# make fuzz: builds every harness with libFuzzer, AddressSanitizer and UBSan (the library's
# sources compiled into each with the same flags) and runs each for FUZZ_SECONDS on a copy
# of its seed corpus; fails naming the harnesses that crashed, hung or leaked.
#   run.sh SRCDIR SOURCE...     (from the build directory; SOURCE relative to SRCDIR or .)
# The Makefile passes FUZZ_CC, FUZZ_SECONDS, FUZZ_CPPFLAGS, FUZZ_DEP_CFLAGS, FUZZ_LIBS,
# FUZZ_SYSCONFDIR and FUZZ_SHELL in the environment. Everything goes to fuzz-out/ in the
# build directory: obj/, bin/, corpus/NAME (the copy, grown by the run), NAME.log and
# crash-NAME-* inputs.
set -u

FLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined"
FLAGS="$FLAGS -fno-sanitize-recover=undefined"
out=fuzz-out

# the object of a library source
object_of() {
    printf '%s/obj/%s.o' "$out" "$(printf '%s' "$1" | sed 's|^\.*/*||; s|/|_|g')"
}

if [ "${1-}" = --compile ]; then
    # one library source (run by xargs, several at a time): recompiled when it or a header
    # it includes is newer than its object
    src=$2
    obj=$(object_of "$src")
    stale=1
    if [ -f "$obj" ] && [ -f "$obj.d" ]; then
        stale=0
        for dep in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$obj.d"); do
            [ "$dep" -nt "$obj" ] && stale=1 && break
        done
    fi
    [ "$stale" = 0 ] && exit 0
    echo "  CC (fuzz) $src"
    # shellcheck disable=SC2086 # flag lists
    exec $FUZZ_CC $FLAGS -fsanitize=fuzzer-no-link $FUZZ_CPPFLAGS \
        "-DTAL_SYSCONFDIR=\"$FUZZ_SYSCONFDIR\"" $FUZZ_DEP_CFLAGS -MMD -MF "$obj.d" \
        -c "$src" -o "$obj"
fi

srcdir=$1
shift
seconds=${FUZZ_SECONDS:-60}
case $seconds in '' | *[!0-9]*)
    echo "make fuzz: FUZZ_SECONDS must be a whole number of seconds, not '$seconds'" >&2
    exit 2
    ;;
esac
if ! echo 'int main(void){return 0;}' >"$out.probe.c" 2>/dev/null ||
    ! $FUZZ_CC -fsanitize=fuzzer-no-link,address,undefined "$out.probe.c" -o "$out.probe" \
        >/dev/null 2>&1; then
    rm -f "$out.probe.c" "$out.probe"
    echo "make fuzz: '$FUZZ_CC' cannot build with -fsanitize=fuzzer,address,undefined;" \
        "set FUZZ_CC to a clang that can (Debian: apt-get install clang)" >&2
    exit 2
fi
rm -f "$out.probe.c" "$out.probe"
. "$srcdir/tests/fuzz/seeds.sh"
mkdir -p "$out/obj" "$out/bin" "$out/corpus" || exit 2

# the library: every .c among the sources, in the source tree or (generated) here
sources=
for s in "$@"; do
    case $s in *.c) ;; *) continue ;; esac
    if [ -f "$s" ] && [ ! -f "$srcdir/$s" ]; then
        sources="$sources $s"
    else
        sources="$sources $srcdir/$s"
    fi
done
jobs=$(nproc 2>/dev/null || echo 2)
export FUZZ_CC FUZZ_CPPFLAGS FUZZ_DEP_CFLAGS FUZZ_SYSCONFDIR
# shellcheck disable=SC2086
printf '%s\n' $sources | xargs -P "$jobs" -n 1 "${FUZZ_SHELL:-/bin/sh}" "$0" --compile || exit 1
objects=
for s in $sources; do objects="$objects $(object_of "$s")"; done

# The harnesses build stores, which fsync: on a tmpfs where there is one, so that hours of
# fuzzing do not wear a disk (FUZZ_TMPDIR names another place).
if [ -n "${FUZZ_TMPDIR-}" ]; then
    export TMPDIR=$FUZZ_TMPDIR
elif [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi
failed=
for h in $FUZZ_HARNESSES; do
    echo "  CCLD (fuzz) $h"
    # shellcheck disable=SC2086
    $FUZZ_CC $FLAGS -fsanitize=fuzzer -DTAL_LIBFUZZER $FUZZ_CPPFLAGS -I"$srcdir/tests" \
        $FUZZ_DEP_CFLAGS "$srcdir/tests/fuzz/$h.c" $objects $FUZZ_LIBS -o "$out/bin/$h" ||
        exit 1
done
for h in $FUZZ_HARNESSES; do
    corpus=$out/corpus/$h
    rm -rf "$corpus"
    mkdir -p "$corpus"
    n=0
    seeds=$(fuzz_seeds "$srcdir" "$h")
    # shellcheck disable=SC2086 # one path a line, none with blanks
    for f in $([ -z "$seeds" ] || find $seeds -type f ! -name '.*'); do
        n=$((n + 1))
        cp "$f" "$corpus/seed$n-$(basename "$f")"
    done
    echo "make fuzz: $h for $seconds s from $n seeds"
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} "$out/bin/$h" \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/crash-$h-" "$corpus" >"$out/$h.log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$h.log")
    if [ "$rc" -ne 0 ]; then
        failed="$failed $h"
        echo "make fuzz: $h FAILED (exit $rc), see $out/$h.log:" >&2
        grep -E 'ERROR|SUMMARY|invariant|Test unit written' "$out/$h.log" | head -8 >&2
    else
        echo "make fuzz: $h ran ${runs:-?} inputs without a crash"
    fi
done
if [ -n "$failed" ]; then
    echo "make fuzz: crashes in:$failed (inputs: $out/crash-*)" >&2
    exit 1
fi
echo "make fuzz: every harness ran $seconds s without a crash"
