# Compact compressed stores (format 1.3, issue 15): the whole store directory is no
# larger than the FASTA compressed with the same codec (zstd -3, lz4 -1), it answers
# exactly as a raw store does, damage to its new sections is named, and stores written
# before 1.3 (tests/data/store-1.2) still open and read the same.
. "$(dirname "$0")/lib.sh"

# 8,000 UniProt-like records: proteins made of shared domains with point mutations,
# headers with 10-character accessions, organisms with strains and taxon ids
awk -v seed=3 -v want=8000 -v domains=800 -v mut=40 '
function rnd(n) { return 1 + int(rand() * n) }
function seq(n,   s, i) { s = ""; for (i = 0; i < n; i++) s = s substr(aa, rnd(20), 1); return s }
BEGIN {
    srand(seed); aa = "ACDEFGHIKLMNPQRSTVWY"; al = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    lc = "abcdefghijklmnopqrstuvwxyz"; uc = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    split("Saccharomyces cerevisiae (strain ATCC 204508 / S288c)|Schizosaccharomyces pombe (strain 972 / ATCC 24843)|Bacillus sp.|Rattus norvegicus|Homo sapiens|Escherichia coli (strain K12)|Actinobacteria bacterium|Arabidopsis thaliana", org, "|")
    split("559292 284812 1409 10116 9606 83333 1883427 3702", tax, " ")
    split("YEAST SCHPO 9BACI RAT HUMAN ECOLI 9ACTN ARATH", code, " ")
    split("Two-component|Alcohol|ABC transporter|Membrane|Putative|Probable|Zinc finger", w1, "|")
    split("regulator|helicase|binding protein|methyltransferase|reductase|kinase|transporter", w2, "|")
    for (d = 0; d < domains; d++) dom[d] = seq(30 + rnd(150))
    for (r = 0; r < want; r++) {
        s = ""; parts = 1 + rnd(4)
        for (p = 0; p < parts; p++) {
            if (rand() < 0.7) {
                t = dom[int(rand() * domains)]
                for (k = 0; k < length(t) / mut; k++) { q = rnd(length(t)); t = substr(t, 1, q - 1) substr(aa, rnd(20), 1) substr(t, q + 1) }
                s = s t
            } else s = s seq(10 + rnd(60))
        }
        acc = "A0"; for (i = 0; i < 8; i++) acc = acc substr(al, rnd(36), 1)
        o = rnd(8)
        printf ">tr|%s|%s_%s %s %s OS=%s OX=%s GN=%s%s%s%s PE=%d SV=1\n", acc, acc, code[o], w1[rnd(7)], w2[rnd(7)], org[o], tax[o], substr(lc, rnd(26), 1), substr(lc, rnd(26), 1), substr(lc, rnd(26), 1), substr(uc, rnd(26), 1), rnd(5)
        for (i = 1; i <= length(s); i += 60) print substr(s, i, 60)
    }
}' >"$T/in.fa"

"$TALARIA" index -q -i "$T/in.fa" -o "$T/raw.tal" || fail "index raw"
"$TALARIA" index -q --compress zstd -i "$T/in.fa" -o "$T/zstd.tal" || fail "index zstd"
"$TALARIA" index -q --compress lz4 -i "$T/in.fa" -o "$T/lz4.tal" || fail "index lz4"

