# libtalaria behaves like a library: the shared object exports exactly what the public
# headers declare, the program reaches the library only through those headers, and only
# the program installs signal handlers or replaces libnuma's hooks.
. "$(dirname "$0")/lib.sh"

so="$TAL_BUILDDIR/.libs/libtalaria.so"
[ -f "$so" ] || { fail "no $so"; finish; }
# every tal_ function the headers declare
sed -n 's/.*\b\(tal_[a-z0-9_]*\)(.*/\1/p' "$TAL_SRCDIR"/include/talaria/*.h | sort -u >"$T/declared"
grep -qx tal_reduce_run "$T/declared" || fail "the headers' declarations were not found"
nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWiu]$/ && $3 !~ /^_/ { print $3 }' | sort -u >"$T/exported"
[ -s "$T/exported" ] || fail "nm -D shows no symbol defined by $so"
comm -23 "$T/exported" "$T/declared" >"$T/extra"
[ -s "$T/extra" ] && fail "exported but not declared in include/talaria/*.h: $(head -20 "$T/extra" | tr '\n' ' ')"
comm -13 "$T/exported" "$T/declared" >"$T/missing"
# a declared function is exported unless it is a static inline in the header
while read -r f; do
    grep -q "static inline[^;]*\b$f *(" "$TAL_SRCDIR"/include/talaria/*.h || echo "$f"
done <"$T/missing" >"$T/missing_real"
[ -s "$T/missing_real" ] && fail "declared but not exported: $(head -20 "$T/missing_real" | tr '\n' ' ')"
for hook in numa_warn numa_error; do
    nm -D --defined-only "$so" | grep -qw "$hook" && fail "the library replaces libnuma's $hook"
done

# the program includes no private header
grep -ln '#include "[a-z]*/[a-z_]*_internal.h"\|#include "[a-z_]*_internal.h"' "$TAL_SRCDIR"/src/cli/*.c \
    "$TAL_SRCDIR"/src/cli/*.h >"$T/private" 2>/dev/null
[ -s "$T/private" ] && fail "src/cli includes private headers: $(tr '\n' ' ' <"$T/private")"
# and only the program touches signal dispositions
grep -rln '\bsigaction *(\|\bsignal *(' "$TAL_SRCDIR"/src --include='*.c' | grep -v '/src/cli/' >"$T/signals"
[ -s "$T/signals" ] && fail "signal handling outside src/cli: $(tr '\n' ' ' <"$T/signals")"
finish
