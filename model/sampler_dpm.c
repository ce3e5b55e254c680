/*
 * sampler_dpm.c: DPM-Solver-fast (Lu et al. 2022) as U-ViT samples with it,
 * in its two forms:
 *
 *   dpm    noise prediction, dpm_solver_pytorch.py (DPM-Solver v1),
 *          sample(x, steps, eps=t_end, adaptive_step_size=False,
 *          fast_version=True): K = steps / 3 + 1 steps on K + 1 times
 *          uniform in lambda (logSNR) from T = 1 to t_end; singlestep
 *          DPM-Solver-3 with r1 = 1/3, r2 = 2/3, then one DPM-Solver-2
 *          (r1 = 1/2) and/or DPM-Solver-1 so the evaluations add up to steps:
 *            steps % 3 == 0: orders 3 x (K-2), 2, 1
 *            steps % 3 == 1: orders 3 x (K-1), 1
 *            steps % 3 == 2: orders 3 x (K-1), 2        (50 -> 3 x 16, 2)
 *          This is U-ViT's ImageNet setting (eval_ldm.py: 50 steps, 1e-4).
 *   dpm++  data prediction, dpm_solver_pp.py, sample(x, steps, eps=t_end,
 *          T=1) with its defaults order=3, skip_type='time_uniform',
 *          method='fast', solver_type='dpm_solver': the same orders, but on
 *          steps + 1 times uniform in t, a step of order k spanning k grid
 *          intervals with r1, r2 the lambda fractions of the grid times in
 *          between. U-ViT's discrete-schedule setting (eval_ldm_discrete.py,
 *          eval_t2i_discrete.py: 50 steps, eps = 1/N, no thresholding).
 *
 * One step from s to t of order k, with h = lambda_t - lambda_s, model
 * output m (noise eps, or data x0 = (x - sigma eps) / alpha for dpm++),
 * and H = h (noise) or -h (data), g_u = sigma_u (noise) or alpha_u (data),
 * c_u = alpha_u / alpha_s (noise) or sigma_u / sigma_s (data):
 *   u(r)  = the time with lambda = lambda_s + r h, x_u(r) = c_u x - g_u expm1(r H) m_s
 *   k = 1: x_t = x_u(1)
 *   k = 2: m_1 = m(x_u(r1)); x_t = x_u(1) - (0.5 / r1) g_t expm1(H) (m_1 - m_s)
 *   k = 3: m_1 = m(x_u(r1));
 *          m_2 = m(x_u(r2) - (r2 / r1) g_{u(r2)} (expm1(r2 H) / (r2 H) - 1) (m_1 - m_s));
 *          x_t = x_u(1) - (1 / r2) g_t (expm1(H) / H - 1) (m_2 - m_s)
 * which is, term by term, dpm_solver_{first,second,third}_update of both
 * files (their phi_1, phi_11, phi_12, phi_22, phi_2). No final denoising
 * step: the result is x at t_end, as in both.
 */
#include <math.h>
#include <stdlib.h>

#include "../kernels/errors.h"
#include "sampler_internal.h"

typedef struct {
    SamplerRun *r;
    int data;              /* 1: the model output is x0 (dpm++) */
    Tensor m0, m1, m2, tmp;
} Dpm;

/* out = the model output at (x, t): eps, or x0 = (x - sigma eps) / alpha */
static int model(Dpm *d, Tensor x, double t, Tensor out)
{
    if (sampler_predict(d->r, x, t, out) != 0) return -1;
    if (d->data) {
        double a = sampler_alpha(d->r->sched, t), sig = sampler_sigma(d->r->sched, t);
        sampler_axpby(d->r, out, 1.0 / a, x, -sig / a, out);
    }
    return 0;
}

/* the coefficients of time u in a step from s: x_u = cx x + cm m_s, g_u */
typedef struct { double t, cx, cm, g; } Point;

static Point point_at(const Dpm *d, double s, double u, double r, double H)
{
    const SamplerSchedule *sc = d->r->sched;
    Point p = { .t = u };
    double la_s = sampler_log_alpha(sc, s), la_u = sampler_log_alpha(sc, u);
    if (d->data) {
        p.g = exp(la_u);
        p.cx = sampler_sigma(sc, u) / sampler_sigma(sc, s);
    } else {
        p.g = sampler_sigma(sc, u);
        p.cx = exp(la_u - la_s);
    }
    p.cm = -p.g * expm1(r * H);
    return p;
}

