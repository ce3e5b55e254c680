/*
 * cuda_resize.cu: bilinear image resize (PyTorch's F.interpolate(mode=
 * 'bilinear', align_corners=False) to an output size), forward and backward.
 *
 * Per axis, output index d reads source position
 *   src = max(0, (d + 0.5) * in / out - 0.5)      (float, as PyTorch)
 * from neighbours i0 = floor(src), i1 = min(i0 + 1, in - 1) with weights
 * 1 - l and l, l = src - i0. The taps of both axes are computed on the host
 * with the CPU's exact float arithmetic (kernels/cpu/resize.c; a fused
 * multiply-add on the device would move src by an ulp) and uploaded into ctx
 * scratch, with, for every input index, the range of outputs whose taps
 * touch it. The forward is one thread per output (the row blend of two
 * column blends, in PyTorch's order); the backward gathers, one thread per
 * input cell over the outputs of its two ranges, so no atomics.
 * Tensors are F32 or BF16 (CudaIn/CudaOut), F32 arithmetic.
 */
#include <math.h>

#include "cuda_common.h"
#include "cuda_ops.h"

typedef struct {
    int32_t i0, i1;
    float w0, w1;
} Tap;

typedef struct {
    int32_t lo, hi; /* outputs [lo, hi) whose taps touch this input index */
} Span;

/* taps[out] of one axis, as kernels/cpu/resize.c computes them */
static void axis_taps(int64_t in, int64_t out, Tap *t, Span *span)
{
    float scale = (float)in / (float)out;
    for (int64_t i = 0; i < in; i++) span[i].lo = (int32_t)out, span[i].hi = 0;
    for (int64_t d = 0; d < out; d++) {
        float src = scale * ((float)d + 0.5f) - 0.5f;
        if (src < 0.0f) src = 0.0f;
        int64_t i0 = (int64_t)floorf(src);
        if (i0 > in - 1) i0 = in - 1;
        float l = src - (float)i0;
        l = l < 0.0f ? 0.0f : l > 1.0f ? 1.0f : l;
        t[d].i0 = (int32_t)i0;
        t[d].i1 = (int32_t)(i0 < in - 1 ? i0 + 1 : i0);
        t[d].w0 = 1.0f - l;
        t[d].w1 = l;
        for (int k = 0; k < 2; k++) { /* taps are monotone in d: ranges are contiguous */
            Span *s = &span[k ? t[d].i1 : t[d].i0];
            if (d < s->lo) s->lo = (int32_t)d;
            if (d + 1 > s->hi) s->hi = (int32_t)(d + 1);
        }
    }
}

/* the weight output tap t gives input index i (both neighbours may be i) */
__device__ __forceinline__ float tap_weight(Tap t, int64_t i)
{
    return (t.i0 == i ? t.w0 : 0.0f) + (t.i1 == i ? t.w1 : 0.0f);
}

// out is (P, Ho, Wo), in (P, H, W)
__global__ void resize_forward_kernel(CudaOut out, CudaIn in, const Tap *th, const Tap *tw,
                                      int64_t P, int64_t H, int64_t W, int64_t Ho, int64_t Wo)
{
    CUDA_GRID_STRIDE(o, P * Ho * Wo) {
        int64_t pl = o / (Ho * Wo), oh = (o / Wo) % Ho, ow = o % Wo;
        Tap r = th[oh], c = tw[ow];
        int64_t r0 = (pl * H + r.i0) * W, r1 = (pl * H + r.i1) * W;
        float top = __fadd_rn(__fmul_rn(load_f32(in, r0 + c.i0), c.w0), __fmul_rn(load_f32(in, r0 + c.i1), c.w1));
        float bottom = __fadd_rn(__fmul_rn(load_f32(in, r1 + c.i0), c.w0), __fmul_rn(load_f32(in, r1 + c.i1), c.w1));
        store_f32(out, o, __fadd_rn(__fmul_rn(top, r.w0), __fmul_rn(bottom, r.w1)));
    }
}

// din is (P, H, W), dout (P, Ho, Wo)
__global__ void resize_backward_kernel(CudaOut din, CudaIn dout, const Tap *th, const Tap *tw,
                                       const Span *sh, const Span *sw, int64_t P, int64_t H,
                                       int64_t W, int64_t Ho, int64_t Wo)
{
    CUDA_GRID_STRIDE(x, P * H * W) {
        int64_t pl = x / (H * W), h = (x / W) % H, w = x % W;
        float sum = 0.0f;
        for (int64_t oh = sh[h].lo; oh < sh[h].hi; oh++) {
            float a = tap_weight(th[oh], h);
            for (int64_t ow = sw[w].lo; ow < sw[w].hi; ow++)
                sum += load_f32(dout, (pl * Ho + oh) * Wo + ow) * a * tap_weight(tw[ow], w);
        }
        add_f32(din, x, sum);
    }
}

/* host taps and spans of both axes, uploaded into one scratch block */
typedef struct {
    Tap *th, *tw;
    Span *sh, *sw;
} Taps;

static Taps upload_taps(Ctx *ctx, int64_t H, int64_t W, int64_t Ho, int64_t Wo)
{
    size_t bth = cuda_align((size_t)Ho * sizeof(Tap)), btw = cuda_align((size_t)Wo * sizeof(Tap));
    size_t bsh = cuda_align((size_t)H * sizeof(Span)), bsw = cuda_align((size_t)W * sizeof(Span));
    size_t total = bth + btw + bsh + bsw;
    char *host = (char *)xcalloc(1, total), *dev = (char *)ctx_scratch(ctx, total);
    axis_taps(H, Ho, (Tap *)host, (Span *)(host + bth + btw));
    axis_taps(W, Wo, (Tap *)(host + bth), (Span *)(host + bth + btw + bsh));
    ctx_upload(ctx, dev, host, total);
    free(host);
    Taps t = {(Tap *)dev, (Tap *)(dev + bth), (Span *)(dev + bth + btw), (Span *)(dev + bth + btw + bsh)};
    return t;
}

void cuda_resize_bilinear_forward(Ctx *ctx, Tensor out, Tensor in)
{
    const char *op = "resize_bilinear_forward";
    int64_t P = in.shape[0] * in.shape[1], H = in.shape[2], W = in.shape[3];
    int64_t Ho = out.shape[2], Wo = out.shape[3];
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, in);
    if (P * Ho * Wo == 0) return;
    Taps t = upload_taps(ctx, H, W, Ho, Wo);
    CUDA_LAUNCH(ctx, P * Ho * Wo, resize_forward_kernel, o, x, t.th, t.tw, P, H, W, Ho, Wo);
}

void cuda_resize_bilinear_backward(Ctx *ctx, Tensor din, Tensor dout)
{
    const char *op = "resize_bilinear_backward";
    int64_t P = din.shape[0] * din.shape[1], H = din.shape[2], W = din.shape[3];
    int64_t Ho = dout.shape[2], Wo = dout.shape[3];
    CudaOut d = cuda_out(op, din);
    CudaIn g = cuda_in(op, dout);
    if (P * H * W == 0) return;
    Taps t = upload_taps(ctx, H, W, Ho, Wo);
    CUDA_LAUNCH(ctx, P * H * W, resize_backward_kernel, d, g, t.th, t.tw, t.sh, t.sw, P, H, W, Ho, Wo);
}
