/*
 * analyze_loss.c: figure 3 of `deediff analyze` (analyze_figures.h), the
 * training loss by time t.
 *
 * A fixed batch: images 0..N-1 of the dataset, x0[N,C,H,W], and their noise
 * eps from Philox (seed, RNG_NOISE_TRAIN_EPS, step 0), element id*CHW + j,
 * the training draw's stream (model/vpsde_train.h), the same eps at every t.
 * For each t_k = (k + 0.5) / K:
 *   x_t = alpha_t x0 + sigma_t eps      (the schedule's, model/sampler.h)
 *   the full forward at the network time of t (sampler_network_time), then
 *   "full":    MSE(output, eps) over the N images,
 *   "block i": MSE(exit i's prediction, eps), exit i probed in the same arena.
 */
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../../kernels/philox.h"
#include "analyze_figures.h"

/* the fixed batch on the backend: x0 and eps [N,C,H,W], labels [N] (I64, or
   NULL when the model is unconditional); -1 + err_msg() */
typedef struct {
    float *x0, *eps;
    int64_t *y;
} LossData;

static int loss_data_load(Ctx *ctx, const UViTConfig *c, Dataset *ds, const LossByT *o, LossData *d)
{
    int64_t N = o->items, chw = (int64_t)ds->c * ds->h * ds->w;
    float *x0 = xmalloc((size_t)(N * chw) * sizeof(float));
    int64_t *labels = xmalloc((size_t)N * sizeof(int64_t)), *ids = xmalloc((size_t)N * sizeof(int64_t));
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < N; i++) {
        ids[i] = i;
        rc = dataset_get(ds, i, x0 + i * chw, &labels[i]);
        if (rc == 0 && c->num_classes > 0 && (labels[i] < 0 || labels[i] >= c->num_classes))
            rc = err_set("%s: item %lld: label %lld, the model has %d classes", ds->name, (long long)i,
                         (long long)labels[i], c->num_classes);
    }
    memset(d, 0, sizeof *d);
    if (rc == 0) {
        size_t bytes = (size_t)(N * chw) * sizeof(float);
        d->x0 = ctx_alloc(ctx, bytes);
        d->eps = ctx_alloc(ctx, bytes);
        ctx_upload(ctx, d->x0, x0, bytes);
        // eps is (N, C, H, W)
        op_randn(ctx, tensor4(d->eps, DT_F32, N, ds->c, ds->h, ds->w), ids, o->seed, RNG_NOISE_TRAIN_EPS, 0);
        if (c->num_classes > 0) {
            d->y = ctx_alloc(ctx, (size_t)N * sizeof(int64_t));
            ctx_upload(ctx, d->y, labels, (size_t)N * sizeof(int64_t));
        }
    }
    free(x0);
    free(labels);
    free(ids);
    return rc;
}

static void loss_data_free(Ctx *ctx, LossData *d)
{
    if (d->x0) ctx_free(ctx, d->x0);
    if (d->eps) ctx_free(ctx, d->eps);
    if (d->y) ctx_free(ctx, d->y);
    memset(d, 0, sizeof *d);
}

/* buffers for one batch of up to B images */
typedef struct {
    UViTActs *acts;             /* inference arena: every hidden state kept */
    float *x_t, *pred, *g, *u;  /* backend [B, C, H, W] */
    float *net_t;               /* backend [B] */
    float *net_t_host, *a, *s;  /* host [B] */
    double *t;                  /* host [B] */
} LossBatch;

static void loss_batch_create(Ctx *ctx, const UViT *m, int B, LossBatch *lb)
{
    const UViTConfig *c = &m->cfg;
    size_t img = (size_t)B * c->in_chans * c->img_size * c->img_size * sizeof(float);
    lb->acts = uvit_acts_create(ctx, m, B, 0);
    lb->x_t = ctx_alloc(ctx, img);
    lb->pred = ctx_alloc(ctx, img);
    lb->g = ctx_alloc(ctx, img);
    lb->u = ctx_alloc(ctx, img);
    lb->net_t = ctx_alloc(ctx, (size_t)B * sizeof(float));
    lb->net_t_host = xmalloc((size_t)B * sizeof(float));
    lb->a = xmalloc((size_t)B * sizeof(float));
    lb->s = xmalloc((size_t)B * sizeof(float));
    lb->t = xmalloc((size_t)B * sizeof(double));
}

