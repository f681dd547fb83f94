# Compressed stores (--compress lz4|zstd): the same answers as a raw store for every
# accession and region, verify/stats --full on them, damaged chunks named, bad options.
. "$(dirname "$0")/lib.sh"

# 3,000 records with family-like repeats, empty sequences, and one record longer than
# a chunk (it must get a chunk of its own)
awk 'BEGIN {
    srand(11); aa = "ACDEFGHIKLMNPQRSTVWY"
    for (f = 0; f < 300; f++) {
        base = ""; n = 50 + int(rand() * 400)
        for (i = 0; i < n; i++) base = base substr(aa, 1 + int(rand() * 20), 1)
        for (m = 0; m < 10; m++) {
            s = base
            for (k = 0; k < 5; k++) { p = 1 + int(rand() * length(s)); s = substr(s, 1, p - 1) substr(aa, 1 + int(rand() * 20), 1) substr(s, p + 1) }
            if (f == 7 && m == 3) s = ""
            printf ">fam%d_%d some protein OX=%d\n", f, m, 9606 + f
            for (i = 1; i <= length(s); i += 60) print substr(s, i, 60)
        }
    }
    s = ""; for (i = 0; i < 150000; i++) s = s substr(aa, 1 + int(rand() * 20), 1)
    print ">giant a long one"; for (i = 1; i <= length(s); i += 60) print substr(s, i, 60)
}' >"$T/in.fa"
cat "$DATA/small.fa" >>"$T/in.fa"

"$TALARIA" index -q -i "$T/in.fa" -o "$T/raw.tal" || fail "index raw"
"$TALARIA" index -q --compress lz4 --chunk-size 64K -i "$T/in.fa" -o "$T/lz4.tal" || fail "index lz4"
"$TALARIA" index -q -t 1 --compress lz4 --level 9 --chunk-size 64K -i "$T/in.fa" -o "$T/lz4hc.tal" ||
    fail "index lz4 HC, one thread"
"$TALARIA" index -q -t 3 --compress zstd --level 19 --chunk-size 100K -i "$T/in.fa" -o "$T/zstd.tal" ||
    fail "index zstd"

grep '^>' "$T/in.fa" | awk '{ print substr($1, 2) }' >"$T/ids"
# regions, unknown accessions and an alias mixed in, in an order that jumps between chunks
{ shuf -n 500 --random-source=<(yes) "$T/ids"; echo 'giant:149990-150010'; echo 'fam0_1:5-9';
  echo 'nope'; echo 'P69905'; echo 'giant:1-3'; echo 'fam299_9:1'; } >"$T/mixed"
"$TALARIA" get -w 0 -f "$T/ids" "$T/raw.tal" >"$T/raw.all" || fail "get all from raw"
"$TALARIA" get -w 60 -f "$T/mixed" "$T/raw.tal" >"$T/raw.mixed" 2>"$T/raw.err"
raw_rc=$?
[ "$raw_rc" -eq 3 ] || fail "raw mixed get should exit 3 (one missing), got $raw_rc"
unwrap "$T/in.fa" | cmp -s - "$T/raw.all" || fail "raw store does not give the input back"
for db in lz4 lz4hc zstd; do
    "$TALARIA" verify "$T/$db.tal" >"$T/v" || fail "verify $db"
    grep -q "chunks, all checksums match" "$T/v" || fail "verify $db: $(cat "$T/v")"
    "$TALARIA" get -w 0 -f "$T/ids" "$T/$db.tal" >"$T/$db.all" || fail "get all from $db"
    cmp -s "$T/raw.all" "$T/$db.all" || fail "$db store: get of every accession differs from raw"
    "$TALARIA" get -w 60 -f "$T/mixed" "$T/$db.tal" >"$T/$db.mixed" 2>"$T/$db.err"
    [ $? -eq "$raw_rc" ] || fail "$db mixed get: exit code differs from raw"
    cmp -s "$T/raw.mixed" "$T/$db.mixed" || fail "$db store: mixed get differs from raw"
    sed "s|$T/$db.tal|DB|" "$T/$db.err" | cmp -s <(sed "s|$T/raw.tal|DB|" "$T/raw.err") - ||
        fail "$db store: messages differ: $(cat "$T/$db.err")"
    for t in 1 2; do
        expect_exit 0 "$TALARIA" stats --full -t $t "$T/$db.tal" || continue
        grep -q "^scan_seconds" "$T/out" || fail "stats --full $db: no scan time"
    done
    expect_exit 0 "$TALARIA" stats --format json "$T/$db.tal"
    grep -q '"codec":"' "$T/out" && grep -q '"chunks":' "$T/out" || fail "stats json lacks codec/chunks"
done
# the raw and compressed stores agree on every statistic but the store's own fields
for db in raw lz4 zstd; do "$TALARIA" stats "$T/$db.tal" | sed -n '2,11p' >"$T/$db.stats"; done
cmp -s "$T/raw.stats" "$T/lz4.stats" && cmp -s "$T/raw.stats" "$T/zstd.stats" ||
    fail "stats differ between raw and compressed stores"
