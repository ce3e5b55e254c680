/*
 * optim.c: optimizer updates on the CPU: AdamW, the EMA of the weights, and
 * the reductions a training step needs (sum of squares for the global
 * gradient norm, a NaN/Inf check) plus the in-place scale for clipping.
 *
 * The element arithmetic follows PyTorch's order of F32 operations (see
 * kernels/ops.h); scalars are formed in double and rounded to F32 once.
 * Loops run over fixed chunks of CPU_CHUNK floats, so the sum of squares is
 * the same whatever the thread count: chunk partials (double) are added in
 * chunk order. This file must not be built with -ffast-math (the NaN check
 * also tests exponent bits directly, so it holds even then); the Makefile
 * gives it -fno-math-errno, without which GCC will not vectorise sqrtf.
 */
#include <math.h>
#include <string.h>

#include "../errors.h"
#include "cpu_ops.h"
#include "cpu_parallel.h"

#define CHUNK_LO(c) ((c) * CPU_CHUNK)
#define CHUNK_HI(c, n) ((n) - CHUNK_LO(c) < CPU_CHUNK ? (n) : CHUNK_LO(c) + CPU_CHUNK)

void cpu_adamw_step(Ctx *ctx, Tensor params, Tensor grads, Tensor m, Tensor v, AdamWParams p)
{
    // params, grads, m, v are flat [n]
    int64_t n = tensor_numel(params);
    float *w = tensor_f32(params), *mo = tensor_f32(m), *ve = tensor_f32(v);
    const float *g = tensor_f32(grads);
    double bias_correction1 = 1.0 - pow(p.beta1, (double)p.step);
    double bias_correction2 = 1.0 - pow(p.beta2, (double)p.step);
    const float decay_scale = (float)(1.0 - p.lr * p.weight_decay);
    const float beta1 = (float)p.beta1, one_minus_beta1 = (float)(1.0 - p.beta1);
    const float beta2 = (float)p.beta2, one_minus_beta2 = (float)(1.0 - p.beta2);
    const float bc2_sqrt = (float)sqrt(bias_correction2);
    const float eps = (float)p.eps;
    const float neg_step_size = (float)(-(p.lr / bias_correction1));
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < cpu_chunks(n); c++) {
        int64_t hi = CHUNK_HI(c, n);
        #pragma omp simd
        for (int64_t i = CHUNK_LO(c); i < hi; i++) {
            float gi = g[i];
            float wi = w[i] * decay_scale;
            /* m.mul_(beta1).add_(g, alpha=1-beta1): PyTorch's vectorised add is an fma */
            float mi = fmaf(gi, one_minus_beta1, mo[i] * beta1);
            float vi = ve[i] * beta2 + one_minus_beta2 * gi * gi;
            float denom = sqrtf(vi) / bc2_sqrt + eps;
            mo[i] = mi;
            ve[i] = vi;
            w[i] = wi + neg_step_size * mi / denom;
        }
    }
}

void cpu_ema_update(Ctx *ctx, Tensor ema, Tensor params, double decay)
{
    // ema, params are flat [n]
    int64_t n = tensor_numel(ema);
    float *e = tensor_f32(ema);
    const float *w = tensor_f32(params);
    const float rate = (float)decay, one_minus_rate = (float)(1.0 - decay);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < cpu_chunks(n); c++) {
        int64_t hi = CHUNK_HI(c, n);
        #pragma omp simd
        for (int64_t i = CHUNK_LO(c); i < hi; i++) e[i] = e[i] * rate + one_minus_rate * w[i];
    }
}

double cpu_sum_squares(Ctx *ctx, Tensor x)
{
    int64_t n = tensor_numel(x), chunks = cpu_chunks(n);
    if (!n) return 0.0;
    const float *a = tensor_f32(x);
    double *partial = xmalloc((size_t)chunks * sizeof *partial);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t hi = CHUNK_HI(c, n);
        double acc = 0.0;
        #pragma omp simd reduction(+ : acc)
        for (int64_t i = CHUNK_LO(c); i < hi; i++) acc += (double)a[i] * a[i];
        partial[c] = acc;
    }
    double sum = 0.0;
    for (int64_t c = 0; c < chunks; c++) sum += partial[c];
    free(partial);
    return sum;
}

void cpu_scale(Ctx *ctx, Tensor x, float s)
{
    int64_t n = tensor_numel(x);
    float *a = tensor_f32(x);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < cpu_chunks(n); c++) {
        int64_t hi = CHUNK_HI(c, n);
        #pragma omp simd
        for (int64_t i = CHUNK_LO(c); i < hi; i++) a[i] *= s;
    }
}

int cpu_has_nonfinite(Ctx *ctx, Tensor x)
{
    // a float is NaN or Inf exactly when its 8 exponent bits are all ones
    int64_t n = tensor_numel(x);
    const float *a = tensor_f32(x);
    int found = 0;
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) reduction(| : found) schedule(static)
    for (int64_t c = 0; c < cpu_chunks(n); c++) {
        int64_t hi = CHUNK_HI(c, n);
        int any = 0;
        #pragma omp simd reduction(| : any)
        for (int64_t i = CHUNK_LO(c); i < hi; i++) {
            uint32_t bits;
            memcpy(&bits, &a[i], sizeof bits);
            any |= (bits & 0x7f800000u) == 0x7f800000u;
        }
        found |= any;
    }
    return found;
}
