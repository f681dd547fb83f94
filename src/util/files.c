/* Atomic output directories and checksummed writers. A killed build leaves only a
 * NAME.tmp-XXXXXX directory, which never opens as a store, and the next run that writes
 * NAME removes it (see "temporaries left by killed runs" below). */
#define _GNU_SOURCE
#include "files_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "talaria/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The program's signal handler calls tal_cleanup_temporaries, which needs to know what
 * to remove, so this one registry is global. It holds fixed-size strings so that the
 * cleanup only calls unlink and rmdir, which are async-signal-safe. */
#define CLEANUP_MAX_FILES 64
#define CLEANUP_PATH_MAX  4096
static char cleanup_dir[CLEANUP_PATH_MAX];
static char cleanup_files[CLEANUP_MAX_FILES][CLEANUP_PATH_MAX];
static volatile sig_atomic_t cleanup_count;
static volatile sig_atomic_t cleanup_armed;

/* A second registry, for commands with several outputs (reduce): temporary files and
 * scratch directories (one level deep) removed on a signal, independent of the
 * atomic directory above. Slots are freed by clearing their first byte. */
#define EXTRA_MAX 16
static char extra_paths[EXTRA_MAX][CLEANUP_PATH_MAX];
static volatile sig_atomic_t extra_tree[EXTRA_MAX];
static int extra_lock[EXTRA_MAX]; /* the descriptor holding the path's lock, plus one */

struct linux_dirent64_ {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Removes a directory and the files in it with system calls only (getdents64,
 * unlinkat, rmdir): safe in a signal handler. */
static void remove_flat_dir(const char *path)
{
    char buf[4096];
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        for (;;) {
            long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
            if (n <= 0) break;
            for (long off = 0; off < n;) {
                struct linux_dirent64_ *e = (struct linux_dirent64_ *)(void *)(buf + off);
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                    if (unlinkat(fd, e->d_name, 0) < 0) {
                        /* a store directory inside: one more level */
                        int sub = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (sub >= 0) {
                            char b2[4096];
                            long m;
                            while ((m = syscall(SYS_getdents64, sub, b2, sizeof b2)) > 0)
                                for (long o2 = 0; o2 < m;) {
                                    struct linux_dirent64_ *f =
                                        (struct linux_dirent64_ *)(void *)(b2 + o2);
                                    if (strcmp(f->d_name, ".") && strcmp(f->d_name, ".."))
                                        unlinkat(sub, f->d_name, 0);
                                    o2 += f->d_reclen;
                                }
                            close(sub);
                            unlinkat(fd, e->d_name, AT_REMOVEDIR);
                        }
                    }
                off += e->d_reclen;
            }
        }
        close(fd);
    }
    rmdir(path);
}

static void remove_tree(const char *path);

static void extra_cleanup(void)
{
    for (int i = 0; i < EXTRA_MAX; i++) {
        if (!extra_paths[i][0]) continue;
        if (extra_tree[i])
            remove_flat_dir(extra_paths[i]);
        else
            unlink(extra_paths[i]);
    }
}

void tal_cleanup_temporaries(void)
{
    if (cleanup_armed) {
        for (int i = 0; i < cleanup_count; i++) unlink(cleanup_files[i]);
        rmdir(cleanup_dir);
    }
    extra_cleanup();
}

static void cleanup_arm(const char *dir)
{
    cleanup_armed = 0;
    snprintf(cleanup_dir, sizeof cleanup_dir, "%s", dir);
    cleanup_count = 0;
    cleanup_armed = 1;
}

int tal_cleanup_extra_add(const char *path, int tree, int lock_fd)
{
    for (int i = 0; i < EXTRA_MAX; i++) {
        if (extra_paths[i][0]) continue;
        if (strlen(path) >= CLEANUP_PATH_MAX) {
            if (lock_fd >= 0) close(lock_fd);
            return TAL_EUSAGE;
        }
        extra_tree[i] = tree;
        extra_lock[i] = lock_fd + 1;
        memcpy(extra_paths[i] + 1, path + 1, strlen(path)); /* the first byte last */
        extra_paths[i][0] = path[0];
        return 0;
    }
    if (lock_fd >= 0) close(lock_fd);
    return TAL_EUSAGE;
}

