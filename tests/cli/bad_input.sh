# Table-driven bad inputs (tests/data/bad/cases.tsv) plus truncated compressed streams:
# each is exit 3 (a missing file exit 1), names file and line, and leaves nothing at the
# output path.
. "$(dirname "$0")/lib.sh"

check_case() { # file expected_exit message
    out="$T/out_$(basename "$1").tal"
    expect_exit "$2" "$TALARIA" index -q -i "$1" -o "$out" && expect_stderr "$3"
    [ -e "$out" ] && fail "$1: output $out exists after a failed index"
    ls "$T" | grep -q "tmp-" && fail "$1: a temporary directory was left behind"
}

while IFS='	' read -r file code msg; do
    case "$file" in '#'* | '') continue ;; esac
    check_case "$DATA/bad/$file" "$code" "$msg"
done <"$DATA/bad/cases.tsv"

# Truncated compressed inputs: the stream ends before its end marker, named at the line
# where its data ends (lz4 -B4: 64 KiB blocks, so half the file decodes).
awk 'BEGIN { srand(3); for (i = 0; i < 4000; i++) { printf(">r%d\n", i); s = ""; for (j = 0; j < 200; j++) s = s substr("ACDEFGHIKLMNPQRSTVWY", int(rand() * 20) + 1, 1); print s } }' >"$T/big.fa"
gzip -c "$T/big.fa" >"$T/full.gz"
zstd -q -c "$T/big.fa" >"$T/full.zst"
lz4 -q -B4 -c "$T/big.fa" >"$T/full.lz4"
for ext in gz zst lz4; do
    size=$(wc -c <"$T/full.$ext")
    head -c $((size / 2)) "$T/full.$ext" >"$T/cut.$ext"
    case $ext in gz) name=gzip ;; zst) name=zstd ;; lz4) name=lz4 ;; esac
    check_case "$T/cut.$ext" 3 "cut.$ext: line "
    expect_stderr "$name stream is truncated"
    line=$(sed -n 's/.*cut\.'"$ext"': line \([0-9]*\): .* stream is truncated$/\1/p' "$T/err")
    [ -n "$line" ] && [ "$line" -gt 1000 ] && [ "$line" -lt 8000 ] ||
        fail "a truncated $ext stream is named at line '$line', not where its data ends"
done

# A compressed file of another kind gets a clear message rather than garbage.
if command -v bzip2 >/dev/null; then
    bzip2 -c "$DATA/small.fa" >"$T/x.fa"
    check_case "$T/x.fa" 3 "bzip2-compressed input is not supported"
fi

# --allow-duplicates turns the duplicate error into a count, keeping the first record.
expect_exit 0 "$TALARIA" index -i "$DATA/bad/duplicate.fa" -o "$T/dup.tal" --allow-duplicates
expect_stderr "1 duplicate accessions skipped"
"$TALARIA" get -w 0 "$T/dup.tal" a >"$T/a.fa"
printf '>a\nACGT\n' | cmp -s - "$T/a.fa" || fail "--allow-duplicates did not keep the first record"
finish
