/*
 * deediff.c: DeeDiff (paper section 3) as a Method: an exit head and a
 * timestep-aware UEM after every block but the last, the joint loss
 *   L_all = L_simple + lambda L_u + beta L_UAL                     (eq. 13)
 *   L_u   = sum_i mean (u_i - tanh|g_i - eps|)^2                   (eqs. 9, 10)
 *   L_UAL = sum_i mean (1 - u_i) (g_i - eps)^2                     (eq. 12)
 * (sums over the exits i < N, means over a batch's elements, as L_simple),
 * and the exit rule "leave after block i when the mean of u_i's map is below
 * the threshold" (model/early_exit.h).
 *
 * Choices where the paper is silent (README, "DeeDiff"), each a flag:
 *   heads=per_layer        a copy of U-ViT's tail per exit, initialised from
 *                          the backbone's (shared: one head for every exit)
 *   uem=per_layer          one UEM per exit, as the paper (shared: the
 *                          "parameter sharing" ablation)
 *   uem_buckets=4          w_t, b_t: K timestep buckets with their own weights
 *   uem_time_input=true    the timestep embedding is an input ([L_i, t])
 *   ual_detach_u=true      u_i is a constant inside L_UAL: the weighting
 *                          cannot lower L_UAL by raising u_i, so only L_u
 *                          trains the estimator (false: L_UAL's gradient
 *                          reaches u_i too)
 *   layer_loss=uncertainty L_UAL; "plain" is eq. 11's sum of
 *                          ||g_i - eps||^2 (the "w/o UA-loss" ablation)
 *   lambda=1, beta=1       eq. 13
 * The exit score is the mean of the uncertainty map over all its values
 * (one decision per image, as the third-party re-implementation).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../kernels/phase.h"
#include "../kernels/philox.h"
#include "early_exit.h"
#include "exit_heads.h"
#include "method.h"
#include "row_list.h"

typedef struct {
    int shared_heads, shared_uem, buckets, time_input, ual_detach_u, plain_layer_loss;
    double lambda, beta;
} DeeDiffOptions;

typedef struct {
    int proj_w, time_w, bias;
} UemIndex;

/* training buffers for batches of B: the heads' (exit_heads.h) and the UEMs' */
typedef struct {
    ExitTrainBuffers h;             /* e, g, dg, d_img, d_dec, d_ln, d_hs */
    float *u, *d_u;                 /* [B,C,H,W] */
    float *temb;                    /* [B,D] */
    float *d_utok, *d_z;            /* [B,N,P] */
    float *d_tbias;                 /* [B,P] */
    int *bucket;                    /* host [B] */
} TrainBuffers;

typedef struct {
    DeeDiffOptions o;
    int exits;                      /* num_blocks - 1 */
    ExitHeadSet heads;
    UemIndex uem[UVIT_MAX_BLOCKS];
    TrainBuffers tb;
} DeeDiff;

/* ---- options ------------------------------------------------------------------------ */

static int deediff_create(Method *me)
{
    DeeDiff *d = xcalloc(1, sizeof *d);
    d->o = (DeeDiffOptions){.buckets = 4, .time_input = 1, .ual_detach_u = 1, .lambda = 1, .beta = 1};
    me->impl = d;
    return 0;
}

static void deediff_destroy(Method *me) { free(me->impl); }

