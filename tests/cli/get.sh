# talaria get: aliases, regions, widths, missing accessions.
. "$(dirname "$0")/lib.sh"

"$TALARIA" index -q -i "$DATA/small.fa" -o "$T/db.tal" || fail "index"
db="$T/db.tal"

# "sp|ACC|NAME" is found by its first word and by ACC
"$TALARIA" get -w 0 "$db" P69905 >"$T/a" && "$TALARIA" get -w 0 "$db" 'sp|P69905|HBA_HUMAN' >"$T/b" ||
    fail "alias or first-word lookup failed"
cmp -s "$T/a" "$T/b" || fail "alias and first word give different records"
head -1 "$T/a" | grep -q '^>sp|P69905|HBA_HUMAN Hemoglobin subunit alpha' || fail "wrong header: $(head -1 "$T/a")"

# regions: 1-based inclusive, END clamped, START only
expect_exit 0 "$TALARIA" get "$db" P69905:1-10
printf '>P69905:1-10\nMVLSPADKTN\n' | cmp -s - "$T/out" || fail "region 1-10: $(cat "$T/out")"
expect_exit 0 "$TALARIA" get "$db" P69905:140-1000
printf '>P69905:140-142\nKYR\n' | cmp -s - "$T/out" || fail "clamped region: $(cat "$T/out")"
expect_exit 0 "$TALARIA" get "$db" x:1
printf '>x:1-1\nA\n' | cmp -s - "$T/out" || fail "START-only region: $(cat "$T/out")"
expect_exit 0 "$TALARIA" get "$db" 'NC_045512.2:1,00-1,09'
want=$(unwrap "$DATA/small.fa" | grep -A1 '^>NC_045512.2 ' | tail -1 | cut -c 100-109)
printf '>NC_045512.2:100-109\n%s\n' "$want" | cmp -s - "$T/out" || fail "region with commas: $(cat "$T/out")"
expect_exit 3 "$TALARIA" get "$db" P69905:500-600 && expect_stderr "outside the sequence"

# widths
expect_exit 0 "$TALARIA" get -w 10 "$db" P69905
[ "$(sed -n 2p "$T/out")" = MVLSPADKTN ] || fail "-w 10 first line: $(sed -n 2p "$T/out")"
[ "$(wc -l <"$T/out")" -eq 16 ] || fail "-w 10 should give 15 sequence lines for 142 residues"
expect_exit 0 "$TALARIA" get -w 0 "$db" empty_seq
printf '>empty_seq no residues\n' | cmp -s - "$T/out" || fail "empty sequence"

# missing accessions: the rest is printed, the missing ones listed, exit 3
expect_exit 3 "$TALARIA" get -w 0 "$db" nope1 x nope2 && expect_stderr "2 accessions not found"
expect_stderr "nope1 nope2"
printf '>x\nA\n' | cmp -s - "$T/out" || fail "found records not printed when others are missing"

# -f with blank lines and CRLF; order kept
printf 'x\r\n\nP68871\n' >"$T/ids"
expect_exit 0 "$TALARIA" get -w 0 -f "$T/ids" "$db"
[ "$(grep -c '^>' "$T/out")" -eq 2 ] && head -1 "$T/out" | grep -q '^>x$' || fail "-f order or parsing"
printf 'x\n' | "$TALARIA" get -w 0 -f - "$db" >"$T/out" || fail "-f - (stdin)"
expect_exit 1 "$TALARIA" get "$db" -f "$T/no_such_file" && expect_stderr "cannot open $T/no_such_file"
finish
