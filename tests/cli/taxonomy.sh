# Taxonomy through a reduction: the aligners' side maps list every input accession
# (references and members) with its own taxid, -a lambda writes NCBI's accession2taxid,
# expand finds kraken-tagged and db|ACC|NAME subjects and gives each member its own
# title, and --same-taxon never puts two taxids in one cluster.
. "$(dirname "$0")/lib.sh"

# 240 proteins in families (1-12% substitutions); record n gets taxid 9606, 9913 or 9940
# in turn (so families mix taxa), none when n is a multiple of 7; every 5th is a
# UniProt-style "sp|ACC|NAME", every 11th an accession with a version. Then two exact
# copies of record 1 under taxids no other record has, and one with a malformed tag.
protein_families 240 4242 f | awk '
    /^>/ {
        n++
        id = substr($1, 2); rest = substr($0, length($1) + 2)
        tax = n % 7 == 0 ? "" : " OX=" (n % 3 == 0 ? 9606 : n % 3 == 1 ? 9913 : 9940)
        if (n % 5 == 0) id = sprintf("sp|Q%05d|%s", n, toupper(id))
        else if (n % 11 == 0) id = sprintf("XP_%06d.2", n)
        print ">" id " " rest " OS=Some species" tax
        next
    }
    { print }' >"$T/base.fa"
first=$(unwrap "$T/base.fa" | sed -n 2p)
{
    cat "$T/base.fa"
    printf '>copyA same bytes as f1_1 OX=10090\n%s\n>copyB same bytes again OX=10116\n%s\n' "$first" "$first"
    printf '>badtag malformed OX=96O6\n%s\n' "$first"
} >"$T/in.fa"
records=$(grep -c '^>' "$T/in.fa")

# every record's accession as the aligners read it (ACC of sp|ACC|NAME), in input order,
# with its taxid ("-" for none)
awk '/^>/ {
        w = substr($1, 2); n = split(w, p, "|"); acc = n >= 2 ? p[2] : w
        tax = match($0, /[^[:alnum:]]OX=[0-9]+([ \t]|$)/) ? substr($0, RSTART + 4) : "-"
        sub(/[ \t].*/, "", tax)
        print acc "\t" tax
    }' "$T/in.fa" >"$T/accessions"
[ "$(wc -l <"$T/accessions")" -eq "$records" ] || fail "the accession list has $(wc -l <"$T/accessions") lines"
with_tax=$(awk -F'\t' '$2 != "-"' "$T/accessions" | wc -l)
[ "$with_tax" -lt "$records" ] && [ "$with_tax" -gt 200 ] || fail "$with_tax of $records records have a taxid"
# the NCBI accession2taxid lines expected: accession without its version, with it, taxid, 0
awk -F'\t' 'BEGIN { print "accession\taccession.version\ttaxid\tgi" }
    $2 != "-" { a = $1; sub(/\.[0-9]+$/, "", a); print a "\t" $1 "\t" $2 "\t0" }' \
    "$T/accessions" >"$T/expected.ncbi"

# ---- side maps: every input accession, its own taxid, input order ----
mkdir -p "$T/dia" "$T/lam" "$T/mms" "$T/bla"
expect_exit 0 "$TALARIA" reduce -i "$T/in.fa" -o "$T/dia/red.fasta" -a diamond &&
    expect_stderr "$((records - with_tax)) of $records records have no taxid" &&
    expect_stderr "record $records, 'badtag malformed OX=96O6'"
refs=$(grep -c '^>' "$T/dia/red.fasta")
[ "$refs" -lt $((records - 40)) ] || fail "only $((records - refs)) members: the families did not merge"
cmp -s "$T/dia/red.taxid.tsv" "$T/expected.ncbi" ||
    fail "-a diamond: the taxid map is not every input accession: $(diff "$T/expected.ncbi" "$T/dia/red.taxid.tsv" | head -5)"
expect_exit 0 "$TALARIA" reduce -q -i "$T/in.fa" -o "$T/lam/red.fasta" -a lambda
[ -e "$T/lam/red.taxid.tsv" ] && fail "-a lambda wrote red.taxid.tsv; lambda3 reads only *.accession2taxid"
[ "$(head -1 "$T/lam/red.accession2taxid")" = "$(printf 'accession\taccession.version\ttaxid\tgi')" ] ||
    fail "-a lambda: the map's header is '$(head -1 "$T/lam/red.accession2taxid")'"
awk -F'\t' 'NF != 4 { exit 1 }' "$T/lam/red.accession2taxid" || fail "-a lambda: a map line without 4 columns"
cmp -s "$T/lam/red.accession2taxid" "$T/expected.ncbi" ||
    fail "-a lambda: $(diff "$T/expected.ncbi" "$T/lam/red.accession2taxid" | head -5)"
