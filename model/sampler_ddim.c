/*
 * sampler_ddim.c: DDIM (Song, Meng, Ermon 2021, eq. 12 with the sigma of
 * eq. 16) on either schedule, in continuous time.
 *
 * Grid: linspace(1, t_end, steps + 1) (DPM-Solver's 'time_uniform'); on the
 * discrete schedule the times between knots read the piecewise-linear
 * log alpha, as DPM-Solver++ does there. With alpha, sigma of the schedule
 * (alpha^2 = cum_alpha) and one step from s to t < s:
 *   x0      = (x - sigma_s eps) / alpha_s
 *   sig_eta = eta sqrt(sigma_t^2 / sigma_s^2) sqrt(1 - alpha_s^2 / alpha_t^2)
 *   x       = alpha_t x0 + sqrt(sigma_t^2 - sig_eta^2) eps + sig_eta z
 * eta = 0 is the deterministic DDIM (the same step as DPM-Solver-1); the
 * noise of step k (k = 0 from t = 1) is Philox step k. The result is x at
 * t_end.
 */
#include <math.h>

#include "sampler_internal.h"

int sample_ddim(Ctx *ctx, NoisePredictor *p, const SamplerConfig *cfg, Tensor x, Conditioning cond,
                const int64_t *ids)
{
    SamplerRun r;
    if (sampler_run_begin(&r, ctx, p, cfg, x, cond, ids, 1) != 0) return -1;
    const SamplerSchedule *sc = r.sched;
    Tensor eps = r.buf[0];
    int S = cfg->steps, rc = 0;
    for (int k = 0; k < S && rc == 0; k++) {
        double s = 1.0 + k * ((cfg->t_end - 1.0) / S);
        double t = k == S - 1 ? cfg->t_end : 1.0 + (k + 1) * ((cfg->t_end - 1.0) / S);
        double a_s = sampler_alpha(sc, s), sig_s = sampler_sigma(sc, s);
        double a_t = sampler_alpha(sc, t), sig_t = sampler_sigma(sc, t);
        double sig_eta = cfg->eta * (sig_t / sig_s) * sqrt(fmax(0.0, 1.0 - (a_s * a_s) / (a_t * a_t)));
        double dir = sqrt(fmax(0.0, sig_t * sig_t - sig_eta * sig_eta));
        rc = sampler_predict(&r, x, s, eps);  // eps is (B,C,H,W)
        if (rc != 0) break;
        sampler_axpby(&r, x, a_t / a_s, x, dir - a_t * sig_s / a_s, eps);
        if (sig_eta > 0.0) sampler_add_noise(&r, x, sig_eta, (uint32_t)k);
    }
    sampler_run_end(&r);
    return rc;
}
