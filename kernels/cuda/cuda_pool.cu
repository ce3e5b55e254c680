/*
 * cuda_pool.cu: max, average and global average pooling over NCHW images,
 * forward and backward (PyTorch's MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1),
 * ceil_mode false, the rules of kernels/ops.h), and the mean over the
 * tokens of a transformer's hidden state [B,T,D] -> [B,D].
 *
 * Forwards: one thread per output. Backwards gather instead of scatter: one
 * thread per input cell sums what every window covering it sends back
 * (max pooling recomputes each window's argmax from `in`, the first maximum
 * in row-major order, a NaN winning, as the CPU and PyTorch), so windows that
 * overlap (Inception's 3x3 stride 2) need no atomics and the order of the
 * additions is fixed. Tensors are F32 or BF16 (CudaIn/CudaOut), F32
 * arithmetic.
 */
#include "cuda_common.h"
#include "cuda_ops.h"

#define GLOBAL_POOL_WARPS 8 /* planes per block */

typedef struct {
    int64_t P, H, W, Ho, Wo;  /* planes (B*C), input and output sizes */
    Pool2dParams p;
} PoolShape;

/* the window of output (oh, ow), clipped to the image: rows [h0, h1), columns [w0, w1) */
__device__ __forceinline__ void pool_window(const PoolShape &s, int64_t oh, int64_t ow, int64_t *h0,
                                            int64_t *h1, int64_t *w0, int64_t *w1)
{
    int64_t hs = oh * s.p.stride_h - s.p.pad_h, ws = ow * s.p.stride_w - s.p.pad_w;
    int64_t he = hs + s.p.kernel_h, we = ws + s.p.kernel_w;
    *h0 = hs < 0 ? 0 : hs, *w0 = ws < 0 ? 0 : ws;
    *h1 = he > s.H ? s.H : he, *w1 = we > s.W ? s.W : we;
}

/* what an average divides by at (oh, ow): the cells inside the image, or with
   count_include_pad the cells inside image + padding (PyTorch's rule) */
__device__ __forceinline__ float pool_divisor(const PoolShape &s, int64_t oh, int64_t ow)
{
    int64_t hs = oh * s.p.stride_h - s.p.pad_h, ws = ow * s.p.stride_w - s.p.pad_w;
    if (!s.p.count_include_pad) {
        int64_t h0, h1, w0, w1;
        pool_window(s, oh, ow, &h0, &h1, &w0, &w1);
        return (float)((h1 - h0) * (w1 - w0));
    }
    int64_t he = hs + s.p.kernel_h, we = ws + s.p.kernel_w;
    if (he > s.H + s.p.pad_h) he = s.H + s.p.pad_h;
    if (we > s.W + s.p.pad_w) we = s.W + s.p.pad_w;
    return (float)((he - hs) * (we - ws));
}

/* the flat index in plane `plane` of the window's first maximum (NaN wins) */
__device__ int64_t argmax_window(CudaIn in, int64_t plane, const PoolShape &s, int64_t oh, int64_t ow)
{
    int64_t h0, h1, w0, w1;
    pool_window(s, oh, ow, &h0, &h1, &w0, &w1);
    int64_t base = plane * s.H * s.W, best = h0 * s.W + w0;
    float bv = -INFINITY;
    for (int64_t h = h0; h < h1; h++)
        for (int64_t w = w0; w < w1; w++) {
            float v = load_f32(in, base + h * s.W + w);
            if (v > bv || isnan(v)) {
                best = h * s.W + w, bv = v;
                if (isnan(v)) return best;
            }
        }
    return best;
}

/* the outputs whose windows cover input row h (or column): [*lo, *hi) */
__device__ __forceinline__ void covering(int64_t x, int k, int stride, int pad, int64_t n_out,
                                         int64_t *lo, int64_t *hi)
{
    /* o covers x when o*stride - pad <= x < o*stride - pad + k */
    int64_t a = x + pad - k + 1;
    *lo = a <= 0 ? 0 : (a + stride - 1) / stride;
    int64_t b = (x + pad) / stride + 1;
    *hi = b < n_out ? b : n_out;
}

