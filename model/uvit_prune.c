/*
 * uvit_prune.c: Diff-Pruning on U-ViT (uvit_prune.h): group scores from
 * weights and accumulated gradients, the uniform-fraction search against
 * uvit_macs, the pruned network's weights gathered from the original, and
 * the gradient pass with its stopping rule.
 *
 * Scores and gathers run on host copies of the parameter buffers; a view's
 * place in a host copy is its offset from the backend buffer's start.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/errors.h"
#include "uvit_prune.h"

/* a host copy of a whole backend parameter buffer of m's layout */
static float *download(Ctx *ctx, const UViT *m, const float *dev)
{
    float *host = xmalloc(m->total * sizeof(float));
    ctx_download(ctx, host, dev, m->total * sizeof(float));
    return host;
}

/* where view v (into the backend buffer dev) lies in host, dev's copy */
static float *at(float *host, const float *dev, Tensor v)
{
    return host + ((const float *)v.data - dev);
}

/* ---- importance ------------------------------------------------------------------ */

/* sum over i < n of |w[i stride] g[i stride]| */
static double taylor(const float *w, const float *g, int64_t n, int64_t stride)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)w[i * stride] * g[i * stride]);
    return s;
}

/* one block's grouped tensors in a host copy */
typedef struct {
    const float *qkv_w, *qkv_b, *proj_w, *fc1_w, *fc1_b, *fc2_w;
} GroupTensors;

static GroupTensors group_tensors(float *host, const float *dev, const UViTBlockParams *v)
{
    return (GroupTensors){at(host, dev, v->qkv_w), v->qkv_b.data ? at(host, dev, v->qkv_b) : NULL,
                          at(host, dev, v->proj_w), at(host, dev, v->fc1_w), at(host, dev, v->fc1_b),
                          at(host, dev, v->fc2_w)};
}

/* MLP unit j: fc1_w[Hm,D] row j, fc1_b[Hm] entry j, fc2_w[D,Hm] column j */
static double mlp_score(const GroupTensors *w, const GroupTensors *g, int64_t D, int64_t Hm, int j)
{
    return taylor(w->fc1_w + j * D, g->fc1_w + j * D, D, 1) + taylor(w->fc1_b + j, g->fc1_b + j, 1, 1) +
           taylor(w->fc2_w + j, g->fc2_w + j, D, Hm);
}

/* head h: qkv_w[3A,D] rows s*A + h*hd + d (and qkv_b[3A] alike), proj_w[D,A] columns h*hd + d */
static double head_score(const GroupTensors *w, const GroupTensors *g, int64_t D, int64_t A, int64_t hd, int h)
{
    double s = 0;
    for (int64_t k = 0; k < 3; k++)
        for (int64_t d = 0; d < hd; d++) {
            int64_t r = k * A + h * hd + d;
            s += taylor(w->qkv_w + r * D, g->qkv_w + r * D, D, 1);
            if (w->qkv_b) s += taylor(w->qkv_b + r, g->qkv_b + r, 1, 1);
        }
    for (int64_t d = 0; d < hd; d++) s += taylor(w->proj_w + h * hd + d, g->proj_w + h * hd + d, D, A);
    return s;
}

void prune_scores(Ctx *ctx, const UViT *m, PruneScores *s)
{
    CHECK(m->grads, "prune_scores: the model has no gradients (uvit_enable_grads, prune_accumulate)");
    const UViTConfig *c = &m->cfg;
    float *w = download(ctx, m, m->weights), *g = download(ctx, m, m->grads);
    memset(s, 0, sizeof *s);
    s->num_blocks = c->num_blocks;
    for (int b = 0; b < c->num_blocks; b++) {
        const UViTBlockParams *v = &m->w.blocks[b];
        GroupTensors tw = group_tensors(w, m->weights, v), tg = group_tensors(g, m->grads, &m->g.blocks[b]);
        s->mlp_hidden[b] = v->mlp_hidden;
        s->heads[b] = v->heads;
        s->mlp[b] = xmalloc((size_t)v->mlp_hidden * sizeof(double));
        s->head[b] = xmalloc((size_t)v->heads * sizeof(double));
        for (int j = 0; j < v->mlp_hidden; j++) s->mlp[b][j] = mlp_score(&tw, &tg, c->embed_dim, v->mlp_hidden, j);
        for (int h = 0; h < v->heads; h++)
            s->head[b][h] = head_score(&tw, &tg, c->embed_dim, v->attn_dim, c->head_dim, h);
    }
    free(w);
    free(g);
}

