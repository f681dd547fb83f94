# --max-memory, --low-memory, --monitor-memory and --memory-report of index and reduce on
# data made here: caps below the smallest workable one (exit 4 naming a cap that works,
# nothing left), capped and spilling runs give the same bytes as plain ones, spills and a
# full --tmp-dir leave nothing behind, and bad values are usage errors.
. "$(dirname "$0")/lib.sh"
export SOURCE_DATE_EPOCH=1

# ---- data ----
# 20,000 proteins of 100-300 residues in families of 1-16 (a random base; members with
# 1-12% substitutions). 20 sketch hashes x 8 bytes a record exceed the 2 MiB the
# --low-memory sorters hold, so they spill; the residues alone exceed the 2 MiB tmpfs of
# section 5. A Park-Miller generator, so every awk writes the same file.
protein_families 20000 48271 mc >"$T/in.fa"
n_in=$(grep -c '^>' "$T/in.fa")
residues=$(awk '!/^>/ { r += length($0) } END { print r + 0 }' "$T/in.fa")
[ $((n_in * 20 * 8)) -gt $((2 << 20)) ] && [ "$residues" -gt $((2 << 20)) ] ||
    fail "the generated input is too small to spill: $n_in records, $residues residues"

mkdir -p "$T/scratch" "$T/spill" "$T/cap4" "$T/usage"

# in_dir DIR CMD... : CMD run from DIR (the delta store records the reduced FASTA's path
# as given, so runs compared byte for byte use the same relative -o in different dirs)
in_dir() {
    (cd "$1" && shift && "$@")
}

# named_cap : the workable cap the last command's stderr names, as NNNM
named_cap() {
    grep -oE -- '--max-memory [0-9]+M' "$T/err" | tail -n 1 | sed 's/^--max-memory //'
}

# nothing_left DIR WHAT : no output, temporary file or directory in DIR
nothing_left() {
    [ -z "$(ls -A "$1")" ] || fail "$2 left $(ls -A "$1" | tr '\n' ' ')in $1"
    rm -rf "${1:?}"/* "${1:?}"/.[!.]*
}

# same_reduction DIR1 DIR2 WHAT : the two reductions (red.*) are byte-identical
same_reduction() {
    for f in red.fasta red.deltas.tal red.members.tsv; do
        if [ ! -s "$1/$f" ] || [ ! -s "$2/$f" ]; then
            fail "$3: $f is missing or empty"
        elif ! cmp -s "$1/$f" "$2/$f"; then
            fail "$3: $f differs ($(cmp "$1/$f" "$2/$f" 2>&1 | head -1))"
        fi
    done
}

# json_top KEY FILE : the number KEY has at the top level of the object in FILE
json_top() {
    awk -v key="$1" 'BEGIN { RS = "\001" }
    {
        n = length($0); depth = 0
        for (i = 1; i <= n; i++) {
            c = substr($0, i, 1)
            if (c == "\"") {
                for (j = i + 1; j <= n && substr($0, j, 1) != "\""; j++) if (substr($0, j, 1) == "\\") j++
                name = substr($0, i + 1, j - i - 1); i = j
                if (depth == 1 && name == key && match(substr($0, i + 1), /^[ \t\n]*:[ \t\n]*-?[0-9][0-9.eE+-]*/)) {
                    v = substr($0, i + 1 + RSTART - 1, RLENGTH); sub(/^[^:]*:[ \t\n]*/, "", v)
                    print v; exit
                }
            } else if (c == "{" || c == "[") depth++
            else if (c == "}" || c == "]") depth--
        }
    }' "$2"
}

# Spill files are unnamed (O_TMPFILE, or named and unlinked at once), so only a trace of
# the run shows them: traced LOG CMD... records in LOG the files CMD opens (LeakSanitizer
# cannot run under ptrace, so an ASan build checks leaks in the untraced runs only);
# --seccomp-bpf, where strace has it, stops the run only at the calls traced (3 s -> 0.9 s)
have_strace=0 strace_filter=
if command -v strace >/dev/null 2>&1 && strace -f -qq -o /dev/null true 2>/dev/null; then
    have_strace=1
    strace --seccomp-bpf -f -qq -e trace=openat -o /dev/null true 2>/dev/null && strace_filter=--seccomp-bpf