void tal_cleanup_extra_done(const char *path, int remove_it)
{
    for (int i = 0; i < EXTRA_MAX; i++) {
        if (!extra_paths[i][0] || strcmp(extra_paths[i], path)) continue;
        extra_paths[i][0] = '\0'; /* before removing: a signal now leaves it alone */
        if (remove_it) {
            if (extra_tree[i])
                remove_tree(path);
            else if (unlink(path) != 0 && errno != ENOENT)
                tal_log_warn("cannot remove the temporary file %s: %s", path, strerror(errno));
        }
        if (extra_lock[i] > 0) close(extra_lock[i] - 1); /* removed or renamed: unlocked */
        extra_lock[i] = 0;
        return;
    }
}

static void cleanup_disarm(void) { cleanup_armed = 0; }

void tal_cleanup_add_file(const tal_atomic_dir_t *dir, const char *name)
{
    if (cleanup_count >= CLEANUP_MAX_FILES) return;
    snprintf(cleanup_files[cleanup_count], CLEANUP_PATH_MAX, "%s/%s", dir->tmp_path, name);
    cleanup_count = cleanup_count + 1;
}

static int fsync_parent(const char *path)
{
    char *copy = strdup(path);
    char *slash;
    int fd, rc = 0;
    if (!copy) return -1;
    slash = strrchr(copy, '/');
    if (slash == copy)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(copy, ".");
    fd = open(copy, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    free(copy);
    return rc;
}

/* ---- temporaries left by killed runs ----
 * Every temporary (NAME.tmp-XXXXXX beside an output, a reduction's scratch directory in
 * --tmp-dir) is held under an exclusive flock on a descriptor its run keeps open, and the
 * kernel drops that lock when the run ends, however it ends (kill -9 included). A run
 * about to make a temporary first removes those of the same name pattern whose lock it
 * can take: nobody holds them any more. A live run's lock makes it skip them. Between
 * making a temporary and locking it a run is not yet protected, so after locking it
 * checks that the temporary still has a name (a sweeper got there first) and makes a new
 * one if not. Where the file system has no flock (some network file systems), nothing is
 * locked and nothing is swept. */

static int temp_name_matches(const char *name, const char *prefix)
{
    size_t n = strlen(prefix), k = 0;
    if (strncmp(name, prefix, n) != 0) return 0;
    for (const char *p = name + n; *p; p++, k++)
        if (!isalnum((unsigned char)*p)) return 0;
    return k >= 1 && k <= 16; /* mkstemp's six letters, or a pid */
}

/* Removes what is in the directory open as dir_fd, depth levels of directories down. */
static void remove_tree_at(int dir_fd, int depth)
{
    struct dirent *e;
    int fd = dup(dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return;
    }
    rewinddir(d);
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (unlinkat(dir_fd, e->d_name, 0) == 0 || errno != EISDIR || depth <= 0) continue;
        int sub = openat(dir_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) continue;
        remove_tree_at(sub, depth - 1);
        close(sub);
        unlinkat(dir_fd, e->d_name, AT_REMOVEDIR);
    }
    closedir(d);
}

/* Removes the directory path and what is in it (outside signal handlers): with system
 * calls alone, then, if something is left, through readdir; what still cannot be removed
 * is named in a warning, and the next run's sweep gets it. */
static void remove_tree(const char *path)
{
    int fd;
    remove_flat_dir(path);
    if (access(path, F_OK) != 0) return;
    if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
        remove_tree_at(fd, 4);
        close(fd);
    }
    if (rmdir(path) != 0 && errno != ENOENT)
        tal_log_warn("cannot remove the temporary directory %s: %s", path, strerror(errno));
}

