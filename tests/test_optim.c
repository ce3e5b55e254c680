/*
 * test_optim.c: the optimizer ops (AdamW, EMA, sum of squares, scale, NaN
 * check) against straightforward double loops, and model/optim.c's step
 * against torch.optim.AdamW + clip_grad_norm_ + LambdaLR + U-ViT's ema() on
 * tests/fixtures/adamw.safetensors (tests/reference/make_adamw_fixture.py).
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../kernels/philox.h"
#include "../model/optim.h"
#include "../model/safetensors.h"
#include "../model/uvit.h"
#include "support/tiny_uvit.h"

#define FIXTURE "tests/fixtures/adamw.safetensors"

/* n floats of N(0, scale^2) from the test stream `step` */
static float *randn(int64_t n, uint32_t step, float scale)
{
    float *x = xmalloc((size_t)n * sizeof *x);
    philox_fill_normal(x, n, 7, RNG_TEST, step, 0);
    for (int64_t i = 0; i < n; i++) x[i] *= scale;
    return x;
}

static float *copy_of(const float *x, int64_t n)
{
    float *y = xmalloc((size_t)n * sizeof *y);
    memcpy(y, x, (size_t)n * sizeof *y);
    return y;
}

/* The error measure of these tests: the largest |got - want| / (|want| +
   terms[i]), where terms[i] is the sum of the magnitudes of the terms added
   to form element i. F32 rounding is bounded relative to that sum, so an
   element that cancels to near zero is not counted as a large error. */
static double err_vs_terms(const float *got, const double *want, const double *terms, int64_t n)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (d > 0) worst = fmax(worst, d / (fabs(want[i]) + terms[i]));
    }
    return worst;
}

static double *new_doubles(int64_t n) { return xmalloc((size_t)n * sizeof(double)); }

/* AdamW's terms for element i, given the state before the update, the
   gradient and the new m, v: fills the magnitude sums of m, v and p */
static void adamw_terms(AdamWParams a, double p_prev, double m_prev, double v_prev, double g,
                        double m_new, double v_new, double *tm, double *tv, double *tp)
{
    double bc1 = 1 - pow(a.beta1, (double)a.step), bc2 = 1 - pow(a.beta2, (double)a.step);
    *tm = fabs(a.beta1 * m_prev) + fabs((1 - a.beta1) * g);
    *tv = fabs(a.beta2 * v_prev) + (1 - a.beta2) * g * g;
    *tp = fabs(p_prev) + a.lr / bc1 * fabs(m_new) / (sqrt(fabs(v_new)) / sqrt(bc2) + a.eps);
}

/* ---- ops against double loops ----------------------------------------------------- */

Test(optim, adamw_step_matches_double_loop)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    const int64_t n = 40000 + 13;   /* several chunks and a tail, parallel */
    float *p = randn(n, 1, 1.0f), *g = randn(n, 2, 0.1f);
    float *m = randn(n, 3, 0.01f), *v = randn(n, 4, 0.001f);
    for (int64_t i = 0; i < n; i++) v[i] = v[i] * v[i];   /* second moments are >= 0 */
    AdamWParams a = { .lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                      .weight_decay = 0.03, .step = 7 };
    double *wp = new_doubles(n), *wm = new_doubles(n), *wv = new_doubles(n);
    double *tp = new_doubles(n), *tm = new_doubles(n), *tv = new_doubles(n);
    double bc1 = 1 - pow(a.beta1, 7), bc2 = 1 - pow(a.beta2, 7);
    for (int64_t i = 0; i < n; i++) {
        double pi = p[i] * (1 - a.lr * a.weight_decay);
        wm[i] = a.beta1 * m[i] + (1 - a.beta1) * g[i];
        wv[i] = a.beta2 * v[i] + (1 - a.beta2) * (double)g[i] * g[i];
        wp[i] = pi - a.lr / bc1 * wm[i] / (sqrt(wv[i]) / sqrt(bc2) + a.eps);
        adamw_terms(a, p[i], m[i], v[i], g[i], wm[i], wv[i], &tm[i], &tv[i], &tp[i]);
    }
    op_adamw_step(&ctx, tensor1(p, DT_F32, n), tensor1(g, DT_F32, n), tensor1(m, DT_F32, n),
                  tensor1(v, DT_F32, n), a);
    /* a few F32 roundings per element: within 1e-6 of the terms' size */
    double em = err_vs_terms(m, wm, tm, n), ev = err_vs_terms(v, wv, tv, n),
           ep = err_vs_terms(p, wp, tp, n);
    cr_expect_lt(em, 1e-6, "m: %.3g", em);
    cr_expect_lt(ev, 1e-6, "v: %.3g", ev);
    cr_expect_lt(ep, 1e-6, "p: %.3g", ep);
    free(tp); free(tm); free(tv);
    free(p); free(g); free(m); free(v); free(wp); free(wm); free(wv);
    ctx_destroy(&ctx);
}

