# kill -9 at 50 points of `index` and of `reduce`: every output path holds nothing or the
# complete result (the store verifies; reduce's files are byte-identical to an
# uninterrupted run's), and what the killed runs left behind (NAME.tmp-* beside the
# outputs, talaria-reduce-* scratch in --tmp-dir) is gone after the next run, which never
# touches the scratch of a run that is still alive.
. "$(dirname "$0")/lib.sh"

POINTS=50
protein_families 12000 5 p >"$T/in.fa"
head -n 24000 "$T/in.fa" >"$T/small.fa" # reduce's input: 5,000-odd proteins
mkdir -p "$T/ref" "$T/run" "$T/scratch"

now_ms() { date +%s%3N; }

# kill_delay I DURATION_MS : seconds to wait before the I-th kill, spread over the run
# (a run that finishes first counts as no point: the loops go on until POINTS kills)
kill_delay() {
    awk -v i="$1" -v d="$2" -v n="$POINTS" 'BEGIN { printf "%.3f", d * 0.95 * ((i - 1) % n + 1) / n / 1000 }'
}

# fastest_ms CMD... : the shortest of three runs, in milliseconds; nothing if one fails
# (it runs in $(...), where fail would not count)
fastest_ms() {
    best=
    for _ in 1 2 3; do
        t0=$(now_ms)
        "$@" >/dev/null 2>&1 || return 1
        t=$(($(now_ms) - t0))
        [ -z "$best" ] || [ "$t" -lt "$best" ] && best=$t
    done
    echo "$best"
}

# run_and_kill DELAY CMD... : starts CMD in the background, kills it with SIGKILL after
# DELAY seconds; KILLED=1 if the signal ended it, 0 if it had finished (and then it must
# have succeeded)
run_and_kill() {
    delay=$1
    shift
    "$@" >/dev/null 2>"$T/err" &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null # (no "Killed" line from the shell)
    rc=$?
    if [ "$rc" -eq 137 ]; then
        KILLED=1
    else
        KILLED=0
        [ "$rc" -eq 0 ] || fail "'$*' exited $rc without being killed: $(head -c 300 "$T/err")"
    fi
}

# ---- index ----
dur=$(fastest_ms "$TALARIA" index -q --force -i "$T/in.fa" -o "$T/ref/k.tal") ||
    { fail "index of the test data failed"; finish; }
killed=0
complete=0
i=0
: >"$T/leftovers"
while [ "$killed" -lt $POINTS ] && [ "$i" -lt $((POINTS * 2)) ]; do
    i=$((i + 1))
    rm -rf "$T/run/k.tal"
    run_and_kill "$(kill_delay "$i" "$dur")" "$TALARIA" index -q -i "$T/in.fa" -o "$T/run/k.tal"
    killed=$((killed + KILLED))
    if [ -e "$T/run/k.tal" ]; then
        complete=$((complete + 1))
        "$TALARIA" verify "$T/run/k.tal" >/dev/null 2>"$T/err" ||
            fail "index killed at point $i left a store that does not verify: $(head -c 300 "$T/err")"
    fi
    ls -d "$T"/run/k.tal.tmp-* >>"$T/leftovers" 2>/dev/null
done
echo "index: $killed of $i runs killed, $complete left a complete store (run: $dur ms)"
[ "$killed" -ge $POINTS ] || fail "index: only $killed of $i runs were killed"
left=$(sort -u "$T/leftovers" | wc -l)
[ "$left" -gt 0 ] || fail "index: no killed run left a temporary behind (the test tests nothing)"
"$TALARIA" index -q --force -i "$T/in.fa" -o "$T/run/k.tal" || fail "index after the kills failed"
"$TALARIA" verify "$T/run/k.tal" >/dev/null || fail "the store built after the kills does not verify"
ls -d "$T"/run/k.tal.tmp-* >/dev/null 2>&1 &&
    fail "index: temporaries left by killed runs remain after the next run: $(ls -d "$T"/run/k.tal.tmp-*)"
echo "index: $left temporary directories left by killed runs, removed by the next run"

