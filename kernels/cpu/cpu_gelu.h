/*
 * cpu_gelu.h: the exact GELU and its derivative over a span of floats,
 * shared by the GELU op (activations.c) and the fused linear + GELU
 * (linear_gelu.c) (internal).
 *
 *   gelu(x)  = x Phi(x),          Phi(x) = (1 + erf(x / sqrt 2)) / 2
 *   gelu'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
 *
 * erf and exp come from cpu_math.h, so the loops vectorise. `omp simd`
 * tells gcc that y may be x itself (in place) but never a shifted view of
 * it, so no scalar fallback.
 */
#ifndef DEEDIFF_CPU_GELU_H
#define DEEDIFF_CPU_GELU_H

#include <stdint.h>

#include "cpu_math.h"

#define CPU_SQRT1_2 0.70710678118654752f
#define CPU_LN_SQRT_2PI 0.91893853320467274f

static inline float cpu_normal_cdf(float x) { return 0.5f + 0.5f * cpu_erff(x * CPU_SQRT1_2); }

/* gelu'(v) */
static inline float cpu_gelu_grad(float v)
{
    /* phi(v) = exp(-v^2/2 - ln sqrt(2 pi)): the constant inside the exp
       keeps the result a normal float (a denormal would be slow) */
    float pdf = cpu_expf(fmaf(-0.5f * v, v, -CPU_LN_SQRT_2PI));
    return cpu_normal_cdf(v) + v * pdf;
}

/* y[n] = gelu(x[n]); y may be x */
static inline void cpu_gelu_span(float *y, const float *x, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * cpu_normal_cdf(x[i]);
}

/* dx[n] += dy gelu'(x), or (set) dx[n] = dy gelu'(x) */
static inline void cpu_gelu_grad_span(float *dx, const float *dy, const float *x, int64_t n, int set)
{
    if (set) {
        #pragma omp simd
        for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * cpu_gelu_grad(x[i]);
    } else {
        #pragma omp simd
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * cpu_gelu_grad(x[i]);
    }
}

#endif
