#!/usr/bin/env bash
# reduce across MPI ranks (issue 17): one process, then mpirun -np 2 and -np 4, on one
# store indexed once (as on a cluster's shared storage), at each identity of IDS. Per run:
# wall time (median of RUNS), CPU time of all ranks together (user + system, from each
# rank's /usr/bin/time; mpirun's own is left out), peak RSS of each rank, and what the
# ranks sent each other (talaria's own count, rank 0's last line). Every run's outputs
# are compared byte for byte with the one process's. The ranks get THREADS threads each
# (default 1: on this 2-core machine, -np 2 -t 1 uses the cores one process -t 2 does);
# a one-process run with -t 2 is the same-cores reference.
# Usage: bench/mpi.sh FASTA [WORKDIR]   (env: RUNS=3 NPS="2 4" IDS="90 50" THREADS=1
# TALARIA=path CAP=--max-memory value, e.g. CAP=256M)
set -euo pipefail
fasta=$(realpath "$1")
work=${2:-${TMPDIR:-/tmp}/talaria-bench-mpi}
runs=${RUNS:-3}
nps=${NPS:-2 4}
ids=${IDS:-90 50}
threads=${THREADS:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
talaria=${TALARIA:-$here/build/talaria}
cap=${CAP:+--max-memory $CAP}
for tool in mpirun bc; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install openmpi-bin bc" >&2; exit 1; }
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$work"
cd "$work"
: >results.txt
# each rank under /usr/bin/time, its report in time.RANK
cat >rank.sh <<'EOF'
#!/bin/sh
exec /usr/bin/time -f "%U %S %M" -o "time.${OMPI_COMM_WORLD_RANK:-0}" "$@"
EOF
chmod +x rank.sh

echo "# input $fasta ($(($(stat -c %s "$fasta") / 1048576)) MiB, $(grep -c '^>' "$fasta") records), $runs runs, -t $threads a rank${cap:+, $cap}, $(date -u +%F)" | tee -a results.txt
echo "# name median_wall_s median_cpu_s peak_rss_mib_by_rank sent_bytes messages" | tee -a results.txt
rm -rf db.tal
"$talaria" index -q -i "$fasta" -o db.tal

# one NAME NP T: RUNS runs of reduce as NP ranks (0: one plain process) with T threads
one() {
    local name=$1 np=$2 t=$3 i
    : >"runs.$name"
    for i in $(seq "$runs"); do
        rm -rf "$name" && mkdir -p "$name/tmp"
        cat db.tal/* >/dev/null # warm, as BENCH.md asks
        start=$EPOCHREALTIME
        if [ "$np" -eq 0 ]; then
            (cd "$name" && ../rank.sh "$talaria" reduce -t "$t" $cap --identity "0.$id" \
                -i ../db.tal -o r.fa --clstr r.clstr --tmp-dir tmp) 2>"err.$name" ||
                { echo "$name failed: $(tail -3 "err.$name")" >&2; exit 1; }
        else
            (cd "$name" && mpirun -np "$np" ../rank.sh "$talaria" reduce -t "$t" $cap \
                --identity "0.$id" -i ../db.tal -o r.fa --clstr r.clstr --tmp-dir tmp) \
                2>"err.$name" || { echo "$name failed: $(tail -3 "err.$name")" >&2; exit 1; }
        fi
        end=$EPOCHREALTIME
        cpu=$(cat "$name"/time.* | awk '{ s += $1 + $2 } END { printf "%.2f", s }')
        rss=$(for f in "$name"/time.*; do awk '{ printf "%d", $3 / 1024 }' "$f"; echo; done |
            paste -sd/)
        sent=$(sed -n 's/.*ranks sent \([0-9.]* [KMG]*i*B\) in \([0-9]*\) messages.*/\1 \2/p' \
            "err.$name" | tr ' ' _ | sed 's/_\([0-9]*\)$/ \1/')
        echo "$(echo "$end - $start" | bc -l) $cpu $rss ${sent:-0 0}" >>"runs.$name"
        rm -f "$name"/time.*
    done
    # medians of wall and CPU apart; the last run's RSS and bytes (the same every run)
    wall=$(sort -g "runs.$name" | awk '{ w[NR] = $1 } END { printf "%.3f", w[int((NR + 1) / 2)] }')
    cpu=$(sort -g -k2 "runs.$name" | awk '{ c[NR] = $2 } END { printf "%.2f", c[int((NR + 1) / 2)] }')
    echo "$name $wall $cpu $(tail -1 "runs.$name" | cut -d' ' -f3-)" | tee -a results.txt
}

for id in $ids; do
    one "one_t1_$id" 0 1
    one "one_t2_$id" 0 2
    for np in $nps; do
        one "np${np}_$id" "$np" "$threads"
        for f in r.fa r.deltas.tal r.members.tsv r.clstr; do
            cmp -s "one_t1_$id/$f" "np${np}_$id/$f" ||
                { echo "# DIFFERENT: np $np at 0.$id: $f" | tee -a results.txt; exit 1; }
        done
        echo "# np $np at 0.$id: outputs byte-identical to one process" | tee -a results.txt
    done
    cmp -s "one_t1_$id/r.fa" "one_t2_$id/r.fa" || { echo "# DIFFERENT: -t 2 at 0.$id" | tee -a results.txt; exit 1; }
done
# CPU of all ranks against one process with one thread, and wall against it
awk '$1 ~ /^one_t1_/ { split($1, a, "_"); cpu1[a[3]] = $3; wall1[a[3]] = $2 }
     $1 ~ /^(np|one_t2)/ { n = split($1, a, "_"); id = a[n]; if (id in cpu1)
         printf "# %s: CPU %.2fx one process -t 1, wall %.2fx faster\n", $1, $3 / cpu1[id], wall1[id] / $2 }' \
    results.txt | tee -a results.txt.ratios
cat results.txt.ratios >>results.txt
rm -f results.txt.ratios
