/*
 * test_ops_latent.c: the CPU ops of the KL autoencoder ("ops_latent"
 * suite): GroupNorm, nearest upsampling and zero padding.
 *
 * Forwards are compared with naive double-precision loops written here;
 * backwards with finite differences (tests/support/gradcheck.h); every
 * backward is run once more on pre-filled gradients to check that it adds;
 * GroupNorm's parameter gradients must not depend on the thread count.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "tests/support/float_buffers.h"
#include "tests/support/gradcheck.h"
#include "tests/support/op_checks.h"



/* ---- GroupNorm ------------------------------------------------------------------ */

typedef struct {
    Ctx *ctx;
    int B, C, H, W, G, affine;
    float eps;
    float *in, *w, *b, *out, *mean, *rstd, *rg;
} GnRun;

static Tensor gn_x(const GnRun *r, float *d) { return tensor4(d, DT_F32, r->B, r->C, r->H, r->W); }
static Tensor gn_c(const GnRun *r, float *d) { return r->affine ? tensor1(d, DT_F32, r->C) : tensor_none(); }
static Tensor gn_s(const GnRun *r, float *d) { return tensor2(d, DT_F32, r->B, r->G); }
static int64_t gn_n(const GnRun *r) { return (int64_t)r->B * r->C * r->H * r->W; }

static void gn_forward(void *user)
{
    GnRun *r = user;
    op_group_norm_forward(r->ctx, gn_x(r, r->out), gn_s(r, r->mean), gn_s(r, r->rstd), gn_x(r, r->in),
                          gn_c(r, r->w), gn_c(r, r->b), r->G, r->eps);
}

static void gn_backward(GnRun *r, float *din, float *dw, float *db)
{
    op_group_norm_backward(r->ctx, din ? gn_x(r, din) : tensor_none(), dw ? gn_c(r, dw) : tensor_none(),
                           db ? gn_c(r, db) : tensor_none(), gn_x(r, r->rg), gn_x(r, r->in), gn_c(r, r->w),
                           gn_s(r, r->mean), gn_s(r, r->rstd), r->G);
}
static void gn_bw_in(void *user, float *g) { gn_backward(user, g, NULL, NULL); }
static void gn_bw_w(void *user, float *g) { gn_backward(user, NULL, g, NULL); }
static void gn_bw_b(void *user, float *g) { gn_backward(user, NULL, NULL, g); }

static GnRun gn_setup(Ctx *ctx, int B, int C, int H, int W, int G, int affine, uint64_t seed)
{
    GnRun r = {.ctx = ctx, .B = B, .C = C, .H = H, .W = W, .G = G, .affine = affine, .eps = 1e-6f};
    int64_t n = gn_n(&r);
    r.in = fvec(n, -2, 3, seed);   /* an offset mean, so centring matters */
    r.w = fvec(C, 0.5f, 1.5f, seed + 1);
    r.b = fvec(C, -0.5f, 0.5f, seed + 2);
    r.out = fzeros(n);
    r.mean = fzeros((int64_t)B * G), r.rstd = fzeros((int64_t)B * G);
    r.rg = fvec(n, -1, 1, seed + 3);
    return r;
}

static void gn_free(GnRun *r) { free(r->in), free(r->w), free(r->b), free(r->out), free(r->mean), free(r->rstd), free(r->rg); }

static const struct { int B, C, H, W, G, affine; } gn_cases[] = {
    {2, 8, 3, 5, 4, 1},
    {1, 6, 4, 4, 3, 0},     /* no affine parameters */
    {3, 4, 2, 3, 1, 1},     /* one group: LayerNorm over (C, H, W) */
    {2, 6, 3, 3, 6, 1},     /* a group per channel: InstanceNorm */
    {2, 64, 16, 16, 32, 1}, /* the autoencoder's 32 groups, big enough to go parallel */
};
#define N_GN_CASES (int)(sizeof gn_cases / sizeof gn_cases[0])

