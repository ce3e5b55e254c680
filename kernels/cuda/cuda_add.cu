/*
 * cuda_add.cu: sums of whole tensors: add, accumulate (dst += src) and the
 * broadcast add of one [T,D] row block to every batch row (positional
 * embedding) and of each image's own [D] row to all its tokens (the UEM's
 * time term), with their backwards.
 *
 * F32 arithmetic on F32 or BF16 activations (any mix: CudaIn/CudaOut); the
 * broadcast rows (a parameter, or the UEM's per-image F32 time bias) are F32,
 * and so are their gradients, whose sums over the batch or the tokens are
 * cuda_colsums (fixed order, no atomics).
 */
#include "cuda_ops.h"
#include "cuda_reduce.h"

// out, a, b are (n,); out may alias a or b
__global__ void add_kernel(CudaOut out, CudaIn a, CudaIn b, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) store_f32(out, i, load_f32(a, i) + load_f32(b, i));
}

// in, out are (n,) = (reps, R); row is (R,)
__global__ void add_bcast_kernel(CudaOut out, CudaIn in, const float *row, int64_t n, int64_t R)
{
    CUDA_GRID_STRIDE(i, n) store_f32(out, i, load_f32(in, i) + row[i % R]);
}

/* dout viewed as [reps, R]: its columns, for drow */
struct RowBlocks {
    CudaIn g;
    int64_t R;
    __device__ float operator()(int64_t r, int64_t c, int) const { return load_f32(g, r * R + c); }
};

// in, out are (n,) = [B,T,D]; v is [B,D]: TD = T * D
__global__ void add_per_image_kernel(CudaOut out, CudaIn in, const float *v, int64_t n, int64_t TD, int64_t D)
{
    CUDA_GRID_STRIDE(i, n) store_f32(out, i, load_f32(in, i) + v[(i / TD) * D + i % D]);
}

/* dout [B,T,D] viewed as T rows of B*D columns: column c = b*D + d, for dv */
struct ImageColumns {
    CudaIn g;
    int64_t T, D;
    __device__ float operator()(int64_t t, int64_t c, int) const
    {
        return load_f32(g, ((c / D) * T + t) * D + c % D);
    }
};

static void add(Ctx *ctx, const char *op, Tensor out, Tensor a, Tensor b)
{
    int64_t n = tensor_numel(a);
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, a), y = cuda_in(op, b);
    if (n == 0) return;
    CUDA_LAUNCH(ctx, n, add_kernel, o, x, y, n);
}

void cuda_add_forward(Ctx *ctx, Tensor out, Tensor a, Tensor b) { add(ctx, "add_forward", out, a, b); }

void cuda_accumulate(Ctx *ctx, Tensor dst, Tensor src) { add(ctx, "accumulate", dst, dst, src); }

void cuda_add_bcast_forward(Ctx *ctx, Tensor out, Tensor in, Tensor row)
{
    const char *op = "add_bcast_forward";
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, in);
    cuda_need_f32(op, "row", row);
    int64_t n = tensor_numel(in), R = tensor_numel(row);
    if (n == 0) return;
    CUDA_LAUNCH(ctx, n, add_bcast_kernel, o, x, (const float *)row.data, n, R);
}

void cuda_add_bcast_backward(Ctx *ctx, Tensor din, Tensor drow, Tensor dout)
{
    const char *op = "add_bcast_backward";
    if (tensor_present(din)) cuda_accumulate(ctx, din, dout);
    if (!tensor_present(drow)) return;
    cuda_need_f32(op, "drow", drow);
    int64_t n = tensor_numel(dout), R = tensor_numel(drow);
    if (n == 0 || R == 0) return;
    void *ws = ctx_scratch(ctx, cuda_colsum_workspace_bytes(1, n / R, R));
    CudaColsumDst<1> dst = {{(float *)drow.data}};
    cuda_colsum<1>(ctx, ws, n / R, R, RowBlocks{cuda_in(op, dout), R}, dst);
}

void cuda_add_per_image_forward(Ctx *ctx, Tensor out, Tensor in, Tensor v)
{
    const char *op = "add_per_image_forward";
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, in);
    cuda_need_f32(op, "v", v);
    int64_t n = tensor_numel(in), T = in.shape[1], D = in.shape[2];
    if (n == 0) return;
    CUDA_LAUNCH(ctx, n, add_per_image_kernel, o, x, (const float *)v.data, n, T * D, D);
}

void cuda_add_per_image_backward(Ctx *ctx, Tensor din, Tensor dv, Tensor dout)
{
    const char *op = "add_per_image_backward";
    if (tensor_present(din)) cuda_accumulate(ctx, din, dout);
    if (!tensor_present(dv)) return;
    cuda_need_f32(op, "dv", dv);
    int64_t B = dout.shape[0], T = dout.shape[1], D = dout.shape[2];
    if (B * T * D == 0) return;
    void *ws = ctx_scratch(ctx, cuda_colsum_workspace_bytes(1, T, B * D));
    CudaColsumDst<1> dst = {{(float *)dv.data}};
    cuda_colsum<1>(ctx, ws, T, B * D, ImageColumns{cuda_in(op, dout), T, D}, dst);
}
