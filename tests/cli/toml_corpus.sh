# The TOML reader against Python's tomllib on the corpus in tests/data/toml: valid files
# give the same values; invalid files are refused by both (ours: exit 2, FILE:LINE:COLUMN);
# what TOML allows but no configuration key takes (inline tables, arrays of tables, dates,
# integers past 64 bits) is accepted by tomllib and refused by us, saying so.
. "$(dirname "$0")/lib.sh"

dump="$TAL_BUILDDIR/tests/toml_dump"
corpus="$DATA/toml"
[ -x "$dump" ] || { fail "no $dump"; finish; }
# flat JSON of a file as tomllib reads it, in the driver's conventions
tomllib_flat() {
    python3 -c '
import json, math, sys, tomllib
def conv(v):
    if isinstance(v, float):
        if math.isnan(v): return "nan"
        if math.isinf(v): return "-inf" if v < 0 else "inf"
    if isinstance(v, list): return [conv(x) for x in v]
    return v
def flat(d, prefix, out):
    for k, v in d.items():
        key = prefix + k
        if isinstance(v, dict): flat(v, key + ".", out)
        else: out[key] = conv(v)
    return out
print(json.dumps(flat(tomllib.load(open(sys.argv[1], "rb")), "", {}), sort_keys=True))' "$1"
}
# the driver's output in the same form (sorted keys)
ours_flat() {
    python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))'
}

n=0
for f in "$corpus"/valid/*.toml; do
    n=$((n + 1))
    if ! "$dump" "$f" >"$T/ours.json" 2>"$T/err"; then
        fail "$(basename "$f"): refused: $(head -c 300 "$T/err")"
        continue
    fi
    want=$(tomllib_flat "$f") || { fail "$(basename "$f"): tomllib refuses a file of the valid corpus"; continue; }
    got=$(ours_flat <"$T/ours.json") || { fail "$(basename "$f"): the driver printed bad JSON"; continue; }
    [ "$want" = "$got" ] || fail "$(basename "$f"): tomllib $want, ours $got"
done
[ "$n" -ge 25 ] || fail "only $n valid files"

n=0
for f in "$corpus"/invalid/*.toml; do
    n=$((n + 1))
    name=$(basename "$f")
    python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' "$f" 2>/dev/null &&
        fail "$name: tomllib accepts a file of the invalid corpus"
    expect_exit 2 "$dump" "$f" && expect_stderr "$name:"
    grep -qE "$name:[0-9]+:[0-9]+: " "$T/err" || fail "$name: the message has no line and column: $(head -c 200 "$T/err")"
done
[ "$n" -ge 25 ] || fail "only $n invalid files"

for f in "$corpus"/unsupported/*.toml; do
    name=$(basename "$f")
    python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' "$f" ||
        fail "$name: tomllib refuses a file of the unsupported corpus"
    expect_exit 2 "$dump" "$f" && grep -qE "$name:[0-9]+:[0-9]+: .*(not supported|out of range)" "$T/err" ||
        fail "$name: not refused as unsupported: $(head -c 200 "$T/err")"
done
finish