Test(optim, adamw_first_step_with_zero_lr_only_fills_moments)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    const int64_t n = 100;
    float *p = randn(n, 5, 1.0f), *g = randn(n, 6, 1.0f), *p0 = copy_of(p, n);
    float *m = xcalloc((size_t)n, sizeof *m), *v = xcalloc((size_t)n, sizeof *v);
    AdamWParams a = { .lr = 0, .beta1 = 0.99, .beta2 = 0.999, .eps = 1e-8,
                      .weight_decay = 0.03, .step = 1 };
    op_adamw_step(&ctx, tensor1(p, DT_F32, n), tensor1(g, DT_F32, n), tensor1(m, DT_F32, n),
                  tensor1(v, DT_F32, n), a);
    cr_expect(memcmp(p, p0, (size_t)n * sizeof *p) == 0);
    for (int64_t i = 0; i < n; i++) {
        cr_expect_eq(m[i], (float)(1 - 0.99) * g[i]);
        cr_expect_eq(v[i], (float)(1 - 0.999) * g[i] * g[i]);
    }
    free(p); free(g); free(p0); free(m); free(v);
    ctx_destroy(&ctx);
}

Test(optim, ops_do_not_depend_on_thread_count)
{
    const int64_t n = 3 * 16384 * 2 + 5;
    float *g = randn(n, 8, 0.3f);
    float *buf[2][4];
    double sums[2];
    for (int t = 0; t < 2; t++) {
        Ctx ctx;
        ctx_init_cpu(&ctx, t + 1);
        float *p = randn(n, 9, 1.0f), *m = xcalloc((size_t)n, 4), *v = xcalloc((size_t)n, 4);
        float *e = randn(n, 10, 1.0f);
        AdamWParams a = { .lr = 1e-3, .beta1 = 0.99, .beta2 = 0.99, .eps = 1e-8,
                          .weight_decay = 0.03, .step = 1 };
        op_adamw_step(&ctx, tensor1(p, DT_F32, n), tensor1(g, DT_F32, n),
                      tensor1(m, DT_F32, n), tensor1(v, DT_F32, n), a);
        op_ema_update(&ctx, tensor1(e, DT_F32, n), tensor1(p, DT_F32, n), 0.9999);
        sums[t] = op_sum_squares(&ctx, tensor1(p, DT_F32, n));
        buf[t][0] = p; buf[t][1] = m; buf[t][2] = v; buf[t][3] = e;
        ctx_destroy(&ctx);
    }
    for (int k = 0; k < 4; k++) {
        cr_expect(memcmp(buf[0][k], buf[1][k], (size_t)n * sizeof(float)) == 0, "buffer %d", k);
        free(buf[0][k]); free(buf[1][k]);
    }
    cr_expect(sums[0] == sums[1], "sum of squares %.17g vs %.17g", sums[0], sums[1]);
    free(g);
}

