# Every long option a command's --help lists has an entry in its manual page's OPTIONS,
# and every entry there is an option --help lists; the pages render without warnings.
. "$(dirname "$0")/lib.sh"

for cmd in index get stats verify reduce reconstruct validate expand config; do
    page="$TAL_SRCDIR/man/talaria-$cmd.1"
    [ -f "$page" ] || { fail "no manual page for $cmd"; continue; }
    # --help: option lines ("  -x, --long ..." or "      --long ...")
    "$TALARIA" "$cmd" --help | grep -E '^ +(-[a-zA-Z], )?--[a-z]' | grep -oE -- '--[a-z][a-z0-9-]*' |
        sort -u >"$T/help.$cmd"
    # the page: the tag line after each .TP, roff escapes removed
    awk '/^\.TP/ { getline; print }' "$page" | sed 's/\\%//g; s/\\-/-/g; s/\\f.//g' |
        grep -oE -- '--[a-z][a-z0-9-]*' | sort -u >"$T/man.$cmd"
    [ -s "$T/help.$cmd" ] || fail "$cmd --help lists no long option"
    only_help=$(comm -23 "$T/help.$cmd" "$T/man.$cmd" | tr '\n' ' ')
    only_man=$(comm -13 "$T/help.$cmd" "$T/man.$cmd" | tr '\n' ' ')
    [ -z "$only_help" ] || fail "$cmd: --help lists $only_help but talaria-$cmd.1 does not"
    [ -z "$only_man" ] || fail "$cmd: talaria-$cmd.1 describes $only_man but --help does not list it"
done
if command -v man >/dev/null 2>&1; then
    for page in "$TAL_SRCDIR"/man/*.[15]; do
        MANWIDTH=80 man --warnings -l "$page" >/dev/null 2>"$T/warn" || fail "man -l $page failed"
        [ -s "$T/warn" ] && fail "$(basename "$page"): $(head -3 "$T/warn")"
    done
fi
finish