fi
traced() {
    log=$1
    shift
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        strace $strace_filter -f -qq -s 4096 -e trace=open,openat -o "$log" "$@"
}
# spills LOG DIR : how many unnamed or at-once-unlinked files the traced run opened in DIR
spills() {
    awk -v dir="\"$2/" 'index($0, dir) && (index($0, "O_TMPFILE") || index($0, "talaria-spill-")) { n++ }
        END { print n + 0 }' "$1"
}

# ---- 1: a cap below the smallest workable one is exit 4, names a cap, leaves nothing ----
expect_exit 4 "$TALARIA" index --max-memory 1M -i "$T/in.fa" -o "$T/cap4/db.tal" &&
    expect_stderr "--max-memory"
index_cap=$(named_cap)
[ -n "$index_cap" ] || fail "index --max-memory 1M names no cap as --max-memory NNNM: $(head -c 400 "$T/err")"
nothing_left "$T/cap4" "index --max-memory 1M"
for t in 1 2; do
    expect_exit 4 "$TALARIA" reduce -t $t --max-memory 1M -i "$T/in.fa" -o "$T/cap4/red.fasta" --tmp-dir "$T/scratch"
    cap=$(named_cap)
    [ -n "$cap" ] || fail "reduce -t $t --max-memory 1M names no cap as --max-memory NNNM: $(head -c 400 "$T/err")"
    eval "reduce_cap_t$t=\$cap"
    nothing_left "$T/cap4" "reduce -t $t --max-memory 1M"
    nothing_left "$T/scratch" "reduce -t $t --max-memory 1M (in --tmp-dir)"
done
# the later sections need some cap; the failure above is already counted
: "${index_cap:=256M}" "${reduce_cap_t1:=256M}" "${reduce_cap_t2:=256M}"
for cap in "$index_cap" "$reduce_cap_t1" "$reduce_cap_t2"; do
    [ "${cap%M}" -gt 1 ] || fail "the cap named after --max-memory 1M is $cap, not above 1M"
done
echo "memcap: smallest caps named: index $index_cap, reduce -t 1 $reduce_cap_t1, -t 2 $reduce_cap_t2"

# ---- 2, 3: the named caps work and give the same bytes as no cap ----
# index: no cap, --max-memory 200M with the monitor, the named cap
mkdir -p "$T/index"
expect_exit 0 "$TALARIA" index -q -t 2 -i "$T/in.fa" -o "$T/index/plain.tal"
expect_exit 0 "$TALARIA" index -t 2 --max-memory 200M --monitor-memory -i "$T/in.fa" -o "$T/index/cap200.tal" &&
    { grep -q '^talaria index: memory final' "$T/err" ||
        fail "index --monitor-memory printed no 'talaria index: memory final' line: $(head -c 400 "$T/err")"; }
expect_exit 0 "$TALARIA" index -q -t 2 --max-memory "$index_cap" -i "$T/in.fa" -o "$T/index/named.tal"
for store in cap200 named; do
    [ -s "$T/index/$store.tal/residues" ] || { fail "index ($store) wrote no store"; continue; }
    diff -r "$T/index/plain.tal" "$T/index/$store.tal" >"$T/problems" 2>&1 ||
        fail "index with and without --max-memory ($store) differ: $(head -3 "$T/problems")"
done

# reduce: plain -t 2
mkdir -p "$T/plain" "$T/named" "$T/capped" "$T/capped1" "$T/traced_plain" "$T/traced_capped"
expect_exit 0 in_dir "$T/plain" "$TALARIA" reduce -q -t 2 -i ../in.fa -o red.fasta \
    --tmp-dir "$T/scratch"
