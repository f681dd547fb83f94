#!/usr/bin/env bash
# Runs one talaria binary through every output-producing command on one FASTA and keeps
# the outputs, so two builds (before and after a refactor) can be compared byte for byte:
#   same_outputs.sh TALARIA FASTA OUTDIR [IDENTITIES]     (default IDENTITIES "0.9 0.5")
#   diff -r OLD_OUTDIR NEW_OUTDIR && echo identical
# Per identity: reduce (FASTA, deltas, membership, .clstr), reduce -a diamond and -a
# kraken (side files and tagged headers), reconstruct (unwrapped and -w 60), --ids,
# get from the delta store, validate with and without hit files, expand of a hit file
# built from the reduced FASTA and the membership. RATIO=R adds a reduce -r R run.
# PRESETS (default "diamond kraken") lists the -a runs; THREADS (default 2) is -t. Timings and peak RSS go to OUTDIR/times.txt,
# which the comparison should leave out (diff -r -x times.txt).
set -euo pipefail
talaria=$(realpath "$1")
fasta=$(realpath "$2")
out=$3
identities=${4:-0.9 0.5}
threads=${THREADS:-2}
mkdir -p "$out"
out=$(realpath "$out")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$out/times.txt"

run() { # NAME CMD... : stdout to OUTDIR/NAME.stdout, wall time and peak RSS to times.txt
    local name=$1 start end
    shift
    start=$EPOCHREALTIME
    /usr/bin/time -f "%M" -o "$work/rss" "$@" >"$out/$name.stdout" 2>"$work/stderr" ||
        { echo "$name failed: $(tail -3 "$work/stderr")" >&2; exit 1; }
    end=$EPOCHREALTIME
    echo "$name $(echo "$end - $start" | bc -l) s $(($(cat "$work/rss") / 1024)) MiB" >>"$out/times.txt"
}

for id in $identities; do
    d=$out/id$id
    mkdir -p "$d"
    cd "$d" # the delta store records the reduced FASTA's path as given: keep it relative
    run "reduce-$id" "$talaria" reduce -q -t "$threads" -i "$fasta" -o red.fasta --identity "$id" \
        --clstr red.clstr --tmp-dir "$work"
    run "reconstruct-$id" "$talaria" reconstruct -q -d "$d/red.deltas.tal" -o "$work/full.fa"
    sha256sum "$work/full.fa" | cut -d' ' -f1 >"$d/reconstruct.sha256"
    run "reconstruct-w60-$id" "$talaria" reconstruct -q -w 60 -d "$d/red.deltas.tal" -o "$work/full60.fa"
    sha256sum "$work/full60.fa" | cut -d' ' -f1 >"$d/reconstruct-w60.sha256"
    rm -f "$work/full.fa" "$work/full60.fa"
    # every 97th member and every 89th reference, by accession
    awk 'NR > 1 && NR % 97 == 0 { print $1 }' "$d/red.members.tsv" >"$work/ids"
    awk '/^>/ && ++n % 89 == 0 { print substr($1, 2) }' "$d/red.fasta" >>"$work/ids"
    run "reconstruct-ids-$id" "$talaria" reconstruct -q -d "$d/red.deltas.tal" --ids "$work/ids" -o "$d/ids.fa"
    run "get-deltas-$id" "$talaria" get "$d/red.deltas.tal" $(head -20 "$work/ids")
    # hits: three queries per 13th reference and one per 31st member, with comments
    awk -v OFS='\t' '
        FNR == 1 { file++ }
        file == 1 && /^>/ && ++r % 13 == 0 { s = substr($1, 2); for (q = 1; q <= 3; q++) print "q" r "_" q, s, "95.0", 100, 5, 0, 1, 100, 1, 100, "1e-30", 200 }
        file == 2 && FNR > 1 && FNR % 31 == 0 { print "m" FNR, $1, "90.0", 100, 10, 0, 1, 100, 1, 100, "1e-20", 150 }
        END { print "# end of hits" }' "$d/red.fasta" "$d/red.members.tsv" >"$work/reduced.m8"
    run "expand-$id" "$talaria" expand -q -d "$d/red.deltas.tal" "$work/reduced.m8"
    cp "$out/expand-$id.stdout" "$work/original.m8"
    run "validate-$id" "$talaria" validate -q "$fasta" "$d/red.fasta" "$d/red.deltas.tal"
    run "validate-hits-$id" "$talaria" validate -q "$fasta" "$d/red.fasta" "$d/red.deltas.tal" \
        --original-results "$work/original.m8" --reduced-results "$work/reduced.m8"
    for preset in ${PRESETS-diamond kraken}; do
        p=$d/$preset
        mkdir -p "$p"
        (cd "$p" && run "reduce-$preset-$id" "$talaria" reduce -q -t "$threads" -i "$fasta" -o red.fasta \
            --identity "$id" -a "$preset" --tmp-dir "$work")
    done
done
if [ -n "${RATIO:-}" ]; then
    d=$out/ratio$RATIO
    mkdir -p "$d"
    cd "$d"
    run "reduce-r$RATIO" "$talaria" reduce -q -t "$threads" -i "$fasta" -o red.fasta -r "$RATIO" \
        --tmp-dir "$work"
fi
ls "$work" | grep -v '^ids$\|\.m8$\|^rss$\|^stderr$' && { echo "scratch left in --tmp-dir" >&2; exit 1; }
echo "outputs in $out"
