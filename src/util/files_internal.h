/* Atomic output directories (temp dir + fsync + rename) and checksummed buffered
 * writers for the files inside them. Private to libtalaria. */
#ifndef TAL_FILES_INTERNAL_H
#define TAL_FILES_INTERNAL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "talaria/util.h"

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

/* A directory built as NAME.tmp-XXXXXX beside NAME and renamed into place on commit.
 * Until commit, SIGINT/SIGTERM remove it (the files written through tal_wfile). */
typedef struct {
    char *final_path;
    char *tmp_path;
    int dir_fd;
    int replace; /* final_path exists and is a store we may replace (--force) */
} tal_atomic_dir_t;

/* marker_file names a file that proves an existing directory is ours to replace. */
int tal_atomic_dir_begin(tal_atomic_dir_t *dir, const char *final_path, int force,
                         const char *marker_file);
int tal_atomic_dir_commit(tal_atomic_dir_t *dir);
void tal_atomic_dir_abort(tal_atomic_dir_t *dir);

/* A thread that writes (and hashes) full buffers for any number of tal_wfile_t, so the
 * kernel's copy into the page cache runs beside the caller's work. */
typedef struct tal_writer tal_writer_t;
int tal_writer_start(tal_writer_t **out);
void tal_writer_stop(tal_writer_t *writer);

/* A buffered writer that hashes (XXH3-64) what it writes and starts writeback early so
 * the final fsync has little left to do. */
typedef struct {
    int fd;
    char *buf;
    size_t cap, used;
    uint64_t written, synced_upto;
    XXH3_state_t *hash;
    char *display;         /* path for messages */
    tal_writer_t *writer;  /* NULL: writes happen in the caller's thread */
    char *spare;           /* with a writer: the buffer being written while buf fills */
    int inflight;          /* with a writer: spare is queued or being written */
    int error;             /* the writer's error for this file */
    uint64_t *byte_counts; /* if set: [256] counts of the bytes written (composition) */
    int direct;            /* O_DIRECT asked for: buffers go out whole (set once, at start) */
    int fd_direct;         /* fd has O_DIRECT now (the writing thread's business) */
    int read_fd;           /* with direct: a plain descriptor for tal_wfile_pread */
} tal_wfile_t;

int tal_wfile_open(tal_wfile_t *w, tal_atomic_dir_t *dir, const char *name, size_t buf_size);
/* Hands full buffers to writer from now on (call right after open). With direct set and
 * a file system that supports it, the writer bypasses the page cache (O_DIRECT): bulk
 * output then costs no kernel copy and does not push other jobs' data out of the cache.
 * Falls back to buffered writes silently where O_DIRECT is refused (tmpfs, some network
 * file systems). */
int tal_wfile_use_writer(tal_wfile_t *w, tal_writer_t *writer, int direct);
/* The same bypass for a file written from the caller's thread (call right after open). */
void tal_wfile_direct(tal_wfile_t *w);
int tal_wfile_write(tal_wfile_t *w, const void *data, size_t len);
/* Reads back bytes already given to tal_wfile_write (flushed or still buffered). */
int tal_wfile_pread(tal_wfile_t *w, uint64_t offset, void *out, size_t len);
/* Flushes, fsyncs and closes; returns the checksum and size of everything written. */
int tal_wfile_finish(tal_wfile_t *w, uint64_t *checksum, uint64_t *size);
void tal_wfile_abort(tal_wfile_t *w);

/* Registers a file inside dir so tal_cleanup_temporaries (a program's signal handler)
 * unlinks it. */
void tal_cleanup_add_file(const tal_atomic_dir_t *dir, const char *name);

/* Temporary outputs outside an atomic directory: path (a file, or with tree a directory
 * of files and store directories) is removed by tal_cleanup_temporaries. lock_fd (or -1)
 * is the descriptor holding the temporary's lock (tal_temp_lock); the registry owns it.
 * done forgets the path (after a rename into place) or, with remove_it, removes it now,
 * and then closes lock_fd. */
int tal_cleanup_extra_add(const char *path, int tree, int lock_fd);
void tal_cleanup_extra_done(const char *path, int remove_it);

/* Renames from[i] to to[i] for every i (at most 16), all or none: an existing to[i] is
 * replaced only with force, and if one rename fails those done are undone, so the
 * outputs are all new or all as they were. The temporaries then hold what was replaced
 * until the caller removes them (tal_cleanup_extra_done(..., 1)); after success they are
 * gone. Works where renameat2 has no flags (NFS), atomically where it has them. */
int tal_commit_renames(char *const *from, const char *const *to, int n, int force);
/* After tal_commit_renames moved o's temporary into place: o forgets it. */
void tal_outfile_committed(tal_outfile_t *o);

/* Temporaries of killed runs. tal_temp_lock marks the temporary open as fd as in use for
 * as long as fd stays open: 0, or 1 when it was removed before the lock was taken (make
 * another). tal_sweep_temporaries removes the entries of dir named prefix + up to 16
 * letters or digits that belong to this user and that no live run holds;
 * tal_sweep_beside(PATH) those named PATH.tmp-*. */
int tal_temp_lock(int fd);

/* An unnamed read-write scratch file in dir (O_TMPFILE; on a file system without those, a
 * named one unlinked at once): nothing is left behind, even after a kill. -1 with errno
 * set if neither can be made; the caller names what it was for. */
int tal_unnamed_file(const char *dir);
void tal_sweep_temporaries(const char *dir, const char *prefix);
void tal_sweep_beside(const char *path);

/* tal_outfile_t (one output file written whole or not at all) is public: talaria/util.h. */

/* Hashes a whole file with XXH3-64 (used for the catalog and by verify). */
int tal_hash_file(const char *path, uint64_t *checksum, uint64_t *size);

#endif
