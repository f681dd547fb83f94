/* Fault injection for the talaria program, as an LD_PRELOAD library (tests/cli/faults.sh
 * builds it): the C library's allocation, open, read, write, fsync, rename and mmap
 * functions, when called from talaria's own code, either run normally or fail once.
 *
 *   TAL_FAULT_RECORD=FILE  appends one line per call site reached: "KIND OFFSET",
 *                              OFFSET being the return address's offset in the program
 *   TAL_FAULT=KIND@OFFSET  the first call of KIND from that site fails
 *   TAL_FAULT=N            the N-th call from talaria's code fails, whatever its kind
 *
 * A failing call returns what the C library returns for that failure (NULL and ENOMEM for
 * an allocation, -1 and EIO or ENOSPC for I/O, MAP_FAILED for mmap, EOF with the stream's
 * error flag set for stdio). Calls from other libraries (SQLite, zstd, the C library
 * itself) are left alone: the sites tested are talaria's. Only the process whose program
 * is named talaria (or lt-talaria) is affected. (Not TALARIA_*: talaria rejects unknown
 * variables of its own prefix.) */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

static int active;           /* this process is talaria and a mode is set */
static int record_fd = -1;   /* TAL_FAULT_RECORD */
static char target_kind[32]; /* TAL_FAULT=KIND@OFFSET */
static uintptr_t target_offset;
static unsigned long target_nth; /* TAL_FAULT=N */
static unsigned long calls;
static int fired;
static uintptr_t prog_start, prog_end, prog_base;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static __thread int inside; /* the shim's own calls pass through */

static int find_program(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    /* the first object is the program itself */
    prog_base = info->dlpi_addr;
    prog_start = UINTPTR_MAX;
    prog_end = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < prog_start) prog_start = a;
        if (a + ph->p_memsz > prog_end) prog_end = a + ph->p_memsz;
    }
    return 1;
}

