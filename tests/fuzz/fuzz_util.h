/*
 * fuzz_util.h: what the libFuzzer targets share: the input written to a file
 * in a private temporary folder (for readers that take a path or a folder),
 * and the check every rejection must pass (one line, naming the file).
 * Header-only; every function is static inline.
 */
#ifndef DEEDIFF_FUZZ_UTIL_H
#define DEEDIFF_FUZZ_UTIL_H

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/errors.h"

/* this process's temporary folder (made on first use, reused after) */
static inline const char *fuzz_tmp_dir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/deediff-fuzz-XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
    }
    return dir;
}

/* path of `name` inside the temporary folder, into path[cap] */
static inline const char *fuzz_tmp_path(const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", fuzz_tmp_dir(), name);
    return path;
}

/* writes data[size] to the temporary folder as `name`; returns its path */
static inline const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size,
                                          char *path, size_t cap)
{
    fuzz_tmp_path(name, path, cap);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

/* removes `name` from the temporary folder if it is there */
static inline void fuzz_remove_file(const char *name)
{
    char path[512];
    unlink(fuzz_tmp_path(name, path, sizeof path));
}

/* a rejection: err_msg() is one line that starts with `prefix` */
static inline void fuzz_check_error(const char *prefix)
{
    const char *msg = err_msg();
    if (strncmp(msg, prefix, strlen(prefix)) != 0 || strchr(msg, '\n') != NULL) {
        fprintf(stderr, "fuzz: bad error message (expected to start with '%s'): %s\n", prefix, msg);
        abort();
    }
}

#endif
