/*
 * row_scores.c: the early-exit rules' per-row scores on the CPU (ops.h,
 * "exit scores"): a row's mean (DeeDiff's uncertainty map) and the cosine
 * distance of two rows (CALM's hidden-state saturation).
 *
 * Each row is summed in double by one thread in a fixed order, so a score
 * has the same bits whatever the thread count:
 *   row_mean             one running sum, in element order;
 *   row_cosine_distance  the three dot products in LANES independent sums
 *                        (which the compiler vectorises; one running sum
 *                        would serialise on its adds), added in lane order.
 */
#include <math.h>

#include "cpu_ops.h"
#include "cpu_parallel.h"

#define LANES 8

void cpu_row_mean(Ctx *ctx, Tensor out, Tensor in)
{
    int64_t R = in.shape[0], n = tensor_item_numel(in);
    const float *x = tensor_f32(in);  // x is (R, n)
    float *y = tensor_f32(out);       // y is (R)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (R * n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t r = 0; r < R; r++) {
        double sum = 0;
        for (int64_t j = 0; j < n; j++) sum += x[r * n + j];
        y[r] = (float)(sum / (double)n);
    }
}

void cpu_row_cosine_distance(Ctx *ctx, Tensor out, Tensor a, Tensor b)
{
    int64_t R = a.shape[0], n = tensor_item_numel(a);
    const float *pa = tensor_f32(a), *pb = tensor_f32(b);  // pa, pb are (R, n)
    float *y = tensor_f32(out);                            // y is (R)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (R * n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const float *p = pa + r * n, *c = pb + r * n;
        double pc[LANES] = {0}, pp[LANES] = {0}, cc[LANES] = {0};
        int64_t j = 0;
        for (; j + LANES <= n; j += LANES)
            for (int l = 0; l < LANES; l++) {
                double x = p[j + l], z = c[j + l];
                pc[l] += x * z;
                pp[l] += x * x;
                cc[l] += z * z;
            }
        for (; j < n; j++) {
            pc[0] += (double)p[j] * c[j];
            pp[0] += (double)p[j] * p[j];
            cc[0] += (double)c[j] * c[j];
        }
        double spc = 0, spp = 0, scc = 0;
        for (int l = 0; l < LANES; l++) spc += pc[l], spp += pp[l], scc += cc[l];
        y[r] = spp > 0 && scc > 0 ? (float)(1 - spc / sqrt(spp * scc)) : 1.0f;
    }
}
