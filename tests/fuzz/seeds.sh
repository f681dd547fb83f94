# The seed corpus of each fuzz harness, for tests/cli/fuzz_corpus.sh (which replays it in
# make check) and tests/fuzz/run.sh (make fuzz): fuzz_seeds SRCDIR NAME prints its paths.
fuzz_seeds() {
    case $2 in
    fuzz_fasta) printf '%s\n' "$1"/tests/data/*.fa "$1/tests/data/bad" ;;
    fuzz_store | fuzz_store_zstd) ;; # its inputs are edits to a store it builds: none
    fuzz_toml)
        printf '%s\n' "$1/tests/data/toml" "$1"/tests/data/config/*.toml "$1"/etc/*.toml \
            "$1/tests/fuzz/corpus/toml"
        ;;
    fuzz_deltas) printf '%s\n' "$1/tests/fuzz/corpus/deltas" ;;
    fuzz_hits) printf '%s\n' "$1/tests/fuzz/corpus/hits" ;;
    *) return 1 ;;
    esac
}

FUZZ_HARNESSES="fuzz_fasta fuzz_store fuzz_store_zstd fuzz_toml fuzz_deltas fuzz_hits"
