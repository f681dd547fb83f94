# gzip, zstd, lz4 (by magic bytes, whatever the file name) and stdin give the same store
# contents as the plain file.
. "$(dirname "$0")/lib.sh"

in="$DATA/small.fa"
grep '^>' "$in" | sed 's/^>//' | awk '{ print $1 }' >"$T/ids"
"$TALARIA" index -q -i "$in" -o "$T/plain.tal" || fail "plain index"
"$TALARIA" get -w 0 -f "$T/ids" "$T/plain.tal" >"$T/want" || fail "plain get"

gzip -c "$in" >"$T/in.gz"
zstd -q -c "$in" >"$T/in.zst"
lz4 -q -c "$in" >"$T/in.lz4"
cat "$T/in.gz" "$T/in.gz" >"$T/twice.gz" # two gzip members
cp "$T/in.zst" "$T/misnamed.fa"          # detection is by content, not name

for f in in.gz in.zst in.lz4 misnamed.fa; do
    expect_exit 0 "$TALARIA" index -q -i "$T/$f" -o "$T/$f.tal" || continue
    "$TALARIA" get -w 0 -f "$T/ids" "$T/$f.tal" >"$T/got" || fail "$f: get failed"
    cmp -s "$T/want" "$T/got" || fail "$f: get output differs from the plain store"
done

# Two concatenated gzip members hold every record twice: duplicates unless allowed.
expect_exit 3 "$TALARIA" index -q -i "$T/twice.gz" -o "$T/twice.tal" && expect_stderr "duplicate accession"
expect_exit 0 "$TALARIA" index -i "$T/twice.gz" -o "$T/twice.tal" --allow-duplicates
expect_stderr "duplicate accessions skipped"

for f in in.gz in.zst; do
    expect_exit 0 sh -c "'$TALARIA' index -q -i - -o '$T/stdin_$f.tal' <'$T/$f'" || continue
    "$TALARIA" get -w 0 -f "$T/ids" "$T/stdin_$f.tal" >"$T/got"
    cmp -s "$T/want" "$T/got" || fail "stdin ($f): get output differs"
done
expect_exit 0 sh -c "cat '$in' | '$TALARIA' index -q -i - -o '$T/pipe.tal'"
"$TALARIA" get -w 0 -f "$T/ids" "$T/pipe.tal" >"$T/got"
cmp -s "$T/want" "$T/got" || fail "plain stdin: get output differs"
finish
