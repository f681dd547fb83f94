#!/usr/bin/env bash
# A real client: reduce UniProt 20k at 0.9 for DIAMOND, check that diamond, mmseqs and
# makeblastdb accept the reduced FASTA, search the 500 queries against the full and the
# reduced database, expand the reduced hits with `talaria expand`, and count how many
# distinct (query, subject) pairs of the full search come back; the same with cd-hit's
# clusters expanded from its .clstr file, as the bar to meet.
# Usage: bench/diamond.sh [DATADIR] [WORKDIR]   (DATADIR from ../shared/data/fetch-data.sh,
# holding uniprot20k.fasta and uniprot-query.fasta; env: RUNS=1 TALARIA=path)
set -euo pipefail
data=$(realpath "${1:-${TALARIA_DATA:-$HOME/.cache/talaria-data}}")
work=${2:-${TMPDIR:-/tmp}/talaria-bench-diamond}
runs=${RUNS:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
talaria=${TALARIA:-$here/build/talaria}
fasta=$data/uniprot20k.fasta
queries=$data/uniprot-query.fasta
for f in "$fasta" "$queries"; do
    [ -s "$f" ] || { echo "missing $f: run ../shared/data/fetch-data.sh $data" >&2; exit 1; }
done
for tool in diamond cd-hit mmseqs makeblastdb blastdbcmd bc; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install diamond-aligner cd-hit mmseqs2 ncbi-blast+ bc" >&2; exit 1; }
done
mkdir -p "$work"
cd "$work"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/bench/lib.sh"
: >results.txt
echo "# input $fasta ($(grep -c '^>' "$fasta") records), queries $queries ($(grep -c '^>' "$queries")), $runs runs, $(date -u +%F)" | tee -a results.txt
echo "# name median_wall_s peak_rss_mb" | tee -a results.txt

search() { # search NAME DB: all hits at e <= 1e-5, no cap on targets per query
    measure "blastp_$1" "rm -f $1.m8" "diamond blastp -q '$queries' -d $2 -k 0 --evalue 1e-5 --outfmt 6 --threads 2 -o $1.m8"
}
# recovery NAME HITS: distinct (query, subject) pairs of full.m8 found in HITS
recovery() {
    awk -F'\t' -v name="$1" '
        NR == FNR { want[$1 FS $2] = 1; next }
        ($1 FS $2) in want { got[$1 FS $2] = 1; next }
        { extra[$1 FS $2] = 1 }
        END {
            for (p in want) total++
            for (p in got) found++
            for (p in extra) more++
            printf "recovery %s %d %d %.4f %d\n", name, found, total, 100 * found / total, more
        }' full.m8 "$2" | tee -a results.txt
}
accepted() { # accepted NAME CMD...: ok or fail, with the reason
    if "${@:2}" >"log.$1" 2>&1; then echo "ok"; else echo "fail ($(tail -1 "log.$1"))"; fi
}

measure talaria_reduce "rm -rf reduced.fasta reduced.deltas.tal reduced.members.tsv reduced.taxid.tsv; warm" \
    "'$talaria' reduce -q -t 2 --identity 0.9 -a diamond -i '$fasta' -o reduced.fasta -m reduced.deltas.tal --membership reduced.members.tsv"
measure cdhit_reduce "rm -f cdhit.fasta cdhit.fasta.clstr; warm" "cd-hit -i '$fasta' -o cdhit.fasta -c 0.9 -n 5 -T 2 -M 0 -d 0"
refs=$(grep -c '^>' reduced.fasta)
echo "# references: talaria $refs, cd-hit $(grep -c '^>' cdhit.fasta)" | tee -a results.txt

# the reduced FASTA must be usable by every aligner's database builder
rm -rf mm blast
mkdir -p mm blast
full_ok=$(accepted diamond_full diamond makedb --in "$fasta" -d full --threads 2)
diamond_red=$(accepted diamond_reduced diamond makedb --in reduced.fasta -d reduced --threads 2)
diamond makedb --in cdhit.fasta -d cdhit --threads 2 >log.diamond_cdhit 2>&1
mmseqs_ok=$(accepted mmseqs mmseqs createdb reduced.fasta mm/reduced)
[ "$mmseqs_ok" = ok ] && [ "$(wc -l <mm/reduced.index)" != "$refs" ] && mmseqs_ok="fail ($(wc -l <mm/reduced.index) of $refs sequences)"
blast_ok=$(accepted makeblastdb makeblastdb -in reduced.fasta -dbtype prot -out blast/reduced)
if [ "$blast_ok" = ok ]; then
    n=$(blastdbcmd -db blast/reduced -info | awk '/sequences;/ { gsub(/,/, "", $1); print $1 }')
    [ "$n" = "$refs" ] || blast_ok="fail ($n of $refs sequences)"
fi
echo "# reduced.fasta: diamond makedb $diamond_red, mmseqs createdb $mmseqs_ok, makeblastdb $blast_ok (full: diamond makedb $full_ok)" | tee -a results.txt
[ "$diamond_red" = ok ] || { echo "verdict: FAIL (diamond makedb on reduced.fasta: $diamond_red)" | tee -a results.txt; exit 1; }
echo "# diamond databases: full $(stat -c %s full.dmnd) bytes, reduced $(stat -c %s reduced.dmnd), cd-hit $(stat -c %s cdhit.dmnd)" | tee -a results.txt

search full full
search reduced reduced
search cdhit cdhit
measure talaria_expand "rm -f expanded.m8" "'$talaria' expand -d reduced.deltas.tal reduced.m8 -o expanded.m8"

# cd-hit's expansion: each hit on a reference repeated for every sequence of its cluster
# (the reference included). In the .clstr file the reference line ends in '*'; -d 0 keeps
# whole names, which end in '...'.
awk -F'\t' -v OFS='\t' '
    function flush(i) { for (i = 1; i <= n; i++) group[ref] = group[ref] SUBSEP member[i]; n = 0 }
    FNR == NR {
        if (/^>Cluster/) { flush(); next }
        name = $0
        sub(/^[^>]*>/, "", name)
        sub(/\.\.\. (\*|at .*)$/, "", name)
        member[++n] = name
        if (/\*$/) ref = name
        next
    }
    FNR == 1 { flush() }
    $2 in group { k = split(group[$2], m, SUBSEP); for (i = 2; i <= k; i++) { $2 = m[i]; print } }
' cdhit.fasta.clstr cdhit.m8 >cdhit-expanded.m8

echo "# recovery NAME found total percent pairs_not_in_full" | tee -a results.txt
recovery talaria expanded.m8
recovery talaria_unexpanded reduced.m8
recovery cdhit cdhit-expanded.m8

awk -v mmseqs="$mmseqs_ok" -v blast="$blast_ok" -v dmnd="$diamond_red" '
    /^#/ { next }
    $1 == "recovery" { found[$2] = $3; total[$2] = $4; pct[$2] = $5; next }
    { t[$1] = $2; m[$1] = $3 }
    END {
        printf "reduce: talaria %.3f s / %d MiB, cd-hit %.3f s / %d MiB\n", t["talaria_reduce"], m["talaria_reduce"], t["cdhit_reduce"], m["cdhit_reduce"]
        printf "search: full %.3f s, talaria-reduced %.3f s, cd-hit-reduced %.3f s; expand %.3f s / %d MiB\n", t["blastp_full"], t["blastp_reduced"], t["blastp_cdhit"], t["talaria_expand"], m["talaria_expand"]
        printf "recovery: talaria %d of %d pairs = %.2f%% (goal >= 99.5%%), cd-hit %d of %d = %.2f%% (talaria no lower)\n", found["talaria"], total["talaria"], pct["talaria"], found["cdhit"], total["cdhit"], pct["cdhit"]
        ok = pct["talaria"] >= 99.5 && found["talaria"] >= found["cdhit"] && mmseqs == "ok" && blast == "ok" && dmnd == "ok"
        printf "verdict: %s (recovery %.2f%% vs cd-hit %.2f%%; diamond makedb %s, mmseqs createdb %s, makeblastdb %s)\n", ok ? "PASS" : "FAIL", pct["talaria"], pct["cdhit"], dmnd, mmseqs, blast
    }' results.txt | tee -a results.txt
grep -q '^verdict: PASS' results.txt
