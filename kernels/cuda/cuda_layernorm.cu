/*
 * cuda_layernorm.cu: LayerNorm over the last dimension, forward.
 *
 * One warp per row: in[M,C] is read once for the mean and again (from L1/L2)
 * for the variance, two passes as on the CPU, so a large mean does not eat
 * the variance's precision. Statistics and arithmetic are F32 whatever the
 * activation dtype; w[C], b[C], mean[M] and rstd[M] are F32.
 */
#include "cuda_common.h"

#define LN_WARPS 8 /* rows per block */

template <typename T>
__global__ void layernorm_forward_kernel(T *out, float *mean, float *rstd, const T *in,
                                         const float *w, const float *b, float eps,
                                         int64_t M, int C)
{
    int lane = threadIdx.x % 32;
    int64_t row = (int64_t)blockIdx.x * LN_WARPS + threadIdx.x / 32;
    if (row >= M) return;
    const T *x = in + row * C;  // x is (C,)
    T *y = out + row * C;       // y is (C,)

    float sum = 0.0f;
    for (int i = lane; i < C; i += 32) sum += load_f32(x, i);
    float m = warp_sum(sum) / (float)C;
    float sq = 0.0f;
    for (int i = lane; i < C; i += 32) {
        float d = load_f32(x, i) - m;
        sq += d * d;
    }
    float s = 1.0f / sqrtf(warp_sum(sq) / (float)C + eps);
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = s;
    }
    for (int i = lane; i < C; i += 32) store_f32(y, i, (load_f32(x, i) - m) * s * w[i] + b[i]);
}

template <typename T>
static void launch(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor w,
                   Tensor b, float eps)
{
    int64_t M = tensor_rows(in);
    int C = (int)tensor_cols(in);
    unsigned blocks = (unsigned)((M + LN_WARPS - 1) / LN_WARPS);
    layernorm_forward_kernel<T><<<blocks, LN_WARPS * 32, 0, cuda_stream(ctx)>>>(
        (T *)out.data, (float *)mean.data, (float *)rstd.data, (const T *)in.data,
        (const float *)w.data, (const float *)b.data, eps, M, C);
    cudaCheck(cudaGetLastError());
}

void cuda_layernorm_forward(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd, Tensor in,
                            Tensor w, Tensor b, float eps)
{
    const char *op = "layernorm_forward";
    DType act = cuda_act_dtype(op, in);
    cuda_same_dtype(op, out, in);
    cuda_need_f32(op, "w", w);
    cuda_need_f32(op, "b", b);
    if (tensor_present(mean)) cuda_need_f32(op, "mean", mean);
    if (tensor_present(rstd)) cuda_need_f32(op, "rstd", rstd);
    if (tensor_rows(in) == 0) return;
    if (act == DT_F32) launch<float>(ctx, out, mean, rstd, in, w, b, eps);
    else launch<__nv_bfloat16>(ctx, out, mean, rstd, in, w, b, eps);
}
