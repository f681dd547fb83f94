/* reduce as MPI ranks (./configure --with-mpi): when the process was started by mpirun
 * or srun, MPI_COMM_WORLD's ranks share one reduction through tal_reduce_comm_t; started
 * alone, MPI is never initialised. */
#include "config.h"

#include "cli.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/util.h"

#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char prog[64];

/* The workers post and poll while the calling thread waits (MPI_THREAD_SERIALIZED): one
 * lock around every MPI call. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long bytes_sent, messages_sent; /* this rank's, for the report */

static int test(MPI_Request *req, int *done)
{
    int rc;
    pthread_mutex_lock(&lock);
    rc = MPI_Test(req, done, MPI_STATUS_IGNORE);
    pthread_mutex_unlock(&lock);
    return rc == MPI_SUCCESS ? 0 : TAL_EIO;
}

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
        if (test(req, &done) < 0) return TAL_EIO;
        if (done) return 0;
    }
    for (;;) {
        struct timespec ts = {0, nap};
        if (test(req, &done) < 0) return TAL_EIO;
        if (done) return 0;
        nanosleep(&ts, NULL);
        if (nap < 2000000) nap *= 2;
    }
}

/* MPI counts bytes in an int: a message past 2 GiB (a batch of 4,096 members whose deltas
 * are that big) is refused with a message, not cut. */
static int too_big(unsigned long long len)
{
    if (len <= (unsigned long long)INT32_MAX) return 0;
    tal_log_error("reduce: %llu bytes to send between ranks in one message, over MPI's 2 GiB; "
                  "run this input as one process",
                  len);
    return 1;
}

