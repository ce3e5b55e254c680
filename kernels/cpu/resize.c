/*
 * resize.c: bilinear image resize (PyTorch's F.interpolate(mode='bilinear',
 * align_corners=False) with an output size) on the CPU, forward and backward.
 *
 * Per axis, output index d reads source position
 *   src = max(0, (d + 0.5) * in / out - 0.5)      (float, as PyTorch)
 * from neighbours i0 = floor(src), i1 = min(i0 + 1, in - 1) with weights
 * 1 - l and l, l = src - i0. The 2-D value is the row blend of two column
 * blends, in PyTorch's order. The backward scatters each output gradient
 * back to its four sources, one plane (b, c) per thread.
 */
#include <math.h>
#include <stdlib.h>

#include "../errors.h"
#include "cpu_ops.h"
#include "cpu_parallel.h"

typedef struct {
    int64_t i0, i1;
    float w0, w1;
} Tap;

/* taps[out] for one axis */
static Tap *axis_taps(int64_t in, int64_t out)
{
    Tap *t = xmalloc((size_t)out * sizeof(Tap));
    float scale = (float)in / (float)out;
    for (int64_t d = 0; d < out; d++) {
        float src = scale * ((float)d + 0.5f) - 0.5f;
        if (src < 0.0f) src = 0.0f;
        int64_t i0 = (int64_t)floorf(src);
        if (i0 > in - 1) i0 = in - 1;
        float l = src - (float)i0;
        l = l < 0.0f ? 0.0f : l > 1.0f ? 1.0f : l;
        t[d].i0 = i0;
        t[d].i1 = i0 < in - 1 ? i0 + 1 : i0;
        t[d].w0 = 1.0f - l;
        t[d].w1 = l;
    }
    return t;
}

void cpu_resize_bilinear_forward(Ctx *ctx, Tensor out, Tensor in)
{
    int64_t P = in.shape[0] * in.shape[1], H = in.shape[2], W = in.shape[3];
    int64_t Ho = out.shape[2], Wo = out.shape[3];
    Tap *th = axis_taps(H, Ho), *tw = axis_taps(W, Wo);
    const float *x = tensor_f32(in);  // x is (P,H,W)
    float *y = tensor_f32(out);       // y is (P,Ho,Wo)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (P * Ho * Wo > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t pl = 0; pl < P; pl++) {
        const float *plane = x + pl * H * W;
        float *o = y + pl * Ho * Wo;
        for (int64_t oh = 0; oh < Ho; oh++) {
            const float *r0 = plane + th[oh].i0 * W, *r1 = plane + th[oh].i1 * W;
            float a = th[oh].w0, b = th[oh].w1;
            for (int64_t ow = 0; ow < Wo; ow++) {
                Tap c = tw[ow];
                float top = r0[c.i0] * c.w0 + r0[c.i1] * c.w1;
                float bottom = r1[c.i0] * c.w0 + r1[c.i1] * c.w1;
                o[oh * Wo + ow] = top * a + bottom * b;
            }
        }
    }
    free(th);
    free(tw);
}

void cpu_resize_bilinear_backward(Ctx *ctx, Tensor din, Tensor dout)
{
    int64_t P = din.shape[0] * din.shape[1], H = din.shape[2], W = din.shape[3];
    int64_t Ho = dout.shape[2], Wo = dout.shape[3];
    Tap *th = axis_taps(H, Ho), *tw = axis_taps(W, Wo);
    const float *g = tensor_f32(dout);  // g is (P,Ho,Wo)
    float *dx = tensor_f32(din);        // dx is (P,H,W)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (P * Ho * Wo > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t pl = 0; pl < P; pl++) {
        float *plane = dx + pl * H * W;
        const float *gp = g + pl * Ho * Wo;
        for (int64_t oh = 0; oh < Ho; oh++) {
            float *r0 = plane + th[oh].i0 * W, *r1 = plane + th[oh].i1 * W;
            float a = th[oh].w0, b = th[oh].w1;
            for (int64_t ow = 0; ow < Wo; ow++) {
                Tap c = tw[ow];
                float v = gp[oh * Wo + ow];
                r0[c.i0] += v * a * c.w0;
                r0[c.i1] += v * a * c.w1;
                r1[c.i0] += v * b * c.w0;
                r1[c.i1] += v * b * c.w1;
            }
        }
    }
    free(th);
    free(tw);
}
