/*
 * batchnorm.c: BatchNorm2d in eval mode on the CPU, forward and backward.
 *
 * With running statistics the op is a per-channel affine map:
 *   scale[c] = w[c] / sqrt(var[c] + eps),  shift[c] = b[c] - mean[c] scale[c]
 *   out[b,c,:,:] = in[b,c,:,:] * scale[c] + shift[c]
 * Backward (mean and var are constants):
 *   din  += dout * scale[c]
 *   dw[c] += sum over (b,h,w) of dout * (in - mean[c]) / sqrt(var[c] + eps)
 *   db[c] += sum over (b,h,w) of dout
 * Channels are independent, so both directions run one channel per thread.
 */
#include <math.h>

#include "cpu_ops.h"
#include "cpu_parallel.h"

void cpu_batchnorm_forward(Ctx *ctx, Tensor out, Tensor in, Tensor mean, Tensor var, Tensor w,
                           Tensor b, float eps)
{
    int64_t B = in.shape[0], C = in.shape[1], N = in.shape[2] * in.shape[3];
    const float *x = tensor_f32(in);  // x is (B,C,N)
    float *y = tensor_f32(out);       // y is (B,C,N)
    const float *mu = tensor_f32(mean), *v = tensor_f32(var), *g = tensor_f32(w), *be = tensor_f32(b);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * C * N > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        float scale = (float)(g[c] / sqrt((double)v[c] + eps));
        float shift = be[c] - mu[c] * scale;
        for (int64_t bi = 0; bi < B; bi++) {
            const float *xp = x + (bi * C + c) * N;
            float *yp = y + (bi * C + c) * N;
            for (int64_t i = 0; i < N; i++) yp[i] = xp[i] * scale + shift;
        }
    }
}

void cpu_batchnorm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout, Tensor in,
                            Tensor mean, Tensor var, Tensor w, float eps)
{
    int64_t B = in.shape[0], C = in.shape[1], N = in.shape[2] * in.shape[3];
    const float *x = tensor_f32(in), *gy = tensor_f32(dout);  // (B,C,N) each
    float *dx = tensor_present(din) ? tensor_f32(din) : NULL;
    float *dgw = tensor_present(dw) ? tensor_f32(dw) : NULL;
    float *dgb = tensor_present(db) ? tensor_f32(db) : NULL;
    const float *mu = tensor_f32(mean), *v = tensor_f32(var), *g = tensor_f32(w);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * C * N > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        double rstd = 1.0 / sqrt((double)v[c] + eps);
        float scale = (float)(g[c] * rstd);
        double sum_g = 0, sum_gx = 0;
        for (int64_t bi = 0; bi < B; bi++) {
            const float *xp = x + (bi * C + c) * N, *gp = gy + (bi * C + c) * N;
            float part_g = 0.0f, part_gx = 0.0f;
            for (int64_t i = 0; i < N; i++) {
                part_g += gp[i];
                part_gx += gp[i] * (xp[i] - mu[c]);
            }
            sum_g += part_g, sum_gx += part_gx;
            if (dx) {
                float *dp = dx + (bi * C + c) * N;
                for (int64_t i = 0; i < N; i++) dp[i] += gp[i] * scale;
            }
        }
        if (dgw) dgw[c] += (float)(sum_gx * rstd);
        if (dgb) dgb[c] += (float)sum_g;
    }
}
