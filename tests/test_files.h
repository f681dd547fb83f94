/* File helpers the cmocka unit tests share: write, read, copy and patch files, and join
 * paths. They assert on failure, so include cmocka.h first. Test code only. */
#ifndef TAL_TEST_FILES_H
#define TAL_TEST_FILES_H

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* DIR/NAME in one of eight rotating buffers, so several can be live at once. */
static inline const char *tal_test_join(const char *dir, const char *name)
{
    static char bufs[8][PATH_MAX + 64];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, PATH_MAX + 64, "%s/%s", dir, name);
    return b;
}

static inline void tal_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (len) assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* The whole file, malloc'd (at least one byte, so an empty file is not NULL). */
static inline void *tal_test_read_file(const char *path, size_t *size)
{
    struct stat st;
    char *buf;
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fstat(fileno(fp), &st), 0);
    *size = (size_t)st.st_size;
    buf = malloc(*size ? *size : 1);
    assert_non_null(buf);
    if (*size) assert_int_equal(fread(buf, 1, *size, fp), *size);
    fclose(fp);
    return buf;
}

static inline void tal_test_copy_file(const char *from, const char *to)
{
    char buf[65536];
    size_t n;
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static inline void tal_test_patch(const char *path, uint64_t off, const void *bytes, size_t len)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, len, (off_t)off), (ssize_t)len);
    close(fd);
}

/* Inverts every bit of one byte. */
static inline void tal_test_flip_byte(const char *path, uint64_t off)
{
    unsigned char c;
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    c ^= 0xff;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

#endif
