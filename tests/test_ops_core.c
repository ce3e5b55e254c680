/*
 * test_ops_core.c: the CPU reference's core ops against plain double loops.
 *
 * Every forward is compared with a naive double-precision loop written here;
 * every backward is compared with central finite differences of its forward
 * (tests/support/gradcheck.h). Gradients are pre-filled with PREFILL before a
 * backward runs and PREFILL is subtracted afterwards, so an op that
 * overwrites instead of accumulating fails the gradient check. Sizes are odd
 * (T = 7, D = 12, H = 3 ...) and a second, larger size of most ops crosses
 * the threshold where work is split across threads.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_gelu.h"
#include "kernels/cpu/cpu_math.h"
#include "kernels/ops.h"
#include "tests/support/gradcheck.h"
#include "tests/support/op_checks.h"

#define PREFILL 0.25f
#define GRAD_EPS 1e-2f
#define GRAD_TOL 5e-3

static Ctx ctx;
static void setup(void) { ctx_init_cpu(&ctx, 0); }
static void teardown(void) { ctx_destroy(&ctx); }
TestSuite(ops_core, .init = setup, .fini = teardown);

/* ---- helpers ------------------------------------------------------------------ */

static uint64_t next_seed = 1;

static float *uniform(int64_t n, float lo, float hi) { return new_uniform(n, lo, hi, &next_seed); }
static float *filled(int64_t n, float v) { return new_filled(n, v); }

static double *dzeros(int64_t n) { return calloc((size_t)(n ? n : 1), sizeof(double)); }

/* every |got - want| within tol * max(1, |want|) */
static void expect_equal(const float *got, const float *want, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i])
            cr_assert_fail("%s[%lld]: got %.9g, want %.9g", what, (long long)i, got[i], want[i]);
}

/* grad[n] was pre-filled with PREFILL before a backward accumulated into it;
   checks what was added against finite differences of g's loss in x */
static void check_grad(const GradCheck *g, float *x, float *grad, int64_t n, int probes,
                       const char *what)
{
    for (int64_t i = 0; i < n; i++) grad[i] -= PREFILL;
    double err = gradcheck_max_error(g, x, n, grad, GRAD_EPS, probes);
    cr_expect(err < GRAD_TOL, "%s: max gradient error %g", what, err);
}

/* the arguments of one forward call, for gradcheck's callback */
typedef struct { Tensor out, a, b, c, d, e; int arg; float eps; } Call;

/* ---- vector math ---------------------------------------------------------------- */

Test(ops_core, normal_cdf_and_exp_accuracy)
{
    double cdf_worst = 0, pdf_worst = 0, exp_worst = 0;
    for (int i = -2000000; i <= 2000000; i++) {
        float x = (float)(i * 5e-6);  /* [-10, 10] */
        float e, cdf = cpu_normal_cdf_e(x, &e);
        cdf_worst = fmax(cdf_worst, fabs(cdf - 0.5 * erfc(-(double)x / sqrt(2.0))));
        pdf_worst = fmax(pdf_worst, fabs(e - exp(-0.5 * (double)x * x)));
        double ex = exp((double)x);
        exp_worst = fmax(exp_worst, fabs(cpu_expf(x) - ex) / ex);
    }
    cr_expect(cdf_worst <= 1.5e-7, "normal CDF max abs error %g", cdf_worst);
    cr_expect(pdf_worst <= 2e-7, "exp(-x^2/2) max abs error %g", pdf_worst);
    cr_expect(exp_worst <= 2.4e-7, "exp max rel error %g", exp_worst);
    /* far tails: a normal float (no denormal), of the right size */
    float e;
    float lo = cpu_normal_cdf_e(-30.0f, &e);
    cr_expect(lo > 0.0f && lo < 1e-30f && isnormal(lo) && isnormal(e), "Phi(-30) = %g", lo);
    cr_expect(cpu_normal_cdf(30.0f) == 1.0f);
    cr_expect(isnan(cpu_normal_cdf(NAN)) && isnan(cpu_expf(NAN)), "NaN must propagate");
    cr_expect(cpu_expf(-1000.0f) < 1e-37f && cpu_expf(-1000.0f) >= 0.0f);
    cr_expect(cpu_normal_cdf(INFINITY) == 1.0f && cpu_normal_cdf(-INFINITY) < 1e-30f);
}

/* ---- linear --------------------------------------------------------------------- */

static void fwd_linear(void *u)
{
    Call *c = u;
    op_linear_forward(&ctx, c->out, c->a, c->b, c->c);
}

