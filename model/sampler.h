/*
 * sampler.h: diffusion samplers that call the network through one function.
 *
 * Every network evaluation of every sampler goes through a NoisePredictor,
 * so a method (early exit, caching across steps, pruning, guidance) wraps
 * the predictor and sees each evaluation with its images' ids and its index
 * in the run: it can keep per-image state from one evaluation to the next.
 *
 * Samplers (each a small plain function over a schedule, model/sampler_*.c):
 *   em     Euler-Maruyama on the reverse VPSDE, exactly U-ViT's
 *          sde.euler_maruyama (CIFAR-10 / CelebA, 1000 steps)
 *   dpm    DPM-Solver-fast (noise prediction), U-ViT's eval_ldm.py setting:
 *          dpm_solver_pytorch.py sample(steps, eps=1e-4,
 *          adaptive_step_size=False, fast_version=True) (ImageNet 256, 50)
 *   dpm++  DPM-Solver++ "fast" (data prediction), U-ViT's
 *          eval_ldm_discrete.py / eval_t2i_discrete.py setting: dpm_solver_pp.py
 *          sample(steps, eps=1/N, T=1) with its defaults order 3,
 *          time_uniform, method 'fast' (U-ViT-H, MS-COCO, 50)
 *   ddim   DDIM (Song et al. 2021, eq. 12) on a uniform time grid; eta = 0
 *          is deterministic, eta > 0 adds the eq. 16 noise
 * Schedules: vpsde (continuous, model/vpsde.h; the network sees t * 999) and
 * discrete (Stable Diffusion's betas, N = 1000, read in continuous time as
 * dpm_solver_pp.py's NoiseScheduleVP('discrete') does: log alpha is
 * piecewise linear between t_n = n / N; the network sees t * N).
 *
 * Noise is counter-based (kernels/philox.h): x_T of image id is stream
 * (seed, RNG_SAMPLE_INIT, 0) elements id*CHW + j, the noise a step adds is
 * (seed, RNG_SAMPLE_STEP, step) elements id*CHW + j. An image's noise is
 * the same whatever batch it is sampled in; its network outputs agree to
 * about 1e-7 relative across batch sizes on the CPU (OpenBLAS may round a
 * GEMM differently for another row count), and bit for bit for the same
 * batch, which is how deediff sample and eval redraw an image.
 *
 * Using it (what `deediff sample` does):
 *   UViTDenoiser den; uvit_denoiser_init(&den, ctx, &model, 64, SCHEDULE_VPSDE);
 *   NoisePredictor *p = &den.base;
 *   CfgPredictor cfg;   // with guidance only (model/denoiser.h)
 *   CfgSettings g = {.scale = scale, .null_class = uvit_null_class(&model.cfg)};
 *   if (scale != 0) { cfg_predictor_init(&cfg, ctx, p, &g, C, H, W); p = &cfg.base; }
 *   SamplerConfig sc = sampler_config_default(SAMPLER_DPM, SCHEDULE_VPSDE);
 *   sc.steps = 50; sc.seed = 1;
 *   sample_run(ctx, p, &sc, C, H, W, n, ids, labels_or_NULL, out_host);
 *   // text-to-image: CfgSettings.empty_context instead of the null class, and
 *   // SampleCond cond = {.context = prompts_host, .context_len = L, .context_dim = Dc};
 *   // sample_run_cond(ctx, p, &sc, C, H, W, n, ids, &cond, out_host);
 */
#ifndef DEEDIFF_SAMPLER_H
#define DEEDIFF_SAMPLER_H

#include <stdint.h>

#include "../kernels/ops.h"
#include "cond.h"
#include "vpsde.h"

/* ---- the network, as the samplers see it ----------------------------------- */

typedef struct NoisePredictor NoisePredictor;
struct NoisePredictor {
    /* One network evaluation: eps_out[B,C,H,W] = the predicted noise of
     * x[B,C,H,W] (backend, F32) at continuous times t[B] in [0, 1] (host),
     * conditioned on cond (model/cond.h: class labels cond.y[B] backend I64,
     * text contexts cond.context[B,L,Dc] backend F32, each tensor_none()
     * when the network takes none; cond.exit_partner pairs the two passes
     * of guidance for early exits), for the images ids[B] (host). `eval`
     * counts the evaluations of this sampling run from 0 (sampler_num_evals
     * gives their number); the times of one evaluation may differ per
     * image. Returns 0, or -1 with err_set. */
    int (*predict)(NoisePredictor *self, Ctx *ctx, Tensor x, const double *t, Conditioning cond,
                   const int64_t *ids, int eval, Tensor eps_out);
    void *state;     /* the implementation's own data */
    int max_batch;   /* the largest B predict accepts */
};

/* ---- configuration ------------------------------------------------------------ */

typedef enum { SAMPLER_EM = 0, SAMPLER_DPM, SAMPLER_DPMPP, SAMPLER_DDIM } SamplerKind;
typedef enum { SCHEDULE_VPSDE = 0, SCHEDULE_DISCRETE } ScheduleKind;