Test(optim, ema_update_matches_uvit_formula)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    const int64_t n = 35000;
    float *e = randn(n, 11, 1.0f), *p = randn(n, 12, 1.0f), *e0 = copy_of(e, n);
    const double rate = 0.9999;
    op_ema_update(&ctx, tensor1(e, DT_F32, n), tensor1(p, DT_F32, n), rate);
    const float r = (float)rate, q = (float)(1 - rate);
    for (int64_t i = 0; i < n; i++) {
        /* ema.mul_(rate).add_((1 - rate) * src) in F32, exactly */
        float want = e0[i] * r + q * p[i];
        cr_assert_eq(e[i], want, "element %lld: %.9g vs %.9g", (long long)i, e[i], want);
        cr_assert_lt(fabs(e[i] - (rate * e0[i] + (1 - rate) * p[i])), 1e-6 * (fabs(e0[i]) + 1e-3));
    }
    /* decay 0 copies (U-ViT's initialisation ema_update(0)) */
    op_ema_update(&ctx, tensor1(e, DT_F32, n), tensor1(p, DT_F32, n), 0.0);
    cr_expect(memcmp(e, p, (size_t)n * sizeof *e) == 0);
    free(e); free(p); free(e0);
    ctx_destroy(&ctx);
}

Test(optim, sum_squares_and_scale)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    const int64_t n = 100003;
    float *x = randn(n, 13, 2.0f);
    double want = 0;
    for (int64_t i = 0; i < n; i++) want += (double)x[i] * x[i];
    double got = op_sum_squares(&ctx, tensor1(x, DT_F32, n));
    cr_expect_lt(fabs(got - want) / want, 1e-12, "%.17g vs %.17g", got, want);
    cr_expect_eq(op_sum_squares(&ctx, tensor1(x, DT_F32, 0)), 0.0);

    float *x0 = copy_of(x, n);
    op_scale(&ctx, tensor1(x, DT_F32, n), 0.25f);
    for (int64_t i = 0; i < n; i++) cr_assert_eq(x[i], x0[i] * 0.25f);
    free(x); free(x0);
    ctx_destroy(&ctx);
}

Test(optim, has_nonfinite_finds_nan_and_inf_anywhere)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    const int64_t n = 70001;
    float *x = randn(n, 14, 1.0f);
    Tensor t = tensor1(x, DT_F32, n);
    cr_expect_eq(op_has_nonfinite(&ctx, t), 0);
    x[5] = FLT_MAX; x[6] = -FLT_MAX; x[7] = FLT_MIN / 8; x[8] = -0.0f;  /* finite extremes */
    cr_expect_eq(op_has_nonfinite(&ctx, t), 0);
    const float bad[3] = { NAN, INFINITY, -INFINITY };
    const int64_t where[4] = { 0, 16383, 40000, n - 1 };
    for (int b = 0; b < 3; b++)
        for (int w = 0; w < 4; w++) {
            float keep = x[where[w]];
            x[where[w]] = bad[b];
            cr_expect_eq(op_has_nonfinite(&ctx, t), 1, "value %d at %lld", b, (long long)where[w]);
            x[where[w]] = keep;
        }
    cr_expect_eq(op_has_nonfinite(&ctx, t), 0);
    free(x);
    ctx_destroy(&ctx);
}

/* ---- the optimizer step ------------------------------------------------------------ */

Test(optim, learning_rate_warmup_follows_lambdalr_order)
{
    OptimConfig c = optim_config_uvit(1);
    cr_expect_eq(c.lr, 2e-4);
    cr_expect_eq(c.beta1, 0.99);
    cr_expect_eq(c.beta2, 0.999);
    cr_expect_eq(c.warmup_steps, 2500);
    cr_expect_eq(c.weight_decay, 0.03);
    cr_expect_eq(c.ema_decay, 0.9999);
    cr_expect_eq(c.max_grad_norm, 0.0);
    cr_expect_eq(optim_config_uvit(0).beta2, 0.99);
    cr_expect_eq(optim_config_uvit(0).warmup_steps, 5000);
    cr_expect_eq(optim_lr_at(&c, 1), 0.0);
    cr_expect_eq(optim_lr_at(&c, 2), 2e-4 * (1.0 / 2500));
    cr_expect_eq(optim_lr_at(&c, 1251), 2e-4 * 0.5);
    cr_expect_eq(optim_lr_at(&c, 2501), 2e-4);
    cr_expect_eq(optim_lr_at(&c, 100000), 2e-4);
    c.warmup_steps = 0;
    cr_expect_eq(optim_lr_at(&c, 1), 2e-4);
}

