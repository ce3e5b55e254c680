/*
 * sampler_internal.h: what the sampler files share (internal to model/sampler_*.c).
 *
 * A SamplerRun carries one batch through a sampler: it numbers the network
 * evaluations, holds the per-image host arrays the ops take (every image of
 * a batch is at the same time here, but the ops and the predictor accept
 * per-image values) and allocates the sampler's state buffers once per run,
 * never inside a step.
 */
#ifndef DEEDIFF_SAMPLER_INTERNAL_H
#define DEEDIFF_SAMPLER_INTERNAL_H

#include "sampler.h"

#define SAMPLER_MAX_BUFFERS 4

typedef struct {
    Ctx *ctx;
    NoisePredictor *pred;
    const SamplerConfig *cfg;
    SamplerSchedule *sched;   /* heap: it holds the discrete tables */
    Conditioning cond;        /* the batch's labels and/or contexts (model/cond.h) */
    const int64_t *ids;       /* [B] host */
    int B;
    int eval;                 /* evaluations so far */
    double *t;                /* [B] host: times handed to the predictor */
    float *ca, *cb;           /* [B] host: op coefficients */
    Tensor buf[SAMPLER_MAX_BUFFERS];  /* [B,C,H,W] state buffers */
    int nbuf;
} SamplerRun;

/* checks cfg and the batch, builds the schedule, allocates nbuf buffers shaped
   like x; -1 with err_set on bad settings */
int sampler_run_begin(SamplerRun *r, Ctx *ctx, NoisePredictor *p, const SamplerConfig *cfg,
                      Tensor x, Conditioning cond, const int64_t *ids, int nbuf);
void sampler_run_end(SamplerRun *r);
/* eps[B,...] = the predictor's noise for x at time t (every image); counts
   the evaluation */
int sampler_predict(SamplerRun *r, Tensor x, double t, Tensor eps);
/* out = a x + b y, the same a and b for every image */
void sampler_axpby(SamplerRun *r, Tensor out, double a, Tensor x, double b, Tensor y);
/* out = a x + b y + c w (out must not alias w) */
void sampler_axpbycz(SamplerRun *r, Tensor out, double a, Tensor x, double b, Tensor y,
                     double c, Tensor w);
/* x += c z, z the step's Philox normals of each image */
void sampler_add_noise(SamplerRun *r, Tensor x, double c, uint32_t step);
/* numpy.linspace(start, stop, num)[i] in float64 (torch.linspace's grid as
   DPM-Solver and sde.py build it): the last point is exactly stop */
double sampler_linspace_at(double start, double stop, int num, int i);

#endif
