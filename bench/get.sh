#!/usr/bin/env bash
# Random access: 10,000 accessions drawn uniformly (Python's random.Random(SEED).sample)
# from a FASTA, fetched with talaria get -f from a raw and a zstd store, with blastdbcmd
# -entry_batch (makeblastdb -parse_seqids) and samtools faidx -r beside them, in the same
# run. Medians of RUNS runs, warm cache, peak RSS from /usr/bin/time.
# Usage: bench/get.sh FASTA [WORKDIR]   (env: RUNS=5 SEED=1 N=10000 TALARIA=path)
set -euo pipefail
fasta=$(realpath "$1")
work=${2:-${TMPDIR:-/tmp}/talaria-bench-get}
runs=${RUNS:-5}
seed=${SEED:-1}
n=${N:-10000}
here=$(cd "$(dirname "$0")/.." && pwd)
talaria=${TALARIA:-$here/build/talaria}
mkdir -p "$work"
cd "$work"
. "$here/bench/lib.sh"
: >results.txt
echo "# input $fasta ($(($(stat -c %s "$fasta") / 1048576)) MiB), $n accessions, seed $seed, $runs runs, $(date -u +%F)" | tee -a results.txt
echo "# name median_wall_s peak_rss_mb" | tee -a results.txt

[ -d raw.tal ] || "$talaria" index -q -t 2 -i "$fasta" -o raw.tal
[ -d zstd.tal ] || "$talaria" index -q -t 2 --compress zstd -i "$fasta" -o zstd.tal
python3 - "$fasta" "$seed" "$n" >ids.txt <<'PY'
import random, sys
ids = [l[1:].split()[0] for l in open(sys.argv[1]) if l.startswith(">")]
for i in random.Random(int(sys.argv[2])).sample(ids, int(sys.argv[3])):
    print(i)
PY
cat raw.tal/* zstd.tal/* "$fasta" >/dev/null # warm
measure talaria_get_raw "" "'$talaria' get -f ids.txt raw.tal"
measure talaria_get_zstd "" "'$talaria' get -f ids.txt zstd.tal"
cmp -s out.talaria_get_raw out.talaria_get_zstd || { echo "raw and zstd stores differ" >&2; exit 1; }
if command -v blastdbcmd >/dev/null && command -v makeblastdb >/dev/null; then
    [ -f blast.done ] || { makeblastdb -in "$fasta" -dbtype prot -parse_seqids -out blast/db >/dev/null && touch blast.done; }
    cat blast/* >/dev/null
    measure blastdbcmd "" "blastdbcmd -db blast/db -entry_batch ids.txt"
fi
if command -v samtools >/dev/null; then
    [ -f "$fasta.fai" ] || samtools faidx "$fasta"
    measure samtools_faidx "" "samtools faidx '$fasta' -r ids.txt"
fi
awk '
    { t[$1] = $2; m[$1] = $3 }
    END {
        if ("blastdbcmd" in t)
            printf "raw store: %.2fx faster than blastdbcmd (goal >= 3), peak %d MiB (goal < 64); zstd store: %.2fx, peak %d MiB (goal < 128)\n",
                t["blastdbcmd"] / t["talaria_get_raw"], m["talaria_get_raw"], t["blastdbcmd"] / t["talaria_get_zstd"], m["talaria_get_zstd"]
        if ("samtools_faidx" in t)
            printf "raw store: %.2fx faster than samtools faidx -r\n", t["samtools_faidx"] / t["talaria_get_raw"]
    }' <(grep -v '^#' results.txt) | tee -a results.txt
