/*
 * test_sampler.c: the samplers, their ops and the predictors (suite "sampler").
 *
 * The samplers are checked against an analytic noise predictor: when every
 * pixel's data distribution is N(mu, s^2), the exact noise prediction is
 *   eps*(x_t) = sigma_t (x_t - alpha_t mu) / (alpha_t^2 s^2 + sigma_t^2)
 * (alpha_t^2 = cum_alpha). With it the probability-flow ODE is a known
 * affine map per pixel, x_end = m_end + (sd_end / sd_T)(x_T - m_T) with
 * m_t = alpha_t mu, sd_t^2 = alpha_t^2 s^2 + sigma_t^2, so the deterministic
 * samplers (dpm, dpm++, ddim eta 0) are compared pixel by pixel with it,
 * and the stochastic ones (em, ddim eta 1) by the mean and spread of many
 * pixels. Then: every evaluation counted and numbered, one image resampled
 * alone equals its copy from a batch bit for bit, the seed decides
 * everything, guidance arithmetic and its null-class batch, and a small
 * random U-ViT end to end through the denoiser.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/errors.h"
#include "kernels/ops.h"
#include "kernels/philox.h"
#include "model/denoiser.h"
#include "model/sampler.h"
#include "model/uvit.h"
#include "tests/support/tiny_uvit.h"

static Ctx ctx;
static void setup(void) { ctx_init_cpu(&ctx, 0); }
static void teardown(void) { ctx_destroy(&ctx); }
TestSuite(sampler, .init = setup, .fini = teardown);

/* ---- ops -------------------------------------------------------------------------- */

Test(sampler, axpby_matches_double_loop_and_may_alias)
{
    /* 3 images of 40,001 floats: crosses the threading threshold, odd tail */
    int64_t B = 3, n = 40001;
    float *x = malloc(B * n * sizeof(float)), *y = malloc(B * n * sizeof(float));
    float *out = malloc(B * n * sizeof(float));
    philox_fill_normal(x, B * n, 1, RNG_TEST, 0, 0);
    philox_fill_normal(y, B * n, 1, RNG_TEST, 1, 0);
    float a[3] = { 0.5f, -1.25f, 2.0f }, b[3] = { 3.0f, 0.0f, -0.75f };
    Tensor tx = tensor2(x, DT_F32, B, n), ty = tensor2(y, DT_F32, B, n), to = tensor2(out, DT_F32, B, n);
    op_axpby(&ctx, to, a, tx, b, ty);
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < n; j++) {
            double want = (double)a[i] * x[i * n + j] + (double)b[i] * y[i * n + j];
            cr_assert(fabs(out[i * n + j] - want) <= 1e-6 * fmax(1.0, fabs(want)),
                      "axpby[%lld,%lld]: %g vs %g", (long long)i, (long long)j, out[i * n + j], want);
        }
    /* out aliasing y gives the same values */
    op_axpby(&ctx, ty, a, tx, b, ty);
    cr_assert(memcmp(out, y, B * n * sizeof(float)) == 0, "axpby in place differs");
    free(x); free(y); free(out);
}

Test(sampler, randn_is_the_philox_stream_of_each_image_id)
{
    int64_t B = 3, n = 12347;   /* ids*n not a multiple of 4: unaligned starts */
    int64_t ids[3] = { 7, 0, 123456789 };
    float *z = malloc(B * n * sizeof(float)), *acc = malloc(B * n * sizeof(float));
    Tensor tz = tensor2(z, DT_F32, B, n), ta = tensor2(acc, DT_F32, B, n);
    op_randn(&ctx, tz, ids, 42, RNG_SAMPLE_INIT, 0);
    for (int64_t i = 0; i < B * n; i++) acc[i] = 1.0f;
    float c[3] = { 0.5f, -2.0f, 0.0f };
    op_add_randn(&ctx, ta, c, ids, 42, RNG_SAMPLE_STEP, 9);
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < n; j++) {
            uint64_t e = (uint64_t)ids[i] * n + j;
            float want = philox_normal_at(42, RNG_SAMPLE_INIT, 0, e);
            cr_assert(memcmp(&z[i * n + j], &want, sizeof want) == 0, "randn[%lld,%lld]",
                      (long long)i, (long long)j);
            float want2 = 1.0f + c[i] * philox_normal_at(42, RNG_SAMPLE_STEP, 9, e);
            cr_assert(acc[i * n + j] == want2, "add_randn[%lld,%lld]: %g vs %g", (long long)i,
                      (long long)j, acc[i * n + j], want2);
        }
    free(z); free(acc);
}

