/*
 * test_vpsde.c: the noise schedules (model/vpsde.h) against U-ViT's formulas
 * and values computed with sde.py / train_t2i_discrete.py in float64, and
 * the training draws and loss (model/vpsde_train.h): statistics,
 * determinism, addressing by (seed, step, position), label dropout, and a
 * few optimizer steps of a tiny U-ViT that lower the loss.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../kernels/philox.h"
#include "../model/optim.h"
#include "../model/uvit.h"
#include "../model/vpsde.h"
#include "../model/vpsde_train.h"
#include "support/tiny_uvit.h"

static double rel(double got, double want) { return fabs(got - want) / fabs(want); }

/* ---- schedules ------------------------------------------------------------------------- */

Test(vpsde, continuous_schedule_matches_the_formulas)
{
    VPSDE sde = vpsde_default();
    cr_expect_eq(sde.beta_min, 0.1);
    cr_expect_eq(sde.beta_max, 20.0);
    for (int i = 0; i <= 20; i++) {
        double t = i / 20.0;
        /* int_0^t beta = 0.1 t + (20 - 0.1) t^2 / 2 = 0.1 t + 9.95 t^2 */
        double integral = 0.1 * t + 9.95 * t * t;
        cr_expect_lt(fabs(vpsde_beta_integral(&sde, 0, t) - integral), 1e-14);
        cr_expect_lt(fabs(vpsde_beta(&sde, t) - (0.1 + 19.9 * t)), 1e-14);
        cr_expect_lt(fabs(vpsde_cum_alpha(&sde, t) - exp(-integral)), 1e-15);
        cr_expect_lt(fabs(vpsde_cum_beta(&sde, t) - (1 - exp(-integral))), 1e-15);
        cr_expect_lt(fabs(vpsde_marginal_mean_coef(&sde, t) - sqrt(exp(-integral))), 1e-15);
        cr_expect_lt(fabs(vpsde_marginal_std(&sde, t) - sqrt(1 - exp(-integral))), 1e-15);
        if (t > 0) {
            cr_expect_lt(rel(vpsde_nsr(&sde, t), exp(integral) - 1), 1e-12);
            cr_expect_lt(rel(vpsde_snr(&sde, t), 1 / (exp(integral) - 1)), 1e-12);
            /* nsr = cum_beta / cum_alpha */
            cr_expect_lt(rel(vpsde_nsr(&sde, t), vpsde_cum_beta(&sde, t) / vpsde_cum_alpha(&sde, t)), 1e-12);
        }
        /* skip: alpha_{t|s} cum_alpha(s) = cum_alpha(t) */
        double s = t / 3;
        cr_expect_lt(rel(vpsde_skip_alpha(&sde, s, t) * vpsde_cum_alpha(&sde, s),
                         vpsde_cum_alpha(&sde, t)), 1e-14);
        cr_expect_lt(fabs(vpsde_skip_beta(&sde, s, t) - (1 - vpsde_skip_alpha(&sde, s, t))), 1e-16);
    }
    /* beta is the derivative of the integral */
    double h = 1e-6, t = 0.37;
    double deriv = (vpsde_beta_integral(&sde, 0, t + h) - vpsde_beta_integral(&sde, 0, t - h)) / (2 * h);
    cr_expect_lt(rel(deriv, vpsde_beta(&sde, t)), 1e-8);
}