Test(ops_latent, group_norm_forward_matches_definition)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    for (int k = 0; k < N_GN_CASES; k++) {
        GnRun r = gn_setup(&ctx, gn_cases[k].B, gn_cases[k].C, gn_cases[k].H, gn_cases[k].W, gn_cases[k].G,
                           gn_cases[k].affine, 10 + k);
        gn_forward(&r);
        int64_t S = (int64_t)r.H * r.W, Cg = r.C / r.G, n = gn_n(&r);
        double *want = malloc((size_t)n * sizeof(double)), *want_m = malloc((size_t)(r.B * r.G) * sizeof(double));
        double *want_r = malloc((size_t)(r.B * r.G) * sizeof(double));
        for (int b = 0; b < r.B; b++)
            for (int g = 0; g < r.G; g++) {
                const float *blk = r.in + ((int64_t)b * r.C + g * Cg) * S;
                double m = 0, v = 0;
                for (int64_t i = 0; i < Cg * S; i++) m += blk[i];
                m /= (double)(Cg * S);
                for (int64_t i = 0; i < Cg * S; i++) v += (blk[i] - m) * (blk[i] - m);
                double rs = 1.0 / sqrt(v / (double)(Cg * S) + r.eps);
                want_m[b * r.G + g] = m, want_r[b * r.G + g] = rs;
                for (int64_t i = 0; i < Cg * S; i++) {
                    int64_t c = g * Cg + i / S;
                    double y = (blk[i] - m) * rs;
                    if (r.affine) y = y * r.w[c] + r.b[c];
                    want[((int64_t)b * r.C + g * Cg) * S + i] = y;
                }
            }
        expect_close("group_norm out", r.out, want, n, 2e-6);
        expect_close("group_norm mean", r.mean, want_m, (int64_t)r.B * r.G, 1e-6);
        expect_close("group_norm rstd", r.rstd, want_r, (int64_t)r.B * r.G, 1e-6);
        free(want), free(want_m), free(want_r);
        gn_free(&r);
    }
    ctx_destroy(&ctx);
}

Test(ops_latent, group_norm_backward_matches_finite_differences)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    for (int k = 0; k < N_GN_CASES; k++) {
        GnRun r = gn_setup(&ctx, gn_cases[k].B, gn_cases[k].C, gn_cases[k].H, gn_cases[k].W, gn_cases[k].G,
                           gn_cases[k].affine, 20 + k);
        int64_t n = gn_n(&r);
        gn_forward(&r);
        float *din = fzeros(n), *dw = fzeros(r.C), *db = fzeros(r.C);
        gn_backward(&r, din, r.affine ? dw : NULL, r.affine ? db : NULL);
        GradCheck g = {r.out, n, r.rg, gn_forward, &r};
        /* a step big enough that float rounding of the perturbed group's
           outputs stays below the tolerance */
        double e = gradcheck_max_error(&g, r.in, n, din, 5e-3f, 120);
        cr_expect(e < 2e-3, "case %d: din error %g", k, e);
        if (r.affine) {
            e = gradcheck_max_error(&g, r.w, r.C, dw, 5e-3f, 64);
            cr_expect(e < 2e-3, "case %d: dw error %g", k, e);
            e = gradcheck_max_error(&g, r.b, r.C, db, 5e-3f, 64);
            cr_expect(e < 2e-3, "case %d: db error %g", k, e);
            expect_accumulates("group_norm dw", gn_bw_w, &r, r.C);
            expect_accumulates("group_norm db", gn_bw_b, &r, r.C);
        }
        expect_accumulates("group_norm din", gn_bw_in, &r, n);
        free(din), free(dw), free(db);
        gn_free(&r);
    }
    ctx_destroy(&ctx);
}

/* dw and db are summed in a fixed order: the same bits on 1 and 3 threads */
Test(ops_latent, group_norm_parameter_gradients_do_not_depend_on_threads)
{
    float *dw[2], *db[2], *din[2];
    const int threads[2] = {1, 3};
    for (int t = 0; t < 2; t++) {
        Ctx ctx;
        ctx_init_cpu(&ctx, threads[t]);
        GnRun r = gn_setup(&ctx, 5, 64, 12, 12, 32, 1, 7);
        gn_forward(&r);
        int64_t n = gn_n(&r);
        dw[t] = fzeros(r.C), db[t] = fzeros(r.C), din[t] = fzeros(n);
        gn_backward(&r, din[t], dw[t], db[t]);
        if (t == 1) {
            cr_expect(memcmp(dw[0], dw[1], (size_t)r.C * sizeof(float)) == 0, "dw differs between 1 and 3 threads");
            cr_expect(memcmp(db[0], db[1], (size_t)r.C * sizeof(float)) == 0, "db differs between 1 and 3 threads");
            cr_expect(memcmp(din[0], din[1], (size_t)n * sizeof(float)) == 0, "din differs between 1 and 3 threads");
        }
        gn_free(&r);
        ctx_destroy(&ctx);
    }
    for (int t = 0; t < 2; t++) free(dw[t]), free(db[t]), free(din[t]);
}