/* ---- the analytic predictor ---------------------------------------------------------- */

#define C_ 2
#define HW_ 1024   /* 32 x 32 */
static const double MU[C_] = { 0.5, -0.8 }, SD[C_] = { 0.3, 0.1 };

typedef struct {
    NoisePredictor base;
    SamplerSchedule *sched;
    int calls, bad_eval;     /* bad_eval: an eval index out of sequence */
    double t_min, t_max;
} Analytic;

static int analytic_predict(NoisePredictor *self, Ctx *c, Tensor x, const double *t, Conditioning y,
                            const int64_t *ids, int eval, Tensor eps)
{
    Analytic *a = self->state;
    if (eval != a->calls) a->bad_eval = 1;
    a->calls++;
    int64_t B = x.shape[0], hw = tensor_numel(x) / (B * C_);   // x is (B, C_, H, W)
    const float *xs = tensor_f32(x);
    float *e = tensor_f32(eps);
    for (int64_t i = 0; i < B; i++) {
        double al = sampler_alpha(a->sched, t[i]), sg = sampler_sigma(a->sched, t[i]);
        a->t_min = fmin(a->t_min, t[i]);
        a->t_max = fmax(a->t_max, t[i]);
        for (int ch = 0; ch < C_; ch++)
            for (int64_t j = 0; j < hw; j++) {
                int64_t k = (i * C_ + ch) * hw + j;
                double var = al * al * SD[ch] * SD[ch] + sg * sg;
                e[k] = (float)(sg * (xs[k] - al * MU[ch]) / var);
            }
    }
    (void)c; (void)y; (void)ids;
    return 0;
}

static Analytic *analytic_new(ScheduleKind kind, int max_batch)
{
    Analytic *a = calloc(1, sizeof *a);
    a->sched = malloc(sizeof *a->sched);
    sampler_schedule_init(a->sched, kind);
    a->base = (NoisePredictor){ .predict = analytic_predict, .state = a, .max_batch = max_batch };
    a->t_min = 1e9;
    a->t_max = -1e9;
    return a;
}
static void analytic_free(Analytic *a) { free(a->sched); free(a); }

static SamplerConfig config(SamplerKind k, ScheduleKind s, int steps, uint64_t seed)
{
    SamplerConfig c = sampler_config_default(k, s);
    c.steps = steps;
    c.seed = seed;
    return c;
}

/* samples B images with ids first..first+B-1 into a fresh host buffer */
static float *run(NoisePredictor *p, const SamplerConfig *c, int B, int64_t first)
{
    int64_t *ids = malloc(B * sizeof *ids);
    for (int i = 0; i < B; i++) ids[i] = first + i;
    float *out = malloc((size_t)B * C_ * HW_ * sizeof(float));
    int rc = sample_run(&ctx, p, c, C_, 32, 32, B, ids, NULL, out);
    cr_assert(rc == 0, "sample_run: %s", err_msg());
    free(ids);
    return out;
}

/* deterministic samplers: every pixel against the exact ODE transport */
static void expect_transport(SamplerKind k, ScheduleKind s, int steps, double eta, double tol)
{
    int B = 4;
    Analytic *a = analytic_new(s, B);
    SamplerConfig c = config(k, s, steps, 3);
    c.eta = eta;
    float *out = run(&a->base, &c, B, 100);
    cr_assert(a->calls == sampler_num_evals(&c) && !a->bad_eval, "%d calls for %d evaluations",
              a->calls, sampler_num_evals(&c));
    SamplerSchedule *sc = a->sched;
    double aT = sampler_alpha(sc, 1.0), sT = sampler_sigma(sc, 1.0);
    double aE = sampler_alpha(sc, c.t_end), sE = sampler_sigma(sc, c.t_end);
    double worst = 0;
    for (int i = 0; i < B; i++)
        for (int ch = 0; ch < C_; ch++)
            for (int j = 0; j < HW_; j++) {
                int64_t k2 = (i * C_ + ch) * HW_ + j;
                double xT = philox_normal_at(3, RNG_SAMPLE_INIT, 0, (uint64_t)(100 + i) * C_ * HW_ + ch * HW_ + j);
                double v2 = SD[ch] * SD[ch];
                double sdT = sqrt(aT * aT * v2 + sT * sT), sdE = sqrt(aE * aE * v2 + sE * sE);
                double want = aE * MU[ch] + sdE / sdT * (xT - aT * MU[ch]);
                worst = fmax(worst, fabs(out[k2] - want));
            }
    cr_log_info("%s on %s, %d steps: max |x - exact| = %.3g", sampler_kind_name(k),
                schedule_kind_name(s), steps, worst);
    cr_assert(worst <= tol, "%s on %s: max error %.3g > %.3g", sampler_kind_name(k),
              schedule_kind_name(s), worst, tol);
    free(out);
    analytic_free(a);
}

