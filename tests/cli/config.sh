# Configuration: the built-in profiles, `config show` and where each value comes from,
# the precedence default < profile < --config < TALARIA_* < flags (max_memory, threads
# and identity, each step), a user's own profile, and bad files (table-driven: exit 2
# naming file, line and column, nothing written).
. "$(dirname "$0")/lib.sh"

# keep the user's real profiles and variables out of the way
export XDG_CONFIG_HOME="$T/xdg"
for v in $(env | sed -n 's/^\(TALARIA_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
mkdir -p "$XDG_CONFIG_HOME/talaria"

# ---- profiles and config show ----
expect_exit 0 "$TALARIA" config show --profile low &&
    grep -qx 'memory.max_memory = 4G  # profile low' "$T/out" ||
    fail "config show --profile low: $(grep max_memory "$T/out")"
grep -qx 'store.compress = zstd  # profile low' "$T/out" || fail "low does not compress: $(grep compress "$T/out")"
grep -q '^threads = (.*)  # default$' "$T/out" || fail "an unset key is not shown as the default"
[ "$(grep -c ' = ' "$T/out")" -eq 18 ] || fail "config show lists $(grep -c ' = ' "$T/out") keys, not 18"
expect_exit 0 "$TALARIA" config show --profile high && grep -qx 'memory.max_memory = 128G  # profile high' "$T/out" ||
    fail "high's cap: $(grep max_memory "$T/out")"
grep -qx 'memory.huge_pages = hugetlb  # profile high' "$T/out" || fail "high's huge pages"
expect_exit 0 "$TALARIA" config show --profile balanced && grep -qx 'memory.max_memory = 16G  # profile balanced' "$T/out" ||
    fail "balanced's cap: $(grep max_memory "$T/out")"
expect_exit 0 "$TALARIA" config show --profile low --format json &&
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); m = d["memory.max_memory"]
assert m["value"] == "4G" and m["origin"] == "profile low" and m["env"] == "TALARIA_MAX_MEMORY", m
assert d["threads"]["value"] is None and d["threads"]["origin"] == "default"' "$T/out" ||
    fail "config show --format json: $(head -c 300 "$T/out")"
expect_exit 0 "$TALARIA" config profiles && grep -q '^low  *max_memory 4.0 GiB  *built-in$' "$T/out" &&
    grep -q '^balanced  *max_memory 16.0 GiB' "$T/out" && grep -q '^high  *max_memory 128.0 GiB' "$T/out" ||
    fail "config profiles: $(cat "$T/out")"
expect_exit 2 "$TALARIA" config show --profile nosuch && expect_stderr "unknown profile 'nosuch'"
expect_exit 2 "$TALARIA" reduce --profile nosuch -i "$DATA/small.fa" -o "$T/x.fasta" &&
    expect_stderr "unknown profile 'nosuch'"
[ -e "$T/x.fasta" ] && fail "an unknown profile still wrote output"

# ---- a user's own profile, found by name, over the built-in one of the same name ----
printf '# mine\nthreads = 3\n[reduce]\nidentity = 0.7\n' >"$XDG_CONFIG_HOME/talaria/mine.toml"
printf '[memory]\nmax_memory = "2G"\n' >"$XDG_CONFIG_HOME/talaria/low.toml"
expect_exit 0 "$TALARIA" config show --profile mine && grep -qx 'reduce.identity = 0.7  # profile mine' "$T/out" ||
    fail "a user's profile: $(grep identity "$T/out")"
expect_exit 0 "$TALARIA" config show --profile low && grep -qx 'memory.max_memory = 2G  # profile low' "$T/out" ||
    fail "the user's low.toml does not come before the built-in one: $(grep max_memory "$T/out")"
grep -q '^store.compress = (' "$T/out" || fail "the user's low.toml was mixed with the built-in one"
expect_exit 0 "$TALARIA" config profiles && grep -q "^mine  *max_memory no cap  *$XDG_CONFIG_HOME/talaria/mine.toml" "$T/out" ||
    fail "config profiles does not list the user's profile: $(cat "$T/out")"
rm "$XDG_CONFIG_HOME/talaria/low.toml"

# ---- precedence: profile < --config < environment < flags ----
protein_families 300 2718 cf >"$T/in.fa"
printf 'threads = 2\n[memory]\nmax_memory = "1M"\n[reduce]\nidentity = 0.8\n' >"$T/conf.toml"
# summary KEY : a key of the last --summary-json
summary() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/s.json" "$1"; }
red() { rm -rf "$T/r" "$T/s.json"; mkdir -p "$T/r"; "$TALARIA" reduce -q -i "$T/in.fa" -o "$T/r/red.fasta" --summary-json "$T/s.json" "$@"; }

# max_memory: the file's 1M is exit 4 naming a cap; the environment's 4G runs; the flag's 1M is exit 4
red --profile mine --config "$T/conf.toml" 2>"$T/err"
[ $? -eq 4 ] && grep -q 'the smallest cap that works here is' "$T/err" ||
    fail "max_memory = \"1M\" in --config did not stop reduce with exit 4: $(head -c 300 "$T/err")"
[ -e "$T/r/red.fasta" ] && fail "exit 4 left red.fasta"
TALARIA_MAX_MEMORY=4G red --profile mine --config "$T/conf.toml" 2>"$T/err" ||
    fail "TALARIA_MAX_MEMORY=4G over the file's 1M did not run: $(head -c 300 "$T/err")"
TALARIA_MAX_MEMORY=4G red --profile mine --config "$T/conf.toml" --max-memory 1M 2>"$T/err"
[ $? -eq 4 ] || fail "--max-memory 1M over TALARIA_MAX_MEMORY=4G did not give exit 4"

