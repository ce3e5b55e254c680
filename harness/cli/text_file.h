/*
 * text_file.h: a growing text buffer and its atomic write to a file
 * (temporary file in the same folder, fsync, rename): manifests, tables.
 */
#ifndef DEEDIFF_TEXT_FILE_H
#define DEEDIFF_TEXT_FILE_H

#include <stddef.h>

#include "../../kernels/errors.h"

typedef struct {
    char *data;
    size_t len, cap;
} TextBuf;

void text_init(TextBuf *t);
void text_printf(TextBuf *t, const char *fmt, ...) DD_PRINTF(2, 3);
void text_free(TextBuf *t);
/* -1 + err_msg() naming the path; the destination is untouched on failure */
int text_write_atomic(const TextBuf *t, const char *path);
/* writes any bytes atomically, the same way */
int write_file_atomic(const char *path, const void *data, size_t n);

/* mkdir -p of the folders above path; -1 + err_msg() naming path */
int make_parent_dirs(const char *path);
/* mkdir -p of dir itself; -1 + err_msg() */
int make_dirs(const char *dir);

#endif
