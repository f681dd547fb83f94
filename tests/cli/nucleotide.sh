# Nucleotide residues: RNA (U) is DNA (T) to the reduction, N and other IUPAC codes match
# nothing, case does not matter, and the deltas keep every member's own letters.
. "$(dirname "$0")/lib.sh"

nucleotide_families 600 3 n >"$T/dna.fa"
awk '/^>/ { print; next } { gsub(/T/, "U"); print }' "$T/dna.fa" >"$T/rna.fa"
grep -q U "$T/rna.fa" || fail "the RNA copy has no U"

# ---- an RNA set reduces as its DNA copy and comes back with its U's ----
for x in dna rna; do
    mkdir -p "$T/$x"
    (cd "$T/$x" && "$TALARIA" reduce -q -i "../$x.fa" -o r.fa --identity 0.9 --coverage 0.8) ||
        fail "reduce of the $x set failed"
done
refs=$(grep -c '>' "$T/dna/r.fa")
[ "$refs" -lt 300 ] || fail "the DNA families did not reduce ($refs references of 600)"
grep '>' "$T/dna/r.fa" >"$T/dna.refs"
grep '>' "$T/rna/r.fa" >"$T/rna.refs"
cmp -s "$T/dna.refs" "$T/rna.refs" ||
    fail "the RNA set has other references than its DNA copy ($(wc -l <"$T/rna.refs") against $refs)"
cmp -s "$T/dna/r.members.tsv" "$T/rna/r.members.tsv" ||
    fail "the RNA set's membership (identities included) differs from its DNA copy's"
"$TALARIA" reconstruct -d "$T/rna/r.deltas.tal" -w 70 >"$T/rna.back" ||
    fail "reconstruct of the RNA reduction failed"
cmp -s "$T/rna.fa" "$T/rna.back" || fail "the RNA set does not come back byte for byte"
grep -v '>' "$T/rna/r.fa" | grep -q T && fail "the reduced RNA FASTA has T's: the references were changed"

# ---- N matches nothing (not even N); case does not matter ----
# ref: 500 bases with 60 N's; withN: the same but one base shorter (not an exact copy),
# its 60 N's facing the reference's: identity 439/499 = 0.88 if N matches nothing.
# ref2: 500 plain bases; lower: the same in lower case (identity 1 if case does not matter)
awk 'BEGIN { seed = 11; for (i = 0; i < 500; i++) { seed = (seed * 16807) % 2147483647; s = s substr("ACGT", seed % 4 + 1, 1) }
    n = substr(s, 1, 200) sprintf("%60s", "") substr(s, 261); gsub(/ /, "N", n)
    print ">ref"; print n; print ">withN"; print substr(n, 1, 499)
    print ">ref2"; print s; print ">lower"; print tolower(substr(s, 1, 499)) }' >"$T/n2.fa"
mkdir -p "$T/n90" "$T/n85"
(cd "$T/n90" && "$TALARIA" reduce -q -i ../n2.fa -o r.fa --identity 0.9 --coverage 0.8) ||
    fail "reduce of the N set at 0.9 failed"
(cd "$T/n85" && "$TALARIA" reduce -q -i ../n2.fa -o r.fa --identity 0.85 --coverage 0.8) ||
    fail "reduce of the N set at 0.85 failed"
grep -q '^>withN$' "$T/n90/r.fa" || fail "at 0.9 a member whose 60 N's face N's joined (N counted as identical)"
grep -q '^>withN$' "$T/n85/r.fa" && fail "at 0.85 a member at 0.88 identity did not join"
grep -q '^lower	' "$T/n90/r.members.tsv" || fail "a lower-case copy did not join at 0.9"
"$TALARIA" reconstruct -d "$T/n90/r.deltas.tal" >"$T/n.back" || fail "reconstruct of the N set failed"
cmp -s "$T/n2.fa" "$T/n.back" || fail "the N set (N's and lower case) does not come back byte for byte"

