/* The main() of a fuzz harness built without libFuzzer: replays the files and directories
 * (their files, recursively) named on the command line through LLVMFuzzerTestOneInput and
 * says how many, or, with no arguments, the harness's own built-in inputs (run_builtin,
 * which returns how many it ran). */
#ifndef TAL_FUZZ_REPLAY_H
#define TAL_FUZZ_REPLAY_H

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline int replay_file(const char *prog, const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, n;
    if (!fp) {
        fprintf(stderr, "%s: cannot open %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap);
            if (!buf) abort();
        }
        n = fread(buf + len, 1, cap - len, fp);
        if (n == 0) break;
        len += n;
    }
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

/* Replays path, or every file under it; adds the files replayed to *count. */
static inline int replay_path(const char *prog, const char *path, int *count)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        int rc = 0;
        if (!d) {
            fprintf(stderr, "%s: cannot open %s: %s\n", prog, path, strerror(errno));
            return -1;
        }
        while ((e = readdir(d)) != NULL) {
            char sub[PATH_MAX];
            if (e->d_name[0] == '.') continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            if (replay_path(prog, sub, count) < 0) rc = -1;
        }
        closedir(d);
        return rc;
    }
    if (replay_file(prog, path) < 0) return -1;
    (*count)++;
    return 0;
}

static inline int replay_main(const char *prog, int argc, char **argv, int (*run_builtin)(void))
{
    int rc = 0, count = 0;
    if (argc < 2) {
        printf("%s: %d built-in inputs ok\n", prog, run_builtin());
        return 0;
    }
    for (int i = 1; i < argc; i++)
        if (replay_path(prog, argv[i], &count) < 0) rc = 1;
    printf("%s: %d files replayed\n", prog, count);
    return rc;
}

#endif
