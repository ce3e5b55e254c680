/*
 * vpsde_train.h: the noise-prediction training objective of U-ViT on a batch
 * (sde.py LSimple with VPSDE.sample; train_t2i_discrete.py LSimple with
 * Schedule.sample), and classifier-free guidance's label dropout.
 *
 * One training step, for a batch x0[B,C,H,W] in backend memory:
 *   train_noise_draw     per image b: a time (continuous t ~ U(0,1), the
 *                        network sees t*999; or discrete n ~ U{1..N}, the
 *                        network sees n), eps ~ N(0, I), and
 *                        x_t = sqrt(cum_alpha) x0 + sqrt(cum_beta) eps
 *   train_noise_labels   (class-conditional) y[b] -> null class with prob p
 *   network              pred = net(x_t, net_t, y)            (the caller's)
 *   train_noise_loss     loss = mean over B*C*H*W of (eps - pred)^2, and
 *                        dL/dpred for the caller's backward
 * train_noise_uvit_loss does the last two steps for a plain U-ViT. A method
 * with extra outputs (DeeDiff's exit heads) calls draw and labels, runs its
 * own forward, and adds its own terms with op_mse_forward/backward against
 * tn->eps.
 *
 * Randomness (kernels/philox.h), step = the training step, image b = the
 * image's position in the batch:
 *   t:    RNG_NOISE_TRAIN_T,  element b: uniform in (0, 1) (never exactly 0 or
 *         1; U-ViT's torch.rand is [0, 1)); discrete: philox_below(N) of call b
 *   eps:  RNG_NOISE_TRAIN_EPS, element b*C*H*W + j
 *   drop: RNG_LABEL_DROP, element b: dropped when uniform < p (U-ViT's
 *         CFGDataset: random.random() < p_uncond)
 * So a batch's noise is a pure function of (seed, step, position).
 */
#ifndef DEEDIFF_VPSDE_TRAIN_H
#define DEEDIFF_VPSDE_TRAIN_H

#include <stdint.h>

#include "../kernels/ops.h"
#include "uvit.h"
#include "vpsde.h"

typedef enum { TRAIN_NOISE_VPSDE = 0, TRAIN_NOISE_DISCRETE = 1 } TrainNoiseKind;

typedef struct {
    TrainNoiseKind kind;
    VPSDE sde;                 /* TRAIN_NOISE_VPSDE */
    DiscreteSchedule disc;     /* TRAIN_NOISE_DISCRETE */
    int max_batch, batch;      /* capacity; images in the last draw */
    int channels, height, width;
    /* host [max_batch], the last draw */
    double *t;                 /* continuous t in (0,1), or discrete n in 1..N */
    float *a, *s;              /* sqrt(cum_alpha), sqrt(cum_beta) of each image */
    float *net_t_host;         /* what the network sees: t*999 or n */
    int64_t *ids;              /* 0..max_batch-1: noise addressed by position */
    int64_t *y_host;           /* labels after dropout */
    /* backend memory */
    float *eps;                /* [max_batch, C, H, W] the noise drawn */
    float *x_t;                /* [max_batch, C, H, W] the network's input */
    float *net_t;              /* [max_batch] */
    int64_t *y;                /* [max_batch] labels after dropout */
    /* text-to-image only (train_noise_enable_context): prompts after dropout */
    int ctx_len, ctx_dim;      /* num_clip_token, clip_dim; 0 = none */
    float *context;            /* backend [max_batch, ctx_len, ctx_dim] */
    float *context_host;       /* host, the same */
    float *pred;               /* [max_batch, C, H, W] for train_noise_uvit_loss */
    float *dpred;              /* [max_batch, C, H, W] dL/dpred of the last loss */
} TrainNoise;

/* buffers for batches of up to max_batch images of [C, H, W] */
void train_noise_create(TrainNoise *tn, Ctx *ctx, TrainNoiseKind kind, int max_batch,
                        int channels, int height, int width);
void train_noise_destroy(TrainNoise *tn, Ctx *ctx);

/* draws t, eps and forms x_t for the batch x0[B,C,H,W] of training step
   `step`; B <= max_batch */
void train_noise_draw(Ctx *ctx, TrainNoise *tn, Tensor x0, uint64_t seed, uint32_t step);

/* the same with every image at one time t: continuous t in (0, 1] (the
   network sees t*999), or discrete n in 1..N; eps as train_noise_draw's of
   (seed, step), so one step number gives the same noise at every t.
   Diff-Pruning's gradient pass (model/uvit_prune.h) walks t this way. */
void train_noise_draw_at(Ctx *ctx, TrainNoise *tn, Tensor x0, double t, uint64_t seed, uint32_t step);

/* copies labels[B] (host) to tn->y, replacing each by null_class with
   probability p_uncond (0 = no dropout), for the batch of the last draw.
   U-ViT: ImageNet 1001 classes, null 1000, p 0.15 (U-ViT-L) / 0.1 (U-ViT-H) */
void train_noise_labels(Ctx *ctx, TrainNoise *tn, const int64_t *labels, double p_uncond,
                        int64_t null_class, uint64_t seed, uint32_t step);

/* text-to-image: room for each image's prompt tokens [len, dim] */
void train_noise_enable_context(TrainNoise *tn, Ctx *ctx, int len, int dim);
/* copies prompts[B, len, dim] (host) to tn->context, replacing each image's
   by empty[len, dim] (the empty prompt's features) with probability
   p_uncond, drawn as train_noise_labels draws (RNG_LABEL_DROP, element b):
   U-ViT's MSCOCODatabase swaps in empty_context when cfg is on. empty may
   be NULL only when p_uncond is 0. For the batch of the last draw. */
void train_noise_context(Ctx *ctx, TrainNoise *tn, const float *prompts, const float *empty, double p_uncond,
                         uint64_t seed, uint32_t step);

/* what the network is conditioned on in the last draw: the prompts when
   contexts are enabled, else the labels when conditional, else nothing */
Conditioning train_noise_cond(const TrainNoise *tn, int conditional);

/* views of the last draw's tensors */
Tensor train_noise_eps(const TrainNoise *tn);    /* [B, C, H, W] */
Tensor train_noise_x_t(const TrainNoise *tn);    /* [B, C, H, W] */
Tensor train_noise_net_t(const TrainNoise *tn);  /* [B] F32 */
Tensor train_noise_y(const TrainNoise *tn);      /* [B] I64 */
Tensor train_noise_dpred(const TrainNoise *tn);  /* [B, C, H, W] */

/* loss = mean (eps - pred)^2 over the batch; tn->dpred = dL/dpred (it is
   zeroed first, then op_mse_backward accumulates). pred[B,C,H,W] */
float train_noise_loss(Ctx *ctx, TrainNoise *tn, Tensor pred);

/* draw (already done by the caller), U-ViT forward on (x_t, net_t,
   train_noise_cond(tn, conditional)), loss and dL/dpred: the caller then runs
   uvit_backward(ctx, m, acts, train_noise_dpred(tn)). acts must be a
   training arena. */
float train_noise_uvit_loss(Ctx *ctx, TrainNoise *tn, const UViT *m, UViTActs *acts,
                            int conditional);

#endif
