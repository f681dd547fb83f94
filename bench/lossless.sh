#!/usr/bin/env bash
# Acceptance 1 of the reduce issue on real-sized data: for --identity 0.9, 0.7, 0.5 and
# -r 0.3, `talaria reduce` then `talaria reconstruct` must give back every header and
# residue string of FASTA (compared with the input unwrapped: header line, then the
# residues on one line). Prints one line per setting and a verdict.
# Usage: bench/lossless.sh FASTA [WORKDIR]   (THREADS, default 2; SETTINGS to choose)
set -euo pipefail
fasta=$(readlink -f "$1")
talaria=$(readlink -f "${TALARIA:-$(dirname "$(readlink -f "$0")")/../build/talaria}")
work=${2:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"
threads=${THREADS:-2}
settings=${SETTINGS:-"--identity=0.9 --identity=0.7 --identity=0.5 -r0.3"}
awk '/^>/ { if (started) print seq; print; seq = ""; started = 1; next }
     { seq = seq $0 }
     END { if (started) print seq }' "$fasta" >unwrapped.fa
fail=0
for s in $settings; do
    rm -f red.fasta red.deltas.tal red.members.tsv full.fa
    start=$EPOCHREALTIME
    /usr/bin/time -f "%M" -o rss.txt "$talaria" reduce -q -t "$threads" "$s" -i "$fasta" -o red.fasta
    mid=$EPOCHREALTIME
    "$talaria" reconstruct -d red.deltas.tal -o full.fa
    end=$EPOCHREALTIME
    refs=$(grep -c '^>' red.fasta)
    if cmp -s unwrapped.fa full.fa; then verdict=identical; else verdict=DIFFERENT; fail=1; fi
    printf '%s: %s references of %s; reduce %.1f s (peak RSS %d MiB), reconstruct %.1f s; %s\n' \
        "$s" "$refs" "$(grep -c '^>' unwrapped.fa)" "$(echo "$mid - $start" | bc -l)" \
        $(($(cat rss.txt) / 1024)) "$(echo "$end - $mid" | bc -l)" "$verdict"
done
[ "$fail" = 0 ] && echo "lossless: PASS" || { echo "lossless: FAIL"; exit 1; }
