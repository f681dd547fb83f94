/* The delta store file: writing it section by section with positioned writes (every
 * offset is known from the layout before the first byte), and reading it through one
 * read-only mapping with every offset checked on open. */
#define _GNU_SOURCE
#include "dstore_internal.h"
#include "mem/sorter_internal.h"
#include "delta_internal.h"
#include "store/format_internal.h"
#include "store/layout_internal.h"
#include "talaria/error.h"
#include "util/util_internal.h"
#include "talaria/fasta.h"
#include "talaria/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

/* On disk, little-endian (doc/format.md). */
typedef struct {
    char magic[8];
    uint32_t major, minor;
    uint64_t records, references;
    uint64_t entries_off, headers_off, headers_size, deltas_off, deltas_size;
    uint64_t refs_off, keys_off, keys_count, file_size;
    double identity, coverage;
    uint32_t flags, path_len;
    uint64_t residues, reference_residues;
} dheader_t;

typedef struct {
    uint64_t header_off, delta_off, length, checksum;
    uint32_t header_len, delta_len, ref, flags;
    float identity, coverage;
} dentry_t;

typedef struct {
    uint64_t hash, record; /* record | 1 << 63 for an alias key */
} dkey_t;

_Static_assert(sizeof(dheader_t) == 144, "delta header layout");
_Static_assert(sizeof(dentry_t) == 56, "delta entry layout");
_Static_assert(sizeof(tal_dref_t) == 40, "delta reference layout");

#define HEADER_SPACE   4096               /* header, then the FASTA path */
#define LAYOUT_SIZE_AT (HEADER_SPACE - 8) /* minor 2: the line layout's size, a u64 */
#define ALIAS_BIT      (1ull << 63)
#define WBUF           (1u << 20)

static uint64_t pad8(uint64_t x) { return (x + 7) & ~7ull; }

/* ---- writing ---- */

typedef struct {
    uint64_t at; /* file offset of buf[0] */
    char *buf;
    size_t used;
} cursor_t;

struct tal_dwriter {
    char *path;
    int fd;
    dheader_t h;
    char fasta[LAYOUT_SIZE_AT - sizeof(dheader_t)]; /* the path, a NUL, the provenance */
    size_t fasta_bytes;
    unsigned char *line_layout; /* minor 2: the last bytes of the deltas section */
    uint64_t line_layout_size;
    cursor_t entries, headers, refs;
    uint64_t n_rec, n_ref, header_used;
    tal_sorter_t *keys; /* the key index, sorted by hash, then record */
    uint64_t n_keys;
};