# threads: profile 3 < file 2 < environment 1 < flag 2; identity: profile 0.7 < file 0.8 < env 0.85 < flag 0.95
red --profile mine 2>"$T/err" && [ "$(summary threads)" = 3 ] && [ "$(summary identity)" = 0.7 ] ||
    fail "the profile's threads and identity: $(summary threads) $(summary identity) $(head -c 200 "$T/err")"
TALARIA_MAX_MEMORY=none red --profile mine --config "$T/conf.toml" 2>"$T/err" &&
    [ "$(summary threads)" = 2 ] && [ "$(summary identity)" = 0.8 ] ||
    fail "--config over the profile: $(summary threads) $(summary identity) $(head -c 200 "$T/err")"
TALARIA_MAX_MEMORY=none TALARIA_THREADS=1 TALARIA_IDENTITY=0.85 red --profile mine --config "$T/conf.toml" 2>"$T/err" &&
    [ "$(summary threads)" = 1 ] && [ "$(summary identity)" = 0.85 ] ||
    fail "the environment over --config: $(summary threads) $(summary identity) $(head -c 200 "$T/err")"
TALARIA_MAX_MEMORY=none TALARIA_THREADS=1 TALARIA_IDENTITY=0.85 red --profile mine --config "$T/conf.toml" \
    -t 2 --identity 0.95 2>"$T/err" && [ "$(summary threads)" = 2 ] && [ "$(summary identity)" = 0.95 ] ||
    fail "flags over the environment: $(summary threads) $(summary identity) $(head -c 200 "$T/err")"
# the same as config show says
TALARIA_THREADS=1 expect_exit 0 "$TALARIA" config show --profile mine --config "$T/conf.toml"
grep -qx 'threads = 1  # env TALARIA_THREADS' "$T/out" && grep -qx "reduce.identity = 0.8  # config $T/conf.toml:5" "$T/out" ||
    fail "config show's origins: $(grep -E '^(threads|reduce.identity) ' "$T/out")"

# ---- index takes [store] and threads from the configuration ----
printf '[store]\ncompress = "lz4"\nchunk_size = "64K"\n' >"$T/store.toml"
expect_exit 0 "$TALARIA" index -q --config "$T/store.toml" -i "$T/in.fa" -o "$T/lz4.tal"
expect_exit 0 "$TALARIA" stats -i "$T/lz4.tal" && grep -qx 'codec	lz4' "$T/out" && grep -qx 'chunk_size	65536' "$T/out" ||
    fail "index --config did not compress: $(grep -E '^(codec|chunk_size)' "$T/out")"
expect_exit 0 "$TALARIA" index -q --config "$T/store.toml" --compress none -i "$T/in.fa" -o "$T/raw.tal"
expect_exit 0 "$TALARIA" stats -i "$T/raw.tal" && grep -qx 'codec	none' "$T/out" || fail "--compress none did not win"

# ---- provenance: the configuration is recorded in the delta store and the catalog ----
red --profile mine --config "$T/conf.toml" --max-memory 4G 2>"$T/err" || fail "reduce with a configuration failed"
grep -aq "reduce.identity = 0.8  # config $T/conf.toml:5" "$T/r/red.deltas.tal" ||
    fail "the delta store does not record the configuration"
grep -aq "max_memory" "$T/r/red.deltas.tal" && fail "the delta store records a [memory] key, which changes no output"
# flags that are configuration keys are recorded too; -a's preset, then --identity over it
red -a kraken --identity 0.85 2>"$T/err" && [ "$(summary identity)" = 0.85 ] && [ "$(summary coverage)" = 0.9 ] ||
    fail "-a kraken --identity 0.85: $(summary identity) $(summary coverage) $(head -c 200 "$T/err")"
grep -aq "reduce.identity = 0.85  # --identity" "$T/r/red.deltas.tal" &&
    grep -aq "reduce.aligner = kraken  # -a" "$T/r/red.deltas.tal" || fail "the delta store does not record the flags"
expect_exit 0 "$TALARIA" reconstruct -d "$T/r/red.deltas.tal" && cmp -s "$T/in.fa" "$T/out" ||
    fail "a delta store with a recorded configuration does not reconstruct"
expect_exit 0 "$TALARIA" verify "$T/lz4.tal"
python3 -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?immutable=1", uri=True)
print(c.execute("select value from provenance where key = ?", ("config",)).fetchone()[0])' \
    "$T/lz4.tal/catalog.sqlite" >"$T/prov" 2>&1
grep -qx "store.compress = lz4  # config $T/store.toml:2" "$T/prov" ||
    fail "the catalog does not record the configuration: $(cat "$T/prov")"

# ---- bad files: exit 2 naming file, line and column; nothing written ----
while IFS='	' read -r file code msg; do
    case "$file" in '#'* | '') continue ;; esac
    mkdir -p "$T/bad"
    expect_exit "$code" "$TALARIA" reduce --config "$DATA/config/$file" -i "$T/in.fa" -o "$T/bad/red.fasta" &&
        expect_stderr "$msg"
    [ -z "$(ls -A "$T/bad")" ] || fail "$file: a refused configuration left $(ls -A "$T/bad" | tr '\n' ' ')"
    expect_exit "$code" "$TALARIA" config show --config "$DATA/config/$file" && expect_stderr "$msg"
done <"$DATA/config/cases.tsv"
expect_exit 1 "$TALARIA" config show --config "$T/no-such.toml" && expect_stderr "no-such.toml"
# the environment: a bad value, an unknown variable
TALARIA_THREADS=many expect_exit 2 "$TALARIA" config show && expect_stderr "env TALARIA_THREADS: threads must be"
TALARIA_MAX_MEMRY=4G expect_exit 2 "$TALARIA" config show && expect_stderr "unknown environment variable TALARIA_MAX_MEMRY"
finish