expect_exit 0 "$TALARIA" reduce -q -i "$T/in.fa" -o "$T/mms/red.fasta" -a mmseqs2
awk -F'\t' 'BEGIN { print "#accession\ttaxid" } $2 != "-"' "$T/accessions" | cmp -s - "$T/mms/red.taxid.tsv" ||
    fail "-a mmseqs2: the map is not every input accession"
expect_exit 0 "$TALARIA" reduce -q -i "$T/in.fa" -o "$T/bla/red.fasta" -a blast
awk -F'\t' '$2 != "-" { print $1 " " $2 }' "$T/accessions" | cmp -s - "$T/bla/red.taxid.tsv" ||
    fail "-a blast: the map is not every input accession"

# ---- expand: kraken-tagged subjects expand as untagged ones ----
mkdir -p "$T/kr"
expect_exit 0 "$TALARIA" reduce -q -i "$T/in.fa" -o "$T/kr/red.fasta" -a kraken
grep -q '^>[^ ]*|kraken:taxid|[0-9]* ' "$T/kr/red.fasta" || fail "-a kraken tagged no header"
# one hit per reference, named as in the reduced FASTA (tagged), and the same untagged; the
# UniProt-style ones also as DIAMOND and MMseqs2 print them (the ACC field)
awk '/^>/ { w = substr($1, 2); printf "q%d\t%s\t95.0\t100\n", ++n, w }' "$T/kr/red.fasta" >"$T/tagged.m8"
sed 's/|kraken:taxid|[0-9]*\t/\t/' "$T/tagged.m8" >"$T/plain.m8"
cmp -s "$T/tagged.m8" "$T/plain.m8" && fail "the untagged hits are the tagged ones"
expect_exit 0 "$TALARIA" expand -d "$T/kr/red.deltas.tal" "$T/tagged.m8" && cp "$T/out" "$T/tagged.exp"
[ -s "$T/err" ] && fail "expand of kraken-tagged hits warned: $(head -c 300 "$T/err")"
expect_exit 0 "$TALARIA" expand -d "$T/kr/red.deltas.tal" "$T/plain.m8" && cp "$T/out" "$T/plain.exp"
[ "$(wc -l <"$T/plain.exp")" -eq "$records" ] ||
    fail "hits on every reference expand to $(wc -l <"$T/plain.exp") lines, not the $records records"
sed 's/|kraken:taxid|[0-9]*\t/\t/' "$T/tagged.exp" | cmp -s - "$T/plain.exp" ||
    fail "kraken-tagged hits expand otherwise than untagged: $(sed 's/|kraken:taxid|[0-9]*\t/\t/' "$T/tagged.exp" | diff - "$T/plain.exp" | head -5)"
# sp|ACC|NAME|kraken:taxid|N printed as ACC (DIAMOND, MMseqs2): members named by their ACC
uni=$(awk -F'\t' '$2 ~ /^sp[|].*kraken/ { print; exit }' "$T/tagged.m8")
[ -n "$uni" ] || fail "no UniProt-style reference"
uni_ref=$(echo "$uni" | cut -f2 | sed 's/|kraken.*//')
uni_acc=$(echo "$uni_ref" | cut -d'|' -f2)
printf 'qU\t%s\t95.0\t100\n' "$uni_acc" >"$T/acc.m8"
expect_exit 0 "$TALARIA" expand --strict -d "$T/kr/red.deltas.tal" "$T/acc.m8"
awk -F'\t' -v r="$uni_ref" '!/^#/ && $2 == r { n = split($1, p, "|"); print "qU\t" (n >= 2 ? p[2] : $1) "\t95.0\t100" }' \
    "$T/kr/red.members.tsv" | { cat "$T/acc.m8"; cat; } | cmp -s - "$T/out" ||
    fail "a hit on $uni_acc does not expand to its members' accessions: $(head -3 "$T/out")"

# ---- expand: a member's hit carries the member's own title ----
# stitle as DIAMOND prints it (the whole header) and as BLAST does (the description)
tab=$(printf '\t')
unwrap "$T/dia/red.fasta" | awk -v OFS='\t' '/^>/ {
        h = substr($0, 2); w = h; sub(/[ \t].*/, "", w); d = substr(h, length(w) + 2)
        print "q" ++n, w, "97.5", "120", h, d }' >"$T/titles.m8"
expect_exit 0 "$TALARIA" expand -d "$T/dia/red.deltas.tal" "$T/titles.m8"
awk -F'\t' 'FNR == NR { if (/^>/) { h = substr($0, 2); w = h; sub(/[ \t].*/, "", w); head[w] = h } next }
    {
        w = $2; h = head[w]; d = h; sub(/^[^ \t]*[ \t]+/, "", d)
        if (!(w in head)) { print "no input record " w; bad++ }
        else if ($5 != h || $6 != d) { print "line " FNR ": " w " shows \"" $5 "\" / \"" $6 "\""; bad++ }
        lines++
    }
    END { if (lines != '"$records"') print lines " lines, not '"$records"'" }' "$T/in.fa" "$T/out" >"$T/problems"
