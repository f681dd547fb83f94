# The TOML reader against Python's tomllib: every valid file reads to the same values, every
# invalid file is refused by both (we at the place its "# expect:" line names), and every
# file in unsupported/ is valid TOML that we refuse as not supported.
. "$(dirname "$0")/lib.sh"
DUMP="$TAL_BUILDDIR/tests/toml_dump"
TOML="$DATA/toml"
if ! python3 -c 'import tomllib' 2>/dev/null; then
    echo "SKIP: needs python3 with tomllib (3.11 or later)"
    exit 77
fi

# compare FILE JSON: tomllib's reading of FILE, flattened to dotted keys as toml_dump writes
# them, equals the JSON (same types, floats bit for bit, any nan for nan).
# refuses FILE / accepts FILE: whether FILE is valid TOML. tomllib leaves the spec's 64-bit
# integer range to the application, so it is checked here.
PY='
import json, math, re, struct, sys, tomllib

def check_range(v):
    if isinstance(v, bool):
        return
    if isinstance(v, int) and not -2**63 <= v < 2**63:
        raise ValueError("integer out of the 64-bit range")
    for item in v.values() if isinstance(v, dict) else v if isinstance(v, list) else []:
        check_range(item)

def load(path):
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    check_range(doc)
    return doc

def part(k):
    if re.fullmatch(r"[A-Za-z0-9_-]+", k):
        return k
    def esc(c):
        if c in "\"\\":
            return "\\" + c
        return "\\u%04X" % ord(c) if c < " " or c == "\x7f" else c
    return "\"" + "".join(map(esc, k)) + "\""

def flatten(d, prefix, out):
    for k, v in d.items():
        key = prefix + "." + part(k) if prefix else part(k)
        if isinstance(v, dict):
            flatten(v, key, out)
        else:
            out[key] = v
    return out

def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    return a == b

def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("toml_dump printed a key twice")
    return dict(pairs)

mode, path = sys.argv[1], sys.argv[2]
if mode == "compare":
    want = flatten(load(path), "", {})
    with open(sys.argv[3], encoding="utf-8") as f:
        got = json.load(f, object_pairs_hook=no_duplicates)
    bad = sorted(set(want) ^ set(got)) + [k for k in want if k in got and not same(want[k], got[k])]
    for k in bad:
        print("%s: tomllib %r, toml_dump %r" % (k, want.get(k, "(none)"), got.get(k, "(none)")))
    sys.exit(1 if bad else 0)
try:
    load(path)
except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError):
    sys.exit(0 if mode == "refuses" else 1)
sys.exit(0 if mode == "accepts" else 1)
'

count() { ls "$TOML/$1"/*.toml | wc -l; }
for dir in valid invalid; do
    [ "$(count $dir)" -ge 25 ] || fail "only $(count $dir) files in $dir/"
done

for f in "$TOML"/valid/*.toml; do
    expect_exit 0 $MEMCHECK "$DUMP" "$f" || continue
    python3 -c "$PY" compare "$f" "$T/out" >"$T/diff" 2>&1 ||
        fail "$f: toml_dump and tomllib differ: $(head -c 600 "$T/diff")"
done

# the "# expect: LINE:COLUMN: MESSAGE" on the first line of each refused file
refused() { # FILE
    expected=$(sed -n '1s/^# expect: //p' "$1")
    [ -n "$expected" ] || { fail "$1 has no '# expect:' first line"; return; }
    expect_exit 2 $MEMCHECK "$DUMP" "$1" || return
    expect_stderr "toml_dump: error: $1:$expected"
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "$1: more than one message: $(cat "$T/err")"
}
for f in "$TOML"/invalid/*.toml; do
    refused "$f"
    python3 -c "$PY" refuses "$f" || fail "$f: tomllib accepts it"
done
for f in "$TOML"/unsupported/*.toml; do
    refused "$f"
    expect_stderr "not supported in talaria configuration files"
    python3 -c "$PY" accepts "$f" || fail "$f: tomllib refuses it, so it is not valid TOML"
done
expect_exit 1 $MEMCHECK "$DUMP" "$TOML/no-such-file.toml" && expect_stderr "no-such-file.toml"
finish
