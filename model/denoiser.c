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

int uvit_predict_check(const UViTConfig *c, Tensor x, Conditioning cond, int max_batch, const char *who)
{
    int64_t B = x.shape[0];
    if (B < 1 || B > max_batch)
        return err_set("%s: batch: %lld images, the arena holds 1..%d", who, (long long)B, max_batch);
    if (x.ndim != 4 || x.shape[1] != c->in_chans || x.shape[2] != c->img_size || x.shape[3] != c->img_size)
        return err_set("%s: x: not [B, %d, %d, %d]", who, c->in_chans, c->img_size, c->img_size);
    if ((c->num_classes > 0) != tensor_present(cond.y))
        return err_set("%s: y: the network is %s but labels were %s", who,
                       c->num_classes > 0 ? "class-conditional" : "not class-conditional",
                       tensor_present(cond.y) ? "given" : "not given");
    if (uvit_is_text(c) != tensor_present(cond.context))
        return err_set("%s: context: the network is %s but contexts were %s", who,
                       uvit_is_text(c) ? "text-to-image" : "not text-to-image",
                       tensor_present(cond.context) ? "given" : "not given");
    Tensor k = cond.context;
    if (uvit_is_text(c) && (k.dtype != DT_F32 || k.ndim != 3 || k.shape[0] != B || k.shape[1] != c->num_clip_token ||
                            k.shape[2] != c->clip_dim))
        return err_set("%s: context: not F32 [%lld, %d, %d] (images, num_clip_token, clip_dim)", who, (long long)B,
                       c->num_clip_token, c->clip_dim);
    return 0;
}