static int pwrite_all(int fd, const void *data, size_t len, uint64_t off, const char *path)
{
    const char *p = data;
    while (len) {
        ssize_t k = pwrite(fd, p, len, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            tal_log_error("%s: cannot write: %s", path, k < 0 ? strerror(errno) : "short write");
            return TAL_EIO;
        }
        p += k;
        len -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

static int cursor_flush(tal_dwriter_t *w, cursor_t *c)
{
    int rc = pwrite_all(w->fd, c->buf, c->used, c->at, w->path);
    c->at += c->used;
    c->used = 0;
    return rc;
}

static int cursor_put(tal_dwriter_t *w, cursor_t *c, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        size_t k = WBUF - c->used < len ? WBUF - c->used : len;
        int rc;
        memcpy(c->buf + c->used, p, k);
        c->used += k;
        p += k;
        len -= k;
        if (c->used == WBUF && (rc = cursor_flush(w, c)) < 0) return rc;
    }
    return 0;
}

int tal_dwriter_open(tal_dwriter_t **out, const char *path, const tal_dlayout_t *l)
{
    tal_dwriter_t *w = calloc(1, sizeof *w);
    size_t plen = strlen(l->fasta_path);
    *out = NULL;
    if (!w) return TAL_ENOMEM;
    if (plen >= sizeof w->fasta) {
        free(w);
        tal_log_error("%s: the reduced FASTA's path is too long", path);
        return TAL_EUSAGE;
    }
    w->path = strdup(path);
    w->entries.buf = malloc(WBUF);
    w->headers.buf = malloc(WBUF);
    w->refs.buf = malloc(WBUF);
    if (!w->path || !w->entries.buf || !w->headers.buf || !w->refs.buf) {
        tal_dwriter_abort(w);
        return TAL_ENOMEM;
    }
    {
        tal_sorter_opt_t so;
        int rc;
        memset(&so, 0, sizeof so);
        so.record_size = sizeof(dkey_t);
        so.buffer_bytes = l->sort_bytes ? l->sort_bytes : TAL_SORTER_DEFAULT_BUFFER;
        so.expected = l->records * 2;
        so.tmp_dir = l->tmp_dir;
        so.what = "the delta store's key index";
        so.budget = l->budget;
        so.component = TAL_MEM_SORT;
        if ((rc = tal_sorter_create(&w->keys, &so)) < 0) {
            tal_dwriter_abort(w);
            return rc;
        }
    }
    w->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        tal_log_error("%s: cannot create: %s", path, strerror(errno));
        free(w->path);
        w->path = NULL;
        tal_dwriter_abort(w);
        return TAL_EIO;
    }
    memcpy(w->fasta, l->fasta_path, plen);
    w->fasta_bytes = plen;
    if (l->provenance && *l->provenance && plen + 2 < sizeof w->fasta) {
        /* format 1.1: after the path and a NUL, the configuration, NUL-terminated, as much
         * of it as the header has room for (whole lines) */
        size_t room = sizeof w->fasta - plen - 2, n = strlen(l->provenance);
        if (n > room) {
            n = room;
            while (n && l->provenance[n - 1] != '\n') n--;
        }
        memcpy(w->fasta + plen + 1, l->provenance, n);
        w->fasta_bytes = plen + 1 + n;
    }
    if (l->line_layout && l->line_layout_size) {
        if (!(w->line_layout = malloc(l->line_layout_size))) {
            tal_dwriter_abort(w);
            return TAL_ENOMEM;
        }
        memcpy(w->line_layout, l->line_layout, l->line_layout_size);
        w->line_layout_size = l->line_layout_size;
    }
    memcpy(w->h.magic, TAL_DSTORE_MAGIC, 8);
    w->h.major = 1;
    w->h.minor = w->line_layout ? 2 : 1;
    w->h.records = l->records;
    w->h.references = l->references;
    w->h.entries_off = HEADER_SPACE;
    w->h.headers_off = w->h.entries_off + l->records * sizeof(dentry_t);
    w->h.headers_size = l->header_bytes;
    w->h.deltas_off = pad8(w->h.headers_off + l->header_bytes);
    /* minor 2: the line layout ends the deltas section, where a 1.1 reader, which reads
     * edit scripts only where entries point, does not see it */
    w->h.deltas_size = l->delta_bytes + w->line_layout_size;
    w->h.refs_off = pad8(w->h.deltas_off + w->h.deltas_size);
    w->h.keys_off = w->h.refs_off + l->references * sizeof(tal_dref_t);
    w->h.identity = l->identity;
    w->h.coverage = l->coverage;
    w->h.flags = l->nucleotide ? 1 : 0;
    w->h.path_len = (uint32_t)plen;
    w->entries.at = w->h.entries_off;
    w->headers.at = w->h.headers_off;
    w->refs.at = w->h.refs_off;
    *out = w;
    return 0;
}

int tal_dwriter_record(tal_dwriter_t *w, const tal_drec_t *rec, uint64_t delta_off)
{
    dentry_t e;
    tal_keys_t keys;
    int rc;
    if (w->n_rec >= w->h.records || w->header_used + rec->header_len > w->h.headers_size ||
        rec->header_len > UINT32_MAX || rec->delta_len > UINT32_MAX)
        return TAL_EUSAGE;
    memset(&e, 0, sizeof e);
    e.header_off = w->header_used;
    e.delta_off = delta_off;
    e.length = rec->length;
    e.checksum = rec->checksum;
    e.header_len = (uint32_t)rec->header_len;
    e.delta_len = (uint32_t)rec->delta_len;
    e.ref = rec->ref;
    e.flags = rec->flags;
    e.identity = rec->identity;
    e.coverage = rec->coverage;
    if ((rc = cursor_put(w, &w->entries, &e, sizeof e)) < 0) return rc;
    if ((rc = cursor_put(w, &w->headers, rec->header, rec->header_len)) < 0) return rc;
    w->header_used += rec->header_len;
    tal_header_keys(rec->header, rec->header_len, &keys);
    {
        dkey_t k = {tal_key_hash(keys.primary, keys.primary_len), w->n_rec};
        if ((rc = tal_sorter_add(w->keys, &k, 1)) < 0) return rc;
        w->n_keys++;
    }
    if (keys.alias) {
        dkey_t k = {tal_key_hash(keys.alias, keys.alias_len), w->n_rec | ALIAS_BIT};
        if ((rc = tal_sorter_add(w->keys, &k, 1)) < 0) return rc;
        w->n_keys++;
    }
    w->h.residues += rec->length;
    w->n_rec++;
    return 0;
}

