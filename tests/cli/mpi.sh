# reduce across MPI ranks (issue 17): with -np 2 and -np 3 the outputs are byte for byte
# those of one process, at 0.9 and 0.5, for proteins (the 20,000 UniProt proteins of
# Debian's mmseqs2-examples when installed, else synthetic families) and nucleotides; a
# bad input, a cap too small or a failure on rank 1 (while checking, or while deciding)
# stops every rank with the same exit status, leaving no output and no scratch. Skipped when talaria is built
# without MPI.
. "$(dirname "$0")/lib.sh"

if [ "${TAL_MPI:-no}" != yes ] || ! command -v mpirun >/dev/null; then
    echo "talaria is built without MPI (or mpirun is missing): skipped"
    exit 77
fi
# Open MPI refuses root unless told; the ranks may outnumber the cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
# containers often forbid the cross-memory attach of Open MPI's shared-memory transport
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# ASan's leak report at exit does not know MPI's allocations
export ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0

uniprot=$(dpkg -L mmseqs2-examples 2>/dev/null | grep '/DB.fasta.gz$' | head -n1)
if [ -n "$uniprot" ] && [ -s "$uniprot" ]; then
    proteins=$uniprot
else
    echo "mmseqs2-examples is not installed: synthetic proteins instead of UniProt's"
    protein_families 4000 17 p >"$T/proteins.fa"
    proteins=$T/proteins.fa
fi
nucleotide_families 1500 5 n >"$T/dna.fa"

# run DIR NP ARGS... : reduce into DIR as NP ranks (0: one plain process)
run() {
    dir=$1 np=$2
    shift 2
    mkdir -p "$dir/tmp"
    if [ "$np" -eq 0 ]; then
        (cd "$dir" && "$TALARIA" reduce -q --tmp-dir tmp "$@" -o r.fa --clstr r.clstr)
    else
        (cd "$dir" && mpirun -np "$np" "$TALARIA" reduce -q --tmp-dir tmp "$@" -o r.fa --clstr r.clstr)
    fi
}

for set in proteins dna; do
    input=$proteins
    [ $set = dna ] && input=$T/dna.fa
    for id in 0.9 0.5; do
        run "$T/$set-$id-1" 0 -i "$input" --identity "$id" -t 2 ||
            fail "one process: reduce of the $set at $id failed"
        for np in 2 3; do
            d=$T/$set-$id-np$np
            run "$d" "$np" -i "$input" --identity "$id" -t 1 >"$d.log" 2>&1 ||
                fail "mpirun -np $np: reduce of the $set at $id failed: $(tail -3 "$d.log")"
            for f in r.fa r.deltas.tal r.members.tsv r.clstr; do
                cmp -s "$T/$set-$id-1/$f" "$d/$f" ||
                    fail "mpirun -np $np: $f of the $set at $id differs from one process's"
            done
            [ -z "$(ls -A "$d/tmp")" ] || fail "mpirun -np $np left scratch: $(ls "$d/tmp")"
        done
    done
done
# -r: several passes, each rank keeping the evidence of what it decided
run "$T/ratio-1" 0 -i "$T/dna.fa" -r 0.5 -t 2 || fail "one process: reduce -r 0.5 failed"
run "$T/ratio-np2" 2 -i "$T/dna.fa" -r 0.5 -t 1 >"$T/ratio.log" 2>&1 ||
    fail "mpirun -np 2: reduce -r 0.5 failed: $(tail -3 "$T/ratio.log")"
for f in r.fa r.deltas.tal r.members.tsv r.clstr; do
    cmp -s "$T/ratio-1/$f" "$T/ratio-np2/$f" || fail "mpirun -np 2: $f of -r 0.5 differs from one process's"
done
refs=$(grep -c '>' "$T/dna-0.9-1/r.fa")
[ "$refs" -lt 1500 ] || fail "the nucleotide families did not reduce ($refs references)"

# ---- failures: every rank stops with the same status, nothing is left ----
printf '>a\nACDEFGHIK\n>b\nACD1FGHIK\n' >"$T/bad.fa"
mkdir -p "$T/bad/tmp"
(cd "$T/bad" && mpirun -np 3 "$TALARIA" reduce -q --tmp-dir tmp -i ../bad.fa -o r.fa) \
    >"$T/bad.log" 2>&1
