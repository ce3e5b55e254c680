/*
 * test_ops_vision.c: the CPU vision ops of the FID Inception network
 * ("ops_vision" suite): max/avg/global pooling, bilinear resize, eval-mode
 * BatchNorm, ReLU and the affine map.
 *
 * Forwards are compared with naive double-precision loops written here;
 * backwards with finite differences (tests/support/gradcheck.h); every
 * backward is run once more on pre-filled gradients to check that it adds.
 * Max pooling is checked on inputs with well separated distinct values, so a
 * finite-difference step never changes which element wins.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "tests/support/float_buffers.h"
#include "tests/support/gradcheck.h"
#include "tests/support/op_checks.h"

/* x[n] = a shuffle of (i - n/2) * 0.004: distinct values, twice the
   finite-difference step (1e-3) apart and more */
static float *distinct(int64_t n, uint64_t seed)
{
    float *x = fzeros(n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(i - n / 2) * 0.004f;
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (int64_t i = n - 1; i > 0; i--) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t j = (int64_t)((s >> 33) % (uint64_t)(i + 1));
        float t = x[i];
        x[i] = x[j], x[j] = t;
    }
    return x;
}



/* ---- pooling ------------------------------------------------------------------- */

typedef struct {
    Ctx *ctx;
    int B, C, H, W, Ho, Wo, is_max;
    Pool2dParams p;
    float *in, *out, *rg;
} PoolRun;

static Tensor pool_in(PoolRun *r, float *d) { return tensor4(d, DT_F32, r->B, r->C, r->H, r->W); }
static Tensor pool_out(PoolRun *r, float *d) { return tensor4(d, DT_F32, r->B, r->C, r->Ho, r->Wo); }

static void pool_forward(void *user)
{
    PoolRun *r = user;
    if (r->is_max) op_max_pool2d_forward(r->ctx, pool_out(r, r->out), pool_in(r, r->in), r->p);
    else op_avg_pool2d_forward(r->ctx, pool_out(r, r->out), pool_in(r, r->in), r->p);
}

static void pool_backward(void *user, float *din)
{
    PoolRun *r = user;
    if (r->is_max) op_max_pool2d_backward(r->ctx, pool_in(r, din), pool_out(r, r->rg), pool_in(r, r->in), r->p);
    else op_avg_pool2d_backward(r->ctx, pool_in(r, din), pool_out(r, r->rg), r->p);
}

/* out[pl, oh, ow] straight from the definition */
static double pool_naive(const PoolRun *r, int pl, int oh, int ow)
{
    const Pool2dParams *p = &r->p;
    double best = -INFINITY, sum = 0;
    int inside = 0, counted = 0;
    for (int ki = 0; ki < p->kernel_h; ki++)
        for (int kj = 0; kj < p->kernel_w; kj++) {
            int ih = oh * p->stride_h - p->pad_h + ki, iw = ow * p->stride_w - p->pad_w + kj;
            /* PyTorch counts padded cells, never cells past the padding */
            if (ih < r->H + p->pad_h && iw < r->W + p->pad_w) counted++;
            if (ih < 0 || ih >= r->H || iw < 0 || iw >= r->W) continue;
            double v = r->in[((int64_t)pl * r->H + ih) * r->W + iw];
            best = fmax(best, v), sum += v, inside++;
        }
    if (r->is_max) return best;
    return sum / (p->count_include_pad ? counted : inside);
}

static const struct {
    int B, C, H, W;
    Pool2dParams p;
} pool_cases[] = {
    /* B C  H   W   {kh kw sh sw ph pw incl} */
    {2, 3, 9, 8, {3, 3, 2, 2, 0, 0, 0}},   /* Inception's stage max pools */
    {2, 3, 7, 6, {3, 3, 1, 1, 1, 1, 0}},   /* Inception's branch pools */
    {2, 3, 7, 6, {3, 3, 1, 1, 1, 1, 1}},   /* count_include_pad */
    {1, 2, 10, 7, {3, 2, 2, 3, 1, 1, 1}},  /* uneven, window past the padding */
    {3, 2, 5, 5, {2, 2, 2, 2, 1, 0, 0}},
    {1, 8, 35, 35, {3, 3, 1, 1, 1, 1, 0}},  /* big enough to go parallel */
};
#define N_POOL_CASES (int)(sizeof pool_cases / sizeof pool_cases[0])

