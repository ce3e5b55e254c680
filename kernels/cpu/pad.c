/*
 * pad.c: zero padding of images on the CPU, forward and backward
 * (F.pad(x, (left, right, top, bottom)) with zeros, as the KL autoencoder's
 * Downsample pads (0, 1, 0, 1) before its stride-2 convolution).
 *
 * out[p, top + y, left + x] = in[p, y, x], zeros elsewhere, for every plane
 * p = (b, c); the backward adds that inner window of dout into din. One
 * plane per task.
 */
#include <string.h>

#include "cpu_ops.h"
#include "cpu_parallel.h"

void cpu_pad2d_forward(Ctx *ctx, Tensor out, Tensor in, Pad2dParams p)
{
    int64_t P = in.shape[0] * in.shape[1], H = in.shape[2], W = in.shape[3];
    int64_t Ho = out.shape[2], Wo = out.shape[3];
    const float *x = tensor_f32(in);  // x is (P,H,W)
    float *y = tensor_f32(out);       // y is (P,Ho,Wo)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (P * Ho * Wo > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t pl = 0; pl < P; pl++) {
        float *dst = y + pl * Ho * Wo;
        const float *src = x + pl * H * W;
        memset(dst, 0, (size_t)(p.top * Wo) * sizeof(float));
        for (int64_t iy = 0; iy < H; iy++) {
            float *o = dst + (p.top + iy) * Wo;
            memset(o, 0, (size_t)p.left * sizeof(float));
            memcpy(o + p.left, src + iy * W, (size_t)W * sizeof(float));
            memset(o + p.left + W, 0, (size_t)p.right * sizeof(float));
        }
        memset(dst + (p.top + H) * Wo, 0, (size_t)(p.bottom * Wo) * sizeof(float));
    }
}

void cpu_pad2d_backward(Ctx *ctx, Tensor din, Tensor dout, Pad2dParams p)
{
    int64_t P = din.shape[0] * din.shape[1], H = din.shape[2], W = din.shape[3];
    int64_t Ho = dout.shape[2], Wo = dout.shape[3];
    const float *g = tensor_f32(dout);  // g is (P,Ho,Wo)
    float *dx = tensor_f32(din);        // dx is (P,H,W)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (P * Ho * Wo > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t pl = 0; pl < P; pl++)
        for (int64_t iy = 0; iy < H; iy++) {
            const float *src = g + pl * Ho * Wo + (p.top + iy) * Wo + p.left;
            float *dst = dx + (pl * H + iy) * W;
            for (int64_t ix = 0; ix < W; ix++) dst[ix] += src[ix];
        }
}
