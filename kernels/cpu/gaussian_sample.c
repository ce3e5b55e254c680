/*
 * gaussian_sample.c: the KL autoencoder's posterior on the CPU: the
 * reparameterised draw z = mean + std eps and the KL term against N(0, 1),
 * forward and backward (kernels/ops.h, "the KL autoencoder's posterior").
 *
 * One image per task; the KL sums each image in double and the images in
 * order, so the result does not depend on the thread count.
 */
#include <math.h>

#include "cpu_ops.h"
#include "cpu_parallel.h"

#define LOGVAR_MIN (-30.0f)
#define LOGVAR_MAX 20.0f

static float clamp_logvar(float lv) { return fminf(fmaxf(lv, LOGVAR_MIN), LOGVAR_MAX); }

float cpu_gaussian_sample_forward(Ctx *ctx, Tensor z, Tensor moments, Tensor eps)
{
    int64_t B = eps.shape[0], n = tensor_numel(eps) / B;  // n = C*h*w per image
    const float *mom = tensor_f32(moments);                // mom is (B, 2, n): mean, logvar
    const float *e = tensor_f32(eps);                      // e is (B, n)
    float *out = tensor_present(z) ? tensor_f32(z) : NULL; // out is (B, n)
    double *kl = ctx_scratch(ctx, (size_t)B * sizeof(double));
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        const float *mean = mom + b * 2 * n, *logvar = mean + n;
        double sum = 0;
        for (int64_t j = 0; j < n; j++) {
            float lv = clamp_logvar(logvar[j]);
            if (out) out[b * n + j] = mean[j] + expf(0.5f * lv) * e[b * n + j];
            sum += (double)mean[j] * mean[j] + exp((double)lv) - 1.0 - lv;
        }
        kl[b] = 0.5 * sum;
    }
    double total = 0;
    for (int64_t b = 0; b < B; b++) total += kl[b];
    return (float)(total / (double)B);
}

void cpu_gaussian_sample_backward(Ctx *ctx, Tensor dmoments, Tensor dz, Tensor moments, Tensor eps,
                                  float kl_weight)
{
    int64_t B = eps.shape[0], n = tensor_numel(eps) / B;
    const float *mom = tensor_f32(moments);                   // (B, 2, n)
    const float *e = tensor_f32(eps);                         // (B, n)
    const float *g = tensor_present(dz) ? tensor_f32(dz) : NULL; // (B, n)
    float *dm = tensor_f32(dmoments);                         // (B, 2, n)
    float w = kl_weight / (float)B;
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        const float *mean = mom + b * 2 * n, *logvar = mean + n;
        float *dmean = dm + b * 2 * n, *dlogvar = dmean + n;
        for (int64_t j = 0; j < n; j++) {
            float gz = g ? g[b * n + j] : 0.0f;
            dmean[j] += gz + w * mean[j];
            if (logvar[j] < LOGVAR_MIN || logvar[j] > LOGVAR_MAX) continue;  // clamped: no gradient
            float var = expf(logvar[j]);
            dlogvar[j] += gz * 0.5f * sqrtf(var) * e[b * n + j] + 0.5f * w * (var - 1.0f);
        }
    }
}