Test(sampler, dpm_solver_fast_50_follows_the_exact_ode)
{
    expect_transport(SAMPLER_DPM, SCHEDULE_VPSDE, 50, 0.0, 2e-3);
    expect_transport(SAMPLER_DPM, SCHEDULE_DISCRETE, 50, 0.0, 2e-3);
}

/* the tolerances below are the methods' own discretisation errors (U-ViT's
   code makes the same ones: see matches_uvit_dpm_solver_code_...): uniform
   time steps are coarse in log-SNR near t_end */
Test(sampler, dpm_solver_pp_50_follows_the_exact_ode)
{
    expect_transport(SAMPLER_DPMPP, SCHEDULE_DISCRETE, 50, 0.0, 4e-2);
    /* not a U-ViT setting: t_end 1e-4 leaves a last step of h ~ 3 in lambda */
    expect_transport(SAMPLER_DPMPP, SCHEDULE_VPSDE, 50, 0.0, 8e-2);
}

Test(sampler, ddim_100_follows_the_exact_ode)
{
    expect_transport(SAMPLER_DDIM, SCHEDULE_VPSDE, 100, 0.0, 6e-2);
    expect_transport(SAMPLER_DDIM, SCHEDULE_DISCRETE, 100, 0.0, 6e-2);
}

/* U-ViT's own dpm_solver_pytorch.py / dpm_solver_pp.py (baofff/U-ViT),
   run under torch.set_default_dtype(torch.float64) with model_fn(x, t) = the
   analytic eps above, alpha and sigma from the solver's own NoiseScheduleVP
   ('linear', or 'discrete' with betas = linspace(0.00085^.5, 0.012^.5,
   1000)^2); x_T below, channel 0 then channel 1, as [1, 2, 1, 8]. The call
   of each row is in its comment. */
static const double REF_XT[16] = {
    -2.5, -1.2, -0.3, 0.0, 0.4, 1.1, 1.9, 3.0, -1.75, -0.84, -0.21, 0.0, 0.28, 0.77, 1.33, 2.1 };
static const struct { SamplerKind k; ScheduleKind s; int steps; double out[16]; } REF[] = {
    { SAMPLER_DPM, SCHEDULE_VPSDE, 50, {   /* sample(steps=50, eps=1e-4, fast_version=True) */
      -0.2514018136, 0.1388129505, 0.4089616334, 0.4990111943, 0.6190772756, 0.8291929178,
      1.0693250804, 1.3995068039, -0.9746558209, -0.8835590246, -0.8204920117, -0.7994696741,
      -0.7714398906, -0.7223877695, -0.6663282025, -0.5892462979 } },
    { SAMPLER_DPM, SCHEDULE_VPSDE, 10, {
      -0.2847345555, 0.1227904832, 0.4049232023, 0.4989674420, 0.6243597617, 0.8437963210,
      1.0945809602, 1.4394098391, -0.9812588275, -0.8867181217, -0.8212668638, -0.7994497779,
      -0.7703603299, -0.7194537960, -0.6612749001, -0.5812789183 } },
    { SAMPLER_DDIM, SCHEDULE_VPSDE, 100, {  /* DPM-Solver-1, time_uniform, 100 steps, eps 1e-3 */
      -0.2195805036, 0.1540959357, 0.4127950092, 0.4990280336, 0.6140053996, 0.8152157900,
      1.0451705219, 1.3613582783, -0.9555986094, -0.8744205923, -0.8182204266, -0.7994870380,
      -0.7745091866, -0.7307979466, -0.6808422438, -0.6121531524 } },
    { SAMPLER_DPMPP, SCHEDULE_DISCRETE, 50, {  /* predict_x0, sample(steps=50, eps=1/N, T=1) */
      -0.2859413332, 0.1171344498, 0.3961869150, 0.4892044034, 0.6132277212, 0.8302685275,
      1.0783151632, 1.4193792873, -0.9696175172, -0.8783927355, -0.8152371174, -0.7941852447,
      -0.7661160811, -0.7169950449, -0.6608567177, -0.5836665178 } },
    { SAMPLER_DPMPP, SCHEDULE_DISCRETE, 10, {
      -0.0541440888, 0.2300206180, 0.4267500304, 0.4923265012, 0.5797617956, 0.7327735608,
      0.9076441496, 1.1480912092, -0.8944986695, -0.8435939494, -0.8083522202, -0.7966049771,
      -0.7809419863, -0.7535317524, -0.7222057709, -0.6791325462 } },
};