# ---- both strands: reverse complements join their forward copies ----
# 300 records of the DNA set (every other one), reverse complemented (A C G T and an
# IUPAC R/Y pair, lower case kept), added under new names; a lower-case copy of one
awk 'function rc(s,   o, i, c) { o = ""; for (i = length(s); i >= 1; i--) { c = substr(s, i, 1)
        o = o (c == "A" ? "T" : c == "C" ? "G" : c == "G" ? "C" : c == "T" ? "A" : c == "R" ? "Y" : c) }
        return o }
    function wrap(s,   o, j) { o = ""; for (j = 1; j <= length(s); j += 70) o = o substr(s, j, 70) "\n"; return o }
    /^>/ { if (seq != "" && n++ % 2 == 0 && k < 300) { k++; out = out ">rc_" substr(h, 2) "\n" wrap(rc(seq)) }
           h = $0; seq = ""; next }
    { seq = seq $0 }
    END { printf "%s", out > "/dev/stderr" }' "$T/dna.fa" 2>"$T/rc.part" >/dev/null
[ "$(grep -c '^>rc_' "$T/rc.part")" -eq 300 ] || fail "the reverse complements are $(grep -c '^>rc_' "$T/rc.part") records, not 300"
cat "$T/dna.fa" "$T/rc.part" >"$T/both.fa"
for x in both plus; do
    mkdir -p "$T/s_$x"
    (cd "$T/s_$x" && "$TALARIA" reduce -q -i ../both.fa -o r.fa --clstr r.clstr --strand $x) ||
        fail "reduce --strand $x of the set with reverse complements failed"
done
got=$(grep -c '>' "$T/s_both/r.fa")
[ "$got" -eq "$refs" ] || fail "with 300 reverse complements added: $got references, not the $refs of the plus-strand set"
grep -q '^>rc_' "$T/s_both/r.fa" && fail "a reverse complement stayed a reference"
minus=$(awk -F'\t' '/^rc_/ && $5 == "-"' "$T/s_both/r.members.tsv" | wc -l)
[ "$minus" -eq 300 ] || fail "$minus of the 300 reverse complements are members on the minus strand"
awk -F'\t' '!/^rc_/ && !/^#/ && $5 != "+"' "$T/s_both/r.members.tsv" | grep -q . &&
    fail "a plus-strand member is marked otherwise in the membership"
[ "$(grep -c 'at -/' "$T/s_both/r.clstr")" -eq 300 ] || fail "the .clstr does not mark 300 members at -/"
"$TALARIA" reconstruct -d "$T/s_both/r.deltas.tal" -w 70 >"$T/both.back" || fail "reconstruct of the two-strand reduction failed"
cmp -s "$T/both.fa" "$T/both.back" || fail "the reverse complements do not come back byte for byte"
"$TALARIA" validate "$T/both.fa" "$T/s_both/r.fa" "$T/s_both/r.deltas.tal" >/dev/null 2>&1 ||
    fail "validate refuses the two-strand reduction"
plus=$(grep -c '>' "$T/s_plus/r.fa")
[ "$plus" -gt "$refs" ] && grep -q '^>rc_' "$T/s_plus/r.fa" ||
    fail "--strand plus: $plus references, none a reverse complement; they should stay apart"
grep -q 'at -/' "$T/s_plus/r.clstr" && fail "--strand plus put a member on the minus strand"
# an RNA reverse complement: the reference's complement of A is U, the member keeps its letters
awk '/^>/ { print; next } { gsub(/T/, "U"); print }' "$T/both.fa" >"$T/rnaboth.fa"
mkdir -p "$T/s_rna"
(cd "$T/s_rna" && "$TALARIA" reduce -q -i ../rnaboth.fa -o r.fa) || fail "reduce of the RNA set with reverse complements failed"
[ "$(grep -c '>' "$T/s_rna/r.fa")" -eq "$refs" ] || fail "the RNA reverse complements did not all join"
"$TALARIA" reconstruct -d "$T/s_rna/r.deltas.tal" -w 70 | cmp -s - "$T/rnaboth.fa" ||
    fail "the RNA reverse complements do not come back byte for byte"
finish
