/*
 * cuda_loss.cu: the mean squared error and DeeDiff's uncertainty losses for
 * one exit (ops.h, eqs. 9, 10, 12), forward and backward.
 *
 * Forwards are deterministic sums (cuda_sum: a fixed grid, F64, no atomics)
 * whose F32 results come back to the host, so they wait for the stream.
 * Backwards are elementwise and accumulate. Every tensor is F32 or BF16, in
 * any mix (a BF16 prediction against F32 noise): CudaIn/CudaOut.
 *
 *   mse:   mean (pred - target)^2;  dpred += dloss 2 (pred - target) / n
 *   lu   = mean (u - tanh|g - eps|)^2,  lual = mean (1 - u)(g - eps)^2
 *   dg  += w_ual (1 - u) 2 (g - eps) / n
 *   du  += (w_u 2 (u - tanh|g - eps|) - w_ual_u (g - eps)^2) / n
 */
#include "cuda_ops.h"
#include "cuda_reduce.h"

struct SquaredError {
    CudaIn pred, target;
    __device__ void operator()(int64_t i, double *acc) const
    {
        double d = (double)load_f32(pred, i) - (double)load_f32(target, i);
        acc[0] += d * d;
    }
};

// dpred, pred, target are (n,)
__global__ void mse_backward_kernel(CudaOut dpred, CudaIn pred, CudaIn target, float scale, int64_t n)
{
    CUDA_GRID_STRIDE(i, n)
        add_f32(dpred, i, __fmul_rn(scale, load_f32(pred, i) - load_f32(target, i)));
}

struct UncertaintyTerms {
    CudaIn g, eps, u;
    __device__ void operator()(int64_t i, double *acc) const
    {
        double e = (double)load_f32(g, i) - (double)load_f32(eps, i);
        double uv = load_f32(u, i), du = uv - tanh(fabs(e));
        acc[0] += du * du;
        acc[1] += (1.0 - uv) * e * e;
    }
};

// dg, du (either may be absent), g, eps, u are (n,)
__global__ void uncertainty_backward_kernel(CudaOut dg, CudaOut du, CudaIn g, CudaIn eps, CudaIn u,
                                            float w_u, float w_ual, float w_ual_u, float inv_n,
                                            int64_t n)
{
    CUDA_GRID_STRIDE(i, n) {
        float e = load_f32(g, i) - load_f32(eps, i), uv = load_f32(u, i);
        if (dg.p) add_f32(dg, i, w_ual * (1.0f - uv) * 2.0f * e * inv_n);
        if (du.p) add_f32(du, i, (w_u * 2.0f * (uv - tanhf(fabsf(e))) - w_ual_u * e * e) * inv_n);
    }
}

float cuda_mse_forward(Ctx *ctx, Tensor pred, Tensor target)
{
    const char *op = "mse_forward";
    SquaredError f = {cuda_in(op, pred), cuda_in(op, target)};
    int64_t n = tensor_numel(pred);
    if (n == 0) return 0.0f;
    double sum[1];
    cuda_sum<1>(ctx, ctx_scratch(ctx, cuda_sum_workspace_bytes(1)), n, f, sum);
    return (float)(sum[0] / (double)n);
}

void cuda_mse_backward(Ctx *ctx, Tensor dpred, Tensor pred, Tensor target, float dloss)
{
    const char *op = "mse_backward";
    CudaOut d = cuda_out(op, dpred);
    CudaIn x = cuda_in(op, pred), y = cuda_in(op, target);
    int64_t n = tensor_numel(pred);
    if (n == 0) return;
    float scale = (float)(2.0 * dloss / (double)n);
    CUDA_LAUNCH(ctx, n, mse_backward_kernel, d, x, y, scale, n);
}

UncertaintyLoss cuda_uncertainty_loss_forward(Ctx *ctx, Tensor g, Tensor eps, Tensor u)
{
    const char *op = "uncertainty_loss_forward";
    UncertaintyTerms f = {cuda_in(op, g), cuda_in(op, eps), cuda_in(op, u)};
    int64_t n = tensor_numel(g);
    UncertaintyLoss r = {0, 0};
    if (n == 0) return r;
    double sums[2];
    cuda_sum<2>(ctx, ctx_scratch(ctx, cuda_sum_workspace_bytes(2)), n, f, sums);
    r.lu = (float)(sums[0] / (double)n), r.lual = (float)(sums[1] / (double)n);
    return r;
}

void cuda_uncertainty_loss_backward(Ctx *ctx, Tensor dg, Tensor du, Tensor g, Tensor eps,
                                    Tensor u, float w_u, float w_ual, float w_ual_u)
{
    const char *op = "uncertainty_loss_backward";
    CudaOut dgo = cuda_out(op, dg), duo = cuda_out(op, du);
    CudaIn gi = cuda_in(op, g), ei = cuda_in(op, eps), ui = cuda_in(op, u);
    int64_t n = tensor_numel(g);
    if (n == 0 || !(dgo.p || duo.p)) return;
    float inv_n = (float)(1.0 / (double)n);
    CUDA_LAUNCH(ctx, n, uncertainty_backward_kernel, dgo, duo, gi, ei, ui, w_u, w_ual, w_ual_u, inv_n, n);
}
