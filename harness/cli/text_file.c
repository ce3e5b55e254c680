/*
 * text_file.c: TextBuf and atomic file writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "text_file.h"

void text_init(TextBuf *t)
{
    t->cap = 256;
    t->len = 0;
    t->data = xmalloc(t->cap);
    t->data[0] = 0;
}

void text_printf(TextBuf *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        CHECK(n >= 0, "text_printf: bad format");
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = 2 * (t->cap + (size_t)n);
        t->data = xrealloc(t->data, t->cap);
    }
}

void text_free(TextBuf *t)
{
    free(t->data);
    t->data = NULL;
    t->len = t->cap = 0;
}

int write_file_atomic(const char *path, const void *data, size_t n)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return err_set("%s: cannot write: %s", path, strerror(errno));
    const char *p = data;
    size_t left = n;
    int ok = 1;
    while (ok && left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        ok = w > 0;
        if (ok) p += w, left -= (size_t)w;
    }
    int saved = errno;
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        saved = errno ? errno : saved;
        unlink(tmp);
        return err_set("%s: cannot write: %s", path, strerror(saved ? saved : EIO));
    }
    return 0;
}

int text_write_atomic(const TextBuf *t, const char *path) { return write_file_atomic(path, t->data, t->len); }

/* mkdir -p of the folders above path */
int make_parent_dirs(const char *path)
{
    char *dir = xstrdup(path);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(dir, 0777) && errno != EEXIST) {
            err_set("%s: cannot create folder %s: %s", path, dir, strerror(errno));
            free(dir);
            return -1;
        }
        *p = '/';
    }
    free(dir);
    return 0;
}

int make_dirs(const char *dir)
{
    size_t n = strlen(dir);
    char *path = xmalloc(n + 2);
    memcpy(path, dir, n);
    strcpy(path + n, "/");
    int rc = make_parent_dirs(path);
    free(path);
    return rc;
}