__attribute__((constructor)) static void fault_init(void)
{
    const char *rec = getenv("TAL_FAULT_RECORD"), *f = getenv("TAL_FAULT");
    const char *name = program_invocation_short_name;
    if (strcmp(name, "talaria") != 0 && strcmp(name, "lt-talaria") != 0) return;
    inside = 1;
    dl_iterate_phdr(find_program, NULL);
    if (rec && *rec) record_fd = open(rec, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (f && *f) {
        const char *at = strchr(f, '@');
        if (at && (size_t)(at - f) < sizeof target_kind) {
            memcpy(target_kind, f, (size_t)(at - f));
            target_offset = (uintptr_t)strtoull(at + 1, NULL, 0);
        } else {
            target_nth = strtoul(f, NULL, 10);
        }
    }
    active = record_fd >= 0 || target_kind[0] || target_nth;
    inside = 0;
}

/* Whether this call (of kind, returning to ra) is the one to fail. */
static int should_fail(const char *kind, void *ra)
{
    uintptr_t a = (uintptr_t)ra;
    int fail = 0;
    if (!active || inside || a < prog_start || a >= prog_end) return 0;
    inside = 1;
    pthread_mutex_lock(&mu);
    calls++;
    if (record_fd >= 0) {
        char line[64];
        int n = snprintf(line, sizeof line, "%s 0x%lx\n", kind, (unsigned long)(a - prog_base));
        if (write(record_fd, line, (size_t)n) < 0) {
        }
    }
    if (!fired) {
        if (target_nth ? calls == target_nth
                       : target_kind[0] && a - prog_base == target_offset &&
                             strcmp(kind, target_kind) == 0)
            fail = fired = 1;
    }
    pthread_mutex_unlock(&mu);
    inside = 0;
    return fail;
}

#define RA __builtin_return_address(0)
#define NEXT(type, name, args)                                                                     \
    static type(*next_) args;                                                                      \
    if (!next_) *(void **)&next_ = dlsym(RTLD_NEXT, name)

/* ---- allocation ---- */

void *malloc(size_t n)
{
    if (should_fail("malloc", RA)) return errno = ENOMEM, NULL;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    if (should_fail("calloc", RA)) return errno = ENOMEM, NULL;
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    if (should_fail("realloc", RA)) return errno = ENOMEM, NULL;
    return __libc_realloc(p, n);
}

int posix_memalign(void **p, size_t align, size_t n)
{
    NEXT(int, "posix_memalign", (void **, size_t, size_t));
    if (should_fail("posix_memalign", RA)) return ENOMEM;
    return next_(p, align, n);
}

char *strdup(const char *s)
{
    NEXT(char *, "strdup", (const char *));
    if (should_fail("strdup", RA)) return errno = ENOMEM, NULL;
    return next_(s);
}

char *strndup(const char *s, size_t n)
{
    NEXT(char *, "strndup", (const char *, size_t));
    if (should_fail("strndup", RA)) return errno = ENOMEM, NULL;
    return next_(s, n);
}

int asprintf(char **out, const char *fmt, ...)
{
    va_list ap;
    int rc;
    if (should_fail("asprintf", RA)) return errno = ENOMEM, -1;
    va_start(ap, fmt);
    rc = vasprintf(out, fmt, ap);
    va_end(ap);
    return rc;
}

FILE *open_memstream(char **p, size_t *n)
{
    NEXT(FILE *, "open_memstream", (char **, size_t *));
    if (should_fail("open_memstream", RA)) return errno = ENOMEM, NULL;
    return next_(p, n);
}

ssize_t __getdelim(char **line, size_t *n, int delim, FILE *f)
{
    NEXT(ssize_t, "__getdelim", (char **, size_t *, int, FILE *));
    if (should_fail("getdelim", RA)) return errno = ENOMEM, -1;
    return next_(line, n, delim, f);
}

char *realpath(const char *path, char *resolved)
{
    NEXT(char *, "realpath", (const char *, char *));
    if (should_fail("realpath", RA)) return errno = ENOMEM, NULL;
    return next_(path, resolved);
}

/* ---- opening ---- */

int open(const char *path, int flags, ...)
{
    NEXT(int, "open", (const char *, int, ...));
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (should_fail("open", RA)) return errno = EIO, -1;
    return next_(path, flags, mode);
}

int openat(int dir, const char *path, int flags, ...)
{
    NEXT(int, "openat", (int, const char *, int, ...));
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (should_fail("openat", RA)) return errno = EIO, -1;
    return next_(dir, path, flags, mode);
}

FILE *fopen(const char *path, const char *how)
{
    NEXT(FILE *, "fopen", (const char *, const char *));
    if (should_fail("fopen", RA)) return errno = EIO, NULL;
    return next_(path, how);
}

FILE *fdopen(int fd, const char *how)
{
    NEXT(FILE *, "fdopen", (int, const char *));
    if (should_fail("fdopen", RA)) return errno = ENOMEM, NULL;
    return next_(fd, how);
}

DIR *opendir(const char *path)
{
    NEXT(DIR *, "opendir", (const char *));
    if (should_fail("opendir", RA)) return errno = EIO, NULL;
    return next_(path);
}

DIR *fdopendir(int fd)
{
    NEXT(DIR *, "fdopendir", (int));
    if (should_fail("fdopendir", RA)) return errno = ENOMEM, NULL;
    return next_(fd);
}

int mkstemp(char *templ)
{
    NEXT(int, "mkstemp", (char *));
    if (should_fail("mkstemp", RA)) return errno = EIO, -1;
    return next_(templ);
}

int mkostemp(char *templ, int flags)
{
    NEXT(int, "mkostemp", (char *, int));
    if (should_fail("mkostemp", RA)) return errno = EIO, -1;
    return next_(templ, flags);
}

char *mkdtemp(char *templ)
{
    NEXT(char *, "mkdtemp", (char *));
    if (should_fail("mkdtemp", RA)) return errno = EIO, NULL;
    return next_(templ);
}

/* ---- reading and writing ---- */

ssize_t read(int fd, void *buf, size_t n)
{
    NEXT(ssize_t, "read", (int, void *, size_t));
    if (should_fail("read", RA)) return errno = EIO, -1;
    return next_(fd, buf, n);
}

ssize_t pread(int fd, void *buf, size_t n, off_t at)
{
    NEXT(ssize_t, "pread", (int, void *, size_t, off_t));
    if (should_fail("pread", RA)) return errno = EIO, -1;
    return next_(fd, buf, n, at);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    NEXT(ssize_t, "write", (int, const void *, size_t));
    if (fd > 2 && should_fail("write", RA)) return errno = ENOSPC, -1;
    return next_(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t at)
{
    NEXT(ssize_t, "pwrite", (int, const void *, size_t, off_t));
    if (should_fail("pwrite", RA)) return errno = ENOSPC, -1;
    return next_(fd, buf, n, at);
}

size_t fread(void *buf, size_t size, size_t n, FILE *f)
{
    NEXT(size_t, "fread", (void *, size_t, size_t, FILE *));
    if (should_fail("fread", RA)) {
        f->_flags |= _IO_ERR_SEEN;
        errno = EIO;
        return 0;
    }
    return next_(buf, size, n, f);
}

char *fgets(char *s, int n, FILE *f)
{
    NEXT(char *, "fgets", (char *, int, FILE *));
    if (should_fail("fgets", RA)) {
        f->_flags |= _IO_ERR_SEEN;
        errno = EIO;
        return NULL;
    }
    return next_(s, n, f);
}

/* Writes to stdout and stderr are left alone: a message must get out. */
static int is_std(FILE *f) { return f == stdout || f == stderr; }

size_t fwrite(const void *buf, size_t size, size_t n, FILE *f)
{
    NEXT(size_t, "fwrite", (const void *, size_t, size_t, FILE *));
    if (!is_std(f) && should_fail("fwrite", RA)) {
        f->_flags |= _IO_ERR_SEEN;
        errno = ENOSPC;
        return 0;
    }
    return next_(buf, size, n, f);
}

size_t(fwrite_unlocked)(const void *buf, size_t size, size_t n, FILE *f)
{
    NEXT(size_t, "fwrite_unlocked", (const void *, size_t, size_t, FILE *));
    if (!is_std(f) && should_fail("fwrite_unlocked", RA)) {
        f->_flags |= _IO_ERR_SEEN;
        errno = ENOSPC;
        return 0;
    }
    return next_(buf, size, n, f);
}

int fflush(FILE *f)
{
    NEXT(int, "fflush", (FILE *));
    if (f && !is_std(f) && should_fail("fflush", RA)) {
        f->_flags |= _IO_ERR_SEEN;
        return errno = ENOSPC, EOF;
    }
    return next_(f);
}

int fclose(FILE *f)
{
    NEXT(int, "fclose", (FILE *));
    if (!is_std(f) && should_fail("fclose", RA)) {
        next_(f);
        return errno = ENOSPC, EOF;
    }
    return next_(f);
}

int fsync(int fd)
{
    NEXT(int, "fsync", (int));
    if (should_fail("fsync", RA)) return errno = EIO, -1;
    return next_(fd);
}

int sync_file_range(int fd, off64_t at, off64_t n, unsigned int flags)
{
    NEXT(int, "sync_file_range", (int, off64_t, off64_t, unsigned int));
    if (should_fail("sync_file_range", RA)) return errno = EIO, -1;
    return next_(fd, at, n, flags);
}

int ftruncate(int fd, off_t n)
{
    NEXT(int, "ftruncate", (int, off_t));
    if (should_fail("ftruncate", RA)) return errno = ENOSPC, -1;
    return next_(fd, n);
}

int fallocate(int fd, int mode, off_t at, off_t n)
{
    NEXT(int, "fallocate", (int, int, off_t, off_t));
    if (should_fail("fallocate", RA)) return errno = ENOSPC, -1;
    return next_(fd, mode, at, n);
}

int rename(const char *from, const char *to)
{
    NEXT(int, "rename", (const char *, const char *));
    if (should_fail("rename", RA)) return errno = EIO, -1;
    return next_(from, to);
}

int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned int flags)
{
    NEXT(int, "renameat2", (int, const char *, int, const char *, unsigned int));
    if (should_fail("renameat2", RA)) return errno = EIO, -1;
    return next_(fd1, from, fd2, to, flags);
}

/* ---- mapping ---- */

void *mmap(void *addr, size_t n, int prot, int flags, int fd, off_t at)
{
    NEXT(void *, "mmap", (void *, size_t, int, int, int, off_t));
    if (should_fail("mmap", RA)) return errno = ENOMEM, MAP_FAILED;
    return next_(addr, n, prot, flags, fd, at);
}

void *mremap(void *old, size_t old_n, size_t n, int flags, ...)
{
    NEXT(void *, "mremap", (void *, size_t, size_t, int, ...));
    void *to = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        to = va_arg(ap, void *);
        va_end(ap);
    }
    if (should_fail("mremap", RA)) return errno = ENOMEM, MAP_FAILED;
    return next_(old, old_n, n, flags, to);
}
