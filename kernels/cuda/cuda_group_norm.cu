/*
 * cuda_group_norm.cu: GroupNorm (torch.nn.GroupNorm, the KL autoencoder's
 * normalisation) over in[B,C,S], S every trailing dimension flattened,
 * forward and backward (kernels/ops.h; the CPU reference is
 * kernels/cpu/group_norm.c).
 *
 * Group (b, g) is the contiguous block in[b, g*Cg:(g+1)*Cg, :] of
 * M = Cg*S values (Cg = C/G), block number bg = b*G + g; element i of in
 * lies in block i / M. As on the CPU:
 *   forward:  mean, biased variance of each block in F64 (two passes: the
 *             mean, then the squared deviations from it), rstd =
 *             1/sqrt(var + eps), n = (x - mean) rstd, out = n w[c] + b[c]
 *   backward: g = dout w[c] (w = 1 without affine parameters)
 *             din   += rstd (g - mean_block(g) - n mean_block(g n))
 *             dw[c] += sum over (b, s) of dout n,  db[c] += sum of dout
 * Block statistics are cuda_channel_sum over the view [1, B*G, M] (one CUDA
 * block per group, F64, a fixed order); dw and db are cuda_channel_sum over
 * [B, C, S] (one CUDA block per channel). The elementwise parts (out, din)
 * are grid-stride kernels over every element. No atomics: the same bits
 * every run. in, out, dout, din are F32 or BF16 (CudaIn/CudaOut, any mix);
 * w[C], b[C], mean[B,G], rstd[B,G], dw, db are F32.
 */
#include "cuda_ops.h"
#include "cuda_reduce.h"

/* ---- forward ------------------------------------------------------------------------ */

/* pass 1, per block bg of [1, B*G, M]: mean64[bg] = the block's mean in F64 */
struct GroupMean {
    CudaIn in;
    int64_t M;
    double *mean64;  // (B*G,)
    __device__ void operator()(int64_t, int64_t bg, int64_t i, double *acc) const
    {
        acc[0] += (double)load_f32(in, bg * M + i);
    }
    __device__ void finish(int64_t bg, const double *sums) const
    {
        mean64[bg] = M ? sums[0] / (double)M : 0.0;
    }
};

/* pass 2: the biased variance about mean64[bg]; writes mean[bg], rstd[bg] */
struct GroupVariance {
    CudaIn in;
    int64_t M;
    const double *mean64;  // (B*G,)
    float *mean, *rstd;    // (B*G,)
    float eps;
    __device__ void operator()(int64_t, int64_t bg, int64_t i, double *acc) const
    {
        double d = (double)load_f32(in, bg * M + i) - mean64[bg];
        acc[0] += d * d;
    }
    __device__ void finish(int64_t bg, const double *sums) const
    {
        double var = M ? sums[0] / (double)M : 0.0;
        mean[bg] = (float)mean64[bg];
        rstd[bg] = (float)(1.0 / sqrt(var + (double)eps));
    }
};

// out, in are (B, C, S) = (B*G blocks of M); mean, rstd are (B*G,); w, b are (C,) or NULL
__global__ void group_norm_apply_kernel(CudaOut out, CudaIn in, const float *mean, const float *rstd,
                                        const float *w, const float *b, int64_t C, int64_t S,
                                        int64_t M, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) {
        int64_t bg = i / M, c = (i / S) % C;
        float r = rstd[bg];
        float scale = w ? __fmul_rn(r, w[c]) : r, shift = b ? b[c] : 0.0f;
        /* the CPU's (x - mean) * scale + shift, nothing fused */
        store_f32(out, i, __fadd_rn(__fmul_rn(__fsub_rn(load_f32(in, i), mean[bg]), scale), shift));
    }
}

/* ---- backward ----------------------------------------------------------------------- */

/* per block bg: mean_block(g) and mean_block(g n), g = dout w[c], into
   gmean[2 bg], gmean[2 bg + 1] */
struct GroupGradMeans {
    CudaIn dout, in;
    const float *w, *mean, *rstd;  // w (C,) or NULL; mean, rstd (B*G,)
    int64_t C, S, M;
    float *gmean;                  // (B*G, 2)
    __device__ void operator()(int64_t, int64_t bg, int64_t i, double *acc) const
    {
        int64_t e = bg * M + i;
        double wc = w ? (double)w[(e / S) % C] : 1.0;
        double g = (double)load_f32(dout, e) * wc, nv = (double)(load_f32(in, e) - mean[bg]) * rstd[bg];
        acc[0] += g;
        acc[1] += g * nv;
    }
    __device__ void finish(int64_t bg, const double *sums) const
    {
        gmean[2 * bg] = M ? (float)(sums[0] / (double)M) : 0.0f;
        gmean[2 * bg + 1] = M ? (float)(sums[1] / (double)M) : 0.0f;
    }
};