nothing_left "$T/scratch" "reduce -t 2 (in --tmp-dir)"
# the cap named for -t 2, nothing else changed
expect_exit 0 in_dir "$T/named" "$TALARIA" reduce -q -t 2 --max-memory "$reduce_cap_t2" -i ../in.fa -o red.fasta \
    --tmp-dir "$T/scratch"
same_reduction "$T/plain" "$T/named" "reduce -t 2 --max-memory $reduce_cap_t2 against no cap"
nothing_left "$T/scratch" "reduce --max-memory $reduce_cap_t2 (in --tmp-dir)"

# ---- 3, 4: capped, smallest sort buffers, monitored and reported; spills into a fresh
# --tmp-dir that is empty afterwards ----
expect_exit 0 in_dir "$T/capped" "$TALARIA" reduce -t 2 --max-memory "$reduce_cap_t2" \
    --low-memory --monitor-memory=0.1 --memory-report ../capped.json -i ../in.fa -o red.fasta --tmp-dir "$T/spill"
cp "$T/err" "$T/capped.err"
same_reduction "$T/plain" "$T/capped" "reduce -t 2 --max-memory $reduce_cap_t2 --low-memory against no cap"
nothing_left "$T/spill" "reduce --max-memory $reduce_cap_t2 --low-memory (in --tmp-dir)"
# the same two runs traced: --low-memory opens more spill files than no cap does
if [ "$have_strace" -eq 1 ]; then
    expect_exit 0 in_dir "$T/traced_plain" traced "$T/plain.trace" "$TALARIA" reduce -q -t 2 -i ../in.fa \
        -o red.fasta --tmp-dir "$T/scratch"
    expect_exit 0 in_dir "$T/traced_capped" traced "$T/capped.trace" "$TALARIA" reduce -q -t 2 \
        --max-memory "$reduce_cap_t2" --low-memory -i ../in.fa -o red.fasta --tmp-dir "$T/spill"
    same_reduction "$T/plain" "$T/traced_capped" "reduce --max-memory $reduce_cap_t2 --low-memory under strace against no cap"
    nothing_left "$T/scratch" "reduce -t 2 under strace (in --tmp-dir)"
    nothing_left "$T/spill" "reduce --max-memory $reduce_cap_t2 --low-memory under strace (in --tmp-dir)"
    plain_spills=$(spills "$T/plain.trace" "$T/scratch")
    capped_spills=$(spills "$T/capped.trace" "$T/spill")
    [ "$capped_spills" -gt "$plain_spills" ] ||
        fail "reduce --low-memory opened $capped_spills spill files in --tmp-dir, no more than the plain run's $plain_spills: the sorters did not spill"
    echo "memcap: spill files opened: plain $plain_spills, --low-memory $capped_spills"
else
    echo "memcap: SKIP the check that --low-memory spills: strace cannot run here"
fi

# the monitor: lines 'talaria reduce: memory ...', the last one 'memory final'; a run of
# half a second or more has periodic lines at 0.1 s besides
monitor_lines=$(grep -c '^talaria reduce: memory ' "$T/capped.err")
grep '^talaria reduce: memory ' "$T/capped.err" | tail -n 1 | grep -q '^talaria reduce: memory final' ||
    fail "reduce --monitor-memory: no 'talaria reduce: memory final' line last: $(head -c 400 "$T/capped.err")"
seconds=$(sed -n 's/^  \([0-9.]*\) s, peak RSS.*/\1/p' "$T/capped.err")
if [ -z "$seconds" ]; then
    fail "reduce printed no '... s, peak RSS' summary: $(head -c 400 "$T/capped.err")"
elif awk -v s="$seconds" 'BEGIN { exit !(s >= 0.5) }' && [ "$monitor_lines" -lt 2 ]; then
    fail "reduce --monitor-memory=0.1 ran $seconds s but printed $monitor_lines memory line(s)"