static int deediff_set_option(Method *me, const char *key, const char *v)
{
    DeeDiffOptions *o = &((DeeDiff *)me->impl)->o;
    CHECK(!me->params, "deediff: options are fixed once the parameters exist");
    double x = 0;
    if (!strcmp(key, "heads")) return method_option_choice(key, v, "per_layer", "shared", &o->shared_heads);
    if (!strcmp(key, "uem")) return method_option_choice(key, v, "per_layer", "shared", &o->shared_uem);
    if (!strcmp(key, "layer_loss")) return method_option_choice(key, v, "uncertainty", "plain", &o->plain_layer_loss);
    if (!strcmp(key, "uem_time_input")) return method_option_bool(key, v, &o->time_input);
    if (!strcmp(key, "ual_detach_u")) return method_option_bool(key, v, &o->ual_detach_u);
    if (!strcmp(key, "uem_buckets")) {
        if (method_option_number(key, v, 1, 1000, &x) || x != (int)x)
            return err_set("method.uem_buckets: '%s' is not a whole number in [1, 1000]", v);
        o->buckets = (int)x;
        return 0;
    }
    if (!strcmp(key, "lambda")) return method_option_number(key, v, 0, 1e6, &o->lambda);
    if (!strcmp(key, "beta")) return method_option_number(key, v, 0, 1e6, &o->beta);
    return err_set("method.%s: not an option of deediff (heads, uem, uem_buckets, uem_time_input, "
                   "ual_detach_u, layer_loss, lambda, beta)", key);
}

static char *deediff_options_json(const Method *me)
{
    const DeeDiffOptions *o = &((const DeeDiff *)me->impl)->o;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "heads", o->shared_heads ? "shared" : "per_layer");
    cJSON_AddStringToObject(j, "uem", o->shared_uem ? "shared" : "per_layer");
    cJSON_AddNumberToObject(j, "uem_buckets", o->buckets);
    cJSON_AddBoolToObject(j, "uem_time_input", o->time_input);
    cJSON_AddBoolToObject(j, "ual_detach_u", o->ual_detach_u);
    cJSON_AddStringToObject(j, "layer_loss", o->plain_layer_loss ? "plain" : "uncertainty");
    cJSON_AddNumberToObject(j, "lambda", o->lambda);
    cJSON_AddNumberToObject(j, "beta", o->beta);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* ---- parameters ---------------------------------------------------------------------- */

#define P2(a, b, ...) method_add_param(me, 2, (int64_t[]){a, b}, __VA_ARGS__)
#define P3(a, b, c, ...) method_add_param(me, 3, (int64_t[]){a, b, c}, __VA_ARGS__)

static void deediff_build_params(Method *me, const UViTConfig *c)
{
    DeeDiff *d = me->impl;
    ExitDims dm = exit_dims(c);
    int64_t K = d->o.buckets;
    d->exits = c->num_blocks - 1;
    exit_heads_build(&d->heads, me, c, d->o.shared_heads);
    for (int i = 0; i < d->exits; i++) {
        char u[32];
        snprintf(u, sizeof u, d->o.shared_uem ? "uem" : "uem.%d", i);
        if (i == 0 || !d->o.shared_uem) {
            UemIndex *x = &d->uem[i];
            x->proj_w = P3(K, dm.P, dm.D, "%s.proj.weight", u);
            x->time_w = d->o.time_input ? P3(K, dm.P, dm.D, "%s.time.weight", u) : -1;
            x->bias = P2(K, dm.P, "%s.bias", u);
        } else {
            d->uem[i] = d->uem[0];
        }
    }
}

static ExitHead head_view(const Method *me, const float *base, int i)
{
    return exit_heads_view(&((const DeeDiff *)me->impl)->heads, me, base, i);
}

static Uem uem_view(const Method *me, const float *base, int i)
{
    const DeeDiff *d = me->impl;
    const UemIndex *x = &d->uem[i];
    Uem q = {d->o.buckets, method_param(me, base, x->proj_w), method_param(me, base, x->time_w),
             method_param(me, base, x->bias)};
    return q;
}

/* heads: the backbone's tail; UEM weights normal(0, 0.02), biases 0 */
static void deediff_init_params(Method *me, Ctx *ctx, const UViT *bb, uint64_t seed)
{
    exit_heads_init(&((DeeDiff *)me->impl)->heads, me, ctx, bb);
    for (int p = 0; p < me->num_params; p++) {
        const ParamInfo *pi = &me->params[p];
        if (!strstr(pi->name, ".proj.weight") && !strstr(pi->name, ".time.weight")) continue;
        float *host = xmalloc(pi->numel * sizeof(float));
        philox_fill_normal(host, (int64_t)pi->numel, seed, RNG_INIT_METHOD, (uint32_t)p, 0);
        for (size_t k = 0; k < pi->numel; k++) host[k] *= 0.02f;
        ctx_upload(ctx, me->weights + pi->offset, host, pi->numel * sizeof(float));
        free(host);
    }
}