static void linear_case(int64_t B, int64_t T, int64_t K, int64_t N, int with_bias, int probes)
{
    int64_t M = B * T;
    float *in = uniform(M * K, -1, 1), *w = uniform(N * K, -1, 1), *b = uniform(N, -1, 1);
    float *out = filled(M * N, NAN), *r = uniform(M * N, -1, 1);
    Call c = {.out = tensor3(out, DT_F32, B, T, N), .a = tensor3(in, DT_F32, B, T, K),
              .b = tensor2(w, DT_F32, N, K),
              .c = with_bias ? tensor1(b, DT_F32, N) : tensor_none()};
    fwd_linear(&c);
    double *want = dzeros(M * N);
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = with_bias ? b[n] : 0;
            for (int64_t k = 0; k < K; k++) s += (double)in[m * K + k] * w[n * K + k];
            want[m * N + n] = s;
        }
    expect_close("linear out", out, want, M * N, 1e-5);

    float *din = filled(M * K, PREFILL), *dw = filled(N * K, PREFILL), *db = filled(N, PREFILL);
    op_linear_backward(&ctx, tensor3(din, DT_F32, B, T, K), tensor2(dw, DT_F32, N, K),
                       with_bias ? tensor1(db, DT_F32, N) : tensor_none(),
                       tensor3(r, DT_F32, B, T, N), c.a, c.b);
    GradCheck g = {out, M * N, r, fwd_linear, &c};
    check_grad(&g, in, din, M * K, probes, "linear din");
    check_grad(&g, w, dw, N * K, probes, "linear dw");
    if (with_bias) check_grad(&g, b, db, N, probes, "linear db");
    else cr_expect(db[0] == PREFILL, "absent db must not be touched");
    free(in), free(w), free(b), free(out), free(r), free(want), free(din), free(dw), free(db);
}

Test(ops_core, linear)
{
    linear_case(3, 7, 12, 5, 1, 1000);
    linear_case(2, 7, 12, 9, 0, 1000);
    linear_case(3, 101, 20, 130, 1, 10);  /* threaded bias fill and db sum */
}

/* ---- layernorm ------------------------------------------------------------------ */

static void fwd_layernorm(void *u)
{
    Call *c = u;
    op_layernorm_forward(&ctx, c->out, c->d, c->e, c->a, c->b, c->c, c->eps);
}

static void layernorm_case(int64_t M, int64_t C, int probes)
{
    float eps = 1e-5f;
    float *in = uniform(M * C, -2, 3), *w = uniform(C, 0.5f, 1.5f), *b = uniform(C, -1, 1);
    float *out = filled(M * C, NAN), *mean = filled(M, NAN), *rstd = filled(M, NAN);
    Call c = {.out = tensor2(out, DT_F32, M, C), .a = tensor2(in, DT_F32, M, C),
              .b = tensor1(w, DT_F32, C), .c = tensor1(b, DT_F32, C),
              .d = tensor1(mean, DT_F32, M), .e = tensor1(rstd, DT_F32, M), .eps = eps};
    fwd_layernorm(&c);
    double *want = dzeros(M * C), *want_mean = dzeros(M), *want_rstd = dzeros(M);
    for (int64_t m = 0; m < M; m++) {
        double mu = 0, var = 0;
        for (int64_t k = 0; k < C; k++) mu += in[m * C + k];
        mu /= C;
        for (int64_t k = 0; k < C; k++) var += (in[m * C + k] - mu) * (in[m * C + k] - mu);
        double rs = 1 / sqrt(var / C + eps);
        for (int64_t k = 0; k < C; k++) want[m * C + k] = (in[m * C + k] - mu) * rs * w[k] + b[k];
        want_mean[m] = mu, want_rstd[m] = rs;
    }
    expect_close("layernorm out", out, want, M * C, 1e-5);
    expect_close("layernorm mean", mean, want_mean, M, 1e-6);
    expect_close("layernorm rstd", rstd, want_rstd, M, 1e-5);

    float *r = uniform(M * C, -1, 1);
    float *din = filled(M * C, PREFILL), *dw = filled(C, PREFILL), *db = filled(C, PREFILL);
    op_layernorm_backward(&ctx, tensor2(din, DT_F32, M, C), tensor1(dw, DT_F32, C),
                          tensor1(db, DT_F32, C), tensor2(r, DT_F32, M, C), c.a, c.b, c.d, c.e);
    GradCheck g = {out, M * C, r, fwd_layernorm, &c};
    check_grad(&g, in, din, M * C, probes, "layernorm din");
    check_grad(&g, w, dw, C, probes, "layernorm dw");
    check_grad(&g, b, db, C, probes, "layernorm db");
    free(in), free(w), free(b), free(out), free(mean), free(rstd), free(want), free(want_mean);
    free(want_rstd), free(r), free(din), free(dw), free(db);
}

