/*
 * float_buffers.h: host float arrays for tests (test support): random
 * uniform fills and zeros, never NULL (a zero-length array still gets one
 * float, so tests may free it); the test fails if memory runs out.
 */
#ifndef DEEDIFF_TEST_FLOAT_BUFFERS_H
#define DEEDIFF_TEST_FLOAT_BUFFERS_H

#include <stdint.h>

/* x[n] uniform in [lo, hi) from seed (fill_uniform); free() it */
float *fvec(int64_t n, float lo, float hi, uint64_t seed);
/* x[n] = 0; free() it */
float *fzeros(int64_t n);

#endif
