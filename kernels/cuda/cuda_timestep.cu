/*
 * cuda_timestep.cu: U-ViT's sinusoidal timestep embedding, forward and
 * backward (the derivative in t, for completeness and tests).
 *
 * out[B,D] = [cos(t f), sin(t f)], f_j = exp(-ln(10000) j / half), half = D/2,
 * and a zero last column when D is odd; t[B] is F32 and may be fractional.
 * The exponent and t * f are rounded in float32 exactly as PyTorch and the
 * CPU reference (kernels/cpu/embedding.c) round them; exp, cos and sin run
 * in double and are rounded once, so the result is the correctly rounded
 * value of the same float arguments: at t near 1000 an ulp of difference in
 * f would move the angle by 1e-4.
 *
 * Backward: dt[b] += sum_j dout[b,j] (-f_j sin(t f_j)) + dout[b,half+j] f_j cos(t f_j),
 * one warp per row, summed in F64 in a fixed order. out/dout are F32 or
 * BF16; t and dt are F32.
 */
#include "cuda_common.h"
#include "cuda_ops.h"

#define TS_WARPS 8 /* rows per block in the backward */

/* f_j rounded as PyTorch rounds it (two float32 operations, then exp) */
__device__ __forceinline__ float timestep_freq(int64_t j, int64_t half)
{
    const float neg_log_period = (float)-log(10000.0);
    float x = __fdiv_rn(__fmul_rn(neg_log_period, (float)j), (float)half);
    return (float)exp((double)x);
}

// out is (B, D), t is (B,)
__global__ void timestep_embedding_kernel(CudaOut out, const float *t, int64_t B, int64_t D)
{
    int64_t half = D / 2;
    CUDA_GRID_STRIDE(i, B * D) {
        int64_t b = i / D, j = i % D;
        float v = 0.0f; /* the odd D's last column */
        if (j < 2 * half) {
            float arg = __fmul_rn(t[b], timestep_freq(j < half ? j : j - half, half));
            v = (float)(j < half ? cos((double)arg) : sin((double)arg));
        }
        store_f32(out, i, v);
    }
}

// dout is (B, D), t and dt are (B,); one warp per row b
__global__ void timestep_embedding_backward_kernel(float *dt, CudaIn dout, const float *t,
                                                   int64_t B, int64_t D)
{
    int lane = threadIdx.x % 32;
    int64_t b = (int64_t)blockIdx.x * TS_WARPS + threadIdx.x / 32;
    if (b >= B) return;
    int64_t half = D / 2;
    double acc = 0.0;
    for (int64_t j = lane; j < half; j += 32) {
        float f = timestep_freq(j, half), arg = __fmul_rn(t[b], f);
        acc += (double)f * ((double)load_f32(dout, b * D + half + j) * cos((double)arg) -
                            (double)load_f32(dout, b * D + j) * sin((double)arg));
    }
    acc = warp_sum(acc);
    if (lane == 0) dt[b] += (float)acc;
}

void cuda_timestep_embedding_forward(Ctx *ctx, Tensor out, Tensor t)
{
    const char *op = "timestep_embedding_forward";
    CudaOut o = cuda_out(op, out);
    cuda_need_f32(op, "t", t);
    int64_t B = tensor_rows(out), D = tensor_cols(out);
    if (B * D == 0) return;
    CUDA_LAUNCH(ctx, B * D, timestep_embedding_kernel, o, (const float *)t.data, B, D);
}

void cuda_timestep_embedding_backward(Ctx *ctx, Tensor dt, Tensor dout, Tensor t)
{
    const char *op = "timestep_embedding_backward";
    CudaIn g = cuda_in(op, dout);
    cuda_need_f32(op, "t", t);
    cuda_need_f32(op, "dt", dt);
    int64_t B = tensor_rows(dout), D = tensor_cols(dout);
    if (B == 0) return;
    timestep_embedding_backward_kernel<<<(unsigned)((B + TS_WARPS - 1) / TS_WARPS), TS_WARPS * 32, 0,
                                         cuda_stream(ctx)>>>((float *)dt.data, g, (const float *)t.data, B, D);
    cudaCheck(cudaGetLastError());
}