fi
# the report: the cap in bytes, a peak resident set within it, a tracked peak, samples
if [ -s "$T/capped.json" ]; then
    cap_bytes=$((${reduce_cap_t2%M} * 1048576))
    json_cap=$(json_top cap "$T/capped.json")
    vmhwm=$(json_top vmhwm "$T/capped.json")
    tracked_peak=$(json_top tracked_peak "$T/capped.json")
    gap=$(json_top gap_fraction "$T/capped.json")
    [ "$json_cap" = "$cap_bytes" ] || fail "--memory-report: cap '$json_cap', expected $cap_bytes"
    if sanitized || under_valgrind; then
        awk -v v="$vmhwm" 'BEGIN { exit !(v > 0) }' || fail "--memory-report: vmhwm '$vmhwm' is not positive"
    else
        awk -v v="$vmhwm" -v c="$cap_bytes" 'BEGIN { exit !(v > 0 && v <= c) }' ||
            fail "--memory-report: vmhwm '$vmhwm' is not in (0, $cap_bytes]"
    fi
    awk -v v="$tracked_peak" 'BEGIN { exit !(v > 0) }' || fail "--memory-report: tracked_peak '$tracked_peak' is not positive"
    [ -n "$gap" ] || fail "--memory-report has no top-level gap_fraction"
    grep -q '"samples"' "$T/capped.json" && grep -q '"seconds"' "$T/capped.json" ||
        fail "--memory-report has no samples: $(head -c 300 "$T/capped.json")"
else
    fail "reduce --memory-report ../capped.json wrote nothing"
fi

# one thread, its own named cap, streamed: the same bytes as two threads without a cap
expect_exit 0 in_dir "$T/capped1" "$TALARIA" reduce -q -t 1 --max-memory "$reduce_cap_t1" --low-memory --stream \
    -i ../in.fa -o red.fasta --tmp-dir "$T/spill"
same_reduction "$T/plain" "$T/capped1" "reduce -t 1 --max-memory $reduce_cap_t1 --low-memory --stream against -t 2 without a cap"
nothing_left "$T/spill" "reduce -t 1 --max-memory $reduce_cap_t1 --low-memory (in --tmp-dir)"

# -r keeps its passes' evidence within the cap (one thread, its named cap, the smallest
# sort buffers): the same bytes as two threads without a cap, the peak within the cap
mkdir -p "$T/ratio" "$T/ratio_capped"
expect_exit 0 in_dir "$T/ratio" "$TALARIA" reduce -q -t 2 -r 0.5 -i ../in.fa -o red.fasta --tmp-dir "$T/scratch"
nothing_left "$T/scratch" "reduce -t 2 -r 0.5 (in --tmp-dir)"
expect_exit 0 in_dir "$T/ratio_capped" "$TALARIA" reduce -q -t 1 -r 0.5 --max-memory "$reduce_cap_t1" --low-memory \
    --memory-report ../ratio.json -i ../in.fa -o red.fasta --tmp-dir "$T/spill"
same_reduction "$T/ratio" "$T/ratio_capped" "reduce -t 1 -r 0.5 --max-memory $reduce_cap_t1 --low-memory against -t 2 without a cap"
nothing_left "$T/spill" "reduce -t 1 -r 0.5 --max-memory $reduce_cap_t1 --low-memory (in --tmp-dir)"
if ! sanitized && ! under_valgrind; then
    vmhwm=$(json_top vmhwm "$T/ratio.json")
    awk -v v="$vmhwm" -v c="$((${reduce_cap_t1%M} * 1048576))" 'BEGIN { exit !(v > 0 && v <= c) }' ||
        fail "reduce -r 0.5 --max-memory $reduce_cap_t1: vmhwm '$vmhwm' is not within the cap"
fi

