/*
 * cuda_cross_entropy.cu: the softmax cross-entropy of a classifier, forward
 * and backward (the FD-FMNIST feature network's training loss).
 *
 * Per row b of logits[B,K] with label y = labels[b] (I64 on the device):
 *   loss_b = log sum_k exp(logits[b,k] - max) + max - logits[b,y]     (F64)
 * One warp per row finds the max and the log-sum-exp (lanes stride the
 * classes, then a fixed shuffle tree); the forward writes loss_b into
 * scratch and cuda_sum adds the rows in a fixed order, returning the mean to
 * the host (so it waits for the stream). The backward adds
 * dloss / B * (softmax(logits[b,:]) - onehot(y)) into dlogits. Logits and
 * dlogits are F32, as on the CPU (ops.c checks).
 */
#include "cuda_ops.h"
#include "cuda_reduce.h"

#define CE_WARPS 8 /* rows per block */

__device__ __forceinline__ double warp_max(double v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* the row's max and log sum_k exp(x[k] - max) in F64, in every lane */
__device__ void row_logsumexp(const float *x, int64_t K, int lane, double *max_out, double *lse_out)
{
    double m = -INFINITY;
    for (int64_t k = lane; k < K; k += 32) m = fmax(m, (double)x[k]);
    m = warp_max(m);
    double s = 0.0;
    for (int64_t k = lane; k < K; k += 32) s += exp((double)x[k] - m);
    *max_out = m;
    *lse_out = log(warp_sum(s));
}

// logits is (B, K), labels (B,), loss (B,)
__global__ void cross_entropy_rows_kernel(double *loss, const float *logits, const int64_t *labels,
                                          int64_t B, int64_t K)
{
    int lane = threadIdx.x % 32;
    int64_t b = (int64_t)blockIdx.x * CE_WARPS + threadIdx.x / 32;
    if (b >= B) return;
    double m, lse;
    row_logsumexp(logits + b * K, K, lane, &m, &lse);
    if (lane == 0) loss[b] = lse + m - (double)logits[b * K + labels[b]];
}

// dlogits, logits are (B, K), labels (B,)
__global__ void cross_entropy_backward_kernel(float *dlogits, const float *logits, const int64_t *labels,
                                              double scale, int64_t B, int64_t K)
{
    int lane = threadIdx.x % 32;
    int64_t b = (int64_t)blockIdx.x * CE_WARPS + threadIdx.x / 32;
    if (b >= B) return;
    const float *x = logits + b * K;
    double m, lse;
    row_logsumexp(x, K, lane, &m, &lse);
    for (int64_t k = lane; k < K; k += 32) {
        double p = exp((double)x[k] - m - lse);
        dlogits[b * K + k] += (float)(scale * (p - (k == labels[b] ? 1.0 : 0.0)));
    }
}

struct RowLosses {
    const double *loss;
    __device__ void operator()(int64_t b, double *acc) const { acc[0] += loss[b]; }
};

static unsigned row_blocks(int64_t B) { return (unsigned)((B + CE_WARPS - 1) / CE_WARPS); }

float cuda_cross_entropy_forward(Ctx *ctx, Tensor logits, Tensor labels)
{
    int64_t B = logits.shape[0], K = logits.shape[1];
    if (B == 0) return 0.0f;
    /* scratch: [cuda_sum's workspace | loss (B) F64] */
    size_t sum_bytes = cuda_sum_workspace_bytes(1);
    char *scratch = (char *)ctx_scratch(ctx, sum_bytes + cuda_align((size_t)B * sizeof(double)));
    double *loss = (double *)(scratch + sum_bytes);
    cross_entropy_rows_kernel<<<row_blocks(B), CE_WARPS * 32, 0, cuda_stream(ctx)>>>(
        loss, (const float *)logits.data, (const int64_t *)labels.data, B, K);
    cudaCheck(cudaGetLastError());
    double sum[1];
    cuda_sum<1>(ctx, scratch, B, RowLosses{loss}, sum);
    return (float)(sum[0] / (double)B);
}

void cuda_cross_entropy_backward(Ctx *ctx, Tensor dlogits, Tensor logits, Tensor labels, float dloss)
{
    int64_t B = logits.shape[0], K = logits.shape[1];
    if (B == 0) return;
    cuda_need_f32("cross_entropy_backward", "dlogits", dlogits);
    cross_entropy_backward_kernel<<<row_blocks(B), CE_WARPS * 32, 0, cuda_stream(ctx)>>>(
        (float *)dlogits.data, (const float *)logits.data, (const int64_t *)labels.data,
        (double)dloss / (double)B, B, K);
    cudaCheck(cudaGetLastError());
}
