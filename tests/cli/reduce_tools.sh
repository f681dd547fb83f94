# talaria validate and talaria expand on a small reduction built here: exact rebuild,
# a reduced FASTA that does not belong, hit expansion and hit recovery, each checked
# against values computed independently from the input and the membership table.
. "$(dirname "$0")/lib.sh"

# 30 proteins: five families of five (substitutions at fixed, distinct positions; one
# family with UniProt-style headers, one with an exact copy and a prefix), a pair too
# far apart to merge, and three unrelated sequences. The random numbers are a
# Park-Miller generator so every awk gives the same file. Lengths are primes, so no
# identity lies near a multiple of 0.05.
awk '
function rnd(n) { seed = (seed * 16807) % 2147483647; return seed % n }
function randseq(len,   s, j) { s = ""; for (j = 0; j < len; j++) s = s substr(AA, rnd(20) + 1, 1); return s }
function mutate(s, nsub,   k, p, c) {
    for (k = 0; k < nsub; k++) {
        p = (k * 13 + 7) % length(s) + 1
        c = index(AA, substr(s, p, 1))
        s = substr(s, 1, p - 1) substr(AA, (c + rnd(19)) % 20 + 1, 1) substr(s, p + 1)
    }
    return s
}
function put(h, s,   j) { print ">" h; for (j = 1; j <= length(s); j += 50) print substr(s, j, 50) }
function family(name, len, n1, n2, n3, n4,   b) {
    b = randseq(len)
    put(name "_1 family " name, b)
    put(name "_2 family " name, mutate(b, n1))
    put(name "_3 family " name, mutate(b, n2))
    put(name "_4 family " name, mutate(b, n3))
    put(name "_5 family " name, mutate(b, n4))
}
BEGIN {
    AA = "ACDEFGHIKLMNPQRSTVWY"; seed = 20261121
    family("fam1", 157, 2, 4, 6, 9)
    b = randseq(163)
    put("sp|P20001|FAM2_HUMAN family 2", b)
    for (k = 2; k <= 5; k++) put("sp|P2000" k "|FAM2_" k " family 2", mutate(b, 2 * k - 3))
    b = randseq(149)
    put("fam3_1 family 3", b)
    put("fam3_2 exact copy", b)
    put("fam3_3 prefix", substr(b, 1, 140))
    put("fam3_4 family 3", mutate(b, 10))
    put("fam3_5 family 3", mutate(b, 13))
    family("fam4", 173, 2, 8, 12, 16)
    family("fam5", 139, 1, 2, 3, 4)
    b = randseq(127)
    put("far_1 apart", b)
    put("far_2 apart", mutate(b, 25))
    put("single1 alone", randseq(151))
    put("single2 alone", randseq(131))
    put("single3 alone", randseq(97))
}' >"$T/in.fa"
[ "$(grep -c '^>' "$T/in.fa")" -eq 30 ] || fail "the test input should have 30 records"

expect_exit 0 "$TALARIA" reduce -q -i "$T/in.fa" -o "$T/red.fasta" --identity 0.9 || {
    finish
}
tsv="$T/red.members.tsv" deltas="$T/red.deltas.tal"
[ -s "$deltas" ] && [ -s "$tsv" ] || fail "reduce did not write red.deltas.tal and red.members.tsv"
refs=$(grep -c '^>' "$T/red.fasta")
members=$(grep -vc '^#' "$tsv")
[ $((refs + members)) -eq 30 ] || fail "$refs references + $members members != 30 records"
[ "$members" -ge 15 ] || fail "only $members members: the families were not merged"

# report_value KEY : the value of "KEY: value" in the last command's stdout
report_value() { sed -n "s/^$1: //p" "$T/out"; }
# expect_value KEY VALUE
expect_value() {
    got=$(report_value "$1")
    [ "$got" = "$2" ] || fail "validate reported $1: '$got', expected '$2'"
}