/* ---- training ------------------------------------------------------------------------- */

static void deediff_train_begin(Method *me, Ctx *ctx, const UViT *bb, int B)
{
    TrainBuffers *t = &((DeeDiff *)me->impl)->tb;
    ExitDims dm = exit_dims(&bb->cfg);
    size_t f = sizeof(float), img = (size_t)B * dm.C * dm.H * dm.H * f;
    exit_train_buffers_alloc(ctx, &t->h, &bb->cfg, B);
    t->u = ctx_alloc(ctx, img);
    t->d_u = ctx_alloc(ctx, img);
    t->temb = ctx_alloc(ctx, (size_t)B * dm.D * f);
    t->d_utok = ctx_alloc(ctx, (size_t)B * dm.N * dm.P * f);
    t->d_z = ctx_alloc(ctx, (size_t)B * dm.N * dm.P * f);
    t->d_tbias = ctx_alloc(ctx, (size_t)B * dm.P * f);
    t->bucket = xmalloc((size_t)B * sizeof(int));
}

static void deediff_train_end(Method *me, Ctx *ctx)
{
    TrainBuffers *t = &((DeeDiff *)me->impl)->tb;
    exit_train_buffers_free(ctx, &t->h);
    float *all[] = {t->u, t->d_u, t->temb, t->d_utok, t->d_z, t->d_tbias};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ctx_free(ctx, all[i]);
    free(t->bucket);
    memset(t, 0, sizeof *t);
}

/* the continuous time in [0,1] of a training draw's image b */
static double draw_time(const TrainNoise *tn, int b)
{
    return tn->kind == TRAIN_NOISE_DISCRETE ? tn->t[b] / tn->disc.N : tn->t[b];
}