static PoolRun pool_setup(Ctx *ctx, int k, int is_max)
{
    PoolRun r = {.ctx = ctx, .B = pool_cases[k].B, .C = pool_cases[k].C, .H = pool_cases[k].H,
                 .W = pool_cases[k].W, .p = pool_cases[k].p, .is_max = is_max};
    r.Ho = (r.H + 2 * r.p.pad_h - r.p.kernel_h) / r.p.stride_h + 1;
    r.Wo = (r.W + 2 * r.p.pad_w - r.p.kernel_w) / r.p.stride_w + 1;
    int64_t nin = (int64_t)r.B * r.C * r.H * r.W, nout = (int64_t)r.B * r.C * r.Ho * r.Wo;
    r.in = is_max ? distinct(nin, 5 + k) : fvec(nin, -1, 1, 5 + k);
    r.out = fzeros(nout);
    r.rg = fvec(nout, -1, 1, 50 + k);
    return r;
}

static void pool_check(int is_max)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    for (int k = 0; k < N_POOL_CASES; k++) {
        PoolRun r = pool_setup(&ctx, k, is_max);
        int64_t nin = (int64_t)r.B * r.C * r.H * r.W, nout = (int64_t)r.B * r.C * r.Ho * r.Wo;
        pool_forward(&r);
        double *want = malloc((size_t)nout * sizeof(double));
        for (int pl = 0; pl < r.B * r.C; pl++)
            for (int oh = 0; oh < r.Ho; oh++)
                for (int ow = 0; ow < r.Wo; ow++)
                    want[((int64_t)pl * r.Ho + oh) * r.Wo + ow] = pool_naive(&r, pl, oh, ow);
        expect_close(is_max ? "max_pool" : "avg_pool", r.out, want, nout, 1e-6);

        float *din = fzeros(nin);
        pool_backward(&r, din);
        GradCheck g = {r.out, nout, r.rg, pool_forward, &r};
        double err = gradcheck_max_error(&g, r.in, nin, din, 1e-3f, 80);
        cr_expect(err < 2e-3, "%s case %d: din error %g", is_max ? "max" : "avg", k, err);
        expect_accumulates("pool din", pool_backward, &r, nin);
        free(want), free(din), free(r.in), free(r.out), free(r.rg);
    }
    ctx_destroy(&ctx);
}

Test(ops_vision, max_pool2d) { pool_check(1); }
Test(ops_vision, avg_pool2d) { pool_check(0); }

Test(ops_vision, max_pool2d_ties_go_to_the_first_maximum)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    float in[16], out[4], dout[4] = {1, 2, 3, 4}, din[16] = {0};
    for (int i = 0; i < 16; i++) in[i] = 1.0f;  // a constant 4x4 plane
    Pool2dParams p = {3, 3, 1, 1, 0, 0, 0};
    op_max_pool2d_forward(&ctx, tensor4(out, DT_F32, 1, 1, 2, 2), tensor4(in, DT_F32, 1, 1, 4, 4), p);
    op_max_pool2d_backward(&ctx, tensor4(din, DT_F32, 1, 1, 4, 4), tensor4(dout, DT_F32, 1, 1, 2, 2),
                           tensor4(in, DT_F32, 1, 1, 4, 4), p);
    /* each window's top-left cell wins: (0,0), (0,1), (1,0), (1,1) */
    float want[16] = {1, 2, 0, 0, 3, 4};
    for (int i = 0; i < 16; i++) cr_assert_eq(din[i], want[i], "din[%d] = %g", i, din[i]);
    ctx_destroy(&ctx);
}

/* the forwards' vector rows give the floats of the one-cell definition
   evaluated in float, in its order (window rows, then columns; the first
   maximum kept, a NaN winning), bit for bit: for every case above, with a
   NaN planted in the max pool's input */
