#!/usr/bin/env bash
# Honest identities: recomputes the identity and coverage of a sample of member/reference
# pairs from a `talaria reduce` membership table with an independent global aligner,
# EMBOSS needle (not parasail, not talaria's own code), and compares.
#
#   bench/identity.sh [--identity T] [--coverage C] [--tolerance D] [--slack S]
#                     FASTA MEMBERS.tsv [N] [WORKDIR]
#
# FASTA is the input given to reduce (plain, may be line-wrapped); MEMBERS.tsv is its
# membership table ("#member\treference\tidentity\tcoverage", accessions = first word
# of the header). N pairs (default 1000) are sampled with a fixed seed. needle runs with
# BLOSUM62, gap open 10, extend 0.5, end gaps free (its default), one run per sampled
# reference with all of its sampled members as -bsequence, two runs at a time.
# From needle's alignment (not from its Identity line, which is over alignment length):
#   identity = identical columns / member length
#   coverage = member residues in columns without a gap / member length
# A value in MEMBERS.tsv that is not a number (NA, -) is not compared.
#
# PASS when no pair differs from needle by more than D (default 0.01) in identity or
# coverage, no talaria value is below the thresholds (default 0.9 and 0.8), and no
# needle value is below threshold - S (default S = 0). Exit 1 on FAIL, 2 on usage.
# WORKDIR (default a new temporary directory) keeps pairs.tsv: one line per pair with
# both sets of values, worst difference first.
set -euo pipefail

ident=0.9 cover=0.8 tol=0.01 slack=0 args=()
usage="usage: identity.sh [--identity T] [--coverage C] [--tolerance D] [--slack S] FASTA MEMBERS.tsv [N] [WORKDIR]"
while [ $# -gt 0 ]; do
    case $1 in
    --identity | --coverage | --tolerance | --slack)
        [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; } ;;&
    --identity) ident=$2; shift 2 ;;
    --coverage) cover=$2; shift 2 ;;
    --tolerance) tol=$2; shift 2 ;;
    --slack) slack=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; args+=("$@"); break ;;
    -?*) echo "identity.sh: unknown option $1" >&2; echo "$usage" >&2; exit 2 ;;
    *) args+=("$1"); shift ;;
    esac