Test(vpsde, continuous_schedule_matches_sde_py_values)
{
    /* U-ViT sde.py VPSDE() in float64: cum_alpha, cum_beta, nsr, beta */
    static const double want[5][5] = {
        { 1e-3, 0.99989005604427972, 0.00010994395572028193, 0.00010995604472278707, 0.11990000000000001 },
        { 0.25, 0.52367972152237641, 0.47632027847762359, 0.90956410741459426, 5.0749999999999993 },
        { 0.5, 0.079063812453160687, 0.92093618754683937, 11.648011384379222, 10.049999999999999 },
        { 0.75, 0.0034414065856249506, 0.99655859341437503, 289.57885928884008, 15.024999999999999 },
        { 1.0, 4.3185749060341349e-05, 0.99995681425093963, 23154.786845395425, 20 },
    };
    VPSDE sde = vpsde_default();
    for (int i = 0; i < 5; i++) {
        double t = want[i][0];
        cr_expect_lt(rel(vpsde_cum_alpha(&sde, t), want[i][1]), 1e-14, "t %g", t);
        cr_expect_lt(rel(vpsde_cum_beta(&sde, t), want[i][2]), 1e-12, "t %g", t);
        cr_expect_lt(rel(vpsde_nsr(&sde, t), want[i][3]), 1e-14, "t %g", t);
        cr_expect_lt(rel(vpsde_beta(&sde, t), want[i][4]), 1e-15, "t %g", t);
    }
}

Test(vpsde, discrete_schedule_matches_uvit_numpy_values)
{
    /* train_t2i_discrete.py: stable_diffusion_beta_schedule + Schedule
       (get_skip), float64: n, betas[n], cum_alphas[n], cum_betas[n] */
    static const double want[5][4] = {
        { 1, 0.00084999999999999995, 0.99914999999999998, 0.00084999999999999995 },
        { 2, 0.00085469865540568619, 0.99829602783845139, 0.0017039721615485913 },
        { 500, 0.0048037929805507173, 0.27766965045646774, 0.72233034954353204 },
        { 999, 0.011982376333083366, 0.0047166988998757504, 0.99528330110012575 },
        { 1000, 0.012, 0.004660098513077241, 0.99533990148692297 },
    };
    DiscreteSchedule *s = xmalloc(sizeof *s);
    discrete_schedule_sd(s);
    cr_expect_eq(s->N, 1000);
    cr_expect_eq(s->betas[0], 0.0);
    cr_expect_eq(s->alphas[0], 1.0);
    cr_expect_eq(s->cum_alphas[0], 1.0);
    cr_expect_eq(s->cum_betas[0], 0.0);
    for (int i = 0; i < 5; i++) {
        int n = (int)want[i][0];
        cr_expect_lt(rel(s->betas[n], want[i][1]), 1e-14, "n %d", n);
        cr_expect_lt(rel(s->cum_alphas[n], want[i][2]), 1e-13, "n %d", n);
        cr_expect_lt(rel(s->cum_betas[n], want[i][3]), 1e-13, "n %d", n);
    }
    for (int n = 1; n <= 1000; n++) {
        cr_assert_lt(fabs(s->cum_alphas[n] + s->cum_betas[n] - 1), 1e-14, "n %d", n);
        cr_assert_eq(s->alphas[n], 1 - s->betas[n]);
        cr_assert(s->betas[n] > s->betas[n - 1] && s->cum_alphas[n] < s->cum_alphas[n - 1]);
    }
    free(s);
}

/* ---- training draws -------------------------------------------------------------------- */

typedef struct {
    Ctx ctx;
    TrainNoise tn;
    float *x0;      /* host == backend on CPU */
    int B, C, H, W;
} Fixture;

static void fixture_init(Fixture *f, TrainNoiseKind kind, int B, int C, int H, int W, float x0_value)
{
    ctx_init_cpu(&f->ctx, 2);
    f->B = B; f->C = C; f->H = H; f->W = W;
    train_noise_create(&f->tn, &f->ctx, kind, B, C, H, W);
    size_t n = (size_t)B * C * H * W;
    f->x0 = ctx_alloc(&f->ctx, n * sizeof(float));
    for (size_t i = 0; i < n; i++) f->x0[i] = x0_value;
}

static void fixture_fini(Fixture *f)
{
    ctx_free(&f->ctx, f->x0);
    train_noise_destroy(&f->tn, &f->ctx);
    ctx_destroy(&f->ctx);
}