int tal_dwriter_reference(tal_dwriter_t *w, const tal_dref_t *ref)
{
    if (w->n_ref >= w->h.references) return TAL_EUSAGE;
    w->n_ref++;
    w->h.reference_residues += ref->length;
    return cursor_put(w, &w->refs, ref, sizeof *ref);
}

int tal_dwriter_copy_deltas(tal_dwriter_t *w, int fd)
{
    char *buf = w->headers.buf; /* the headers cursor is flushed first, then reused */
    uint64_t done = 0, scripts = w->h.deltas_size - w->line_layout_size;
    int rc;
    if ((rc = cursor_flush(w, &w->headers)) < 0) return rc;
    if (w->line_layout_size && (rc = pwrite_all(w->fd, w->line_layout, w->line_layout_size,
                                                w->h.deltas_off + scripts, w->path)) < 0)
        return rc;
    while (done < scripts) {
        size_t want = scripts - done < WBUF ? (size_t)(scripts - done) : WBUF;
        ssize_t k = pread(fd, buf, want, (off_t)done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            tal_log_error("%s: cannot read the deltas back: %s", w->path,
                          k < 0 ? strerror(errno) : "short file");
            return TAL_EIO;
        }
        if ((rc = pwrite_all(w->fd, buf, (size_t)k, w->h.deltas_off + done, w->path)) < 0)
            return rc;
        done += (uint64_t)k;
    }
    return 0;
}

int tal_dwriter_finish(tal_dwriter_t *w)
{
    char *buf = w->entries.buf;
    XXH3_state_t *st;
    uint64_t sum, off = 0;
    int rc;
    if (w->n_rec != w->h.records || w->n_ref != w->h.references ||
        w->header_used != w->h.headers_size)
        return TAL_EUSAGE;
    if ((rc = cursor_flush(w, &w->entries)) < 0 || (rc = cursor_flush(w, &w->headers)) < 0 ||
        (rc = cursor_flush(w, &w->refs)) < 0)
        return rc;
    w->h.keys_count = w->n_keys;
    if ((rc = tal_sorter_finish(w->keys)) < 0) return rc;
    {
        const void *recs;
        size_t count;
        uint64_t at = w->h.keys_off;
        while ((rc = tal_sorter_read(w->keys, &recs, &count)) > 0) {
            if ((rc = pwrite_all(w->fd, recs, count * sizeof(dkey_t), at, w->path)) < 0) return rc;
            at += count * sizeof(dkey_t);
        }
        if (rc < 0) return rc;
    }
    w->h.file_size = w->h.keys_off + w->n_keys * sizeof(dkey_t) + 8;
    {
        char head[HEADER_SPACE];
        memset(head, 0, sizeof head);
        memcpy(head, &w->h, sizeof w->h);
        memcpy(head + sizeof w->h, w->fasta, w->fasta_bytes);
        memcpy(head + LAYOUT_SIZE_AT, &w->line_layout_size, 8);
        if ((rc = pwrite_all(w->fd, head, sizeof head, 0, w->path)) < 0) return rc;
    }
    /* the trailer: XXH3-64 of every byte before it, read back */
    if (!(st = XXH3_createState())) return TAL_ENOMEM;
    XXH3_64bits_reset(st);
    while (off < w->h.file_size - 8) {
        size_t want = w->h.file_size - 8 - off < WBUF ? (size_t)(w->h.file_size - 8 - off) : WBUF;
        ssize_t k = pread(w->fd, buf, want, (off_t)off);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            XXH3_freeState(st);
            tal_log_error("%s: cannot read back: %s", w->path,
                          k < 0 ? strerror(errno) : "short file");
            return TAL_EIO;
        }
        XXH3_64bits_update(st, buf, (size_t)k);
        off += (uint64_t)k;
    }
    sum = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    if ((rc = pwrite_all(w->fd, &sum, 8, w->h.file_size - 8, w->path)) < 0) return rc;
    if (fsync(w->fd) < 0) {
        tal_log_error("%s: cannot sync: %s", w->path, strerror(errno));
        return TAL_EIO;
    }
    close(w->fd);
    w->fd = -1;
    free(w->path);
    w->path = NULL;
    tal_dwriter_abort(w); /* frees the rest; nothing left to remove */
    return 0;
}

