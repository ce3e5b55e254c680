/*
 * cuda_tokens.cu: strided row copies and their backward accumulations:
 *   token slice:  out[B,n,D] = in[B, at:at+n, D]
 *   token place:  seq[B, at:at+n, D] = src[B,n,D]
 *   concat:       out[M, Ca+Cb] = [a[M,Ca], b[M,Cb]]
 *   rows copy:    out[dst_k] = in[src_k], rows picked by I64 index lists
 *
 * Every forward is R rows of `width` contiguous elements copied between two
 * row pitches: one cudaMemcpy2DAsync when both sides have one dtype, else
 * rows_convert_kernel (an exit head slices F32 rows out of the backbone's
 * BF16 activations). Every backward is the same row walk adding instead of
 * copying: rows_accumulate_kernel, F32 arithmetic on F32 or BF16 (any mix).
 */
#include "cuda_common.h"
#include "cuda_ops.h"

// dst[r * dpitch + doff + j] = src[r * spitch + soff + j] for r < R, j < width, through F32
__global__ void rows_convert_kernel(CudaOut dst, int64_t dpitch, int64_t doff, CudaIn src,
                                    int64_t spitch, int64_t soff, int64_t width, int64_t R)
{
    CUDA_GRID_STRIDE(i, R * width) {
        int64_t r = i / width, j = i % width;
        store_f32(dst, r * dpitch + doff + j, load_f32(src, r * spitch + soff + j));
    }
}

/* dst[r * dpitch + doff + j] = src[r * spitch + soff + j] for r < R and
   j < width (pitches and offsets in elements of each side's dtype): a 2-D
   memcpy when the dtypes match, a converting kernel when not */
static void copy_rows(Ctx *ctx, const char *op, Tensor dst, int64_t dpitch, int64_t doff, Tensor src,
                      int64_t spitch, int64_t soff, int64_t width, int64_t R)
{
    if (width == 0 || R == 0) return;
    if (dst.dtype != src.dtype) {
        CudaOut d = cuda_out(op, dst);
        CudaIn s = cuda_in(op, src);
        CUDA_LAUNCH(ctx, R * width, rows_convert_kernel, d, dpitch, doff, s, spitch, soff, width, R);
        return;
    }
    size_t es = dtype_size(dst.dtype);
    cudaCheck(cudaMemcpy2DAsync((char *)dst.data + (size_t)doff * es, (size_t)dpitch * es,
                                (const char *)src.data + (size_t)soff * es, (size_t)spitch * es,
                                (size_t)width * es, (size_t)R, cudaMemcpyDeviceToDevice, cuda_stream(ctx)));
}

// dst[r * dpitch + doff + j] += src[r * spitch + soff + j] for r < R, j < width
__global__ void rows_accumulate_kernel(CudaOut dst, int64_t dpitch, int64_t doff, CudaIn src,
                                       int64_t spitch, int64_t soff, int64_t width, int64_t R)
{
    CUDA_GRID_STRIDE(i, R * width) {
        int64_t r = i / width, j = i % width;
        add_f32(dst, r * dpitch + doff + j, load_f32(src, r * spitch + soff + j));
    }
}

static void accumulate_rows(Ctx *ctx, const char *op, Tensor dst, int64_t dpitch, int64_t doff,
                            Tensor src, int64_t spitch, int64_t soff, int64_t width, int64_t R)
{
    CudaOut d = cuda_out(op, dst);
    CudaIn s = cuda_in(op, src);
    if (width == 0 || R == 0) return;
    CUDA_LAUNCH(ctx, R * width, rows_accumulate_kernel, d, dpitch, doff, s, spitch, soff, width, R);
}

void cuda_token_slice_forward(Ctx *ctx, Tensor out, Tensor in, int at)
{
    int64_t B = in.shape[0], T = in.shape[1], n = out.shape[1], D = in.shape[2];
    // in is (B, T, D), out is (B, n, D)
    copy_rows(ctx, "token_slice_forward", out, n * D, 0, in, T * D, (int64_t)at * D, n * D, B);
}

void cuda_token_slice_backward(Ctx *ctx, Tensor din, Tensor dout, int at)
{
    int64_t B = din.shape[0], T = din.shape[1], n = dout.shape[1], D = din.shape[2];
    // din[b, at:at+n] (B, T, D) += dout[b] (B, n, D)
    accumulate_rows(ctx, "token_slice_backward", din, T * D, (int64_t)at * D, dout, n * D, 0, n * D, B);
}

