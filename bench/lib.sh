# Shared by the benchmark scripts; source it after setting fasta and runs, inside the
# work directory. Results go to results.txt there.

warm() { cat "$fasta" >/dev/null; } # BENCH.md: read the input right before each run
can_drop() { [ -w /proc/sys/vm/drop_caches ]; }
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; } # needs root

# measure NAME PREP CMD: runs CMD $runs times after PREP; prints the median wall time and
# the highest peak RSS. Wall time comes from EPOCHREALTIME (microseconds; time -v
# rounds to 10 ms), RSS from /usr/bin/time. CMD's stdout is kept in out.NAME.
measure() {
    local name=$1 prep=$2 cmd=$3 i
    : >"times.$name"
    for i in $(seq "$runs"); do
        eval "$prep"
        start=$EPOCHREALTIME
        /usr/bin/time -f "%M" -o t.out bash -c "$cmd" >"out.$name" 2>"err.$name" ||
            { echo "$name failed: $(tail -3 "err.$name")" >&2; exit 1; }
        end=$EPOCHREALTIME
        echo "$(echo "$end - $start" | bc -l) $(cat t.out)" >>"times.$name"
    done
    sort -g "times.$name" | awk -v n="$name" '{ w[NR] = $1; if ($2 > m) m = $2 } END { printf "%s %.3f %d\n", n, w[int((NR + 1) / 2)], m / 1024 }' | tee -a results.txt
}