static int deediff_train_step(Method *me, Ctx *ctx, MethodStep *s)
{
    DeeDiff *d = me->impl;
    TrainBuffers *t = &d->tb;
    const UViTConfig *c = &s->backbone->cfg;
    const DeeDiffOptions *o = &d->o;
    TrainNoise *tn = s->tn;
    int B = tn->batch;
    CHECK(B <= t->h.B, "deediff: batch %d above the %d of train_begin", B, t->h.B);
    ExitDims dm = exit_dims(c);
    Tensor eps = train_noise_eps(tn);
    ExitTrainBuffers *h = &t->h;
    Tensor g = tensor4(h->g, DT_F32, B, dm.C, dm.H, dm.H), u = tensor4(t->u, DT_F32, B, dm.C, dm.H, dm.H);
    Tensor dg = tensor4(h->dg, DT_F32, B, dm.C, dm.H, dm.H), du = tensor4(t->d_u, DT_F32, B, dm.C, dm.H, dm.H);
    Tensor d_ln = tensor3(h->d_ln, DT_F32, B, dm.N, dm.D);
    Tensor temb = o->time_input ? tensor2(t->temb, DT_F32, B, dm.D) : tensor_none();

    // the backbone: every hidden state kept; L_simple and dL/dpred
    s->loss_simple = train_noise_uvit_loss(ctx, tn, s->backbone, s->acts, s->conditional);
    if (o->time_input) op_timestep_embedding_forward(ctx, temb, train_noise_net_t(tn));
    for (int b = 0; b < B; b++) t->bucket[b] = uem_bucket(draw_time(tn, b), o->buckets);
    if (s->train_backbone) uvit_backward_zero(ctx, s->backbone, s->acts);

    // every exit: forward, its two losses, and its backward at once (one set of buffers)
    double lu = 0, ll = 0;
    float w_ual = (float)o->beta, w_ual_u = o->ual_detach_u ? 0.0f : (float)o->beta;
    for (int i = 0; i < d->exits; i++) {
        ExitHead hw = head_view(me, me->weights, i), hg = head_view(me, me->grads, i);
        Uem qw = uem_view(me, me->weights, i), qg = uem_view(me, me->grads, i);
        phase_begin(ctx, PHASE_HEAD, i);   /* the head's and the UEM's forward, losses and backward */
        exit_head_norm(ctx, c, &hw, &h->e, uvit_hidden(s->acts, i));
        exit_head_decode(ctx, c, &hw, &h->e, h->e.ln, B, g);
        phase_begin(ctx, PHASE_EXIT_RULE, i);
        uem_forward(ctx, c, &qw, &h->e, B, temb, t->bucket, u);
        phase_end(ctx, PHASE_EXIT_RULE);
        UncertaintyLoss ul = op_uncertainty_loss_forward(ctx, g, eps, u);
        ctx_zero(ctx, dg);
        ctx_zero(ctx, du);
        if (o->plain_layer_loss) {
            ll += op_mse_forward(ctx, g, eps);
            op_mse_backward(ctx, dg, g, eps, w_ual);
            op_uncertainty_loss_backward(ctx, tensor_none(), du, g, eps, u, (float)o->lambda, 0, 0);
        } else {
            ll += ul.lual;
            op_uncertainty_loss_backward(ctx, dg, du, g, eps, u, (float)o->lambda, w_ual, w_ual_u);
        }
        lu += ul.lu;
        ctx_zero(ctx, d_ln);
        exit_head_decode_backward(ctx, c, &hw, &hg, &h->e, B, dg, d_ln, h->d_img, h->d_dec);
        phase_begin(ctx, PHASE_EXIT_RULE, i);
        uem_backward(ctx, c, &qw, &qg, &h->e, B, temb, t->bucket, du, d_ln, t->d_utok, t->d_z, t->d_tbias);
        phase_end(ctx, PHASE_EXIT_RULE);
        exit_head_norm_backward(ctx, c, &hw, &hg, &h->e, B, d_ln,
                                s->train_backbone ? uvit_hidden_grad(s->acts, i) : tensor_none(), h->d_hs);
        phase_end(ctx, PHASE_HEAD);
    }
    if (s->train_backbone) uvit_backward_from(ctx, s->backbone, s->acts, train_noise_dpred(tn));
    s->loss_u = lu;
    s->loss_layers = ll;
    s->loss = s->loss_simple + o->lambda * lu + o->beta * ll;
    return 0;
}

/* ---- sampling: the UEM as an early-exit rule --------------------------------------------- */

typedef struct {
    EarlyExitRule rule;
    const Method *me;
    const UViT *m;
    ExitActs e;
    float *u, *temb, *ln_rows;   /* [B,C,H,W], [B,D], [B,N,D] */
    float *u_mean;               /* [B]: each row's score, on the backend */
    int *bucket;                 /* host [B] */
    RowList rows;                /* the rows a head or a compaction moves */
    int B;
} UemRule;

static void rule_begin(EarlyExitRule *r, Ctx *ctx, int B, const double *t, Tensor net_t)
{
    UemRule *q = r->state;
    const DeeDiff *d = q->me->impl;
    if (d->o.time_input) op_timestep_embedding_forward(ctx, tensor2(q->temb, DT_F32, B, q->m->cfg.embed_dim), net_t);
    for (int b = 0; b < B; b++) q->bucket[b] = uem_bucket(t[b], d->o.buckets);
}

/* score = the mean of the uncertainty map u_i of each of rows [r0, r0 + n),
   taken on the backend: one float a row comes down */
