/*
 * test_ops_fused.c: the fused linear layers and the overwriting (_set)
 * backward forms of kernels/ops.h, on the CPU backend and through ops.c's
 * fallback compositions (a backend that leaves the optional entries NULL).
 *
 * Forwards against naive double loops; backwards against central finite
 * differences, with gradients pre-filled with PREFILL (accumulating forms)
 * or NaN (the _set forms, which must overwrite din and leave no NaN).
 * Sizes cover both schedules of the linear driver (kernels/cpu/cpu_linear.h):
 * tiles (small weights, threaded and single-threaded) and whole (weights
 * above CPU_LINEAR_TILE_WEIGHTS).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_linear.h"
#include "kernels/op_table.h"
#include "kernels/ops.h"
#include "tests/support/gradcheck.h"

#define PREFILL 0.25f
#define GRAD_EPS 1e-2f
#define GRAD_TOL 5e-3

static Ctx ctx;
static void setup(void) { ctx_init_cpu(&ctx, 0); }
static void teardown(void) { ctx_destroy(&ctx); }
TestSuite(ops_fused, .init = setup, .fini = teardown);

static uint64_t next_seed = 101;

static float *uniform(int64_t n, float lo, float hi) { return new_uniform(n, lo, hi, &next_seed); }
static float *filled(int64_t n, float v) { return new_filled(n, v); }

static void expect_close(const float *got, const double *want, int64_t n, double tol, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        double err = fabs(got[i] - want[i]), scale = fmax(1.0, fabs(want[i]));
        if (!(err <= tol * scale))
            cr_assert_fail("%s[%lld]: got %.9g, want %.9g", what, (long long)i, got[i], want[i]);
    }
}

/* grad was pre-filled with `prefill` (0 for the _set forms, whose NaN
   prefill was overwritten); checks the rest against finite differences */
static void check_grad(const GradCheck *g, float *x, float *grad, int64_t n, float prefill, int probes,
                       const char *what)
{
    for (int64_t i = 0; i < n; i++) grad[i] -= prefill;
    double err = gradcheck_max_error(g, x, n, grad, GRAD_EPS, probes);
    cr_expect(err < GRAD_TOL, "%s: max gradient error %g", what, err);
}

static double gelu_ref(double x) { return 0.5 * x * erfc(-x / sqrt(2.0)); }

/* in (M,K) @ w (N,K)^T + b in double: want (M,N) */
static double *naive_linear(const float *in, const float *w, const float *b, int64_t M, int64_t N,
                            int64_t K)
{
    double *y = malloc((size_t)(M * N) * sizeof(double));
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = b ? b[n] : 0;
            for (int64_t k = 0; k < K; k++) s += (double)in[m * K + k] * w[n * K + k];
            y[m * N + n] = s;
        }
    return y;
}

typedef struct { Tensor out, pre, in, w, b, res; } Call;

static void fwd_linear_gelu(void *u)
{
    Call *c = u;
    op_linear_gelu_forward(&ctx, c->out, c->pre, c->in, c->w, c->b);
}

static void fwd_linear_residual(void *u)
{
    Call *c = u;
    op_linear_residual_forward(&ctx, c->out, c->in, c->w, c->b, c->res);
}

static void linear_residual_case(int64_t M, int64_t N, int64_t K, int with_bias, int probes);

/* ---- linear + GELU ------------------------------------------------------------------ */

