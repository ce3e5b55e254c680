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
 * cfg_nnet (eval.py, eval_ldm.py, eval_t2i_discrete.py):
 *   eps = eps_cond + scale * (eps_cond - eps_uncond) = (1 + scale) eps_cond - scale eps_uncond
 * where eps_uncond is the prediction without the condition: for a
 * class-conditional network the null class (U-ViT: dataset.K, i.e.
 * num_classes - 1 of a network built with one extra class), for a
 * text-to-image network the empty prompt's context (U-ViT: empty_context.npy,
 * the CLIP features of "" from scripts/extract_empty_feature.py, repeated
 * for every image). U-ViT's MS-COCO config samples with scale 1.
 * Cond and uncond go to the inner predictor as one batch of 2B, rows
 * [cond 0..B-1; uncond 0..B-1], when 2B fits its max_batch, otherwise as
 * two calls of B. The unconditional copy of image `id` is passed as
 * id | CFG_UNCOND_ID_BIT, so a method keeping per-image state keeps the two
 * apart; both carry the same `eval`.
 *
 * Early exits under guidance (CfgExit): the two passes of an image are two
 * rows of an early-exit predictor, and each may leave at its own block.
 *   independent  (the default) each pass leaves at its own first exit; the
 *                guided eps mixes two predictions from different depths
 *   paired       both passes of an image leave at the same block: the later
 *                of their two decisions (a pass whose score fell below the
 *                threshold waits for its partner's; the pair then takes the
 *                heads of that block). The predictor always makes one call
 *                of 2B (base.max_batch is half the inner's) and hands the
 *                pairs over in cond.exit_partner (model/cond.h).
 * A predictor that exits no rows gives the same bits either way.
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
   configuration's shape, labels exactly when class-conditional, contexts
   [B, num_clip_token, clip_dim] F32 exactly when text-to-image; -1 +
   err_set ("<who>: x: ...", "<who>: context: ...") */
int uvit_predict_check(const UViTConfig *c, Tensor x, Conditioning cond, int max_batch, const char *who);

/* the network's time input [B] for sampler times t[B]: written to host[B],
   uploaded to dev[B] (backend), returned as a view of dev */
Tensor uvit_network_times(Ctx *ctx, ScheduleKind schedule, const double *t, int B, float *host, float *dev);

void uvit_denoiser_init(UViTDenoiser *d, Ctx *ctx, const UViT *m, int max_batch,
                        ScheduleKind schedule);
void uvit_denoiser_destroy(UViTDenoiser *d, Ctx *ctx);

/* ---- classifier-free guidance ------------------------------------------------------ */

#define CFG_UNCOND_ID_BIT ((int64_t)1 << 62)

typedef enum { CFG_EXIT_INDEPENDENT = 0, CFG_EXIT_PAIRED } CfgExit;

/* "independent", "paired"; the parser returns -1 + err_set("cfg-exit: ...") */
const char *cfg_exit_name(CfgExit e);
int cfg_exit_from_name(const char *name, CfgExit *out);

/* what guidance needs to know; exactly one way to drop the condition:
   null_class >= 0 (class-conditional) or empty_context (text-to-image) */
typedef struct {
    double scale;
    CfgExit exit;
    int64_t null_class;          /* the label of "no class"; -1 when the network takes none */
    const float *empty_context;  /* host [context_len, context_dim] (copied at init), or NULL */
    int context_len, context_dim;
} CfgSettings;

typedef struct {
    NoisePredictor base;   /* base.max_batch = inner->max_batch (paired: half of it) */
    NoisePredictor *inner;
    CfgSettings s;         /* s.empty_context is not kept: see empty */
    int64_t image_numel;   /* C*H*W */
    int64_t context_numel; /* L*Dc, 0 without contexts */
    float *x2, *eps2;      /* backend [inner max_batch, C, H, W] */
    int64_t *y2, *y_null;  /* backend [inner max_batch] I64; y_null all null_class (labels only) */
    float *ctx2;           /* backend [inner max_batch, L, Dc] (contexts only) */
    float *empty;          /* backend [L, Dc]: the empty context (contexts only) */
    int64_t *zeros;        /* backend [inner max_batch] I64 zeros: row 0 of empty for every image */
    double *t2;            /* host [2 x inner max_batch] */
    int64_t *ids2;         /* host [2 x inner max_batch] */
    int *partner2;         /* host [inner max_batch]: cond.exit_partner under paired exits */
    float *coef_a, *coef_b;/* host [inner max_batch] */
} CfgPredictor;

/* -1 + err_set("--cfg-exit: ...") when paired exits cannot fit a pair in
   one inner call (inner max_batch 1); nothing is allocated then */
int cfg_predictor_init(CfgPredictor *c, Ctx *ctx, NoisePredictor *inner, const CfgSettings *s, int C, int H,
                       int W);
void cfg_predictor_destroy(CfgPredictor *c, Ctx *ctx);

/* U-ViT's null class for a class-conditional config: num_classes - 1 */
int64_t uvit_null_class(const UViTConfig *cfg);

#endif