static Tensor x0_view(Fixture *f, int B) { return tensor4(f->x0, DT_F32, B, f->C, f->H, f->W); }

Test(vpsde, draw_statistics_and_x_t)
{
    Fixture f;
    fixture_init(&f, TRAIN_NOISE_VPSDE, 256, 3, 8, 8, 0.5f);
    /* x0: image b has value (b % 7 - 3) / 3 */
    int64_t per = 3 * 8 * 8;
    for (int b = 0; b < 256; b++)
        for (int64_t j = 0; j < per; j++) f.x0[b * per + j] = (float)((b % 7) - 3) / 3.0f;
    train_noise_draw(&f.ctx, &f.tn, x0_view(&f, 256), 11, 5);
    TrainNoise *tn = &f.tn;
    cr_assert_eq(tn->batch, 256);
    VPSDE sde = vpsde_default();
    double tsum = 0;
    for (int b = 0; b < 256; b++) {
        double t = tn->t[b];
        cr_assert(t > 0 && t < 1);
        tsum += t;
        cr_expect_eq(tn->net_t_host[b], (float)(t * 999.0));
        cr_expect_eq(tn->a[b], (float)sqrt(vpsde_cum_alpha(&sde, t)));
        cr_expect_eq(tn->s[b], (float)sqrt(vpsde_cum_beta(&sde, t)));
        cr_expect_lt(fabs((double)tn->a[b] * tn->a[b] + (double)tn->s[b] * tn->s[b] - 1), 1e-6);
        cr_expect_eq(tn->net_t[b], tn->net_t_host[b]);
    }
    /* U(0,1): mean 1/2, standard error 0.29 / 16 */
    cr_expect_lt(fabs(tsum / 256 - 0.5), 0.08, "mean t %g", tsum / 256);
    /* eps ~ N(0, 1) over 49152 values; x_t = a x0 + s eps */
    double sum = 0, sq = 0;
    int64_t n = 256 * per;
    for (int64_t i = 0; i < n; i++) {
        int b = (int)(i / per);
        double e = tn->eps[i];
        sum += e;
        sq += e * e;
        double want = (double)tn->a[b] * f.x0[i] + (double)tn->s[b] * e;
        cr_assert_lt(fabs(tn->x_t[i] - want), 1e-6 * (fabs(want) + 1), "element %lld", (long long)i);
    }
    double mean = sum / n, var = sq / n - mean * mean;
    cr_expect_lt(fabs(mean), 0.025, "eps mean %g", mean);
    cr_expect_lt(fabs(var - 1), 0.03, "eps variance %g", var);
    fixture_fini(&f);
}

Test(vpsde, draws_are_addressed_by_seed_step_and_position)
{
    Fixture f;
    fixture_init(&f, TRAIN_NOISE_VPSDE, 8, 2, 4, 4, 0.25f);
    int64_t per = 2 * 4 * 4, n = 8 * per;
    TrainNoise *tn = &f.tn;
    train_noise_draw(&f.ctx, tn, x0_view(&f, 8), 3, 17);
    float *eps8 = xmalloc((size_t)n * 4), *xt8 = xmalloc((size_t)n * 4);
    double t8[8];
    memcpy(eps8, tn->eps, (size_t)n * 4);
    memcpy(xt8, tn->x_t, (size_t)n * 4);
    memcpy(t8, tn->t, sizeof t8);
    /* the streams of kernels/philox.h */
    for (int b = 0; b < 8; b++) {
        cr_expect_eq(t8[b], philox_uniform_at(3, RNG_NOISE_TRAIN_T, 17, (uint64_t)b));
        for (int64_t j = 0; j < per; j += 7)
            cr_expect_eq(eps8[b * per + j],
                         philox_normal_at(3, RNG_NOISE_TRAIN_EPS, 17, (uint64_t)(b * per + j)));
    }
    /* same (seed, step): same bits; a smaller batch: the same first images */
    train_noise_draw(&f.ctx, tn, x0_view(&f, 8), 3, 17);
    cr_expect(memcmp(eps8, tn->eps, (size_t)n * 4) == 0 && memcmp(xt8, tn->x_t, (size_t)n * 4) == 0);
    train_noise_draw(&f.ctx, tn, x0_view(&f, 3), 3, 17);
    cr_expect_eq(tn->batch, 3);
    cr_expect(memcmp(eps8, tn->eps, (size_t)(3 * per) * 4) == 0);
    cr_expect(memcmp(t8, tn->t, 3 * sizeof(double)) == 0);
    /* another step or seed: other noise */
    train_noise_draw(&f.ctx, tn, x0_view(&f, 8), 3, 18);
    cr_expect(memcmp(eps8, tn->eps, (size_t)n * 4) != 0 && t8[0] != tn->t[0]);
    train_noise_draw(&f.ctx, tn, x0_view(&f, 8), 4, 17);
    cr_expect(memcmp(eps8, tn->eps, (size_t)n * 4) != 0 && t8[0] != tn->t[0]);
    free(eps8); free(xt8);
    fixture_fini(&f);
}