Test(sampler, matches_uvit_dpm_solver_code_on_the_analytic_model)
{
    for (size_t r = 0; r < sizeof REF / sizeof *REF; r++) {
        Analytic *a = analytic_new(REF[r].s, 1);
        SamplerConfig c = config(REF[r].k, REF[r].s, REF[r].steps, 0);
        float x[16];
        for (int i = 0; i < 16; i++) x[i] = (float)REF_XT[i];
        int64_t id = 0;
        cr_assert(sample_batch(&ctx, &a->base, &c, tensor4(x, DT_F32, 1, C_, 1, 8), cond_none(), &id) == 0);
        double worst = 0;
        for (int i = 0; i < 16; i++) worst = fmax(worst, fabs(x[i] - REF[r].out[i]));
        cr_log_info("%s on %s, %d: max |ours - U-ViT code| = %.3g", sampler_kind_name(c.kind),
                    schedule_kind_name(c.schedule), c.steps, worst);
        cr_assert(worst < 2e-5, "%s on %s, %d steps: off U-ViT's code by %.3g",
                  sampler_kind_name(c.kind), schedule_kind_name(c.schedule), c.steps, worst);
        analytic_free(a);
    }
}

/* stochastic samplers: mean and spread of each channel's 8 x 1024 pixels
   against the data distribution (alpha_end, sigma_end ~ 0 and 1 here) */
static void expect_moments(SamplerKind k, int steps, double eta, int B)
{
    Analytic *a = analytic_new(SCHEDULE_VPSDE, B);
    SamplerConfig c = config(k, SCHEDULE_VPSDE, steps, 11);
    c.eta = eta;
    float *out = run(&a->base, &c, B, 0);
    cr_assert(a->calls == sampler_num_evals(&c) && !a->bad_eval);
    for (int ch = 0; ch < C_; ch++) {
        double s1 = 0, s2 = 0, n = (double)B * HW_;
        for (int i = 0; i < B; i++)
            for (int j = 0; j < HW_; j++) {
                double v = out[(i * C_ + ch) * HW_ + j];
                s1 += v;
                s2 += v * v;
            }
        double mean = s1 / n, sd = sqrt(s2 / n - mean * mean);
        cr_log_info("%s %d steps channel %d: mean %.4f (%.2f), sd %.4f (%.2f)",
                    sampler_kind_name(k), steps, ch, mean, MU[ch], sd, SD[ch]);
        cr_assert(fabs(mean - MU[ch]) <= 5 * SD[ch] / sqrt(n) + 2e-3,
                  "%s channel %d: mean %.4f, want %.4f", sampler_kind_name(k), ch, mean, MU[ch]);
        cr_assert(fabs(sd / SD[ch] - 1) <= 0.04, "%s channel %d: sd %.4f, want %.4f",
                  sampler_kind_name(k), ch, sd, SD[ch]);
    }
    free(out);
    analytic_free(a);
}

Test(sampler, euler_maruyama_1000_reaches_the_data_distribution)
{
    expect_moments(SAMPLER_EM, 1000, 0.0, 8);
}

/* eta = 1 is ancestral sampling: its spread converges slowly in the steps
   (100 steps: sd 10% low here), so this takes 1000 */
Test(sampler, ddim_with_noise_reaches_the_data_distribution)
{
    expect_moments(SAMPLER_DDIM, 1000, 1.0, 8);
}

/* ---- evaluations, seeds, regeneration ----------------------------------------------------- */

Test(sampler, every_evaluation_is_counted_in_order_within_the_time_range)
{
    const int steps[] = { 1, 2, 3, 4, 5, 6, 50 };
    for (int k = SAMPLER_EM; k <= SAMPLER_DDIM; k++)
        for (int s = SCHEDULE_VPSDE; s <= SCHEDULE_DISCRETE; s++)
            for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
                if (k == SAMPLER_EM && s == SCHEDULE_DISCRETE) continue;
                Analytic *a = analytic_new((ScheduleKind)s, 2);
                SamplerConfig c = config((SamplerKind)k, (ScheduleKind)s, steps[i], 1);
                free(run(&a->base, &c, 2, 0));
                cr_assert(a->calls == steps[i] && !a->bad_eval, "%s/%s %d steps: %d calls",
                          sampler_kind_name(c.kind), schedule_kind_name(c.schedule), steps[i],
                          a->calls);
                cr_assert(a->t_max <= 1.0 + 1e-9 && a->t_min >= c.t_end - 1e-9,
                          "%s: times %g..%g", sampler_kind_name(c.kind), a->t_min, a->t_max);
                analytic_free(a);
            }
}