void tal_sweep_temporaries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d) return;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        int fd;
        if (!temp_name_matches(e->d_name, prefix)) continue;
        fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;
        /* only our own files and directories, and only those nobody holds */
        if (fstat(fd, &st) == 0 && st.st_uid == geteuid() &&
            (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) && flock(fd, LOCK_EX | LOCK_NB) == 0) {
            if (S_ISDIR(st.st_mode)) {
                remove_tree_at(fd, 4);
                unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
            } else {
                unlinkat(dirfd(d), e->d_name, 0);
            }
            tal_log_info("removed %s%s%s, left behind by a talaria run that was killed",
                         strcmp(dir, ".") ? dir : "", strcmp(dir, ".") ? "/" : "", e->d_name);
        }
        close(fd);
    }
    closedir(d);
}

void tal_sweep_beside(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir, *prefix;
    if (slash == path)
        dir = strdup("/");
    else
        dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    if (asprintf(&prefix, "%s.tmp-", slash ? slash + 1 : path) < 0) prefix = NULL;
    if (dir && prefix) tal_sweep_temporaries(dir, prefix);
    free(dir);
    free(prefix);
}

int tal_unnamed_file(const char *dir)
{
    char path[4200];
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    /* mkostemp's template (the six Xs become the unique part) */
    snprintf(path, sizeof path, "%s/talaria-scratch-XXXXXX", dir);
    if ((fd = mkostemp(path, O_CLOEXEC)) >= 0) unlink(path);
    return fd;
}

int tal_temp_lock(int fd)
{
    struct stat st;
    if (flock(fd, LOCK_EX) != 0) return 0; /* no locks here: unprotected, and never swept */
    if (fstat(fd, &st) != 0 || st.st_nlink == 0) return 1;
    return 0;
}

int tal_atomic_dir_begin(tal_atomic_dir_t *dir, const char *final_path, int force,
                         const char *marker_file)
{
    struct stat st;
    size_t len;
    memset(dir, 0, sizeof *dir);
    dir->dir_fd = -1;
    len = strlen(final_path);
    while (len > 1 && final_path[len - 1] == '/') len--;
    dir->final_path = strndup(final_path, len);
    if (!dir->final_path) return TAL_ENOMEM;
    if (lstat(dir->final_path, &st) == 0) {
        char marker[CLEANUP_PATH_MAX];
        if (!force) {
            tal_log_error("%s already exists; use --force to replace it", dir->final_path);
            goto exists;
        }
        snprintf(marker, sizeof marker, "%s/%s", dir->final_path, marker_file);
        if (!S_ISDIR(st.st_mode) || access(marker, F_OK) != 0) {
            tal_log_error("%s exists and is not a talaria store; refusing to replace it even "
                          "with --force",
                          dir->final_path);
            goto exists;
        }
        dir->replace = 1;
    }
    tal_sweep_beside(dir->final_path);
    dir->tmp_path = malloc(len + 16);
    if (!dir->tmp_path) return TAL_ENOMEM;
    for (int tries = 0;; tries++) {
        snprintf(dir->tmp_path, len + 16, "%s.tmp-XXXXXX", dir->final_path);
        if (!mkdtemp(dir->tmp_path)) {
            tal_log_error("cannot create a temporary directory beside %s: %s", dir->final_path,
                          strerror(errno));
            free(dir->tmp_path);
            dir->tmp_path = NULL;
            return TAL_EIO;
        }
        dir->dir_fd = open(dir->tmp_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir->dir_fd < 0) {
            tal_log_error("cannot open %s: %s", dir->tmp_path, strerror(errno));
            rmdir(dir->tmp_path);
            free(dir->tmp_path);
            dir->tmp_path = NULL;
            return TAL_EIO;
        }
        if (tal_temp_lock(dir->dir_fd) == 0) break;
        close(dir->dir_fd); /* another run writing the same store swept it: a new one */
        dir->dir_fd = -1;
        if (tries == 8) {
            tal_log_error("cannot keep a temporary directory beside %s: another run keeps "
                          "removing it",
                          dir->final_path);
            free(dir->tmp_path);
            dir->tmp_path = NULL;
            return TAL_EIO;
        }
    }
    {
        /* mkdtemp makes the directory private; a store is meant to be shared */
        mode_t mask = umask(0);
        umask(mask);
        fchmod(dir->dir_fd, 0777 & ~mask);
    }
    cleanup_arm(dir->tmp_path);
    return 0;
exists:
    free(dir->final_path);
    dir->final_path = NULL;
    return TAL_EEXIST;
}

