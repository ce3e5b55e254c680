/*
 * cuda_tokens.cu: token slices, out[B,n,D] = in[B, at:at+n, D] and the
 * reverse placement seq[B, at:at+n, D] = src[B,n,D].
 *
 * Both are B strided copies of n*D contiguous elements, so one
 * cudaMemcpy2DAsync each: any dtype, no kernel of our own.
 */
#include "cuda_common.h"

/* copies B rows of `width` bytes between row pitches dpitch and spitch */
static void copy_rows(Ctx *ctx, void *dst, size_t dpitch, const void *src, size_t spitch,
                      size_t width, size_t B)
{
    if (width == 0 || B == 0) return;
    cudaCheck(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, B, cudaMemcpyDeviceToDevice,
                                cuda_stream(ctx)));
}

void cuda_token_slice_forward(Ctx *ctx, Tensor out, Tensor in, int at)
{
    cuda_same_dtype("token_slice_forward", out, in);
    size_t es = dtype_size(in.dtype);
    size_t B = (size_t)in.shape[0], T = (size_t)in.shape[1], n = (size_t)out.shape[1],
           D = (size_t)in.shape[2];
    // in is (B, T, D), out is (B, n, D)
    copy_rows(ctx, out.data, n * D * es, (const char *)in.data + (size_t)at * D * es,
              T * D * es, n * D * es, B);
}

void cuda_token_place_forward(Ctx *ctx, Tensor seq, Tensor src, int at)
{
    cuda_same_dtype("token_place_forward", seq, src);
    size_t es = dtype_size(seq.dtype);
    size_t B = (size_t)seq.shape[0], T = (size_t)seq.shape[1], n = (size_t)src.shape[1],
           D = (size_t)seq.shape[2];
    // seq is (B, T, D), src is (B, n, D)
    copy_rows(ctx, (char *)seq.data + (size_t)at * D * es, T * D * es, src.data, n * D * es,
              n * D * es, B);
}