# the whole directory against the compressed FASTA (when the tools are there)
store_bytes() { cat "$1"/* | wc -c; }
if command -v zstd >/dev/null; then
    z=$(zstd -3 -c "$T/in.fa" | wc -c)
    s=$(store_bytes "$T/zstd.tal")
    [ "$s" -le "$z" ] || fail "the zstd store ($s bytes) is larger than zstd -3 of the FASTA ($z)"
fi
if command -v lz4 >/dev/null; then
    l=$(lz4 -1 -c "$T/in.fa" | wc -c)
    s=$(store_bytes "$T/lz4.tal")
    [ "$s" -le "$l" ] || fail "the lz4 store ($s bytes) is larger than lz4 -1 of the FASTA ($l)"
fi

# the layout of 1.3: header chunks, no lengths; a raw store stays 1.2
for c in zstd lz4; do
    [ -f "$T/$c.tal/header_chunks" ] || fail "$c store: no header_chunks"
    [ ! -e "$T/$c.tal/lengths" ] || fail "$c store: a lengths file"
    minor=$(od -An -t u4 -j 12 -N 4 "$T/$c.tal/meta" | tr -d ' ')
    [ "$minor" = 3 ] || fail "$c store: version_minor $minor, expected 3"
done
minor=$(od -An -t u4 -j 12 -N 4 "$T/raw.tal/meta" | tr -d ' ')
[ "$minor" = 2 ] || fail "raw store: version_minor $minor, expected 2"
[ -f "$T/raw.tal/lengths" ] || fail "raw store: no lengths"

# the same answers as the raw store: every record by accession and by alias, regions,
# a missing accession; verify; stats apart from the compression lines
grep '^>' "$T/in.fa" | awk '{ print substr($1, 2) }' >"$T/ids"
{ awk -F'|' 'NR % 7 == 0 { print $2 }' "$T/ids"; awk 'NR % 11 == 0 { print $1 ":3-40" }' "$T/ids";
  echo nope; } >"$T/mixed"
for st in raw zstd lz4; do
    "$TALARIA" get -f "$T/ids" "$T/$st.tal" >"$T/$st.all" || fail "get all from $st"
    "$TALARIA" get -w 0 -f "$T/mixed" "$T/$st.tal" >"$T/$st.mixed" 2>"$T/$st.err"
    echo "exit $?" >>"$T/$st.err"
    "$TALARIA" stats -i "$T/$st.tal" --format tsv | cut -f1-11 >"$T/$st.stats" || fail "stats $st"
    expect_exit 0 "$TALARIA" verify "$T/$st.tal" && grep -q ': ok (8000 records' "$T/out" ||
        fail "verify $st: $(cat "$T/out")"
done
for st in zstd lz4; do
    cmp -s "$T/raw.all" "$T/$st.all" || fail "get -f: the $st store differs from the raw one"
    cmp -s "$T/raw.mixed" "$T/$st.mixed" || fail "get of aliases and regions: $st differs"
    sed "s/$st.tal/raw.tal/" "$T/$st.err" | cmp -s "$T/raw.err" - || fail "get errors: $st differs"
    sed "s/$st.tal/raw.tal/" "$T/$st.stats" | cmp -s "$T/raw.stats" - || fail "stats: $st differs"
done
grep -q '^exit 3$' "$T/raw.err" || fail "a missing accession should exit 3"

# the catalog keeps metadata: taxa with their record counts, no per-record rows unless
# --catalog-index asks for them
if command -v sqlite3 >/dev/null; then
    q() { sqlite3 "file:$1/catalog.sqlite?immutable=1" "$2" 2>&1; }
    [ "$(q "$T/zstd.tal" 'SELECT sum(records) FROM taxa')" = 8000 ] || fail "taxa do not count 8000 records"
    q "$T/zstd.tal" 'SELECT count(*) FROM records' | grep -q 'no such table' ||
        fail "a compact catalog has per-record rows"
    "$TALARIA" index -q --compress zstd --catalog-index -i "$T/in.fa" -o "$T/zcat.tal" ||
        fail "index zstd --catalog-index"
    [ "$(q "$T/zcat.tal" 'SELECT count(*) FROM records')" = 8000 ] ||
        fail "--catalog-index: no per-record rows"
    expect_exit 0 "$TALARIA" verify "$T/zcat.tal"
fi

# a damaged header chunk is named with its records, exit 3; verify names it too
cp -r "$T/zstd.tal" "$T/bad.tal"
printf '\001' | dd of="$T/bad.tal/headers" bs=1 seek=100 conv=notrunc status=none
orig=$(od -An -t x1 -j 100 -N 1 "$T/zstd.tal/headers" | tr -d ' ')
if [ "$orig" = 01 ]; then printf '\002' | dd of="$T/bad.tal/headers" bs=1 seek=100 conv=notrunc status=none; fi
first=$(head -1 "$T/ids")
expect_exit 3 "$TALARIA" get "$T/bad.tal" "$first" && expect_stderr "header chunk 1 (records 1-"
expect_exit 3 "$TALARIA" verify "$T/bad.tal" && expect_stderr "header chunk 1 (records 1-"
last=$(tail -1 "$T/ids")
expect_exit 0 "$TALARIA" get -w 0 "$T/bad.tal" "$(awk -F'|' 'END { print $2 }' "$T/ids")"
"$TALARIA" get -w 0 "$T/raw.tal" "$last" | cmp -s - "$T/out" || fail "a record in another header chunk"
# a damaged header chunk table entry
cp -r "$T/zstd.tal" "$T/badt.tal"
printf '\377' | dd of="$T/badt.tal/header_chunks" bs=1 seek=$((64 + 8)) conv=notrunc status=none
expect_exit 3 "$TALARIA" get "$T/badt.tal" "$first" &&
    expect_stderr "of the header chunk table is inconsistent"

# stores written before 1.3 (format 1.2, compressed, built by talaria 0.3 from small.fa)
# open and read as before
grep '^>' "$DATA/small.fa" | awk '{ print substr($1, 2) }' >"$T/small.ids"
"$TALARIA" index -q -i "$DATA/small.fa" -o "$T/small.tal" || fail "index small"
"$TALARIA" get -f "$T/small.ids" "$T/small.tal" >"$T/small.out" || fail "get small"
for c in zstd lz4; do
    old="$DATA/store-1.2/$c.tal"
    minor=$(od -An -t u4 -j 12 -N 4 "$old/meta" | tr -d ' ')
    [ "$minor" = 2 ] || fail "tests/data/store-1.2/$c.tal is not a 1.2 store"
    "$TALARIA" get -f "$T/small.ids" "$old" >"$T/old.out" || fail "get from the 1.2 $c store"
    cmp -s "$T/small.out" "$T/old.out" || fail "the 1.2 $c store reads differently"
    "$TALARIA" get "$old" P69905 | head -1 | grep -q '^>sp|P69905|' || fail "alias in the 1.2 $c store"
    expect_exit 0 "$TALARIA" verify "$old" && grep -q ': ok (9 records' "$T/out" ||
        fail "verify the 1.2 $c store"
done

# reduce plans for what a compact store holds from its opening (the decoded offsets and
# lengths, 24 bytes a record, and its header chunk cache): the smallest cap it names for
# the zstd store is above the raw store's, and the run stays under that cap
named() { # store: the smallest cap reduce names under a 1M cap
    "$TALARIA" reduce -q -f --max-memory 1M -i "$1" -o "$T/plan.fa" 2>"$T/plan.err"
    sed -n 's/.*the smallest cap that works here is --max-memory \([0-9]*\)M.*/\1/p' "$T/plan.err"
}
raw_cap=$(named "$T/raw.tal")
zstd_cap=$(named "$T/zstd.tal")
[ -n "$raw_cap" ] && [ -n "$zstd_cap" ] && [ "$zstd_cap" -gt "$raw_cap" ] ||
    fail "reduce names ${zstd_cap:-?}M for the zstd store, not above the raw store's ${raw_cap:-?}M"