/* ---- renames into place ----
 * renameat2's RENAME_NOREPLACE and RENAME_EXCHANGE where the file system has them; NFS
 * refuses any flag (EINVAL), and there a file is linked then unlinked (no-replace) and an
 * exchange is three renames through an aside name. */

static int flags_unsupported(void) { return errno == EINVAL || errno == ENOSYS; }

static int rename_noreplace(const char *from, const char *to)
{
    struct stat st;
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
    if (!flags_unsupported()) return -1;
    if (lstat(from, &st) == 0 && !S_ISDIR(st.st_mode)) {
        if (link(from, to) == 0) return unlink(from), 0;
        if (errno == EEXIST) return -1;
    }
    if (lstat(to, &st) == 0) return errno = EEXIST, -1;
    return rename(from, to);
}

/* Afterwards to holds what from held, and from what to held. */
static int rename_exchange(const char *from, const char *to)
{
    char *aside;
    int rc = -1, err;
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE) == 0) return 0;
    if (!flags_unsupported()) return -1;
    if (asprintf(&aside, "%s.old", from) < 0) return errno = ENOMEM, -1;
    if (rename(to, aside) == 0) {
        if (rename(from, to) == 0) {
            rc = rename(aside, from) == 0 ? 0 : (unlink(aside), 0);
        } else {
            err = errno;
            if (rename(aside, to) != 0) tal_log_warn("%s is now %s", to, aside);
            errno = err;
        }
    }
    free(aside);
    return rc;
}

int tal_commit_renames(char *const *from, const char *const *to, int n, int force)
{
    enum { PLACED = 1, SWAPPED = 2 };
    char state[16] = {0};
    int i, rc = 0;
    if (n > (int)sizeof state) return TAL_EUSAGE;
    for (i = 0; i < n; i++) {
        struct stat st, fst;
        int exists = lstat(to[i], &st) == 0;
        if (exists && !force) {
            tal_log_error("%s already exists; use --force to replace it", to[i]);
            rc = TAL_EEXIST;
            break;
        }
        if (exists && lstat(from[i], &fst) == 0 && S_ISDIR(st.st_mode) != S_ISDIR(fst.st_mode)) {
            tal_log_error("%s exists and is %s; refusing to replace it", to[i],
                          S_ISDIR(st.st_mode) ? "a directory" : "not a directory");
            rc = TAL_EEXIST;
            break;
        }
        if ((exists ? rename_exchange(from[i], to[i]) : rename_noreplace(from[i], to[i])) != 0) {
            rc = errno == EEXIST ? TAL_EEXIST : TAL_EIO;
            tal_log_error("cannot rename %s to %s: %s", from[i], to[i], strerror(errno));
            break;
        }
        state[i] = exists ? SWAPPED : PLACED;
    }
    if (rc < 0) {
        /* put back what was put in place: the outputs are all new or all as they were */
        while (i-- > 0)
            if ((state[i] == SWAPPED ? rename_exchange(from[i], to[i]) : rename(to[i], from[i])) !=
                0)
                tal_log_error("cannot put %s back as it was: %s", to[i], strerror(errno));
        return rc;
    }
    for (i = 0; i < n; i++) {
        if (state[i] == SWAPPED) unlink(from[i]); /* what was replaced */
        fsync_parent(to[i]);
    }
    return 0;
}