Test(sampler, one_image_alone_equals_its_copy_in_a_batch_bitwise)
{
    SamplerConfig cs[4] = { config(SAMPLER_EM, SCHEDULE_VPSDE, 30, 5),
                            config(SAMPLER_DPM, SCHEDULE_VPSDE, 10, 5),
                            config(SAMPLER_DPMPP, SCHEDULE_DISCRETE, 10, 5),
                            config(SAMPLER_DDIM, SCHEDULE_VPSDE, 10, 5) };
    cs[3].eta = 0.5;
    for (int k = 0; k < 4; k++) {
        Analytic *a = analytic_new(cs[k].schedule, 4);
        float *batch = run(&a->base, &cs[k], 4, 10);    /* ids 10, 11, 12, 13 */
        float *alone = run(&a->base, &cs[k], 1, 12);    /* id 12 */
        cr_assert(memcmp(batch + 2 * C_ * HW_, alone, C_ * HW_ * sizeof(float)) == 0,
                  "%s: image 12 differs alone", sampler_kind_name(cs[k].kind));
        free(batch);
        free(alone);
        analytic_free(a);
    }
}

Test(sampler, the_seed_decides_everything)
{
    Analytic *a = analytic_new(SCHEDULE_VPSDE, 2);
    SamplerConfig c = config(SAMPLER_EM, SCHEDULE_VPSDE, 20, 77);
    float *x1 = run(&a->base, &c, 2, 0), *x2 = run(&a->base, &c, 2, 0);
    cr_assert(memcmp(x1, x2, 2 * C_ * HW_ * sizeof(float)) == 0, "same seed, different samples");
    c.seed = 78;
    float *x3 = run(&a->base, &c, 2, 0);
    cr_assert(memcmp(x1, x3, 2 * C_ * HW_ * sizeof(float)) != 0, "seed ignored");
    free(x1); free(x2); free(x3);
    analytic_free(a);
}

Test(sampler, bad_settings_are_reported)
{
    SamplerConfig c = config(SAMPLER_EM, SCHEDULE_DISCRETE, 10, 0);
    cr_assert(sampler_config_check(&c) == -1 && strstr(err_msg(), "schedule"));
    c = config(SAMPLER_DPM, SCHEDULE_VPSDE, 0, 0);
    cr_assert(sampler_config_check(&c) == -1 && strstr(err_msg(), "steps"));
    c = config(SAMPLER_DPM, SCHEDULE_VPSDE, 10, 0);
    c.eta = 0.5;
    cr_assert(sampler_config_check(&c) == -1 && strstr(err_msg(), "eta"));
    c = config(SAMPLER_DDIM, SCHEDULE_VPSDE, 10, 0);
    c.t_end = 1.0;
    cr_assert(sampler_config_check(&c) == -1 && strstr(err_msg(), "t_end"));
    SamplerKind k;
    ScheduleKind s;
    cr_assert(sampler_kind_from_name("dpm++", &k) == 0 && k == SAMPLER_DPMPP);
    cr_assert(sampler_kind_from_name("heun", &k) == -1 && strstr(err_msg(), "kind"));
    cr_assert(schedule_kind_from_name("discrete", &s) == 0 && s == SCHEDULE_DISCRETE);
    /* a batch larger than the predictor takes */
    Analytic *a = analytic_new(SCHEDULE_VPSDE, 1);
    c = config(SAMPLER_DDIM, SCHEDULE_VPSDE, 2, 0);
    float *x = calloc(2 * C_ * HW_, sizeof(float));
    int64_t ids[2] = { 0, 1 };
    cr_assert(sample_batch(&ctx, &a->base, &c, tensor4(x, DT_F32, 2, C_, 32, 32), cond_none(), ids) == -1);
    cr_assert(strstr(err_msg(), "batch"));
    free(x);
    analytic_free(a);
}

