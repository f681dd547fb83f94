# The input's line layout (doc/format.md §4.5, §10): reconstruct with no width writes the
# reduction's input back byte for byte, whatever its line width, line endings, blank
# lines or last line; -w N and -w 0 still rewrap; --ids writes each record in its own
# lines; stores without a layout behave as before.
. "$(dirname "$0")/lib.sh"

export TMPDIR="$T"
cd "$T" || exit 1

# rewrap WIDTH FILE : one-line FASTA (unwrap) in lines of WIDTH residues
rewrap() {
    unwrap "$2" | awk -v w="$1" '/^>/ { print; next } { for (i = 1; i <= length($0); i += w) print substr($0, i, w) }'
}

# same NAME INPUT [REDUCE OPTIONS] : reduce INPUT, and reconstruct gives back FILE
# (INPUT itself unless REFERENCE is set) byte for byte
same() {
    name=$1 in=$2
    shift 2
    want=${REFERENCE:-$in}
    if ! "$TALARIA" reduce -q -i "$in" -o "$name.red.fa" "$@" 2>"$name.err"; then
        fail "$name: reduce failed: $(head -c 300 "$name.err")"
        return 1
    fi
    if ! "$TALARIA" reconstruct -q -d "$name.red.deltas.tal" >"$name.out" 2>"$name.err"; then
        fail "$name: reconstruct failed: $(head -c 300 "$name.err")"
        return 1
    fi
    cmp -s "$name.out" "$want" || fail "$name: reconstruct differs from the input: $(cmp "$name.out" "$want" 2>&1)"
}

# the bundled example
same sample "$TAL_SRCDIR/examples/sample.fasta"

# UniProt-style files in 60 and 80 columns, with members and references
protein_families 300 7 sp >w60.fa
rewrap 80 w60.fa >w80.fa
cmp -s w60.fa w80.fa && fail "the 80-column file is the 60-column one"
same w60 w60.fa
same w80 w80.fa
same w60_identity w60.fa --identity 0.7
# a regular file costs a few bytes: the store's layout section is its 48-byte head alone
"$TALARIA" index -q -i w60.fa -o w60.tal || fail "index w60.fa"
[ "$(wc -c <w60.tal/layout)" -eq 48 ] || fail "the layout of a 60-column file is $(wc -c <w60.tal/layout) bytes, not 48"

# compact: the shape most records have is the default, and a run of records of another
# shape is one entry of 24 bytes; one line per sequence, or a blank line after every
# record, are shapes too
protein_families 40 3 q >q.fa
{ rewrap 80 q.fa; cat w60.fa; } >mixed.fa
unwrap w60.fa >one.fa
awk 'NR > 1 && /^>/ { print "" } { print } END { print "" }' w60.fa >blanks.fa
for f in mixed:72 one:48 blanks:48; do
    "$TALARIA" index -q -i "${f%:*}.fa" -o "${f%:*}.tal" || fail "index ${f%:*}.fa"
    [ "$(wc -c <"${f%:*}.tal/layout")" -eq "${f#*:}" ] ||
        fail "the layout of ${f%:*}.fa is $(wc -c <"${f%:*}.tal/layout") bytes, not ${f#*:}"
    same "${f%:*}" "${f%:*}.fa"
done

# CRLF, and no final newline (LF and CRLF files)
sed 's/$/\r/' w60.fa >crlf.fa
same crlf crlf.fa
head -c -1 w60.fa >nofinal.fa
same nofinal nofinal.fa
head -c -2 crlf.fa >nofinal_crlf.fa
same nofinal_crlf nofinal_crlf.fa
head -c -1 crlf.fa >final_cr.fa # ends in '\r' without its '\n'
same final_cr final_cr.fa

# irregular: random line lengths, blank lines inside and between records, blank lines
# and spaces before the first '>', headers with trailing spaces, CRLF on some lines,
# empty sequences, a header as the last line without a newline
unwrap w60.fa | awk 'BEGIN { seed = 7; printf " \n\t\r\n\n" }
function rnd(n) { seed = (seed * 16807) % 2147483647; return seed % n }
/^>/ { e = rnd(5) == 0 ? "\r" : ""; printf "%s%s%s\n", $0, (rnd(4) == 0 ? "  " : ""), e; n++
       if (n % 17 == 0) printf ">empty%d\n", n
       next }
{ for (i = 1; i <= length($0); i += w) { w = 1 + rnd(100); printf "%s%s\n", substr($0, i, w), (rnd(9) == 0 ? "\r" : "") 
      if (rnd(13) == 0) printf "\n" }
  if (rnd(5) == 0) printf "\n\n" }
END { printf ">last header only" }' >irregular.fa
grep -q '^$' irregular.fa && grep -q "$(printf '\r')" irregular.fa || fail "the irregular file is regular"
same irregular irregular.fa

