/*
 * sampler_schedule.c: the samplers' settings (defaults, checks, names) and
 * the noise schedules in DPM-Solver's continuous-time form (alpha_t,
 * sigma_t, lambda_t and its inverse), built on model/vpsde.h.
 *
 * Formulas follow NoiseScheduleVP in U-ViT's dpm_solver_pytorch.py
 * ('linear') and dpm_solver_pp.py ('discrete'), in double precision;
 * sigma_t = sqrt(-expm1(2 log alpha_t)) is their sqrt(1 - exp(2 log alpha_t))
 * without the cancellation near t = 0.
 */
#include <math.h>
#include <string.h>

#include "../kernels/errors.h"
#include "sampler.h"

/* ---- settings ---------------------------------------------------------------------- */

static const char *const kind_names[] = { "em", "dpm", "dpm++", "ddim" };
static const char *const schedule_names[] = { "vpsde", "discrete" };

const char *sampler_kind_name(SamplerKind k) { return kind_names[k]; }
const char *schedule_kind_name(ScheduleKind k) { return schedule_names[k]; }

int sampler_kind_from_name(const char *name, SamplerKind *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, kind_names[i]) == 0) { *out = (SamplerKind)i; return 0; }
    return err_set("sampler: kind: '%s' is not one of em, dpm, dpm++, ddim", name);
}

int schedule_kind_from_name(const char *name, ScheduleKind *out)
{
    for (int i = 0; i < 2; i++)
        if (strcmp(name, schedule_names[i]) == 0) { *out = (ScheduleKind)i; return 0; }
    return err_set("sampler: schedule: '%s' is not one of vpsde, discrete", name);
}

SamplerConfig sampler_config_default(SamplerKind kind, ScheduleKind schedule)
{
    double t_end_discrete = 1.0 / DISCRETE_MAX_STEPS;
    SamplerConfig c = { .kind = kind, .schedule = schedule, .eta = 0.0, .seed = 0 };
    switch (kind) {
    case SAMPLER_EM:   c.steps = 1000; c.t_end = 1e-3; break;
    case SAMPLER_DPM:
    case SAMPLER_DPMPP:
        c.steps = 50;
        c.t_end = schedule == SCHEDULE_DISCRETE ? t_end_discrete : 1e-4;
        break;
    case SAMPLER_DDIM:
        c.steps = 100;
        c.t_end = schedule == SCHEDULE_DISCRETE ? t_end_discrete : 1e-3;
        break;
    }
    return c;
}

int sampler_config_check(const SamplerConfig *c)
{
    if ((unsigned)c->kind > SAMPLER_DDIM) return err_set("sampler: kind: %d is unknown", (int)c->kind);
    if ((unsigned)c->schedule > SCHEDULE_DISCRETE)
        return err_set("sampler: schedule: %d is unknown", (int)c->schedule);
    if (c->kind == SAMPLER_EM && c->schedule != SCHEDULE_VPSDE)
        return err_set("sampler: schedule: em integrates the continuous VPSDE; use vpsde");
    if (c->steps < 1 || c->steps > 100000)
        return err_set("sampler: steps: %d is outside 1..100000", c->steps);
    if (!(c->t_end > 0.0 && c->t_end < 1.0))
        return err_set("sampler: t_end: %g is outside (0, 1)", c->t_end);
    if (!(c->eta >= 0.0 && c->eta <= 1.0))
        return err_set("sampler: eta: %g is outside [0, 1]", c->eta);
    if (c->eta != 0.0 && c->kind != SAMPLER_DDIM)
        return err_set("sampler: eta: only ddim takes eta");
    return 0;
}

/* every sampler here spends exactly `steps` evaluations (DPM-Solver-fast
   picks its orders so that they add up to steps) */
int sampler_num_evals(const SamplerConfig *c) { return c->steps; }

/* ---- schedules ------------------------------------------------------------------------ */

void sampler_schedule_init(SamplerSchedule *s, ScheduleKind kind)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->sde = vpsde_default();
    if (kind == SCHEDULE_DISCRETE) {
        discrete_schedule_sd(&s->disc);
        for (int n = 1; n <= s->disc.N; n++)
            s->log_alpha_knot[n] = 0.5 * log(s->disc.cum_alphas[n]);
    }
}

double sampler_network_time(ScheduleKind kind, double t)
{
    return kind == SCHEDULE_DISCRETE ? t * DISCRETE_MAX_STEPS : t * VPSDE_T_SCALE;
}

/* log alpha on the knots (n / N, log_alpha_knot[n]): the segment holding t,
   the first or last one beyond the ends (dpm_solver_pp.py interpolate_fn) */
static double knot_log_alpha(const SamplerSchedule *s, double t)
{
    int N = s->disc.N;
    double pos = t * N;
    int k = pos < 1.0 ? 1 : (pos >= N - 1 ? N - 1 : (int)floor(pos));
    const double *y = s->log_alpha_knot;
    return y[k] + (pos - k) * (y[k + 1] - y[k]);
}

/* the time whose log alpha is la: the inverse of knot_log_alpha (log alpha
   falls as n grows) */
static double knot_time(const SamplerSchedule *s, double la)
{
    int N = s->disc.N;
    const double *y = s->log_alpha_knot;
    int k;
    if (la >= y[2]) k = 1;
    else if (la <= y[N - 1]) k = N - 1;
    else {  /* y[lo] > la >= y[hi] */
        int lo = 2, hi = N - 1;
        while (hi - lo > 1) {
            int mid = (lo + hi) / 2;
            if (y[mid] > la) lo = mid; else hi = mid;
        }
        k = lo;
    }
    return (k + (la - y[k]) / (y[k + 1] - y[k])) / N;
}

double sampler_log_alpha(const SamplerSchedule *s, double t)
{
    if (s->kind == SCHEDULE_DISCRETE) return knot_log_alpha(s, t);
    return -0.5 * vpsde_beta_integral(&s->sde, 0.0, t);
}

double sampler_alpha(const SamplerSchedule *s, double t) { return exp(sampler_log_alpha(s, t)); }

double sampler_sigma(const SamplerSchedule *s, double t)
{
    return sqrt(-expm1(2.0 * sampler_log_alpha(s, t)));
}

double sampler_lambda(const SamplerSchedule *s, double t)
{
    double la = sampler_log_alpha(s, t);
    return la - 0.5 * log(-expm1(2.0 * la));
}

/* log(exp(a) + exp(b)) without overflow */
static double logaddexp(double a, double b)
{
    double m = a > b ? a : b;
    return m + log1p(exp(-fabs(a - b)));
}

double sampler_inverse_lambda(const SamplerSchedule *s, double lambda)
{
    if (s->kind == SCHEDULE_DISCRETE)
        return knot_time(s, -0.5 * logaddexp(0.0, -2.0 * lambda));
    /* the root of the quadratic log alpha(t) = -0.5 log(1 + exp(-2 lambda)) */
    double b0 = s->sde.beta_min, db = s->sde.beta_max - s->sde.beta_min;
    double tmp = 2.0 * db * logaddexp(-2.0 * lambda, 0.0);
    double delta = b0 * b0 + tmp;
    return tmp / (sqrt(delta) + b0) / db;
}
