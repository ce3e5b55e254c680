/*
 * errors.h: how failures are reported, at every layer.
 *
 * Two kinds of failure exist and they never mix:
 *   - bad input (a file, a field, a flag the user gave): the function that
 *     finds it records one line with err_set() and returns -1; the command
 *     prints err_msg() and exits with status 2 (EXIT_BAD_INPUT). Nothing is
 *     half-written: writers use a temporary file and rename.
 *   - a broken invariant inside the program (a shape mismatch between two
 *     ops, an out-of-memory, a failed CUDA call): FATAL() prints file:line and
 *     what to do, then aborts. These are bugs or resource limits, not input.
 *
 * The error message is thread-local, like errno, so OpenMP workers and tests
 * do not trample each other. Format: "<file>: <field>: <what is wrong>".
 */
#ifndef DEEDIFF_ERRORS_H
#define DEEDIFF_ERRORS_H

#include <stdio.h>
#include <stdlib.h>

#define EXIT_BAD_INPUT 2

#if defined(__GNUC__)
#define DD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define DD_NORETURN __attribute__((noreturn))
#else
#define DD_PRINTF(a, b)
#define DD_NORETURN
#endif

/* records the current error (one line, no trailing newline); returns -1 */
int err_set(const char *fmt, ...) DD_PRINTF(1, 2);
/* the last recorded error of this thread ("" when none) */
const char *err_msg(void);
void err_clear(void);

/* prints "deediff: <err_msg()>" and exits with status 2 */
DD_NORETURN void err_exit_bad_input(void);

/* internal failure: prints "file:line: message" and aborts */
DD_NORETURN void fatal_at(const char *file, int line, const char *fmt, ...) DD_PRINTF(3, 4);
#define FATAL(...) fatal_at(__FILE__, __LINE__, __VA_ARGS__)
#define CHECK(cond, ...) do { if (!(cond)) fatal_at(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* allocation that never returns NULL (FATAL on failure) */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

#endif