void prune_scores_free(PruneScores *s)
{
    for (int b = 0; b < s->num_blocks; b++) {
        free(s->mlp[b]);
        free(s->head[b]);
    }
    memset(s, 0, sizeof *s);
}

/* ---- selection ------------------------------------------------------------------- */

int prune_kept(int n, double p)
{
    int k = (int)floor(n * (1 - p) + 0.5);
    return k < 1 ? 1 : k > n ? n : k;
}

void prune_config(const UViTConfig *base, double p, UViTConfig *out)
{
    *out = *base;
    for (int b = 0; b < base->num_blocks; b++) {
        out->block_mlp_hidden[b] = prune_kept(base->block_mlp_hidden[b], p);
        out->block_num_heads[b] = prune_kept(base->block_num_heads[b], p);
    }
}

void prune_base_config(const UViTConfig *c, UViTConfig *out)
{
    *out = *c;
    memset(out->block_mlp_hidden, 0, sizeof out->block_mlp_hidden);
    memset(out->block_num_heads, 0, sizeof out->block_num_heads);
    CHECK(uvit_config_finish(out, "prune_base_config") == 0, "%s", err_msg());
}

static double macs_at(const UViTConfig *base, double p)
{
    UViTConfig c;
    UViTMacs m;
    prune_config(base, p, &c);
    uvit_macs(&c, &m);
    return m.total;
}

int prune_fraction(const UViTConfig *base, double ratio, double *p, UViTConfig *out)
{
    if (!(ratio > 0 && ratio <= 1)) return err_set("--ratio: %g is not in (0, 1]", ratio);
    double target = ratio * macs_at(base, 0), lo = 0, hi = 1;
    if (macs_at(base, 0) <= target) hi = 0;
    else if (macs_at(base, 1) > target)
        return err_set("--ratio: %g is below what one head and one MLP unit per block cost (%.4f of the "
                       "network)", ratio, macs_at(base, 1) / macs_at(base, 0));
    /* macs_at(lo) > target >= macs_at(hi): the cost is a step function falling in p */
    for (int i = 0; i < 50 && hi > 0; i++) {
        double mid = 0.5 * (lo + hi);
        if (macs_at(base, mid) <= target) hi = mid;
        else lo = mid;
    }
    *p = hi;
    prune_config(base, hi, out);
    return 0;
}

typedef struct {
    double score;
    int index;
} Ranked;

/* higher score first, then the lower index */
static int by_score(const void *a, const void *b)
{
    const Ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->index - y->index;
}

