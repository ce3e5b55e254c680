/*
 * upsample.c: nearest-neighbour upsampling by integer factors on the CPU,
 * forward and backward (F.interpolate(mode='nearest', scale_factor=s), as
 * the KL autoencoder's Upsample uses it with s = 2).
 *
 * out[p, y, x] = in[p, y / s_h, x / s_w] for every plane p = (b, c); the
 * backward adds the sum of each s_h x s_w output block into its source
 * pixel. One plane per task: planes never share memory.
 */
#include "cpu_ops.h"
#include "cpu_parallel.h"

void cpu_upsample_nearest_forward(Ctx *ctx, Tensor out, Tensor in)
{
    int64_t P = in.shape[0] * in.shape[1], H = in.shape[2], W = in.shape[3];
    int64_t Ho = out.shape[2], Wo = out.shape[3], sh = Ho / H, sw = Wo / W;
    const float *x = tensor_f32(in);  // x is (P,H,W)
    float *y = tensor_f32(out);       // y is (P,Ho,Wo)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (P * Ho * Wo > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t pl = 0; pl < P; pl++) {
        const float *src = x + pl * H * W;
        float *dst = y + pl * Ho * Wo;
        for (int64_t oy = 0; oy < Ho; oy++) {
            const float *row = src + (oy / sh) * W;
            float *o = dst + oy * Wo;
            for (int64_t ix = 0; ix < W; ix++)
                for (int64_t k = 0; k < sw; k++) o[ix * sw + k] = row[ix];
        }
    }
}

void cpu_upsample_nearest_backward(Ctx *ctx, Tensor din, Tensor dout)
{
    int64_t P = din.shape[0] * din.shape[1], H = din.shape[2], W = din.shape[3];
    int64_t Ho = dout.shape[2], Wo = dout.shape[3], sh = Ho / H, sw = Wo / W;
    const float *g = tensor_f32(dout);  // g is (P,Ho,Wo)
    float *dx = tensor_f32(din);        // dx is (P,H,W)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (P * Ho * Wo > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t pl = 0; pl < P; pl++) {
        const float *src = g + pl * Ho * Wo;
        float *dst = dx + pl * H * W;
        for (int64_t iy = 0; iy < H; iy++)
            for (int64_t ix = 0; ix < W; ix++) {
                float acc = 0.0f;
                for (int64_t a = 0; a < sh; a++)
                    for (int64_t k = 0; k < sw; k++) acc += src[(iy * sh + a) * Wo + ix * sw + k];
                dst[iy * W + ix] += acc;
            }
    }
}
