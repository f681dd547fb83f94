# A byte changed anywhere in a store's files is reported by verify (exit 3 naming the
# section), and get/stats on the damaged store give exit 3 or correct output, never a crash.
. "$(dirname "$0")/lib.sh"

in="$DATA/small.fa"
expect_exit 0 "$TALARIA" index -q -i "$in" -o "$T/good.tal"
grep '^>' "$in" | sed 's/^>//' | awk '{ print $1 }' >"$T/ids"
"$TALARIA" get -w 0 -f "$T/ids" "$T/good.tal" >"$T/want_get"
"$TALARIA" stats -i "$T/good.tal" | sed 1d >"$T/want_stats"

# flip FILE OFFSET: xor the byte at OFFSET with 0x5a
flip() {
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((b ^ 90)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

checked=0
for f in meta headers residues hdr_offsets seq_offsets lengths checksums keys catalog.sqlite; do
    size=$(wc -c <"$T/good.tal/$f")
    for pos in 0 1 $((size / 3)) $((size / 2)) $((size - 9)) $((size - 1)); do
        [ "$pos" -ge 0 ] && [ "$pos" -lt "$size" ] || continue
        rm -rf "$T/bad.tal"
        cp -r "$T/good.tal" "$T/bad.tal"
        flip "$T/bad.tal/$f" "$pos"
        cmp -s "$T/good.tal/$f" "$T/bad.tal/$f" && { fail "flip did not change $f"; continue; }
        checked=$((checked + 1))
        "$TALARIA" verify "$T/bad.tal" >/dev/null 2>"$T/err"
        rc=$?
        [ "$rc" -eq 3 ] || fail "verify exit $rc (not 3) after a flip in $f at $pos"
        grep -q "bad.tal" "$T/err" || fail "verify message does not name the store: $(cat "$T/err")"
        "$TALARIA" get -w 0 -f "$T/ids" "$T/bad.tal" >"$T/got" 2>/dev/null
        rc=$?
        if [ "$rc" -eq 0 ]; then
            cmp -s "$T/want_get" "$T/got" || fail "get exit 0 with wrong output after a flip in $f at $pos"
        elif [ "$rc" -ne 3 ]; then
            fail "get exit $rc after a flip in $f at $pos"
        fi
        "$TALARIA" stats -i "$T/bad.tal" >"$T/got" 2>/dev/null
        rc=$?
        if [ "$rc" -eq 0 ]; then
            sed 1d "$T/got" | cmp -s "$T/want_stats" - || fail "stats exit 0 with wrong output after a flip in $f at $pos"
        elif [ "$rc" -ne 3 ]; then
            fail "stats exit $rc after a flip in $f at $pos"
        fi
    done
done
[ "$checked" -ge 40 ] || fail "only $checked corruptions were tried"

# Named sections: a flipped residue is found by its section checksum.
rm -rf "$T/bad.tal"; cp -r "$T/good.tal" "$T/bad.tal"; flip "$T/bad.tal/residues" 5
expect_exit 3 "$TALARIA" verify "$T/bad.tal" && expect_stderr "residues section"
rm -rf "$T/bad.tal"; cp -r "$T/good.tal" "$T/bad.tal"; flip "$T/bad.tal/catalog.sqlite" 200
expect_exit 3 "$TALARIA" verify "$T/bad.tal" && expect_stderr "catalog section"

# Truncated and missing files.
for f in residues keys lengths meta catalog.sqlite; do
    rm -rf "$T/bad.tal"; cp -r "$T/good.tal" "$T/bad.tal"
    size=$(wc -c <"$T/bad.tal/$f")
    truncate -s $((size / 2)) "$T/bad.tal/$f"
    expect_exit 3 "$TALARIA" verify "$T/bad.tal"
    rm -f "$T/bad.tal/$f"
    expect_exit 3 "$TALARIA" verify "$T/bad.tal"
done
# a store that is not there is an I/O failure; a directory that holds no store is bad input
expect_exit 1 "$TALARIA" verify "$T/nonexistent.tal" && expect_stderr "cannot open $T/nonexistent.tal: No such file"
expect_exit 1 "$TALARIA" get "$T/nonexistent.tal" x && expect_stderr "cannot open $T/nonexistent.tal: No such file"
expect_exit 3 "$TALARIA" get "$DATA" x && expect_stderr "is not a talaria store"
finish
