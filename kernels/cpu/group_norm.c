/*
 * group_norm.c: GroupNorm (torch.nn.GroupNorm) on the CPU, forward and
 * backward, for in[B,C,S] (S: every trailing dimension flattened).
 *
 * The channels of one image split into G groups of Cg = C/G; group (b, g)
 * is the contiguous block in[b, g*Cg:(g+1)*Cg, :] of M = Cg*S values, so
 * the B*G blocks are independent and run one per task. Statistics are
 * summed in double (a block of the Stable Diffusion autoencoder holds 262,144
 * values at 256x256): mean, biased variance in a second pass, then
 *   n = (x - mean) * rstd,  rstd = 1 / sqrt(var + eps),  out = n w[c] + b[c]
 * Backward, with g = dout * w[c] (w = 1 without affine parameters):
 *   din   += rstd * (g - mean_block(g) - n * mean_block(g * n))
 *   dw[c] += sum over (b, s) of dout * n,   db[c] += sum of dout
 * dw and db are summed per (b, c) inside the block's task into ctx scratch,
 * then over b in a fixed order, so results do not depend on the thread count.
 */
#include <math.h>

#include "cpu_ops.h"
#include "cpu_parallel.h"

/* values per channel of in[B,C,...] (1 for an empty batch) */
static int64_t per_channel(Tensor in)
{
    int64_t bc = in.shape[0] * in.shape[1];
    return bc > 0 ? tensor_numel(in) / bc : 1;
}

void cpu_group_norm_forward(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd, Tensor in,
                            Tensor w, Tensor b, int groups, float eps)
{
    int64_t B = in.shape[0], C = in.shape[1], S = per_channel(in);
    int64_t G = groups, Cg = C / G, M = Cg * S;
    const float *x = tensor_f32(in);                                   // x is (B,C,S)
    const float *wt = tensor_present(w) ? tensor_f32(w) : NULL;        // (C) or none
    const float *bs = tensor_present(b) ? tensor_f32(b) : NULL;
    float *y = tensor_f32(out), *mu = tensor_f32(mean), *rs = tensor_f32(rstd);  // mu, rs are (B,G)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * C * S > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t bg = 0; bg < B * G; bg++) {
        const float *xb = x + bg * M;   // the block (Cg,S)
        float *yb = y + bg * M;
        double sum = 0;
        #pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < M; i++) sum += xb[i];
        double m = M ? sum / (double)M : 0.0, var = 0;
        #pragma omp simd reduction(+ : var)
        for (int64_t i = 0; i < M; i++) {
            double d = xb[i] - m;
            var += d * d;
        }
        float r = (float)(1.0 / sqrt((M ? var / (double)M : 0.0) + eps)), mf = (float)m;
        int64_t c0 = (bg % G) * Cg;
        for (int64_t k = 0; k < Cg; k++) {
            float scale = wt ? r * wt[c0 + k] : r, shift = bs ? bs[c0 + k] : 0.0f;
            const float *xc = xb + k * S;
            float *yc = yb + k * S;
            for (int64_t s = 0; s < S; s++) yc[s] = (xc[s] - mf) * scale + shift;
        }
        mu[bg] = mf;
        rs[bg] = r;
    }
}

void cpu_group_norm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout,
                             Tensor in, Tensor w, Tensor mean, Tensor rstd, int groups)
{
    int64_t B = in.shape[0], C = in.shape[1], S = per_channel(in);
    int64_t G = groups, Cg = C / G, M = Cg * S;
    const float *x = tensor_f32(in), *gy = tensor_f32(dout);           // (B,C,S) each
    const float *wt = tensor_present(w) ? tensor_f32(w) : NULL;
    const float *mu = tensor_f32(mean), *rs = tensor_f32(rstd);        // (B,G)
    float *dx = tensor_present(din) ? tensor_f32(din) : NULL;
    float *dwt = tensor_present(dw) ? tensor_f32(dw) : NULL, *dbs = tensor_present(db) ? tensor_f32(db) : NULL;
    /* part[(b*C + c)*2 + {0,1}]: sum over s of dout*n and of dout, per (b, c) */
    double *part = dwt || dbs ? ctx_scratch(ctx, (size_t)(B * C * 2) * sizeof(double)) : NULL;

    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * C * S > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t bg = 0; bg < B * G; bg++) {
        const float *xb = x + bg * M, *gb = gy + bg * M;  // the block (Cg,S)
        float m = mu[bg], r = rs[bg];
        int64_t c0 = (bg % G) * Cg;
        double sum_g = 0, sum_gn = 0;
        for (int64_t k = 0; k < Cg; k++) {
            const float *xc = xb + k * S, *gc = gb + k * S;
            double pn = 0, pg = 0;
            #pragma omp simd reduction(+ : pn, pg)
            for (int64_t s = 0; s < S; s++) {
                double n = (double)(xc[s] - m) * r;
                pn += gc[s] * n;
                pg += gc[s];
            }
            double wc = wt ? wt[c0 + k] : 1.0;
            sum_g += wc * pg;
            sum_gn += wc * pn;
            if (part) {
                double *pc = part + ((bg / G) * C + c0 + k) * 2;
                pc[0] = pn, pc[1] = pg;
            }
        }
        if (!dx) continue;
        float mg = (float)(sum_g / (double)M), mgn = (float)(sum_gn / (double)M);
        float *db_ = dx + bg * M;
        for (int64_t k = 0; k < Cg; k++) {
            float wc = wt ? wt[c0 + k] : 1.0f;
            const float *xc = xb + k * S, *gc = gb + k * S;
            float *dc = db_ + k * S;
            for (int64_t s = 0; s < S; s++) {
                float n = (xc[s] - m) * r;
                dc[s] += r * (gc[s] * wc - mg - n * mgn);
            }
        }
    }
    if (!part) return;
    for (int64_t c = 0; c < C; c++) {
        double sn = 0, sg = 0;
        for (int64_t bi = 0; bi < B; bi++) sn += part[(bi * C + c) * 2], sg += part[(bi * C + c) * 2 + 1];
        if (dwt) dwt[c] += (float)sn;
        if (dbs) dbs[c] += (float)sg;
    }
}
