#!/usr/bin/env bash
# Acceptance check on real-size data: index FASTA, `get` every accession, and compare
# with the input after unwrapping lines. Usage: bench/roundtrip.sh FASTA [WORKDIR]
set -euo pipefail
fasta=$(realpath "$1")
work=${2:-${TMPDIR:-/tmp}/talaria-roundtrip}
here=$(cd "$(dirname "$0")/.." && pwd)
talaria=${TALARIA:-$here/build/talaria}
mkdir -p "$work"
cd "$work"
rm -rf rt.tal
"$talaria" index -i "$fasta" -o rt.tal
grep '^>' "$fasta" | awk '{ print substr($1, 2) }' >all_ids.txt
"$talaria" get -w 0 -f all_ids.txt rt.tal >got.fa
awk '{ sub(/\r$/, "") } /^>/ { if (seq != "") print seq; print; seq = ""; next } { seq = seq $0 } END { if (seq != "") print seq }' "$fasta" >want.fa
if cmp -s want.fa got.fa; then
    echo "OK: $(wc -l <all_ids.txt) records identical ($fasta)"
else
    echo "MISMATCH: $(cmp want.fa got.fa)"
    exit 1
fi
"$talaria" verify rt.tal
rm -f got.fa want.fa
