/*
 * cuda_gaussian_sample.cu: the KL autoencoder's posterior, for training it:
 * the reparameterised draw z = mean + std eps and the KL term against
 * N(0, 1), forward and backward (kernels/ops.h, "the KL autoencoder's
 * posterior"; the CPU reference is kernels/cpu/gaussian_sample.c).
 *
 * moments[B,2C,h,w] is, per image b, the mean (n = C h w values) followed by
 * the log-variance (n values), clamped to [-30, 20]; eps and z are [B,C,h,w]:
 *   forward:  z = mean + exp(logvar / 2) eps             one thread per z value
 *             KL = (1/B) sum_b kl_b, kl_b = 0.5 sum_j (mean^2 + exp(logvar)
 *             - 1 - logvar), each kl_b in F64 (cuda_channel_sum over the
 *             view [1, B, n]: one CUDA block per image), then the images
 *             in order on one thread, in F64, as the CPU adds them; the F32
 *             result comes back to the host (the call waits for the stream)
 *   backward: dmean += dz + w mean,  w = kl_weight / B
 *             dlogvar += dz eps exp(logvar / 2) / 2 + w (exp(logvar) - 1) / 2
 *             (nothing for a clamped log-variance)   one thread per (b, j)
 * The CPU's expressions, in F32 (the KL terms in F64). Tensors are F32 or
 * BF16 (CudaIn/CudaOut, any mix); dz may be absent (the KL alone).
 */
#include "cuda_ops.h"
#include "cuda_reduce.h"

/* libs/autoencoder.py's clamp, as kernels/cpu/gaussian_sample.c */
#define LOGVAR_MIN (-30.0f)
#define LOGVAR_MAX 20.0f

__device__ __forceinline__ float clamp_logvar(float lv) { return fminf(fmaxf(lv, LOGVAR_MIN), LOGVAR_MAX); }

/* image b's j-th mean and log-variance sit at moments[b, 0, j] and
   moments[b, 1, j] of the view (B, 2, n) */
__device__ __forceinline__ int64_t mean_index(int64_t b, int64_t j, int64_t n) { return b * 2 * n + j; }

// z, eps are (B, n); moments (B, 2, n)
__global__ void gaussian_sample_z_kernel(CudaOut z, CudaIn moments, CudaIn eps, int64_t n, int64_t total)
{
    CUDA_GRID_STRIDE(i, total) {
        int64_t m = mean_index(i / n, i % n, n);
        float lv = clamp_logvar(load_f32(moments, m + n));
        store_f32(z, i, load_f32(moments, m) + expf(0.5f * lv) * load_f32(eps, i));
    }
}

/* per image b of [1, B, n]: kl[b] = 0.5 sum_j (mean^2 + exp(lv) - 1 - lv), in F64 */
struct ImageKL {
    CudaIn moments;
    int64_t n;
    double *kl;  // (B,)
    __device__ void operator()(int64_t, int64_t b, int64_t j, double *acc) const
    {
        int64_t m = mean_index(b, j, n);
        double mean = load_f32(moments, m);
        float lv = clamp_logvar(load_f32(moments, m + n));
        acc[0] += mean * mean + exp((double)lv) - 1.0 - lv;
    }
    __device__ void finish(int64_t b, const double *sums) const { kl[b] = 0.5 * sums[0]; }
};

// one thread: *total = kl[0] + kl[1] + ... + kl[B-1], in order (the CPU's order)
__global__ void kl_total_kernel(double *total, const double *kl, int64_t B)
{
    double s = 0.0;
    for (int64_t b = 0; b < B; b++) s += kl[b];
    *total = s;
}

// dmoments, moments are (B, 2, n); dz (or absent), eps are (B, n)
__global__ void gaussian_sample_backward_kernel(CudaOut dmoments, CudaIn dz, CudaIn moments, CudaIn eps,
                                                float w, int64_t n, int64_t total)
{
    CUDA_GRID_STRIDE(i, total) {
        int64_t m = mean_index(i / n, i % n, n);
        float gz = dz.p ? load_f32(dz, i) : 0.0f, mean = load_f32(moments, m), lv = load_f32(moments, m + n);
        add_f32(dmoments, m, gz + w * mean);
        if (lv < LOGVAR_MIN || lv > LOGVAR_MAX) continue;  // clamped: no gradient
        float var = expf(lv);
        add_f32(dmoments, m + n, gz * 0.5f * sqrtf(var) * load_f32(eps, i) + 0.5f * w * (var - 1.0f));
    }
}

float cuda_gaussian_sample_forward(Ctx *ctx, Tensor z, Tensor moments, Tensor eps)
{
    const char *op = "gaussian_sample_forward";
    CudaOut zo = cuda_out(op, z);
    CudaIn mo = cuda_in(op, moments), e = cuda_in(op, eps);
    int64_t B = eps.shape[0], total = tensor_numel(eps);
    if (B == 0) return 0.0f;
    int64_t n = total / B;  // C*h*w per image
    if (zo.p && total > 0) CUDA_LAUNCH(ctx, total, gaussian_sample_z_kernel, zo, mo, e, n, total);
    /* scratch: [kl (B) F64 | the total F64] */
    CudaCarve carve = {(char *)ctx_scratch(ctx, cuda_align((size_t)B * sizeof(double)) + cuda_align(sizeof(double))), 0};
    double *kl = (double *)cuda_carve(&carve, (size_t)B * sizeof(double));
    double *sum = (double *)cuda_carve(&carve, sizeof(double));
    cuda_channel_sum<1>(ctx, 1, B, n, ImageKL{mo, n, kl});
    kl_total_kernel<<<1, 1, 0, cuda_stream(ctx)>>>(sum, kl, B);
    cudaCheck(cudaGetLastError());
    double host_sum = 0.0;
    cudaCheck(cudaMemcpyAsync(&host_sum, sum, sizeof host_sum, cudaMemcpyDeviceToHost, cuda_stream(ctx)));
    cudaCheck(cudaStreamSynchronize(cuda_stream(ctx)));
    return (float)(host_sum / (double)B);
}

void cuda_gaussian_sample_backward(Ctx *ctx, Tensor dmoments, Tensor dz, Tensor moments, Tensor eps,
                                   float kl_weight)
{
    const char *op = "gaussian_sample_backward";
    CudaOut dm = cuda_out(op, dmoments);
    CudaIn g = cuda_in(op, dz), mo = cuda_in(op, moments), e = cuda_in(op, eps);
    int64_t B = eps.shape[0], total = tensor_numel(eps);
    if (B == 0 || total == 0) return;
    float w = kl_weight / (float)B;
    CUDA_LAUNCH(ctx, total, gaussian_sample_backward_kernel, dm, g, mo, e, w, total / B, total);
}