static void linear_gelu_case(int64_t M, int64_t N, int64_t K, int with_bias, int probes)
{
    float *in = uniform(M * K, -1, 1), *w = uniform(N * K, -0.5f, 0.5f), *b = uniform(N, -1, 1);
    float *out = filled(M * N, NAN), *pre = filled(M * N, NAN), *r = uniform(M * N, -1, 1);
    Call c = {.out = tensor2(out, DT_F32, M, N), .pre = tensor2(pre, DT_F32, M, N),
              .in = tensor2(in, DT_F32, M, K), .w = tensor2(w, DT_F32, N, K),
              .b = with_bias ? tensor1(b, DT_F32, N) : tensor_none()};
    fwd_linear_gelu(&c);
    double *want_pre = naive_linear(in, w, with_bias ? b : NULL, M, N, K);
    double *want = malloc((size_t)(M * N) * sizeof(double));
    for (int64_t i = 0; i < M * N; i++) want[i] = gelu_ref(want_pre[i]);
    expect_close(pre, want_pre, M * N, 1e-5, "linear_gelu pre");
    expect_close(out, want, M * N, 1e-5, "linear_gelu out");
    float *out2 = filled(M * N, NAN);  /* inference: no pre kept */
    op_linear_gelu_forward(&ctx, tensor2(out2, DT_F32, M, N), tensor_none(), c.in, c.w, c.b);
    expect_close(out2, want, M * N, 1e-5, "linear_gelu out without pre");

    /* accumulating and overwriting backward: the same gradients */
    for (int set = 0; set < 2; set++) {
        float *din = filled(M * K, set ? NAN : PREFILL), *dw = filled(N * K, PREFILL);
        float *db = filled(N, PREFILL), *dpre = filled(M * N, NAN);
        (set ? op_linear_gelu_backward_set : op_linear_gelu_backward)(
            &ctx, tensor2(din, DT_F32, M, K), tensor2(dw, DT_F32, N, K),
            with_bias ? tensor1(db, DT_F32, N) : tensor_none(), tensor2(dpre, DT_F32, M, N),
            tensor2(r, DT_F32, M, N), c.in, c.w, c.pre);
        Call fd = c;
        fd.pre = tensor_none();
        GradCheck g = {out, M * N, r, fwd_linear_gelu, &fd};
        check_grad(&g, in, din, M * K, set ? 0.0f : PREFILL, probes, "linear_gelu din");
        check_grad(&g, w, dw, N * K, PREFILL, probes, "linear_gelu dw");
        if (with_bias) check_grad(&g, b, db, N, PREFILL, probes, "linear_gelu db");
        else cr_expect(db[0] == PREFILL, "absent db must not be touched");
        free(din), free(dw), free(db), free(dpre);
        fwd_linear_gelu(&c);  /* pre and out as before the probes */
    }
    free(in), free(w), free(b), free(out), free(pre), free(r), free(want_pre), free(want), free(out2);
}

Test(ops_fused, linear_gelu)
{
    linear_gelu_case(7, 5, 12, 1, 1000);    /* one thread */
    linear_gelu_case(9, 13, 6, 0, 1000);
    linear_gelu_case(301, 130, 20, 1, 10);  /* tiles, threaded */
    linear_gelu_case(70, 600, 500, 1, 5);   /* whole: N*K above the tile limit */
    linear_gelu_case(70, 500, 600, 1, 5);   /* whole, N <= K */
}

/* with oneDNN, the whole schedule's transposed forms: w^T stored for
   N <= K, and a tall dw (N > K) as (in^T dout)^T (kernels/cpu/linear.c) */
Test(ops_fused, onednn_transposed_forms)
{
    setenv("DEEDIFF_GEMM", "onednn", 1);  /* this test's own process decides afresh */
    linear_gelu_case(70, 500, 600, 1, 5);
    linear_gelu_case(70, 600, 500, 0, 5);
    linear_residual_case(40, 520, 700, 1, 5);
}

/* ---- linear + residual ---------------------------------------------------------------- */

static void linear_residual_case(int64_t M, int64_t N, int64_t K, int with_bias, int probes)
{
    float *in = uniform(M * K, -1, 1), *w = uniform(N * K, -0.5f, 0.5f), *b = uniform(N, -1, 1);
    float *res = uniform(M * N, -2, 2), *out = filled(M * N, NAN), *r = uniform(M * N, -1, 1);
    Call c = {.out = tensor2(out, DT_F32, M, N), .in = tensor2(in, DT_F32, M, K),
              .w = tensor2(w, DT_F32, N, K), .b = with_bias ? tensor1(b, DT_F32, N) : tensor_none(),
              .res = tensor2(res, DT_F32, M, N)};
    fwd_linear_residual(&c);
    double *want = naive_linear(in, w, with_bias ? b : NULL, M, N, K);
    for (int64_t i = 0; i < M * N; i++) want[i] += res[i];
    expect_close(out, want, M * N, 1e-5, "linear_residual out");

    float *din = filled(M * K, PREFILL), *dw = filled(N * K, PREFILL), *db = filled(N, PREFILL);
    float *dres = filled(M * N, PREFILL);
    op_linear_residual_backward(&ctx, tensor2(din, DT_F32, M, K), tensor2(dw, DT_F32, N, K),
                                with_bias ? tensor1(db, DT_F32, N) : tensor_none(),
                                tensor2(dres, DT_F32, M, N), tensor2(r, DT_F32, M, N), c.in, c.w);
    GradCheck g = {out, M * N, r, fwd_linear_residual, &c};
    check_grad(&g, in, din, M * K, PREFILL, probes, "linear_residual din");
    check_grad(&g, w, dw, N * K, PREFILL, probes, "linear_residual dw");
    check_grad(&g, res, dres, M * N, PREFILL, probes, "linear_residual dres");
    if (with_bias) check_grad(&g, b, db, N, PREFILL, probes, "linear_residual db");
    free(in), free(w), free(b), free(res), free(out), free(r), free(want), free(din), free(dw), free(db);
    free(dres);
}

