/* fuzz_store over a compressed store: the same harness, its residues in zstd chunks of 64
 * bytes, so that the edits reach the chunk table and the decoder. */
#define FUZZ_STORE_ZSTD 1
#include "fuzz_store.c"