/* ---- nearest upsampling and zero padding ---------------------------------------------- */

typedef struct {
    Ctx *ctx;
    int B, C, H, W, Ho, Wo, is_pad;
    Pad2dParams p;
    float *in, *out, *rg;
} ResampleRun;

static Tensor rs_in(const ResampleRun *r, float *d) { return tensor4(d, DT_F32, r->B, r->C, r->H, r->W); }
static Tensor rs_out(const ResampleRun *r, float *d) { return tensor4(d, DT_F32, r->B, r->C, r->Ho, r->Wo); }

static void rs_forward(void *user)
{
    ResampleRun *r = user;
    if (r->is_pad) op_pad2d_forward(r->ctx, rs_out(r, r->out), rs_in(r, r->in), r->p);
    else op_upsample_nearest_forward(r->ctx, rs_out(r, r->out), rs_in(r, r->in));
}

static void rs_backward(void *user, float *din)
{
    ResampleRun *r = user;
    if (r->is_pad) op_pad2d_backward(r->ctx, rs_in(r, din), rs_out(r, r->rg), r->p);
    else op_upsample_nearest_backward(r->ctx, rs_in(r, din), rs_out(r, r->rg));
}

/* out[pl, oy, ox] from the definitions */
static double rs_naive(const ResampleRun *r, int64_t pl, int oy, int ox)
{
    const float *plane = r->in + pl * r->H * r->W;
    if (!r->is_pad) return plane[(oy / (r->Ho / r->H)) * r->W + ox / (r->Wo / r->W)];
    int iy = oy - r->p.top, ix = ox - r->p.left;
    return iy < 0 || iy >= r->H || ix < 0 || ix >= r->W ? 0.0 : plane[iy * r->W + ix];
}

static void resample_check(ResampleRun r, uint64_t seed)
{
    int64_t nin = (int64_t)r.B * r.C * r.H * r.W, nout = (int64_t)r.B * r.C * r.Ho * r.Wo;
    r.in = fvec(nin, -1, 1, seed), r.out = fzeros(nout), r.rg = fvec(nout, -1, 1, seed + 1);
    rs_forward(&r);
    double *want = malloc((size_t)nout * sizeof(double));
    for (int64_t pl = 0; pl < (int64_t)r.B * r.C; pl++)
        for (int oy = 0; oy < r.Ho; oy++)
            for (int ox = 0; ox < r.Wo; ox++) want[(pl * r.Ho + oy) * r.Wo + ox] = rs_naive(&r, pl, oy, ox);
    expect_close(r.is_pad ? "pad2d" : "upsample", r.out, want, nout, 0);
    float *din = fzeros(nin);
    rs_backward(&r, din);
    GradCheck g = {r.out, nout, r.rg, rs_forward, &r};
    double e = gradcheck_max_error(&g, r.in, nin, din, 1e-3f, 100);
    cr_expect(e < 1e-3, "%s %dx%d -> %dx%d: din error %g", r.is_pad ? "pad2d" : "upsample", r.H, r.W, r.Ho,
              r.Wo, e);
    expect_accumulates(r.is_pad ? "pad2d din" : "upsample din", rs_backward, &r, nin);
    free(want), free(din), free(r.in), free(r.out), free(r.rg);
}

Test(ops_latent, upsample_nearest_forward_and_backward)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    static const int cases[][6] = {{2, 3, 4, 5, 2, 2}, {1, 2, 3, 3, 3, 1}, {2, 1, 1, 2, 1, 4}, {2, 16, 32, 32, 2, 2}};
    for (int k = 0; k < 4; k++) {
        const int *c = cases[k];
        ResampleRun r = {.ctx = &ctx, .B = c[0], .C = c[1], .H = c[2], .W = c[3], .Ho = c[2] * c[4], .Wo = c[3] * c[5]};
        resample_check(r, 40 + k);
    }
    ctx_destroy(&ctx);
}

Test(ops_latent, pad2d_forward_and_backward)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    static const Pad2dParams pads[] = {{0, 1, 0, 1}, {2, 0, 1, 3}, {0, 0, 0, 0}, {1, 1, 1, 1}};
    static const int sizes[][4] = {{2, 3, 4, 5}, {1, 2, 3, 1}, {2, 2, 2, 2}, {2, 16, 32, 32}};
    for (int k = 0; k < 4; k++) {
        Pad2dParams p = pads[k];
        const int *s = sizes[k];
        ResampleRun r = {.ctx = &ctx, .B = s[0], .C = s[1], .H = s[2], .W = s[3], .is_pad = 1, .p = p,
                         .Ho = s[2] + p.top + p.bottom, .Wo = s[3] + p.left + p.right};
        resample_check(r, 60 + k);
    }
    ctx_destroy(&ctx);
}