static void loss_batch_destroy(Ctx *ctx, LossBatch *lb)
{
    uvit_acts_destroy(ctx, lb->acts);
    ctx_free(ctx, lb->x_t);
    ctx_free(ctx, lb->pred);
    ctx_free(ctx, lb->g);
    ctx_free(ctx, lb->u);
    ctx_free(ctx, lb->net_t);
    free(lb->net_t_host);
    free(lb->a);
    free(lb->s);
    free(lb->t);
}

/* images at..at+B-1 at time t: adds B/N of each MSE into full and layer[exits] */
static void loss_batch_run(Ctx *ctx, const UViT *m, Method *me, const LossData *d, LossBatch *lb,
                           const SamplerSchedule *sch, double t, int64_t at, int B, int64_t N, double *full,
                           double *layer)
{
    const UViTConfig *c = &m->cfg;
    int C = c->in_chans, H = c->img_size;
    int64_t chw = (int64_t)C * H * H;
    for (int b = 0; b < B; b++) {
        lb->t[b] = t;
        lb->a[b] = (float)sampler_alpha(sch, t);
        lb->s[b] = (float)sampler_sigma(sch, t);
        lb->net_t_host[b] = (float)sampler_network_time(sch->kind, t);
    }
    ctx_upload(ctx, lb->net_t, lb->net_t_host, (size_t)B * sizeof(float));
    // x0, eps, x_t, pred, g, u are (B, C, H, W); net_t and y are (B)
    Tensor x0 = tensor4(d->x0 + at * chw, DT_F32, B, C, H, H), eps = tensor4(d->eps + at * chw, DT_F32, B, C, H, H);
    Tensor x_t = tensor4(lb->x_t, DT_F32, B, C, H, H), pred = tensor4(lb->pred, DT_F32, B, C, H, H);
    Tensor g = tensor4(lb->g, DT_F32, B, C, H, H), u = tensor4(lb->u, DT_F32, B, C, H, H);
    Tensor net_t = tensor1(lb->net_t, DT_F32, B), y = d->y ? tensor1(d->y + at, DT_I64, B) : tensor_none();
    op_axpby(ctx, x_t, lb->a, x0, lb->s, eps);
    uvit_forward(ctx, m, lb->acts, x_t, net_t, cond_labels(y), pred);
    *full += (double)op_mse_forward(ctx, pred, eps) * B / N;
    for (int i = 0; i < c->num_blocks - 1; i++) {
        method_probe(me, ctx, m, lb->acts, i, lb->t, net_t, g, u);
        layer[i] += (double)op_mse_forward(ctx, g, eps) * B / N;
    }
}

int analyze_loss_by_t(Ctx *ctx, const UViT *m, Method *me, Dataset *ds, const LossByT *o, PointList *pl)
{
    const UViTConfig *c = &m->cfg;
    int exits = c->num_blocks - 1;
    int64_t N = o->items;
    int B = (int)(N < o->batch ? N : o->batch);
    LossData d;
    if (loss_data_load(ctx, c, ds, o, &d)) return -1;
    LossBatch lb;
    loss_batch_create(ctx, m, B, &lb);
    SamplerSchedule *sch = xmalloc(sizeof *sch);
    sampler_schedule_init(sch, o->schedule);
    double *full = xcalloc((size_t)o->n_times, sizeof *full);
    double *layer = xcalloc((size_t)o->n_times * exits, sizeof *layer);   // [n_times][exits]
    for (int k = 0; k < o->n_times; k++) {
        double t = (k + 0.5) / o->n_times;
        for (int64_t at = 0; at < N; at += B) {
            int nb = (int)(N - at < B ? N - at : B);
            loss_batch_run(ctx, m, me, &d, &lb, sch, t, at, nb, N, &full[k], layer + (size_t)k * exits);
        }
    }
    const char *name = points_series(pl, "full");
    for (int k = 0; k < o->n_times; k++) points_add(pl, FIG3, name, (k + 0.5) / o->n_times, full[k]);
    for (int i = 0; i < exits; i++) {
        name = points_series(pl, "block %d", i);
        for (int k = 0; k < o->n_times; k++)
            points_add(pl, FIG3, name, (k + 0.5) / o->n_times, layer[(size_t)k * exits + i]);
    }
    free(full);
    free(layer);
    free(sch);
    loss_batch_destroy(ctx, &lb);
    loss_data_free(ctx, &d);
    return 0;
}
