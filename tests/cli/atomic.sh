# Stores appear atomically: an existing store is never overwritten without --force, a
# non-store is never replaced, and kill -9 at any moment leaves no store that opens.
. "$(dirname "$0")/lib.sh"

in="$DATA/small.fa"
expect_exit 0 "$TALARIA" index -q -i "$in" -o "$T/db.tal"
before=$(cat "$T/db.tal/meta" | cksum)
expect_exit 1 "$TALARIA" index -q -i "$DATA/crlf.fa" -o "$T/db.tal" && expect_stderr "already exists; use --force"
[ "$(cat "$T/db.tal/meta" | cksum)" = "$before" ] || fail "existing store changed without --force"
expect_exit 0 "$TALARIA" index -q -f -i "$DATA/crlf.fa" -o "$T/db.tal"
"$TALARIA" get -w 0 "$T/db.tal" crlf2 >"$T/got" && printf '>crlf2 second\nMKV*\n' | cmp -s - "$T/got" ||
    fail "--force did not replace the store"
expect_exit 3 "$TALARIA" get "$T/db.tal" sp\|P69905\|HBA_HUMAN

mkdir "$T/precious" && echo keep >"$T/precious/file"
expect_exit 1 "$TALARIA" index -q -f -i "$in" -o "$T/precious" && expect_stderr "is not a talaria store"
[ "$(cat "$T/precious/file")" = keep ] || fail "a non-store directory was touched"
echo keep >"$T/plainfile"
expect_exit 1 "$TALARIA" index -q -f -i "$in" -o "$T/plainfile"
[ "$(cat "$T/plainfile")" = keep ] || fail "a plain file was replaced"

# A few megabytes so that the build takes long enough to be interrupted.
awk 'BEGIN { srand(5); for (i = 0; i < 60000; i++) { printf(">k%d some description OX=9606\n", i);
    s = ""; for (j = 0; j < 120; j++) s = s substr("ACDEFGHIKLMNPQRSTVWY", int(rand() * 20) + 1, 1); print s } }' >"$T/big.fa"
i=0
for delay in 0 0.01 0.02 0.03 0.05 0.08 0.1 0.15 0.2 0.3 0.4 0.6; do
    i=$((i + 1))
    out="$T/kill$i.tal"
    "$TALARIA" index -q -i "$T/big.fa" -o "$out" &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if [ -e "$out" ]; then
        # the rename happened: the store must be complete
        "$TALARIA" verify -q "$out" || fail "kill -9 after $delay s left a store that does not verify"
    else
        "$TALARIA" stats -i "$out" >/dev/null 2>&1 && fail "stats opened a missing store"
    fi
    rm -rf "$T"/kill*.tmp-*
done

# SIGTERM and SIGINT clean up the temporary directory.
for sig in TERM INT; do
    "$TALARIA" index -q -i "$T/big.fa" -o "$T/sig.tal" &
    pid=$!
    sleep 0.05
    kill -s "$sig" "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if [ ! -e "$T/sig.tal" ]; then
        ls "$T" | grep -q "sig.tal.tmp-" && fail "SIG$sig left a temporary directory"
    fi
    rm -rf "$T/sig.tal"
done
finish