// out is (P, Ho, Wo), in (P, H, W); max (is_max) or average per window
__global__ void pool2d_forward_kernel(CudaOut out, CudaIn in, PoolShape s, int is_max)
{
    CUDA_GRID_STRIDE(o, s.P * s.Ho * s.Wo) {
        int64_t pl = o / (s.Ho * s.Wo), oh = (o / s.Wo) % s.Ho, ow = o % s.Wo;
        float v;
        if (is_max) {
            v = load_f32(in, pl * s.H * s.W + argmax_window(in, pl, s, oh, ow));
        } else {
            int64_t h0, h1, w0, w1;
            pool_window(s, oh, ow, &h0, &h1, &w0, &w1);
            float sum = 0.0f;
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++) sum += load_f32(in, (pl * s.H + h) * s.W + w);
            v = sum / pool_divisor(s, oh, ow);
        }
        store_f32(out, o, v);
    }
}

// din is (P, H, W), dout (P, Ho, Wo); in (P, H, W) for max pooling
__global__ void pool2d_backward_kernel(CudaOut din, CudaIn dout, CudaIn in, PoolShape s, int is_max)
{
    CUDA_GRID_STRIDE(x, s.P * s.H * s.W) {
        int64_t pl = x / (s.H * s.W), h = (x / s.W) % s.H, w = x % s.W, cell = h * s.W + w;
        int64_t oh0, oh1, ow0, ow1;
        covering(h, s.p.kernel_h, s.p.stride_h, s.p.pad_h, s.Ho, &oh0, &oh1);
        covering(w, s.p.kernel_w, s.p.stride_w, s.p.pad_w, s.Wo, &ow0, &ow1);
        float sum = 0.0f;
        for (int64_t oh = oh0; oh < oh1; oh++)
            for (int64_t ow = ow0; ow < ow1; ow++) {
                float g = load_f32(dout, (pl * s.Ho + oh) * s.Wo + ow);
                if (is_max) sum += argmax_window(in, pl, s, oh, ow) == cell ? g : 0.0f;
                else sum += g / pool_divisor(s, oh, ow);
            }
        add_f32(din, x, sum);
    }
}

// out is (P,), in (P, N); one warp per plane
__global__ void global_avg_pool_kernel(CudaOut out, CudaIn in, int64_t P, int64_t N)
{
    int lane = threadIdx.x % 32;
    int64_t pl = (int64_t)blockIdx.x * GLOBAL_POOL_WARPS + threadIdx.x / 32;
    if (pl >= P) return;
    float sum = 0.0f;
    for (int64_t i = lane; i < N; i += 32) sum += load_f32(in, pl * N + i);
    sum = warp_sum(sum);
    if (lane == 0) store_f32(out, pl, sum / (float)N);
}

// din[x] += dout[x / N] / N: global pooling's backward (N = H*W) and the
// token mean's (din (B, T, D) from dout (B, D): the index map differs)
__global__ void spread_mean_kernel(CudaOut din, CudaIn dout, int64_t n, int64_t N, int64_t T,
                                   int64_t D, int tokens)
{
    CUDA_GRID_STRIDE(x, n) {
        int64_t src = tokens ? (x / (T * D)) * D + x % D : x / N;
        add_f32(din, x, load_f32(dout, src) / (float)(tokens ? T : N));
    }
}

// out is (B, D), in (B, T, D): thread per (b, d), tokens summed in order
__global__ void token_mean_kernel(CudaOut out, CudaIn in, int64_t B, int64_t T, int64_t D)
{
    CUDA_GRID_STRIDE(o, B * D) {
        int64_t b = o / D, d = o % D;
        float sum = 0.0f;
        for (int64_t t = 0; t < T; t++) sum += load_f32(in, (b * T + t) * D + d);
        store_f32(out, o, sum / (float)T);
    }
}

