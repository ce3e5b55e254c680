/*
 * loss.c: the mean squared error loss on the CPU, forward and backward.
 */
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