code=$?
[ "$code" -eq 3 ] || fail "a bad input under mpirun exited $code, expected 3: $(head -3 "$T/bad.log")"
grep -q 'rank 0.*line 4' "$T/bad.log" || fail "the bad input's message names no rank and line"
[ -z "$(ls -A "$T/bad/tmp")" ] || fail "a bad input left scratch: $(ls "$T/bad/tmp")"
[ ! -e "$T/bad/r.fa" ] && [ ! -e "$T/bad/r.deltas.tal" ] || fail "a bad input left outputs"

mkdir -p "$T/cap/tmp"
(cd "$T/cap" && mpirun -np 2 "$TALARIA" reduce -q --tmp-dir tmp --max-memory 2M -i "$T/dna.fa" \
    -o r.fa) >"$T/cap.log" 2>&1
code=$?
[ "$code" -eq 4 ] || fail "a cap too small under mpirun exited $code, expected 4"
grep -q 'smallest cap that works' "$T/cap.log" || fail "the small cap's message is missing"
[ -z "$(ls -A "$T/cap/tmp")" ] || fail "a cap too small left scratch"
[ ! -e "$T/cap/r.fa" ] || fail "a cap too small left outputs"

# a rank other than 0 failing (the fault library of tests/cli/faults.sh makes rank 1's
# N-th call of the C library fail: a read, an allocation) stops every rank with its status,
# without output or scratch, and never hangs: once during the checks, and once while the
# ranks decide, where the others wait for rank 1's decisions (N grows until a failure
# lands there). The sanitizers and valgrind do not allow the preload.
if ! sanitized && [ -z "${TAL_UNDER_VALGRIND-}" ] &&
    ${TAL_CC:-cc} -shared -fPIC -O1 -o "$T/fault.so" "$TAL_SRCDIR/tests/fault/fault.c" -ldl \
        2>"$T/cc.err"; then
    cat >"$T/rank1.sh" <<EOF
#!/bin/sh
[ "\$OMPI_COMM_WORLD_RANK" = 1 ] && export LD_PRELOAD=$T/fault.so TAL_FAULT=\$FAULT_N
exec "\$@"
EOF
    chmod +x "$T/rank1.sh"
    "$TALARIA" index -q -i "$proteins" -o "$T/proteins.tal" || fail "index of the proteins failed"
    deciding=0
    for n in 1000 20000 30000 40000 50000 60000 80000 120000; do
        d=$T/fault-$n
        mkdir -p "$d/tmp"
        (cd "$d" && FAULT_N=$n timeout 300 mpirun -x FAULT_N -np 2 "$T/rank1.sh" "$TALARIA" \
            reduce -v --tmp-dir tmp -i "$T/proteins.tal" --identity 0.5 -t 1 -o r.fa) \
            >"$d.log" 2>&1
        code=$?
        [ "$code" -ne 124 ] || { fail "rank 1 failing at call $n: the ranks hung"; break; }
        [ "$code" -eq 0 ] && continue # a failure absorbed (a fallback), or past the end
        [ "$code" -eq 1 ] || fail "rank 1 failing at call $n: exit $code, expected 1"
        grep -q 'rank 1.*error' "$d.log" || fail "rank 1's failure at call $n is not named"
        [ -z "$(ls -A "$d/tmp")" ] || fail "rank 1 failing at call $n left scratch: $(ls "$d/tmp")"
        [ ! -e "$d/r.fa" ] && [ ! -e "$d/r.deltas.tal" ] || fail "rank 1 failing at call $n left outputs"
        # after rank 0 began aligning: the failure came while the ranks decide
        if [ "$n" -gt 1000 ] && grep -q 'rank 0\]: aligning' "$d.log"; then
            echo "rank 1 failing at call $n, while the ranks decide: every rank stopped"
            deciding=1
            break
        fi
    done
    [ "$deciding" -eq 1 ] || fail "no failure of rank 1 landed while the ranks decide"
fi
finish