void cuda_token_place_forward(Ctx *ctx, Tensor seq, Tensor src, int at)
{
    int64_t B = seq.shape[0], T = seq.shape[1], n = src.shape[1], D = seq.shape[2];
    // seq is (B, T, D), src is (B, n, D)
    copy_rows(ctx, "token_place_forward", seq, T * D, (int64_t)at * D, src, n * D, 0, n * D, B);
}

void cuda_token_place_backward(Ctx *ctx, Tensor dsrc, Tensor dseq, int at)
{
    int64_t B = dseq.shape[0], T = dseq.shape[1], n = dsrc.shape[1], D = dseq.shape[2];
    // dsrc[b] (B, n, D) += dseq[b, at:at+n] (B, T, D)
    accumulate_rows(ctx, "token_place_backward", dsrc, n * D, 0, dseq, T * D, (int64_t)at * D, n * D, B);
}

void cuda_concat_forward(Ctx *ctx, Tensor out, Tensor a, Tensor b)
{
    int64_t M = tensor_rows(out), Ca = tensor_cols(a), Cb = tensor_cols(b), C = Ca + Cb;
    // a is (M, Ca), b is (M, Cb), out is (M, C)
    copy_rows(ctx, "concat_forward", out, C, 0, a, Ca, 0, Ca, M);
    copy_rows(ctx, "concat_forward", out, C, Ca, b, Cb, 0, Cb, M);
}

void cuda_concat_backward(Ctx *ctx, Tensor da, Tensor db, Tensor dout)
{
    // dout is (M, Ca+Cb); da is (M, Ca), db is (M, Cb), either may be absent
    int64_t M = tensor_rows(dout), C = tensor_cols(dout);
    int64_t Ca = tensor_present(da) ? tensor_cols(da) : C - (tensor_present(db) ? tensor_cols(db) : 0);
    if (tensor_present(da)) accumulate_rows(ctx, "concat_backward", da, Ca, 0, dout, C, 0, Ca, M);
    if (tensor_present(db)) accumulate_rows(ctx, "concat_backward", db, C - Ca, 0, dout, C, Ca, C - Ca, M);
}

/* ---- rows copy -------------------------------------------------------------------------- */

// out row (dst ? dst[k] : k) = in row (src ? src[k] : k), rows of `units` U each
template <typename U>
__global__ void rows_copy_kernel(U *out, const int64_t *dst, const U *in, const int64_t *src, int64_t units,
                                 int64_t n)
{
    CUDA_GRID_STRIDE(i, n * units) {
        int64_t k = i / units, j = i % units;
        out[(dst ? dst[k] : k) * units + j] = in[(src ? src[k] : k) * units + j];
    }
}

template <typename U>
static void launch_rows_copy(Ctx *ctx, void *out, const int64_t *dst, const void *in, const int64_t *src,
                             size_t row, int64_t n)
{
    int64_t units = (int64_t)(row / sizeof(U));
    CUDA_LAUNCH(ctx, n * units, rows_copy_kernel<U>, (U *)out, dst, (const U *)in, src, units, n);
}

void cuda_rows_copy(Ctx *ctx, Tensor out, Tensor out_rows, Tensor in, Tensor in_rows)
{
    const int64_t *dst = tensor_present(out_rows) ? (const int64_t *)out_rows.data : NULL;
    const int64_t *src = tensor_present(in_rows) ? (const int64_t *)in_rows.data : NULL;
    int64_t n = dst ? out_rows.shape[0] : src ? in_rows.shape[0] : out.shape[0];
    size_t row = (size_t)tensor_item_numel(in) * dtype_size(in.dtype);
    /* in place, threads would read rows others are writing: gather into
       scratch, then one copy back */
    void *to = out.data == in.data ? ctx_scratch(ctx, (size_t)n * row) : out.data;
    /* the widest unit that divides the row and both sides' addresses */
    uintptr_t al = (uintptr_t)to | (uintptr_t)in.data | (uintptr_t)row;
    if (al % 16 == 0) launch_rows_copy<uint4>(ctx, to, dst, in.data, src, row, n);
    else if (al % 4 == 0) launch_rows_copy<uint32_t>(ctx, to, dst, in.data, src, row, n);
    else if (al % 2 == 0) launch_rows_copy<uint16_t>(ctx, to, dst, in.data, src, row, n);
    else launch_rows_copy<uint8_t>(ctx, to, dst, in.data, src, row, n);
    if (to != out.data)
        cudaCheck(cudaMemcpyAsync(out.data, to, (size_t)n * row, cudaMemcpyDeviceToDevice, cuda_stream(ctx)));
}