# ---- reduce ----
REDUCE="$TALARIA reduce -q -t 2 -i $T/small.fa -o $T/run/r.fa --clstr $T/run/r.clstr --tmp-dir $T/scratch"
OUTPUTS="r.fa r.deltas.tal r.members.tsv r.clstr"
# the reference run writes the same paths (the delta store records the FASTA's), then moves
dur=$(fastest_ms $REDUCE --force) || { fail "reduce of the test data failed"; finish; }
for f in $OUTPUTS; do mv "$T/run/$f" "$T/ref/$f"; done
killed=0
partial=0
i=0
: >"$T/leftovers"
while [ "$killed" -lt $POINTS ] && [ "$i" -lt $((POINTS * 2)) ]; do
    i=$((i + 1))
    for f in $OUTPUTS; do rm -f "$T/run/$f"; done
    run_and_kill "$(kill_delay "$i" "$dur")" $REDUCE
    killed=$((killed + KILLED))
    present=0
    for f in $OUTPUTS; do
        [ -e "$T/run/$f" ] || continue
        present=$((present + 1))
        cmp -s "$T/ref/$f" "$T/run/$f" ||
            fail "reduce killed at point $i left $f different from an uninterrupted run's"
    done
    [ "$present" -gt 0 ] && [ "$present" -lt 4 ] && partial=$((partial + 1))
    ls -d "$T"/scratch/talaria-reduce-* "$T"/run/*.tmp-* >>"$T/leftovers" 2>/dev/null
    if [ "$KILLED" = 0 ] && [ "$present" -ne 4 ]; then
        fail "reduce finished at point $i but left $present of the 4 outputs"
    fi
done
echo "reduce: $killed of $i runs killed, $partial between the outputs' renames (run: $dur ms)"
[ "$killed" -ge $POINTS ] || fail "reduce: only $killed of $i runs were killed"
left=$(sort -u "$T/leftovers" | wc -l)
[ "$left" -gt 0 ] || fail "reduce: no killed run left a scratch directory or temporary behind (the test tests nothing)"
for f in $OUTPUTS; do rm -f "$T/run/$f"; done
$REDUCE || fail "reduce after the kills failed"
for f in $OUTPUTS; do
    cmp -s "$T/ref/$f" "$T/run/$f" || fail "reduce after the kills: $f differs"
done
ls -d "$T"/scratch/talaria-reduce-* "$T"/run/*.tmp-* >/dev/null 2>&1 &&
    fail "reduce: what killed runs left remains after the next run: $(ls -d "$T"/scratch/* "$T"/run/*.tmp-* 2>/dev/null)"
echo "reduce: $left scratch directories and temporary files left by killed runs, removed by the next run"

# ---- a live run's scratch is not touched ----
# A reduction stopped (SIGSTOP) with its scratch directory in place; another reduce with
# the same --tmp-dir runs to the end; the stopped one then resumes and finishes.
for f in $OUTPUTS; do rm -f "$T/run/$f"; done
$REDUCE >/dev/null 2>"$T/err_a" &
a=$!
for _ in $(seq 1 500); do
    ls -d "$T"/scratch/talaria-reduce-* >/dev/null 2>&1 && break
    sleep 0.01
done
kill -STOP "$a"
live=$(ls -d "$T"/scratch/talaria-reduce-* 2>/dev/null)
[ -n "$live" ] || fail "the first reduction made no scratch directory in 5 s"
mkdir -p "$T/other"
(cd "$T/other" && "$TALARIA" reduce -q -i "$DATA/small.fa" -o o.fa --tmp-dir "$T/scratch") ||
    fail "a second reduce beside a stopped one failed"
for d in $live; do
    [ -d "$d" ] || fail "a second reduce removed $d, the scratch of a live (stopped) run"
done
kill -CONT "$a"
wait "$a" || fail "the stopped reduction failed after it resumed: $(head -c 300 "$T/err_a")"
for f in $OUTPUTS; do
    cmp -s "$T/ref/$f" "$T/run/$f" || fail "the stopped reduction's $f differs after it resumed"
done

# ---- a temporary held by a live process is left alone; one nobody holds goes ----
if command -v flock >/dev/null; then
    mkdir -p "$T/held"
    echo partial >"$T/held/o.fa.tmp-Held01"
    echo partial >"$T/held/o.fa.tmp-Gone01"
    echo mine >"$T/held/o.fa.tmp-not_ours" # not a name talaria makes: kept
    flock "$T/held/o.fa.tmp-Held01" sleep 30 &
    holder=$!
    sleep 0.2
    (cd "$T/held" && "$TALARIA" reduce -q -i "$DATA/small.fa" -o o.fa --tmp-dir "$T/scratch") ||
        fail "reduce beside held temporaries failed"
    [ -e "$T/held/o.fa.tmp-Held01" ] || fail "a temporary locked by a live process was removed"
    [ -e "$T/held/o.fa.tmp-Gone01" ] && fail "an unlocked temporary beside the output was kept"
    [ -e "$T/held/o.fa.tmp-not_ours" ] || fail "a file not named like a talaria temporary was removed"
    kill "$holder" 2>/dev/null
    wait "$holder" 2>/dev/null
fi
finish