static int uvit_predict(NoisePredictor *self, Ctx *ctx, Tensor x, const double *t, Conditioning cond,
                        const int64_t *ids, int eval, Tensor eps_out)
{
    UViTDenoiser *d = self->state;
    int64_t B = x.shape[0];
    if (uvit_predict_check(&d->m->cfg, x, cond, self->max_batch, "denoiser")) return -1;
    // x, eps_out are (B, C, H, W); the network's time input is (B)
    Tensor net_t = uvit_network_times(ctx, d->schedule, t, (int)B, d->t_host, d->t_dev);
    uvit_forward(ctx, d->m, d->acts, x, net_t, cond, eps_out);
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

static const char *const cfg_exit_names[] = {"independent", "paired"};

const char *cfg_exit_name(CfgExit e) { return cfg_exit_names[e == CFG_EXIT_PAIRED]; }

int cfg_exit_from_name(const char *name, CfgExit *out)
{
    for (int i = 0; i < 2; i++)
        if (!strcmp(name, cfg_exit_names[i])) {
            *out = i ? CFG_EXIT_PAIRED : CFG_EXIT_INDEPENDENT;
            return 0;
        }
    return err_set("cfg-exit: '%s' is not independent or paired", name);
}

/* rows 0..B-1 of dst [B, L, Dc] = the empty context, in one op (a copy
   an image was a launch an image on the GPU) */
static void fill_empty(Ctx *ctx, const CfgPredictor *c, float *dst, int64_t B)
{
    op_rows_copy(ctx, tensor2(dst, DT_F32, B, c->context_numel), tensor_none(),
                 tensor2(c->empty, DT_F32, 1, c->context_numel), tensor1(c->zeros, DT_I64, B));
}

/* the unconditional rows' conditioning for B images, built in y_dst / ctx_dst */
static Conditioning uncond_rows(Ctx *ctx, const CfgPredictor *c, int64_t B, int64_t *y_dst, float *ctx_dst)
{
    Conditioning u = cond_none();
    if (c->s.null_class >= 0) {
        ctx_copy(ctx, y_dst, c->y_null, (size_t)B * sizeof(int64_t));
        u.y = tensor1(y_dst, DT_I64, B);
    }
    if (c->context_numel) {
        fill_empty(ctx, c, ctx_dst, B);
        u.context = tensor3(ctx_dst, DT_F32, B, c->s.context_len, c->s.context_dim);
    }
    return u;
}

static int cfg_predict(NoisePredictor *self, Ctx *ctx, Tensor x, const double *t, Conditioning cond,
                       const int64_t *ids, int eval, Tensor eps_out)
{
    CfgPredictor *c = self->state;
    NoisePredictor *in = c->inner;
    int64_t B = x.shape[0], n = c->image_numel, cn = c->context_numel;
    size_t img_bytes = (size_t)n * sizeof(float), lab_bytes = sizeof(int64_t);
    if (B < 1 || B > self->max_batch)
        return err_set("guidance: batch: %lld images, the predictor takes 1..%d", (long long)B,
                       self->max_batch);
    if (c->s.null_class >= 0 && !tensor_present(cond.y))
        return err_set("guidance: y: guidance with the null class needs labels");
    if (cn && !tensor_present(cond.context))
        return err_set("guidance: context: guidance with the empty context needs each image's context");
    if (cn && (cond.context.ndim != 3 || cond.context.shape[0] != B || cond.context.shape[1] * cond.context.shape[2] != cn))
        return err_set("guidance: context: not [%lld, %d, %d] like the empty context", (long long)B,
                       c->s.context_len, c->s.context_dim);
    CHECK(tensor_numel(x) == B * n, "cfg_predict: x is not [B, C, H, W] of the configured size");
    for (int64_t i = 0; i < B; i++) {
        c->ids2[i] = ids[i];
        c->ids2[B + i] = ids[i] | CFG_UNCOND_ID_BIT;
        c->t2[i] = c->t2[B + i] = t[i];
        c->coef_a[i] = (float)(1.0 + c->s.scale);
        c->coef_b[i] = (float)(-c->s.scale);
    }
    int one_call = 2 * B <= in->max_batch;
    Tensor uncond = with_batch(x, c->eps2 + (one_call ? B * n : 0), B);
    if (one_call) {
        /* one call of 2B: x2 = [x; x], y2 = [y; null], ctx2 = [context; empty] -> eps2 = [cond; uncond] */
        ctx_copy(ctx, c->x2, x.data, B * img_bytes);
        ctx_copy(ctx, c->x2 + B * n, x.data, B * img_bytes);
        Conditioning c2 = uncond_rows(ctx, c, B, c->y2 ? c->y2 + B : NULL, c->ctx2 ? c->ctx2 + B * cn : NULL);
        if (tensor_present(c2.y)) {
            ctx_copy(ctx, c->y2, cond.y.data, (size_t)B * lab_bytes);
            c2.y = tensor1(c->y2, DT_I64, 2 * B);
        }
        if (tensor_present(c2.context)) {
            ctx_copy(ctx, c->ctx2, cond.context.data, (size_t)(B * cn) * sizeof(float));
            c2.context = tensor3(c->ctx2, DT_F32, 2 * B, c->s.context_len, c->s.context_dim);
        }
        if (c->s.exit == CFG_EXIT_PAIRED) {
            for (int64_t i = 0; i < B; i++) {
                c->partner2[i] = (int)(B + i);
                c->partner2[B + i] = (int)i;
            }
            c2.exit_partner = c->partner2;
        }
        if (in->predict(in, ctx, with_batch(x, c->x2, 2 * B), c->t2, c2, c->ids2, eval,
                        with_batch(x, c->eps2, 2 * B)) != 0)
            return -1;
        Tensor cnd = with_batch(x, c->eps2, B);
        op_axpby(ctx, eps_out, c->coef_a, cnd, c->coef_b, uncond);
        return 0;
    }
    /* two calls of B (independent exits only: paired halves base.max_batch) */
    CHECK(c->s.exit == CFG_EXIT_INDEPENDENT, "cfg_predict: paired exits split over two calls");
    cond.exit_partner = NULL;
    if (in->predict(in, ctx, x, t, cond, ids, eval, eps_out) != 0) return -1;
    Conditioning u = uncond_rows(ctx, c, B, c->y2, c->ctx2);
    if (in->predict(in, ctx, x, t, u, c->ids2 + B, eval, uncond) != 0) return -1;
    op_axpby(ctx, eps_out, c->coef_a, eps_out, c->coef_b, uncond);
    return 0;
}

int cfg_predictor_init(CfgPredictor *c, Ctx *ctx, NoisePredictor *inner, const CfgSettings *s, int C, int H,
                       int W)
{
    int mb = inner->max_batch;
    CHECK(mb >= 1 && C > 0 && H > 0 && W > 0, "cfg_predictor_init: bad sizes");
    CHECK((s->null_class >= 0) != (s->empty_context != NULL),
          "cfg_predictor_init: give the null class or the empty context, one of them");
    CHECK(!s->empty_context || (s->context_len > 0 && s->context_dim > 0), "cfg_predictor_init: empty context %d x %d",
          s->context_len, s->context_dim);
    memset(c, 0, sizeof *c);
    if (s->exit == CFG_EXIT_PAIRED && mb < 2)
        return err_set("--cfg-exit: paired exits run an image's two passes in one call, and the predictor takes "
                       "%d image per call (use a batch of at least 2)", mb);
    c->base.predict = cfg_predict;
    c->base.state = c;
    c->base.max_batch = s->exit == CFG_EXIT_PAIRED ? mb / 2 : mb;
    c->inner = inner;
    c->s = *s;
    c->s.empty_context = NULL;
    c->image_numel = (int64_t)C * H * W;
    c->x2 = ctx_alloc(ctx, (size_t)(mb * c->image_numel) * sizeof(float));
    c->eps2 = ctx_alloc(ctx, (size_t)(mb * c->image_numel) * sizeof(float));
    if (s->null_class >= 0) {
        c->y2 = ctx_alloc(ctx, (size_t)mb * sizeof(int64_t));
        c->y_null = ctx_alloc(ctx, (size_t)mb * sizeof(int64_t));
        int64_t *nulls = xmalloc((size_t)mb * sizeof(int64_t));
        for (int i = 0; i < mb; i++) nulls[i] = s->null_class;
        ctx_upload(ctx, c->y_null, nulls, (size_t)mb * sizeof(int64_t));
        free(nulls);
    } else {
        c->context_numel = (int64_t)s->context_len * s->context_dim;
        c->ctx2 = ctx_alloc(ctx, (size_t)(mb * c->context_numel) * sizeof(float));
        c->empty = ctx_alloc(ctx, (size_t)c->context_numel * sizeof(float));
        ctx_upload(ctx, c->empty, s->empty_context, (size_t)c->context_numel * sizeof(float));
        c->zeros = ctx_alloc(ctx, (size_t)mb * sizeof(int64_t));
        int64_t *zeros = xcalloc((size_t)mb, sizeof(int64_t));
        ctx_upload(ctx, c->zeros, zeros, (size_t)mb * sizeof(int64_t));
        free(zeros);
    }
    c->t2 = xmalloc((size_t)2 * mb * sizeof(double));
    c->ids2 = xmalloc((size_t)2 * mb * sizeof(int64_t));
    c->partner2 = xmalloc((size_t)mb * sizeof(int));
    c->coef_a = xmalloc((size_t)mb * sizeof(float));
    c->coef_b = xmalloc((size_t)mb * sizeof(float));
    return 0;
}

void cfg_predictor_destroy(CfgPredictor *c, Ctx *ctx)
{
    void *dev[] = {c->x2, c->eps2, c->y2, c->y_null, c->ctx2, c->empty, c->zeros};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i]) ctx_free(ctx, dev[i]);
    free(c->t2);
    free(c->ids2);
    free(c->partner2);
    free(c->coef_a);
    free(c->coef_b);
    memset(c, 0, sizeof *c);
}

int64_t uvit_null_class(const UViTConfig *cfg)
{
    CHECK(cfg->num_classes > 1, "uvit_null_class: the network is not class-conditional");
    return cfg->num_classes - 1;
}
