/*
 * cuda_row_scores.cu: the early-exit rules' per-row scores on the GPU
 * (ops.h, "exit scores"): a row's mean (DeeDiff's uncertainty map) and the
 * cosine distance of two rows (CALM's hidden-state saturation), so a rule
 * downloads one float an image, not its rows.
 *
 * One block per row (cuda_reduce.h's cuda_channel_sum with one "image"):
 * each thread sums a fixed stride of the row in F64, the block adds the
 * threads' sums in a fixed tree, thread 0 writes the score. The order
 * differs from the CPU's (one thread a row) only in F64 roundings.
 */
#include "cuda_common.h"
#include "cuda_ops.h"
#include "cuda_reduce.h"

/* out[r] = mean of in[r, :n] (in F32) */
struct RowMean {
    const float *x;
    float *out;
    int64_t n;
    __device__ void operator()(int64_t, int64_t r, int64_t j, double *acc) const { acc[0] += x[r * n + j]; }
    __device__ void finish(int64_t r, const double *sums) const { out[r] = (float)(sums[0] / (double)n); }
};

/* out[r] = 1 - <a_r, b_r> / (|a_r| |b_r|), 1 when either row is zero */
struct RowCosineDistance {
    CudaIn a, b;
    float *out;
    int64_t n;
    __device__ void operator()(int64_t, int64_t r, int64_t j, double *acc) const
    {
        double x = load_f32(a, r * n + j), z = load_f32(b, r * n + j);
        acc[0] += x * z;
        acc[1] += x * x;
        acc[2] += z * z;
    }
    __device__ void finish(int64_t r, const double *s) const
    {
        out[r] = s[1] > 0 && s[2] > 0 ? (float)(1 - s[0] / sqrt(s[1] * s[2])) : 1.0f;
    }
};

void cuda_row_mean(Ctx *ctx, Tensor out, Tensor in)
{
    const char *op = "row_mean";
    cuda_need_f32(op, "out", out), cuda_need_f32(op, "in", in);
    int64_t R = in.shape[0];
    RowMean f = {(const float *)in.data, (float *)out.data, tensor_item_numel(in)};
    cuda_channel_sum<1>(ctx, 1, R, f.n, f);
}

void cuda_row_cosine_distance(Ctx *ctx, Tensor out, Tensor a, Tensor b)
{
    const char *op = "row_cosine_distance";
    cuda_need_f32(op, "out", out);
    int64_t R = a.shape[0];
    RowCosineDistance f = {cuda_in(op, a), cuda_in(op, b), (float *)out.data, tensor_item_numel(a)};
    cuda_channel_sum<3>(ctx, 1, R, f.n, f);
}