static float pool_cell_f32(const PoolRun *r, int pl, int oh, int ow)
{
    const Pool2dParams *p = &r->p;
    float best = -INFINITY, sum = 0.0f;
    int first = 1, inside = 0, counted = 0;
    for (int ki = 0; ki < p->kernel_h; ki++)
        for (int kj = 0; kj < p->kernel_w; kj++) {
            int ih = oh * p->stride_h - p->pad_h + ki, iw = ow * p->stride_w - p->pad_w + kj;
            if (ih < r->H + p->pad_h && iw < r->W + p->pad_w) counted++;
            if (ih < 0 || ih >= r->H || iw < 0 || iw >= r->W) continue;
            float v = r->in[((int64_t)pl * r->H + ih) * r->W + iw];
            if (first || v > best || isnan(v)) best = isnan(best) ? best : v;
            first = 0, sum += v, inside++;
        }
    return r->is_max ? best : sum / (float)(p->count_include_pad ? counted : inside);
}

Test(ops_vision, pool_forwards_are_the_cell_definition_bit_for_bit)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    for (int is_max = 0; is_max < 2; is_max++)
        for (int k = 0; k < N_POOL_CASES; k++) {
            PoolRun r = pool_setup(&ctx, k, is_max);
            if (is_max) r.in[r.W + 1] = NAN;
            pool_forward(&r);
            for (int pl = 0; pl < r.B * r.C; pl++)
                for (int oh = 0; oh < r.Ho; oh++)
                    for (int ow = 0; ow < r.Wo; ow++) {
                        float got = r.out[((int64_t)pl * r.Ho + oh) * r.Wo + ow], want = pool_cell_f32(&r, pl, oh, ow);
                        cr_assert(got == want || (isnan(got) && isnan(want)), "%s case %d (%d,%d,%d): %.9g, want %.9g",
                                  is_max ? "max" : "avg", k, pl, oh, ow, got, want);
                    }
            free(r.in), free(r.out), free(r.rg);
        }
    ctx_destroy(&ctx);
}

/* ---- global average pool -------------------------------------------------------- */

typedef struct {
    Ctx *ctx;
    int B, C, H, W;
    float *in, *out, *rg;
} GapRun;

static void gap_forward(void *user)
{
    GapRun *r = user;
    op_global_avg_pool_forward(r->ctx, tensor2(r->out, DT_F32, r->B, r->C),
                               tensor4(r->in, DT_F32, r->B, r->C, r->H, r->W));
}
static void gap_backward(void *user, float *din)
{
    GapRun *r = user;
    op_global_avg_pool_backward(r->ctx, tensor4(din, DT_F32, r->B, r->C, r->H, r->W),
                                tensor2(r->rg, DT_F32, r->B, r->C));
}

Test(ops_vision, global_avg_pool)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    GapRun r = {&ctx, 3, 5, 8, 8, NULL, NULL, NULL};
    int64_t n = 3 * 5 * 64;
    r.in = fvec(n, -1, 1, 3), r.out = fzeros(15), r.rg = fvec(15, -1, 1, 4);
    gap_forward(&r);
    double want[15];
    for (int pl = 0; pl < 15; pl++) {
        double s = 0;
        for (int i = 0; i < 64; i++) s += r.in[pl * 64 + i];
        want[pl] = s / 64;
    }
    expect_close("global_avg_pool", r.out, want, 15, 1e-6);
    float *din = fzeros(n);
    gap_backward(&r, din);
    GradCheck g = {r.out, 15, r.rg, gap_forward, &r};
    cr_expect(gradcheck_max_error(&g, r.in, n, din, 1e-2f, 80) < 1e-3);
    expect_accumulates("global_avg_pool din", gap_backward, &r, n);
    free(din), free(r.in), free(r.out), free(r.rg);
    ctx_destroy(&ctx);
}

/* ---- token mean ------------------------------------------------------------------ */

