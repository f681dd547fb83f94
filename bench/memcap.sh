#!/usr/bin/env bash
# The memory cap on real-sized data (issue 5): index and reduce with and without
# --max-memory, at -t 1 and -t 2, in one run. Reports each run's wall time and peak RSS
# (/usr/bin/time), whether the capped outputs are byte-identical to the uncapped ones,
# the tracked-versus-VmHWM gap from --memory-report, and capped/uncapped time.
# Usage: bench/memcap.sh FASTA [WORKDIR]
#   env: INDEX_CAP (128M), REDUCE_CAP (256M), THREADS ("1 2"), TALARIA,
#        UNCAPPED (thread counts reduce also runs without a cap; default THREADS: a
#        capped reduce with no uncapped twin is compared with the first uncapped one,
#        as its outputs do not depend on -t; index always runs both, the store
#        records -t)
# The 1 GB set: gen_families.py --seed 7 --target-bytes 1G; the 4 GB one with
# INDEX_CAP=512M REDUCE_CAP=512M (UNCAPPED=2 saves the slowest run).
set -euo pipefail
fasta=$(readlink -f "$1")
work=${2:-${TMPDIR:-/tmp}/talaria-bench-memcap}
talaria=$(readlink -f "${TALARIA:-$(dirname "$(readlink -f "$0")")/../build/talaria}")
index_cap=${INDEX_CAP:-128M}
reduce_cap=${REDUCE_CAP:-256M}
threads=${THREADS:-"1 2"}
uncapped=${UNCAPPED:-$threads}
first=${uncapped%% *}
threads="$first $(for t in $threads; do [ "$t" = "$first" ] || echo "$t"; done)" # its twin first
export SOURCE_DATE_EPOCH=1 # the catalog's build time: identical stores
mkdir -p "$work"
cd "$work"
fail=0
bytes() { numfmt --from=iec "$1"; }
run() { # name dir command...: prints "name wall_s peak_mib"
    local name=$1 dir=$2
    shift 2
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$dir" && /usr/bin/time -f "%e %M" -o time.txt "$@" >out.txt 2>err.txt) || {
        echo "$name: FAILED (exit $?): $(tail -2 "$dir/err.txt")"
        fail=1
        return 0
    }
    read -r wall kb <"$dir/time.txt"
    printf '%-22s %8.1f s %8d MiB\n' "$name" "$wall" $((kb / 1024))
    echo "$wall" >"$dir/wall"
    echo "$kb" >"$dir/kb"
}
check_cap() { # dir cap
    local kb
    kb=$(cat "$1/kb" 2>/dev/null || echo 0)
    if [ $((kb * 1024)) -le "$(bytes "$2")" ]; then echo "  peak within $2: yes"; else echo "  peak within $2: NO"; fail=1; fi
    if [ -f "$1/mem.json" ]; then
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("  tracked peak %.1f MiB, VmHWM %.1f MiB, gap %+.1f%% of VmHWM" % (d["tracked_peak"]/2**20, d["vmhwm"]/2**20, 100*d["gap_fraction"]))' "$1/mem.json"
    fi
}
same() { # a b files...
    local a=$1 b=$2
    shift 2
    for f in "$@"; do
        if ! cmp -s "$a/$f" "$b/$f"; then echo "  $f: DIFFERENT"; fail=1; return 0; fi
    done
    echo "  outputs byte-identical: yes"
}
echo "# $fasta ($(($(stat -c %s "$fasta") / 1048576)) MiB), $(date -u +%F), index cap $index_cap, reduce cap $reduce_cap"
has_uncapped() { case " $uncapped " in *" $1 "*) return 0 ;; esac; return 1; }
for t in $threads; do # the store records -t (provenance): each count has its twin
    run "index -t$t" "i$t" "$talaria" index -q -t "$t" -i "$fasta" -o db.tal
    run "index -t$t capped" "ic$t" "$talaria" index -q -t "$t" -i "$fasta" -o db.tal --max-memory "$index_cap" \
        --memory-report mem.json
    check_cap "ic$t" "$index_cap"
    if diff -r "i$t/db.tal" "ic$t/db.tal" >/dev/null; then echo "  store byte-identical: yes"; else echo "  store: DIFFERENT"; fail=1; fi
    rm -rf "i$t/db.tal" "ic$t/db.tal"
done
for t in $threads; do
    u=$first
    if has_uncapped "$t"; then
        u=$t
        run "reduce -t$t" "r$t" "$talaria" reduce -q -t "$t" -i "$fasta" -o red.fasta --tmp-dir "$work"
    fi
    run "reduce -t$t capped" "rc$t" "$talaria" reduce -q -t "$t" -i "$fasta" -o red.fasta --tmp-dir "$work" \
        --max-memory "$reduce_cap" --memory-report mem.json
    check_cap "rc$t" "$reduce_cap"
    echo "  compared with reduce -t$u:"
    same "r$u" "rc$t" red.fasta red.deltas.tal red.members.tsv
    if [ -f "r$u/wall" ] && [ -f "rc$t/wall" ]; then
        echo "  capped / uncapped time: $(echo "scale=2; $(cat "rc$t/wall") / $(cat "r$u/wall")" | bc)"
    fi
done
[ "$fail" = 0 ] && echo "memcap: PASS" || { echo "memcap: FAIL"; exit 1; }
