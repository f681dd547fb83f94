#!/usr/bin/env bash
# Reduction benchmark: talaria reduce against cd-hit and mmseqs easy-linclust at identity
# 0.9, and against linclust at 0.5 (cd-hit cannot run 0.5 with -n 5), on the same FASTA in
# the same run, 2 threads each. Median wall of RUNS runs, peak RSS from /usr/bin/time,
# references = records in each tool's representative FASTA; then reconstruct checks that
# the deltas are lossless. Usage: bench/reduce.sh FASTA [WORKDIR]
# (env: RUNS=1 TALARIA=path PEERS=1 LOSSLESS=1 IDS="90 50"; PEERS=0 runs talaria alone,
# IDS=50 only the identity 0.5 runs)
set -euo pipefail
fasta=$(realpath "$1")
work=${2:-${TMPDIR:-/tmp}/talaria-bench-reduce}
runs=${RUNS:-1}
peers=${PEERS:-1}
lossless=${LOSSLESS:-1}
ids=${IDS:-90 50}
here=$(cd "$(dirname "$0")/.." && pwd)
talaria=${TALARIA:-$here/build/talaria}
mkdir -p "$work"
cd "$work"
tools="bc"
[ "$peers" = 1 ] && tools="$tools cd-hit mmseqs"
for tool in $tools; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install cd-hit mmseqs2 bc" >&2; exit 1; }
done
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/bench/lib.sh"
: >results.txt
refs() { echo "refs $1 $(grep -c '^>' "$2")" | tee -a results.txt; }

size_mb=$(($(stat -c %s "$fasta") / 1048576))
echo "# input $fasta ($size_mb MiB, $(grep -c '^>' "$fasta") records), $runs runs, $(date -u +%F)" | tee -a results.txt
echo "# name median_wall_s peak_rss_mb; refs name references" | tee -a results.txt

for id in $ids; do
    measure "talaria_$id" "rm -rf r$id.fasta r$id.deltas.tal r$id.members.tsv; warm" \
        "'$talaria' reduce -q -t 2 --identity 0.$id -i '$fasta' -o r$id.fasta -m r$id.deltas.tal --membership r$id.members.tsv"
    refs "talaria_$id" "r$id.fasta"
    [ "$peers" = 1 ] || continue
    if [ "$id" = 90 ]; then
        measure cdhit_90 "rm -f c90 c90.clstr; warm" "cd-hit -i '$fasta' -o c90 -c 0.9 -n 5 -T 2 -M 0 -d 0"
        refs cdhit_90 c90
    fi
    measure "linclust_$id" "rm -rf l${id}_* tmp$id; warm" \
        "mmseqs easy-linclust '$fasta' l$id tmp$id --min-seq-id 0.$id -c 0.8 --threads 2"
    refs "linclust_$id" "l${id}_rep_seq.fasta"
    rm -rf "tmp$id"
done

if [ "$lossless" = 1 ]; then
    # reconstruct writes the input's own line layout: the input file byte for byte
    for id in $ids; do
        measure "reconstruct_$id" "rm -f full$id.fasta" "'$talaria' reconstruct -r r$id.fasta -d r$id.deltas.tal -o full$id.fasta"
        if cmp -s "$fasta" "full$id.fasta"; then
            echo "# lossless $id: reconstruct gives the input byte for byte" | tee -a results.txt
        else
            echo "# LOSSY $id: $(cmp "$fasta" "full$id.fasta" 2>&1 | head -1)" | tee -a results.txt
        fi
        rm -f "full$id.fasta"
    done
fi

# RSS compared in KiB from the times files: results.txt rounds to MiB
awk -v peers="$peers" '
    function kib(name, line, f, a, m) {
        f = "times." name
        while ((getline line <f) > 0) { split(line, a, " "); if (a[2] + 0 > m) m = a[2] + 0 }
        close(f)
        return m
    }
    /^#/ { next }
    $1 == "refs" { r[$2] = $3; next }
    { t[$1] = $2; m[$1] = $3 }
    END {
        for (id = 90; id >= 50; id -= 40)
            if (("talaria_" id) in t) printf "talaria %.1f: %.3f s, %d MiB, %d references\n", id / 100, t["talaria_" id], m["talaria_" id], r["talaria_" id]
        if (peers != 1) exit
        if (!("talaria_90" in t) || !("talaria_50" in t)) {
            if (!("talaria_50" in t)) exit
            printf "references at 0.5: talaria %d vs linclust %d, ratio %.4f (goal <= 1)\n", r["talaria_50"], r["linclust_50"], r["talaria_50"] / r["linclust_50"]
            printf "time at 0.5: linclust/talaria %.2fx; peak RSS talaria %d KiB, linclust %d\n", t["linclust_50"] / t["talaria_50"], kib("talaria_50"), kib("linclust_50")
            exit
        }
        printf "references at 0.9: talaria/cd-hit %.4f (goal <= 1.05); talaria/linclust %.4f\n", r["talaria_90"] / r["cdhit_90"], r["talaria_90"] / r["linclust_90"]
        printf "references at 0.5: talaria %d vs linclust %d, ratio %.4f (goal <= 1)\n", r["talaria_50"], r["linclust_50"], r["talaria_50"] / r["linclust_50"]
        printf "time at 0.9: cd-hit/talaria %.2fx (goal >= 3), linclust/talaria %.2fx (goal > 1)\n", t["cdhit_90"] / t["talaria_90"], t["linclust_90"] / t["talaria_90"]
        printf "time at 0.5: linclust/talaria %.2fx\n", t["linclust_50"] / t["talaria_50"]
        below = kib("talaria_90") < kib("cdhit_90") && kib("talaria_90") < kib("linclust_90") ? "yes" : "NO"
        printf "peak RSS at 0.9: talaria %d KiB, cd-hit %d, linclust %d (goal: below both: %s); at 0.5: talaria %d, linclust %d\n", kib("talaria_90"), kib("cdhit_90"), kib("linclust_90"), below, kib("talaria_50"), kib("linclust_50")
    }' results.txt | tee -a results.txt
