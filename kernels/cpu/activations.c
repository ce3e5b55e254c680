/*
 * activations.c: GELU (the exact normal-CDF form), SiLU and sigmoid, forward and backward.
 *
 *   gelu(x)  = x Phi(x), its derivative in cpu_gelu.h (shared with the
 *              fused linear + GELU of linear_fused.c)
 *   silu(x)  = x s(x),            s(x) = 1 / (1 + exp(-x))
 *   silu'(x) = s(x) (1 + x (1 - s(x)))
 *   s'(x)    = s(x) (1 - s(x))
 *
 * The normal CDF and exp come from cpu_gelu.h and cpu_math.h, so each chunk
 * loop vectorises (glibc's scalar erff would make GELU cost as much as the
 * GEMMs around it).
 * Backward passes accumulate into din. `omp simd` tells gcc that out may be
 * in itself (in place) but never a shifted view of it, so no scalar fallback.
 */
#include "cpu_gelu.h"
#include "cpu_ops.h"
#include "cpu_parallel.h"

static inline float sigmoid(float x) { return 1.0f / (1.0f + cpu_expf(-x)); }

static void gelu_span(float *y, const float *x, int64_t n) { cpu_gelu_span(y, x, n); }

static void gelu_backward_span(float *dx, const float *dy, const float *x, int64_t n)
{
    cpu_gelu_grad_span(dx, dy, x, n, 0);
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
