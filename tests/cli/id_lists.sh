# The accession lists of get -f and reconstruct --ids (one reader, src/cli/common.c): what
# is trimmed (CR, LF, spaces, tabs), blank lines, stdin, missing and unreadable lists (exit
# 1), and each command's own wording for a list it cannot open.
. "$TAL_SRCDIR/tests/cli/lib.sh"

protein_families 60 7 fam >"$T/in.fa"
expect_exit 0 "$TALARIA" reduce -q -i "$T/in.fa" -o "$T/red.fasta" --identity 0.9 --tmp-dir "$T"
deltas=$T/red.deltas.tal
member=$(awk -F'\t' '!/^#/ { print $1; exit }' "$T/red.members.tsv")
reference=$(awk '/^>/ { print substr($1, 2); exit }' "$T/red.fasta")
[ -n "$member" ] && [ -n "$reference" ] || fail "the reduction has no member or no reference"

# CR, LF and trailing spaces go, blank lines are skipped, the order is the list's
printf '%s  \r\n\n   \n%s\n' "$member" "$reference" >"$T/ids"
expect_exit 0 "$TALARIA" get -w 0 "$deltas" "$member" "$reference" && cp "$T/out" "$T/both.fa"
[ "$(grep -c '^>' "$T/both.fa")" = 2 ] || fail "get by arguments printed $(grep -c '^>' "$T/both.fa") records"
expect_exit 0 "$TALARIA" get -w 0 -f "$T/ids" "$deltas" &&
    { cmp -s "$T/out" "$T/both.fa" || fail "get -f: $(diff "$T/both.fa" "$T/out" | head -4)"; }
expect_exit 0 "$TALARIA" reconstruct -w 0 -d "$deltas" --ids "$T/ids" &&
    { cmp -s "$T/out" "$T/both.fa" || fail "reconstruct --ids: $(diff "$T/both.fa" "$T/out" | head -4)"; }
"$TALARIA" get -w 0 -f - "$deltas" <"$T/ids" 2>/dev/null | cmp -s - "$T/both.fa" || fail "get -f - (stdin)"
"$TALARIA" reconstruct -w 0 -d "$deltas" --ids - <"$T/ids" 2>/dev/null | cmp -s - "$T/both.fa" ||
    fail "reconstruct --ids - (stdin)"

# a trailing tab goes too, in both (reconstruct used to look the accession up with it)
printf '%s\t\n' "$member" >"$T/tab"
expect_exit 0 "$TALARIA" get -w 0 -f "$T/tab" "$deltas" && cp "$T/out" "$T/tab.get"
expect_exit 0 "$TALARIA" reconstruct -w 0 -d "$deltas" --ids "$T/tab" &&
    { cmp -s "$T/out" "$T/tab.get" || fail "reconstruct --ids with a trailing tab: $(head -c 200 "$T/out")"; }

# each command names a list it cannot open in its own words; a missing list is an I/O
# failure in both (it used to be exit 3, invalid input)
expect_exit 1 "$TALARIA" get -f "$T/none" "$deltas" && expect_stderr "cannot open $T/none: No such file"
expect_exit 1 "$TALARIA" reconstruct -d "$deltas" --ids "$T/none" &&
    expect_stderr "$T/none: cannot open: No such file"
# a list that cannot be read is an I/O error in both (reconstruct used to print nothing, exit 0)
expect_exit 1 "$TALARIA" get -f "$T" "$deltas" && expect_stderr "cannot read $T: Is a directory"
expect_exit 1 "$TALARIA" reconstruct -d "$deltas" --ids "$T" && expect_stderr "cannot read $T: Is a directory"
finish