Test(vpsde, discrete_draws_use_integer_steps)
{
    Fixture f;
    fixture_init(&f, TRAIN_NOISE_DISCRETE, 500, 1, 2, 2, 1.0f);
    TrainNoise *tn = &f.tn;
    train_noise_draw(&f.ctx, tn, x0_view(&f, 500), 9, 2);
    double sum = 0;
    int low = 0, high = 0;
    for (int b = 0; b < 500; b++) {
        int n = (int)tn->t[b];
        cr_assert(n >= 1 && n <= 1000 && tn->t[b] == n);
        cr_expect_eq(n, 1 + (int)philox_below(9, RNG_NOISE_TRAIN_T, 2, (uint64_t)b, 1000));
        cr_expect_eq(tn->net_t_host[b], (float)n);
        cr_expect_eq(tn->a[b], (float)sqrt(tn->disc.cum_alphas[n]));
        cr_expect_eq(tn->s[b], (float)sqrt(tn->disc.cum_betas[n]));
        sum += n;
        low += n <= 500;
        high += n > 500;
    }
    /* uniform on 1..1000: mean 500.5, standard error 289 / sqrt(500) = 13 */
    cr_expect_lt(fabs(sum / 500 - 500.5), 65, "mean n %g", sum / 500);
    cr_expect(low > 180 && high > 180);
    fixture_fini(&f);
}

Test(vpsde, label_dropout_uses_the_null_class)
{
    Fixture f;
    const int B = 4000;
    fixture_init(&f, TRAIN_NOISE_VPSDE, B, 1, 1, 1, 0.0f);
    TrainNoise *tn = &f.tn;
    train_noise_draw(&f.ctx, tn, x0_view(&f, B), 1, 1);
    int64_t *labels = xmalloc((size_t)B * sizeof *labels);
    for (int b = 0; b < B; b++) labels[b] = b % 1000;
    train_noise_labels(&f.ctx, tn, labels, 0.15, 1000, 5, 12);
    int dropped = 0;
    for (int b = 0; b < B; b++) {
        int drop = philox_uniform_at(5, RNG_LABEL_DROP, 12, (uint64_t)b) < 0.15;
        cr_assert_eq(tn->y[b], drop ? 1000 : labels[b]);
        dropped += drop;
    }
    /* 0.15 of 4000: 600, standard deviation 23 */
    cr_expect(dropped > 480 && dropped < 720, "dropped %d", dropped);
    train_noise_labels(&f.ctx, tn, labels, 0.0, 1000, 5, 12);
    cr_expect(memcmp(tn->y, labels, (size_t)B * sizeof *labels) == 0);
    train_noise_labels(&f.ctx, tn, labels, 1.0, 1000, 5, 12);
    for (int b = 0; b < B; b++) cr_assert_eq(tn->y[b], 1000);
    cr_expect_eq(train_noise_y(tn).dtype, DT_I64);
    cr_expect_eq(train_noise_y(tn).shape[0], B);
    free(labels);
    fixture_fini(&f);
}

