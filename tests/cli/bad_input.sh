# The bad-input corpus (tests/data/bad/cases.tsv, which describes its columns): malformed
# FASTA, plain and compressed; damaged stores and delta stores; bad configuration files,
# hit files and accession lists; files that are missing or cannot be read. Every case
# checks the exit code, a message naming the file and the line, record or section, that
# nothing is left at the output path and that no temporary is left behind.
. "$(dirname "$0")/lib.sh"

for v in $(env | sed -n 's/^\(TALARIA_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export TMPDIR="$T/tmp" # reduce's scratch directories
F="$T/fix"
mkdir -p "$F" "$T/in" "$T/o" "$TMPDIR"

# ---- the fixtures damaged copies are made of ----
protein_families 40 5 fam >"$F/fam.fa"
"$TALARIA" index -q -i "$DATA/small.fa" -o "$F/good.tal" &&
    "$TALARIA" index -q --compress zstd -i "$DATA/small.fa" -o "$F/goodz.tal" &&
    "$TALARIA" reduce -q -i "$F/fam.fa" -o "$F/red.fasta" || {
    fail "cannot build the fixtures"
    finish
}
printf 'q1\tfam1_1\t99.0\t120\nq2\tfam2_2\t97.5\t100\n' >"$F/hits.m8"

# flip FILE OFFSET: xor the byte at OFFSET with 0x5a
flip() {
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((b ^ 90)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

# offset FILE SPEC: N, -N (from the end), N% of the size, or SECTION+N in a delta store,
# whose header holds each section's offset as a little-endian 64-bit number (layout: the
# line layout, the last layout_size bytes of the deltas section, minor 2)
offset() {
    size=$(wc -c <"$1")
    case $2 in
    *%) echo $((size * ${2%\%} / 100)) ;;
    -*) echo $((size + $2)) ;;
    *+*)
        case ${2%%+*} in
        entries) at=32 ;;
        headers) at=40 ;;
        deltas) at=56 ;;
        refs) at=72 ;;
        keys) at=80 ;;
        layout)
            u64() { od -An -tu8 -j "$2" -N8 "$1" | tr -d ' '; }
            echo $(($(u64 "$1" 56) + $(u64 "$1" 64) - $(u64 "$1" 4088) + ${2#*+}))
            return
            ;;
        *) return 1 ;;
        esac
        echo $(($(od -An -tu8 -j $at -N8 "$1" | tr -d ' ') + ${2#*+}))
        ;;
    *) echo "$2" ;;
    esac
}

# damage FILE DAMAGE
damage() {
    case $2 in
    none) ;;
    rm) rm -f "$1" ;;
    flip@*) flip "$1" "$(offset "$1" "${2#flip@}")" ;;
    cut@*) truncate -s "$(offset "$1" "${2#cut@}")" "$1" ;;
    append@*) printf '%s' "${2#append@}" >>"$1" ;;
    *) return 1 ;;
    esac
}

# make_input NAME SPEC: creates the case's input and sets $in to its path; 1 if the spec
# is wrong, 77 if the case cannot run here
make_input() {
    kind=${2%%:*}
    rest=${2#*:}
    case $kind in
    "$2") in="$DATA/bad/$2" && [ -e "$in" ] ;;
    missing) in="$T/in/$rest" ;;
    dir) in="$T/in/$rest" && mkdir "$in" ;;
    unreadable)
        [ "$(id -u)" -ne 0 ] || return 77
        in="$T/in/$rest" && : >"$in" && chmod 000 "$in"
        ;;
    gz | zst | lz4 | bz2 | xz)
        src=${rest%%:*}
        [ -e "$DATA/bad/$src" ] && src="$DATA/bad/$src" || src="$F/$src"
        in="$T/in/$1.$kind"
        case $kind in
        gz) gzip -n -c "$src" ;;
        zst) zstd -q -c "$src" ;;
        lz4) lz4 -q -c "$src" ;;
        bz2) bzip2 -c "$src" ;;
        xz) xz -c "$src" ;;
        esac >"$in" 2>/dev/null || return 77
        damage "$in" "${rest#*:}"
        ;;
    store | zstore)
        [ "$kind" = store ] && cp -r "$F/good.tal" "$T/in/$1.tal" || cp -r "$F/goodz.tal" "$T/in/$1.tal"
        in="$T/in/$1.tal" && damage "$in/${rest%%:*}" "${rest#*:}"
        ;;
    deltas | reduced)
        mkdir "$T/in/$1" && cp "$F/red.fasta" "$F/red.deltas.tal" "$T/in/$1/"
        [ "$kind" = deltas ] && in="$T/in/$1/red.deltas.tal" || in="$T/in/$1/red.fasta"
        damage "$in" "$rest"
        ;;
    *) return 1 ;;
    esac
}