"$TALARIA" stats "$T/lz4.tal" >"$T/s"
grep -q '^codec	lz4$' "$T/s" || fail "stats: codec line"
chunks=$(awk -F'\t' '$1 == "chunks" { print $2 }' "$T/s")
[ "${chunks:-0}" -gt 3 ] || fail "stats: expected several 64K chunks, got '$chunks'"
ratio=$(awk -F'\t' '$1 == "compression_ratio" { print $2 }' "$T/s")
awk -v r="$ratio" 'BEGIN { exit !(r > 1.0) }' || fail "lz4 store did not compress the families (ratio $ratio)"
expect_exit 0 "$TALARIA" stats --full "$T/raw.tal"

# a damaged chunk: verify names it, get of a record in it fails (exit 3), others read
cp -r "$T/lz4.tal" "$T/bad.tal"
# chunk 2's entry: stored_offset at byte 32, stored_size at 40 of the 64-byte entry
off=$(od -An -t u8 -j $((64 + 32)) -N 8 "$T/bad.tal/chunks" | tr -d ' ')
first=$(od -An -t u8 -j 64 -N 8 "$T/bad.tal/chunks" | tr -d ' ')
printf '\x00' | dd of="$T/bad.tal/residues" bs=1 seek=$((off + 100)) conv=notrunc status=none
orig=$(od -An -t x1 -j $((off + 100)) -N 1 "$T/lz4.tal/residues" | tr -d ' ')
if [ "$orig" = 00 ]; then printf '\x01' | dd of="$T/bad.tal/residues" bs=1 seek=$((off + 100)) conv=notrunc status=none; fi
expect_exit 3 "$TALARIA" verify "$T/bad.tal" && expect_stderr "chunk 2 (records $((first + 1))-"
victim=$(sed -n "$((first + 1))p" "$T/ids")
expect_exit 3 "$TALARIA" get "$T/bad.tal" "$victim" && expect_stderr "chunk 2 (records"
expect_exit 3 "$TALARIA" stats --full "$T/bad.tal" && expect_stderr "chunk 2"
first_acc=$(head -1 "$T/ids")
expect_exit 0 "$TALARIA" get -w 0 "$T/bad.tal" "$first_acc"
"$TALARIA" get -w 0 "$T/raw.tal" "$first_acc" | cmp -s - "$T/out" || fail "chunk 1 of a damaged store"
last_acc=$(tail -1 "$T/ids")
expect_exit 0 "$TALARIA" get -w 0 "$T/bad.tal" "$last_acc"

# format 1.3: a compressed store's offset arrays are compressed too and decoded on open,
# and it has no lengths section (the offsets give them); a damaged offsets section keeps
# the store from opening, named (exit 3)
[ ! -e "$T/lz4.tal/lengths" ] || fail "a compressed store keeps a lengths section"
cp -r "$T/lz4.tal" "$T/lenz.tal"
printf '\377\377\377\377' | dd of="$T/lenz.tal/seq_offsets" bs=1 seek=0 conv=notrunc status=none
expect_exit 3 "$TALARIA" get -w 0 "$T/lenz.tal" "$(sed -n 1p "$T/ids")" &&
    expect_stderr "the sequence offsets section does not decompress"
expect_exit 3 "$TALARIA" verify "$T/lenz.tal" && expect_stderr "sequence offsets"

# a damaged lengths array (raw, as a raw store keeps it): the intact records around the
# damaged one still come out right, the damaged one is named, exit 3
cp -r "$T/raw.tal" "$T/len.tal"
python3 - "$T/len.tal/lengths" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    first = struct.unpack("<Q", f.read(8))[0]
    f.write(struct.pack("<Q", (1 << 64) - first))  # record 2: wraps a running sum
PY
a=$(sed -n 1p "$T/ids"); k=$(sed -n 2p "$T/ids"); b=$(sed -n 3p "$T/ids")
expect_exit 3 "$TALARIA" get -w 0 "$T/len.tal" "$a" "$k" "$b" && expect_stderr "record 2 "
"$TALARIA" get -w 0 "$T/raw.tal" "$a" "$b" | cmp -s - "$T/out" ||
    fail "damaged length: intact records differ: $(head -c 300 "$T/out")"

# an error late in a compressed build (a duplicate at the end, while chunks are still
# being compressed) is exit 3 with nothing left behind, not a crash
{ cat "$T/in.fa"; head -2 "$T/in.fa"; } >"$T/dup.fa"
for c in zstd lz4; do
    expect_exit 3 "$TALARIA" index -q --compress $c --chunk-size 64K -i "$T/dup.fa" -o "$T/dup.tal" &&
        expect_stderr "duplicate accession"
    ls -d "$T"/dup.tal* >/dev/null 2>&1 && fail "$c: a failed build left $(ls -d "$T"/dup.tal*)"
done

# options
expect_exit 2 "$TALARIA" index --compress brotli -i "$T/in.fa" -o "$T/x.tal" && expect_stderr "none, lz4 or zstd"
expect_exit 2 "$TALARIA" index --compress zstd --level 23 -i "$T/in.fa" -o "$T/x.tal" && expect_stderr "1 to 22"
expect_exit 2 "$TALARIA" index --compress lz4 --level 0 -i "$T/in.fa" -o "$T/x.tal" && expect_stderr "1 to 12"
expect_exit 2 "$TALARIA" index --level 3 -i "$T/in.fa" -o "$T/x.tal" && expect_stderr "needs --compress"
expect_exit 2 "$TALARIA" index --compress lz4 --chunk-size 1K -i "$T/in.fa" -o "$T/x.tal" && expect_stderr "64K to 1G"
[ ! -e "$T/x.tal" ] || fail "a refused index left $T/x.tal"

finish