Test(ops_core, layernorm)
{
    layernorm_case(2 * 7, 12, 1000);
    layernorm_case(301, 130, 10);  /* threaded rows and dw/db partial sums */
}

/* ---- attention ------------------------------------------------------------------ */

static void fwd_attention(void *u)
{
    Call *c = u;
    op_attention_forward(&ctx, c->out, c->b, c->a, c->arg);
}

/* naive attention in double: out (B,T,A), probs (B,H,T,T) */
static void attention_naive(double *out, double *probs, const float *qkv, int64_t B, int64_t T,
                            int64_t A, int64_t H)
{
    int64_t hd = A / H;
    double scale = 1 / sqrt((double)hd), *s = dzeros(T);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                const float *q = qkv + (b * T + i) * 3 * A + h * hd;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < T; j++) {
                    const float *k = qkv + (b * T + j) * 3 * A + A + h * hd;
                    double d = 0;
                    for (int64_t e = 0; e < hd; e++) d += (double)q[e] * k[e];
                    s[j] = d * scale;
                    mx = fmax(mx, s[j]);
                }
                for (int64_t j = 0; j < T; j++) sum += (s[j] = exp(s[j] - mx));
                for (int64_t j = 0; j < T; j++) {
                    s[j] /= sum;
                    probs[((b * H + h) * T + i) * T + j] = s[j];
                }
                for (int64_t e = 0; e < hd; e++) {
                    double o = 0;
                    for (int64_t j = 0; j < T; j++)
                        o += s[j] * qkv[(b * T + j) * 3 * A + 2 * A + h * hd + e];
                    out[(b * T + i) * A + h * hd + e] = o;
                }
            }
    free(s);
}

/* naive attention backward in double from probs (B,H,T,T): dqkv (B,T,3A)
   for dout (B,T,A) */
static void attention_backward_naive(double *dqkv, const double *probs, const float *qkv, const float *dout,
                                     int64_t B, int64_t T, int64_t A, int64_t H)
{
    int64_t hd = A / H, ld = 3 * A;
    double scale = 1 / sqrt((double)hd), *ds = dzeros(T * T);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const double *P = probs + (b * H + h) * T * T;
            const float *q = qkv + b * T * ld + h * hd, *k = q + A, *v = q + 2 * A, *g = dout + b * T * A + h * hd;
            double *dq = dqkv + b * T * ld + h * hd, *dk = dq + A, *dv = dq + 2 * A;
            for (int64_t i = 0; i < T; i++) {
                double dot = 0;
                for (int64_t j = 0; j < T; j++) {
                    double dp = 0;
                    for (int64_t e = 0; e < hd; e++) dp += (double)g[i * A + e] * v[j * ld + e];
                    ds[i * T + j] = dp;
                    dot += P[i * T + j] * dp;
                }
                for (int64_t j = 0; j < T; j++) ds[i * T + j] = P[i * T + j] * (ds[i * T + j] - dot);
            }
            for (int64_t i = 0; i < T; i++)
                for (int64_t e = 0; e < hd; e++) {
                    double sq = 0, sk = 0, sv = 0;
                    for (int64_t j = 0; j < T; j++) {
                        sq += ds[i * T + j] * k[j * ld + e];
                        sk += ds[j * T + i] * q[j * ld + e];
                        sv += P[j * T + i] * g[j * A + e];
                    }
                    dq[i * ld + e] = scale * sq, dk[i * ld + e] = scale * sk, dv[i * ld + e] = sv;
                }
        }
    free(ds);
}

static void attention_case(int64_t B, int64_t T, int64_t A, int H, int probes)
{
    int64_t nq = B * T * 3 * A, no = B * T * A, np = B * H * T * T;
    float *qkv = uniform(nq, -2, 2), *out = filled(no, NAN), *probs = filled(np, NAN);
    double *want = dzeros(no), *want_p = dzeros(np);
    attention_naive(want, want_p, qkv, B, T, A, H);
    Tensor tq = tensor3(qkv, DT_F32, B, T, 3 * A), to = tensor3(out, DT_F32, B, T, A);
    Tensor tp = tensor4(probs, DT_F32, B, H, T, T);
    op_attention_forward(&ctx, to, tp, tq, H);
    expect_close("attention out", out, want, no, 1e-5);
    expect_close("attention probs", probs, want_p, np, 1e-6);
    float *out2 = filled(no, NAN);  /* inference: no probs kept */
    op_attention_forward(&ctx, tensor3(out2, DT_F32, B, T, A), tensor_none(), tq, H);
    expect_close("attention out without probs", out2, want, no, 1e-5);

    float *r = uniform(no, -1, 1), *dqkv = filled(nq, PREFILL), *dprobs = filled(np, NAN);
    op_attention_backward(&ctx, tensor3(dqkv, DT_F32, B, T, 3 * A),
                          tensor4(dprobs, DT_F32, B, H, T, T), tensor3(r, DT_F32, B, T, A), tq,
                          tp, H);
    /* every entry against the double backward, then sampled ones by finite
       differences of the forward */
    double *want_d = dzeros(nq);
    attention_backward_naive(want_d, want_p, qkv, r, B, T, A, H);
    float *got_d = filled(nq, 0);
    for (int64_t i = 0; i < nq; i++) got_d[i] = dqkv[i] - PREFILL;
    expect_close("attention dqkv", got_d, want_d, nq, 1e-5);
    Call c = {.out = to, .a = tq, .b = tensor_none(), .arg = H};
    GradCheck g = {out, no, r, fwd_attention, &c};
    check_grad(&g, qkv, dqkv, nq, probes, "attention dqkv");
    free(qkv), free(out), free(probs), free(want), free(want_p), free(out2), free(r);
    free(dqkv), free(dprobs), free(want_d), free(got_d);
}

