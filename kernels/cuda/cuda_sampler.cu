/*
 * cuda_sampler.cu: the sampler arithmetic of kernels/ops.h on the GPU:
 * axpby with per-image coefficients, and Philox normals addressed per image
 * (randn, add_randn), all F32.
 *
 * The noise is the CPU's, bit for bit: the same Philox words (philox.h's
 * counters and key: element e = ids[i]*n + j is word e & 3 of call e >> 2),
 * the same Box-Muller, and the C library's logf/cosf/sinf reproduced through
 * philox_ulps.h (a 2^23-byte table of the host library's ulp offsets, built
 * on the host by the first randn of a context and kept on the device).
 * One thread per Philox call: it makes 4 normals and writes those of its
 * image's elements. axpby and add_randn round as the CPU does (a product
 * and a sum, never fused), so a sampler step gives the CPU's F32 bits.
 *
 * The coefficient and id arrays are host arrays of B values: they are
 * uploaded into ctx scratch on the stream before the kernel (the upload
 * returns once the host array may be reused, cuda_context.cu).
 */
#include <math.h>
#include <stdint.h>

#include "cuda_common.h"
#include "cuda_ops.h"

extern "C" {
#include "../philox_ulps.h"
}

// out, x, y are (B, n); a, b are (B,)
__global__ void axpby_kernel(float *out, const float *a, const float *x, const float *b,
                             const float *y, int64_t B, int64_t n)
{
    CUDA_GRID_STRIDE(e, B * n) {
        int64_t i = e / n;
        out[e] = __fadd_rn(__fmul_rn(a[i], x[e]), __fmul_rn(b[i], y[e]));
    }
}

// out is (B, n); thread (i, t) makes Philox call first_i + t of image i,
// first_i = (ids[i] n) >> 2, and writes (c == NULL) or adds c[i] times the
// normals of the elements e of image i it covers
__global__ void philox_normal_kernel(float *out, const float *c, const int64_t *ids,
                                     const uint8_t *code, uint64_t seed, uint32_t purpose,
                                     uint32_t step, int64_t B, int64_t n, int64_t calls)
{
    CUDA_GRID_STRIDE(q, B * calls) {
        int64_t i = q / calls;
        uint64_t begin = (uint64_t)ids[i] * (uint64_t)n, call = (begin >> 2) + (uint64_t)(q % calls);
        if (4 * call >= begin + (uint64_t)n) continue; /* past this image's last call */
        Philox4 d = philox_draw(seed, purpose, step, call);
        float z[4];
        philox_box_muller_exact(d.v[0], d.v[1], code, &z[0], &z[1]);
        philox_box_muller_exact(d.v[2], d.v[3], code, &z[2], &z[3]);
        for (int w = 0; w < 4; w++) {
            uint64_t e = 4 * call + (uint64_t)w;
            if (e < begin || e >= begin + (uint64_t)n) continue;
            float *o = out + i * n + (int64_t)(e - begin);
            *o = c ? __fadd_rn(*o, __fmul_rn(c[i], z[w])) : z[w];
        }
    }
}

/* the device table of philox_ulps.h, built by the context's first call */
static const uint8_t *ulps_table(Ctx *ctx)
{
    CudaState *s = cuda_state(ctx);
    if (s->philox_ulps) return s->philox_ulps;
    uint8_t *host = (uint8_t *)xmalloc(PHILOX_ULPS_COUNT);
    PhiloxUlpsReport r = philox_ulps_build(host);
    if (r.beyond_one_ulp > 0 || r.min_margin < PHILOX_ULPS_MARGIN_NEEDED)
        FATAL("randn on cuda: this C library's logf/cosf/sinf are %lld times more than one ulp "
              "from correctly rounded (or a value lies %.1f double ulps from a float boundary), "
              "so the GPU cannot reproduce the CPU's noise bit for bit (kernels/philox_ulps.h)",
              (long long)r.beyond_one_ulp, r.min_margin);
    s->philox_ulps = (unsigned char *)ctx_alloc(ctx, PHILOX_ULPS_COUNT);
    /* on the context's stream, so the kernels after it see it (a plain
       cudaMemcpy may still be in flight when another stream's kernel starts) */
    ctx_upload(ctx, s->philox_ulps, host, PHILOX_ULPS_COUNT);
    free(host);
    return s->philox_ulps;
}

/* uploads two host arrays of B values (4- or 8-byte) into one scratch block */
static void upload_pair(Ctx *ctx, const void *p, size_t p_size, const void *q, size_t q_size,
                        int64_t B, void **dp, void **dq)
{
    size_t pb = cuda_align((size_t)B * p_size), qb = cuda_align((size_t)B * q_size);
    char *scratch = (char *)ctx_scratch(ctx, pb + qb);
    *dp = scratch, *dq = scratch + pb;
    ctx_upload(ctx, *dp, p, (size_t)B * p_size);
    ctx_upload(ctx, *dq, q, (size_t)B * q_size);
}

void cuda_axpby(Ctx *ctx, Tensor out, const float *a, Tensor x, const float *b, Tensor y)
{
    int64_t B = out.shape[0], n = tensor_numel(out) / B;
    if (n == 0) return;
    void *da, *db;
    upload_pair(ctx, a, sizeof(float), b, sizeof(float), B, &da, &db);
    CUDA_LAUNCH(ctx, B * n, axpby_kernel, (float *)out.data, (const float *)da,
                (const float *)x.data, (const float *)db, (const float *)y.data, B, n);
}

/* randn (c NULL) or add_randn over out (B, n) */
static void normals(Ctx *ctx, Tensor out, const float *c, const int64_t *ids, uint64_t seed,
                    uint32_t purpose, uint32_t step)
{
    int64_t B = out.shape[0], n = tensor_numel(out) / B;
    if (n == 0) return;
    const uint8_t *code = ulps_table(ctx);
    void *dc = NULL, *dids;
    if (c) upload_pair(ctx, ids, sizeof(int64_t), c, sizeof(float), B, &dids, &dc);
    else {
        dids = ctx_scratch(ctx, (size_t)B * sizeof(int64_t));
        ctx_upload(ctx, dids, ids, (size_t)B * sizeof(int64_t));
    }
    int64_t calls = (n + 3) / 4 + 1; /* an unaligned start spans one call more */
    CUDA_LAUNCH(ctx, B * calls, philox_normal_kernel, (float *)out.data, (const float *)dc,
                (const int64_t *)dids, code, seed, purpose, step, B, n, calls);
}

void cuda_randn(Ctx *ctx, Tensor out, const int64_t *ids, uint64_t seed, uint32_t purpose,
                uint32_t step)
{
    normals(ctx, out, NULL, ids, seed, purpose, step);
}

void cuda_add_randn(Ctx *ctx, Tensor out, const float *c, const int64_t *ids, uint64_t seed,
                    uint32_t purpose, uint32_t step)
{
    normals(ctx, out, c, ids, seed, purpose, step);
}