static int gather(void *ctx, const void *data, size_t len, void **all, size_t *lens)
{
    tal_reduce_comm_t *cm = ctx;
    unsigned long long mine = len, *each = NULL;
    int *counts = NULL, *displs = NULL, rc = 0;
    char *buf = NULL;
    MPI_Request req;
    *all = NULL;
    if (too_big(len)) return TAL_EIO;
    if (cm->rank == 0 && (!(each = calloc((size_t)cm->size, sizeof *each)) ||
                          !(counts = calloc((size_t)cm->size, sizeof *counts)) ||
                          !(displs = calloc((size_t)cm->size, sizeof *displs)))) {
        rc = TAL_ENOMEM;
        goto out;
    }
    pthread_mutex_lock(&lock);
    rc = MPI_Igather(&mine, 1, MPI_UNSIGNED_LONG_LONG, each, 1, MPI_UNSIGNED_LONG_LONG, 0,
                     MPI_COMM_WORLD, &req);
    pthread_mutex_unlock(&lock);
    if (rc != MPI_SUCCESS || wait_for(&req) < 0) {
        rc = TAL_EIO;
        goto out;
    }
    if (cm->rank == 0) {
        unsigned long long total = 0;
        for (int r = 0; r < cm->size; r++) {
            if (too_big(total + each[r])) {
                rc = TAL_EIO;
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
    pthread_mutex_lock(&lock);
    rc = MPI_Igatherv(data, (int)len, MPI_BYTE, buf, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD,
                      &req);
    if (cm->rank != 0) {
        bytes_sent += 8 + len;
        messages_sent += 2;
    }
    pthread_mutex_unlock(&lock);
    rc = rc != MPI_SUCCESS || wait_for(&req) < 0 ? TAL_EIO : 0;
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
    tal_reduce_comm_t *cm = ctx;
    MPI_Request req;
    int rc;
    if (too_big(len)) return TAL_EIO;
    pthread_mutex_lock(&lock);
    rc = MPI_Ibcast(data, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD, &req);
    if (cm->rank == 0) { /* counted as sent from rank 0 to each (the tree may relay) */
        bytes_sent += (unsigned long long)len * (unsigned long long)(cm->size - 1);
        messages_sent += (unsigned long long)(cm->size - 1);
    }
    pthread_mutex_unlock(&lock);
    if (rc != MPI_SUCCESS) return TAL_EIO;
    return wait_for(&req);
}

/* Point-to-point calls come from any worker thread (MPI_THREAD_SERIALIZED): one lock
 * around every MPI call of post and poll. Sends posted and not yet complete keep their
 * buffers until they are. */
#define TAG_DECISIONS 17
static MPI_Request *reqs;
static void **bufs;
static int *done_at;
static size_t n_sending, cap_sending;
/* Frees the buffers of the sends that completed (all of them with wait). Under lock. */
static void reap(int wait)
{
    int n_done = 0;
    size_t kept = 0;
    if (!n_sending) return;
    if (wait) {
        MPI_Waitall((int)n_sending, reqs, MPI_STATUSES_IGNORE);
        for (size_t i = 0; i < n_sending; i++) free(bufs[i]);
        n_sending = 0;
        return;
    }
    if (MPI_Testsome((int)n_sending, reqs, &n_done, done_at, MPI_STATUSES_IGNORE) != MPI_SUCCESS ||
        n_done == MPI_UNDEFINED || n_done == 0)
        return;
    for (int k = 0; k < n_done; k++) {
        free(bufs[done_at[k]]);
        bufs[done_at[k]] = NULL;
    }
    for (size_t i = 0; i < n_sending; i++) {
        if (!bufs[i]) continue; /* completed requests are MPI_REQUEST_NULL now */
        reqs[kept] = reqs[i];
        bufs[kept++] = bufs[i];
    }
    n_sending = kept;
}

static int grow_sending(void)
{
    size_t cap = cap_sending ? 2 * cap_sending : 256;
    MPI_Request *r = realloc(reqs, cap * sizeof *r);
    void **b;
    int *d;
    if (!r) return TAL_ENOMEM;
    reqs = r;
    if (!(b = realloc(bufs, cap * sizeof *b))) return TAL_ENOMEM;
    bufs = b;
    if (!(d = realloc(done_at, cap * sizeof *d))) return TAL_ENOMEM;
    done_at = d;
    cap_sending = cap;
    return 0;
}

static int post(void *ctx, const void *data, size_t len)
{
    tal_reduce_comm_t *cm = ctx;
    int rc = 0;
    if (too_big(len)) return TAL_EIO;
    pthread_mutex_lock(&lock);
    reap(0);
    for (int r = 0; r < cm->size && rc == 0; r++) {
        void *copy;
        if (r == cm->rank) continue;
        if (n_sending == cap_sending && (rc = grow_sending()) < 0) break;
        if (!(copy = malloc(len ? len : 1))) {
            rc = TAL_ENOMEM;
            break;
        }
        memcpy(copy, data, len);
        if (MPI_Isend(copy, (int)len, MPI_BYTE, r, TAG_DECISIONS, MPI_COMM_WORLD,
                      &reqs[n_sending]) != MPI_SUCCESS) {
            free(copy);
            rc = TAL_EIO;
            break;
        }
        bufs[n_sending++] = copy;
        bytes_sent += len;
        messages_sent++;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static int poll_one(void *ctx, void **data, size_t *len)
{
    MPI_Status st;
    int flag = 0, count = 0, rc = 1;
    char *buf = NULL;
    (void)ctx;
    pthread_mutex_lock(&lock);
    reap(0);
    if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_DECISIONS, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS) {
        rc = TAL_EIO;
    } else if (!flag) {
        rc = 0;
    } else {
        MPI_Get_count(&st, MPI_BYTE, &count);
        if (!(buf = malloc(count ? (size_t)count : 1)))
            rc = TAL_ENOMEM;
        else if (MPI_Recv(buf, count, MPI_BYTE, st.MPI_SOURCE, TAG_DECISIONS, MPI_COMM_WORLD,
                          MPI_STATUS_IGNORE) != MPI_SUCCESS)
            rc = TAL_EIO;
    }
    pthread_mutex_unlock(&lock);
    if (rc <= 0) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = (size_t)count;
    return 1;
}

/* The shared counters: two uint64_t held by rank 0, in a window every rank reaches with
 * atomic one-sided calls (a passive epoch on every rank from begin to end). */
static MPI_Win win = MPI_WIN_NULL;
static uint64_t *counters;

static int fetch_add(void *ctx, int k, uint64_t add, uint64_t *before)
{
    int rc;
    (void)ctx;
    pthread_mutex_lock(&lock);
    rc = MPI_Fetch_and_op(&add, before, MPI_UINT64_T, 0, (MPI_Aint)k, MPI_SUM, win);
    if (rc == MPI_SUCCESS) rc = MPI_Win_flush(0, win);
    pthread_mutex_unlock(&lock);
    return rc == MPI_SUCCESS ? 0 : TAL_EIO;
}

static int set(void *ctx, int k, uint64_t value)
{
    uint64_t before;
    int rc;
    (void)ctx;
    pthread_mutex_lock(&lock);
    rc = MPI_Fetch_and_op(&value, &before, MPI_UINT64_T, 0, (MPI_Aint)k, MPI_REPLACE, win);
    if (rc == MPI_SUCCESS) rc = MPI_Win_flush(0, win);
    pthread_mutex_unlock(&lock);
    return rc == MPI_SUCCESS ? 0 : TAL_EIO;
}

static int open_counters(const tal_reduce_comm_t *comm)
{
    MPI_Aint bytes = comm->rank == 0 ? 2 * (MPI_Aint)sizeof *counters : 0;
    if (MPI_Win_allocate(bytes, (int)sizeof *counters, MPI_INFO_NULL, MPI_COMM_WORLD, &counters,
                         &win) != MPI_SUCCESS)
        return TAL_EIO;
    if (comm->rank == 0) counters[0] = counters[1] = 0;
    /* rank 0's zeroes before anyone's first call */
    if (MPI_Barrier(MPI_COMM_WORLD) != MPI_SUCCESS ||
        MPI_Win_lock_all(MPI_MODE_NOCHECK, win) != MPI_SUCCESS)
        return TAL_EIO;
    return 0;
}

int cli_mpi_begin(int *argc, char ***argv, tal_reduce_comm_t *comm)
{
    int provided;
    memset(comm, 0, sizeof *comm);
    if (!launched()) return 0;
    /* the workers post and poll, one at a time (the lock) */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
        tal_log_error("reduce: MPI_Init failed");
        return TAL_EIO;
    }
    if (provided < MPI_THREAD_SERIALIZED) {
        tal_log_error("reduce: this MPI library does not allow calls from several threads "
                      "(MPI_THREAD_SERIALIZED)");
        MPI_Finalize();
        return TAL_EIO;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &comm->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &comm->size);
    comm->ctx = comm;
    comm->gather = gather;
    comm->bcast = bcast;
    comm->post = post;
    comm->poll = poll_one;
    comm->fetch_add = fetch_add;
    comm->set = set;
    if (open_counters(comm) < 0) {
        tal_log_error("reduce: MPI could not open the window of the shared counters");
        MPI_Abort(MPI_COMM_WORLD, cli_exit(TAL_EIO));
    }
    if (comm->size > 1) {
        /* every message names its rank */
        snprintf(prog, sizeof prog, "talaria[rank %d]", comm->rank);
        tal_log_set_prog(prog);
    }
    return comm->size;
}

/* Rank 0 tells what the ranks sent each other and each rank's peak resident set. */
static void report(const tal_reduce_comm_t *comm, int quiet)
{
    unsigned long long mine[3], *all = NULL, bytes = 0, messages = 0;
    char size[32], line[4096];
    size_t n = 0;
    mine[0] = bytes_sent;
    mine[1] = messages_sent;
    mine[2] = tal_peak_rss_bytes();
    if (comm->rank == 0 && !(all = calloc((size_t)comm->size * 3, sizeof *all))) return;
    if (MPI_Gather(mine, 3, MPI_UNSIGNED_LONG_LONG, all, 3, MPI_UNSIGNED_LONG_LONG, 0,
                   MPI_COMM_WORLD) != MPI_SUCCESS ||
        comm->rank != 0 || quiet) {
        free(all);
        return;
    }
    for (int r = 0; r < comm->size; r++) {
        bytes += all[3 * r];
        messages += all[3 * r + 1];
    }
    n += (size_t)snprintf(line + n, sizeof line - n, "%d ranks sent %s in %llu messages; peak RSS",
                          comm->size, tal_format_size(bytes, size, sizeof size), messages);
    for (int r = 0; r < comm->size && n < sizeof line; r++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%s rank %d %s", r ? "," : "", r,
                              tal_format_size(all[3 * r + 2], size, sizeof size));
    fprintf(stderr, "%s\n", line);
    free(all);
}

int cli_mpi_end(const tal_reduce_comm_t *comm, int code, int quiet)
{
    if (!comm->size) return code;
    /* a failed rank may have left the others inside a collective call: stop them all, with
     * its exit status (their scratch goes with the signal, as on any kill). mpirun relays
     * each rank's stderr and may drop what is still on its way when the job is killed:
     * the message saying what went wrong gets a moment to arrive first. */
    if (code != 0 && comm->size > 1) {
        struct timespec ts = {0, 300000000};
        fflush(stderr);
        nanosleep(&ts, NULL);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
    pthread_mutex_lock(&lock);
    reap(1);
    pthread_mutex_unlock(&lock);
    free(reqs);
    free(bufs);
    free(done_at);
    if (win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(win);
        MPI_Win_free(&win);
    }
    /* every rank takes part; rank 0 prints, unless quiet */
    if (comm->size > 1) report(comm, quiet);
    MPI_Finalize();
    return code;
}
