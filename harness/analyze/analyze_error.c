/*
 * analyze_error.c: figure 6 of `deediff analyze` (analyze_figures.h), the
 * error early exit accumulates along the sampling trajectory.
 *
 * The same images (ids 0..n-1, the same seed, the same batches) are sampled
 * with the method's early-exit predictor at a threshold; a wrapper sees the
 * state x of every evaluation before the predictor does and compares it
 * with the full model's state at that evaluation (analyze_probe.c keeps
 * it): MSE over the n images and every pixel, per evaluation. The samples
 * are compared the same way, and the account gives the layers ratio.
 */
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "analyze_figures.h"

typedef struct {
    NoisePredictor base;
    NoisePredictor *inner;      /* the method's early-exit predictor */
    const AnalyzeSampling *s;
    const ProbeResult *ref;     /* the full model's trajectory */
    ErrorCurve *e;
    float *row;                 /* host [C, H, W] */
} TrajectoryCompare;

static double sum_sq_diff(const float *a, const float *b, int64_t n)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sum;
}

static int compare_predict(NoisePredictor *self, Ctx *ctx, Tensor x, const double *t, Conditioning cond,
                           const int64_t *ids, int eval, Tensor eps_out)
{
    TrajectoryCompare *c = self->state;
    const AnalyzeSampling *s = c->s;
    int64_t B = x.shape[0], chw = c->ref->chw;
    CHECK(eval >= 0 && eval < s->evals, "analyze: evaluation %d of %d", eval, s->evals);
    // x is (B, C, H, W): this run's state; the reference is [evals][n][C,H,W]
    for (int64_t b = 0; b < B; b++) {
        ctx_download(ctx, c->row, (const float *)x.data + b * chw, (size_t)chw * sizeof(float));
        const float *ref = c->ref->traj + ((size_t)eval * s->n + ids[b]) * chw;
        c->e->mse[eval] += sum_sq_diff(c->row, ref, chw) / ((double)s->n * chw);
    }
    return c->inner->predict(c->inner, ctx, x, t, cond, ids, eval, eps_out);
}

int analyze_error_run(Ctx *ctx, const AnalyzeSampling *s, const ProbeResult *ref, double threshold,
                      ErrorCurve *e)
{
    const UViTConfig *cfg = &s->m->cfg;
    int C = cfg->in_chans, H = cfg->img_size;
    int64_t numel = s->n * ref->chw;
    memset(e, 0, sizeof *e);
    e->threshold = threshold;
    e->mse = xcalloc((size_t)s->evals, sizeof *e->mse);
    SampleAccount account = {0};
    TrajectoryCompare c = {.s = s, .ref = ref, .e = e};
    c.inner = method_predictor(s->me, ctx, s->m, s->batch, s->sc->schedule, threshold, &account);
    c.base = (NoisePredictor){.predict = compare_predict, .state = &c, .max_batch = s->batch};
    c.row = xmalloc((size_t)ref->chw * sizeof(float));
    float *samples = xmalloc((size_t)numel * sizeof(float));   // [n, C, H, W]
    int rc = sample_run(ctx, &c.base, s->sc, C, H, H, s->n, s->ids, s->labels, samples);
    if (rc == 0) {
        e->final_mse = sum_sq_diff(samples, ref->final, numel) / (double)numel;
        e->layers_ratio = (double)account.blocks_run / ((double)account.image_evals * cfg->num_blocks);
    }
    free(samples);
    free(c.row);
    method_predictor_free(s->me, ctx, c.inner);
    return rc;
}

void error_curve_free(ErrorCurve *e)
{
    free(e->mse);
    memset(e, 0, sizeof *e);
}

void analyze_error_points(const AnalyzeSampling *s, const ErrorCurve *e, PointList *pl)
{
    const char *curve = points_series(pl, "threshold %g", e->threshold);
    for (int k = 0; k < s->evals; k++) points_add(pl, FIG6, curve, k, e->mse[k]);
    points_add(pl, FIG6, points_series(pl, "final samples"), e->threshold, e->final_mse);
    points_add(pl, FIG6, points_series(pl, "layers ratio"), e->threshold, e->layers_ratio);
}

void analyze_time_points(const AnalyzeSampling *s, const ProbeResult *ref, PointList *pl)
{
    const char *t = points_series(pl, "t");
    for (int k = 0; k < s->evals; k++) points_add(pl, FIG6, t, k, ref->t[k]);
}