typedef struct {
    SamplerKind kind;
    ScheduleKind schedule;
    int steps;      /* em, ddim: steps (= network evaluations); dpm, dpm++: evaluations */
    double eta;     /* ddim only: 0 deterministic, 1 DDPM-like */
    double t_end;   /* the time sampling stops at; see sampler_config_default */
    uint64_t seed;
} SamplerConfig;

/* U-ViT's settings for a sampler on a schedule: em 1000 steps, t_end 1e-3;
   dpm and dpm++ 50 evaluations, t_end 1e-4 (vpsde) or 1/N (discrete); ddim
   100 steps, eta 0, t_end 1e-3 (vpsde) or 1/N (discrete); seed 0 */
SamplerConfig sampler_config_default(SamplerKind kind, ScheduleKind schedule);
/* -1 with err_set("sampler: <field>: ...") for impossible settings */
int sampler_config_check(const SamplerConfig *cfg);
/* network evaluations (predict calls) per image per run */
int sampler_num_evals(const SamplerConfig *cfg);
/* "em", "dpm", "dpm++", "ddim" / "vpsde", "discrete"; parsers return -1 (err_set) */
const char *sampler_kind_name(SamplerKind k);
const char *schedule_kind_name(ScheduleKind k);
int sampler_kind_from_name(const char *name, SamplerKind *out);
int schedule_kind_from_name(const char *name, ScheduleKind *out);

/* ---- the schedule in continuous time ---------------------------------------------
 * q(x_t | x_0) = N(alpha_t x_0, sigma_t^2 I), lambda_t = log(alpha_t / sigma_t)
 * (DPM-Solver's NoiseScheduleVP). vpsde: log alpha_t = -int_0^t beta / 2;
 * discrete: log alpha linear between knots (n / N, log sqrt(cum_alphas[n])),
 * n = 1..N, extended by the outer segments.                                   */
typedef struct {
    ScheduleKind kind;
    VPSDE sde;
    DiscreteSchedule disc;
    double log_alpha_knot[DISCRETE_MAX_STEPS + 1];  /* discrete: [n] for n = 1..N */
} SamplerSchedule;

void sampler_schedule_init(SamplerSchedule *s, ScheduleKind kind);
double sampler_log_alpha(const SamplerSchedule *s, double t);
double sampler_alpha(const SamplerSchedule *s, double t);
double sampler_sigma(const SamplerSchedule *s, double t);
double sampler_lambda(const SamplerSchedule *s, double t);
double sampler_inverse_lambda(const SamplerSchedule *s, double lambda);
/* what the network is given for time t: t * 999 (vpsde) or t * N (discrete) */
double sampler_network_time(ScheduleKind kind, double t);

/* ---- sampling ------------------------------------------------------------------------
 * x[B,C,H,W] (backend F32) holds x_T on entry and the sample on return;
 * cond: the B images' labels and/or contexts (backend; cond_none() when
 * unconditional), handed to every evaluation; ids[B] host; B <= max_batch. */
int sample_em(Ctx *ctx, NoisePredictor *p, const SamplerConfig *cfg, Tensor x, Conditioning cond,
              const int64_t *ids);
int sample_dpm(Ctx *ctx, NoisePredictor *p, const SamplerConfig *cfg, Tensor x, Conditioning cond,
               const int64_t *ids);   /* dpm and dpm++ */
int sample_ddim(Ctx *ctx, NoisePredictor *p, const SamplerConfig *cfg, Tensor x, Conditioning cond,
                const int64_t *ids);
/* the sampler cfg->kind names */
int sample_batch(Ctx *ctx, NoisePredictor *p, const SamplerConfig *cfg, Tensor x, Conditioning cond,
                 const int64_t *ids);
/* x[B,...] = x_T of images ids under seed */
void sample_init_noise(Ctx *ctx, Tensor x, uint64_t seed, const int64_t *ids);

/* What n generated images are conditioned on, on the host: labels[n] (NULL
 * when the network takes none) and contexts [n, context_len, context_dim]
 * (NULL when it takes none: text-to-image only). */
typedef struct {
    const int64_t *labels;
    const float *context;
    int context_len, context_dim;
} SampleCond;

/* n images ids[n] (host) in batches of p->max_batch: x_T, sampler, download
 * into out[n,C,H,W] (host). sample_run_cond uploads each batch's rows of
 * cond (NULL: unconditional); sample_run is the same with labels[n] alone
 * (NULL when unconditional). Returns 0, or -1 with err_set.                */
int sample_run_cond(Ctx *ctx, NoisePredictor *p, const SamplerConfig *cfg, int C, int H, int W,
                    int64_t n, const int64_t *ids, const SampleCond *cond, float *out);
int sample_run(Ctx *ctx, NoisePredictor *p, const SamplerConfig *cfg, int C, int H, int W,
               int64_t n, const int64_t *ids, const int64_t *labels, float *out);

/* class labels of generated images, uniform over 0..num_classes-1, from
   (seed, RNG_SAMPLE_LABEL, 0, id): labels[i] for ids[i]                   */
void sample_labels(uint64_t seed, const int64_t *ids, int64_t n, int num_classes,
                   int64_t *labels);

#endif
