/*
 * errors.c: the thread-local error line, FATAL, and checked allocation.
 */
#include <stdarg.h>
#include <string.h>

#include "errors.h"

static _Thread_local char err_line[1024];

int err_set(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_line, sizeof err_line, fmt, ap);
    va_end(ap);
    /* one line: a newline inside a message (from a file name, say) becomes a space */
    for (char *c = err_line; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    return -1;
}

const char *err_msg(void) { return err_line; }
void err_clear(void) { err_line[0] = 0; }

void err_exit_bad_input(void)
{
    fprintf(stderr, "deediff: %s\n", err_line[0] ? err_line : "bad input");
    exit(EXIT_BAD_INPUT);
}

void fatal_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "deediff: internal error at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) FATAL("out of memory allocating %zu bytes", n);
    return p;
}
void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) FATAL("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}
void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) FATAL("out of memory reallocating %zu bytes", n);
    return p;
}
char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}