static double meta_double(const SafeTensors *st, const char *cfg, const char *field)
{
    char key[64];
    snprintf(key, sizeof key, "%s.%s", cfg, field);
    const char *s = st_metadata(st, key);
    cr_assert(s != NULL, FIXTURE ": metadata %s missing", key);
    return strtod(s, NULL);
}

static float *read_tensor(const SafeTensors *st, const char *cfg, const char *field, int ndim,
                          const int64_t *shape)
{
    char name[64];
    snprintf(name, sizeof name, "%s.%s", cfg, field);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *x = xmalloc((size_t)n * sizeof *x);
    cr_assert_eq(st_read_f32(st, name, x, ndim, shape), 0, "%s", err_msg());
    return x;
}

static void check_against_torch(const char *cfg)
{
    SafeTensors st;
    cr_assert_eq(st_open(&st, FIXTURE), 0, "%s", err_msg());
    int64_t n = (int64_t)meta_double(&st, cfg, "n"), K = (int64_t)meta_double(&st, cfg, "steps");
    OptimConfig c = {
        .lr = meta_double(&st, cfg, "lr"),
        .beta1 = meta_double(&st, cfg, "beta1"),
        .beta2 = meta_double(&st, cfg, "beta2"),
        .eps = meta_double(&st, cfg, "eps"),
        .weight_decay = meta_double(&st, cfg, "weight_decay"),
        .warmup_steps = (int64_t)meta_double(&st, cfg, "warmup"),
        .ema_decay = meta_double(&st, cfg, "ema_rate"),
        .max_grad_norm = meta_double(&st, cfg, "grad_clip"),
    };
    int64_t vec[1] = { n }, mat[2] = { K, n };
    float *p = read_tensor(&st, cfg, "p0", 1, vec), *grads = read_tensor(&st, cfg, "grads", 2, mat);
    float *p0 = copy_of(p, n);
    const char *fields[4] = { "p", "m", "v", "ema" };
    float *want_f[4];
    for (int f = 0; f < 4; f++) want_f[f] = read_tensor(&st, cfg, fields[f], 2, mat);

    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    Optimizer o;
    optim_create(&o, &ctx, &c, p, (size_t)n);
    float *g = xmalloc((size_t)n * sizeof *g);
    double *want = new_doubles(n), *terms[4];
    for (int f = 0; f < 4; f++) terms[f] = new_doubles(n);
    int clipped = 0;
    for (int64_t k = 0; k < K; k++) {
        memcpy(g, grads + k * n, (size_t)n * sizeof *g);
        cr_assert_eq(optim_step_buffers(&ctx, &o, p, g), 0, "%s", err_msg());
        clipped += o.last_clipped;
        /* the terms' magnitudes from torch's state before and after the update */
        AdamWParams a = { .lr = optim_lr_at(&c, k + 1), .beta1 = c.beta1, .beta2 = c.beta2,
                          .eps = c.eps, .weight_decay = c.weight_decay, .step = k + 1 };
        for (int64_t i = 0; i < n; i++) {
            double p_prev = k ? want_f[0][(k - 1) * n + i] : p0[i];
            double m_prev = k ? want_f[1][(k - 1) * n + i] : 0;
            double v_prev = k ? want_f[2][(k - 1) * n + i] : 0;
            double e_prev = k ? want_f[3][(k - 1) * n + i] : p0[i];
            adamw_terms(a, p_prev, m_prev, v_prev, grads[k * n + i], want_f[1][k * n + i],
                        want_f[2][k * n + i], &terms[1][i], &terms[2][i], &terms[0][i]);
            terms[3][i] = fabs(c.ema_decay * e_prev) + fabs((1 - c.ema_decay) * want_f[0][k * n + i]);
        }
        const float *got[4] = { p, o.m, o.v, o.ema };
        for (int f = 0; f < 4; f++) {
            for (int64_t i = 0; i < n; i++) want[i] = want_f[f][k * n + i];
            double e = err_vs_terms(got[f], want, terms[f], n);
            cr_expect_lt(e, 1e-6, "%s: step %lld: %s: relative error %.3g", cfg,
                         (long long)k + 1, fields[f], e);
        }
    }
    free(want);
    for (int f = 0; f < 4; f++) free(terms[f]);
    cr_expect_eq(o.step, K);
    if (c.max_grad_norm > 0) cr_expect_gt(clipped, 0, "%s: the fixture never clips", cfg);
    optim_destroy(&o, &ctx);
    free(p); free(p0); free(grads); free(g);
    for (int f = 0; f < 4; f++) free(want_f[f]);
    st_close(&st);
    ctx_destroy(&ctx);
}

