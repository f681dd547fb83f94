# --max-memory with --compress: the compressors' contexts (about 49 MiB each for zstd at
# level 19 with 4 MiB chunks) are counted by the plan and reserved from the budget, so
# the cap that exit 4 names holds: a run under it stays within it as the kernel measures
# it, and writes the same store as a run without a cap.
. "$(dirname "$0")/lib.sh"
export SOURCE_DATE_EPOCH=1

# ---- data ----
# 90,000 proteins of 100-300 residues in families of 1-16 (a random base; members with
# 1-12% substitutions), about 21 MB: five 4 MiB chunks, so both of -t 2's contexts work
# (level 19 compresses about 1.5 MB/s a thread). A Park-Miller generator, so every awk
# writes the same file.
protein_families 90000 16807 cz >"$T/in.fa"
residues=$(awk '!/^>/ { r += length($0) } END { print r + 0 }' "$T/in.fa")
[ "$residues" -gt $((4 * 4 << 20)) ] ||
    fail "the generated input has $residues residues, not more than four 4 MiB chunks"
mkdir -p "$T/cap4" "$T/stores"

# named_cap : the workable cap the last command's stderr names, as NNNM
named_cap() {
    grep -oE -- '--max-memory [0-9]+M' "$T/err" | tail -n 1 | sed 's/^--max-memory //'
}

# smallest_cap ARGS... : the cap that index ARGS names under --max-memory 1M, leaving nothing
smallest_cap() {
    expect_exit 4 "$TALARIA" index "$@" --max-memory 1M -i "$T/in.fa" -o "$T/cap4/db.tal" || return
    [ -z "$(ls -A "$T/cap4")" ] || fail "index $* --max-memory 1M left $(ls -A "$T/cap4" | tr '\n' ' ')"
    named_cap
}

# measured NAME ARGS... : index ARGS into $T/stores/NAME.tal, exit 0 expected; PEAK_KIB is
# the run's peak resident set (ru_maxrss from /usr/bin/time, else the VmHWM talaria prints)
measured() {
    name=$1
    shift
    PEAK_KIB=
    if [ -x /usr/bin/time ]; then
        expect_exit 0 /usr/bin/time -o "$T/peak" -f %M "$TALARIA" index "$@" -i "$T/in.fa" \
            -o "$T/stores/$name.tal" || return
        PEAK_KIB=$(tail -n 1 "$T/peak")
    else
        expect_exit 0 "$TALARIA" index "$@" -i "$T/in.fa" -o "$T/stores/$name.tal" || return
        PEAK_KIB=$(sed -n 's/.*; peak RSS \([0-9.]*\) \([KMG]\)iB$/\1 \2/p' "$T/err" |
            awk '{ print int($1 * ($2 == "K" ? 1 : $2 == "M" ? 1024 : 1048576) + 0.999) }')
    fi
    [ -n "$PEAK_KIB" ] || fail "index $*: no peak resident set measured"
}

# capped_like_plain LABEL CAP ARGS... : ARGS without a cap and under CAP give the same
# store, and the capped run's peak resident set is within CAP
capped_like_plain() {
    label=$1 cap=$2
    shift 2
    measured "$label.plain" "$@"
    plain_kib=${PEAK_KIB:-0}
    measured "$label.capped" "$@" --max-memory "$cap" || return
    if sanitized || under_valgrind; then
        echo "memcap_compress: $label: SKIP the peak check under AddressSanitizer or valgrind"
    elif [ -n "$PEAK_KIB" ] && [ "$PEAK_KIB" -gt $((${cap%M} * 1024)) ]; then
        fail "index $* --max-memory $cap peaked at $PEAK_KIB KiB, over the cap"
    fi
    diff -r "$T/stores/$label.plain.tal" "$T/stores/$label.capped.tal" >"$T/problems" 2>&1 ||
        fail "index $* with and without --max-memory $cap differ: $(head -3 "$T/problems")"
    echo "memcap_compress: $label: cap named $cap; peak RSS $((PEAK_KIB / 1024)) MiB under it, $((plain_kib / 1024)) MiB without"
}

# ---- zstd level 19 at -t 2: two contexts of about 49 MiB ----
cap19=$(smallest_cap --compress zstd --level 19 -t 2)
cap1=$(smallest_cap --compress zstd --level 1 -t 2)
if [ -z "$cap19" ] || [ -z "$cap1" ]; then
    fail "index --compress zstd --max-memory 1M names no cap (level 19 '$cap19', level 1 '$cap1')"
else
    # the contexts are in the plan: level 19's cap exceeds level 1's by both of them
    [ $((${cap19%M} - ${cap1%M})) -ge 96 ] ||
        fail "the cap named for zstd level 19 at -t 2 ($cap19) is not 2 x 48 MiB above level 1's ($cap1)"
    # and level 1's cap is refused up front, not exceeded
    # (the cap counts the process's resident set at start, which varies by some KiB from
    # run to run, under AddressSanitizer more: a need close to a whole MiB may be named
    # one MiB apart)
    if expect_exit 4 "$TALARIA" index --compress zstd --level 19 -t 2 --max-memory "$cap1" \
        -i "$T/in.fa" -o "$T/cap4/db.tal"; then
        named=$(named_cap)
        d=$((${named%M} - ${cap19%M}))
        [ -n "$named" ] && [ "$d" -ge -1 ] && [ "$d" -le 1 ] ||
            fail "--max-memory $cap1 names '$named', not $cap19: $(head -c 300 "$T/err")"
    fi
    [ -z "$(ls -A "$T/cap4")" ] ||
        fail "index --level 19 --max-memory $cap1 left $(ls -A "$T/cap4" | tr '\n' ' ')"
    capped_like_plain zstd19 "$cap19" --compress zstd --level 19 -t 2
fi

# ---- lz4 HC in the parsing thread (-t 1): one context of 256 KiB ----
cap_lz4=$(smallest_cap --compress lz4 --level 9 -t 1)
if [ -z "$cap_lz4" ]; then
    fail "index --compress lz4 --level 9 -t 1 --max-memory 1M names no cap"
else
    capped_like_plain lz4hc "$cap_lz4" --compress lz4 --level 9 -t 1
fi

finish