# ---- validate: the reduction rebuilds the input exactly ----
expect_exit 0 "$TALARIA" validate "$T/in.fa" "$T/red.fasta" "$deltas"
expect_value records 30
expect_value records_exact 30
expect_value references "$refs"
expect_value members "$members"
expect_value sequence_coverage 1.000000
expect_value reduction_ratio_records "$(awk -v r="$refs" 'BEGIN { printf "%.6f", 30 / r }')"
all=$(unwrap "$T/in.fa" | awk '!/^>/ { n += length($0) } END { print n }')
kept=$(unwrap "$T/red.fasta" | awk '!/^>/ { n += length($0) } END { print n }')
expect_value reduction_ratio_residues "$(awk -v a="$all" -v k="$kept" 'BEGIN { printf "%.6f", a / k }')"
# the identity histogram and extremes from the membership table (4 decimals)
awk -F'\t' '!/^#/ {
        b = $3 >= 1 ? "1.00" : $3 < 0.5 ? "lt_0.50" : sprintf("ge_%.2f", int($3 * 20 + 1e-9) / 20)
        n[b]++
        if (min == "" || $3 < min) min = $3
        if (cmin == "" || $4 < cmin) cmin = $4
    }
    END {
        print "1.00", n["1.00"] + 0
        for (k = 19; k >= 10; k--) { b = sprintf("ge_%.2f", k / 20); print b, n[b] + 0 }
        print "lt_0.50", n["lt_0.50"] + 0
        print "min", min; print "cmin", cmin
    }' "$tsv" >"$T/hist"
while read -r bin count; do
    case $bin in
    min | cmin)
        key=identity_min
        [ "$bin" = cmin ] && key=coverage_min
        awk -v a="$(report_value $key)" -v b="$count" 'BEGIN { exit !(a - b < 0.0001 && b - a < 0.0001) }' ||
            fail "validate reported $key: $(report_value $key), the membership table says $count"
        ;;
    *) expect_value "identity_$bin" "$count" ;;
    esac
done <"$T/hist"
[ "$(report_value identity_1.00)" -ge 2 ] || fail "the exact copy and the prefix should have identity 1.00"

# the original as a store
"$TALARIA" index -q -i "$T/in.fa" -o "$T/in.tal" || fail "index"
expect_exit 0 "$TALARIA" validate "$T/in.tal" "$T/red.fasta" "$deltas"
expect_value sequence_coverage 1.000000

# ---- validate: mismatches are exit 3 and name the first record that differs ----
# one residue changed in the second reference: the first record that needs it fails
awk 'h == 2 && !done { c = substr($0, 1, 1); $0 = (c == "A" ? "C" : "A") substr($0, 2); done = 1 }
     /^>/ { h++ } { print }' "$T/red.fasta" >"$T/bad.fasta"