static void token_mean_forward(void *user)
{
    GapRun *r = user;   // B rows, H tokens, C width
    op_token_mean_forward(r->ctx, tensor2(r->out, DT_F32, r->B, r->C), tensor3(r->in, DT_F32, r->B, r->H, r->C));
}
static void token_mean_backward(void *user, float *din)
{
    GapRun *r = user;
    op_token_mean_backward(r->ctx, tensor3(din, DT_F32, r->B, r->H, r->C), tensor2(r->rg, DT_F32, r->B, r->C));
}

Test(ops_vision, token_mean)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    GapRun r = {&ctx, 3, 5, 7, 1, NULL, NULL, NULL};   // in [3,7,5] -> out [3,5]
    int64_t n = 3 * 7 * 5;
    r.in = fvec(n, -1, 1, 5), r.out = fzeros(15), r.rg = fvec(15, -1, 1, 6);
    token_mean_forward(&r);
    double want[15];
    for (int b = 0; b < 3; b++)
        for (int d = 0; d < 5; d++) {
            double s = 0;
            for (int t = 0; t < 7; t++) s += r.in[(b * 7 + t) * 5 + d];
            want[b * 5 + d] = s / 7;
        }
    expect_close("token_mean", r.out, want, 15, 1e-6);
    float *din = fzeros(n);
    token_mean_backward(&r, din);
    GradCheck g = {r.out, 15, r.rg, token_mean_forward, &r};
    cr_expect(gradcheck_max_error(&g, r.in, n, din, 1e-2f, 80) < 1e-3);
    expect_accumulates("token_mean din", token_mean_backward, &r, n);
    free(din), free(r.in), free(r.out), free(r.rg);
    ctx_destroy(&ctx);
}

/* ---- bilinear resize ------------------------------------------------------------- */

typedef struct {
    Ctx *ctx;
    int B, C, H, W, Ho, Wo;
    float *in, *out, *rg;
} ResizeRun;

static void resize_forward(void *user)
{
    ResizeRun *r = user;
    op_resize_bilinear_forward(r->ctx, tensor4(r->out, DT_F32, r->B, r->C, r->Ho, r->Wo),
                               tensor4(r->in, DT_F32, r->B, r->C, r->H, r->W));
}
static void resize_backward(void *user, float *din)
{
    ResizeRun *r = user;
    op_resize_bilinear_backward(r->ctx, tensor4(din, DT_F32, r->B, r->C, r->H, r->W),
                                tensor4(r->rg, DT_F32, r->B, r->C, r->Ho, r->Wo));
}

/* PyTorch's source index for align_corners=False, written out again */
static void naive_src(int in, int out, int d, int *i0, int *i1, double *l)
{
    float src = (float)in / (float)out * ((float)d + 0.5f) - 0.5f;
    if (src < 0) src = 0;
    *i0 = (int)src;
    if (*i0 > in - 1) *i0 = in - 1;
    *i1 = *i0 + (*i0 < in - 1);
    *l = fmin(fmax(src - *i0, 0.0), 1.0);
}

static void resize_check(int B, int C, int H, int W, int Ho, int Wo, int gradcheck)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    ResizeRun r = {&ctx, B, C, H, W, Ho, Wo, NULL, NULL, NULL};
    int64_t nin = (int64_t)B * C * H * W, nout = (int64_t)B * C * Ho * Wo;
    r.in = fvec(nin, 0, 1, H * 31 + W), r.out = fzeros(nout), r.rg = fvec(nout, -1, 1, 8);
    resize_forward(&r);
    double *want = malloc((size_t)nout * sizeof(double));
    for (int pl = 0; pl < B * C; pl++)
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                int h0, h1, w0, w1;
                double lh, lw;
                naive_src(H, Ho, oh, &h0, &h1, &lh);
                naive_src(W, Wo, ow, &w0, &w1, &lw);
                const float *p = r.in + (int64_t)pl * H * W;
                want[((int64_t)pl * Ho + oh) * Wo + ow] =
                    (1 - lh) * ((1 - lw) * p[h0 * W + w0] + lw * p[h0 * W + w1]) +
                    lh * ((1 - lw) * p[h1 * W + w0] + lw * p[h1 * W + w1]);
            }
    expect_close("resize", r.out, want, nout, 1e-6);
    if (gradcheck) {
        float *din = fzeros(nin);
        resize_backward(&r, din);
        GradCheck g = {r.out, nout, r.rg, resize_forward, &r};
        double err = gradcheck_max_error(&g, r.in, nin, din, 1e-2f, 80);
        cr_expect(err < 2e-3, "resize %dx%d -> %dx%d: din error %g", H, W, Ho, Wo, err);
        expect_accumulates("resize din", resize_backward, &r, nin);
        free(din);
    }
    free(want), free(r.in), free(r.out), free(r.rg);
    ctx_destroy(&ctx);
}

