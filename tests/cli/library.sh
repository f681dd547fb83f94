# libtalaria as others use it: `make install DESTDIR=...`, then a C program outside the
# tree (examples/reduce_api.c) built only with `pkg-config --cflags --libs talaria`
# reduces a FASTA through reduce.h and reads a member back through deltas.h; its outputs
# are byte-identical to `talaria reduce`'s.
. "$(dirname "$0")/lib.sh"

inst="$T/inst"
# a make of its own, outside the jobserver of the make check that runs this test
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL ${TAL_MAKE:-make} -s -C "$TAL_BUILDDIR" install \
    DESTDIR="$inst" >"$T/install.log" 2>&1; then
    fail "make install DESTDIR=$inst failed: $(tail -5 "$T/install.log")"
    finish
fi
pc=$(find "$inst" -name talaria.pc | head -1)
[ -n "$pc" ] || { fail "make install put no talaria.pc under $inst"; finish; }
for h in api error mem store reduce deltas expand; do
    [ -f "$(dirname "$(dirname "$(dirname "$pc")")")/include/talaria/$h.h" ] ||
        fail "talaria/$h.h is not installed beside $pc"
done
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$inst"
flags=$(pkg-config --cflags --libs talaria) || { fail "pkg-config --cflags --libs talaria failed"; finish; }
case "$flags" in *"$inst"*) ;; *) fail "pkg-config's flags do not point into the installation: $flags" ;; esac
# the compiler and flags of this build (an ASan build's library needs its runtime)
${TAL_CC:-cc} ${TAL_CFLAGS:-} -o "$T/reduce_api" "$TAL_SRCDIR/examples/reduce_api.c" $flags ${TAL_LDFLAGS:-} \
    2>"$T/cc.err" || { fail "examples/reduce_api.c does not build: $(head -c 600 "$T/cc.err")"; finish; }

protein_families 400 4242 lib >"$T/in.fa"
member=$(awk '/^>lib[0-9]+_2 / { print substr($1, 2); exit }' "$T/in.fa")
[ -n "$member" ] || fail "the generated input has no second family member"
mkdir -p "$T/api" "$T/cli"
libdir=$(dirname "$(dirname "$pc")")
(cd "$T/api" && LD_LIBRARY_PATH="$libdir" $MEMCHECK "$T/reduce_api" ../in.fa red.fasta 2 256 "$member" >"$T/api.out" 2>"$T/api.err")
rc=$?
[ $rc -eq 0 ] || fail "reduce_api exited $rc: $(head -c 600 "$T/api.err")"
(cd "$T/cli" && "$TALARIA" reduce -q -t 2 --max-memory 256M -i ../in.fa -o red.fasta) ||
    fail "talaria reduce failed"
for f in red.fasta red.deltas.tal red.members.tsv; do
    cmp -s "$T/api/$f" "$T/cli/$f" || fail "$f from the library program differs from talaria reduce's"
done
grep -q "^libtalaria [0-9.]*: 400 records -> " "$T/api.out" || fail "reduce_api's summary: $(head -2 "$T/api.out")"
grep -q "reduce_api: writing" "$T/api.err" || fail "reduce_api saw no progress callback: $(head -c 300 "$T/api.err")"
# the member read back through deltas.h is the input's record, unwrapped
unwrap "$T/in.fa" | awk -v m=">$member" '$1 == m { print; getline; print; exit }' >"$T/want.fa"
sed -n '2,3p' "$T/api.out" >"$T/got.fa"
cmp -s "$T/want.fa" "$T/got.fa" || fail "deltas.h gave $member as $(head -c 200 "$T/got.fa")"
sed -n 4p "$T/api.out" | grep -q "^member of reference" || fail "$member was not reported as a member"
finish
