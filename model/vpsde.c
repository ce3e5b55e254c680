/*
 * vpsde.c: the continuous VPSDE and the discrete schedule of vpsde.h.
 * Formulas follow U-ViT's sde.py and train_t2i_discrete.py term by term, in
 * double precision.
 */
#include "vpsde.h"

#include <math.h>

#include "../kernels/errors.h"

VPSDE vpsde_default(void)
{
    return (VPSDE){ .beta_min = VPSDE_BETA_MIN, .beta_max = VPSDE_BETA_MAX };
}

double vpsde_beta(const VPSDE *sde, double t)
{
    return sde->beta_min + t * (sde->beta_max - sde->beta_min);
}

double vpsde_beta_integral(const VPSDE *sde, double s, double t)
{
    return sde->beta_min * (t - s) + (sde->beta_max - sde->beta_min) * (t * t - s * s) * 0.5;
}

double vpsde_skip_alpha(const VPSDE *sde, double s, double t)
{
    return exp(-vpsde_beta_integral(sde, s, t));
}

double vpsde_skip_beta(const VPSDE *sde, double s, double t)
{
    return 1.0 - vpsde_skip_alpha(sde, s, t);
}

double vpsde_cum_alpha(const VPSDE *sde, double t) { return vpsde_skip_alpha(sde, 0.0, t); }
double vpsde_cum_beta(const VPSDE *sde, double t) { return vpsde_skip_beta(sde, 0.0, t); }
double vpsde_nsr(const VPSDE *sde, double t) { return expm1(vpsde_beta_integral(sde, 0.0, t)); }
double vpsde_snr(const VPSDE *sde, double t) { return 1.0 / vpsde_nsr(sde, t); }
double vpsde_marginal_mean_coef(const VPSDE *sde, double t) { return sqrt(vpsde_cum_alpha(sde, t)); }
double vpsde_marginal_std(const VPSDE *sde, double t) { return sqrt(vpsde_cum_beta(sde, t)); }

void discrete_schedule_init(DiscreteSchedule *s, double linear_start, double linear_end, int n)
{
    CHECK(n >= 1 && n <= DISCRETE_MAX_STEPS, "discrete schedule: %d steps", n);
    double a = sqrt(linear_start), b = sqrt(linear_end);
    s->N = n;
    s->betas[0] = 0.0;
    s->alphas[0] = 1.0;
    s->cum_alphas[0] = 1.0;
    s->cum_betas[0] = 0.0;
    for (int i = 0; i < n; i++) {
        /* torch.linspace in float64: the first half counts up from start,
           the second half down from end */
        double step = n == 1 ? 0.0 : (b - a) / (double)(n - 1);
        double r = i < n / 2 ? a + step * i : b - step * (double)(n - 1 - i);
        s->betas[i + 1] = r * r;
        s->alphas[i + 1] = 1.0 - s->betas[i + 1];
        s->cum_alphas[i + 1] = s->cum_alphas[i] * s->alphas[i + 1];
        /* U-ViT's get_skip: cum_betas[t] = sum_k betas[k] prod_{j>k} alphas[j],
           i.e. this recurrence; no cancellation against 1 at small t */
        s->cum_betas[i + 1] = s->cum_betas[i] * s->alphas[i + 1] + s->betas[i + 1];
    }
}

void discrete_schedule_sd(DiscreteSchedule *s)
{
    discrete_schedule_init(s, DISCRETE_SD_LINEAR_START, DISCRETE_SD_LINEAR_END,
                           DISCRETE_MAX_STEPS);
}