/* ---- the posterior draw and its KL ------------------------------------------------ */

enum { GS_B = 3, GS_C = 2, GS_H = 3, GS_W = 2, GS_N = GS_C * GS_H * GS_W };

typedef struct {
    Ctx *ctx;
    float *moments, *eps, *out;   /* out = [z (B*N), KL] */
} GsRun;

static Tensor gs_m(float *d) { return tensor4(d, DT_F32, GS_B, 2 * GS_C, GS_H, GS_W); }
static Tensor gs_z(float *d) { return tensor4(d, DT_F32, GS_B, GS_C, GS_H, GS_W); }

static void gs_forward(void *user)
{
    GsRun *r = user;
    r->out[GS_B * GS_N] = op_gaussian_sample_forward(r->ctx, gs_z(r->out), gs_m(r->moments), gs_z(r->eps));
}

Test(ops_latent, gaussian_sample_matches_definition_and_finite_differences)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    GsRun r = {.ctx = &ctx, .moments = fvec(GS_B * 2 * GS_N, -1.5f, 1.5f, 41), .eps = fvec(GS_B * GS_N, -2, 2, 42),
               .out = fzeros(GS_B * GS_N + 1)};
    r.moments[GS_N + 1] = -31.0f;      /* image 0: a log-variance below the clamp */
    r.moments[5 * GS_N + 2] = 21.5f;   /* image 2: one above it */
    gs_forward(&r);
    double kl = 0;
    for (int b = 0; b < GS_B; b++)
        for (int j = 0; j < GS_N; j++) {
            double mean = r.moments[b * 2 * GS_N + j], lv = r.moments[b * 2 * GS_N + GS_N + j];
            lv = fmin(fmax(lv, -30.0), 20.0);
            double z = mean + exp(0.5 * lv) * r.eps[b * GS_N + j];
            cr_assert(fabs(r.out[b * GS_N + j] - z) <= 1e-5 * (1 + fabs(z)), "z[%d,%d]", b, j);
            kl += 0.5 * (mean * mean + exp(lv) - 1 - lv);
        }
    kl /= GS_B;
    cr_expect(fabs(r.out[GS_B * GS_N] - kl) <= 1e-5 * kl, "KL %g, want %g", r.out[GS_B * GS_N], kl);

    /* L = sum z r + kl_weight KL: its gradient is the backward with dz = r */
    const float kl_weight = 0.7f;
    float *rg = fvec(GS_B * GS_N + 1, -1, 1, 43);
    rg[GS_B * GS_N] = kl_weight;
    float *dm = fzeros(GS_B * 2 * GS_N);
    op_gaussian_sample_backward(&ctx, gs_m(dm), gs_z(rg), gs_m(r.moments), gs_z(r.eps), kl_weight);
    cr_expect_eq(dm[GS_N + 1], 0.0f, "a clamped log-variance gets no gradient");
    r.moments[GS_N + 1] = -3.0f, r.moments[5 * GS_N + 2] = 2.0f;  /* inside, for the differences */
    memset(dm, 0, sizeof(float) * GS_B * 2 * GS_N);
    op_gaussian_sample_backward(&ctx, gs_m(dm), gs_z(rg), gs_m(r.moments), gs_z(r.eps), kl_weight);
    GradCheck g = {r.out, GS_B * GS_N + 1, rg, gs_forward, &r};
    double err = gradcheck_max_error(&g, r.moments, GS_B * 2 * GS_N, dm, 1e-2f, 1000);
    cr_expect(err < 2e-3, "dmoments error %g", err);
    /* the KL alone (dz none) is the same minus dz's share, and the backward adds */
    float *kl_only = fzeros(GS_B * 2 * GS_N);
    op_gaussian_sample_backward(&ctx, gs_m(kl_only), tensor_none(), gs_m(r.moments), gs_z(r.eps), kl_weight);
    for (int b = 0; b < GS_B; b++)
        for (int j = 0; j < GS_N; j++) {
            float mean = r.moments[b * 2 * GS_N + j];
            cr_assert(fabsf(kl_only[b * 2 * GS_N + j] - kl_weight * mean / GS_B) < 1e-6f);
        }
    free(r.moments), free(r.eps), free(r.out), free(rg), free(dm), free(kl_only);
    ctx_destroy(&ctx);
}
