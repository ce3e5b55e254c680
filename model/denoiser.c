/*
 * denoiser.c: the plain U-ViT noise predictor and the classifier-free
 * guidance wrapper of denoiser.h.
 */
#include <stdlib.h>
#include <string.h>

#include "../kernels/errors.h"
#include "denoiser.h"

/* x with its batch dimension set to b (views of the same image shape) */
static Tensor with_batch(Tensor x, void *data, int64_t b)
{
    x.data = data;
    x.shape[0] = b;
    return x;
}

/* ---- the plain U-ViT ----------------------------------------------------------------- */

Tensor uvit_network_times(Ctx *ctx, ScheduleKind schedule, const double *t, int B, float *host, float *dev)
{
    for (int i = 0; i < B; i++) host[i] = (float)sampler_network_time(schedule, t[i]);
    ctx_upload(ctx, dev, host, (size_t)B * sizeof(float));
    return tensor1(dev, DT_F32, B);
}

int uvit_predict_check(const UViTConfig *c, Tensor x, Tensor y, int max_batch, const char *who)
{
    int64_t B = x.shape[0];
    if (B < 1 || B > max_batch)
        return err_set("%s: batch: %lld images, the arena holds 1..%d", who, (long long)B, max_batch);
    if (x.ndim != 4 || x.shape[1] != c->in_chans || x.shape[2] != c->img_size || x.shape[3] != c->img_size)
        return err_set("%s: x: not [B, %d, %d, %d]", who, c->in_chans, c->img_size, c->img_size);
    if ((c->num_classes > 0) != tensor_present(y))
        return err_set("%s: y: the network is %s but labels were %s", who,
                       c->num_classes > 0 ? "class-conditional" : "unconditional",
                       tensor_present(y) ? "given" : "not given");
    return 0;
}

static int uvit_predict(NoisePredictor *self, Ctx *ctx, Tensor x, const double *t, Tensor y,
                        const int64_t *ids, int eval, Tensor eps_out)
{
    UViTDenoiser *d = self->state;
    int64_t B = x.shape[0];
    if (uvit_predict_check(&d->m->cfg, x, y, self->max_batch, "denoiser")) return -1;
    // x, eps_out are (B, C, H, W); the network's time input is (B)
    Tensor net_t = uvit_network_times(ctx, d->schedule, t, (int)B, d->t_host, d->t_dev);
    uvit_forward(ctx, d->m, d->acts, x, net_t, y, eps_out);
    (void)ids;
    (void)eval;
    return 0;
}

void uvit_denoiser_init(UViTDenoiser *d, Ctx *ctx, const UViT *m, int max_batch,
                        ScheduleKind schedule)
{
    CHECK(max_batch >= 1, "uvit_denoiser_init: max_batch %d", max_batch);
    memset(d, 0, sizeof *d);
    d->base.predict = uvit_predict;
    d->base.state = d;
    d->base.max_batch = max_batch;
    d->m = m;
    d->schedule = schedule;
    d->acts = uvit_acts_create(ctx, m, max_batch, 0);
    d->t_dev = ctx_alloc(ctx, (size_t)max_batch * sizeof(float));
    d->t_host = malloc((size_t)max_batch * sizeof(float));
    CHECK(d->t_host, "uvit_denoiser_init: out of host memory");
}

void uvit_denoiser_destroy(UViTDenoiser *d, Ctx *ctx)
{
    if (d->acts) uvit_acts_destroy(ctx, d->acts);
    if (d->t_dev) ctx_free(ctx, d->t_dev);
    free(d->t_host);
    memset(d, 0, sizeof *d);
}

/* ---- classifier-free guidance ---------------------------------------------------------- */