if [ -n "$zstd_cap" ]; then
    "$TALARIA" reduce -q -f --max-memory "${zstd_cap}M" -i "$T/zstd.tal" -o "$T/capped.fa" \
        --summary-json "$T/capped.json" || fail "reduce the zstd store under its named cap"
    "$TALARIA" reduce -q -f -i "$T/raw.tal" -o "$T/free.fa" || fail "reduce the raw store"
    cmp -s "$T/capped.fa" "$T/free.fa" || fail "the capped reduce of the zstd store differs"
    # (ASan's shadow memory and valgrind's own count in the resident set: real builds only)
    peak=$(sed -n 's/.*"peak_rss_bytes": *\([0-9]*\).*/\1/p' "$T/capped.json")
    if ! sanitized && ! under_valgrind; then
        [ -n "$peak" ] && [ "$peak" -le $((zstd_cap * 1048576)) ] ||
            fail "peak ${peak:-?} bytes over the named cap ${zstd_cap}M"
    fi
fi

# while the input is checked, a compressed store's scan holds up to three chunk buffers
# of its own: the plan counts them, so the cap named where checking is the largest phase
# works (130,000 short records in 4 chunks: named 34M, which stopped there at -t 2)
families ACDEFGHIKLMNPQRSTVWY 90 20 4 10 60 130000 17 sh >"$T/short.fa"
"$TALARIA" index -q --compress zstd -i "$T/short.fa" -o "$T/short.tal" || fail "index the short records"
"$TALARIA" index -q -i "$T/short.fa" -o "$T/short-raw.tal" || fail "index the short records raw"
for t in 1 2; do
    "$TALARIA" reduce -q -f -t $t --max-memory 1M -i "$T/short.tal" -o "$T/plan.fa" 2>"$T/plan.err"
    cap=$(sed -n 's/.*the smallest cap that works here is --max-memory \([0-9]*\)M.*/\1/p' "$T/plan.err")
    "$TALARIA" reduce -q -f -t $t --max-memory "${cap:-1}M" -i "$T/short.tal" -o "$T/short.fa.red" ||
        fail "reduce -t $t of the short records' zstd store under its named cap ${cap:-?}M"
    "$TALARIA" reduce -q -f -t $t -i "$T/short-raw.tal" -o "$T/short-raw.red" || fail "reduce the raw store"
    cmp -s "$T/short.fa.red" "$T/short-raw.red" || fail "-t $t: the capped zstd store's reduction differs"
done

[ "$FAILS" -eq 0 ]