Test(optim, matches_torch_cifar10_settings) { check_against_torch("cifar"); }
Test(optim, matches_torch_other_betas) { check_against_torch("others"); }
Test(optim, matches_torch_large_steps_with_clipping) { check_against_torch("big"); }

Test(optim, clipping_scales_to_the_max_norm)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    const int64_t n = 1000;
    float *p = randn(n, 15, 1.0f), *g = randn(n, 16, 1.0f);
    OptimConfig c = optim_config_uvit(1);
    c.max_grad_norm = 1.0;
    Optimizer o;
    optim_create(&o, &ctx, &c, p, (size_t)n);
    double norm = sqrt(op_sum_squares(&ctx, tensor1(g, DT_F32, n)));
    cr_assert_gt(norm, 10);
    cr_assert_eq(optim_step_buffers(&ctx, &o, p, g), 0);
    cr_expect_eq(o.last_clipped, 1);
    cr_expect_lt(fabs(o.last_grad_norm - norm), 1e-9 * norm);
    double after = sqrt(op_sum_squares(&ctx, tensor1(g, DT_F32, n)));
    cr_expect_lt(fabs(after - 1.0), 1e-5, "norm after clipping %.9g", after);
    /* below the threshold nothing is scaled */
    op_scale(&ctx, tensor1(g, DT_F32, n), 0.5f);
    float *g0 = copy_of(g, n);
    cr_assert_eq(optim_step_buffers(&ctx, &o, p, g), 0);
    cr_expect_eq(o.last_clipped, 0);
    cr_expect(memcmp(g, g0, (size_t)n * sizeof *g) == 0);
    optim_destroy(&o, &ctx);
    free(p); free(g); free(g0);
    ctx_destroy(&ctx);
}

Test(optim, nonfinite_gradient_stops_without_changing_anything)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    const int64_t n = 500;
    float *p = randn(n, 17, 1.0f), *g = randn(n, 18, 1.0f);
    OptimConfig c = optim_config_uvit(0);
    c.warmup_steps = 0;
    Optimizer o;
    optim_create(&o, &ctx, &c, p, (size_t)n);
    cr_assert_eq(optim_step_buffers(&ctx, &o, p, g), 0);
    float *p1 = copy_of(p, n), *m1 = copy_of(o.m, n), *v1 = copy_of(o.v, n), *e1 = copy_of(o.ema, n);
    g[123] = NAN;
    cr_expect_eq(optim_step_buffers(&ctx, &o, p, g), -1);
    cr_expect(strstr(err_msg(), "NaN or Inf") != NULL, "%s", err_msg());
    cr_expect_eq(o.step, 1);
    cr_expect(memcmp(p, p1, (size_t)n * 4) == 0 && memcmp(o.m, m1, (size_t)n * 4) == 0 &&
              memcmp(o.v, v1, (size_t)n * 4) == 0 && memcmp(o.ema, e1, (size_t)n * 4) == 0);
    g[123] = -INFINITY;
    cr_expect_eq(optim_step_buffers(&ctx, &o, p, g), -1);
    optim_destroy(&o, &ctx);
    free(p); free(g); free(p1); free(m1); free(v1); free(e1);
    ctx_destroy(&ctx);
}

