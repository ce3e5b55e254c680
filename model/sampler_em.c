/*
 * sampler_em.c: Euler-Maruyama on the reverse VPSDE, U-ViT's
 * sde.euler_maruyama(ReverseSDE(score_model), x_init, N) step for step.
 *
 * Grid: [0, linspace(1e-3, 1, N)] (N + 1 times; t_end replaces 1e-3), made
 * in float64 and cast to float32 as sde.py's torch.tensor(...).to(x_init)
 * does, walked from t = 1 down. Each step from t to s = the previous time:
 *   drift = f(x, t) - g(t)^2 score = -0.5 beta(t) x - beta(t) score,
 *   score = -eps(x, t) / sqrt(cum_beta(t)),   dt = s - t < 0,
 *   mean  = x + drift dt = (1 - 0.5 beta dt) x + (beta dt / sqrt(cum_beta)) eps
 *   x     = mean + sqrt(beta) sqrt(-dt) z,  except on the last step (s = 0),
 *           which returns the mean.
 * One network evaluation per step; the noise of the step walked k-th
 * (k = 0 from t = 1) is Philox step k.
 */
#include <math.h>
#include <stdlib.h>

#include "../kernels/errors.h"
#include "sampler_internal.h"

int sample_em(Ctx *ctx, NoisePredictor *p, const SamplerConfig *cfg, Tensor x, Conditioning cond,
              const int64_t *ids)
{
    SamplerRun r;
    if (sampler_run_begin(&r, ctx, p, cfg, x, cond, ids, 1) != 0) return -1;
    if (cfg->kind != SAMPLER_EM) { sampler_run_end(&r); return err_set("sampler: kind: not em"); }
    const VPSDE *sde = &r.sched->sde;
    Tensor eps = r.buf[0];
    int N = cfg->steps, rc = 0;
    double *ts = malloc((size_t)(N + 1) * sizeof *ts);
    CHECK(ts, "sample_em: out of host memory");
    ts[0] = 0.0;
    for (int i = 0; i < N; i++) ts[i + 1] = (float)sampler_linspace_at(cfg->t_end, 1.0, N, i);

    for (int i = N; i >= 1 && rc == 0; i--) {
        double t = ts[i], s = ts[i - 1], dt = s - t;
        double beta = vpsde_beta(sde, t), cum_beta = vpsde_cum_beta(sde, t);
        rc = sampler_predict(&r, x, t, eps);  // eps is (B,C,H,W)
        if (rc != 0) break;
        sampler_axpby(&r, x, 1.0 - 0.5 * beta * dt, x, beta * dt / sqrt(cum_beta), eps);
        if (s != 0.0) sampler_add_noise(&r, x, sqrt(beta) * sqrt(-dt), (uint32_t)(N - i));
    }
    free(ts);
    sampler_run_end(&r);
    return rc;
}