Test(ops_vision, resize_bilinear_up) { resize_check(2, 3, 5, 7, 13, 11, 1); }
Test(ops_vision, resize_bilinear_down) { resize_check(2, 2, 9, 8, 4, 3, 1); }
Test(ops_vision, resize_bilinear_mixed) { resize_check(1, 2, 6, 4, 3, 9, 1); }
Test(ops_vision, resize_bilinear_same_size_is_identity)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    float *in = fvec(2 * 6 * 5, 0, 1, 1), *out = fzeros(2 * 6 * 5);
    op_resize_bilinear_forward(&ctx, tensor4(out, DT_F32, 1, 2, 6, 5), tensor4(in, DT_F32, 1, 2, 6, 5));
    cr_assert(memcmp(in, out, 2 * 6 * 5 * sizeof(float)) == 0);
    free(in), free(out);
    ctx_destroy(&ctx);
}
Test(ops_vision, resize_bilinear_32_to_299) { resize_check(1, 3, 32, 32, 299, 299, 0); }

/* ---- batchnorm (eval) -------------------------------------------------------------- */

typedef struct {
    Ctx *ctx;
    int B, C, H, W;
    float eps;
    float *in, *mean, *var, *w, *b, *out, *rg;
} BnRun;

static Tensor bn_x(BnRun *r, float *d) { return tensor4(d, DT_F32, r->B, r->C, r->H, r->W); }
static Tensor bn_c(BnRun *r, float *d) { return d ? tensor1(d, DT_F32, r->C) : tensor_none(); }

static void bn_forward(void *user)
{
    BnRun *r = user;
    op_batchnorm_forward(r->ctx, bn_x(r, r->out), bn_x(r, r->in), bn_c(r, r->mean), bn_c(r, r->var),
                         bn_c(r, r->w), bn_c(r, r->b), r->eps);
}
static void bn_backward_all(BnRun *r, float *din, float *dw, float *db)
{
    op_batchnorm_backward(r->ctx, din ? bn_x(r, din) : tensor_none(), bn_c(r, dw), bn_c(r, db),
                          bn_x(r, r->rg), bn_x(r, r->in), bn_c(r, r->mean), bn_c(r, r->var),
                          bn_c(r, r->w), r->eps);
}
static void bn_backward_in(void *user, float *g) { bn_backward_all(user, g, NULL, NULL); }
static void bn_backward_w(void *user, float *g) { bn_backward_all(user, NULL, g, NULL); }
static void bn_backward_b(void *user, float *g) { bn_backward_all(user, NULL, NULL, g); }