# ---- 4b: under the cap when the headers are larger than it ----
# Headers read through the store's mapping stay resident until released: reduce --clstr
# read its members' headers from all over the store (308 MiB under a 154M cap on 2.1M
# records), the input check and the outputs released them every so many records however
# long, and index queued 16,384 a catalog batch. Here 6,000 bytes more a header: 120 MB of
# headers on 20,000 records, more than the caps named.
if ! sanitized && ! under_valgrind; then
    pad=$(printf '%06000d' 0)
    awk -v pad="$pad" '/^>/ { print $0 " " pad; next } { print }' "$T/in.fa" >"$T/long.fa"
    mkdir -p "$T/long"
    # within_cap WHAT CAP JSON : the run's VmHWM is within CAP, which is less than the headers
    within_cap() {
        vmhwm=$(json_top vmhwm "$3")
        awk -v v="$vmhwm" -v c="$((${2%M} * 1048576))" 'BEGIN { exit !(v > 0 && v <= c && c < 120000000) }' ||
            fail "$1 --max-memory $2 of 120 MB of headers: vmhwm '$vmhwm' is not within the cap"
    }
    expect_exit 4 "$TALARIA" index --max-memory 1M -i "$T/long.fa" -o "$T/cap4/db.tal"
    long_cap=$(named_cap)
    expect_exit 0 "$TALARIA" index -q -t 2 --max-memory "${long_cap:-1M}" --memory-report "$T/long.json" \
        -i "$T/long.fa" -o "$T/long/db.tal"
    within_cap index "${long_cap:-1M}" "$T/long.json"
    # from the store, where reduce's own phases make its cap
    expect_exit 4 "$TALARIA" reduce -t 2 --max-memory 1M -i "$T/long/db.tal" -o "$T/cap4/red.fasta" --tmp-dir "$T/scratch"
    long_cap=$(named_cap)
    for opts in "--clstr red.clstr" "--same-taxon"; do
        # shellcheck disable=SC2086 # opts are words
        expect_exit 0 in_dir "$T/long" "$TALARIA" reduce -q -f -t 2 --max-memory "${long_cap:-1M}" $opts \
            --memory-report ../long.json -i db.tal -o red.fasta --tmp-dir "$T/scratch"
        within_cap "reduce $opts" "${long_cap:-1M}" "$T/long.json"
    done
    [ "$(grep -c '^>Cluster' "$T/long/red.clstr")" -lt "$n_in" ] || fail "--clstr: no cluster has a member"
    nothing_left "$T/scratch" "reduce of long headers (in --tmp-dir)"
    rm -rf "$T/long" "$T/long.fa"
fi

# ---- 5: a full --tmp-dir is exit 1 naming it, and leaves nothing there or at -o ----
full="$T/full"
mkdir -p "$full" "$T/fullout"
trap 'umount "$full" 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 1' HUP INT TERM
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=2m tmpfs "$full" 2>/dev/null; then
    for opts in "-t 2" "-t 2 --max-memory $reduce_cap_t2 --low-memory"; do
        # shellcheck disable=SC2086 # opts are words
        expect_exit 1 "$TALARIA" reduce $opts -i "$T/in.fa" -o "$T/fullout/red.fasta" --tmp-dir "$full" &&
            expect_stderr "$full"
        nothing_left "$T/fullout" "reduce $opts with a full --tmp-dir"
        nothing_left "$full" "reduce $opts with a full --tmp-dir (in the --tmp-dir)"
    done
    umount "$full" || fail "cannot unmount the tmpfs at $full"
else
    echo "memcap: SKIP the full --tmp-dir case: a 2 MiB tmpfs cannot be mounted here (needs root, outside a restricted container)"
fi

# ---- 6: bad values are usage errors and create nothing ----
for cmd in index reduce; do
    if [ $cmd = index ]; then out="$T/usage/db.tal"; else out="$T/usage/red.fasta"; fi
    for value in abc 0; do
        expect_exit 2 "$TALARIA" $cmd --max-memory $value -i "$T/in.fa" -o "$out" && expect_stderr "--max-memory"
    done
    expect_exit 2 "$TALARIA" $cmd --monitor-memory=0 -i "$T/in.fa" -o "$out" && expect_stderr "--monitor-memory"
done
nothing_left "$T/usage" "usage errors"
finish
