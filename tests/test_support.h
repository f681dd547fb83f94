/* Helpers every test program shares: a private temporary directory under $TMPDIR
 * (P_tmpdir when unset) and its recursive removal. Test code only. */
#ifndef TAL_TEST_SUPPORT_H
#define TAL_TEST_SUPPORT_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Makes DIR/talaria-TAG-XXXXXX; returns 0, or -1 with errno set. */
static inline int tal_test_mkdtemp(char *dir, size_t size, const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, size, "%s/talaria-%s-XXXXXX", tmp && *tmp ? tmp : P_tmpdir, tag);
    return mkdtemp(dir) ? 0 : -1;
}

static inline int tal_test_rm_entry(const char *path, const struct stat *st, int flag,
                                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void tal_test_rm_rf(const char *path)
{
    nftw(path, tal_test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
