# Fault injection (tests/fault/fault.c, preloaded): for index, reduce, reconstruct and
# expand, every call site in talaria's code that allocates, opens, reads, writes, syncs,
# renames or maps (as reached on small data) is made to fail once, one site a run. Each
# time: no crash; either the failure is absorbed and the outputs are exactly those of a
# run without faults (exit 0), or the run ends with exit 1, 3 or 4 and a message, the
# previous outputs at the same paths are untouched (every run has --force over them) and
# no temporary or scratch directory is left.
. "$(dirname "$0")/lib.sh"

if sanitized || [ -n "${TAL_UNDER_VALGRIND-}" ]; then
    echo "skipped: the fault library is preloaded, which the sanitizers and valgrind do not allow"
    exit 77
fi
# shellcheck disable=SC2086 # TAL_CFLAGS is a flag list
if ! ${TAL_CC:-cc} -shared -fPIC -O1 -g -o "$T/fault.so" "$TAL_SRCDIR/tests/fault/fault.c" \
    -ldl 2>"$T/cc.err"; then
    fail "cannot build the fault library: $(head -c 400 "$T/cc.err")"
    finish
fi
FAULT_LIB=$T/fault.so

# Hundreds of runs that each fsync: in memory where there is a tmpfs (the test is about
# what the program does, not the disk)
if [ -d /dev/shm ] && W=$(mktemp -d /dev/shm/talaria-faults.XXXXXX 2>/dev/null); then
    trap 'rm -rf "$T" "$W"' EXIT
    T=$W
fi
protein_families 300 11 p >"$T/in.fa"
protein_families 40 12 q >"$T/other.fa"
mkdir -p "$T/o" "$T/scratch" "$T/prev" "$T/ref"

# fail with the site's place in the source (addr2line) added to the message
site_fail() { # MESSAGE (whose second field is KIND, fourth OFFSET)
    offset=$(echo "$1" | awk '{ sub(/:$/, "", $4); print $4 }')
    loc=$(addr2line -f -s -e "$TALARIA" "$offset" 2>/dev/null | paste -sd ' ')
    fail "$1 [${loc:-?}]"
}

# leftovers : the temporaries and scratch directories now in the output and scratch dirs
leftovers() {
    ls -d "$T"/o/*.tmp-* "$T"/scratch/talaria-reduce-* 2>/dev/null
}

# same A B : files or directories with the same bytes
same() {
    if [ -d "$1" ]; then diff -r "$1" "$2" >/dev/null; else cmp -s "$1" "$2"; fi
}

# same_result REF OUT : a run's output equals the fault-free run's (a store's data files;
# its meta and catalog hold the build time)
same_result() {
    if [ -d "$1" ]; then
        for f in "$1"/*; do
            case ${f##*/} in meta | catalog.sqlite) continue ;; esac
            cmp -s "$f" "$2/${f##*/}" || return 1
        done
        "$TALARIA" verify "$2" >/dev/null 2>&1
    else
        cmp -s "$1" "$2"
    fi
}

restore_previous() { # OUTPUT...
    for f in "$@"; do
        rm -rf "$T/o/$f"
        cp -a "$T/prev/$f" "$T/o/$f"
    done
}