Test(ops_fused, linear_residual)
{
    linear_residual_case(7, 5, 12, 1, 1000);
    linear_residual_case(5, 9, 4, 0, 1000);
    linear_residual_case(301, 130, 20, 1, 10);
    linear_residual_case(70, 600, 500, 0, 5);
}

Test(ops_fused, residual_must_not_be_out, .signal = SIGABRT)
{
    float x[4] = {0}, w[4] = {0};
    Tensor t = tensor2(x, DT_F32, 2, 2);
    op_linear_residual_forward(&ctx, t, t, tensor2(w, DT_F32, 2, 2), tensor_none(), t);
}

/* ---- the _set forms ------------------------------------------------------------------- */

/* linear_backward_set writes din (no NaN of the prefill survives) and
   accumulates dw, db; the result equals zero-then-accumulate */
Test(ops_fused, linear_backward_set_overwrites_din)
{
    int64_t M = 301, N = 37, K = 130;
    float *in = uniform(M * K, -1, 1), *w = uniform(N * K, -1, 1), *g = uniform(M * N, -1, 1);
    float *din = filled(M * K, NAN), *ref = filled(M * K, 0.0f);
    float *dw = filled(N * K, PREFILL), *dw_ref = filled(N * K, PREFILL);
    float *db = filled(N, PREFILL), *db_ref = filled(N, PREFILL);
    Tensor ti = tensor2(in, DT_F32, M, K), tw = tensor2(w, DT_F32, N, K), tg = tensor2(g, DT_F32, M, N);
    op_linear_backward_set(&ctx, tensor2(din, DT_F32, M, K), tensor2(dw, DT_F32, N, K),
                           tensor1(db, DT_F32, N), tg, ti, tw);
    op_linear_backward(&ctx, tensor2(ref, DT_F32, M, K), tensor2(dw_ref, DT_F32, N, K),
                       tensor1(db_ref, DT_F32, N), tg, ti, tw);
    for (int64_t i = 0; i < M * K; i++)
        cr_assert(fabsf(din[i] - ref[i]) <= 1e-5f * (1 + fabsf(ref[i])), "din[%lld] %g vs %g",
                  (long long)i, din[i], ref[i]);
    for (int64_t i = 0; i < N * K; i++) cr_assert(fabsf(dw[i] - dw_ref[i]) <= 1e-5f * (1 + fabsf(dw_ref[i])));
    for (int64_t i = 0; i < N; i++) cr_assert(db[i] == db_ref[i]);
    free(in), free(w), free(g), free(din), free(ref), free(dw), free(dw_ref), free(db), free(db_ref);
}

static void attention_set_case(int64_t B, int64_t T, int64_t A, int64_t H)
{
    int64_t nq = B * T * 3 * A, no = B * T * A, np = B * H * T * T;
    float *qkv = uniform(nq, -2, 2), *out = filled(no, NAN), *probs = filled(np, NAN);
    float *g = uniform(no, -1, 1), *set = filled(nq, NAN), *acc = filled(nq, 0.0f);
    float *dprobs = filled(np, NAN);
    Tensor tq = tensor3(qkv, DT_F32, B, T, 3 * A), tp = tensor4(probs, DT_F32, B, H, T, T);
    Tensor tdp = tensor4(dprobs, DT_F32, B, H, T, T), tg = tensor3(g, DT_F32, B, T, A);
    op_attention_forward(&ctx, tensor3(out, DT_F32, B, T, A), tp, tq, (int)H);
    op_attention_backward_set(&ctx, tensor3(set, DT_F32, B, T, 3 * A), tdp, tg, tq, tp, (int)H);
    op_attention_backward(&ctx, tensor3(acc, DT_F32, B, T, 3 * A), tdp, tg, tq, tp, (int)H);
    for (int64_t i = 0; i < nq; i++)
        cr_assert(fabsf(set[i] - acc[i]) <= 1e-5f * (1 + fabsf(acc[i])), "dqkv[%lld] %g vs %g",
                  (long long)i, set[i], acc[i]);
    free(qkv), free(out), free(probs), free(g), free(set), free(acc), free(dprobs);
}