static int cfg_predict(NoisePredictor *self, Ctx *ctx, Tensor x, const double *t, Tensor y,
                       const int64_t *ids, int eval, Tensor eps_out)
{
    CfgPredictor *c = self->state;
    NoisePredictor *in = c->inner;
    int64_t B = x.shape[0], n = c->image_numel;
    size_t img_bytes = (size_t)n * sizeof(float), lab_bytes = sizeof(int64_t);
    if (B < 1 || B > self->max_batch)
        return err_set("guidance: batch: %lld images, the predictor takes 1..%d", (long long)B,
                       self->max_batch);
    if (!tensor_present(y)) return err_set("guidance: y: classifier-free guidance needs labels");
    CHECK(tensor_numel(x) == B * n, "cfg_predict: x is not [B, C, H, W] of the configured size");
    for (int64_t i = 0; i < B; i++) {
        c->ids2[i] = ids[i];
        c->ids2[B + i] = ids[i] | CFG_UNCOND_ID_BIT;
        c->t2[i] = c->t2[B + i] = t[i];
        c->coef_a[i] = (float)(1.0 + c->scale);
        c->coef_b[i] = (float)(-c->scale);
    }
    Tensor uncond = with_batch(x, c->eps2 + (2 * B <= in->max_batch ? B * n : 0), B);
    if (2 * B <= in->max_batch) {
        /* one call of 2B: x2 = [x; x], y2 = [y; null] -> eps2 = [cond; uncond] */
        ctx_copy(ctx, c->x2, x.data, B * img_bytes);
        ctx_copy(ctx, c->x2 + B * n, x.data, B * img_bytes);
        ctx_copy(ctx, c->y2, y.data, (size_t)B * lab_bytes);
        ctx_copy(ctx, c->y2 + B, c->y_null, (size_t)B * lab_bytes);
        if (in->predict(in, ctx, with_batch(x, c->x2, 2 * B), c->t2,
                        tensor1(c->y2, DT_I64, 2 * B), c->ids2, eval,
                        with_batch(x, c->eps2, 2 * B)) != 0)
            return -1;
        Tensor cond = with_batch(x, c->eps2, B);
        op_axpby(ctx, eps_out, c->coef_a, cond, c->coef_b, uncond);
        return 0;
    }
    /* two calls of B: cond into eps_out, uncond into eps2 */
    if (in->predict(in, ctx, x, t, y, ids, eval, eps_out) != 0) return -1;
    if (in->predict(in, ctx, x, t, tensor1(c->y_null, DT_I64, B), c->ids2 + B, eval, uncond) != 0)
        return -1;
    op_axpby(ctx, eps_out, c->coef_a, eps_out, c->coef_b, uncond);
    return 0;
}

void cfg_predictor_init(CfgPredictor *c, Ctx *ctx, NoisePredictor *inner, double scale,
                        int64_t null_class, int C, int H, int W)
{
    int mb = inner->max_batch;
    CHECK(mb >= 1 && C > 0 && H > 0 && W > 0, "cfg_predictor_init: bad sizes");
    memset(c, 0, sizeof *c);
    c->base.predict = cfg_predict;
    c->base.state = c;
    c->base.max_batch = mb;
    c->inner = inner;
    c->scale = scale;
    c->null_class = null_class;
    c->image_numel = (int64_t)C * H * W;
    c->x2 = ctx_alloc(ctx, (size_t)(mb * c->image_numel) * sizeof(float));
    c->eps2 = ctx_alloc(ctx, (size_t)(mb * c->image_numel) * sizeof(float));
    c->y2 = ctx_alloc(ctx, (size_t)mb * sizeof(int64_t));
    c->y_null = ctx_alloc(ctx, (size_t)mb * sizeof(int64_t));
    c->t2 = malloc((size_t)2 * mb * sizeof(double));
    c->ids2 = malloc((size_t)2 * mb * sizeof(int64_t));
    c->coef_a = malloc((size_t)mb * sizeof(float));
    c->coef_b = malloc((size_t)mb * sizeof(float));
    int64_t *nulls = malloc((size_t)mb * sizeof(int64_t));
    CHECK(c->t2 && c->ids2 && c->coef_a && c->coef_b && nulls, "cfg_predictor_init: out of host memory");
    for (int i = 0; i < mb; i++) nulls[i] = null_class;
    ctx_upload(ctx, c->y_null, nulls, (size_t)mb * sizeof(int64_t));
    free(nulls);
}

void cfg_predictor_destroy(CfgPredictor *c, Ctx *ctx)
{
    if (c->x2) ctx_free(ctx, c->x2);
    if (c->eps2) ctx_free(ctx, c->eps2);
    if (c->y2) ctx_free(ctx, c->y2);
    if (c->y_null) ctx_free(ctx, c->y_null);
    free(c->t2);
    free(c->ids2);
    free(c->coef_a);
    free(c->coef_b);
    memset(c, 0, sizeof *c);
}

int64_t uvit_null_class(const UViTConfig *cfg)
{
    CHECK(cfg->num_classes > 1, "uvit_null_class: the network is not class-conditional");
    return cfg->num_classes - 1;
}
