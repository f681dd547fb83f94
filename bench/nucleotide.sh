#!/usr/bin/env bash
# Nucleotide reduction benchmark: talaria reduce against cd-hit-est, vsearch
# --cluster_fast and mmseqs easy-linclust at identity 0.9 (coverage 0.8 where the tool
# has one), both strands for everyone, 2 threads each, in the same run:
#   - BioMarKs50k, 50,000 real 18S V4 amplicons (Debian's vsearch-examples);
#   - a synthetic set from bench/gen_nucleotides.py (seeded; families with known truth,
#     10% of members on the minus strand, 2% exact copies).
# Reports median wall time, peak RSS, references; for the synthetic set also the
# families split (truth families spread over more than one reference) and merged
# (references holding members of more than one family), and for talaria that
# reconstruct gives the input back byte for byte.
# Usage: bench/nucleotide.sh [WORKDIR]   (env: RUNS=1 TALARIA=path SYN_SEQS=20000
# PEERS="cdhit vsearch linclust"; vsearch takes minutes on the synthetic set;
# SETS="bmk syn")
set -euo pipefail
work=${1:-${TMPDIR:-/tmp}/talaria-bench-nucleotide}
runs=${RUNS:-1}
syn_seqs=${SYN_SEQS:-20000}
peers=${PEERS:-cdhit vsearch linclust}
sets=${SETS:-bmk syn}
here=$(cd "$(dirname "$0")/.." && pwd)
talaria=${TALARIA:-$here/build/talaria}
bmk=/usr/share/doc/vsearch-examples/BioMarKs50k.fsa.gz
for tool in bc cd-hit-est vsearch mmseqs python3; do
    command -v "$tool" >/dev/null ||
        { echo "missing $tool: apt-get install cd-hit vsearch mmseqs2 bc python3" >&2; exit 1; }
done
[ -r "$bmk" ] || { echo "missing $bmk: apt-get install vsearch-examples" >&2; exit 1; }
mkdir -p "$work"
cd "$work"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/bench/lib.sh"
: >results.txt
refs() { echo "refs $1 $(grep -c '^>' "$2")" | tee -a results.txt; }

[ -s bmk.fa ] || zcat "$bmk" >bmk.fa
[ -s syn.fa ] || python3 "$here/bench/gen_nucleotides.py" -n "$syn_seqs" --seed 1 -o syn.fa --truth syn.truth

# families CLSTR_KIND FILE: split and merged families against syn.truth, from a
# member<TAB>reference list
families() {
    # every record's reference (references are their own), then count distinct pairs
    awk -F'\t' -v name="$1" 'FNR == NR { if (FNR > 1) { fam[$1] = $2; ref[$1] = $1 } next }
        { m = $1; r = $2; sub(/\..*/, "", m); sub(/\..*/, "", r); ref[m] = r }
        END { for (a in ref) { k = fam[a] SUBSEP ref[a]; if (!(k in seen)) { seen[k] = 1
                  nref[fam[a]]++; nfam[ref[a]]++ } }
              for (f in nref) if (nref[f] > 1) split_++
              for (r in nfam) if (nfam[r] > 1) merged++
              printf "families %s split %d merged %d\n", name, split_ + 0, merged + 0 }' syn.truth "$2" |
        tee -a results.txt
}

for set in $sets; do
    fasta=$PWD/$set.fa
    echo "# $set: $fasta ($(($(stat -c %s "$fasta") / 1048576)) MiB, $(grep -c '^>' "$fasta") records), $runs runs, $(date -u +%F)" | tee -a results.txt
    echo "# name median_wall_s peak_rss_mb; refs name references" | tee -a results.txt
    measure "talaria_$set" "rm -f t_$set.*; warm" \
        "'$talaria' reduce -q -t 2 --identity 0.9 --coverage 0.8 -i '$fasta' -o t_$set.fa"
    refs "talaria_$set" "t_$set.fa"
    "$talaria" reconstruct -d "t_$set.deltas.tal" -w 0 >back.fa
    awk '/^>/ { if (n++) print s; print; s = ""; next } { s = s $0 } END { print s }' "$fasta" | cmp -s - back.fa &&
        echo "lossless talaria_$set yes" | tee -a results.txt ||
        { echo "lossless talaria_$set NO" | tee -a results.txt; exit 1; }
    [ "$set" = syn ] && awk -F'\t' 'NR > 1 { print $1 "\t" $2 }' "t_$set.members.tsv" >pairs.talaria &&
        families talaria pairs.talaria
    for peer in $peers; do
        case $peer in
        cdhit)
            measure "cdhit_$set" "rm -f c_$set c_$set.clstr; warm" \
                "cd-hit-est -i '$fasta' -o c_$set -c 0.9 -n 8 -aS 0.8 -r 1 -T 2 -M 0 -d 0"
            refs "cdhit_$set" "c_$set"
            [ "$set" = syn ] &&
                awk '/^>Cluster/ { if (n) for (i = 1; i <= n; i++) print m[i] "\t" r; n = 0; next }
                    { line = $0; sub(/.*>/, "", line); acc = line; sub(/\.\.\..*/, "", acc)
                      if ($NF == "*") r = acc; else m[++n] = acc }
                    END { for (i = 1; i <= n; i++) print m[i] "\t" r }' "c_$set.clstr" >pairs.cdhit &&
                families cdhit pairs.cdhit
            ;;
        vsearch)
            measure "vsearch_$set" "rm -f v_$set.fa v_$set.uc; warm" \
                "vsearch --cluster_fast '$fasta' --id 0.9 --strand both --threads 2 --centroids v_$set.fa --uc v_$set.uc --quiet"
            refs "vsearch_$set" "v_$set.fa"
            [ "$set" = syn ] && awk -F'\t' '$1 == "H" { print $9 "\t" $10 }' "v_$set.uc" |
                sed 's/ [^\t]*//g' >pairs.vsearch && families vsearch pairs.vsearch
            ;;
        linclust)
            measure "linclust_$set" "rm -rf l_$set* lt; warm" \
                "mmseqs easy-linclust '$fasta' l_$set lt --min-seq-id 0.9 -c 0.8 --threads 2 -v 1"
            refs "linclust_$set" "l_${set}_rep_seq.fasta"
            [ "$set" = syn ] && awk -F'\t' '$1 != $2 { print $2 "\t" $1 }' "l_${set}_cluster.tsv" >pairs.linclust &&
                families linclust pairs.linclust
            ;;
        esac
    done
done