Test(ops_fused, attention_backward_set_overwrites_dqkv)
{
    attention_set_case(3, 17, 24, 3);  /* hd 8 */
    attention_set_case(2, 37, 64, 2);  /* hd 32, as U-ViT's */
}

/* ---- ops.c's compositions, for a backend without the optional entries ----------------- */

Test(ops_fused, fallbacks_match_the_fused_kernels)
{
    static OpTable plain;
    plain = cpu_op_table;
    plain.linear_backward_set = NULL;
    plain.linear_gelu_forward = NULL;
    plain.linear_gelu_backward = NULL;
    plain.linear_gelu_backward_set = NULL;
    plain.linear_residual_forward = NULL;
    plain.attention_backward_set = NULL;
    Ctx pc = ctx;
    pc.ops = &plain;
    int64_t M = 45, N = 33, K = 20;
    float *in = uniform(M * K, -1, 1), *w = uniform(N * K, -1, 1), *b = uniform(N, -1, 1);
    float *res = uniform(M * N, -1, 1), *g = uniform(M * N, -1, 1);
    float *y[2], *p[2], *z[2], *din[2], *dw[2], *db[2], *dp[2];
    for (int k = 0; k < 2; k++) {
        Ctx *c = k ? &pc : &ctx;
        y[k] = filled(M * N, NAN), p[k] = filled(M * N, NAN), z[k] = filled(M * N, NAN);
        din[k] = filled(M * K, NAN), dw[k] = filled(N * K, 0), db[k] = filled(N, 0), dp[k] = filled(M * N, NAN);
        Tensor ti = tensor2(in, DT_F32, M, K), tw = tensor2(w, DT_F32, N, K), tb = tensor1(b, DT_F32, N);
        op_linear_gelu_forward(c, tensor2(y[k], DT_F32, M, N), tensor2(p[k], DT_F32, M, N), ti, tw, tb);
        op_linear_residual_forward(c, tensor2(z[k], DT_F32, M, N), ti, tw, tb, tensor2(res, DT_F32, M, N));
        op_linear_gelu_backward_set(c, tensor2(din[k], DT_F32, M, K), tensor2(dw[k], DT_F32, N, K),
                                    tensor1(db[k], DT_F32, N), tensor2(dp[k], DT_F32, M, N),
                                    tensor2(g, DT_F32, M, N), ti, tw, tensor2(p[k], DT_F32, M, N));
    }
    struct { float **v; int64_t n; const char *what; } outs[] = {
        {y, M * N, "gelu out"}, {p, M * N, "pre"}, {z, M * N, "residual out"},
        {din, M * K, "din"}, {dw, N * K, "dw"}, {db, N, "db"}, {dp, M * N, "dpre"}};
    for (size_t o = 0; o < sizeof outs / sizeof outs[0]; o++)
        for (int64_t i = 0; i < outs[o].n; i++) {
            float a = outs[o].v[0][i], f = outs[o].v[1][i];
            cr_assert(fabsf(a - f) <= 1e-5f * (1 + fabsf(f)), "%s[%lld]: fused %g, composed %g",
                      outs[o].what, (long long)i, a, f);
        }
    for (int k = 0; k < 2; k++)
        free(y[k]), free(p[k]), free(z[k]), free(din[k]), free(dw[k]), free(db[k]), free(dp[k]);
    free(in), free(w), free(b), free(res), free(g);
}

/* ---- conv + ReLU (the FID Inception's BasicConv2d) ----------------------------------- */

typedef struct { Tensor out, in, w, b; Conv2dParams p; } ConvCall;

