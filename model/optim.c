/*
 * optim.c: U-ViT's optimizer step (optim.h) on the op interface: the
 * arithmetic on tensors is done by ops; this file does the scalar
 * bookkeeping (learning rate, clip coefficient, step count).
 */
#include "optim.h"

#include <math.h>
#include <string.h>

#include "../kernels/errors.h"

/* torch.nn.utils.clip_grad_norm_ adds this to the norm before dividing */
#define CLIP_NORM_EPS 1e-6

OptimConfig optim_config_uvit(int cifar10)
{
    return (OptimConfig){
        .lr = 2e-4,
        .beta1 = 0.99,
        .beta2 = cifar10 ? 0.999 : 0.99,
        .eps = 1e-8,
        .weight_decay = 0.03,
        .warmup_steps = cifar10 ? 2500 : 5000,
        .ema_decay = 0.9999,
        .max_grad_norm = 0.0,
    };
}

void optim_create(Optimizer *o, Ctx *ctx, const OptimConfig *cfg, const float *weights, size_t n)
{
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    size_t bytes = n * sizeof(float);
    o->m = ctx_alloc(ctx, bytes);
    o->v = ctx_alloc(ctx, bytes);
    o->ema = ctx_alloc(ctx, bytes);
    ctx_zero(ctx, tensor1(o->m, DT_F32, (int64_t)n));
    ctx_zero(ctx, tensor1(o->v, DT_F32, (int64_t)n));
    ctx_copy(ctx, o->ema, weights, bytes);
}

void optim_destroy(Optimizer *o, Ctx *ctx)
{
    ctx_free(ctx, o->m);
    ctx_free(ctx, o->v);
    ctx_free(ctx, o->ema);
    memset(o, 0, sizeof *o);
}

double optim_lr_at(const OptimConfig *cfg, int64_t k)
{
    // LambdaLR stepped after the update: update k sees factor(k - 1)
    if (cfg->warmup_steps <= 0) return cfg->lr;
    double factor = (double)(k - 1) / (double)cfg->warmup_steps;
    return factor < 1.0 ? cfg->lr * factor : cfg->lr;
}

int optim_step_buffers(Ctx *ctx, Optimizer *o, float *weights, float *grads)
{
    int64_t n = (int64_t)o->n;
    Tensor w = tensor1(weights, DT_F32, n), g = tensor1(grads, DT_F32, n);
    int64_t k = o->step + 1;
    if (op_has_nonfinite(ctx, g))
        return err_set("training step %lld: a gradient is NaN or Inf; stopping (weights unchanged)",
                       (long long)k);

    double norm = sqrt(op_sum_squares(ctx, g));
    o->last_clipped = 0;
    if (o->cfg.max_grad_norm > 0) {
        // torch: clip_coef = max_norm / (total_norm + 1e-6) on F32 tensors, clamped to 1
        float coef = (float)o->cfg.max_grad_norm / ((float)norm + (float)CLIP_NORM_EPS);
        if (coef < 1.0f) {
            op_scale(ctx, g, coef);
            o->last_clipped = 1;
        }
    }

    double lr = optim_lr_at(&o->cfg, k);
    AdamWParams p = {
        .lr = lr, .beta1 = o->cfg.beta1, .beta2 = o->cfg.beta2, .eps = o->cfg.eps,
        .weight_decay = o->cfg.weight_decay, .step = k,
    };
    op_adamw_step(ctx, w, g, tensor1(o->m, DT_F32, n), tensor1(o->v, DT_F32, n), p);
    op_ema_update(ctx, tensor1(o->ema, DT_F32, n), w, o->cfg.ema_decay);

    o->step = k;
    o->last_grad_norm = norm;
    o->last_lr = lr;
    return 0;
}

int optim_step(Ctx *ctx, Optimizer *o, UViT *model)
{
    CHECK(model->grads, "optim_step: the model has no gradients (uvit_enable_grads)");
    CHECK(o->n == model->total, "optim_step: optimizer for %zu floats, model has %zu",
          o->n, model->total);
    return optim_step_buffers(ctx, o, model->weights, model->grads);
}