Test(sampler, schedule_lambda_inverts_on_both_schedules)
{
    SamplerSchedule *s = malloc(sizeof *s);
    for (int kind = 0; kind < 2; kind++) {
        sampler_schedule_init(s, (ScheduleKind)kind);
        for (double t = 1e-3; t <= 1.0; t += 0.0371) {
            double back = sampler_inverse_lambda(s, sampler_lambda(s, t));
            cr_assert(fabs(back - t) < 1e-9, "%s: t %g -> %g", schedule_kind_name(kind), t, back);
            double a = sampler_alpha(s, t), g = sampler_sigma(s, t);
            cr_assert(fabs(a * a + g * g - 1) < 1e-12);
        }
    }
    /* vpsde: alpha^2 is cum_alpha; discrete: alpha^2 at n / N is cum_alphas[n] */
    sampler_schedule_init(s, SCHEDULE_VPSDE);
    VPSDE sde = vpsde_default();
    cr_assert(fabs(pow(sampler_alpha(s, 0.3), 2) - vpsde_cum_alpha(&sde, 0.3)) < 1e-14);
    sampler_schedule_init(s, SCHEDULE_DISCRETE);
    cr_assert(fabs(pow(sampler_alpha(s, 0.25), 2) - s->disc.cum_alphas[250]) < 1e-12);
    cr_assert(sampler_network_time(SCHEDULE_VPSDE, 0.5) == 499.5);
    cr_assert(sampler_network_time(SCHEDULE_DISCRETE, 0.5) == 500.0);
    free(s);
}

/* ---- classifier-free guidance ----------------------------------------------------------- */

/* eps[i, j] = 10 y[i] + x[i, j]; records whether uncond rows carried the id bit */
typedef struct {
    NoisePredictor base;
    int calls, bad_ids;
} LabelEcho;

static int echo_predict(NoisePredictor *self, Ctx *c, Tensor x, const double *t, Conditioning cond,
                        const int64_t *ids, int eval, Tensor eps)
{
    LabelEcho *e = self->state;
    e->calls++;
    int64_t B = x.shape[0], n = tensor_numel(x) / B;
    const int64_t *lab = cond.y.data;
    if (cond.exit_partner || tensor_present(cond.context)) e->bad_ids = 1;
    for (int64_t i = 0; i < B; i++) {
        int uncond = (ids[i] & CFG_UNCOND_ID_BIT) != 0;
        if (uncond != (lab[i] == 9)) e->bad_ids = 1;
        for (int64_t j = 0; j < n; j++)
            tensor_f32(eps)[i * n + j] = 10.0f * lab[i] + tensor_f32(x)[i * n + j];
    }
    (void)c; (void)t; (void)eval;
    return 0;
}

Test(sampler, guidance_is_cond_plus_scale_times_cond_minus_uncond)
{
    for (int inner_max = 8; inner_max >= 4; inner_max -= 4) {   /* one call of 2B, two of B */
        LabelEcho e = { .base = { .predict = echo_predict, .max_batch = inner_max } };
        e.base.state = &e;
        CfgPredictor g;
        CfgSettings s = {.scale = 0.4, .null_class = 9};
        cr_assert(cfg_predictor_init(&g, &ctx, &e.base, &s, 1, 2, 3) == 0);
        float x[4 * 6], eps[4 * 6];
        int64_t y[4] = { 0, 3, 8, 1 }, ids[4] = { 5, 6, 7, 8 };
        double t[4] = { 0.5, 0.5, 0.5, 0.5 };
        for (int i = 0; i < 24; i++) x[i] = 0.25f * i;
        int rc = g.base.predict(&g.base, &ctx, tensor4(x, DT_F32, 4, 1, 2, 3), t,
                                cond_labels(tensor1(y, DT_I64, 4)), ids, 0, tensor4(eps, DT_F32, 4, 1, 2, 3));
        cr_assert(rc == 0);
        cr_assert(e.calls == (inner_max == 8 ? 1 : 2), "inner max %d: %d calls", inner_max, e.calls);
        cr_assert(!e.bad_ids, "unconditional rows must carry CFG_UNCOND_ID_BIT and the null class");
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 6; j++) {
                double cond = 10.0 * y[i] + x[i * 6 + j], unc = 90.0 + x[i * 6 + j];
                double want = cond + 0.4 * (cond - unc);
                cr_assert(fabs(eps[i * 6 + j] - want) < 1e-4, "[%d,%d]: %g vs %g", i, j,
                          eps[i * 6 + j], want);
            }
        cr_assert(g.base.predict(&g.base, &ctx, tensor4(x, DT_F32, 4, 1, 2, 3), t, cond_none(),
                                 ids, 0, tensor4(eps, DT_F32, 4, 1, 2, 3)) == -1);
        cfg_predictor_destroy(&g, &ctx);
    }
}

/* eps[i, j] = 100 context[i, 0, 0] + x[i, j]; records the rows' pairing */
typedef struct {
    NoisePredictor base;
    int calls, bad;
    int64_t rows;             /* of the last call */
    int partner[16], paired;  /* the last call's cond.exit_partner */
} ContextEcho;

