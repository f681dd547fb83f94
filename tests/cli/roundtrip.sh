# Every accession of an indexed file comes back from `get` exactly as in the input
# (header and residues, after unwrapping lines), with 1 and 2 threads.
. "$(dirname "$0")/lib.sh"

awk 'BEGIN { srand(11); aa = "ACDEFGHIKLMNPQRSTVWYacdefxz*-";
    for (i = 0; i < 3000; i++) {
        printf(">sp|Q%05d|NAME%d_HUMAN protein %d OS=Homo sapiens OX=%d\n", i, i, i, 9600 + i % 7);
        n = int(rand() * 900); w = 1 + int(rand() * 120); line = "";
        for (j = 0; j < n; j++) { line = line substr(aa, int(rand() * length(aa)) + 1, 1);
            if (length(line) == w) { print line; line = "" } }
        if (line != "") print line
    } }' >"$T/gen.fa"

for input in "$DATA/small.fa" "$DATA/crlf.fa" "$T/gen.fa"; do
    for threads in 1 2; do
        db="$T/db_$threads.tal"
        rm -rf "$db"
        expect_exit 0 "$TALARIA" index -q -t "$threads" -i "$input" -o "$db" || continue
        grep '^>' "$input" | sed 's/^>//; s/\r$//' | awk '{ print $1 }' >"$T/ids"
        expect_exit 0 "$TALARIA" get -w 0 -f "$T/ids" "$db" || continue
        unwrap "$input" >"$T/want"
        cmp -s "$T/want" "$T/out" || fail "get output differs from $input (threads $threads): $(diff "$T/want" "$T/out" | head -5)"
        expect_exit 0 "$TALARIA" verify "$db"
    done
done

# Wrapped output at the default width re-reads to the same records.
expect_exit 0 "$TALARIA" get -f "$T/ids" "$T/db_2.tal"
awk 'length($0) > 60 && !/^>/ { bad = 1 } END { exit bad }' "$T/out" || fail "lines longer than 60 with -w 60"
unwrap "$T/out" >"$T/rewrapped"
cmp -s "$T/want" "$T/rewrapped" || fail "wrapped get output does not unwrap to the input"
finish