static void rule_score_rows(EarlyExitRule *r, Ctx *ctx, UViTActs *a, int block, int r0, int n, float *score)
{
    UemRule *q = r->state;
    const UViTConfig *c = &q->m->cfg;
    ExitDims dm = exit_dims(c);
    ExitHead h = head_view(q->me, q->me->weights, block);
    Uem w = uem_view(q->me, q->me->weights, block);
    int64_t per = dm.C * dm.H * dm.H;
    ExitActs e = exit_acts_rows(&q->e, c, r0);
    Tensor hidden = uvit_hidden(a, block);   // hidden is (B, T, D); rows r0.. of it
    size_t row = (size_t)(dm.T * dm.D) * dtype_size(hidden.dtype);
    exit_head_norm(ctx, c, &h, &e, tensor3((char *)hidden.data + (size_t)r0 * row, hidden.dtype, n, dm.T, dm.D));
    Tensor u = tensor4(q->u + (size_t)r0 * per, DT_F32, n, dm.C, dm.H, dm.H);
    uem_forward(ctx, c, &w, &e, n, tensor2(q->temb + (size_t)r0 * dm.D, DT_F32, n, dm.D), q->bucket + r0, u);
    op_row_mean(ctx, tensor1(q->u_mean + r0, DT_F32, n), u);
    ctx_download(ctx, score, q->u_mean + r0, (size_t)n * sizeof(float));
}

static void rule_score(EarlyExitRule *r, Ctx *ctx, UViTActs *a, int block, int B, float *score)
{
    rule_score_rows(r, ctx, a, block, 0, B, score);
}

static void rule_head(EarlyExitRule *r, Ctx *ctx, UViTActs *a, int block, const int *rows, int n, Tensor out)
{
    UemRule *q = r->state;
    ExitDims dm = exit_dims(&q->m->cfg);
    // ln_rows (n, N, D) = the leaving rows of e.ln (B, N, D)
    op_rows_copy(ctx, tensor3(q->ln_rows, DT_F32, n, dm.N, dm.D), tensor_none(),
                 tensor3(q->e.ln, DT_F32, q->B, dm.N, dm.D), row_list_set(&q->rows, ctx, rows, NULL, n));
    ExitHead h = head_view(q->me, q->me->weights, block);
    exit_head_decode(ctx, &q->m->cfg, &h, &q->e, q->ln_rows, n, out);
    (void)a;
}

static void rule_keep(EarlyExitRule *r, Ctx *ctx, const int *keep, int n)
{
    UemRule *q = r->state;
    if (((const DeeDiff *)q->me->impl)->o.time_input && !rows_in_place(keep, n)) {
        // temb (B, D): rows keep[k] -> k, in place
        Tensor temb = tensor2(q->temb, DT_F32, q->B, q->m->cfg.embed_dim);
        op_rows_copy(ctx, temb, tensor_none(), temb, row_list_set(&q->rows, ctx, keep, NULL, n));
    }
    for (int k = 0; k < n; k++) q->bucket[k] = q->bucket[keep[k]];
}

static EarlyExitRule *deediff_exit_rule(Method *me, Ctx *ctx, const UViT *bb, int B, double threshold)
{
    UemRule *q = xcalloc(1, sizeof *q);
    const UViTConfig *c = &bb->cfg;
    ExitDims dm = exit_dims(c);
    q->me = me;
    q->m = bb;
    q->B = B;
    exit_acts_alloc(ctx, &q->e, c, B);
    q->u = ctx_alloc(ctx, (size_t)B * dm.C * dm.H * dm.H * sizeof(float));
    q->temb = ctx_alloc(ctx, (size_t)B * dm.D * sizeof(float));
    q->ln_rows = ctx_alloc(ctx, (size_t)B * dm.N * dm.D * sizeof(float));
    q->u_mean = ctx_alloc(ctx, (size_t)B * sizeof(float));
    q->bucket = xmalloc((size_t)B * sizeof(int));
    row_list_create(&q->rows, ctx, B);
    q->rule = (EarlyExitRule){.begin = rule_begin, .score = rule_score, .score_rows = rule_score_rows,
                              .head = rule_head, .keep = rule_keep,
                              .macs_score = me->kind->macs_estimator(me, c), .macs_head = me->kind->macs_head(me, c),
                              .state = q};
    (void)threshold;
    return &q->rule;
}