static int context_echo_predict(NoisePredictor *self, Ctx *c, Tensor x, const double *t, Conditioning cond,
                                const int64_t *ids, int eval, Tensor eps)
{
    ContextEcho *e = self->state;
    e->calls++;
    int64_t B = x.shape[0], n = tensor_numel(x) / B;
    e->rows = B;
    if (tensor_present(cond.y) || cond.context.ndim != 3 || cond.context.shape[0] != B) e->bad = 1;
    int64_t per = cond.context.shape[1] * cond.context.shape[2];   // context is (B, L, Dc)
    e->paired = cond.exit_partner != NULL;
    for (int64_t i = 0; i < B; i++) {
        const float *k = tensor_f32(cond.context) + i * per;
        int uncond = (ids[i] & CFG_UNCOND_ID_BIT) != 0;
        if (uncond != (k[0] == -7.0f)) e->bad = 1;   /* the empty context starts with -7 */
        if (cond.exit_partner) e->partner[i] = cond.exit_partner[i];
        for (int64_t j = 0; j < n; j++) tensor_f32(eps)[i * n + j] = 100.0f * k[0] + tensor_f32(x)[i * n + j];
    }
    (void)c; (void)t; (void)eval;
    return 0;
}

/* text-to-image guidance: the unconditional pass takes the empty context;
   paired exits send each image's two passes in one call and pair them */
Test(sampler, guidance_with_the_empty_context_and_paired_exits)
{
    enum { L = 3, DC = 2 };
    float empty[L * DC], context[4 * L * DC], x[4 * 6], eps[4 * 6];
    for (int i = 0; i < L * DC; i++) empty[i] = -7.0f + i;
    for (int i = 0; i < 4 * L * DC; i++) context[i] = 0.01f * (i + 1);
    for (int i = 0; i < 24; i++) x[i] = 0.25f * i;
    int64_t ids[4] = {5, 6, 7, 8};
    double t[4] = {0.5, 0.5, 0.5, 0.5};
    Conditioning cond = cond_context(tensor3(context, DT_F32, 4, L, DC));
    struct { int inner_max; CfgExit exit; int calls, per_call; } cases[] = {
        {8, CFG_EXIT_INDEPENDENT, 1, 8}, {4, CFG_EXIT_INDEPENDENT, 2, 4}, {8, CFG_EXIT_PAIRED, 1, 8},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ContextEcho e = {.base = {.predict = context_echo_predict, .max_batch = cases[c].inner_max}};
        e.base.state = &e;
        CfgPredictor g;
        CfgSettings s = {.scale = 1.0, .exit = cases[c].exit, .null_class = -1, .empty_context = empty,
                         .context_len = L, .context_dim = DC};
        cr_assert(cfg_predictor_init(&g, &ctx, &e.base, &s, 1, 2, 3) == 0, "%s", err_msg());
        cr_assert_eq(g.base.max_batch, cases[c].exit == CFG_EXIT_PAIRED ? cases[c].inner_max / 2 : cases[c].inner_max);
        cr_assert(g.base.predict(&g.base, &ctx, tensor4(x, DT_F32, 4, 1, 2, 3), t, cond, ids, 0,
                                 tensor4(eps, DT_F32, 4, 1, 2, 3)) == 0, "%s", err_msg());
        cr_assert(!e.bad, "case %zu: unconditional rows must carry the id bit and the empty context", c);
        cr_assert_eq(e.calls, cases[c].calls);
        cr_assert_eq(e.rows, cases[c].per_call);
        cr_assert_eq(e.paired, cases[c].exit == CFG_EXIT_PAIRED, "case %zu: pairing handed over %d", c, e.paired);
        for (int i = 0; e.paired && i < 4; i++)
            cr_assert(e.partner[i] == 4 + i && e.partner[4 + i] == i, "row %d's partner %d", i, e.partner[i]);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 6; j++) {
                double cnd = 100.0 * context[i * L * DC] + x[i * 6 + j], unc = -700.0 + x[i * 6 + j];
                double want = cnd + 1.0 * (cnd - unc);
                cr_assert(fabs(eps[i * 6 + j] - want) < 1e-3, "[%d,%d]: %g vs %g", i, j, eps[i * 6 + j], want);
            }
        /* no contexts given to guidance that needs them */
        cr_assert(g.base.predict(&g.base, &ctx, tensor4(x, DT_F32, 4, 1, 2, 3), t, cond_none(), ids, 0,
                                 tensor4(eps, DT_F32, 4, 1, 2, 3)) == -1);
        cr_assert(strstr(err_msg(), "context"), "%s", err_msg());
        cfg_predictor_destroy(&g, &ctx);
    }
    /* paired exits need two rows per inner call */
    ContextEcho e = {.base = {.predict = context_echo_predict, .max_batch = 1}};
    CfgPredictor g;
    CfgSettings s = {.scale = 1.0, .exit = CFG_EXIT_PAIRED, .null_class = 3};
    cr_assert(cfg_predictor_init(&g, &ctx, &e.base, &s, 1, 2, 3) == -1);
    cr_assert(strstr(err_msg(), "--cfg-exit"), "%s", err_msg());
    CfgExit ex;
    cr_assert(cfg_exit_from_name("paired", &ex) == 0 && ex == CFG_EXIT_PAIRED);
    cr_assert(cfg_exit_from_name("independent", &ex) == 0 && ex == CFG_EXIT_INDEPENDENT);
    cr_assert(cfg_exit_from_name("both", &ex) == -1 && strstr(err_msg(), "independent or paired"));
}