cmp -s "$T/bad.fasta" "$T/red.fasta" && fail "bad.fasta was not changed"
ref2=$(awk '/^>/ && ++i == 2 { print substr($1, 2) }' "$T/red.fasta")
first=$(awk -F'\t' -v r="$ref2" '
    FNR == NR { if (!/^#/ && $2 == r) user[$1] = 1; next }
    /^>/ { i++; split(substr($0, 2), w, /[ \t]/); if (w[1] == r || w[1] in user) { print i " (" w[1] ")"; exit } }' \
    "$tsv" "$T/in.fa")
expect_exit 3 "$TALARIA" validate "$T/in.fa" "$T/bad.fasta" "$deltas" && expect_stderr "record $first"
grep -q '^sequence_coverage: 1.000000$' "$T/out" && fail "a changed reference still reports full coverage"
# a changed header in the original
awk '/^>/ && ++i == 5 { $0 = $0 "x" } { print }' "$T/in.fa" >"$T/hdr.fa"
name5=$(awk '/^>/ && ++i == 5 { print substr($1, 2) }' "$T/in.fa")
expect_exit 3 "$TALARIA" validate "$T/hdr.fa" "$T/red.fasta" "$deltas" && expect_stderr "record 5 ($name5)"
expect_value records_exact 29
# a record missing from the end, and one too many
unwrap "$T/in.fa" | head -n 58 >"$T/short.fa"
expect_exit 3 "$TALARIA" validate "$T/short.fa" "$T/red.fasta" "$deltas" && expect_stderr "has 29 records"
{ cat "$T/in.fa"; printf '>extra1 one more\nMKV\n'; } >"$T/long.fa"
expect_exit 3 "$TALARIA" validate "$T/long.fa" "$T/red.fasta" "$deltas" && expect_stderr "record 31 (extra1)"
expect_exit 2 "$TALARIA" validate "$T/in.fa" "$T/red.fasta"
expect_exit 2 "$TALARIA" validate --original-results "$T/x.m8" "$T/in.fa" "$T/red.fasta" "$deltas" &&
    expect_stderr "go together"

# ---- expand ----
# expected_expand HITS : the expansion done here with awk from in.fa and the table: each
# hit line, then for a hit on a reference one copy per member in input order, named as
# the hit named the reference (first word, or ACC of "sp|ACC|NAME")
expected_expand() {
    awk -F'\t' -v OFS='\t' '
        function acc_of(w,   p) { return split(w, p, "|") >= 2 ? p[2] : w }
        FILENAME == ARGV[1] { if (/^>/) { split(substr($0, 2), w, /[ \t]/); order[w[1]] = ++n } next }
        FILENAME == ARGV[2] {
            if (/^#/) next
            list[$2] = list[$2] SUBSEP $1
            if ($2 ~ /[|]/) alias[acc_of($2)] = $2
            next
        }
        /^#/ || /^[ \t\r]*$/ { print; next }
        {
            print
            s = $2; by_alias = 0
            if (!(s in list) && (s in alias)) { s = alias[s]; by_alias = 1 }
            if (!(s in list)) next
            k = split(substr(list[s], 2), m, SUBSEP)
            for (i = 2; i <= k; i++)
                for (j = i; j > 1 && order[m[j]] < order[m[j - 1]]; j--) { t = m[j]; m[j] = m[j - 1]; m[j - 1] = t }
            for (i = 1; i <= k; i++) { $2 = by_alias ? acc_of(m[i]) : m[i]; print }
        }' "$T/in.fa" "$tsv" "$1"
}
# the reference with the most members, one with none, the UniProt-style one, a member
big=$(awk -F'\t' '!/^#/ { n[$2]++ } END { for (r in n) if (n[r] > best) { best = n[r]; b = r } print b }' "$tsv")
lone=$(awk '/^>/ { print substr($1, 2) }' "$T/red.fasta" |
    awk -F'\t' 'FNR == NR { if (!/^#/) has[$2] = 1; next } !($1 in has) { print; exit }' "$tsv" -)
uni=$(awk -F'\t' '!/^#/ && $2 ~ /^sp[|]/ { print $2; exit }' "$tsv")
uni_acc=$(echo "$uni" | cut -d'|' -f2)
member=$(awk -F'\t' '!/^#/ { print $1; exit }' "$tsv")
[ -n "$big" ] && [ -n "$lone" ] && [ -n "$uni" ] && [ -n "$member" ] ||
    fail "the reduction lacks a reference with members ($big), one without ($lone), the sp| family ($uni) or a member ($member)"
printf '# BLASTP 2.14.0\nqA\t%s\t99.1\t150\t1\t0\t1\t150\t1\t150\t1e-80\t300\nqA\tUNKNOWN1\t50.0\t10\t5\t0\t1\t10\t1\t10\t0.5\t20\n\nqB\t%s\t97.0\t140\t4\t0\t1\t140\t1\t140\t1e-70\t280\nqB\t%s\t90.0\t131\t13\t0\t1\t131\t1\t131\t1e-60\t250\nqC\t%s\t95.5\t163\t7\t0\t1\t163\t1\t163\t1e-85\t320\nqC\t%s\t95.5\t163\t7\t0\t1\t163\t1\t163\t1e-85\t320\n' \
    "$big" "$member" "$lone" "$uni_acc" "$uni" >"$T/hits.m8"
expected_expand "$T/hits.m8" >"$T/expected.m8"
big_members=$(awk -F'\t' -v r="$big" '!/^#/ && $2 == r' "$tsv" | wc -l)
uni_members=$(awk -F'\t' -v r="$uni" '!/^#/ && $2 == r' "$tsv" | wc -l)
[ "$(wc -l <"$T/expected.m8")" -eq $((8 + big_members + 2 * uni_members)) ] ||
    fail "the expected expansion has $(wc -l <"$T/expected.m8") lines"
expect_exit 0 "$TALARIA" expand -d "$deltas" "$T/hits.m8"
cmp -s "$T/out" "$T/expected.m8" || fail "expand output differs from the expected: $(diff "$T/expected.m8" "$T/out" | head -20)"
expect_stderr "1 hit line names a subject that is not in"
expect_stderr "UNKNOWN1"
grep -q "^qC	$uni_acc	" "$T/out" && [ "$(grep -c "^qC	[^|	]*	" "$T/out")" -eq $((1 + uni_members)) ] ||
    fail "a hit on $uni_acc should expand to its members' accessions"
# stdin, '-', -q, -r
"$TALARIA" expand -d "$deltas" <"$T/hits.m8" 2>/dev/null | cmp -s - "$T/expected.m8" || fail "expand from stdin"
"$TALARIA" expand -q -d "$deltas" -r "$T/red.fasta" - <"$T/hits.m8" >"$T/out" 2>"$T/err" || fail "expand -q -r ... -"
cmp -s "$T/out" "$T/expected.m8" || fail "expand - differs"
[ -s "$T/err" ] && fail "expand -q wrote to stderr: $(cat "$T/err")"
# --strict names the first unknown subject
expect_exit 3 "$TALARIA" expand --strict -d "$deltas" "$T/hits.m8" && expect_stderr "line 3: subject 'UNKNOWN1'"
# -o: written atomically, not over an existing file without --force
expect_exit 0 "$TALARIA" expand -q -d "$deltas" -o "$T/exp.m8" "$T/hits.m8"
cmp -s "$T/exp.m8" "$T/expected.m8" || fail "expand -o differs from the expected output"
echo keep >"$T/keep.m8"
expect_exit 1 "$TALARIA" expand -q -d "$deltas" -o "$T/keep.m8" "$T/hits.m8" && expect_stderr "already exists"
[ "$(cat "$T/keep.m8")" = keep ] || fail "expand replaced an existing output without --force"
expect_exit 0 "$TALARIA" expand -q -f -d "$deltas" -o "$T/keep.m8" "$T/hits.m8"
cmp -s "$T/keep.m8" "$T/expected.m8" || fail "expand --force did not replace the output"
# a line without a subject: exit 3 naming file and line, nothing left behind
{ cat "$T/hits.m8"; printf 'qD only-one-field\n'; } >"$T/bad.m8"
expect_exit 3 "$TALARIA" expand -d "$deltas" -o "$T/never.m8" "$T/bad.m8" && expect_stderr "bad.m8: line 9"
for left in "$T"/never.m8*; do [ -e "$left" ] && fail "a failed expand left $left"; done
expect_exit 2 "$TALARIA" expand "$T/hits.m8" && expect_stderr "missing -d"
expect_exit 3 "$TALARIA" expand -d "$T/in.fa" "$T/hits.m8"

# ---- validate: hit recovery ----
# the full search: every record of the big family and of the sp| family (by ACC), two
# lone references, a repeated pair, a comment; the reduced search hits the big
# reference, the sp| reference by ACC, one lone reference and one member directly
awk -F'\t' -v big="$big" -v uni="$uni" '
    function acc_of(w,   p) { return split(w, p, "|") >= 2 ? p[2] : w }
    !/^#/ && $2 == big { print "qA\t" $1 "\t90.0\t100"; print "qA\t" $2 "\t90.0\t100" }
    !/^#/ && $2 == uni { print "qC\t" acc_of($1) "\t90.0\t100"; print "qC\t" acc_of($2) "\t90.0\t100" }
    !/^#/ && $2 != big && $2 != uni && !done++ { print "qE\t" $1 "\t88.0\t90" }' "$tsv" | sort -u >"$T/a.m8"
repeat=$(head -1 "$T/a.m8")
{
    echo "# full search"
    printf 'qB\t%s\t97.0\t140\n' "$lone"
    printf 'qB\tsingle2\t40.0\t20\nqB\tsingle3\t40.0\t20\n'
    echo "$repeat"
} >>"$T/a.m8"
other_member=$(awk -F'\t' -v big="$big" -v uni="$uni" '!/^#/ && $2 != big && $2 != uni { print $1; exit }' "$tsv")
printf 'qA\t%s\t99.0\t150\nqC\t%s\t95.5\t163\nqB\t%s\t97.0\t140\nqE\t%s\t88.0\t90\nqZ\tUNKNOWN2\t10\t5\n' \
    "$big" "$uni_acc" "$lone" "$other_member" >"$T/b.m8"
expected_expand "$T/b.m8" >"$T/b_expanded.m8"
awk -F'\t' 'FNR == NR { got[$1 SUBSEP $2] = 1; next }
    /^#/ || NF < 2 { next }
    !(($1 SUBSEP $2) in seen) { seen[$1 SUBSEP $2] = 1; total++; if (($1 SUBSEP $2) in got) found++ }
    END { printf "%d %d %.6f\n", total, found, found / total }' "$T/b_expanded.m8" "$T/a.m8" >"$T/recovery"
read -r pairs found fraction <"$T/recovery"
if [ "$found" -ge "$pairs" ] || [ "$found" -eq 0 ]; then
    fail "the recovery test should recover some but not all pairs ($found of $pairs)"
fi
expect_exit 0 "$TALARIA" validate --original-results "$T/a.m8" --reduced-results "$T/b.m8" \
    "$T/in.fa" "$T/red.fasta" "$deltas"
expect_value hits_original "$pairs"
expect_value hits_recovered "$found"
expect_value hit_recovery "$fraction"
expect_stderr "UNKNOWN2"
expect_value sequence_coverage 1.000000
printf 'qA\tx\t1\nno-tab-here\n' >"$T/a_bad.m8"
expect_exit 3 "$TALARIA" validate --original-results "$T/a_bad.m8" --reduced-results "$T/b.m8" \
    "$T/in.fa" "$T/red.fasta" "$deltas" && expect_stderr "a_bad.m8: line 2"
finish