int tal_atomic_dir_commit(tal_atomic_dir_t *dir)
{
    if (fsync(dir->dir_fd) != 0) {
        tal_log_error("fsync %s: %s", dir->tmp_path, strerror(errno));
        return TAL_EIO;
    }
    if (dir->replace) {
        /* Swap atomically so a reader sees either the old or the new store. */
        if (rename_exchange(dir->tmp_path, dir->final_path) != 0) {
            tal_log_error("cannot replace %s: %s", dir->final_path, strerror(errno));
            return TAL_EIO;
        }
        cleanup_disarm();
        remove_tree(dir->tmp_path); /* now the old store */
    } else {
        if (rename_noreplace(dir->tmp_path, dir->final_path) != 0) {
            tal_log_error("cannot rename %s to %s: %s", dir->tmp_path, dir->final_path,
                          strerror(errno));
            return errno == EEXIST ? TAL_EEXIST : TAL_EIO;
        }
        cleanup_disarm();
    }
    fsync_parent(dir->final_path);
    close(dir->dir_fd);
    dir->dir_fd = -1;
    free(dir->tmp_path);
    free(dir->final_path);
    dir->tmp_path = dir->final_path = NULL;
    return 0;
}

void tal_atomic_dir_abort(tal_atomic_dir_t *dir)
{
    if (dir->tmp_path) {
        cleanup_disarm();
        remove_tree(dir->tmp_path);
    }
    if (dir->dir_fd >= 0) close(dir->dir_fd);
    free(dir->tmp_path);
    free(dir->final_path);
    memset(dir, 0, sizeof *dir);
    dir->dir_fd = -1;
}

/* Ask the kernel to start writing back every WRITEBACK_STEP bytes so that the
 * fsync at the end overlaps with the build instead of following it. */
#define WRITEBACK_STEP (32u << 20)

#define WRITER_QUEUE 64

typedef struct {
    tal_wfile_t *file;
    const char *data;
    size_t len;
} write_job_t;

struct tal_writer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    write_job_t jobs[WRITER_QUEUE];
    int head, count, stop;
};

/* O_DIRECT wants buffer addresses, sizes and file offsets aligned to the device's
 * logical block; 4096 covers every device in use. */
#define DIRECT_ALIGN 4096u

static char *buffer_alloc(size_t size)
{
    void *p = NULL;
    return posix_memalign(&p, DIRECT_ALIGN, size) == 0 ? p : NULL;
}

