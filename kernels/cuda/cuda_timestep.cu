/*
 * cuda_timestep.cu: U-ViT's sinusoidal timestep embedding, forward.
 *
 * out[B,D] = [cos(t f), sin(t f)], f_j = exp(-ln(10000) j / half), half = D/2,
 * and a zero last column when D is odd; t[B] is F32 and may be fractional.
 * The exponent and t * f are rounded in float32 exactly as PyTorch and the
 * CPU reference (kernels/cpu/embedding.c) round them; exp, cos and sin run
 * in double and are rounded once, so the result is the correctly rounded
 * value of the same float arguments: at t near 1000 an ulp of difference in
 * f would move the angle by 1e-4.
 */
#include "cuda_common.h"

// out is (B, D), t is (B,)
template <typename T>
__global__ void timestep_embedding_kernel(T *out, const float *t, int64_t B, int64_t D)
{
    int64_t half = D / 2;
    const float neg_log_period = (float)-log(10000.0);
    CUDA_GRID_STRIDE(i, B * D) {
        int64_t b = i / D, j = i % D;
        float v = 0.0f; /* the odd D's last column */
        if (j < 2 * half) {
            int64_t k = j < half ? j : j - half;
            float x = (neg_log_period * (float)k) / (float)half;
            float freq = (float)exp((double)x);
            float arg = t[b] * freq;
            v = (float)(j < half ? cos((double)arg) : sin((double)arg));
        }
        store_f32(out, i, v);
    }
}

void cuda_timestep_embedding_forward(Ctx *ctx, Tensor out, Tensor t)
{
    const char *op = "timestep_embedding_forward";
    DType act = cuda_act_dtype(op, out);
    cuda_need_f32(op, "t", t);
    int64_t B = tensor_rows(out), D = tensor_cols(out);
    if (B * D == 0) return;
    if (act == DT_F32)
        timestep_embedding_kernel<<<cuda_blocks(B * D), CUDA_THREADS, 0, cuda_stream(ctx)>>>(
            (float *)out.data, (const float *)t.data, B, D);
    else
        timestep_embedding_kernel<<<cuda_blocks(B * D), CUDA_THREADS, 0, cuda_stream(ctx)>>>(
            (__nv_bfloat16 *)out.data, (const float *)t.data, B, D);
    cudaCheck(cudaGetLastError());
}
