/* reduce as MPI ranks (./configure --with-mpi): when the process was started by mpirun
 * or srun, MPI_COMM_WORLD's ranks share one reduction through tal_reduce_comm_t; started
 * alone, MPI is never initialised. */
#include "config.h"

#include "cli.h"
#include "talaria/error.h"
#include "talaria/log.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char prog[64];

/* Launched as one of several ranks: Open MPI's mpirun, or a PMI launcher (srun, hydra). */
static int launched(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

/* Waits for a non-blocking call without spinning: Open MPI's blocking calls poll at full
 * speed, and a rank waiting for rank 0's decisions would take a core from the ranks that
 * work (on a shared node, from other jobs). A short spin, then naps of up to 2 ms. */
static int wait_for(MPI_Request *req)
{
    int done = 0;
    long nap = 20000; /* ns */
    for (int spins = 0; spins < 64; spins++) {
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return TAL_EIO;
        if (done) return 0;
    }
    for (;;) {
        struct timespec ts = {0, nap};
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return TAL_EIO;
        if (done) return 0;
        nanosleep(&ts, NULL);
        if (nap < 2000000) nap *= 2;
    }
}

static int gather(void *ctx, const void *data, size_t len, void **all, size_t *lens)
{
    tal_reduce_comm_t *cm = ctx;
    unsigned long long mine = len, *each = NULL;
    int *counts = NULL, *displs = NULL, rc = 0;
    char *buf = NULL;
    MPI_Request req;
    if (len > (size_t)INT32_MAX) return TAL_EUSAGE;
    *all = NULL;
    if (cm->rank == 0 && (!(each = calloc((size_t)cm->size, sizeof *each)) ||
                          !(counts = calloc((size_t)cm->size, sizeof *counts)) ||
                          !(displs = calloc((size_t)cm->size, sizeof *displs)))) {
        rc = TAL_ENOMEM;
        goto out;
    }
    if (MPI_Igather(&mine, 1, MPI_UNSIGNED_LONG_LONG, each, 1, MPI_UNSIGNED_LONG_LONG, 0,
                    MPI_COMM_WORLD, &req) != MPI_SUCCESS ||
        wait_for(&req) < 0) {
        rc = TAL_EIO;
        goto out;
    }
    if (cm->rank == 0) {
        unsigned long long total = 0;
        for (int r = 0; r < cm->size; r++) {
            if (total + each[r] > (unsigned long long)INT32_MAX) {
                rc = TAL_EUSAGE;
                goto out;
            }
            displs[r] = (int)total;
            counts[r] = (int)each[r];
            lens[r] = (size_t)each[r];
            total += each[r];
        }
        if (!(buf = malloc(total ? total : 1))) {
            rc = TAL_ENOMEM;
            goto out;
        }
    }
    if (MPI_Igatherv(data, (int)len, MPI_BYTE, buf, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD,
                     &req) != MPI_SUCCESS ||
        wait_for(&req) < 0)
        rc = TAL_EIO;
out:
    if (rc < 0) {
        free(buf);
        buf = NULL;
    }
    *all = buf;
    free(each);
    free(counts);
    free(displs);
    return rc;
}

static int bcast(void *ctx, void *data, size_t len)
{
    MPI_Request req;
    (void)ctx;
    if (len > (size_t)INT32_MAX) return TAL_EUSAGE;
    if (MPI_Ibcast(data, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD, &req) != MPI_SUCCESS)
        return TAL_EIO;
    return wait_for(&req);
}

/* Sends posted and not yet complete: their buffers stay until they are. */
#define TAG_DECISIONS 17
typedef struct {
    MPI_Request req;
    void *buf;
} sending_t;
static sending_t *sending;
static size_t n_sending, cap_sending;

static void reap(int wait)
{
    size_t kept = 0;
    for (size_t i = 0; i < n_sending; i++) {
        int done = 0;
        if (wait)
            done = MPI_Wait(&sending[i].req, MPI_STATUS_IGNORE) == MPI_SUCCESS;
        else
            MPI_Test(&sending[i].req, &done, MPI_STATUS_IGNORE);
        if (done)
            free(sending[i].buf);
        else
            sending[kept++] = sending[i];
    }
    n_sending = kept;
}

static int post(void *ctx, const void *data, size_t len)
{
    tal_reduce_comm_t *cm = ctx;
    if (len > (size_t)INT32_MAX) return TAL_EUSAGE;
    reap(0);
    for (int r = 0; r < cm->size; r++) {
        void *copy;
        if (r == cm->rank) continue;
        if (n_sending == cap_sending) {
            size_t cap = cap_sending ? 2 * cap_sending : 64;
            sending_t *q = realloc(sending, cap * sizeof *q);
            if (!q) return TAL_ENOMEM;
            sending = q;
            cap_sending = cap;
        }
        if (!(copy = malloc(len ? len : 1))) return TAL_ENOMEM;
        memcpy(copy, data, len);
        if (MPI_Isend(copy, (int)len, MPI_BYTE, r, TAG_DECISIONS, MPI_COMM_WORLD,
                      &sending[n_sending].req) != MPI_SUCCESS) {
            free(copy);
            return TAL_EIO;
        }
        sending[n_sending++].buf = copy;
    }
    return 0;
}

static int poll_one(void *ctx, void **data, size_t *len)
{
    MPI_Status st;
    int flag = 0, count = 0;
    char *buf;
    (void)ctx;
    reap(0);
    if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_DECISIONS, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS)
        return TAL_EIO;
    if (!flag) return 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    if (!(buf = malloc(count ? (size_t)count : 1))) return TAL_ENOMEM;
    if (MPI_Recv(buf, count, MPI_BYTE, st.MPI_SOURCE, TAG_DECISIONS, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE) != MPI_SUCCESS) {
        free(buf);
        return TAL_EIO;
    }
    *data = buf;
    *len = (size_t)count;
    return 1;
}

int cli_mpi_begin(int *argc, char ***argv, tal_reduce_comm_t *comm)
{
    int provided;
    memset(comm, 0, sizeof *comm);
    if (!launched()) return 0;
    /* the ranks' collective calls come from the calling thread only */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        tal_log_error("reduce: MPI_Init failed");
        return TAL_EIO;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &comm->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &comm->size);
    comm->ctx = comm;
    comm->gather = gather;
    comm->bcast = bcast;
    comm->post = post;
    comm->poll = poll_one;
    if (comm->size > 1) {
        /* every message names its rank */
        snprintf(prog, sizeof prog, "talaria[rank %d]", comm->rank);
        tal_log_set_prog(prog);
    }
    return comm->size;
}

int cli_mpi_end(const tal_reduce_comm_t *comm, int code)
{
    if (!comm->size) return code;
    /* a failed rank may have left the others inside a collective call: stop them all, with
     * its exit status (their scratch goes with the signal, as on any kill) */
    if (code != 0 && comm->size > 1) MPI_Abort(MPI_COMM_WORLD, code);
    reap(1);
    free(sending);
    MPI_Finalize();
    return code;
}