# placeholders FRAGMENT WORD...: the message fragment as an extended regular expression
# ({n}: a number, {...}: any text), then each word, a line each, the placeholders replaced
placeholders() {
    P_in=$in P_dir=${in%/*} P_out="$T/o/out" P_fa="$F/fam.fa" P_store="$F/good.tal" \
        P_zstore="$F/goodz.tal" P_deltas="$F/red.deltas.tal" P_reduced="$F/red.fasta" \
        P_m8="$F/hits.m8" awk '
function fill(s,   k, i, key, done) {
    for (k = 1; k <= n; k++) {
        key = "{" names[k] "}"
        done = ""
        while ((i = index(s, key)) > 0) {
            done = done substr(s, 1, i - 1) ENVIRON["P_" names[k]]
            s = substr(s, i + length(key))
        }
        s = done s
    }
    return s
}
BEGIN {
    n = split("in dir out fa store zstore deltas reduced m8", names, " ")
    s = fill(ARGV[1])
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (substr(s, i, 3) == "{n}") {
            c = "[0-9]+"
            i += 2
        } else if (substr(s, i, 5) == "{...}") {
            c = ".*"
            i += 4
        } else if (c == "^") {
            c = "\\^"
        } else if (index("[].\\()*+?{}|$", c)) {
            c = "[" c "]"
        }
        pattern = pattern c
    }
    print pattern
    for (a = 2; a < ARGC; a++) print fill(ARGV[a])
}' "$@"
}

cases=0
skipped=0
check_case() { # name input command exit fragment
    name=$1 code=$4
    case $5 in
    *"{in}"* | *"{dir}"* | *"{deltas}"* | *"<stdin>"*) ;;
    *) fail "$name: the message fragment names no file" ;;
    esac
    make_input "$1" "$2"
    case $? in
    0) ;;
    77)
        echo "$name: skipped ($2 cannot be made here)"
        skipped=$((skipped + 1))
        return
        ;;
    *)
        fail "$name: cannot make the input '$2'"
        return
        ;;
    esac
    cases=$((cases + 1))
    set -f # the command is split at spaces, without globbing
    placeholders "$5" $3 >"$T/args"
    set +f
    stdin=/dev/null
    set --
    {
        read -r pattern
        while read -r word; do
            case $word in
            '<'*) stdin=${word#<} ;;
            *) set -- "$@" "$word" ;;
            esac
        done
    } <"$T/args"
    "$TALARIA" "$@" <"$stdin" >"$T/stdout" 2>"$T/stderr"
    got=$?
    [ "$got" -eq "$code" ] || fail "$name: talaria $* exited $got, expected $code: $(head -c 600 "$T/stderr")"
    grep -Eq -- "$pattern" "$T/stderr" || fail "$name: stderr lacks /$pattern/: $(head -c 600 "$T/stderr")"
    # nothing at the output path, in TMPDIR (reduce's scratch) or named *.tmp-* anywhere
    for left in "$T"/o/* "$TMPDIR"/* "$T"/*.tmp-* "$T"/*/*.tmp-* "$T"/*/*/*.tmp-*; do
        [ -e "$left" ] || continue
        fail "$name: left $left"
        rm -rf "$left"
    done
}

while IFS='	' read -r name input command code msg; do
    case "$name" in '#'* | '') continue ;; esac
    check_case "$name" "$input" "$command" "$code" "$msg"
done <"$DATA/bad/cases.tsv"
[ "$cases" -ge 40 ] || fail "only $cases cases ran"
echo "$cases cases, $skipped skipped"

# A compressed stream that breaks off is named at the line where its data ends, not at the
# start of the block the error came with (lz4 -B4: 64 KiB blocks, so half the file decodes).
awk 'BEGIN { srand(3); for (i = 0; i < 4000; i++) { printf(">r%d\n", i); s = ""; for (j = 0; j < 200; j++) s = s substr("ACDEFGHIKLMNPQRSTVWY", int(rand() * 20) + 1, 1); print s } }' >"$T/big.fa"
gzip -n -c "$T/big.fa" >"$T/full.gz"
zstd -q -c "$T/big.fa" >"$T/full.zst"
lz4 -q -B4 -c "$T/big.fa" >"$T/full.lz4"
for ext in gz zst lz4; do
    size=$(wc -c <"$T/full.$ext")
    head -c $((size / 2)) "$T/full.$ext" >"$T/cut.$ext"
    expect_exit 3 "$TALARIA" index -q -i "$T/cut.$ext" -o "$T/o/cut.tal"
    line=$(sed -n 's/.*cut\.'"$ext"': line \([0-9]*\): .* stream is truncated$/\1/p' "$T/err")
    [ -n "$line" ] && [ "$line" -gt 1000 ] && [ "$line" -lt 8000 ] ||
        fail "a truncated $ext stream is named at line '$line', not where its data ends: $(cat "$T/err")"
done

# --allow-duplicates turns the duplicate error into a count, keeping the first record.
expect_exit 0 "$TALARIA" index -i "$DATA/bad/duplicate.fa" -o "$T/dup.tal" --allow-duplicates
expect_stderr "1 duplicate accessions skipped"
"$TALARIA" get -w 0 "$T/dup.tal" a >"$T/a.fa"
printf '>a\nACGT\n' | cmp -s - "$T/a.fa" || fail "--allow-duplicates did not keep the first record"
finish