/* x <- the solution at t of one step of `order` from (x, s) */
static int dpm_step(Dpm *d, Tensor x, double s, double t, int order, double r1, double r2)
{
    const SamplerSchedule *sc = d->r->sched;
    SamplerRun *r = d->r;
    double lam_s = sampler_lambda(sc, s), h = sampler_lambda(sc, t) - lam_s;
    double H = d->data ? -h : h;
    Point end = point_at(d, s, t, 1.0, H);
    if (model(d, x, s, d->m0) != 0) return -1;
    if (order == 1) {
        sampler_axpby(r, x, end.cx, x, end.cm, d->m0);
        return 0;
    }
    Point p1 = point_at(d, s, sampler_inverse_lambda(sc, lam_s + r1 * h), r1, H);
    sampler_axpby(r, d->tmp, p1.cx, x, p1.cm, d->m0);
    if (model(d, d->tmp, p1.t, d->m1) != 0) return -1;
    if (order == 2) {
        double c = -(0.5 / r1) * end.g * expm1(H);
        sampler_axpbycz(r, x, end.cx, x, end.cm - c, d->m0, c, d->m1);
        return 0;
    }
    Point p2 = point_at(d, s, sampler_inverse_lambda(sc, lam_s + r2 * h), r2, H);
    double c2 = -(r2 / r1) * p2.g * (expm1(r2 * H) / (r2 * H) - 1.0);
    sampler_axpbycz(r, d->tmp, p2.cx, x, p2.cm - c2, d->m0, c2, d->m1);
    if (model(d, d->tmp, p2.t, d->m2) != 0) return -1;
    double c3 = -(1.0 / r2) * end.g * (expm1(H) / H - 1.0);
    sampler_axpbycz(r, x, end.cx, x, end.cm - c3, d->m0, c3, d->m2);
    return 0;
}

/* DPM-Solver-fast's orders for `steps` evaluations; returns how many */
static int fast_orders(int steps, int *orders)
{
    int K = steps / 3 + 1, n = 0;
    int threes = steps % 3 == 0 ? K - 2 : K - 1;
    for (int i = 0; i < threes; i++) orders[n++] = 3;
    if (steps % 3 == 0) { orders[n++] = 2; orders[n++] = 1; }
    else orders[n++] = steps % 3;
    return n;
}

int sample_dpm(Ctx *ctx, NoisePredictor *p, const SamplerConfig *cfg, Tensor x, Conditioning cond,
               const int64_t *ids)
{
    SamplerRun r;
    if (sampler_run_begin(&r, ctx, p, cfg, x, cond, ids, 4) != 0) return -1;
    if (cfg->kind != SAMPLER_DPM && cfg->kind != SAMPLER_DPMPP) {
        sampler_run_end(&r);
        return err_set("sampler: kind: not dpm or dpm++");
    }
    const SamplerSchedule *sc = r.sched;
    Dpm d = { .r = &r, .data = cfg->kind == SAMPLER_DPMPP,
              .m0 = r.buf[0], .m1 = r.buf[1], .m2 = r.buf[2], .tmp = r.buf[3] };
    int steps = cfg->steps, rc = 0;
    int *orders = malloc((size_t)(steps + 2) * sizeof *orders);
    double *ts = malloc((size_t)(steps + 2) * sizeof *ts);
    CHECK(orders && ts, "sample_dpm: out of host memory");
    int K = fast_orders(steps, orders);

    if (!d.data) {
        /* K + 1 times uniform in lambda; r1, r2 fixed */
        double lam_T = sampler_lambda(sc, 1.0), lam_0 = sampler_lambda(sc, cfg->t_end);
        for (int i = 0; i <= K; i++)
            ts[i] = sampler_inverse_lambda(sc, sampler_linspace_at(lam_T, lam_0, K + 1, i));
        for (int i = 0; i < K && rc == 0; i++)
            rc = dpm_step(&d, x, ts[i], ts[i + 1], orders[i], orders[i] == 2 ? 0.5 : 1.0 / 3.0,
                          2.0 / 3.0);
    } else {
        /* steps + 1 times uniform in t; a step of order k spans k intervals */
        for (int i = 0; i <= steps; i++)
            ts[i] = sampler_linspace_at(1.0, cfg->t_end, steps + 1, i);
        for (int k = 0, i = 0; k < K && rc == 0; i += orders[k], k++) {
            int o = orders[k];
            double lam_s = sampler_lambda(sc, ts[i]), h = sampler_lambda(sc, ts[i + o]) - lam_s;
            double r1 = o >= 2 ? (sampler_lambda(sc, ts[i + 1]) - lam_s) / h : 0.0;
            double r2 = o >= 3 ? (sampler_lambda(sc, ts[i + 2]) - lam_s) / h : 0.0;
            rc = dpm_step(&d, x, ts[i], ts[i + o], o, r1, r2);
        }
    }
    free(orders);
    free(ts);
    sampler_run_end(&r);
    return rc;
}