Test(vpsde, loss_and_its_gradient)
{
    Fixture f;
    fixture_init(&f, TRAIN_NOISE_VPSDE, 4, 3, 4, 4, 0.1f);
    TrainNoise *tn = &f.tn;
    train_noise_draw(&f.ctx, tn, x0_view(&f, 4), 2, 3);
    int64_t n = 4 * 3 * 4 * 4;
    float *pred = xmalloc((size_t)n * 4);
    philox_fill_normal(pred, n, 1, RNG_TEST, 0, 0);
    double want = 0;
    for (int64_t i = 0; i < n; i++) want += ((double)tn->eps[i] - pred[i]) * ((double)tn->eps[i] - pred[i]);
    want /= (double)n;
    Tensor p = tensor4(pred, DT_F32, 4, 3, 4, 4);
    for (int rep = 0; rep < 2; rep++) {   /* dL/dpred is overwritten, not accumulated */
        float loss = train_noise_loss(&f.ctx, tn, p);
        cr_expect_lt(rel(loss, want), 1e-6, "loss %g vs %g", loss, want);
        for (int64_t i = 0; i < n; i++)
            cr_assert_lt(fabs(tn->dpred[i] - 2.0 * (pred[i] - tn->eps[i]) / (double)n), 1e-7);
    }
    free(pred);
    fixture_fini(&f);
}

/* a tiny U-ViT learns a fixed noisy batch: the loss falls under AdamW */
Test(vpsde, uvit_training_steps_lower_the_loss)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    UViT m;
    tiny_uvit_create(&m, &ctx, "{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,"
                               "\"embed_dim\":32,\"depth\":2,\"num_heads\":2,"
                               "\"num_classes\":4}", 3);
    uvit_enable_grads(&m, &ctx);
    const int B = 8;
    UViTActs *acts = uvit_acts_create(&ctx, &m, B, 1);
    TrainNoise tn;
    train_noise_create(&tn, &ctx, TRAIN_NOISE_VPSDE, B, 2, 8, 8);
    float *x0 = ctx_alloc(&ctx, (size_t)B * 2 * 8 * 8 * sizeof(float));
    for (int i = 0; i < B * 128; i++) x0[i] = (float)((i / 8) % 2) - 0.5f;   /* stripes */
    int64_t labels[8] = { 0, 1, 2, 3, 0, 1, 2, 3 };
    OptimConfig oc = optim_config_uvit(1);
    oc.lr = 3e-3;
    oc.warmup_steps = 0;
    oc.max_grad_norm = 1.0;
    Optimizer opt;
    optim_create(&opt, &ctx, &oc, m.weights, m.total);
    float first = 0, last = 0;
    for (int step = 0; step < 30; step++) {
        /* the same draw every step: a fixed objective */
        train_noise_draw(&ctx, &tn, tensor4(x0, DT_F32, B, 2, 8, 8), 1, 0);
        train_noise_labels(&ctx, &tn, labels, 0.25, 3, 1, 0);
        uvit_zero_grads(&m, &ctx);
        float loss = train_noise_uvit_loss(&ctx, &tn, &m, acts, 1);
        cr_assert(isfinite(loss));
        uvit_backward(&ctx, &m, acts, train_noise_dpred(&tn));
        cr_assert_eq(optim_step(&ctx, &opt, &m), 0, "%s", err_msg());
        if (step == 0) first = loss;
        last = loss;
    }
    cr_expect_lt(last, 0.7f * first, "loss %g -> %g", first, last);
    optim_destroy(&opt, &ctx);
    ctx_free(&ctx, x0);
    train_noise_destroy(&tn, &ctx);
    uvit_acts_destroy(&ctx, acts);
    uvit_destroy(&m, &ctx);
    ctx_destroy(&ctx);
}
