#!/usr/bin/env bash
# Acceptance check on real-size data: index FASTA raw and with lz4 and zstd chunks,
# `get` every accession from each store, and compare with the input after unwrapping
# lines. Usage: bench/roundtrip.sh FASTA [WORKDIR]  (env: CODECS="none lz4 zstd")
set -euo pipefail
fasta=$(realpath "$1")
work=${2:-${TMPDIR:-/tmp}/talaria-roundtrip}
here=$(cd "$(dirname "$0")/.." && pwd)
talaria=${TALARIA:-$here/build/talaria}
mkdir -p "$work"
cd "$work"
grep '^>' "$fasta" | awk '{ print substr($1, 2) }' >all_ids.txt
awk '{ sub(/\r$/, "") } /^>/ { if (seq != "") print seq; print; seq = ""; next } { seq = seq $0 } END { if (seq != "") print seq }' "$fasta" >want.fa
status=0
for codec in ${CODECS:-none lz4 zstd}; do
    rm -rf "rt-$codec.tal"
    "$talaria" index -q --compress "$codec" -i "$fasta" -o "rt-$codec.tal"
    "$talaria" get -w 0 -f all_ids.txt "rt-$codec.tal" >got.fa
    if cmp -s want.fa got.fa; then
        echo "OK ($codec): $(wc -l <all_ids.txt) records identical ($fasta)"
    else
        echo "MISMATCH ($codec): $(cmp want.fa got.fa)"
        status=1
    fi
    "$talaria" verify "rt-$codec.tal"
    rm -rf "rt-$codec.tal"
done
rm -f got.fa want.fa
exit $status
