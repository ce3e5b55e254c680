/*
 * optim.h: the training update of U-ViT (baofff/U-ViT train.py, utils.py).
 *
 * After the backward pass, one optimizer step does what U-ViT's train_step
 * does, in the same order:
 *   1. refuse the step when a gradient is NaN or Inf (optim_step returns -1;
 *      the caller stops training: nothing has been modified);
 *   2. clip the gradients to global L2 norm max_grad_norm, as
 *      torch.nn.utils.clip_grad_norm_: coef = max / (norm + 1e-6), applied
 *      when < 1 (U-ViT: only when config.grad_clip > 0, and no paper config
 *      sets it, so the default is 0 = off);
 *   3. AdamW (torch.optim.AdamW) with the learning rate of this update;
 *   4. the EMA of the weights: ema = decay ema + (1 - decay) params.
 *
 * Learning rate: U-ViT's customized_lr_scheduler is a LambdaLR with factor
 * min(step / warmup, 1) that is stepped AFTER optimizer.step(), so update
 * number k (k = 1, 2, ...) uses lr * min((k - 1) / warmup, 1): the first
 * update has lr 0 (it only fills the moments). warmup 0 = constant lr.
 *
 * The optimizer works on any flat F32 parameter buffer with a gradient
 * buffer of the same layout (a UViT's weights/grads, padding included).
 * Resuming bit-identically needs exactly: the weights, m, v, ema and step
 * (plus the config); all are plain fields below, in backend memory.
 */
#ifndef DEEDIFF_OPTIM_H
#define DEEDIFF_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/ops.h"
#include "uvit.h"

typedef struct {
    double lr;              /* peak learning rate: 2e-4 */
    double beta1, beta2;    /* (0.99, 0.999) CIFAR-10; (0.99, 0.99) CelebA, ImageNet */
    double eps;             /* 1e-8 */
    double weight_decay;    /* 0.03 (decoupled, AdamW) */
    int64_t warmup_steps;   /* 2500 CIFAR-10, 5000 others; 0 = no warmup */
    double ema_decay;       /* 0.9999 */
    double max_grad_norm;   /* 0 = no clipping (U-ViT's default) */
} OptimConfig;

/* U-ViT's settings: CIFAR-10 (cifar10 != 0) or CelebA 64 / ImageNet.
   (MS-COCO's config uses betas (0.9, 0.9): set them by hand.) */
OptimConfig optim_config_uvit(int cifar10);

typedef struct {
    OptimConfig cfg;
    size_t n;               /* floats in each buffer */
    float *m, *v;           /* AdamW moments, backend memory [n], start at 0 */
    float *ema;             /* EMA of the weights, backend memory [n] */
    int64_t step;           /* updates done so far (the next one is step + 1) */
    /* what the last successful optim_step did, for logging */
    double last_grad_norm;  /* global L2 norm before clipping */
    double last_lr;
    int last_clipped;       /* 1 when the gradients were scaled down */
} Optimizer;

/* allocates the state for a buffer of n floats: m = v = 0, step 0, and the
   EMA copy = weights (U-ViT's ema_update(0) at initialisation) */
void optim_create(Optimizer *o, Ctx *ctx, const OptimConfig *cfg,
                  const float *weights, size_t n);
void optim_destroy(Optimizer *o, Ctx *ctx);

/* learning rate of update number k >= 1 */
double optim_lr_at(const OptimConfig *cfg, int64_t k);

/* one update of weights[n] from grads[n] (backend memory); grads may be
   scaled in place by clipping. Returns 0, or -1 with err_msg() set when a
   gradient is not finite (nothing changed, step not counted). */
int optim_step_buffers(Ctx *ctx, Optimizer *o, float *weights, float *grads);
/* the same on a model's weights and grads */
int optim_step(Ctx *ctx, Optimizer *o, UViT *model);

#endif