# small cases of the parser's edges
printf '>a\nACGT\n>b\n\n>c\nAC\nGT\nA\n' >edges1.fa
printf '>a\r\nACGT\r\n\r\n>b\nAAAA\r' >edges2.fa
printf '\n\n>a x \nAC\nGTT\n>b\n>c\nA' >edges3.fa
for f in edges1 edges2 edges3; do same "$f" "$f.fa"; done

# gzip-compressed input: the uncompressed bytes come back
gzip -c irregular.fa >irregular.fa.gz
REFERENCE=irregular.fa same gzip irregular.fa.gz

# reduce from a store built by talaria index (raw and compressed), which verify checks
"$TALARIA" index -q -i irregular.fa -o irregular.tal || fail "index irregular.fa"
"$TALARIA" verify irregular.tal >/dev/null || fail "verify irregular.tal"
REFERENCE=irregular.fa same from_store irregular.tal
"$TALARIA" index -q --compress zstd -i crlf.fa -o crlfz.tal || fail "index --compress zstd"
"$TALARIA" verify crlfz.tal >/dev/null || fail "verify crlfz.tal"
REFERENCE=crlf.fa same from_zstore crlfz.tal

# -w N rewraps, -w 0 writes one line per record (in LF)
"$TALARIA" reconstruct -q -w 60 -d w80.red.deltas.tal >w60.out || fail "reconstruct -w 60"
cmp -s w60.fa w60.out || fail "reconstruct -w 60 does not rewrap in 60 columns"
"$TALARIA" reconstruct -q -w 0 -d w80.red.deltas.tal >w0.out || fail "reconstruct -w 0"
unwrap w80.fa | cmp -s - w0.out || fail "reconstruct -w 0 is not one line per record"

# --ids: each record in its own lines (a file's last record gets its line end)
record() { awk -v id="$1" '/^>/ { keep = substr($1, 2) == id } keep' "$2"; }
printf 'sp1_1\nsp3_2\n' >ids
"$TALARIA" reconstruct -q --ids ids -d w80.red.deltas.tal >ids.out || fail "reconstruct --ids"
{ record sp1_1 w80.fa; record sp3_2 w80.fa; } | cmp -s - ids.out || fail "--ids does not keep the 80 columns"
ids=$(grep '^>' irregular.fa | sed -n '3s/^>\([^ \r]*\).*/\1/p;9s/^>\([^ \r]*\).*/\1/p')
printf '%s\n' $ids >ids2
"$TALARIA" reconstruct -q --ids ids2 -d irregular.red.deltas.tal >ids2.out || fail "reconstruct --ids (irregular)"
for i in $ids; do record "$i" irregular.fa; done | cmp -s - ids2.out || fail "--ids does not keep each record's own lines"

# a store without a layout (a record left out by --allow-duplicates) behaves as before:
# one line per record
{ cat w60.fa; printf '>sp1_1 again\nMKV\n'; } >dups.fa
"$TALARIA" index -q --allow-duplicates -i dups.fa -o dups.tal 2>/dev/null || fail "index --allow-duplicates"
[ -e dups.tal/layout ] && fail "a store missing a record keeps a layout"
"$TALARIA" reduce -q -i dups.tal -o dups.red.fa || fail "reduce dups.tal"
expect_exit 0 "$TALARIA" reconstruct -d dups.red.deltas.tal && cp "$T/out" dups.out &&
    expect_stderr "dups.red.deltas.tal keeps no line layout"
unwrap w60.fa | cmp -s - dups.out || fail "without a layout reconstruct is not one line per record"

# damage: a listed record's lines that no longer add up to its length are exit 3, named.
# tiny.fa's one record is listed (AC then GTT): its line list, the layout's last bytes and
# the end of the deltas section, is 02 04 01 06 01 (two runs: 2 << 1, once; 3 << 1, once)
printf '>a\nAC\nGTT\n' >tiny.fa
same tiny tiny.fa
u64() { od -An -tu8 -j "$2" -N8 "$1" | tr -d ' '; }
at=$(($(u64 tiny.red.deltas.tal 56) + $(u64 tiny.red.deltas.tal 64) - 2))
[ "$(od -An -tx1 -j $at -N2 tiny.red.deltas.tal | tr -d ' ')" = 0601 ] || fail "tiny.fa's line list is not where expected"
printf '\010' | dd of=tiny.red.deltas.tal bs=1 seek=$at conv=notrunc 2>/dev/null
expect_exit 3 "$TALARIA" reconstruct -d tiny.red.deltas.tal &&
    expect_stderr "tiny.red.deltas.tal: its line layout is damaged: a record's listed lines do not add up"
finish
