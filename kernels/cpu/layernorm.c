/*
 * layernorm.c: LayerNorm over the last dimension, forward and backward.
 *
 * Rows are independent, so both passes split rows across threads. The
 * backward's dw and db sum over rows: each thread sums its rows into its own
 * slice of ctx scratch (padded to whole cache lines), and the slices are
 * added in thread order afterwards, so the result does not depend on timing.
 *
 *   forward:  n = (x - mean) * rstd,  out = n * w + b
 *   backward: g = dout * w
 *             din += rstd * (g - mean(g) - n * mean(g * n))
 *             dw  += sum over rows of dout * n,  db += sum of dout
 */
#include <math.h>
#include <string.h>

#include "cpu_ops.h"
#include "cpu_parallel.h"

void cpu_layernorm_forward(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd, Tensor in,
                           Tensor w, Tensor b, float eps)
{
    // in, out are (M,C); w, b are (C); mean, rstd are (M)
    int64_t M = tensor_rows(in), C = tensor_cols(in);
    const float *x = tensor_f32(in), *wt = tensor_f32(w), *bs = tensor_f32(b);
    float *y = tensor_f32(out), *mu = tensor_f32(mean), *rs = tensor_f32(rstd);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (M * C > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * C;
        float *yr = y + m * C;
        float sum = 0.0f;
        #pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < C; c++) sum += xr[c];
        float mv = sum / (float)C;
        float var = 0.0f;  /* two passes over a row that sits in L1 */
        #pragma omp simd reduction(+ : var)
        for (int64_t c = 0; c < C; c++) {
            float d = xr[c] - mv;
            var += d * d;
        }
        float r = 1.0f / sqrtf(var / (float)C + eps);
        for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - mv) * r * wt[c] + bs[c];
        mu[m] = mv;
        rs[m] = r;
    }
}

void cpu_layernorm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout,
                            Tensor in, Tensor w, Tensor mean, Tensor rstd)
{
    // dout, in, din are (M,C); w, dw, db are (C); mean, rstd are (M)
    int64_t M = tensor_rows(in), C = tensor_cols(in);
    const float *x = tensor_f32(in), *g = tensor_f32(dout), *wt = tensor_f32(w);
    const float *mu = tensor_f32(mean), *rs = tensor_f32(rstd);
    float *dx = tensor_present(din) ? tensor_f32(din) : NULL;
    int want_params = tensor_present(dw) || tensor_present(db);
    int nt = M * C > CPU_PARALLEL_MIN ? cpu_threads(ctx) : 1;
    int64_t stride = cpu_pad16(2 * C);  /* one thread's dw then db partial sums */
    float *part = want_params ? ctx_scratch(ctx, (size_t)(nt * stride) * sizeof(float)) : NULL;
    if (part) memset(part, 0, (size_t)(nt * stride) * sizeof(float));

    #pragma omp parallel num_threads(nt)
    {
        float *pw = part ? part + omp_get_thread_num() * stride : NULL, *pb = pw ? pw + C : NULL;
        #pragma omp for schedule(static)
        for (int64_t m = 0; m < M; m++) {
            const float *xr = x + m * C, *gr = g + m * C;
            float mv = mu[m], r = rs[m];
            if (dx) {
                float gsum = 0.0f, gnsum = 0.0f;
                #pragma omp simd reduction(+ : gsum, gnsum)
                for (int64_t c = 0; c < C; c++) {
                    float gw = gr[c] * wt[c], n = (xr[c] - mv) * r;
                    gsum += gw;
                    gnsum += gw * n;
                }
                float gmean = gsum / (float)C, gnmean = gnsum / (float)C;
                float *dr = dx + m * C;
                for (int64_t c = 0; c < C; c++) {
                    float n = (xr[c] - mv) * r;
                    dr[c] += r * (gr[c] * wt[c] - gmean - n * gnmean);
                }
            }
            if (pw)
                for (int64_t c = 0; c < C; c++) {
                    pw[c] += gr[c] * (xr[c] - mv) * r;
                    pb[c] += gr[c];
                }
        }
    }
    if (!part) return;
    float *dwt = tensor_present(dw) ? tensor_f32(dw) : NULL;
    float *dbs = tensor_present(db) ? tensor_f32(db) : NULL;
    for (int t = 0; t < nt; t++) {
        const float *pw = part + t * stride, *pb = pw + C;
        if (dwt) for (int64_t c = 0; c < C; c++) dwt[c] += pw[c];
        if (dbs) for (int64_t c = 0; c < C; c++) dbs[c] += pb[c];
    }
}