Test(ops_core, attention)
{
    attention_case(2, 7, 12, 3, 1000);
    attention_case(1, 5, 8, 1, 1000);   /* fewer (b, h) pairs than threads */
    attention_case(3, 33, 40, 5, 30);
    /* U-ViT's head widths */
    attention_case(2, 50, 64, 2, 30);   /* the small config: T 50, hd 32 */
    attention_case(1, 19, 64, 1, 30);   /* hd 64, T far from a multiple of 32 */
    attention_case(2, 65, 128, 4, 20);  /* 65 tokens */
    /* the short-sequence kernel's edges (attention_short.c) */
    attention_case(1, 1, 16, 1, 30);    /* one token */
    attention_case(2, 16, 96, 2, 30);   /* hd 48: three vectors of channels; T a multiple of 16 */
    attention_case(1, 100, 128, 2, 10); /* hd 64, key blocks of 4 vectors then 3 */
    attention_case(1, 128, 256, 2, 5);  /* the longest short sequence, hd 128 */
    attention_case(1, 129, 64, 2, 5);   /* one token past it: the GEMM library's path */
}

/* ---- activations ---------------------------------------------------------------- */

static double gelu_ref(double x) { return 0.5 * x * erfc(-x / sqrt(2.0)); }
static double silu_ref(double x) { return x / (1 + exp(-x)); }

static void fwd_gelu(void *u) { Call *c = u; op_gelu_forward(&ctx, c->out, c->a); }
static void fwd_silu(void *u) { Call *c = u; op_silu_forward(&ctx, c->out, c->a); }

Test(ops_core, gelu_accuracy)
{
    /* every 5e-6 over [-10, 10]: within 1e-6 * max(1, |x|) of double */
    int64_t n = 4000001;
    float *x = malloc((size_t)n * sizeof(float)), *y = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = (float)(-10.0 + 5e-6 * (double)i);
    op_gelu_forward(&ctx, tensor1(y, DT_F32, n), tensor1(x, DT_F32, n));
    double worst = 0;
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(y[i] - gelu_ref(x[i])) / fmax(1.0, fabs(x[i])));
    cr_expect(worst < 1e-6, "gelu max error %g (scaled by max(1, |x|))", worst);
    free(x), free(y);
}

Test(ops_core, activations_propagate_nan)
{
    float x[3] = {NAN, 1.0f, -INFINITY}, y[3], dx[3] = {0}, dy[3] = {1, 1, 1};
    Tensor tx = tensor1(x, DT_F32, 3), ty = tensor1(y, DT_F32, 3), tdx = tensor1(dx, DT_F32, 3);
    op_gelu_forward(&ctx, ty, tx);
    cr_expect(isnan(y[0]) && fabsf(y[1] - 0.8413447f) < 1e-6f);
    op_silu_forward(&ctx, ty, tx);
    cr_expect(isnan(y[0]) && fabsf(y[1] - 0.7310586f) < 1e-6f);
    op_gelu_backward(&ctx, tdx, tensor1(dy, DT_F32, 3), tx);
    cr_expect(isnan(dx[0]));
    dx[0] = 0;
    op_silu_backward(&ctx, tdx, tensor1(dy, DT_F32, 3), tx);
    cr_expect(isnan(dx[0]));
}