static int ascending(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* the k best of n scores, ascending indices (malloc'd) */
static int *keep_best(const double *score, int n, int k)
{
    CHECK(k >= 1 && k <= n, "prune_plan: keeping %d of %d groups", k, n);
    Ranked *r = xmalloc((size_t)n * sizeof *r);
    for (int i = 0; i < n; i++) r[i] = (Ranked){score[i], i};
    qsort(r, (size_t)n, sizeof *r, by_score);
    int *keep = xmalloc((size_t)k * sizeof *keep);
    for (int i = 0; i < k; i++) keep[i] = r[i].index;
    qsort(keep, (size_t)k, sizeof *keep, ascending);
    free(r);
    return keep;
}

void prune_plan(const PruneScores *s, const UViTConfig *pruned, PrunePlan *plan)
{
    CHECK(pruned->num_blocks == s->num_blocks, "prune_plan: %d blocks scored, %d to prune", s->num_blocks,
          pruned->num_blocks);
    memset(plan, 0, sizeof *plan);
    plan->cfg = *pruned;
    for (int b = 0; b < s->num_blocks; b++) {
        plan->mlp_keep[b] = keep_best(s->mlp[b], s->mlp_hidden[b], pruned->block_mlp_hidden[b]);
        plan->head_keep[b] = keep_best(s->head[b], s->heads[b], pruned->block_num_heads[b]);
    }
}

void prune_plan_free(PrunePlan *plan)
{
    for (int b = 0; b < plan->cfg.num_blocks; b++) {
        free(plan->mlp_keep[b]);
        free(plan->head_keep[b]);
    }
    memset(plan, 0, sizeof *plan);
}

/* dst[i, :] = src[rows[i], :] for i < n, rows of len floats */
static void gather_rows(float *dst, const float *src, const int *rows, int n, int64_t len)
{
    for (int i = 0; i < n; i++) memcpy(dst + i * len, src + rows[i] * len, (size_t)len * sizeof(float));
}

/* dst[r, i] = src[r, cols[i]] for r < n_rows, i < n; src rows hold src_cols floats */
static void gather_cols(float *dst, const float *src, int64_t n_rows, int64_t src_cols, const int *cols, int n)
{
    for (int64_t r = 0; r < n_rows; r++)
        for (int i = 0; i < n; i++) dst[r * n + i] = src[r * src_cols + cols[i]];
}

/* the attention channels of the kept heads, h*hd + d, ascending ([k * hd], malloc'd) */
static int *head_channels(const int *heads, int k, int hd)
{
    int *ch = xmalloc((size_t)k * hd * sizeof *ch);
    for (int i = 0; i < k; i++)
        for (int d = 0; d < hd; d++) ch[i * hd + d] = heads[i] * hd + d;
    return ch;
}

/* the qkv rows of those channels: q, k, v parts in order ([3 * n], malloc'd) */
static int *qkv_rows(const int *ch, int n, int A)
{
    int *rows = xmalloc((size_t)3 * n * sizeof *rows);
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < n; i++) rows[s * n + i] = s * A + ch[i];
    return rows;
}

/* block b's grouped tensors of dst (host copy dh) from src's (host copy sh) */
static void gather_block(const UViT *src, float *sh, const UViT *dst, float *dh, const PrunePlan *plan, int b)
{
    const UViTBlockParams *s = &src->w.blocks[b], *d = &dst->w.blocks[b];
    int64_t D = src->cfg.embed_dim;
    int hd = src->cfg.head_dim, n_ch = d->attn_dim, Hm = d->mlp_hidden;
    int *ch = head_channels(plan->head_keep[b], d->heads, hd), *rows = qkv_rows(ch, n_ch, s->attn_dim);
    const int *units = plan->mlp_keep[b];
    gather_rows(at(dh, dst->weights, d->qkv_w), at(sh, src->weights, s->qkv_w), rows, 3 * n_ch, D);
    if (s->qkv_b.data)
        gather_rows(at(dh, dst->weights, d->qkv_b), at(sh, src->weights, s->qkv_b), rows, 3 * n_ch, 1);
    gather_cols(at(dh, dst->weights, d->proj_w), at(sh, src->weights, s->proj_w), D, s->attn_dim, ch, n_ch);
    gather_rows(at(dh, dst->weights, d->fc1_w), at(sh, src->weights, s->fc1_w), units, Hm, D);
    gather_rows(at(dh, dst->weights, d->fc1_b), at(sh, src->weights, s->fc1_b), units, Hm, 1);
    gather_cols(at(dh, dst->weights, d->fc2_w), at(sh, src->weights, s->fc2_w), D, s->mlp_hidden, units, Hm);
    free(ch);
    free(rows);
}

void prune_apply(Ctx *ctx, const UViT *src, const PrunePlan *plan, UViT *dst)
{
    uvit_create(dst, ctx, &plan->cfg);
    CHECK(dst->num_params == src->num_params, "prune_apply: %d parameters, the original has %d", dst->num_params,
          src->num_params);
    float *sh = download(ctx, src, src->weights), *dh = xcalloc(dst->total, sizeof(float));
    /* every tensor of the same shape as it is (the grouped ones are gathered below) */
    for (int i = 0; i < src->num_params; i++) {
        const ParamInfo *ps = &src->params[i], *pd = &dst->params[i];
        CHECK(!strcmp(ps->name, pd->name), "prune_apply: parameter %d is %s, the original's %s", i, pd->name,
              ps->name);
        if (ps->numel == pd->numel) memcpy(dh + pd->offset, sh + ps->offset, ps->numel * sizeof(float));
    }
    for (int b = 0; b < src->cfg.num_blocks; b++) gather_block(src, sh, dst, dh, plan, b);
    ctx_upload(ctx, dst->weights, dh, dst->total * sizeof(float));
    free(sh);
    free(dh);
}

/* ---- the gradient pass ----------------------------------------------------------- */

int prune_stop_after(PruneStop *st, double loss)
{
    if (loss > st->max_loss) st->max_loss = loss;
    return loss < st->thr * st->max_loss;
}

PruneGradOptions prune_grad_defaults(void)
{
    return (PruneGradOptions){.thr = 0.05, .max_steps = 1000, .num_steps = 1000, .seed = 1};
}

int prune_accumulate(Ctx *ctx, UViT *m, TrainNoiseKind kind, Tensor x0, const int64_t *labels,
                     const PruneGradOptions *o, PruneGradResult *r)
{
    const UViTConfig *c = &m->cfg;
    int B = (int)x0.shape[0];   // x0 is (B, C, H, W)
    CHECK(m->grads, "prune_accumulate: call uvit_enable_grads first");
    CHECK(o->num_steps >= 1 && o->max_steps >= 1, "prune_accumulate: %d steps of N = %d", o->max_steps,
          o->num_steps);
    TrainNoise tn;
    train_noise_create(&tn, ctx, kind, B, c->in_chans, c->img_size, c->img_size);
    if (kind == TRAIN_NOISE_DISCRETE)
        CHECK(o->num_steps <= tn.disc.N, "prune_accumulate: N = %d, the schedule has %d steps", o->num_steps,
              tn.disc.N);
    UViTActs *acts = uvit_acts_create(ctx, m, B, 1);
    PruneStop stop = {o->thr, 0};
    int steps = o->max_steps < o->num_steps ? o->max_steps : o->num_steps, rc = 0;
    memset(r, 0, sizeof *r);
    for (int k = 0; k < steps && rc == 0; k++) {
        double t = kind == TRAIN_NOISE_DISCRETE ? k + 1 : (double)(k + 1) / o->num_steps;
        train_noise_draw_at(ctx, &tn, x0, t, o->seed, 0);
        if (labels) train_noise_labels(ctx, &tn, labels, 0, 0, o->seed, 0);
        float loss = train_noise_uvit_loss(ctx, &tn, m, acts, labels != NULL);
        if (!isfinite(loss)) {
            rc = err_set("prune: the loss at t = %g is %s", t, isnan(loss) ? "NaN" : "infinite");
            break;
        }
        uvit_backward(ctx, m, acts, train_noise_dpred(&tn));
        r->timesteps_used = k + 1;
        r->last_loss = loss;
        r->stopped = prune_stop_after(&stop, loss);
        r->max_loss = stop.max_loss;
        if (r->stopped) break;
    }
    uvit_acts_destroy(ctx, acts);
    train_noise_destroy(&tn, ctx);
    return rc;
}