void tal_dwriter_abort(tal_dwriter_t *w)
{
    if (!w) return;
    if (w->path) {
        if (w->fd >= 0) close(w->fd);
        unlink(w->path);
    }
    free(w->path);
    free(w->entries.buf);
    free(w->headers.buf);
    free(w->refs.buf);
    free(w->line_layout);
    tal_sorter_destroy(w->keys);
    free(w);
}

/* ---- reading ---- */

struct tal_dstore {
    char *path, *fasta_path;
    const char *provenance; /* in the mapping: NUL-terminated inside the header */
    const unsigned char *map;
    size_t size;
    const dheader_t *h;
    const dentry_t *entries;
    const char *headers;
    const uint8_t *deltas;
    const tal_dref_t *refs;
    const dkey_t *keys;
    int fasta_fd;
    uint64_t fasta_size; /* of the reduced FASTA, once fasta_fd is open */
    uint64_t cached;     /* 1 + the reference in refbuf, 0 if none */
    size_t cached_len;
    char *refbuf, *raw;
    size_t refbuf_cap, raw_cap;
    uint64_t rc_of; /* 1 + the reference whose reverse complement is in rcbuf, 0 if none */
    char *rcbuf;
    size_t rcbuf_cap;
    char *recbuf; /* tal_dstore_write_fasta's rebuilt record */
    size_t recbuf_cap;
    uint64_t *member_start, *member_list; /* built on first tal_dstore_members */
    tal_layout_t line_layout;             /* minor 2: the input's line layout */
    int has_line_layout;
};

int tal_dstore_is(const char *path)
{
    char magic[8];
    int fd = open(path, O_RDONLY | O_CLOEXEC), ok;
    struct stat st;
    if (fd < 0) return 0;
    ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read(fd, magic, 8) == 8 &&
         !memcmp(magic, TAL_DSTORE_MAGIC, 8);
    close(fd);
    return ok;
}

static int damaged(const tal_dstore_t *d, const char *what)
{
    tal_log_error("%s: %s; the delta store is damaged", d->path, what);
    return TAL_EINPUT;
}

static uint64_t entry_length(void *ctx, uint64_t i)
{
    return ((const tal_dstore_t *)ctx)->entries[i].length;
}

/* Format 1.2: the input's line layout at the end of the deltas section, checked whole (it
 * is small unless the input's lines were irregular). */
static int open_line_layout(tal_dstore_t *d, uint64_t size)
{
    const char *bad;
    char what[128];
    bad = tal_layout_open(&d->line_layout, d->deltas + d->h->deltas_size - size, (size_t)size,
                          d->h->records);
    if (!bad) bad = tal_layout_check(&d->line_layout, entry_length, d);
    if (bad) {
        snprintf(what, sizeof what, "its line layout is damaged: %s", bad);
        return damaged(d, what);
    }
    d->has_line_layout = 1;
    return 0;
}

static int check_layout(tal_dstore_t *d)
{
    const dheader_t *h = d->h;
    uint64_t size = d->size;
    if (h->major != 1) return damaged(d, "unknown format version");
    if (h->file_size != size) return damaged(d, "its size is not the size it was written with");
    if (h->records > TAL_MAX_RECORDS || h->references > h->records ||
        h->keys_count > 2 * h->records)
        return damaged(d, "impossible record counts");
    uint64_t layout_size = 0;
    if (h->minor >= 2) memcpy(&layout_size, d->map + LAYOUT_SIZE_AT, 8);
    if (h->path_len >= (h->minor >= 2 ? LAYOUT_SIZE_AT : HEADER_SPACE) - sizeof *h)
        return damaged(d, "bad FASTA path length");
    if (h->entries_off != HEADER_SPACE ||
        h->headers_off != h->entries_off + h->records * sizeof(dentry_t) ||
        h->headers_size > size || h->deltas_off != pad8(h->headers_off + h->headers_size) ||
        h->deltas_size > size || h->refs_off != pad8(h->deltas_off + h->deltas_size) ||
        h->keys_off != h->refs_off + h->references * sizeof(tal_dref_t) ||
        layout_size > h->deltas_size || h->keys_off + h->keys_count * sizeof(dkey_t) + 8 != size)
        return damaged(d, "its sections do not tile the file");
    /* format 1.1: after the path and a NUL, the configuration, NUL-terminated */
    d->provenance = "";
    if (h->minor >= 1 && sizeof *h + h->path_len + 1 < HEADER_SPACE) {
        const char *text = (const char *)d->map + sizeof *h + h->path_len + 1;
        size_t room = (h->minor >= 2 ? LAYOUT_SIZE_AT : HEADER_SPACE) - sizeof *h - h->path_len - 1;
        if (!memchr(text, '\0', room))
            return damaged(d, "its configuration record is not terminated");
        d->provenance = text;
    }
    d->entries = (const dentry_t *)(d->map + h->entries_off);
    d->headers = (const char *)(d->map + h->headers_off);
    d->deltas = d->map + h->deltas_off;
    d->refs = (const tal_dref_t *)(d->map + h->refs_off);
    d->keys = (const dkey_t *)(d->map + h->keys_off);
    return layout_size ? open_line_layout(d, layout_size) : 0;
}

