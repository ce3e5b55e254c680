/*
 * cpu_gelu.h: the exact GELU and its derivative over a span of floats,
 * shared by the GELU op (activations.c) and the fused linear + GELU
 * (linear_fused.c) (internal).
 *
 *   gelu(x)  = x Phi(x),          Phi(x) = (1 + erf(x / sqrt 2)) / 2
 *   gelu'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
 *
 * Phi and phi share one exp (cpu_math.h's, which vectorises): Phi's tail is
 * exp(-x^2/2) times a polynomial in |x|, no erf and no second exp, so a
 * GELU costs about 30 vector operations per 16 floats, not 45. `omp simd`
 * tells gcc that y may be x itself (in place) but never a shifted view of
 * it, so no scalar fallback.
 */
#ifndef DEEDIFF_CPU_GELU_H
#define DEEDIFF_CPU_GELU_H

#include <stdint.h>

#include "cpu_math.h"

#define CPU_INV_SQRT_2PI 0.39894228040143268f
/* S's range: past it Phi(-u) < 2e-8, and the tail decays on through the exp */
#define CPU_NORMAL_TAIL_U 5.5f
/* exp's argument stops here: e^-80 times S stays a normal float (a denormal
   would be slow), and x Phi(x) below x = -12.6 is under 2e-35 either way */
#define CPU_NORMAL_EXP_MIN -80.0f

/* S(u) = Phi(-u) / exp(-u^2/2) = erfcx(u / sqrt 2) / 2 for u in [0, 5.5]:
   a degree-11 polynomial fitted by tests/reference/fit_normal_tail.py,
   which keeps |error| of Phi(-u) under 5.2e-8 in float32 */
static inline float cpu_normal_tail_ratio(float u)
{
    float p = -3.1555501900e-07f;
    p = fmaf(p, u, 7.7090280811e-06f);
    p = fmaf(p, u, -8.4773210117e-05f);
    p = fmaf(p, u, 5.6366378651e-04f);
    p = fmaf(p, u, -2.5901243679e-03f);
    p = fmaf(p, u, 9.0039144628e-03f);
    p = fmaf(p, u, -2.5471902331e-02f);
    p = fmaf(p, u, 6.1924000051e-02f);
    p = fmaf(p, u, -1.3280581909e-01f);
    p = fmaf(p, u, 2.4997258139e-01f);
    p = fmaf(p, u, -3.9894060326e-01f);
    return fmaf(p, u, 4.9999998308e-01f);
}

/* Phi(x), with *e = exp(-x^2/2) (the density times sqrt(2 pi)), from one
   exp: Phi(-|x|) = e S(|x|), and Phi(x) = 1 - Phi(-x) */
static inline float cpu_normal_cdf_e(float x, float *e)
{
    float u = fabsf(x), arg = -0.5f * x * x;
    u = u > CPU_NORMAL_TAIL_U ? CPU_NORMAL_TAIL_U : u;
    arg = arg < CPU_NORMAL_EXP_MIN ? CPU_NORMAL_EXP_MIN : arg;
    *e = cpu_expf(arg);
    float tail = *e * cpu_normal_tail_ratio(u);
    return x < 0.0f ? tail : 1.0f - tail;
}

static inline float cpu_normal_cdf(float x)
{
    float e;
    return cpu_normal_cdf_e(x, &e);
}

/* gelu'(v) = Phi(v) + v phi(v) */
static inline float cpu_gelu_grad(float v)
{
    float e, cdf = cpu_normal_cdf_e(v, &e);
    return fmaf(v * e, CPU_INV_SQRT_2PI, cdf);
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
