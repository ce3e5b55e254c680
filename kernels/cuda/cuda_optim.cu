/*
 * cuda_optim.cu: optimizer updates on the GPU over flat F32 buffers: fused
 * AdamW (one pass reads p, g, m, v and writes p, m, v), the EMA of the
 * weights, the in-place scale for clipping, and the reductions a training
 * step needs (sum of squares for the gradient norm, a NaN/Inf check).
 *
 * Bit-for-bit the CPU's arithmetic (kernels/cpu/optim.c): the scalars are
 * formed on the host in double exactly as there, and every F32 operation is
 * spelled with a round-to-nearest intrinsic (__fmul_rn, __fadd_rn, ...) so
 * nvcc fuses nothing the CPU does not fuse; the one fma is the CPU's own
 * fmaf. So an AdamW step on the GPU leaves the same weights as on the CPU.
 * The reductions are cuda_sum (fixed order, F64): the same value every run.
 */
#include <math.h>

#include "cuda_ops.h"
#include "cuda_reduce.h"

typedef struct {
    float decay_scale, beta1, one_minus_beta1, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size;
} AdamWScalars;

// w, g, m, v are (n,)
__global__ void adamw_kernel(float *w, const float *g, float *m, float *v, AdamWScalars s, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) {
        float gi = g[i];
        float wi = __fmul_rn(w[i], s.decay_scale);
        float mi = fmaf(gi, s.one_minus_beta1, __fmul_rn(m[i], s.beta1));
        float vi = __fadd_rn(__fmul_rn(v[i], s.beta2), __fmul_rn(__fmul_rn(s.one_minus_beta2, gi), gi));
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), s.bc2_sqrt), s.eps);
        m[i] = mi;
        v[i] = vi;
        w[i] = __fadd_rn(wi, __fdiv_rn(__fmul_rn(s.neg_step_size, mi), denom));
    }
}

// e, w are (n,)
__global__ void ema_kernel(float *e, const float *w, float rate, float one_minus_rate, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) e[i] = __fadd_rn(__fmul_rn(e[i], rate), __fmul_rn(one_minus_rate, w[i]));
}

// x is (n,)
__global__ void scale_kernel(float *x, float s, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) x[i] = __fmul_rn(x[i], s);
}

struct SumSquares {
    const float *x;
    __device__ void operator()(int64_t i, double *acc) const { acc[0] += (double)x[i] * x[i]; }
};

/* counts the elements whose exponent bits are all ones (NaN or +-Inf) */
struct NonFinite {
    const float *x;
    __device__ void operator()(int64_t i, double *acc) const
    {
        acc[0] += (__float_as_uint(x[i]) & 0x7f800000u) == 0x7f800000u;
    }
};

void cuda_adamw_step(Ctx *ctx, Tensor params, Tensor grads, Tensor m, Tensor v, AdamWParams p)
{
    int64_t n = tensor_numel(params);
    if (n == 0) return;
    double bias_correction1 = 1.0 - pow(p.beta1, (double)p.step);
    double bias_correction2 = 1.0 - pow(p.beta2, (double)p.step);
    AdamWScalars s;
    s.decay_scale = (float)(1.0 - p.lr * p.weight_decay);
    s.beta1 = (float)p.beta1, s.one_minus_beta1 = (float)(1.0 - p.beta1);
    s.beta2 = (float)p.beta2, s.one_minus_beta2 = (float)(1.0 - p.beta2);
    s.bc2_sqrt = (float)sqrt(bias_correction2);
    s.eps = (float)p.eps;
    s.neg_step_size = (float)(-(p.lr / bias_correction1));
    CUDA_LAUNCH(ctx, n, adamw_kernel, (float *)params.data, (const float *)grads.data, (float *)m.data,
                (float *)v.data, s, n);
}

void cuda_ema_update(Ctx *ctx, Tensor ema, Tensor params, double decay)
{
    int64_t n = tensor_numel(ema);
    if (n == 0) return;
    CUDA_LAUNCH(ctx, n, ema_kernel, (float *)ema.data, (const float *)params.data, (float)decay,
                (float)(1.0 - decay), n);
}

double cuda_sum_squares(Ctx *ctx, Tensor x)
{
    double sum[1];
    cuda_sum<1>(ctx, ctx_scratch(ctx, cuda_sum_workspace_bytes(1)), tensor_numel(x),
                SumSquares{(const float *)x.data}, sum);
    return sum[0];
}

void cuda_scale(Ctx *ctx, Tensor x, float s)
{
    int64_t n = tensor_numel(x);
    if (n == 0) return;
    CUDA_LAUNCH(ctx, n, scale_kernel, (float *)x.data, s, n);
}

int cuda_has_nonfinite(Ctx *ctx, Tensor x)
{
    double count[1];
    cuda_sum<1>(ctx, ctx_scratch(ctx, cuda_sum_workspace_bytes(1)), tensor_numel(x),
                NonFinite{(const float *)x.data}, count);
    return count[0] > 0.0;
}
