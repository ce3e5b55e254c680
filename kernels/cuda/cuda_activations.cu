/*
 * cuda_activations.cu: pointwise activations, GELU (exact erf form) and SiLU.
 *
 * Each works in F32 on F32 or BF16 tensors (all of one call share a dtype).
 * Backward passes ACCUMULATE into din, as every backward op does.
 */
#include "cuda_common.h"

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

// out, in are (n,)
template <typename T>
__global__ void gelu_forward_kernel(T *out, const T *in, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) {
        float x = load_f32(in, i);
        store_f32(out, i, 0.5f * x * (1.0f + erff(x * INV_SQRT2)));
    }
}

/* d/dx x Phi(x) = Phi(x) + x phi(x) */
template <typename T>
__global__ void gelu_backward_kernel(T *din, const T *dout, const T *in, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) {
        float x = load_f32(in, i);
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
        float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
        store_f32(din, i, load_f32(din, i) + load_f32(dout, i) * (cdf + x * pdf));
    }
}

template <typename T>
__global__ void silu_forward_kernel(T *out, const T *in, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) {
        float x = load_f32(in, i);
        store_f32(out, i, x / (1.0f + expf(-x)));
    }
}

void cuda_gelu_forward(Ctx *ctx, Tensor out, Tensor in)
{
    DType act = cuda_act_dtype("gelu_forward", in);
    cuda_same_dtype("gelu_forward", out, in);
    int64_t n = tensor_numel(in);
    if (n == 0) return;
    if (act == DT_F32)
        gelu_forward_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, cuda_stream(ctx)>>>(
            (float *)out.data, (const float *)in.data, n);
    else
        gelu_forward_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, cuda_stream(ctx)>>>(
            (__nv_bfloat16 *)out.data, (const __nv_bfloat16 *)in.data, n);
    cudaCheck(cudaGetLastError());
}

void cuda_gelu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in)
{
    if (!tensor_present(din)) return;
    DType act = cuda_act_dtype("gelu_backward", in);
    cuda_same_dtype("gelu_backward", din, in);
    cuda_same_dtype("gelu_backward", dout, in);
    int64_t n = tensor_numel(in);
    if (n == 0) return;
    if (act == DT_F32)
        gelu_backward_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, cuda_stream(ctx)>>>(
            (float *)din.data, (const float *)dout.data, (const float *)in.data, n);
    else
        gelu_backward_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, cuda_stream(ctx)>>>(
            (__nv_bfloat16 *)din.data, (const __nv_bfloat16 *)dout.data,
            (const __nv_bfloat16 *)in.data, n);
    cudaCheck(cudaGetLastError());
}

void cuda_silu_forward(Ctx *ctx, Tensor out, Tensor in)
{
    DType act = cuda_act_dtype("silu_forward", in);
    cuda_same_dtype("silu_forward", out, in);
    int64_t n = tensor_numel(in);
    if (n == 0) return;
    if (act == DT_F32)
        silu_forward_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, cuda_stream(ctx)>>>(
            (float *)out.data, (const float *)in.data, n);
    else
        silu_forward_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, cuda_stream(ctx)>>>(
            (__nv_bfloat16 *)out.data, (const __nv_bfloat16 *)in.data, n);
    cudaCheck(cudaGetLastError());
}