static void deediff_exit_rule_free(Method *me, Ctx *ctx, EarlyExitRule *rule)
{
    UemRule *q = rule->state;
    exit_acts_free(ctx, &q->e);
    ctx_free(ctx, q->u);
    ctx_free(ctx, q->temb);
    ctx_free(ctx, q->ln_rows);
    ctx_free(ctx, q->u_mean);
    free(q->bucket);
    row_list_destroy(&q->rows, ctx);
    free(q);
    (void)me;
}

/* ---- analysis ---------------------------------------------------------------------------------- */

/* head `block`'s prediction and uncertainty map of the arena's rows, with
   buffers of its own (allocated per call: analysis is not timed) */
static void deediff_probe(Method *me, Ctx *ctx, const UViT *bb, UViTActs *a, int block, const double *t,
                          Tensor net_t, Tensor g, Tensor u)
{
    const DeeDiff *d = me->impl;
    const UViTConfig *c = &bb->cfg;
    int B = uvit_batch(a);
    ExitDims dm = exit_dims(c);
    ExitActs e = {0};
    exit_acts_alloc(ctx, &e, c, B);
    float *temb = ctx_alloc(ctx, (size_t)B * dm.D * sizeof(float));
    int *bucket = xmalloc((size_t)B * sizeof(int));
    for (int b = 0; b < B; b++) bucket[b] = uem_bucket(t[b], d->o.buckets);
    if (d->o.time_input) op_timestep_embedding_forward(ctx, tensor2(temb, DT_F32, B, dm.D), net_t);
    ExitHead h = head_view(me, me->weights, block);
    Uem q = uem_view(me, me->weights, block);
    exit_head_norm(ctx, c, &h, &e, uvit_hidden(a, block));
    uem_forward(ctx, c, &q, &e, B, tensor2(temb, DT_F32, B, dm.D), bucket, u);
    exit_head_decode(ctx, c, &h, &e, e.ln, B, g);
    free(bucket);
    ctx_free(ctx, temb);
    exit_acts_free(ctx, &e);
}

/* ---- cost ------------------------------------------------------------------------------------ */

static double deediff_macs_estimator(const Method *me, const UViTConfig *c)
{
    return uem_macs(c, ((const DeeDiff *)me->impl)->o.time_input);
}

static double deediff_macs_head(const Method *me, const UViTConfig *c)
{
    (void)me;
    return exit_head_macs(c);
}

const MethodKind method_deediff_kind = {
    .name = "deediff",
    .summary = "DeeDiff: exit heads, timestep-aware UEMs, uncertainty-aware layer-wise loss",
    .options_help = EXIT_HEADS_OPTION_HELP
                    "uem=per_layer|shared        a UEM per block (the paper) or one for all (ablation)\n"
                    "uem_buckets=4               timestep buckets with their own UEM weights (w_t, b_t)\n"
                    "uem_time_input=true         the timestep embedding is a UEM input ([L_i, t])\n"
                    "ual_detach_u=true           u_i is a constant inside L_UAL\n"
                    "layer_loss=uncertainty|plain L_UAL, or eq. 11's plain layer-wise loss (ablation)\n"
                    "lambda=1                    weight of L_u\n"
                    "beta=1                      weight of the layer-wise loss\n",
    .create = deediff_create,
    .destroy = deediff_destroy,
    .set_option = deediff_set_option,
    .options_json = deediff_options_json,
    .build_params = deediff_build_params,
    .init_params = deediff_init_params,
    .train_begin = deediff_train_begin,
    .train_step = deediff_train_step,
    .train_end = deediff_train_end,
    .exit_rule = deediff_exit_rule,
    .exit_rule_free = deediff_exit_rule_free,
    .probe = deediff_probe,
    .macs_estimator = deediff_macs_estimator,
    .macs_head = deediff_macs_head,
};
