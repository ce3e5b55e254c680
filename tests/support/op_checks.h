/*
 * op_checks.h: the checks op tests share (test support): outputs against a
 * double-precision reference, and backward passes that must add into their
 * gradient buffers rather than overwrite them.
 */
#ifndef DEEDIFF_TEST_OP_CHECKS_H
#define DEEDIFF_TEST_OP_CHECKS_H

#include <stdint.h>

/* every |got[i] - want[i]| <= tol (1 + |want[i]|); the test fails naming what[i] */
void expect_close(const char *what, const float *got, const double *want, int64_t n, double tol);

/* a backward into one gradient buffer of n floats */
typedef void (*backward_into)(void *user, float *grad);

/* runs bw on zeros (fresh) and on pre-filled random values (after): a
   backward that adds gives after = pre + fresh (to 1e-5 relative) */
void expect_accumulates(const char *what, backward_into bw, void *user, int64_t n);

#endif