[ -s "$T/problems" ] && fail "expanded titles: $(head -3 "$T/problems")"
# the kraken-tagged reference's header as a title: the members' own (untagged) headers
unwrap "$T/kr/red.fasta" | awk -v OFS='\t' '/^>/ { h = substr($0, 2); w = h; sub(/[ \t].*/, "", w); print "q" ++n, w, "90", h }' \
    >"$T/ktitles.m8"
expect_exit 0 "$TALARIA" expand -d "$T/kr/red.deltas.tal" "$T/ktitles.m8"
awk -F'\t' 'FNR == NR { if (/^>/) { h = substr($0, 2); w = h; sub(/[ \t].*/, "", w); head[w] = h } next }
    $2 !~ /kraken/ && $4 != head[$2] { print "line " FNR ": " $2 " shows \"" $4 "\"" }' "$T/in.fa" "$T/out" >"$T/problems"
[ -s "$T/problems" ] && fail "expanded titles after -a kraken: $(head -3 "$T/problems")"
grep -q "sp|.*OS=" "$T/out" || fail "no member title in the kraken expansion"

# ---- --same-taxon: no cluster holds two taxids ----
# taxids_per_cluster MEMBERS_TSV : clusters (by reference) with more than one taxid
taxids_per_cluster() {
    awk -F'\t' 'FNR == NR { if (/^>/) { w = $0; sub(/[ \t].*/, "", w); w = substr(w, 2); tax[w] = match($0, /[^[:alnum:]]OX=[0-9]+([ \t]|$)/) ? substr($0, RSTART + 4, RLENGTH - 4) : "-"; sub(/[ \t]$/, "", tax[w]) } next }
        !/^#/ { if (tax[$1] != tax[$2]) print $1 " (" tax[$1] ") in " $2 " (" tax[$2] ")" }' "$T/in.fa" "$1"
}
mkdir -p "$T/any" "$T/same" "$T/conf"
expect_exit 0 "$TALARIA" reduce -q -i "$T/in.fa" -o "$T/any/red.fasta"
[ -n "$(taxids_per_cluster "$T/any/red.members.tsv")" ] ||
    fail "without --same-taxon no cluster mixes taxids: the test data does not test the flag"
grep -q "^copyA${tab}f1_1${tab}" "$T/any/red.members.tsv" || fail "without --same-taxon the exact copy copyA should join f1_1"
expect_exit 0 "$TALARIA" reduce -i "$T/in.fa" -o "$T/same/red.fasta" --same-taxon --clstr "$T/same/red.clstr" &&
    expect_stderr "--same-taxon: $((records - with_tax)) of $records records have no taxid"
taxids_per_cluster "$T/same/red.members.tsv" >"$T/problems"
[ -s "$T/problems" ] && fail "--same-taxon: $(head -3 "$T/problems")"
grep -q "^copy[AB]${tab}" "$T/same/red.members.tsv" && fail "--same-taxon: an exact copy joined a record of another taxid"
[ "$(grep -vc '^#' "$T/same/red.members.tsv")" -gt 40 ] || fail "--same-taxon: hardly any members"
grep -aq "reduce.same_taxon = true  # --same-taxon" "$T/same/red.deltas.tal" ||
    fail "the delta store does not record --same-taxon"
expect_exit 0 "$TALARIA" reconstruct -d "$T/same/red.deltas.tal" && cmp -s "$T/in.fa" "$T/out" ||
    fail "a --same-taxon reduction does not reconstruct the input"
# the configuration key does the same (and -t 2 changes nothing)
printf '[reduce]\nsame_taxon = true\n' >"$T/conf.toml"
expect_exit 0 "$TALARIA" reduce -q -t 2 --config "$T/conf.toml" -i "$T/in.fa" -o "$T/conf/red.fasta"
cmp -s "$T/conf/red.members.tsv" "$T/same/red.members.tsv" && cmp -s "$T/conf/red.fasta" "$T/same/red.fasta" ||
    fail "reduce.same_taxon = true differs from --same-taxon"
grep -aq "reduce.same_taxon = true  # config" "$T/conf/red.deltas.tal" || fail "the delta store does not record reduce.same_taxon"
printf '[reduce]\nsame_taxon = "yes"\n' >"$T/bad.toml"
expect_exit 2 "$TALARIA" reduce -q --config "$T/bad.toml" -i "$T/in.fa" -o "$T/conf/x.fasta" &&
    expect_stderr "same_taxon must be true or false"
finish