// din, dout, in are (B, C, S); w (C,) or NULL; mean, rstd (B*G,); gmean (B*G, 2)
__global__ void group_norm_din_kernel(CudaOut din, CudaIn dout, CudaIn in, const float *w,
                                      const float *mean, const float *rstd, const float *gmean,
                                      int64_t C, int64_t S, int64_t M, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) {
        int64_t bg = i / M;
        float r = rstd[bg], wc = w ? w[(i / S) % C] : 1.0f;
        float nv = (load_f32(in, i) - mean[bg]) * r;
        add_f32(din, i, r * (load_f32(dout, i) * wc - gmean[2 * bg] - nv * gmean[2 * bg + 1]));
    }
}

/* per channel c of [B, C, S]: sums of dout n and of dout, added into dw[c], db[c] */
struct GroupNormParamGrads {
    CudaIn dout, in;
    const float *mean, *rstd;  // (B*G,)
    float *dw, *db;            // (C,) each, or NULL
    int64_t C, S, Cg, G;
    __device__ void operator()(int64_t b, int64_t c, int64_t i, double *acc) const
    {
        int64_t e = (b * C + c) * S + i, bg = b * G + c / Cg;
        double g = (double)load_f32(dout, e);
        acc[0] += g * ((double)(load_f32(in, e) - mean[bg]) * rstd[bg]);
        acc[1] += g;
    }
    __device__ void finish(int64_t c, const double *sums) const
    {
        if (dw) dw[c] += (float)sums[0];
        if (db) db[c] += (float)sums[1];
    }
};

/* ---- ops -------------------------------------------------------------------------------- */

/* S: values per channel of in[B,C,...] (1 for an empty batch, as the CPU) */
static int64_t per_channel(Tensor in)
{
    int64_t bc = in.shape[0] * in.shape[1];
    return bc > 0 ? tensor_numel(in) / bc : 1;
}

static const float *f32_or_null(const char *op, const char *what, Tensor t)
{
    if (!tensor_present(t)) return NULL;
    cuda_need_f32(op, what, t);
    return (const float *)t.data;
}

void cuda_group_norm_forward(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor w,
                             Tensor b, int groups, float eps)
{
    const char *op = "group_norm_forward";
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, in);
    const float *wt = f32_or_null(op, "w", w), *bs = f32_or_null(op, "b", b);
    cuda_need_f32(op, "mean", mean), cuda_need_f32(op, "rstd", rstd);
    int64_t B = in.shape[0], C = in.shape[1], S = per_channel(in), G = groups, Cg = C / G, M = Cg * S;
    int64_t BG = B * G, n = tensor_numel(in);
    if (BG == 0) return;
    double *mean64 = (double *)ctx_scratch(ctx, (size_t)BG * sizeof(double));
    float *mu = (float *)mean.data, *rs = (float *)rstd.data;
    cuda_channel_sum<1>(ctx, 1, BG, M, GroupMean{x, M, mean64});
    cuda_channel_sum<1>(ctx, 1, BG, M, GroupVariance{x, M, mean64, mu, rs, eps});
    if (n == 0) return;
    CUDA_LAUNCH(ctx, n, group_norm_apply_kernel, o, x, mu, rs, wt, bs, C, S, M, n);
}

void cuda_group_norm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout, Tensor in,
                              Tensor w, Tensor mean, Tensor rstd, int groups)
{
    const char *op = "group_norm_backward";
    CudaIn g = cuda_in(op, dout), x = cuda_in(op, in);
    const float *wt = f32_or_null(op, "w", w);
    float *dwt = (float *)f32_or_null(op, "dw", dw), *dbs = (float *)f32_or_null(op, "db", db);
    cuda_need_f32(op, "mean", mean), cuda_need_f32(op, "rstd", rstd);
    const float *mu = (const float *)mean.data, *rs = (const float *)rstd.data;
    int64_t B = in.shape[0], C = in.shape[1], S = per_channel(in), G = groups, Cg = C / G, M = Cg * S;
    int64_t BG = B * G, n = tensor_numel(in);
    if (n == 0) return;
    if (tensor_present(din)) {
        float *gmean = (float *)ctx_scratch(ctx, (size_t)BG * 2 * sizeof(float));
        cuda_channel_sum<2>(ctx, 1, BG, M, GroupGradMeans{g, x, wt, mu, rs, C, S, M, gmean});
        CUDA_LAUNCH(ctx, n, group_norm_din_kernel, cuda_out(op, din), g, x, wt, mu, rs, gmean, C, S, M, n);
    }
    if (dwt || dbs) cuda_channel_sum<2>(ctx, B, C, S, GroupNormParamGrads{g, x, mu, rs, dwt, dbs, C, S, Cg, G});
}