/* The FASTA beside the store with the recorded name, else the recorded path. */
static char *locate_fasta(const tal_dstore_t *d, const char *override)
{
    char recorded[HEADER_SPACE], *beside;
    const char *base, *slash = strrchr(d->path, '/');
    memcpy(recorded, d->map + sizeof(dheader_t), d->h->path_len);
    recorded[d->h->path_len] = '\0';
    if (override) return strdup(override);
    base = strrchr(recorded, '/') ? strrchr(recorded, '/') + 1 : recorded;
    if (asprintf(&beside, "%.*s%s", slash ? (int)(slash - d->path + 1) : 0, d->path, base) < 0)
        return NULL;
    if (access(beside, R_OK) == 0 || recorded[0] != '/') return beside;
    free(beside);
    return strdup(recorded);
}

int tal_dstore_open(tal_dstore_t **out, const char *path, const char *fasta, int verify)
{
    tal_dstore_t *d = calloc(1, sizeof *d);
    struct stat st;
    int fd, rc, err;
    *out = NULL;
    if (!d) return TAL_ENOMEM;
    d->fasta_fd = -1;
    if (!(d->path = strdup(path))) {
        free(d);
        return TAL_ENOMEM;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    err = fd < 0 || fstat(fd, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (err) {
        /* missing, unreadable or a directory: an I/O failure, not a damaged file */
        tal_log_error("%s: cannot open: %s", path, strerror(err));
        if (fd >= 0) close(fd);
        tal_dstore_close(d);
        return TAL_EIO;
    }
    d->size = (size_t)st.st_size;
    if (d->size < HEADER_SPACE + 8) {
        close(fd);
        rc = damaged(d, "too short for a delta store");
        tal_dstore_close(d);
        return rc;
    }
    d->map = mmap(NULL, d->size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (d->map == MAP_FAILED) {
        d->map = NULL;
        tal_log_error("%s: cannot map: %s", path, strerror(errno));
        tal_dstore_close(d);
        return TAL_EIO;
    }
    d->h = (const dheader_t *)d->map;
    if (memcmp(d->h->magic, TAL_DSTORE_MAGIC, 8)) {
        rc = damaged(d, "not a delta store (bad magic)");
        tal_dstore_close(d);
        return rc;
    }
    if ((rc = check_layout(d)) < 0) {
        tal_dstore_close(d);
        return rc;
    }
    if (verify) {
        uint64_t want;
        memcpy(&want, d->map + d->size - 8, 8);
        if (XXH3_64bits(d->map, d->size - 8) != want) {
            rc = damaged(d, "its checksum does not match");
            tal_dstore_close(d);
            return rc;
        }
    }
    if (!(d->fasta_path = locate_fasta(d, fasta))) {
        tal_dstore_close(d);
        return TAL_ENOMEM;
    }
    *out = d;
    return 0;
}

void tal_dstore_close(tal_dstore_t *d)
{
    if (!d) return;
    if (d->map) munmap((void *)d->map, d->size);
    if (d->fasta_fd >= 0) close(d->fasta_fd);
    free(d->path);
    free(d->fasta_path);
    free(d->refbuf);
    free(d->rcbuf);
    free(d->raw);
    free(d->recbuf);
    free(d->member_start);
    free(d->member_list);
    free(d);
}

const char *tal_dstore_path(const tal_dstore_t *d) { return d->path; }

void tal_dstore_info(const tal_dstore_t *d, tal_dinfo_t *info)
{
    memset(info, 0, sizeof *info);
    info->records = d->h->records;
    info->references = d->h->references;
    info->members = d->h->records - d->h->references;
    info->residues = d->h->residues;
    info->reference_residues = d->h->reference_residues;
    info->header_bytes = d->h->headers_size;
    info->delta_bytes = d->h->deltas_size - (d->has_line_layout ? d->line_layout.size : 0);
    info->file_bytes = d->size;
    info->identity = d->h->identity;
    info->coverage = d->h->coverage;
    info->nucleotide = d->h->flags & 1;
    info->fasta_path = d->fasta_path;
    info->provenance = d->provenance;
}

int tal_dstore_record(const tal_dstore_t *d, uint64_t i, tal_drec_t *rec)
{
    const dentry_t *e;
    char what[96];
    if (i >= d->h->records) return TAL_ENOTFOUND;
    e = &d->entries[i];
    if (e->header_off > d->h->headers_size || e->header_len > d->h->headers_size - e->header_off ||
        e->ref >= d->h->references || e->length > d->h->residues ||
        (!(e->flags & (TAL_DREC_REFERENCE | TAL_DREC_IDENTICAL)) &&
         (e->delta_off > d->h->deltas_size || e->delta_len > d->h->deltas_size - e->delta_off))) {
        snprintf(what, sizeof what, "record %llu has offsets outside the file",
                 (unsigned long long)i + 1);
        return damaged(d, what);
    }
    /* one kind a record; the minus strand only for members with a delta, of nucleotides */
    if ((e->flags & ~(uint32_t)(TAL_DREC_REFERENCE | TAL_DREC_IDENTICAL | TAL_DREC_MINUS)) ||
        (e->flags & TAL_DREC_REFERENCE && e->flags & TAL_DREC_IDENTICAL) ||
        (e->flags & TAL_DREC_MINUS &&
         (e->flags & (TAL_DREC_REFERENCE | TAL_DREC_IDENTICAL) || !(d->h->flags & 1)))) {
        snprintf(what, sizeof what, "record %llu has flags %u, not a valid combination",
                 (unsigned long long)i + 1, (unsigned)e->flags);
        return damaged(d, what);
    }
    /* fractions: a NaN or an infinity would index the identity histogram of validate */
    if (!(e->identity >= 0.0f && e->identity <= 1.0f) ||
        !(e->coverage >= 0.0f && e->coverage <= 1.0f)) {
        snprintf(what, sizeof what, "record %llu has an identity or coverage outside [0, 1]",
                 (unsigned long long)i + 1);
        return damaged(d, what);
    }
    rec->header = d->headers + e->header_off;
    rec->header_len = e->header_len;
    rec->length = e->length;
    rec->checksum = e->checksum;
    rec->ref = e->ref;
    rec->flags = e->flags;
    rec->identity = e->identity;
    rec->coverage = e->coverage;
    rec->delta =
        e->flags & (TAL_DREC_REFERENCE | TAL_DREC_IDENTICAL) ? NULL : d->deltas + e->delta_off;
    rec->delta_len = rec->delta ? e->delta_len : 0;
    return 0;
}

int tal_dstore_reference(const tal_dstore_t *d, uint32_t k, tal_dref_t *ref)
{
    if (k >= d->h->references) return TAL_ENOTFOUND;
    *ref = d->refs[k];
    return 0;
}

void tal_dstore_accession(const char *header, size_t len, const char **acc, size_t *acc_len)
{
    tal_keys_t keys;
    tal_header_keys(header, len, &keys);
    *acc = keys.primary;
    *acc_len = keys.primary_len;
}

int tal_dstore_find(const tal_dstore_t *d, const char *acc, size_t acc_len, uint64_t *i)
{
    uint64_t hash = tal_key_hash(acc, acc_len), lo = 0, hi = d->h->keys_count, alias = UINT64_MAX;
    while (lo < hi) { /* the first key with this hash */
        uint64_t mid = lo + (hi - lo) / 2;
        if (d->keys[mid].hash < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < d->h->keys_count && d->keys[lo].hash == hash; lo++) {
        uint64_t rid = d->keys[lo].record & ~ALIAS_BIT;
        tal_drec_t rec;
        tal_keys_t keys;
        if (tal_dstore_record(d, rid, &rec) < 0) continue;
        tal_header_keys(rec.header, rec.header_len, &keys);
        if (!(d->keys[lo].record & ALIAS_BIT)) {
            if (keys.primary_len == acc_len && !memcmp(keys.primary, acc, acc_len)) {
                *i = rid;
                return 0;
            }
        } else if (keys.alias && keys.alias_len == acc_len && !memcmp(keys.alias, acc, acc_len) &&
                   rid < alias) {
            alias = rid;
        }
    }
    if (alias != UINT64_MAX) {
        *i = alias;
        return 0;
    }
    return TAL_ENOTFOUND;
}

static int not_in_fasta(const tal_dstore_t *d, uint32_t k, const tal_dref_t *r)
{
    tal_log_error("%s: reference %u (record %llu) is not in %s as written: the reduced FASTA "
                  "does not belong to this delta store",
                  d->path, k + 1, (unsigned long long)r->record + 1, d->fasta_path);
    return TAL_EINPUT;
}

int tal_dstore_ref_residues(tal_dstore_t *d, uint32_t k, const char **seq, size_t *len)
{
    const tal_dref_t *r;
    size_t n = 0, at = 0;
    int rc = 0;
    if (k >= d->h->references) return TAL_ENOTFOUND;
    r = &d->refs[k];
    if (d->cached == (uint64_t)k + 1) {
        *seq = d->refbuf;
        *len = d->cached_len;
        return 0;
    }
    d->cached = 0;
    if (r->length > d->h->reference_residues || r->fasta_len > d->size + (1ull << 40))
        return damaged(d, "a reference has an impossible length");
    if (d->fasta_fd < 0) {
        struct stat st;
        int err;
        d->fasta_fd = open(d->fasta_path, O_RDONLY | O_CLOEXEC);
        err = d->fasta_fd < 0 || fstat(d->fasta_fd, &st) < 0 ? errno
              : S_ISDIR(st.st_mode)                          ? EISDIR
                                                             : 0;
        if (err) {
            /* missing, unreadable or a directory: an I/O failure */
            tal_log_error("%s: cannot open the reduced FASTA of %s: %s", d->fasta_path, d->path,
                          strerror(err));
            if (d->fasta_fd >= 0) close(d->fasta_fd);
            d->fasta_fd = -1;
            return TAL_EIO;
        }
        d->fasta_size = (uint64_t)st.st_size;
    }
    /* a damaged entry must not size the buffers below past the file they read */
    if (r->fasta_offset > d->fasta_size || r->fasta_len > d->fasta_size - r->fasta_offset)
        return not_in_fasta(d, k, r);
    if (r->fasta_len > SIZE_MAX / 2 ||
        (rc = tal_buf_reserve(&d->raw, &d->raw_cap, (size_t)r->fasta_len + 1)) < 0 ||
        (rc = tal_buf_reserve(&d->refbuf, &d->refbuf_cap, (size_t)r->fasta_len + 1)) < 0)
        return rc < 0 ? rc : TAL_ENOMEM;
    while (at < r->fasta_len) {
        ssize_t got = pread(d->fasta_fd, d->raw + at, (size_t)r->fasta_len - at,
                            (off_t)(r->fasta_offset + at));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        at += (size_t)got;
    }
    /* the record: '>' header line, then residue lines */
    if (at == r->fasta_len && at > 0 && d->raw[0] == '>') {
        const char *p = memchr(d->raw, '\n', at);
        if (p)
            for (p++; p < d->raw + at; p++)
                if (*p != '\n' && *p != '\r') d->refbuf[n++] = *p;
    }
    if (n != r->length || XXH3_64bits(d->refbuf, n) != r->hash) return not_in_fasta(d, k, r);
    d->cached = (uint64_t)k + 1;
    d->cached_len = n;
    d->rc_of = 0;
    *seq = d->refbuf;
    *len = n;
    return 0;
}

int tal_dstore_rebuild(tal_dstore_t *d, uint64_t i, char **buf, size_t *cap, size_t *len)
{
    tal_drec_t rec;
    const char *ref;
    size_t ref_len;
    int rc, whole;
    if ((rc = tal_dstore_record(d, i, &rec)) < 0) return rc;
    if (rec.length > SIZE_MAX / 2) return damaged(d, "impossible record length");
    if ((rc = tal_dstore_ref_residues(d, rec.ref, &ref, &ref_len)) < 0) {
        if (rc == TAL_EINPUT)
            tal_log_error("%s: record %llu (%.*s) cannot be rebuilt", d->path,
                          (unsigned long long)i + 1,
                          (int)(rec.header_len > 60 ? 60 : rec.header_len), rec.header);
        return rc;
    }
    /* a record is its reference, or at most the reference and every byte of its delta: a
     * damaged length is caught before it sizes the buffer */
    whole = (rec.flags & (TAL_DREC_REFERENCE | TAL_DREC_IDENTICAL)) != 0;
    if (!whole && (rec.flags & TAL_DREC_MINUS) && d->rc_of != (uint64_t)rec.ref + 1) {
        /* the delta is against the reverse complement (kept for the reference's next
         * member on the minus strand) */
        if ((rc = tal_buf_reserve(&d->rcbuf, &d->rcbuf_cap, ref_len + 1)) < 0) return rc;
        tal_revcomp(ref, ref_len, d->rcbuf);
        d->rc_of = (uint64_t)rec.ref + 1;
    }
    if (!whole && (rec.flags & TAL_DREC_MINUS)) ref = d->rcbuf;
    if (whole ? ref_len != rec.length : rec.length > ref_len + rec.delta_len)
        rc = TAL_EINPUT;
    else if ((rc = tal_buf_reserve(buf, cap, (size_t)rec.length + 1)) < 0)
        return rc;
    else if (whole)
        memcpy(*buf, ref, ref_len);
    else
        rc = tal_delta_apply(rec.delta, rec.delta_len, ref, ref_len, *buf, (size_t)rec.length);
    if (rc < 0 ||
        tal_record_checksum(rec.header, rec.header_len, *buf, (size_t)rec.length) != rec.checksum) {
        tal_log_error("%s: record %llu (%.*s) does not rebuild to its checksum: the reduced FASTA "
                      "%s does not belong to this delta store, or one of them is damaged",
                      d->path, (unsigned long long)i + 1,
                      (int)(rec.header_len > 60 ? 60 : rec.header_len), rec.header, d->fasta_path);
        return TAL_EINPUT;
    }
    *len = (size_t)rec.length;
    return 0;
}

int tal_dstore_members(tal_dstore_t *d, uint32_t k, const uint64_t **members, uint64_t *count)
{
    uint64_t n = d->h->records, R = d->h->references;
    if (k >= R) return TAL_ENOTFOUND;
    if (!d->member_start) {
        uint64_t *start = calloc((size_t)R + 2, sizeof *start), *list;
        if (!start) return TAL_ENOMEM;
        for (uint64_t i = 0; i < n; i++) {
            const dentry_t *e = &d->entries[i];
            if (!(e->flags & TAL_DREC_REFERENCE) && e->ref < R) start[e->ref + 2]++;
        }
        for (uint64_t r = 0; r < R; r++) start[r + 2] += start[r + 1];
        if (!(list = malloc((size_t)start[R + 1] * sizeof *list + 8))) {
            free(start);
            return TAL_ENOMEM;
        }
        for (uint64_t i = 0; i < n; i++) {
            const dentry_t *e = &d->entries[i];
            if (!(e->flags & TAL_DREC_REFERENCE) && e->ref < R) list[start[e->ref + 1]++] = i;
        }
        d->member_start = start;
        d->member_list = list;
    }
    *members = d->member_list + d->member_start[k];
    *count = d->member_start[k + 1] - d->member_start[k];
    return 0;
}

int tal_dstore_has_layout(const tal_dstore_t *d) { return d->has_line_layout; }

int tal_dstore_write_fasta(tal_dstore_t *d, uint64_t first, uint64_t count, size_t width, FILE *out)
{
    tal_drec_t rec;
    size_t len;
    int rc, whole = first == 0 && count == d->h->records;
    if (first > d->h->records || count > d->h->records - first) return TAL_ENOTFOUND;
    for (uint64_t i = first; i < first + count; i++) {
        if ((rc = tal_dstore_rebuild(d, i, &d->recbuf, &d->recbuf_cap, &len)) < 0) return rc;
        if ((rc = tal_dstore_record(d, i, &rec)) < 0) return rc;
        if (width == TAL_WIDTH_LAYOUT && d->has_line_layout) {
            rc = tal_layout_write(&d->line_layout, i, rec.header, rec.header_len, d->recbuf, len,
                                  whole, out);
            if (rc == TAL_EINPUT) {
                tal_log_error("%s: record %llu does not fit its line layout; the delta store is "
                              "damaged",
                              d->path, (unsigned long long)i + 1);
                return rc;
            }
        } else {
            rc = tal_fasta_write(out, rec.header, rec.header_len, d->recbuf, len,
                                 width == TAL_WIDTH_LAYOUT ? 0 : width, TAL_FASTA_EMPTY_LINE);
        }
        if (rc < 0) return rc;
    }
    return 0;
}

int tal_dstore_verify(const char *path, const char *fasta)
{
    tal_dstore_t *d = NULL;
    char *buf = NULL;
    size_t cap = 0, len;
    int rc;
    if ((rc = tal_dstore_open(&d, path, fasta, 1)) < 0) goto out;
    for (uint64_t i = 0; i < d->h->records; i++)
        if ((rc = tal_dstore_rebuild(d, i, &buf, &cap, &len)) < 0) goto out;
out:
    free(buf);
    tal_dstore_close(d);
    return rc;
}