# inject NAME "OUTPUTS" CMD... : records the sites CMD reaches, then fails each in turn
inject() {
    name=$1
    outputs=$2
    shift 2
    # shellcheck disable=SC2086
    restore_previous $outputs
    rm -f "$T/sites.$name"
    LD_PRELOAD=$FAULT_LIB TAL_FAULT_RECORD=$T/sites.$name "$@" >"$T/out.ref" 2>"$T/err" ||
        fail "$name: the run without faults failed: $(head -c 300 "$T/err")"
    for f in $outputs; do
        rm -rf "$T/ref/$f"
        cp -a "$T/o/$f" "$T/ref/$f"
    done
    sort -u "$T/sites.$name" >"$T/sites.$name.u"
    sites=$(wc -l <"$T/sites.$name.u")
    [ "$sites" -ge 10 ] || fail "$name: only $sites call sites recorded (is the fault library working?)"
    absorbed=0
    clean=0
    while read -r kind offset; do
        # shellcheck disable=SC2086
        restore_previous $outputs
        LD_PRELOAD=$FAULT_LIB TAL_FAULT="$kind@$offset" "$@" >"$T/out" 2>"$T/err"
        rc=$?
        what="$name: $kind at $offset"
        case $rc in
        0)
            absorbed=$((absorbed + 1))
            for f in $outputs; do
                same_result "$T/ref/$f" "$T/o/$f" || site_fail "$what: exit 0 but $f differs from a run without faults"
            done
            cmp -s "$T/out.ref" "$T/out" || site_fail "$what: exit 0 but its standard output differs"
            ;;
        1 | 3 | 4)
            clean=$((clean + 1))
            grep -q "talaria" "$T/err" || site_fail "$what: exit $rc without a message"
            for f in $outputs; do
                same "$T/prev/$f" "$T/o/$f" || site_fail "$what: exit $rc and the previous $f was changed"
            done
            ;;
        *)
            site_fail "$what: exit $rc (a crash or a wrong code): $(head -c 300 "$T/err")"
            ;;
        esac
        left=$(leftovers)
        [ -z "$left" ] || site_fail "$what: exit $rc left $left"
        rm -rf $left
    done <"$T/sites.$name.u"
    echo "$name: $sites call sites failed in turn: $absorbed absorbed (exit 0, same output), $clean ended cleanly"
}

# ---- index: a raw and a compressed store ----
"$TALARIA" index -q -i "$T/other.fa" -o "$T/prev/k.tal" || fail "index of the other input failed"
inject index k.tal "$TALARIA" index -q --force -t 2 -i "$T/in.fa" -o "$T/o/k.tal"
inject index-zstd k.tal "$TALARIA" index -q --force -t 2 --compress zstd --chunk-size 64K \
    -i "$T/in.fa" -o "$T/o/k.tal"

# ---- reduce ----
OUTPUTS="r.fa r.deltas.tal r.members.tsv r.clstr"
(cd "$T/prev" && "$TALARIA" reduce -q -i "$T/other.fa" -o r.fa --clstr r.clstr) ||
    fail "reduce of the other input failed"
inject reduce "$OUTPUTS" "$TALARIA" reduce -q --force -t 2 -i "$T/in.fa" -o "$T/o/r.fa" \
    --clstr "$T/o/r.clstr" --tmp-dir "$T/scratch"
# (reduce from a store: the store's reader instead of the indexing)
"$TALARIA" index -q -i "$T/in.fa" -o "$T/in.tal" || fail "index of the input failed"
inject reduce-store "$OUTPUTS" "$TALARIA" reduce -q --force -t 2 -i "$T/in.tal" -o "$T/o/r.fa" \
    --clstr "$T/o/r.clstr" --tmp-dir "$T/scratch"

# ---- reconstruct and expand, from a reduction kept aside ----
mkdir -p "$T/red"
(cd "$T/red" && "$TALARIA" reduce -q -i "$T/in.fa" -o r.fa) || fail "the reduction to read failed"
echo previous >"$T/prev/full.fa"
inject reconstruct full.fa "$TALARIA" reconstruct -q --force -d "$T/red/r.deltas.tal" \
    -w 60 -o "$T/o/full.fa"
awk -F'\t' 'NR > 1 && !seen[$2]++ { printf "q%d\t%s\t97.5\t120\t3\t0\t1\t120\t1\t120\t1e-50\t230\n", NR, $2 }' \
    "$T/red/r.members.tsv" | head -40 >"$T/hits.m8"
[ -s "$T/hits.m8" ] || fail "no references in the membership to make hits from"
echo previous >"$T/prev/expanded.m8"
inject expand expanded.m8 "$TALARIA" expand -q --force -d "$T/red/r.deltas.tal" \
    -o "$T/o/expanded.m8" "$T/hits.m8"
finish