static void activation_case(void (*fwd)(void *), double (*ref)(double),
                            void (*bwd)(Ctx *, Tensor, Tensor, Tensor), int64_t n, int probes,
                            const char *what)
{
    float *x = uniform(n, -6, 6), *y = filled(n, NAN), *r = uniform(n, -1, 1);
    float *dx = filled(n, PREFILL);
    double *want = dzeros(n);
    for (int64_t i = 0; i < n; i++) want[i] = ref(x[i]);
    Call c = {.out = tensor2(y, DT_F32, 1, n), .a = tensor2(x, DT_F32, 1, n)};
    fwd(&c);
    expect_close(what, y, want, n, 1e-6);
    bwd(&ctx, tensor2(dx, DT_F32, 1, n), tensor2(r, DT_F32, 1, n), c.a);
    GradCheck g = {y, n, r, fwd, &c};
    check_grad(&g, x, dx, n, probes, what);
    free(x), free(y), free(r), free(dx), free(want);
}

Test(ops_core, gelu_and_silu)
{
    activation_case(fwd_gelu, gelu_ref, op_gelu_backward, 1001, 1001, "gelu");
    activation_case(fwd_gelu, gelu_ref, op_gelu_backward, 100003, 10, "gelu (threaded)");
    activation_case(fwd_silu, silu_ref, op_silu_backward, 1001, 1001, "silu");
    activation_case(fwd_silu, silu_ref, op_silu_backward, 100003, 10, "silu (threaded)");
}

/* ---- adds ------------------------------------------------------------------------- */

Test(ops_core, add_and_accumulate)
{
    int64_t sizes[2] = {2 * 7 * 12, 100003};
    for (int s = 0; s < 2; s++) {
        int64_t n = sizes[s];
        float *a = uniform(n, -1, 1), *b = uniform(n, -1, 1), *out = filled(n, NAN);
        float *want = malloc((size_t)n * sizeof(float)), *keep = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) want[i] = a[i] + b[i];
        Tensor ta = tensor1(a, DT_F32, n), tb = tensor1(b, DT_F32, n);
        op_add_forward(&ctx, tensor1(out, DT_F32, n), ta, tb);
        expect_equal(out, want, n, "add out");
        memcpy(keep, a, (size_t)n * sizeof(float));
        op_add_forward(&ctx, ta, ta, tb);  /* out aliasing a */
        expect_equal(a, want, n, "add in place");
        op_accumulate(&ctx, tb, tensor1(keep, DT_F32, n));
        expect_equal(b, want, n, "accumulate");
        float *da = filled(n, 1), *db = filled(n, 2);
        op_add_backward(&ctx, tensor1(da, DT_F32, n), tensor1(db, DT_F32, n),
                        tensor1(keep, DT_F32, n));
        for (int64_t i = 0; i < n; i++) want[i] = 1 + keep[i];
        expect_equal(da, want, n, "add da");
        for (int64_t i = 0; i < n; i++) want[i] = 2 + keep[i];
        expect_equal(db, want, n, "add db");
        free(a), free(b), free(out), free(want), free(keep), free(da), free(db);
    }
}

static void fwd_add_bcast(void *u) { Call *c = u; op_add_bcast_forward(&ctx, c->out, c->a, c->b); }
static void fwd_add_per_image(void *u) { Call *c = u; op_add_per_image_forward(&ctx, c->out, c->a, c->b); }

/* in [B,T,D] plus a broadcast row: [T,D] to every image (add_bcast), or
   per_image: image b's own [D] row to each of its tokens (add_per_image) */
static void add_row_case(int per_image, int64_t B, int64_t T, int64_t D, int probes)
{
    int64_t n = B * T * D, R = per_image ? B * D : T * D;
    float *in = uniform(n, -1, 1), *row = uniform(R, -1, 1), *out = filled(n, NAN);
    float *want = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) want[i] = in[i] + row[per_image ? (i / (T * D)) * D + i % D : i % R];
    Tensor trow = per_image ? tensor2(row, DT_F32, B, D) : tensor2(row, DT_F32, T, D);
    Call c = {.out = tensor3(out, DT_F32, B, T, D), .a = tensor3(in, DT_F32, B, T, D), .b = trow};
    void (*fwd)(void *) = per_image ? fwd_add_per_image : fwd_add_bcast;
    fwd(&c);
    expect_equal(out, want, n, "add row out");
    float *r = uniform(n, -1, 1), *din = filled(n, PREFILL), *drow = filled(R, PREFILL);
    Tensor tdin = tensor3(din, DT_F32, B, T, D), tr = tensor3(r, DT_F32, B, T, D);
    trow.data = drow;
    if (per_image) op_add_per_image_backward(&ctx, tdin, trow, tr);
    else op_add_bcast_backward(&ctx, tdin, trow, tr);
    GradCheck g = {out, n, r, fwd, &c};
    check_grad(&g, in, din, n, probes, "add row din");
    check_grad(&g, row, drow, R, probes, "add row drow");
    free(in), free(row), free(out), free(want), free(r), free(din), free(drow);
}

