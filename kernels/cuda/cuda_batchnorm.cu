/*
 * cuda_batchnorm.cu: BatchNorm2d in eval mode, forward and backward.
 *
 * With running statistics the op is a per-channel affine map:
 *   scale[c] = w[c] / sqrt(var[c] + eps)   (in F64, rounded once, as the CPU)
 *   shift[c] = b[c] - mean[c] scale[c]
 *   out[b,c,:,:] = in[b,c,:,:] * scale[c] + shift[c]
 * Backward (mean and var are constants):
 *   din   += dout * scale[c]                                 (elementwise)
 *   dw[c] += sum over (b,h,w) of dout (in - mean[c]) / sqrt(var[c] + eps)
 *   db[c] += sum over (b,h,w) of dout                         (cuda_channel_sum)
 * in, out, dout, din are F32 or BF16 (CudaIn/CudaOut); the statistics, w, b,
 * dw and db are F32.
 */
#include "cuda_ops.h"
#include "cuda_reduce.h"

__device__ __forceinline__ float bn_scale(const float *w, const float *var, int64_t c, float eps)
{
    return (float)(w[c] / sqrt((double)var[c] + eps));
}

// out, in are (B, C, N)
__global__ void batchnorm_forward_kernel(CudaOut out, CudaIn in, const float *mean, const float *var,
                                         const float *w, const float *b, float eps, int64_t C,
                                         int64_t N, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) {
        int64_t c = (i / N) % C;
        float scale = bn_scale(w, var, c, eps), shift = __fsub_rn(b[c], __fmul_rn(mean[c], scale));
        store_f32(out, i, __fadd_rn(__fmul_rn(load_f32(in, i), scale), shift));
    }
}

// din, dout are (B, C, N)
__global__ void batchnorm_din_kernel(CudaOut din, CudaIn dout, const float *var, const float *w,
                                     float eps, int64_t C, int64_t N, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) add_f32(din, i, load_f32(dout, i) * bn_scale(w, var, (i / N) % C, eps));
}

/* per channel: sums of dout (in - mean) and of dout; finish adds them, the
   first times 1 / sqrt(var + eps), into dw and db */
struct BatchNormParamGrads {
    CudaIn dout, in;
    const float *mean, *var;
    float *dw, *db;
    float eps;
    int64_t C, N;
    __device__ void operator()(int64_t b, int64_t c, int64_t i, double *acc) const
    {
        int64_t x = (b * C + c) * N + i;
        float g = load_f32(dout, x);
        acc[0] += (double)(g * (load_f32(in, x) - mean[c]));
        acc[1] += (double)g;
    }
    __device__ void finish(int64_t c, const double *sums) const
    {
        double rstd = 1.0 / sqrt((double)var[c] + eps);
        if (dw) dw[c] += (float)(sums[0] * rstd);
        if (db) db[c] += (float)sums[1];
    }
};

void cuda_batchnorm_forward(Ctx *ctx, Tensor out, Tensor in, Tensor mean, Tensor var, Tensor w,
                            Tensor b, float eps)
{
    const char *op = "batchnorm_forward";
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, in);
    cuda_need_f32(op, "mean", mean), cuda_need_f32(op, "var", var);
    cuda_need_f32(op, "w", w), cuda_need_f32(op, "b", b);
    int64_t C = in.shape[1], N = in.shape[2] * in.shape[3], n = tensor_numel(in);
    if (n == 0) return;
    CUDA_LAUNCH(ctx, n, batchnorm_forward_kernel, o, x, (const float *)mean.data, (const float *)var.data,
                (const float *)w.data, (const float *)b.data, eps, C, N, n);
}

void cuda_batchnorm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout, Tensor in,
                             Tensor mean, Tensor var, Tensor w, float eps)
{
    const char *op = "batchnorm_backward";
    CudaIn g = cuda_in(op, dout), x = cuda_in(op, in);
    cuda_need_f32(op, "mean", mean), cuda_need_f32(op, "var", var), cuda_need_f32(op, "w", w);
    if (tensor_present(dw)) cuda_need_f32(op, "dw", dw);
    if (tensor_present(db)) cuda_need_f32(op, "db", db);
    int64_t B = in.shape[0], C = in.shape[1], N = in.shape[2] * in.shape[3], n = tensor_numel(in);
    if (n == 0) return;
    if (tensor_present(din))
        CUDA_LAUNCH(ctx, n, batchnorm_din_kernel, cuda_out(op, din), g, (const float *)var.data,
                    (const float *)w.data, eps, C, N, n);
    if (tensor_present(dw) || tensor_present(db)) {
        BatchNormParamGrads f = {g, x, (const float *)mean.data, (const float *)var.data,
                                 (float *)dw.data, (float *)db.data, eps, C, N};
        cuda_channel_sum<2>(ctx, B, C, N, f);
    }
}