/* ---- a small U-ViT end to end ------------------------------------------------------------- */

static void uvit_tiny(UViT *m, int num_classes)
{
    char json[256];
    snprintf(json, sizeof json,
             "{\"img_size\":8,\"patch_size\":2,\"in_chans\":3,\"embed_dim\":32,\"depth\":4,"
             "\"num_heads\":2,\"num_classes\":%d}", num_classes);
    tiny_uvit_create(m, &ctx, json, 9);
}

static int all_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

Test(sampler, tiny_uvit_samples_end_to_end)
{
    UViT m;
    uvit_tiny(&m, -1);
    UViTDenoiser d;
    uvit_denoiser_init(&d, &ctx, &m, 3, SCHEDULE_VPSDE);
    int64_t ids[5] = { 0, 1, 2, 3, 4 };
    float out[5 * 3 * 64], again[5 * 3 * 64];
    SamplerConfig cs[3] = { config(SAMPLER_EM, SCHEDULE_VPSDE, 8, 1),
                            config(SAMPLER_DPM, SCHEDULE_VPSDE, 8, 1),
                            config(SAMPLER_DDIM, SCHEDULE_VPSDE, 8, 1) };
    for (int k = 0; k < 3; k++) {
        /* 5 images through an arena of 3: two batches */
        cr_assert(sample_run(&ctx, &d.base, &cs[k], 3, 8, 8, 5, ids, NULL, out) == 0, "%s", err_msg());
        cr_assert(all_finite(out, 5 * 3 * 64), "%s: not finite", sampler_kind_name(cs[k].kind));
        cr_assert(sample_run(&ctx, &d.base, &cs[k], 3, 8, 8, 5, ids, NULL, again) == 0);
        cr_assert(memcmp(out, again, sizeof out) == 0, "%s: not deterministic",
                  sampler_kind_name(cs[k].kind));
    }
    /* labels given to an unconditional network */
    int64_t labels[5] = { 0 };
    cr_assert(sample_run(&ctx, &d.base, &cs[0], 3, 8, 8, 5, ids, labels, out) == -1);
    cr_assert(strstr(err_msg(), "y"));
    uvit_denoiser_destroy(&d, &ctx);
    uvit_destroy(&m, &ctx);
}

Test(sampler, tiny_conditional_uvit_with_guidance_on_the_discrete_schedule)
{
    UViT m;
    uvit_tiny(&m, 11);   /* 10 classes + the null class 10 */
    UViTDenoiser d;
    uvit_denoiser_init(&d, &ctx, &m, 4, SCHEDULE_DISCRETE);
    CfgPredictor g;
    CfgSettings s = {.scale = 0.4, .null_class = uvit_null_class(&m.cfg)};
    cr_assert(cfg_predictor_init(&g, &ctx, &d.base, &s, 3, 8, 8) == 0);
    cr_assert(g.s.null_class == 10);
    int64_t ids[3] = { 4, 5, 6 }, labels[3];
    sample_labels(2, ids, 3, 10, labels);
    for (int i = 0; i < 3; i++) cr_assert(labels[i] >= 0 && labels[i] < 10);
    float out[3 * 3 * 64];
    SamplerConfig c = config(SAMPLER_DPMPP, SCHEDULE_DISCRETE, 6, 3);
    /* one batch of 3 in an arena of 4: 2B = 6 does not fit, cond and uncond go as two calls */
    cr_assert(sample_run(&ctx, &g.base, &c, 3, 8, 8, 3, ids, labels, out) == 0, "%s", err_msg());
    cr_assert(all_finite(out, 3 * 3 * 64));
    cfg_predictor_destroy(&g, &ctx);
    uvit_denoiser_destroy(&d, &ctx);
    uvit_destroy(&m, &ctx);
}