Test(ops_core, add_bcast)
{
    add_row_case(0, 3, 7, 12, 1000);
    add_row_case(0, 3, 257, 130, 10);  /* row of 33410 floats: chunks wrap rows */
}

Test(ops_core, add_per_image)
{
    add_row_case(1, 3, 7, 12, 1000);
    add_row_case(1, 5, 49, 4, 1000);    /* the UEM's shape: P = 4 pixels a token */
    add_row_case(1, 4, 300, 130, 10);   /* over the parallel threshold */
}

/* ---- concat and token slices ----------------------------------------------------- */

static void fwd_concat(void *u) { Call *c = u; op_concat_forward(&ctx, c->out, c->a, c->b); }

Test(ops_core, concat)
{
    int64_t B = 2, T = 7, Ca = 5, Cb = 9, M = B * T, C = Ca + Cb;
    float *a = uniform(M * Ca, -1, 1), *b = uniform(M * Cb, -1, 1), *out = filled(M * C, NAN);
    Call c = {.out = tensor3(out, DT_F32, B, T, C), .a = tensor3(a, DT_F32, B, T, Ca),
              .b = tensor3(b, DT_F32, B, T, Cb)};
    fwd_concat(&c);
    for (int64_t m = 0; m < M; m++) {
        expect_equal(out + m * C, a + m * Ca, Ca, "concat a part");
        expect_equal(out + m * C + Ca, b + m * Cb, Cb, "concat b part");
    }
    float *r = uniform(M * C, -1, 1), *da = filled(M * Ca, PREFILL), *db = filled(M * Cb, PREFILL);
    op_concat_backward(&ctx, tensor3(da, DT_F32, B, T, Ca), tensor3(db, DT_F32, B, T, Cb),
                       tensor3(r, DT_F32, B, T, C));
    GradCheck g = {out, M * C, r, fwd_concat, &c};
    check_grad(&g, a, da, M * Ca, 1000, "concat da");
    check_grad(&g, b, db, M * Cb, 1000, "concat db");
    /* only db wanted: its columns are still found from the right end */
    for (int64_t i = 0; i < M * Cb; i++) db[i] = PREFILL;
    op_concat_backward(&ctx, tensor_none(), tensor3(db, DT_F32, B, T, Cb),
                       tensor3(r, DT_F32, B, T, C));
    check_grad(&g, b, db, M * Cb, 1000, "concat db alone");
    free(a), free(b), free(out), free(r), free(da), free(db);
}

static void fwd_slice(void *u) { Call *c = u; op_token_slice_forward(&ctx, c->out, c->a, c->arg); }
static void fwd_place(void *u) { Call *c = u; op_token_place_forward(&ctx, c->out, c->a, c->arg); }

Test(ops_core, token_slice_and_place)
{
    int64_t B = 3, T = 7, n = 4, D = 12;
    int at = 2;
    float *seq = uniform(B * T * D, -1, 1), *part = filled(B * n * D, NAN);
    Tensor tseq = tensor3(seq, DT_F32, B, T, D), tpart = tensor3(part, DT_F32, B, n, D);
    Call slice = {.out = tpart, .a = tseq, .arg = at};
    fwd_slice(&slice);
    for (int64_t b = 0; b < B; b++)
        expect_equal(part + b * n * D, seq + (b * T + at) * D, n * D, "slice out");
    float *r = uniform(B * n * D, -1, 1), *dseq = filled(B * T * D, PREFILL);
    op_token_slice_backward(&ctx, tensor3(dseq, DT_F32, B, T, D), tensor3(r, DT_F32, B, n, D), at);
    GradCheck g = {part, B * n * D, r, fwd_slice, &slice};
    check_grad(&g, seq, dseq, B * T * D, 1000, "slice din");

    /* place: seq rows at..at+n take src, the other rows keep their values */
    float *src = uniform(B * n * D, -1, 1), *before = malloc((size_t)(B * T * D) * sizeof(float));
    memcpy(before, seq, (size_t)(B * T * D) * sizeof(float));
    Call place = {.out = tseq, .a = tensor3(src, DT_F32, B, n, D), .arg = at};
    fwd_place(&place);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            const float *want = t >= at && t < at + n ? src + (b * n + t - at) * D
                                                      : before + (b * T + t) * D;
            expect_equal(seq + (b * T + t) * D, want, D, "place seq");
        }
    float *rs = uniform(B * T * D, -1, 1), *dsrc = filled(B * n * D, PREFILL);
    op_token_place_backward(&ctx, tensor3(dsrc, DT_F32, B, n, D), tensor3(rs, DT_F32, B, T, D), at);
    GradCheck gp = {seq, B * T * D, rs, fwd_place, &place};
    check_grad(&gp, src, dsrc, B * n * D, 1000, "place dsrc");
    free(seq), free(part), free(r), free(dseq), free(src), free(before), free(rs), free(dsrc);
}