static PoolShape pool_shape(Tensor big, Tensor small, Pool2dParams p)
{
    PoolShape s = {big.shape[0] * big.shape[1], big.shape[2], big.shape[3], small.shape[2],
                   small.shape[3], p};
    return s;
}

static void pool_forward(Ctx *ctx, const char *op, Tensor out, Tensor in, Pool2dParams p, int is_max)
{
    PoolShape s = pool_shape(in, out, p);
    int64_t n = s.P * s.Ho * s.Wo;
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, in);
    if (n) CUDA_LAUNCH(ctx, n, pool2d_forward_kernel, o, x, s, is_max);
}

static void pool_backward(Ctx *ctx, const char *op, Tensor din, Tensor dout, Tensor in,
                          Pool2dParams p, int is_max)
{
    PoolShape s = pool_shape(din, dout, p);
    int64_t n = s.P * s.H * s.W;
    CudaOut d = cuda_out(op, din);
    CudaIn g = cuda_in(op, dout), x = cuda_in(op, in);
    if (n) CUDA_LAUNCH(ctx, n, pool2d_backward_kernel, d, g, x, s, is_max);
}

void cuda_max_pool2d_forward(Ctx *ctx, Tensor out, Tensor in, Pool2dParams p)
{
    pool_forward(ctx, "max_pool2d_forward", out, in, p, 1);
}
void cuda_max_pool2d_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in, Pool2dParams p)
{
    pool_backward(ctx, "max_pool2d_backward", din, dout, in, p, 1);
}
void cuda_avg_pool2d_forward(Ctx *ctx, Tensor out, Tensor in, Pool2dParams p)
{
    pool_forward(ctx, "avg_pool2d_forward", out, in, p, 0);
}
void cuda_avg_pool2d_backward(Ctx *ctx, Tensor din, Tensor dout, Pool2dParams p)
{
    pool_backward(ctx, "avg_pool2d_backward", din, dout, tensor_none(), p, 0);
}

void cuda_global_avg_pool_forward(Ctx *ctx, Tensor out, Tensor in)
{
    const char *op = "global_avg_pool_forward";
    int64_t P = in.shape[0] * in.shape[1], N = in.shape[2] * in.shape[3];
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, in);
    if (P == 0) return;
    global_avg_pool_kernel<<<(unsigned)((P + GLOBAL_POOL_WARPS - 1) / GLOBAL_POOL_WARPS),
                             GLOBAL_POOL_WARPS * 32, 0, cuda_stream(ctx)>>>(o, x, P, N);
    cudaCheck(cudaGetLastError());
}
void cuda_global_avg_pool_backward(Ctx *ctx, Tensor din, Tensor dout)
{
    const char *op = "global_avg_pool_backward";
    int64_t n = tensor_numel(din), N = din.shape[2] * din.shape[3];
    CudaOut d = cuda_out(op, din);
    CudaIn g = cuda_in(op, dout);
    if (n) CUDA_LAUNCH(ctx, n, spread_mean_kernel, d, g, n, N, (int64_t)1, (int64_t)1, 0);
}

void cuda_token_mean_forward(Ctx *ctx, Tensor out, Tensor in)
{
    const char *op = "token_mean_forward";
    int64_t B = in.shape[0], T = in.shape[1], D = in.shape[2];
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, in);
    if (B * D != 0) CUDA_LAUNCH(ctx, B * D, token_mean_kernel, o, x, B, T, D);
}
void cuda_token_mean_backward(Ctx *ctx, Tensor din, Tensor dout)
{
    const char *op = "token_mean_backward";
    int64_t n = tensor_numel(din), T = din.shape[1], D = din.shape[2];
    CudaOut d = cuda_out(op, din);
    CudaIn g = cuda_in(op, dout);
    if (n) CUDA_LAUNCH(ctx, n, spread_mean_kernel, d, g, n, (int64_t)1, T, D, 1);
}
