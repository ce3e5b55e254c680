/*
 * denoiser.h: noise predictors (model/sampler.h) for the samplers to call.
 *
 * UViTDenoiser: the plain U-ViT. It turns the sampler's continuous time t
 * into what the network was trained with: t * 999 for the continuous VPSDE
 * (U-ViT sde.py ScoreModel.predict), t * N for the discrete schedule
 * (U-ViT eval_ldm_discrete.py model_fn: t_continuous * N), and runs
 * uvit_forward in its own activation arena.
 *
 * CfgPredictor: classifier-free guidance around any predictor, as U-ViT's
 * cfg_nnet (eval.py, eval_ldm.py):
 *   eps = eps_cond + scale * (eps_cond - eps_uncond) = (1 + scale) eps_cond - scale eps_uncond
 * where eps_uncond is the prediction for the null class (U-ViT: dataset.K,
 * i.e. num_classes - 1 of a network built with one extra class). Cond and
 * uncond go to the inner predictor as one batch of 2B when 2B fits its
 * max_batch, otherwise as two calls of B. The unconditional copy of image
 * `id` is passed as id | CFG_UNCOND_ID_BIT, so a method keeping per-image
 * state keeps the two apart; both carry the same `eval`.
 */
#ifndef DEEDIFF_DENOISER_H
#define DEEDIFF_DENOISER_H

#include "sampler.h"
#include "uvit.h"

/* ---- the plain U-ViT ------------------------------------------------------------ */

typedef struct {
    NoisePredictor base;   /* base.state points back here */
    const UViT *m;
    UViTActs *acts;        /* inference arena of base.max_batch images */
    ScheduleKind schedule; /* how t reaches the network */
    float *t_dev;          /* backend [max_batch]: the network's time input */
    float *t_host;         /* host [max_batch] */
} UViTDenoiser;

/* what every U-ViT predictor checks of a call: 1..max_batch images x of the
   configuration's shape, labels exactly when class-conditional; -1 + err_set
   ("<who>: x: ...") */
int uvit_predict_check(const UViTConfig *c, Tensor x, Tensor y, int max_batch, const char *who);

/* the network's time input [B] for sampler times t[B]: written to host[B],
   uploaded to dev[B] (backend), returned as a view of dev */
Tensor uvit_network_times(Ctx *ctx, ScheduleKind schedule, const double *t, int B, float *host, float *dev);

void uvit_denoiser_init(UViTDenoiser *d, Ctx *ctx, const UViT *m, int max_batch,
                        ScheduleKind schedule);
void uvit_denoiser_destroy(UViTDenoiser *d, Ctx *ctx);

/* ---- classifier-free guidance ------------------------------------------------------ */

#define CFG_UNCOND_ID_BIT ((int64_t)1 << 62)

typedef struct {
    NoisePredictor base;   /* base.max_batch = inner->max_batch */
    NoisePredictor *inner;
    double scale;
    int64_t null_class;
    int64_t image_numel;   /* C*H*W */
    float *x2, *eps2;      /* backend [inner max_batch, C, H, W] */
    int64_t *y2, *y_null;  /* backend [inner max_batch] I64; y_null all null_class */
    double *t2;            /* host [inner max_batch] */
    int64_t *ids2;         /* host [inner max_batch] */
    float *coef_a, *coef_b;/* host [inner max_batch] */
} CfgPredictor;

/* null_class: the label the network was trained with for "no class" */
void cfg_predictor_init(CfgPredictor *c, Ctx *ctx, NoisePredictor *inner, double scale,
                        int64_t null_class, int C, int H, int W);
void cfg_predictor_destroy(CfgPredictor *c, Ctx *ctx);

/* U-ViT's null class for a class-conditional config: num_classes - 1 */
int64_t uvit_null_class(const UViTConfig *cfg);

#endif
