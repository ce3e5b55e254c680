/*
 * gradcheck.h: finite-difference checks of backward passes (test support).
 *
 * The scalar under test is L = sum_i out[i] * r[i] for a fixed random r, so
 * dL/dout = r. A test runs the op's backward with dout = r to get analytic
 * gradients, then gradcheck() perturbs inputs one element at a time
 * (central differences in float, accumulated in double) and compares.
 */
#ifndef DEEDIFF_TEST_GRADCHECK_H
#define DEEDIFF_TEST_GRADCHECK_H

#include <stdint.h>

/* recomputes the op's output from its (perturbed) inputs */
typedef void (*gradcheck_forward_fn)(void *user);

typedef struct {
    float *out;        /* the op's output, rewritten by forward */
    int64_t nout;
    const float *r;    /* dL/dout */
    gradcheck_forward_fn forward;
    void *user;
} GradCheck;

/* L = sum(out * r) after a forward pass, in double */
double gradcheck_loss(const GradCheck *g);

/* perturbs up to max_probes evenly spread elements of x[n] by +-eps and
   returns the largest |numeric - analytic| / max(1, |numeric|, |analytic|)
   (an absolute error for small gradients, relative for large ones); in the
   sanitizer build at most 2 probes (gradcheck.c says why) */
double gradcheck_max_error(const GradCheck *g, float *x, int64_t n,
                           const float *analytic, float eps, int max_probes);

/* fills x[n] with uniform values in [lo, hi) from a fixed seed */
void fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed);

/* a new buffer of n floats (at least one): uniform in [lo, hi) from
   *seed, which then advances (each call draws fresh values); or all v.
   The caller frees it. */
float *new_uniform(int64_t n, float lo, float hi, uint64_t *seed);
float *new_filled(int64_t n, float v);

/* relative L2 error ||a - b|| / max(||b||, 1e-30), in double */
double rel_l2(const float *a, const float *b, int64_t n);

#endif