done
set -- "${args[@]}"
[ $# -ge 2 ] && [ $# -le 4 ] || { echo "$usage" >&2; exit 2; }
for v in "$ident" "$cover" "$tol" "$slack"; do
    [[ $v =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "identity.sh: not a number: $v" >&2; exit 2; }
done
fasta=$(realpath "$1") members=$(realpath "$2") n=${3:-1000}
work=${4:-$(mktemp -d /tmp/talaria-identity.XXXXXX)}
mkdir -p "$work" && work=$(realpath "$work")

if ! command -v needle >/dev/null; then
    echo "installing EMBOSS (needle)" >&2
    apt-get -y -qq install emboss >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get -y -qq install emboss >/dev/null; } ||
        { echo "identity.sh: needle not found and emboss would not install" >&2; exit 1; }
fi

cd "$work"
rm -rf pairs && mkdir pairs

# Sample: fixed seed, so a rerun on the same table checks the same pairs.
grep -v '^#' "$members" | awk -F'\t' 'NF >= 2' |
    shuf -n "$n" --random-source=<(yes) >sample.tsv || true
total=$(wc -l <sample.tsv)
[ "$total" -gt 0 ] || { echo "identity.sh: no member lines in $members" >&2; exit 1; }

# Pull the sampled sequences out of FASTA in one pass, then write one job per reference:
# pairs/K.ref.fa (the reference) and pairs/K.mem.fa (its sampled members, named p<line>
# so that EMBOSS sees plain names and not sp|...|... ones it would parse).
awk -F'\t' -v OFS='\t' '
    NR == FNR { want[$1] = 1; want[$2] = 1; mem[FNR] = $1; ref[FNR] = $2; np = FNR; next }
    /^>/ { split(substr($0, 2), w, /[ \t\r]/); acc = w[1]; keep = (acc in want); if (keep) seq[acc] = ""; next }
    keep { gsub(/[ \t\r]/, ""); seq[acc] = seq[acc] $0 }
    END {
        for (i = 1; i <= np; i++) {
            if (!(mem[i] in seq) || !(ref[i] in seq)) {
                if (++missing <= 5) printf "pair %d: %s or %s not in FASTA\n", i, mem[i], ref[i] > "/dev/stderr"
                continue
            }
            if (!(ref[i] in job)) {
                job[ref[i]] = ++nj
                printf ">r%d\n%s\n", nj, seq[ref[i]] > ("pairs/" nj ".ref.fa")
                close("pairs/" nj ".ref.fa")
                print nj > "jobs.txt"
            }
            f = "pairs/" job[ref[i]] ".mem.fa"
            printf ">p%d\n%s\n", i, seq[mem[i]] >> f; close(f)
            print i, length(seq[mem[i]]), length(seq[ref[i]]) > "lengths.tsv"
        }
        exit (missing > 0)
    }' sample.tsv "$fasta" || { echo "identity.sh: sampled accessions missing from $fasta" >&2; exit 1; }

start=$EPOCHREALTIME
# shellcheck disable=SC2016
xargs -P 2 -n 5 bash -c 'for k; do
    needle -asequence pairs/$k.ref.fa -sformat1 fasta -sprotein1 \
        -bsequence pairs/$k.mem.fa -sformat2 fasta -sprotein2 \
        -datafile EBLOSUM62 -gapopen 10 -gapextend 0.5 -noendweight \
        -aformat3 fasta -outfile pairs/$k.aln -auto 2>pairs/$k.err ||
        { echo "needle failed on pairs/$k: $(tail -2 pairs/$k.err)" >&2; exit 255; }
done' _ <jobs.txt
secs=$(echo "$EPOCHREALTIME - $start" | bc -l)

# Alignment records come as (reference, member) pairs; count columns per member.
for k in $(cat jobs.txt); do cat "pairs/$k.aln"; done | awk -v OFS='\t' '
    function done_rec() {
        if (name == "") return
        if (name ~ /^r/) { r = toupper(s) }
        else {
            m = toupper(s); L = length(m); mlen = 0; cols = 0; same = 0
            if (length(r) != L) { print "alignment lengths differ for " name > "/dev/stderr"; exit 1 }
            for (j = 1; j <= L; j++) {
                a = substr(m, j, 1); b = substr(r, j, 1)
                if (a == "-") continue
                mlen++
                if (b == "-") continue
                cols++; if (a == b) same++
            }
            print substr(name, 2), mlen, same / mlen, cols / mlen
        }
        s = ""
    }
    /^>/ { done_rec(); name = substr($1, 2); next }
    { s = s $0 }
    END { done_rec() }' >needle.tsv

# Join: sample line, lengths, needle; then the report.
awk -F'\t' -v OFS='\t' -v ti="$ident" -v tc="$cover" -v tol="$tol" -v slack="$slack" \
    -v total="$total" -v secs="$secs" -v work="$work" '
    function num(x) { return x ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }
    function abs(x) { return x < 0 ? -x : x }
    FILENAME == ARGV[1] { mem[FNR] = $1; ref[FNR] = $2; tid[FNR] = $3; tcv[FNR] = $4; next }
    FILENAME == ARGV[2] { mlen[$1] = $2; rlen[$1] = $3; next }
    {
        i = $1; got++
        if ($2 != mlen[i]) { printf "pair %d (%s): needle aligned %d member residues, FASTA has %d\n", i, mem[i], $2, mlen[i] > "/dev/stderr"; bad_len++ }
        nid = $3; ncv = $4; did = "NA"; dcv = "NA"; worst = 0
        if (num(tid[i])) { did = tid[i] - nid; cmp_id++; if (abs(did) > maxid) maxid = abs(did); if (abs(did) > worst) worst = abs(did)
                           if (abs(did) > tol + 1e-9) off_id++; if (tid[i] + 1e-9 < ti) t_below_id++ }
        else skip_id++
        if (num(tcv[i])) { dcv = tcv[i] - ncv; cmp_cv++; if (abs(dcv) > maxcv) maxcv = abs(dcv); if (abs(dcv) > worst) worst = abs(dcv)
                           if (abs(dcv) > tol + 1e-9) off_cv++; if (tcv[i] + 1e-9 < tc) t_below_cv++ }
        else skip_cv++
        if ((did != "NA" && abs(did) > tol + 1e-9) || (dcv != "NA" && abs(dcv) > tol + 1e-9)) off_any++
        if (nid + 1e-9 < ti) n_below_id++; if (nid + 1e-9 < ti - slack) n_fail_id++
        if (ncv + 1e-9 < tc) n_below_cv++; if (ncv + 1e-9 < tc - slack) n_fail_cv++
        printf "%.6f\t%d\t%s\t%s\t%d\t%d\t%s\t%.4f\t%s\t%.4f\t%s\t%s\n", worst, i, mem[i], ref[i], mlen[i], rlen[i], \
            tid[i], nid, tcv[i], ncv, did == "NA" ? did : sprintf("%+.4f", did), dcv == "NA" ? dcv : sprintf("%+.4f", dcv) > "pairs.unsorted"
    }
    END {
        printf "pairs checked: %d of %d sampled (needle %.1f s)\n", got, total, secs
        printf "identity: %d compared, max |talaria - needle| = %.4f, %d differ by more than %s\n", cmp_id, maxid, off_id, tol
        printf "coverage: %d compared, max |talaria - needle| = %.4f, %d differ by more than %s\n", cmp_cv, maxcv, off_cv, tol
        if (skip_id + skip_cv) printf "not compared (no number in the table): %d identities, %d coverages\n", skip_id, skip_cv
        printf "pairs differing by more than %s in either: %d\n", tol, off_any
        printf "below thresholds (identity %s, coverage %s): talaria %d identity, %d coverage; needle %d identity, %d coverage\n", \
            ti, tc, t_below_id, t_below_cv, n_below_id, n_below_cv
        if (slack > 0) printf "needle below threshold - %s: %d identity, %d coverage\n", slack, n_fail_id, n_fail_cv
        fail = (got != total) || bad_len || off_any || t_below_id || t_below_cv || n_fail_id || n_fail_cv
        printf "pairs with every value: %s/pairs.tsv\n", work
        print (fail ? "FAIL" : "PASS") ": honest identities (" got " pairs)"
        exit fail
    }' sample.tsv lengths.tsv needle.tsv && status=0 || status=$?

{
    printf '#worst_diff\tpair\tmember\treference\tmember_len\treference_len\ttalaria_identity\tneedle_identity\ttalaria_coverage\tneedle_coverage\tidentity_diff\tcoverage_diff\n'
    sort -t$'\t' -k1,1gr pairs.unsorted 2>/dev/null
} >pairs.tsv
rm -f pairs.unsorted
# Show the worst pairs when any differ by more than the rounding of a printed value.
if awk 'NR == 2 { big = $1 > 0.0005 } END { exit !big }' pairs.tsv; then
    echo "largest differences (member, reference, lengths, talaria/needle identity, talaria/needle coverage):"
    awk -F'\t' 'NR > 1 && NR <= 6 && $1 > 0.0005 { printf "  %s %s %d/%d  id %s/%s  cov %s/%s\n", $3, $4, $5, $6, $7, $8, $9, $10 }' pairs.tsv
fi
exit "$status"
