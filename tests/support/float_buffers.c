/*
 * float_buffers.c: host float arrays for tests (see float_buffers.h).
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "float_buffers.h"
#include "gradcheck.h"

float *fvec(int64_t n, float lo, float hi, uint64_t seed)
{
    float *x = malloc((size_t)(n ? n : 1) * sizeof(float));
    cr_assert(x);
    fill_uniform(x, n, lo, hi, seed);
    return x;
}

float *fzeros(int64_t n)
{
    float *x = calloc((size_t)(n ? n : 1), sizeof(float));
    cr_assert(x);
    return x;
}
