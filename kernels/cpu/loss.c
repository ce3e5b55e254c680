/*
 * loss.c: the mean squared error loss and DeeDiff's uncertainty losses
 * (ops.h, eqs. 9, 10, 12) on the CPU, forward and backward.
 */
#include <math.h>

#include "cpu_ops.h"
#include "cpu_parallel.h"

/* mean over all n elements of (pred - target)^2, summed in double */
float cpu_mse_forward(Ctx *ctx, Tensor pred, Tensor target)
{
    int64_t n = tensor_numel(pred);
    const float *x = tensor_f32(pred), *y = tensor_f32(target);
    double sum = 0;
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) reduction(+ : sum) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - y[i];
        sum += d * d;
    }
    return n ? (float)(sum / (double)n) : 0.0f;
}

/* dpred += dloss * 2 (pred - target) / n */
void cpu_mse_backward(Ctx *ctx, Tensor dpred, Tensor pred, Tensor target, float dloss)
{
    int64_t n = tensor_numel(pred);
    if (!n) return;
    const float *x = tensor_f32(pred), *y = tensor_f32(target);
    float *dx = tensor_f32(dpred);
    float scale = (float)(2.0 * dloss / (double)n);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] += scale * (x[i] - y[i]);
}

/* lu = mean (u - tanh|g - eps|)^2, lual = mean (1 - u)(g - eps)^2, in double */
UncertaintyLoss cpu_uncertainty_loss_forward(Ctx *ctx, Tensor g, Tensor eps, Tensor u)
{
    int64_t n = tensor_numel(g);
    const float *pg = tensor_f32(g), *pe = tensor_f32(eps), *pu = tensor_f32(u);
    double su = 0, sual = 0;
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) reduction(+ : su, sual) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double e = (double)pg[i] - pe[i];
        double du = pu[i] - tanh(fabs(e));
        su += du * du;
        sual += (1.0 - pu[i]) * e * e;
    }
    UncertaintyLoss r = {0, 0};
    if (n) r.lu = (float)(su / (double)n), r.lual = (float)(sual / (double)n);
    return r;
}

void cpu_uncertainty_loss_backward(Ctx *ctx, Tensor dg, Tensor du, Tensor g, Tensor eps,
                                   Tensor u, float w_u, float w_ual, float w_ual_u)
{
    int64_t n = tensor_numel(g);
    if (!n) return;
    const float *pg = tensor_f32(g), *pe = tensor_f32(eps), *pu = tensor_f32(u);
    float *dgp = tensor_present(dg) ? tensor_f32(dg) : NULL;
    float *dup = tensor_present(du) ? tensor_f32(du) : NULL;
    float inv_n = (float)(1.0 / (double)n);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float e = pg[i] - pe[i];
        if (dgp) dgp[i] += w_ual * (1.0f - pu[i]) * 2.0f * e * inv_n;
        if (dup) dup[i] += (w_u * 2.0f * (pu[i] - tanhf(fabsf(e))) - w_ual_u * e * e) * inv_n;
    }
}
