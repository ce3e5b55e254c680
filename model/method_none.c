/*
 * method_none.c: the method "none": the plain U-ViT backbone, every block
 * for every image. Training is U-ViT's L_simple; sampling is the plain
 * noise predictor (model/denoiser.h), counted into the account.
 */
#include <math.h>
#include <stdlib.h>

#include "../kernels/errors.h"
#include "denoiser.h"
#include "method.h"

static int none_train_step(Method *me, Ctx *ctx, MethodStep *s)
{
    float loss = train_noise_uvit_loss(ctx, s->tn, s->backbone, s->acts, s->conditional);
    s->loss = s->loss_simple = loss;
    s->loss_u = s->loss_layers = 0;
    if (s->train_backbone) uvit_backward(ctx, s->backbone, s->acts, train_noise_dpred(s->tn));
    (void)me;
    return 0;
}

typedef struct {
    NoisePredictor base;
    UViTDenoiser den;
    SampleAccount *account;
    double macs;            /* one full forward */
    int num_blocks;
} NonePredictor;

static int none_predict(NoisePredictor *self, Ctx *ctx, Tensor x, const double *t, Conditioning cond,
                        const int64_t *ids, int eval, Tensor eps_out)
{
    NonePredictor *p = self->state;
    if (p->den.base.predict(&p->den.base, ctx, x, t, cond, ids, eval, eps_out)) return -1;
    for (int64_t i = 0; i < x.shape[0]; i++)   // x is (B,C,H,W)
        sample_account_add(p->account, ids[i], eval, t[i], p->num_blocks - 1, p->macs, NAN);
    return 0;
}

static NoisePredictor *none_predictor(Method *me, Ctx *ctx, const UViT *backbone, int max_batch,
                                      ScheduleKind schedule, double threshold, SampleAccount *account)
{
    NonePredictor *p = xcalloc(1, sizeof *p);
    uvit_denoiser_init(&p->den, ctx, backbone, max_batch, schedule);
    p->base.predict = none_predict;
    p->base.state = p;
    p->base.max_batch = max_batch;
    p->account = account;
    p->num_blocks = backbone->cfg.num_blocks;
    p->macs = method_macs_of_exit(me, &backbone->cfg, p->num_blocks - 1, 0);
    (void)threshold;
    return &p->base;
}

static void none_predictor_free(Method *me, Ctx *ctx, NoisePredictor *base)
{
    NonePredictor *p = base->state;
    uvit_denoiser_destroy(&p->den, ctx);
    free(p);
    (void)me;
}

const MethodKind method_none_kind = {
    .name = "none",
    .summary = "the plain U-ViT backbone: every block for every image",
    .options_help = "",
    .train_step = none_train_step,
    .predictor = none_predictor,
    .predictor_free = none_predictor_free,
};
