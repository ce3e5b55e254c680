/*
 * activations.c: GELU (exact erf form) and SiLU, forward and backward.
 *
 *   gelu(x)  = x Phi(x),          Phi(x) = (1 + erf(x / sqrt 2)) / 2
 *   gelu'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
 *   silu(x)  = x s(x),            s(x) = 1 / (1 + exp(-x))
 *   silu'(x) = s(x) (1 + x (1 - s(x)))
 *   s'(x)    = s(x) (1 - s(x))
 *
 * erf and exp come from cpu_math.h, so each chunk loop vectorises (glibc's
 * scalar erff would make GELU cost as much as the GEMMs around it).
 * Backward passes accumulate into din. `omp simd` tells gcc that out may be
 * in itself (in place) but never a shifted view of it, so no scalar fallback.
 */
#include "cpu_math.h"
#include "cpu_ops.h"
#include "cpu_parallel.h"

#define SQRT1_2 0.70710678118654752f
#define LN_SQRT_2PI 0.91893853320467274f

static inline float normal_cdf(float x) { return 0.5f + 0.5f * cpu_erff(x * SQRT1_2); }
static inline float sigmoid(float x) { return 1.0f / (1.0f + cpu_expf(-x)); }

static void gelu_span(float *y, const float *x, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * normal_cdf(x[i]);
}

static void gelu_backward_span(float *dx, const float *dy, const float *x, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        /* phi(v) = exp(-v^2/2 - ln sqrt(2 pi)): the constant inside the exp
           keeps the result a normal float (a denormal would be slow) */
        float pdf = cpu_expf(fmaf(-0.5f * v, v, -LN_SQRT_2PI));
        dx[i] += dy[i] * (normal_cdf(v) + v * pdf);
    }
}

static void silu_span(float *y, const float *x, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * sigmoid(x[i]);
}

static void silu_backward_span(float *dx, const float *dy, const float *x, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float s = sigmoid(x[i]);
        dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

void cpu_gelu_forward(Ctx *ctx, Tensor out, Tensor in) { cpu_run_unary(ctx, gelu_span, out, in); }
void cpu_gelu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in)
{
    cpu_run_backward(ctx, gelu_backward_span, din, dout, in);
}
void cpu_silu_forward(Ctx *ctx, Tensor out, Tensor in) { cpu_run_unary(ctx, silu_span, out, in); }
void cpu_silu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in)
{
    cpu_run_backward(ctx, silu_backward_span, din, dout, in);
}

static void sigmoid_span(float *y, const float *x, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = sigmoid(x[i]);
}

static void sigmoid_backward_span(float *dx, const float *dy, const float *x, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float s = sigmoid(x[i]);
        dx[i] += dy[i] * s * (1.0f - s);
    }
}

void cpu_sigmoid_forward(Ctx *ctx, Tensor out, Tensor in) { cpu_run_unary(ctx, sigmoid_span, out, in); }
void cpu_sigmoid_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in)
{
    cpu_run_backward(ctx, sigmoid_backward_span, din, dout, in);
}
