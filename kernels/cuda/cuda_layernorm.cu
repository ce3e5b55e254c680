/*
 * cuda_layernorm.cu: LayerNorm over the last dimension, forward and backward.
 *
 *   forward:  n = (x - mean) * rstd,  out = n * w + b
 *   backward: g = dout * w
 *             din += rstd * (g - mean(g) - n * mean(g * n))
 *             dw  += sum over rows of dout * n,  db += sum over rows of dout
 *
 * One warp per row for everything per row: in[M,C] is read once for the
 * mean and again (from L1/L2) for the variance, two passes as on the CPU, so
 * a large mean does not eat the variance's precision. dw and db sum over
 * rows: cuda_colsum (a fixed order, no atomics, so the same bits every run).
 * Statistics and arithmetic are F32 whatever the activations' dtype; in, out,
 * dout and din are F32 or BF16 (CudaIn/CudaOut, any mix); w[C], b[C],
 * mean[M], rstd[M], dw and db are F32.
 */
#include "cuda_ops.h"
#include "cuda_reduce.h"

#define LN_WARPS 8 /* rows per block */

// in, out are (M, C); mean, rstd are (M,) or NULL; w, b are (C,)
__global__ void layernorm_forward_kernel(CudaOut out, float *mean, float *rstd, CudaIn in,
                                         const float *w, const float *b, float eps, int64_t M,
                                         int64_t C)
{
    int lane = threadIdx.x % 32;
    int64_t row = (int64_t)blockIdx.x * LN_WARPS + threadIdx.x / 32;
    if (row >= M) return;
    int64_t base = row * C;  // the row is elements base .. base + C - 1

    float sum = 0.0f;
    for (int64_t i = lane; i < C; i += 32) sum += load_f32(in, base + i);
    float m = warp_sum(sum) / (float)C;
    float sq = 0.0f;
    for (int64_t i = lane; i < C; i += 32) {
        float d = load_f32(in, base + i) - m;
        sq += d * d;
    }
    float s = 1.0f / sqrtf(warp_sum(sq) / (float)C + eps);
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = s;
    }
    for (int64_t i = lane; i < C; i += 32)
        store_f32(out, base + i, (load_f32(in, base + i) - m) * s * w[i] + b[i]);
}

// din, dout, in are (M, C); w is (C,); mean, rstd are (M,)
__global__ void layernorm_din_kernel(CudaOut din, CudaIn dout, CudaIn in, const float *w,
                                     const float *mean, const float *rstd, int64_t M, int64_t C)
{
    int lane = threadIdx.x % 32;
    int64_t row = (int64_t)blockIdx.x * LN_WARPS + threadIdx.x / 32;
    if (row >= M) return;
    int64_t base = row * C;
    float mv = mean[row], r = rstd[row];
    float gsum = 0.0f, gnsum = 0.0f;
    for (int64_t i = lane; i < C; i += 32) {
        float gw = load_f32(dout, base + i) * w[i], n = (load_f32(in, base + i) - mv) * r;
        gsum += gw;
        gnsum += gw * n;
    }
    float gmean = warp_sum(gsum) / (float)C, gnmean = warp_sum(gnsum) / (float)C;
    for (int64_t i = lane; i < C; i += 32) {
        float n = (load_f32(in, base + i) - mv) * r;
        add_f32(din, base + i, r * (load_f32(dout, base + i) * w[i] - gmean - n * gnmean));
    }
}

/* value 0: dout * n (for dw), value 1: dout (for db), of element (m, c) */
struct LayerNormParamGrads {
    CudaIn dout, in;
    const float *mean, *rstd;
    int64_t C;
    __device__ float operator()(int64_t m, int64_t c, int v) const
    {
        float g = load_f32(dout, m * C + c);
        return v == 0 ? g * (load_f32(in, m * C + c) - mean[m]) * rstd[m] : g;
    }
};

static unsigned row_blocks(int64_t M) { return (unsigned)((M + LN_WARPS - 1) / LN_WARPS); }

void cuda_layernorm_forward(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd, Tensor in,
                            Tensor w, Tensor b, float eps)
{
    const char *op = "layernorm_forward";
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, in);
    cuda_need_f32(op, "w", w);
    cuda_need_f32(op, "b", b);
    if (tensor_present(mean)) cuda_need_f32(op, "mean", mean);
    if (tensor_present(rstd)) cuda_need_f32(op, "rstd", rstd);
    int64_t M = tensor_rows(in), C = tensor_cols(in);
    if (M == 0) return;
    layernorm_forward_kernel<<<row_blocks(M), LN_WARPS * 32, 0, cuda_stream(ctx)>>>(
        o, (float *)mean.data, (float *)rstd.data, x, (const float *)w.data,
        (const float *)b.data, eps, M, C);
    cudaCheck(cudaGetLastError());
}

void cuda_layernorm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout,
                             Tensor in, Tensor w, Tensor mean, Tensor rstd)
{
    const char *op = "layernorm_backward";
    CudaIn g = cuda_in(op, dout), x = cuda_in(op, in);
    cuda_need_f32(op, "w", w);
    cuda_need_f32(op, "mean", mean);
    cuda_need_f32(op, "rstd", rstd);
    if (tensor_present(dw)) cuda_need_f32(op, "dw", dw);
    if (tensor_present(db)) cuda_need_f32(op, "db", db);
    int64_t M = tensor_rows(in), C = tensor_cols(in);
    if (M == 0) return;
    const float *mu = (const float *)mean.data, *rs = (const float *)rstd.data;
    if (tensor_present(din)) {
        layernorm_din_kernel<<<row_blocks(M), LN_WARPS * 32, 0, cuda_stream(ctx)>>>(
            cuda_out(op, din), g, x, (const float *)w.data, mu, rs, M, C);
        cudaCheck(cudaGetLastError());
    }
    if (tensor_present(dw) || tensor_present(db)) {
        void *ws = ctx_scratch(ctx, cuda_colsum_workspace_bytes(2, M, C));
        CudaColsumDst<2> dst = {{(float *)dw.data, (float *)db.data}};
        cuda_colsum<2>(ctx, ws, M, C, LayerNormParamGrads{g, x, mu, rs, C}, dst);
    }
}
