/*
 * cuda_add.cu: sums of whole tensors: add, accumulate (dst += src) and the
 * broadcast add of one [T,D] row block to every batch row (positional
 * embedding). F32 arithmetic on F32 or BF16 activations; the broadcast row is
 * a parameter, so it is F32.
 */
#include "cuda_common.h"

// out, a, b are (n,); out may alias a or b
template <typename T>
__global__ void add_kernel(T *out, const T *a, const T *b, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) store_f32(out, i, load_f32(a, i) + load_f32(b, i));
}

// in, out are (n,) = (B, R); row is (R,)
template <typename T>
__global__ void add_bcast_kernel(T *out, const T *in, const float *row, int64_t n, int64_t R)
{
    CUDA_GRID_STRIDE(i, n) store_f32(out, i, load_f32(in, i) + row[i % R]);
}

static void add(Ctx *ctx, const char *op, Tensor out, Tensor a, Tensor b)
{
    DType act = cuda_act_dtype(op, a);
    cuda_same_dtype(op, out, a);
    cuda_same_dtype(op, b, a);
    int64_t n = tensor_numel(a);
    if (n == 0) return;
    if (act == DT_F32)
        add_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, cuda_stream(ctx)>>>(
            (float *)out.data, (const float *)a.data, (const float *)b.data, n);
    else
        add_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, cuda_stream(ctx)>>>(
            (__nv_bfloat16 *)out.data, (const __nv_bfloat16 *)a.data,
            (const __nv_bfloat16 *)b.data, n);
    cudaCheck(cudaGetLastError());
}

void cuda_add_forward(Ctx *ctx, Tensor out, Tensor a, Tensor b) { add(ctx, "add_forward", out, a, b); }

void cuda_accumulate(Ctx *ctx, Tensor dst, Tensor src) { add(ctx, "accumulate", dst, dst, src); }

void cuda_add_bcast_forward(Ctx *ctx, Tensor out, Tensor in, Tensor row)
{
    const char *op = "add_bcast_forward";
    DType act = cuda_act_dtype(op, in);
    cuda_same_dtype(op, out, in);
    cuda_need_f32(op, "row", row);
    int64_t n = tensor_numel(in), R = tensor_numel(row);
    if (n == 0) return;
    if (act == DT_F32)
        add_bcast_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, cuda_stream(ctx)>>>(
            (float *)out.data, (const float *)in.data, (const float *)row.data, n, R);
    else
        add_bcast_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, cuda_stream(ctx)>>>(
            (__nv_bfloat16 *)out.data, (const __nv_bfloat16 *)in.data,
            (const float *)row.data, n, R);
    cudaCheck(cudaGetLastError());
}