int tal_wfile_open(tal_wfile_t *w, tal_atomic_dir_t *dir, const char *name, size_t buf_size)
{
    size_t dlen = strlen(dir->final_path) + strlen(name) + 2;
    memset(w, 0, sizeof *w);
    w->fd = w->read_fd = -1;
    buf_size = (buf_size + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN;
    w->display = malloc(dlen);
    w->buf = buffer_alloc(buf_size);
    w->hash = XXH3_createState();
    if (!w->display || !w->buf || !w->hash) goto nomem;
    snprintf(w->display, dlen, "%s/%s", dir->final_path, name);
    w->cap = buf_size;
    XXH3_64bits_reset(w->hash);
    tal_cleanup_add_file(dir, name);
    w->fd = openat(dir->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        tal_log_error("cannot create %s: %s", w->display, strerror(errno));
        tal_wfile_abort(w);
        return TAL_EIO;
    }
    w->read_fd = openat(dir->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (w->read_fd < 0) {
        tal_log_error("cannot open %s: %s", w->display, strerror(errno));
        tal_wfile_abort(w);
        return TAL_EIO;
    }
    return 0;
nomem:
    tal_wfile_abort(w);
    return TAL_ENOMEM;
}

int tal_wfile_use_writer(tal_wfile_t *w, tal_writer_t *writer, int direct)
{
    if (!writer) return 0;
    w->spare = buffer_alloc(w->cap);
    if (!w->spare) return TAL_ENOMEM;
    w->writer = writer;
    if (direct) tal_wfile_direct(w);
    return 0;
}

void tal_wfile_direct(tal_wfile_t *w)
{
    int flags;
    if (w->written || w->used) return;
    flags = fcntl(w->fd, F_GETFL);
    if (flags >= 0 && fcntl(w->fd, F_SETFL, flags | O_DIRECT) == 0) w->direct = w->fd_direct = 1;
}

/* Hashes and writes bytes in file order; runs in the writer thread or the caller's. */
/* Leaves O_DIRECT: for the unaligned tail, or when the file system turns it down. */
static int leave_direct(tal_wfile_t *w)
{
    int flags = fcntl(w->fd, F_GETFL);
    if (flags < 0 || fcntl(w->fd, F_SETFL, flags & ~O_DIRECT) != 0) {
        tal_log_error("cannot write %s: %s", w->display, strerror(errno));
        return TAL_EIO;
    }
    w->fd_direct = 0;
    return 0;
}

static int wfile_emit(tal_wfile_t *w, const char *data, size_t len)
{
    XXH3_64bits_update(w->hash, data, len);
    if (w->byte_counts) tal_count_bytes(w->byte_counts, data, len);
    if (w->fd_direct && len % DIRECT_ALIGN) {
        int rc = leave_direct(w);
        if (rc) return rc;
    }
    while (len) {
        ssize_t n = write(w->fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EINVAL && w->fd_direct) {
                /* accepted at fcntl time but refused on write (some FUSE and network
                 * file systems): carry on through the page cache */
                int rc = leave_direct(w);
                if (rc) return rc;
                continue;
            }
            tal_log_error("cannot write %s: %s", w->display, strerror(errno));
            return TAL_EIO;
        }
        data += n;
        len -= (size_t)n;
        w->written += (uint64_t)n;
        if (w->fd_direct && (size_t)n % DIRECT_ALIGN && len) {
            /* a short direct write left the offset unaligned */
            int rc = leave_direct(w);
            if (rc) return rc;
        }
    }
    if (!w->fd_direct && w->written - w->synced_upto >= WRITEBACK_STEP) {
        sync_file_range(w->fd, (off64_t)w->synced_upto, (off64_t)(w->written - w->synced_upto),
                        SYNC_FILE_RANGE_WRITE);
        w->synced_upto = w->written;
    }
    return 0;
}

static void *writer_main(void *arg)
{
    tal_writer_t *wr = arg;
    pthread_mutex_lock(&wr->mu);
    for (;;) {
        write_job_t job;
        int rc;
        while (wr->count == 0 && !wr->stop) pthread_cond_wait(&wr->cv, &wr->mu);
        if (wr->count == 0) break;
        job = wr->jobs[wr->head];
        wr->head = (wr->head + 1) % WRITER_QUEUE;
        wr->count--;
        pthread_mutex_unlock(&wr->mu);
        rc = job.file->error ? 0 : wfile_emit(job.file, job.data, job.len);
        pthread_mutex_lock(&wr->mu);
        if (rc) job.file->error = rc;
        job.file->inflight = 0;
        pthread_cond_broadcast(&wr->cv);
    }
    pthread_mutex_unlock(&wr->mu);
    return NULL;
}

int tal_writer_start(tal_writer_t **out)
{
    tal_writer_t *wr = calloc(1, sizeof *wr);
    *out = NULL;
    if (!wr) return TAL_ENOMEM;
    pthread_mutex_init(&wr->mu, NULL);
    pthread_cond_init(&wr->cv, NULL);
    if (pthread_create(&wr->thread, NULL, writer_main, wr) != 0) {
        pthread_mutex_destroy(&wr->mu);
        pthread_cond_destroy(&wr->cv);
        free(wr);
        return TAL_ENOMEM;
    }
    *out = wr;
    return 0;
}

void tal_writer_stop(tal_writer_t *wr)
{
    if (!wr) return;
    pthread_mutex_lock(&wr->mu);
    wr->stop = 1;
    pthread_cond_broadcast(&wr->cv);
    pthread_mutex_unlock(&wr->mu);
    pthread_join(wr->thread, NULL);
    pthread_mutex_destroy(&wr->mu);
    pthread_cond_destroy(&wr->cv);
    free(wr);
}

/* Waits until the writer is done with this file's spare buffer; returns its error. */
static int wfile_settle(tal_wfile_t *w)
{
    tal_writer_t *wr = w->writer;
    int rc;
    if (!wr) return w->error;
    pthread_mutex_lock(&wr->mu);
    while (w->inflight) pthread_cond_wait(&wr->cv, &wr->mu);
    rc = w->error;
    pthread_mutex_unlock(&wr->mu);
    return rc;
}

/* Writes out the filled buffer: queued to the writer, or right here without one. */
static int wfile_flush(tal_wfile_t *w)
{
    tal_writer_t *wr = w->writer;
    char *full = w->buf;
    size_t len = w->used;
    int rc;
    if (!len) return w->error;
    w->used = 0;
    if (!wr) return wfile_emit(w, full, len);
    if ((rc = wfile_settle(w)) < 0) return rc;
    w->buf = w->spare;
    w->spare = full;
    pthread_mutex_lock(&wr->mu);
    while (wr->count == WRITER_QUEUE) pthread_cond_wait(&wr->cv, &wr->mu);
    wr->jobs[(wr->head + wr->count) % WRITER_QUEUE] = (write_job_t){w, full, len};
    wr->count++;
    w->inflight = 1;
    pthread_cond_broadcast(&wr->cv);
    pthread_mutex_unlock(&wr->mu);
    return 0;
}

int tal_wfile_write(tal_wfile_t *w, const void *data, size_t len)
{
    const char *p = data;
    int rc;
    if (w->used + len <= w->cap) {
        memcpy(w->buf + w->used, data, len);
        w->used += len;
        return 0;
    }
    if (w->used == 0 && len >= w->cap &&
        (!w->direct || ((uintptr_t)data % DIRECT_ALIGN == 0 && w->written % DIRECT_ALIGN == 0))) {
        /* too big to buffer: write it from the caller's memory, after what is queued */
        if ((rc = wfile_settle(w)) < 0) return rc;
        return wfile_emit(w, data, len);
    }
    /* Buffers go out full, so that every write but the last is a whole number of
     * aligned blocks (O_DIRECT needs that). */
    while (len) {
        size_t n = w->cap - w->used;
        if (n > len) n = len;
        memcpy(w->buf + w->used, p, n);
        w->used += n;
        p += n;
        len -= n;
        if (w->used == w->cap && (rc = wfile_flush(w)) < 0) return rc;
    }
    return 0;
}

int tal_wfile_pread(tal_wfile_t *w, uint64_t offset, void *out, size_t len)
{
    char *dst = out;
    int rc;
    if ((rc = wfile_settle(w)) < 0) return rc;
    if (offset + len > w->written + w->used) return TAL_EUSAGE;
    while (len && offset < w->written) {
        size_t n = len;
        ssize_t got;
        if (offset + n > w->written) n = (size_t)(w->written - offset);
        got = pread(w->read_fd, dst, n, (off_t)offset);
        if (got <= 0) {
            if (got < 0 && errno == EINTR) continue;
            tal_log_error("cannot read back %s: %s", w->display,
                          got < 0 ? strerror(errno) : "short read");
            return TAL_EIO;
        }
        dst += got;
        offset += (uint64_t)got;
        len -= (size_t)got;
    }
    if (len) memcpy(dst, w->buf + (offset - w->written), len);
    return 0;
}

int tal_wfile_finish(tal_wfile_t *w, uint64_t *checksum, uint64_t *size)
{
    int rc = wfile_flush(w);
    if (!rc) rc = wfile_settle(w);
    if (!rc && fsync(w->fd) != 0) {
        tal_log_error("cannot fsync %s: %s", w->display, strerror(errno));
        rc = TAL_EIO;
    }
    if (!rc) {
        if (checksum) *checksum = XXH3_64bits_digest(w->hash);
        if (size) *size = w->written;
    }
    tal_wfile_abort(w);
    return rc;
}

void tal_wfile_abort(tal_wfile_t *w)
{
    wfile_settle(w); /* the writer may still hold the spare buffer */
    if (w->fd >= 0) close(w->fd);
    if (w->read_fd >= 0) close(w->read_fd);
    if (w->hash) XXH3_freeState(w->hash);
    free(w->buf);
    free(w->spare);
    free(w->display);
    memset(w, 0, sizeof *w);
    w->fd = w->read_fd = -1;
}

int tal_hash_file(const char *path, uint64_t *checksum, uint64_t *size)
{
    enum { BUF = 1 << 20 };
    char *buf = malloc(BUF);
    XXH3_state_t *st = XXH3_createState();
    uint64_t total = 0;
    int fd = -1, rc = 0;
    if (!buf || !st) {
        rc = TAL_ENOMEM;
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        tal_log_error("cannot open %s: %s", path, strerror(errno));
        rc = errno == ENOENT ? TAL_EINPUT : TAL_EIO;
        goto out;
    }
    XXH3_64bits_reset(st);
    for (;;) {
        ssize_t n = read(fd, buf, BUF);
        if (n < 0) {
            if (errno == EINTR) continue;
            tal_log_error("cannot read %s: %s", path, strerror(errno));
            rc = TAL_EIO;
            goto out;
        }
        if (n == 0) break;
        XXH3_64bits_update(st, buf, (size_t)n);
        total += (uint64_t)n;
    }
    *checksum = XXH3_64bits_digest(st);
    if (size) *size = total;
out:
    if (fd >= 0) close(fd);
    if (st) XXH3_freeState(st);
    free(buf);
    return rc;
}

/* ---- single output files ---- */

int tal_outfile_open(tal_outfile_t *o, const char *path, int force)
{
    mode_t mask;
    int fd;
    memset(o, 0, sizeof *o);
    o->path = path;
    if (!force && access(path, F_OK) == 0) {
        tal_log_error("%s already exists; use --force to replace it", path);
        return TAL_EEXIST;
    }
    if (asprintf(&o->tmp, "%s.tmp-XXXXXX", path) < 0) {
        o->tmp = NULL;
        return TAL_ENOMEM;
    }
    tal_sweep_beside(path);
    for (int tries = 0;; tries++) {
        int lock_fd;
        if ((fd = mkstemp(o->tmp)) < 0) {
            tal_log_error("cannot create a temporary file beside %s: %s", path, strerror(errno));
            free(o->tmp);
            o->tmp = NULL;
            return TAL_EIO;
        }
        /* the lock lives on a second descriptor, held until the rename or removal */
        if ((lock_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
            close(fd);
            unlink(o->tmp);
            free(o->tmp);
            o->tmp = NULL;
            return TAL_EIO;
        }
        if (tal_temp_lock(lock_fd) == 0) {
            tal_cleanup_extra_add(o->tmp, 0, lock_fd);
            break;
        }
        close(lock_fd);
        close(fd);
        if (tries == 8) {
            tal_log_error("cannot keep a temporary file beside %s: another run keeps removing it",
                          path);
            free(o->tmp);
            o->tmp = NULL;
            return TAL_EIO;
        }
        snprintf(o->tmp + strlen(o->tmp) - 6, 7, "XXXXXX");
    }
    mask = umask(0); /* mkstemp makes the file private; the output is an ordinary file */
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    if (!(o->f = fdopen(fd, "w"))) {
        close(fd);
        tal_outfile_abort(o);
        return TAL_ENOMEM;
    }
    setvbuf(o->f, NULL, _IOFBF, 1u << 20);
    return 0;
}

int tal_outfile_close(tal_outfile_t *o)
{
    int bad;
    if (!o->f) return 0;
    bad = fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0;
    if (fclose(o->f) != 0) bad = 1;
    o->f = NULL;
    if (bad) {
        tal_log_error("cannot write %s: %s", o->path, strerror(errno));
        return TAL_EIO;
    }
    return 0;
}

int tal_outfile_commit(tal_outfile_t *o, int force)
{
    int rc;
    if (!o->tmp) return 0;
    if ((rc = tal_outfile_close(o)) < 0) return rc;
    if ((rc = tal_commit_renames(&o->tmp, &o->path, 1, force)) < 0) return rc;
    tal_outfile_committed(o);
    return 0;
}

void tal_outfile_committed(tal_outfile_t *o)
{
    if (!o->tmp) return;
    tal_cleanup_extra_done(o->tmp, 0);
    free(o->tmp);
    o->tmp = NULL;
}

void tal_outfile_abort(tal_outfile_t *o)
{
    if (o->f) fclose(o->f);
    o->f = NULL;
    if (o->tmp) tal_cleanup_extra_done(o->tmp, 1);
    free(o->tmp);
    o->tmp = NULL;
}