/* rows_copy: a gather, a scatter, both lists, and the in-place compaction,
   each against the row it names; BF16 rows move as bytes, 3 of them a row
   (6 bytes: no wider unit divides it). Threads split only the large case. */
static void rows_copy_cases(int64_t B, int64_t R)
{
    float *in = uniform(B * R, -1, 1), *out = filled(B * R, NAN);
    int64_t gather[] = {4, 0, 4, 2}, scatter[] = {3, 0, 2, 1};   /* a row twice is fine to read */
    Tensor tin = tensor2(in, DT_F32, B, R), tout = tensor2(out, DT_F32, B, R);
    op_rows_copy(&ctx, tensor2(out, DT_F32, 4, R), tensor_none(), tin, tensor1(gather, DT_I64, 4));
    for (int k = 0; k < 4; k++) expect_equal(out + k * R, in + gather[k] * R, R, "gather");
    op_rows_copy(&ctx, tout, tensor1(scatter, DT_I64, 4), tensor2(in, DT_F32, 4, R), tensor_none());
    for (int k = 0; k < 4; k++) expect_equal(out + scatter[k] * R, in + k * R, R, "scatter");
    op_rows_copy(&ctx, tout, tensor1(scatter, DT_I64, 4), tin, tensor1(gather, DT_I64, 4));
    for (int k = 0; k < 4; k++) expect_equal(out + scatter[k] * R, in + gather[k] * R, R, "both");

    /* compaction: rows 1, 2, 4 of 5 (row 0 leaves, 3 leaves) to the front */
    int64_t keep[] = {1, 2, 4};
    float *before = malloc((size_t)(B * R) * sizeof(float));
    memcpy(before, in, (size_t)(B * R) * sizeof(float));
    op_rows_copy(&ctx, tin, tensor_none(), tin, tensor1(keep, DT_I64, 3));
    for (int k = 0; k < 3; k++) expect_equal(in + k * R, before + keep[k] * R, R, "compaction");
    expect_equal(in + 3 * R, before + 3 * R, (B - 3) * R, "rows past the kept ones untouched");
    free(in), free(out), free(before);
}

Test(ops_core, rows_copy)
{
    rows_copy_cases(5, 7);
    rows_copy_cases(5, 300000);   /* past CPU_PARALLEL_MIN: the threaded gather */
    uint16_t in[5 * 3], out[4 * 3];
    for (int i = 0; i < 15; i++) in[i] = (uint16_t)(1000 + i);
    int64_t rows[] = {4, 1, 3, 0};
    op_rows_copy(&ctx, tensor2(out, DT_BF16, 4, 3), tensor_none(), tensor2(in, DT_BF16, 5, 3),
                 tensor1(rows, DT_I64, 4));
    for (int k = 0; k < 4; k++)
        cr_assert(memcmp(out + 3 * k, in + 3 * rows[k], 6) == 0, "bf16 row %d", k);
}

/* row_mean: each row's mean against a double sum, rows of a 4-d tensor
   (DeeDiff's uncertainty maps), the same bits on one thread and on all */
Test(ops_core, row_mean)
{
    for (int big = 0; big < 2; big++) {
        int64_t R = 5, C = 2, H = big ? 200 : 3, n = C * H * H;   /* big: past CPU_PARALLEL_MIN */
        float *x = uniform(R * n, -1, 3), out[5], one[5];
        op_row_mean(&ctx, tensor1(out, DT_F32, R), tensor4(x, DT_F32, R, C, H, H));
        for (int64_t r = 0; r < R; r++) {
            double sum = 0;
            for (int64_t j = 0; j < n; j++) sum += x[r * n + j];
            cr_expect(fabs(out[r] - sum / n) <= 1e-6 * fabs(sum / n), "row %lld: %g against %g", (long long)r,
                      out[r], sum / n);
        }
        Ctx one_thread;
        ctx_init_cpu(&one_thread, 1);
        op_row_mean(&one_thread, tensor1(one, DT_F32, R), tensor4(x, DT_F32, R, C, H, H));
        cr_expect(memcmp(out, one, sizeof out) == 0, "thread count changed the bits");
        ctx_destroy(&one_thread);
        free(x);
    }
}

/* row_cosine_distance: 1 - cos of each row pair (CALM's unsaturation) on
   constructed rows, a zero row scoring 1, and a generic row against the
   formula in double */
