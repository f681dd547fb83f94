#!/usr/bin/env bash
# Store benchmark: talaria index/get/stats against samtools faidx, mmseqs createdb and
# seqkit stats on the same FASTA, in the same run. Medians of RUNS runs; peak RSS from
# /usr/bin/time. Usage: bench/store.sh FASTA [WORKDIR]   (env: RUNS=3 TALARIA=path)
set -euo pipefail
fasta=$(realpath "$1")
work=${2:-${TMPDIR:-/tmp}/talaria-bench}
runs=${RUNS:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
talaria=${TALARIA:-$here/build/talaria}
mkdir -p "$work"
cd "$work"
for tool in samtools mmseqs seqkit; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install samtools mmseqs2 seqkit" >&2; exit 1; }
done

. "$here/bench/lib.sh"
: >results.txt
size_mb=$(($(stat -c %s "$fasta") / 1048576))
echo "# input $fasta ($size_mb MiB), $runs runs, $(date -u +%F)" | tee -a results.txt
echo "# name median_wall_s peak_rss_mb" | tee -a results.txt

measure talaria_index "rm -rf db.tal; warm" "'$talaria' index -q -t 2 -i '$fasta' -o db.tal"
measure samtools_faidx "rm -f '$fasta.fai'; warm" "samtools faidx '$fasta'"
measure mmseqs_createdb "rm -rf mm; mkdir mm; warm" "mmseqs createdb '$fasta' mm/db >/dev/null"

# 10,000 accessions (first words) drawn uniformly with a seeded generator (shuf of a stream
# of "yes" picks clustered ids), the same list for both tools
grep '^>' "$fasta" | awk '{ print substr($1, 2) }' | python3 -c 'import random, sys; ids = [l.rstrip() for l in sys.stdin]; print("\n".join(random.Random(1).sample(ids, min(10000, len(ids)))))' >ids.txt
measure talaria_get10k "" "'$talaria' get -f ids.txt db.tal"
measure samtools_get10k "" "samtools faidx '$fasta' -r ids.txt"
cmp <("$talaria" get -f ids.txt db.tal) <(samtools faidx "$fasta" -r ids.txt) >/dev/null &&
    echo "# get output identical to samtools faidx -r" | tee -a results.txt ||
    echo "# NOTE: get output differs from samtools (header lines: samtools prints the name only)" | tee -a results.txt

measure talaria_stats_store "" "'$talaria' stats -i db.tal"
measure seqkit_stats "warm" "seqkit stats -j 2 '$fasta'"
du -sb db.tal | awk -v s="$(stat -c %s "$fasta")" '{ printf "# store size %.1f MiB (%.2f of input)\n", $1 / 1048576, $1 / s }' | tee -a results.txt

awk -v size="$size_mb" '
    { t[$1] = $2; m[$1] = $3 }
    END {
        printf "index: %.2fx faster than mmseqs createdb (goal >= 3), %.2fx faster than samtools faidx (goal > 1)\n", t["mmseqs_createdb"] / t["talaria_index"], t["samtools_faidx"] / t["talaria_index"]
        printf "get 10k: %.2fx faster than samtools faidx -r (goal >= 5)\n", t["samtools_get10k"] / t["talaria_get10k"]
        printf "stats: %.1fx faster than seqkit stats (goal >= 50)\n", t["seqkit_stats"] / t["talaria_stats_store"]
        printf "index peak RSS %d MiB = %.1f%% of input (goal < 25%%)\n", m["talaria_index"], 100 * m["talaria_index"] / size
    }' <(grep -v '^#' results.txt) | tee -a results.txt