Test(optim, resume_from_saved_state_is_bit_identical)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    const int64_t n = 20000;
    OptimConfig c = optim_config_uvit(1);
    c.warmup_steps = 3;
    c.max_grad_norm = 5.0;
    float *p_a = randn(n, 19, 1.0f), *p_b = copy_of(p_a, n), *g = xmalloc((size_t)n * 4);
    Optimizer a, b;
    optim_create(&a, &ctx, &c, p_a, (size_t)n);
    optim_create(&b, &ctx, &c, p_b, (size_t)n);
    for (uint32_t k = 0; k < 6; k++) {
        if (k == 3) {
            /* "checkpoint" b: keep weights, m, v, ema, step; rebuild from them */
            float *w = copy_of(p_b, n), *m = copy_of(b.m, n), *v = copy_of(b.v, n),
                  *e = copy_of(b.ema, n);
            int64_t step = b.step;
            optim_destroy(&b, &ctx);
            optim_create(&b, &ctx, &c, w, (size_t)n);
            memcpy(b.m, m, (size_t)n * 4); memcpy(b.v, v, (size_t)n * 4);
            memcpy(b.ema, e, (size_t)n * 4); memcpy(p_b, w, (size_t)n * 4);
            b.step = step;
            free(w); free(m); free(v); free(e);
        }
        philox_fill_normal(g, n, 3, RNG_TEST, 100 + k, 0);
        cr_assert_eq(optim_step_buffers(&ctx, &a, p_a, g), 0);
        philox_fill_normal(g, n, 3, RNG_TEST, 100 + k, 0);
        cr_assert_eq(optim_step_buffers(&ctx, &b, p_b, g), 0);
    }
    cr_expect(memcmp(p_a, p_b, (size_t)n * 4) == 0);
    cr_expect(memcmp(a.m, b.m, (size_t)n * 4) == 0 && memcmp(a.v, b.v, (size_t)n * 4) == 0 &&
              memcmp(a.ema, b.ema, (size_t)n * 4) == 0);
    optim_destroy(&a, &ctx);
    optim_destroy(&b, &ctx);
    free(p_a); free(p_b); free(g);
    ctx_destroy(&ctx);
}

Test(optim, step_on_a_uvit_keeps_padding_zero)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    UViT m;
    tiny_uvit_create(&m, &ctx, "{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,"
                               "\"embed_dim\":32,\"depth\":2,\"num_heads\":2}", 1);
    uvit_enable_grads(&m, &ctx);
    /* a gradient on every parameter's values (padding left at zero) */
    for (int i = 0; i < m.num_params; i++) {
        const ParamInfo *pi = &m.params[i];
        philox_fill_normal(m.grads + pi->offset, (int64_t)pi->numel, 4, RNG_TEST, (uint32_t)i, 0);
    }
    unsigned char *is_param = xcalloc(m.total, 1);
    for (int i = 0; i < m.num_params; i++)
        memset(is_param + m.params[i].offset, 1, m.params[i].numel);
    float *w0 = copy_of(m.weights, (int64_t)m.total);
    OptimConfig c = optim_config_uvit(1);
    c.warmup_steps = 0;
    Optimizer o;
    optim_create(&o, &ctx, &c, m.weights, m.total);
    for (int k = 0; k < 3; k++) cr_assert_eq(optim_step(&ctx, &o, &m), 0);
    size_t changed = 0;
    for (size_t i = 0; i < m.total; i++) {
        if (!is_param[i]) {
            cr_assert_eq(m.weights[i], 0.0f);
            cr_assert_eq(o.ema[i], 0.0f);
        } else {
            changed += m.weights[i] != w0[i];
        }
    }
    cr_expect_gt(changed, m.total / 2);
    optim_destroy(&o, &ctx);
    uvit_destroy(&m, &ctx);
    free(is_param); free(w0);
    ctx_destroy(&ctx);
}
