/*
 * vpsde.h: the noise schedules U-ViT trains and samples with.
 *
 * Continuous (baofff/U-ViT sde.py, class VPSDE, t in [0, 1]):
 *   beta(t)      = beta_min + t (beta_max - beta_min)          (squared diffusion)
 *   int_0^t beta = beta_min t + (beta_max - beta_min) t^2 / 2  (= 0.1 t + 9.95 t^2)
 *   cum_alpha(t) = exp(-int_0^t beta)     E[x_t | x_0] = sqrt(cum_alpha) x_0
 *   cum_beta(t)  = 1 - cum_alpha(t)       Cov[x_t | x_0] = cum_beta I
 *   nsr(t)       = expm1(int_0^t beta)    = cum_beta / cum_alpha, snr = 1 / nsr
 * The network sees t * 999 (ScoreModel.predict).
 *
 * Discrete (U-ViT train_t2i_discrete.py, class Schedule; COCO and U-ViT-H):
 *   _betas = linspace(0.00085^0.5, 0.012^0.5, 1000)^2 in float64,
 *   betas[0] = 0, betas[n] = _betas[n-1] for n = 1..N; alphas = 1 - betas,
 *   cum_alphas[n] = prod_{k<=n} alphas[k] (cum_alphas[0] = 1),
 *   cum_betas[n] = sum_{k<=n} betas[k] prod_{k<j<=n} alphas[j] (get_skip),
 *   which equals 1 - cum_alphas[n] but without cancellation at small n.
 * Training draws n uniformly from {1..N} and the network sees n itself.
 *
 * Everything here is double precision host arithmetic on scalars; the
 * training loss on tensors is model/vpsde_train.h.
 */
#ifndef DEEDIFF_VPSDE_H
#define DEEDIFF_VPSDE_H

#define VPSDE_BETA_MIN 0.1
#define VPSDE_BETA_MAX 20.0
/* the network's time input is t * VPSDE_T_SCALE for continuous t */
#define VPSDE_T_SCALE 999.0

typedef struct {
    double beta_min, beta_max;
} VPSDE;

/* U-ViT's defaults: beta_min 0.1, beta_max 20 */
VPSDE vpsde_default(void);

double vpsde_beta(const VPSDE *sde, double t);               /* beta(t) = g(t)^2 */
double vpsde_beta_integral(const VPSDE *sde, double s, double t); /* int_s^t beta */
double vpsde_cum_alpha(const VPSDE *sde, double t);          /* exp(-int_0^t beta) */
double vpsde_cum_beta(const VPSDE *sde, double t);           /* 1 - cum_alpha */
/* alpha_{t|s} = exp(-int_s^t beta) and beta_{t|s} = 1 - alpha_{t|s}, s <= t */
double vpsde_skip_alpha(const VPSDE *sde, double s, double t);
double vpsde_skip_beta(const VPSDE *sde, double s, double t);
double vpsde_nsr(const VPSDE *sde, double t);                /* expm1(int_0^t beta) */
double vpsde_snr(const VPSDE *sde, double t);                /* 1 / nsr */
double vpsde_marginal_mean_coef(const VPSDE *sde, double t); /* sqrt(cum_alpha) */
double vpsde_marginal_std(const VPSDE *sde, double t);       /* sqrt(cum_beta) */

/* ---- discrete schedule --------------------------------------------------- */

#define DISCRETE_MAX_STEPS 1000
#define DISCRETE_SD_LINEAR_START 0.00085
#define DISCRETE_SD_LINEAR_END 0.012

typedef struct {
    int N;                                     /* number of steps, n = 1..N */
    double betas[DISCRETE_MAX_STEPS + 1];      /* betas[0] = 0 */
    double alphas[DISCRETE_MAX_STEPS + 1];     /* 1 - betas */
    double cum_alphas[DISCRETE_MAX_STEPS + 1]; /* cum_alphas[0] = 1 */
    double cum_betas[DISCRETE_MAX_STEPS + 1];  /* = 1 - cum_alphas, cum_betas[0] = 0 */
} DiscreteSchedule;

/* betas = linspace(start^0.5, end^0.5, n)^2 (Stable Diffusion's "scaled
   linear"), 1 <= n <= DISCRETE_MAX_STEPS */
void discrete_schedule_init(DiscreteSchedule *s, double linear_start,
                            double linear_end, int n);
/* U-ViT's: start 0.00085, end 0.012, 1000 steps */
void discrete_schedule_sd(DiscreteSchedule *s);

#endif