static void fwd_conv_relu(void *u)
{
    ConvCall *c = u;
    op_conv2d_relu_forward(&ctx, c->out, c->in, c->w, c->b, c->p);
}

static void conv_relu_case(int64_t B, int64_t Ci, int64_t H, int64_t W, int64_t Co, int64_t kh, int64_t kw,
                           Conv2dParams p, int with_bias, int probes)
{
    int64_t Ho = (H + 2 * p.pad_h - kh) / p.stride_h + 1, Wo = (W + 2 * p.pad_w - kw) / p.stride_w + 1;
    int64_t nin = B * Ci * H * W, nw = Co * Ci * kh * kw, nout = B * Co * Ho * Wo;
    float *in = uniform(nin, -1, 1), *w = uniform(nw, -0.5f, 0.5f), *b = uniform(Co, -0.5f, 0.5f);
    float *out = filled(nout, NAN), *r = uniform(nout, -1, 1);
    ConvCall c = {tensor4(out, DT_F32, B, Co, Ho, Wo), tensor4(in, DT_F32, B, Ci, H, W),
                  tensor4(w, DT_F32, Co, Ci, kh, kw), with_bias ? tensor1(b, DT_F32, Co) : tensor_none(), p};
    fwd_conv_relu(&c);
    double *want = malloc(sizeof(double) * (size_t)nout);
    for (int64_t n = 0; n < B; n++)
        for (int64_t o = 0; o < Co; o++)
            for (int64_t y = 0; y < Ho; y++)
                for (int64_t x = 0; x < Wo; x++) {
                    double s = with_bias ? b[o] : 0;
                    for (int64_t i = 0; i < Ci; i++)
                        for (int64_t u = 0; u < kh; u++)
                            for (int64_t v = 0; v < kw; v++) {
                                int64_t iy = y * p.stride_h - p.pad_h + u, ix = x * p.stride_w - p.pad_w + v;
                                if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                    s += (double)in[((n * Ci + i) * H + iy) * W + ix] * w[((o * Ci + i) * kh + u) * kw + v];
                            }
                    int64_t at = ((n * Co + o) * Ho + y) * Wo + x;
                    want[at] = s > 0 ? s : 0;
                    /* no gradient through outputs near the ReLU's kink: the finite
                       differences (steps of GRAD_EPS move them by 0.01 at most)
                       would cross it there */
                    if (fabs(s) < 0.05) r[at] = 0.0f;
                }
    expect_close(out, want, nout, 1e-5, "conv2d_relu out");
    float *din = filled(nin, PREFILL), *dw = filled(nw, PREFILL), *db = filled(Co, PREFILL);
    float *dpre = filled(nout, NAN);
    op_conv2d_relu_backward(&ctx, tensor4(din, DT_F32, B, Ci, H, W), tensor4(dw, DT_F32, Co, Ci, kh, kw),
                            with_bias ? tensor1(db, DT_F32, Co) : tensor_none(), tensor4(dpre, DT_F32, B, Co, Ho, Wo),
                            tensor4(r, DT_F32, B, Co, Ho, Wo), c.in, c.w, c.out, p);
    GradCheck g = {out, nout, r, fwd_conv_relu, &c};
    check_grad(&g, in, din, nin, PREFILL, probes, "conv2d_relu din");
    check_grad(&g, w, dw, nw, PREFILL, probes, "conv2d_relu dw");
    if (with_bias) check_grad(&g, b, db, Co, PREFILL, probes, "conv2d_relu db");
    free(in), free(w), free(b), free(out), free(r), free(want), free(din), free(dw), free(db), free(dpre);
}

Test(ops_fused, conv2d_relu)
{
    conv_relu_case(2, 5, 9, 8, 7, 3, 3, (Conv2dParams){1, 1, 1, 1}, 1, 300);  /* Inception's 3x3 */
    conv_relu_case(2, 6, 7, 9, 5, 1, 7, (Conv2dParams){1, 1, 0, 3}, 1, 300);  /* 1x7 */
    conv_relu_case(1, 3, 11, 10, 8, 3, 3, (Conv2dParams){2, 2, 0, 0}, 0, 300); /* stride 2, no bias */
    conv_relu_case(3, 32, 17, 17, 48, 1, 1, (Conv2dParams){1, 1, 0, 0}, 1, 30); /* 1x1, threaded */
}