Test(ops_core, row_cosine_distance)
{
    enum { R = 7, NV = 13 };
    float *prev = uniform(R * NV, -2, 2), *cur = malloc(sizeof(float) * R * NV), score[R];
    memcpy(cur, prev, sizeof(float) * R * NV);
    /* row 0 identical; row 1 scaled by 3 */
    for (int j = 0; j < NV; j++) cur[1 * NV + j] = 3 * prev[1 * NV + j];
    /* row 2 orthogonal: (1,2,0,..) and (-2,1,0,..) */
    for (int j = 0; j < NV; j++) prev[2 * NV + j] = cur[2 * NV + j] = 0;
    prev[2 * NV + 0] = 1, prev[2 * NV + 1] = 2, cur[2 * NV + 0] = -2, cur[2 * NV + 1] = 1;
    /* row 3 opposite; row 4 a zero current state; row 5 a zero previous one */
    for (int j = 0; j < NV; j++) cur[3 * NV + j] = -prev[3 * NV + j];
    for (int j = 0; j < NV; j++) cur[4 * NV + j] = 0;
    for (int j = 0; j < NV; j++) prev[5 * NV + j] = 0;
    /* row 6 generic (13 values: the 8 lanes and a tail of 5) */
    for (int j = 0; j < NV; j++) cur[6 * NV + j] = prev[6 * NV + j] * 0.5f + (float)(j % 3) - 1;
    op_row_cosine_distance(&ctx, tensor1(score, DT_F32, R), tensor2(prev, DT_F32, R, NV),
                           tensor2(cur, DT_F32, R, NV));
    cr_expect(fabsf(score[0]) < 1e-6f, "identical rows: %g", score[0]);
    cr_expect(fabsf(score[1]) < 1e-6f, "a row scaled by 3: %g", score[1]);
    cr_expect(fabsf(score[2] - 1) < 1e-6f, "orthogonal rows: %g", score[2]);
    cr_expect(fabsf(score[3] - 2) < 1e-6f, "opposite rows: %g", score[3]);
    cr_expect_eq(score[4], 1.0f, "a zero current row: %g", score[4]);
    cr_expect_eq(score[5], 1.0f, "a zero previous row: %g", score[5]);
    double pc = 0, pp = 0, cc = 0;
    for (int j = 0; j < NV; j++) {
        pc += (double)prev[6 * NV + j] * cur[6 * NV + j];
        pp += (double)prev[6 * NV + j] * prev[6 * NV + j];
        cc += (double)cur[6 * NV + j] * cur[6 * NV + j];
    }
    cr_expect(fabs(score[6] - (1 - pc / sqrt(pp * cc))) < 1e-6, "generic row: %g", score[6]);
    free(prev), free(cur);

    /* rows past CPU_PARALLEL_MIN in all: the threaded loop, the same bits on one thread */
    enum { BR = 6, BN = 65 * 128 };
    float *a = uniform(BR * BN, -1, 1), *b = uniform(BR * BN, -1, 1), many[BR], one[BR];
    op_row_cosine_distance(&ctx, tensor1(many, DT_F32, BR), tensor3(a, DT_F32, BR, 65, 128),
                           tensor3(b, DT_F32, BR, 65, 128));
    Ctx one_thread;
    ctx_init_cpu(&one_thread, 1);
    op_row_cosine_distance(&one_thread, tensor1(one, DT_F32, BR), tensor3(a, DT_F32, BR, 65, 128),
                           tensor3(b, DT_F32, BR, 65, 128));
    ctx_destroy(&one_thread);
    cr_expect(memcmp(many, one, sizeof many) == 0, "thread count changed the bits");
    free(a), free(b);
}

/* the exit scores' front door: out one F32 score a row; a and b alike */
Test(ops_core, row_scores_refuse_a_short_out, .signal = SIGABRT)
{
    float x[6] = {0}, out[2];
    op_row_mean(&ctx, tensor1(out, DT_F32, 2), tensor2(x, DT_F32, 3, 2));
}

Test(ops_core, row_mean_refuses_bf16, .signal = SIGABRT)
{
    uint16_t x[6] = {0};
    float out[3];
    op_row_mean(&ctx, tensor1(out, DT_F32, 3), tensor2(x, DT_BF16, 3, 2));
}

Test(ops_core, row_cosine_distance_refuses_unlike_rows, .signal = SIGABRT)
{
    float a[6] = {0}, b[6] = {0}, out[3];
    op_row_cosine_distance(&ctx, tensor1(out, DT_F32, 3), tensor2(a, DT_F32, 3, 2), tensor2(b, DT_F32, 2, 3));
}

Test(ops_core, row_cosine_distance_refuses_bf16_on_the_cpu, .signal = SIGABRT)
{
    uint16_t a[6] = {0}, b[6] = {0};
    float out[3];
    op_row_cosine_distance(&ctx, tensor1(out, DT_F32, 3), tensor2(a, DT_BF16, 3, 2), tensor2(b, DT_BF16, 3, 2));
}