Test(ops_vision, batchnorm_eval)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    BnRun r = {&ctx, 3, 4, 5, 6, 1e-3f, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    int64_t n = 3 * 4 * 30;
    r.in = fvec(n, -2, 2, 1), r.mean = fvec(4, -1, 1, 2), r.var = fvec(4, 0.2f, 2, 3);
    r.w = fvec(4, 0.5f, 1.5f, 4), r.b = fvec(4, -1, 1, 5), r.out = fzeros(n), r.rg = fvec(n, -1, 1, 6);
    bn_forward(&r);
    double *want = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        int c = (int)(i / 30 % 4);
        want[i] = (r.in[i] - (double)r.mean[c]) / sqrt((double)r.var[c] + r.eps) * r.w[c] + r.b[c];
    }
    expect_close("batchnorm", r.out, want, n, 1e-6);

    float *din = fzeros(n), *dw = fzeros(4), *db = fzeros(4);
    bn_backward_all(&r, din, dw, db);
    GradCheck g = {r.out, n, r.rg, bn_forward, &r};
    cr_expect(gradcheck_max_error(&g, r.in, n, din, 1e-2f, 80) < 2e-3, "din");
    cr_expect(gradcheck_max_error(&g, r.w, 4, dw, 1e-2f, 4) < 2e-3, "dw");
    cr_expect(gradcheck_max_error(&g, r.b, 4, db, 1e-2f, 4) < 2e-3, "db");
    expect_accumulates("batchnorm din", bn_backward_in, &r, n);
    expect_accumulates("batchnorm dw", bn_backward_w, &r, 4);
    expect_accumulates("batchnorm db", bn_backward_b, &r, 4);
    free(want), free(din), free(dw), free(db);
    free(r.in), free(r.mean), free(r.var), free(r.w), free(r.b), free(r.out), free(r.rg);
    ctx_destroy(&ctx);
}

/* ---- ReLU and affine ------------------------------------------------------------------ */

typedef struct {
    Ctx *ctx;
    int64_t n;
    int relu;
    float *in, *out, *rg;
} PointRun;

static void point_forward(void *user)
{
    PointRun *r = user;
    Tensor o = tensor1(r->out, DT_F32, r->n), x = tensor1(r->in, DT_F32, r->n);
    if (r->relu) op_relu_forward(r->ctx, o, x);
    else op_affine_forward(r->ctx, o, x, 2.0f, -1.0f);
}
static void point_backward(void *user, float *din)
{
    PointRun *r = user;
    Tensor d = tensor1(din, DT_F32, r->n), g = tensor1(r->rg, DT_F32, r->n);
    if (r->relu) op_relu_backward(r->ctx, d, g, tensor1(r->in, DT_F32, r->n));
    else op_affine_backward(r->ctx, d, g, 2.0f);
}

static void point_check(int relu)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    PointRun r = {&ctx, 100003, relu, NULL, NULL, NULL};  // spans several parallel chunks
    /* no value within 0.01 of relu's kink, far from the finite-difference step */
    r.in = fvec(r.n, -1, 1, 7), r.out = fzeros(r.n), r.rg = fvec(r.n, -1, 1, 8);
    for (int64_t i = 0; i < r.n; i++)
        if (fabsf(r.in[i]) < 0.01f) r.in[i] = 0.5f;
    point_forward(&r);
    for (int64_t i = 0; i < r.n; i++) {
        float want = relu ? (r.in[i] > 0 ? r.in[i] : 0) : 2.0f * r.in[i] - 1.0f;
        cr_assert(r.out[i] == want, "%s[%lld] = %g, want %g", relu ? "relu" : "affine", (long long)i,
                  r.out[i], want);
    }
    float *din = fzeros(r.n);
    point_backward(&r, din);
    GradCheck g = {r.out, r.n, r.rg, point_forward, &r};
    cr_expect(gradcheck_max_error(&g, r.in, r.n, din, 1e-3f, 200) < 2e-3);
    expect_accumulates(relu ? "relu din" : "affine din", point_backward, &r, r.n);
    /* in place */
    memcpy(r.out, r.in, (size_t)r.n * sizeof(float));
    float *copy = fzeros(r.n);
    memcpy(copy, r.out, (size_t)r.n * sizeof(float));
    point_forward(&r);
    Tensor t = tensor1(copy, DT_F32, r.n);
    if (relu) op_relu_forward(&ctx, t, t);
    else op_affine_forward(&ctx, t, t, 2.0f, -1.0f);
    cr_assert(memcmp(copy, r.out, (size_t)r.n * sizeof(float)) == 0, "in place differs");
    free(copy), free(din), free(r.in), free(r.out), free(r.rg);
    ctx_destroy(&ctx);
}

Test(ops_vision, relu) { point_check(1); }
Test(ops_vision, affine) { point_check(0); }
