#!/usr/bin/env bash
# Compressed-store benchmark (issue 3): store sizes against the lz4 and zstd programs on
# the same residues, index time raw vs lz4, and full scans (stats --full) of raw and lz4
# stores with the page cache warm and dropped. Medians of RUNS runs; peak RSS from
# /usr/bin/time. Usage: bench/chunks.sh FASTA [WORKDIR]  (env: RUNS=3 TALARIA=path ZSTD19=1)
# Dropping the page cache needs root (echo 3 > /proc/sys/vm/drop_caches); without it
# the cold rows are skipped.
set -euo pipefail
fasta=$(realpath "$1")
work=${2:-${TMPDIR:-/tmp}/talaria-bench-chunks}
runs=${RUNS:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
talaria=${TALARIA:-$here/build/talaria}
mkdir -p "$work"
cd "$work"
for tool in lz4 zstd bc; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install lz4 zstd bc" >&2; exit 1; }
done
. "$here/bench/lib.sh"
: >results.txt
echo "# input $fasta, $runs runs, $(date -u +%F)" | tee -a results.txt
echo "# name median_wall_s peak_rss_mb" | tee -a results.txt

# the residues alone, as the store holds them (no headers, no newlines)
grep -v '^>' "$fasta" | tr -d '\n\r' >residues.raw
raw=$(stat -c %s residues.raw)
lz4_size=$(lz4 -1 -c residues.raw | wc -c)
echo "# residues $raw bytes; lz4 -1: $lz4_size" | tee -a results.txt

measure index_raw "rm -rf raw.tal; warm" "'$talaria' index -q -t 2 -i '$fasta' -o raw.tal"
measure index_lz4 "rm -rf lz4.tal; warm" "'$talaria' index -q -t 2 --compress lz4 -i '$fasta' -o lz4.tal"
store_lz4=$(($(stat -c %s lz4.tal/residues) + $(stat -c %s lz4.tal/chunks)))
echo "# lz4 store residues+chunk table $store_lz4 bytes = $(echo "scale=4; $store_lz4 / $lz4_size" | bc) of lz4 -1" | tee -a results.txt
if [ "${ZSTD19:-1}" = 1 ]; then
    zstd_size=$(zstd -19 -T2 -c residues.raw | wc -c)
    rm -rf zstd.tal
    start=$EPOCHREALTIME
    "$talaria" index -q -t 2 --compress zstd --level 19 -i "$fasta" -o zstd.tal
    end=$EPOCHREALTIME
    store_zstd=$(($(stat -c %s zstd.tal/residues) + $(stat -c %s zstd.tal/chunks)))
    echo "# zstd -19: $zstd_size; zstd level 19 store $store_zstd = $(echo "scale=4; $store_zstd / $zstd_size" | bc) of zstd -19 (index $(echo "$end - $start" | bc) s)" | tee -a results.txt
fi

# full scans: warm (the store read once before), then cold when the cache can be dropped
measure scan_raw_warm "'$talaria' stats --full raw.tal >/dev/null" "'$talaria' stats --full -t 2 raw.tal"
measure scan_lz4_warm "'$talaria' stats --full lz4.tal >/dev/null" "'$talaria' stats --full -t 2 lz4.tal"
if can_drop; then
    measure scan_raw_cold "cold" "'$talaria' stats --full -t 2 raw.tal"
    measure scan_lz4_cold "cold" "'$talaria' stats --full -t 2 lz4.tal"
else
    echo "# not root: cold-cache scans skipped" | tee -a results.txt
fi

awk -v raw="$raw" '
    { t[$1] = $2; m[$1] = $3 }
    END {
        printf "index --compress lz4: %.2fx the time of raw (goal <= 1.3)\n", t["index_lz4"] / t["index_raw"]
        printf "scan lz4 warm: %.2f GB/s of residues (goal >= 2); raw warm %.2f GB/s\n", raw / t["scan_lz4_warm"] / 1e9, raw / t["scan_raw_warm"] / 1e9
        if (t["scan_lz4_cold"]) printf "scan cold: lz4 %.3f s, raw %.3f s (goal: lz4 no slower)\n", t["scan_lz4_cold"], t["scan_raw_cold"]
        printf "scan peak RSS: raw %d MiB, lz4 %d MiB (goal < 64 MiB + 3 chunk buffers)\n", m["scan_raw_warm"], m["scan_lz4_warm"]
    }' results.txt | tee -a results.txt
