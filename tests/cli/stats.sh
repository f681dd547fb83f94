# talaria stats on FASTA and on a store agree, and match independently computed values.
. "$(dirname "$0")/lib.sh"

in="$DATA/small.fa"
"$TALARIA" index -q -i "$in" -o "$T/db.tal" || fail "index"
expect_exit 0 "$TALARIA" stats -i "$in" && sed -n 3,11p "$T/out" >"$T/fasta_stats"
expect_exit 0 "$TALARIA" stats -i "$T/db.tal" && sed -n 3,11p "$T/out" >"$T/store_stats"
cmp -s "$T/fasta_stats" "$T/store_stats" || fail "FASTA and store stats differ: $(diff "$T/fasta_stats" "$T/store_stats")"

# independent computation with awk
unwrap "$in" | awk '!/^>/ { print length($0) }' >"$T/lens"
printf '0\n' >>"$T/lens" # empty_seq prints no line in unwrap
n=$(grep -c '^>' "$in")
total=$(awk '{ s += $1 } END { print s }' "$T/lens")
max=$(sort -n "$T/lens" | tail -1)
n50=$(sort -rn "$T/lens" | awk -v t="$total" '{ c += $1; if (2 * c >= t) { print $1; exit } }')
grep -qx "records	$n" "$T/store_stats" || fail "records != $n"
grep -qx "residues	$total" "$T/store_stats" || fail "residues != $total"
grep -qx "max_length	$max" "$T/store_stats" || fail "max_length != $max"
grep -qx "min_length	0" "$T/store_stats" || fail "min_length != 0"
grep -qx "n50	$n50" "$T/store_stats" || fail "n50 != $n50"
grep -qx "alphabet	protein" "$T/store_stats" || fail "alphabet"

# a nucleotide file
printf '>n1\nACGTACGTNN\n>n2\nacgu\n' >"$T/nt.fa"
expect_exit 0 "$TALARIA" stats -i "$T/nt.fa" && grep -qx "alphabet	nucleotide" "$T/out" || fail "nucleotide alphabet"
grep -qx "median_length	7.0" "$T/out" || fail "median of 10 and 4 should be 7.0"

expect_exit 0 "$TALARIA" stats -i "$T/db.tal" --format json
grep -q "\"records\":$n," "$T/out" && grep -q '"alphabet":"protein"' "$T/out" || fail "json: $(cat "$T/out")"
if command -v python3 >/dev/null; then python3 -m json.tool "$T/out" >/dev/null || fail "invalid JSON"; fi
expect_exit 0 "$TALARIA" stats -i "$T/db.tal" --format tsv
[ "$(wc -l <"$T/out")" -eq 2 ] || fail "tsv should be a header row and a value row"
[ "$(head -1 "$T/out" | awk -F'\t' '{ print NF }')" = "$(tail -1 "$T/out" | awk -F'\t' '{ print NF }')" ] || fail "tsv column counts differ"
expect_exit 0 sh -c "gzip -c '$in' | '$TALARIA' stats -i -"
expect_exit 2 "$TALARIA" stats -i "$in" --format xml
expect_exit 3 "$TALARIA" stats -i "$DATA/bad/digit.fa" && expect_stderr "digit.fa: line 4"
finish
