/*
 * embedding.c: U-ViT's sinusoidal timestep embedding and the label
 * embedding lookup, on the CPU, forward and backward.
 *
 * The timestep embedding follows U-ViT's timestep_embedding() in PyTorch's
 * float32 arithmetic step by step, so the arguments of exp match PyTorch's
 * bit for bit; PyTorch's vectorised exp is off by one ulp for about one
 * frequency in ten, which moves a token by at most 3e-5 at t = 999:
 *   freqs = exp(-ln(10000) * arange(half) / half)     (float32 throughout)
 *   args  = t * freqs                                 (float32)
 *   out   = [cos(args), sin(args)] (+ a zero column when D is odd)
 */
#include <math.h>

#include "cpu_ops.h"
#include "cpu_parallel.h"

/* f_j = exp(-ln(10000) * j / half) rounded as PyTorch rounds it */
static float timestep_freq(int64_t j, int64_t half)
{
    const float neg_log_period = (float)-log(10000.0);
    float x = neg_log_period * (float)j;
    x = x / (float)half;
    return expf(x);
}

void cpu_timestep_embedding_forward(Ctx *ctx, Tensor out, Tensor t)
{
    int64_t B = tensor_rows(out), D = tensor_cols(out), half = D / 2;
    float *o = tensor_f32(out);        // o is (B,D)
    const float *tp = tensor_f32(t);   // tp is (B)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * D > CPU_PARALLEL_MIN / 8) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        float *row = o + b * D;
        for (int64_t j = 0; j < half; j++) {
            float arg = tp[b] * timestep_freq(j, half);
            row[j] = cosf(arg);
            row[half + j] = sinf(arg);
        }
        if (D % 2) row[D - 1] = 0.0f;
    }
}

/* dt[b] += sum_j dout[b,j] (-f_j sin(t f_j)) + dout[b,half+j] (f_j cos(t f_j)) */
void cpu_timestep_embedding_backward(Ctx *ctx, Tensor dt, Tensor dout, Tensor t)
{
    int64_t B = tensor_rows(dout), D = tensor_cols(dout), half = D / 2;
    const float *g = tensor_f32(dout);  // g is (B,D)
    const float *tp = tensor_f32(t);
    float *dtp = tensor_f32(dt);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * D > CPU_PARALLEL_MIN / 8) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        const float *row = g + b * D;
        double acc = 0;
        for (int64_t j = 0; j < half; j++) {
            float f = timestep_freq(j, half), arg = tp[b] * f;
            acc += (double)f * (row[half + j] * cosf(arg) - row[j] * sinf(arg));
        }
        dtp[b] += (float)acc;
    }
}

void cpu_embedding_forward(Ctx *ctx, Tensor out, Tensor ids, Tensor table)
{
    int64_t B = tensor_numel(ids), D = table.shape[1];
    const int64_t *id = (const int64_t *)ids.data;  // id is (B)
    const float *tab = tensor_f32(table);           // tab is (V,D)
    float *o = tensor_f32(out);                     // o is (B,D)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * D > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t d = 0; d < D; d++) o[b * D + d] = tab[id[b] * D + d];
}

/* dtable[ids[b]] += dout[b]. Two rows may share an id, so threads split the
   columns, not the rows: each column block sums its rows in batch order. */
void cpu_embedding_backward(Ctx *ctx, Tensor dtable, Tensor dout, Tensor ids)
{
    enum { COLS_PER_BLOCK = 64 };
    int64_t B = tensor_numel(ids), D = tensor_cols(dtable);
    int64_t blocks = (D + COLS_PER_BLOCK - 1) / COLS_PER_BLOCK;
    const int64_t *id = (const int64_t *)ids.data;  // id is (B)
    const float *g = tensor_f32(dout);              // g is (B,D)
    float *dtab = tensor_f32(dtable);               // dtab is (V,D)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * D > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t blk = 0; blk < blocks; blk++) {
        int64_t d0 = blk * COLS_PER_BLOCK;
        int64_t d1 = d0 + COLS_PER_BLOCK < D ? d0 + COLS_PER_BLOCK : D;
        for (int64_t b = 0; b < B; b++)
            for (int64_t d = d0; d < d1; d++) dtab[id[b] * D + d] += g[b * D + d];
    }
}
