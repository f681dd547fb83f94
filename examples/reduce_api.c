/* libtalaria from C: reduce a FASTA file through reduce.h, then read one member back
 * through deltas.h. Build against an installed talaria with
 *   cc reduce_api.c $(pkg-config --cflags --libs talaria) -o reduce_api
 * Usage: reduce_api INPUT.fasta REDUCED.fasta THREADS MAX_MEMORY_MIB ACCESSION
 * Writes REDUCED.fasta, REDUCED's BASE.deltas.tal and BASE.members.tsv as talaria reduce
 * does, prints a summary, then ACCESSION rebuilt from the reduction as FASTA on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <talaria/deltas.h>
#include <talaria/error.h>
#include <talaria/reduce.h>

static void progress(void *ctx, const tal_reduce_progress_t *p)
{
    const char **last = ctx;
    if (*last != p->stage) fprintf(stderr, "reduce_api: %s\n", p->stage);
    *last = p->stage;
}

int main(int argc, char **argv)
{
    tal_reduce_opt_t opt;
    tal_reduce_result_t result;
    tal_dstore_t *deltas = NULL;
    tal_drec_t rec;
    const char *last_stage = NULL;
    char *seq = NULL;
    size_t cap = 0, len;
    uint64_t id;
    int rc;
    if (argc != 6) {
        fprintf(stderr, "usage: %s INPUT.fasta REDUCED.fasta THREADS MAX_MEMORY_MIB ACCESSION\n",
                argv[0]);
        return 2;
    }
    tal_reduce_opt_init(&opt);
    opt.threads = atoi(argv[3]);
    opt.max_memory = strtoull(argv[4], NULL, 10) << 20;
    opt.progress = progress;
    opt.ctx = &last_stage;
    if ((rc = tal_reduce_run(argv[1], argv[2], &opt, &result)) < 0) {
        fprintf(stderr, "reduce_api: %s\n", tal_strerror(rc));
        return tal_exit_code(rc);
    }
    printf("libtalaria %s: %llu records -> %llu references, %llu members; deltas in %s\n",
           tal_version(), (unsigned long long)result.records, (unsigned long long)result.references,
           (unsigned long long)result.members, result.deltas_path);
    rc = tal_dstore_open(&deltas, result.deltas_path, NULL, 0);
    if (rc == 0) rc = tal_dstore_find(deltas, argv[5], strlen(argv[5]), &id);
    if (rc == 0) rc = tal_dstore_rebuild(deltas, id, &seq, &cap, &len);
    if (rc == 0) rc = tal_dstore_record(deltas, id, &rec);
    if (rc == 0)
        printf(">%.*s\n%.*s\n%s of reference %u\n", (int)rec.header_len, rec.header, (int)len, seq,
               rec.flags & TAL_DREC_REFERENCE ? "record" : "member", (unsigned)rec.ref);
    else
        fprintf(stderr, "reduce_api: %s: %s\n", argv[5], tal_strerror(rc));
    free(seq);
    if (deltas) tal_dstore_close(deltas);
    tal_reduce_result_free(&result);
    return rc < 0 ? tal_exit_code(rc) : 0;
}
