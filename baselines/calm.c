/*
 * calm.c: CALM (Schuster et al. 2022, google-research/t5x contrib/calm)
 * re-implemented for a diffusion U-ViT as two Methods.
 *
 * calm: exit heads as DeeDiff's, trained with CALM's layer-weighted
 * ("anytime") loss, weights 1..L normalised (exit_rules.h); the confidence
 * is the hidden-state saturation cos(h_{i-1}, h_i) of each image's whole
 * state [T*D] (h_{-1}: the embedded tokens). CALM exits when the cosine
 * reaches its threshold lambda; to keep every method's --threshold
 * meaning "0: never exit, larger: exit more" our score is 1 - cos and an
 * image leaves when it is below T (T = 1 - lambda).
 *
 * calm-meta: CALM's meta-classifier, Linear(D, 2) on the mean-pooled
 * tokens (pooled_probe.h), trained with the backbone frozen (it refuses
 * otherwise) from a calm model's heads, which go on training with the
 * anytime loss. CALM labels a state "consistent" when the exit's token
 * equals the full model's; for a regression network our label is
 *   c_i = 1 when mean((g_i - g_final)^2) <= tolerance     (per image)
 * with g_final the backbone's own prediction (detached), cross-entropy.
 * Score = 1 - p(consistent); an image leaves when it is below T.
 *
 * Options: heads=per_layer|shared; batch_rule=per_image|all (all: CALM's
 * original, the batch leaves only when every image is confident);
 * calm-meta adds tolerance=0.01.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../model/early_exit.h"
#include "../model/exit_heads.h"
#include "exit_rules.h"
#include "pooled_probe.h"

typedef struct {
    int meta;                       /* calm-meta */
    int shared_heads, batch_all;
    double tolerance;
    ExitHeadSet heads;
    PooledProbe probe;              /* calm-meta's classifier */
    /* training */
    ExitTrainBuffers tb;
    float *pooled, *z, *dz;         /* backend [B,D], [B,2], [B,2] */
    int64_t *labels;                /* backend [B] */
    const MethodStep *step;         /* the step meta_on_exit serves */
    int64_t *labels_host;           /* host [B] */
    float *final_host, *g_host;     /* host [B*C*H*W] */
    double meta_loss;
} Calm;

static int calm_create_kind(Method *me, int meta)
{
    Calm *x = xcalloc(1, sizeof *x);
    x->meta = meta;
    x->tolerance = 0.01;
    me->impl = x;
    return 0;
}
static int calm_create(Method *me) { return calm_create_kind(me, 0); }
static int calm_meta_create(Method *me) { return calm_create_kind(me, 1); }
static void calm_destroy(Method *me) { free(me->impl); }

static int calm_set_option(Method *me, const char *key, const char *v)
{
    Calm *x = me->impl;
    CHECK(!me->params, "calm: options are fixed once the parameters exist");
    if (!strcmp(key, "heads")) return method_option_choice(key, v, "per_layer", "shared", &x->shared_heads);
    if (!strcmp(key, "batch_rule")) return method_option_choice(key, v, "per_image", "all", &x->batch_all);
    if (x->meta && !strcmp(key, "tolerance")) return method_option_number(key, v, 0, 1e6, &x->tolerance);
    return err_set("method.%s: not an option of %s (heads, batch_rule%s)", key, me->kind->name,
                   x->meta ? ", tolerance" : "");
}

static char *calm_options_json(const Method *me)
{
    const Calm *x = me->impl;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "heads", x->shared_heads ? "shared" : "per_layer");
    cJSON_AddStringToObject(j, "batch_rule", x->batch_all ? "all" : "per_image");
    if (x->meta) cJSON_AddNumberToObject(j, "tolerance", x->tolerance);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static void calm_build_params(Method *me, const UViTConfig *c)
{
    Calm *x = me->impl;
    exit_heads_build(&x->heads, me, c, x->shared_heads);
    if (x->meta) pooled_probe_build(&x->probe, me, c, "meta", 2);
}

static void calm_init_params(Method *me, Ctx *ctx, const UViT *bb, uint64_t seed)
{
    Calm *x = me->impl;
    exit_heads_init(&x->heads, me, ctx, bb);
    if (x->meta) pooled_probe_init(&x->probe, me, ctx, seed);
}

/* ---- training ---------------------------------------------------------------------------- */

static void calm_train_begin(Method *me, Ctx *ctx, const UViT *bb, int B)
{
    Calm *x = me->impl;
    exit_train_buffers_alloc(ctx, &x->tb, &bb->cfg, B);
    if (!x->meta) return;
    ExitDims dm = exit_dims(&bb->cfg);
    size_t img = (size_t)B * dm.C * dm.H * dm.H;
    x->pooled = ctx_alloc(ctx, (size_t)B * dm.D * sizeof(float));
    x->z = ctx_alloc(ctx, (size_t)B * 2 * sizeof(float));
    x->dz = ctx_alloc(ctx, (size_t)B * 2 * sizeof(float));
    x->labels = ctx_alloc(ctx, (size_t)B * sizeof(int64_t));
    x->labels_host = xmalloc((size_t)B * sizeof(int64_t));
    x->final_host = xmalloc(img * sizeof(float));
    x->g_host = xmalloc(img * sizeof(float));
}

static void calm_train_end(Method *me, Ctx *ctx)
{
    Calm *x = me->impl;
    exit_train_buffers_free(ctx, &x->tb);
    if (!x->meta) return;
    ctx_free(ctx, x->pooled);
    ctx_free(ctx, x->z);
    ctx_free(ctx, x->dz);
    ctx_free(ctx, x->labels);
    free(x->labels_host);
    free(x->final_host);
    free(x->g_host);
}

/* calm-meta, after head i: labels against the final prediction, the
   classifier's cross-entropy and its backward (the state detached) */
static void meta_on_exit(void *user, Ctx *ctx, int i, Tensor g, Tensor hidden)
{
    Method *me = user;
    Calm *x = me->impl;
    int B = (int)g.shape[0];
    int64_t per = tensor_numel(g) / B;
    if (i == 0)   // the backbone's own prediction, made before the heads ran
        ctx_download(ctx, x->final_host, x->step->tn->pred, (size_t)(B * per) * sizeof(float));
    ctx_download(ctx, x->g_host, g.data, (size_t)(B * per) * sizeof(float));
    for (int b = 0; b < B; b++)
        x->labels_host[b] = calm_meta_label(x->g_host + b * per, x->final_host + b * per, per, x->tolerance);
    ctx_upload(ctx, x->labels, x->labels_host, (size_t)B * sizeof(int64_t));
    Tensor pooled = tensor2(x->pooled, DT_F32, B, hidden.shape[2]);
    Tensor z = tensor2(x->z, DT_F32, B, 2), dz = tensor2(x->dz, DT_F32, B, 2);
    Tensor labels = tensor1(x->labels, DT_I64, B);
    pooled_probe_forward(&x->probe, me, ctx, hidden, pooled, z);
    x->meta_loss += op_cross_entropy_forward(ctx, z, labels);
    ctx_zero(ctx, dz);
    op_cross_entropy_backward(ctx, dz, z, labels, 1.0f);
    pooled_probe_backward(&x->probe, me, ctx, pooled, dz, tensor_none(), tensor_none());
}

static int calm_train_step(Method *me, Ctx *ctx, MethodStep *s)
{
    Calm *x = me->impl;
    int L = s->backbone->cfg.num_blocks;
    LayerWeights lw = {0};
    lw.w_final = calm_anytime_weights(L, lw.w_exit);
    if (x->meta) {
        if (s->train_backbone)
            return err_set("method calm-meta: the meta-classifier trains with the backbone frozen "
                           "(train.freeze_backbone=true)");
        lw.on_exit = meta_on_exit;
        lw.user = me;
        x->step = s;
        x->meta_loss = 0;
    }
    exit_heads_layer_step(&x->heads, me, ctx, &x->tb, s, &lw);
    s->loss_u = x->meta ? x->meta_loss : 0;
    s->loss += s->loss_u;
    return 0;
}

/* ---- sampling: saturation or the meta-classifier as an early-exit rule ---------------------- */

typedef struct {
    EarlyExitRule rule;
    ExitHeadRows hr;
    const Calm *x;
    float *unsat;                    /* backend [B]: 1 - cos(h_i-1, h_i) of each row */
    float *pooled, *z;               /* backend [B,D], [B,2] (calm-meta) */
    float *z_host;                   /* host [B*2] */
} CalmRule;

static void calm_begin(EarlyExitRule *r, Ctx *ctx, int B, const double *t, Tensor net_t)
{
    (void)r, (void)ctx, (void)B, (void)t, (void)net_t;
}

static void calm_score(EarlyExitRule *r, Ctx *ctx, UViTActs *a, int block, int B, float *score)
{
    CalmRule *q = r->state;
    const Calm *x = q->x;
    if (x->meta) {
        Tensor z = tensor2(q->z, DT_F32, B, 2);
        pooled_probe_forward(&x->probe, q->hr.me, ctx, uvit_hidden(a, block),
                             tensor2(q->pooled, DT_F32, B, q->hr.m->cfg.embed_dim), z);
        ctx_download(ctx, q->z_host, q->z, (size_t)B * 2 * sizeof(float));
        for (int b = 0; b < B; b++)   // 1 - softmax(z)[1] = sigmoid(z0 - z1)
            score[b] = 1.0f / (1.0f + expf(q->z_host[2 * b + 1] - q->z_host[2 * b]));
    } else {
        /* the arena's hidden state before the block is the one to compare
           (block -1's: the embedded tokens): compaction moves the rows of
           the block that just ran, so the state the next block reads is
           already in the rows' new order. Both are [B, T, D]. */
        op_row_cosine_distance(ctx, tensor1(q->unsat, DT_F32, B), uvit_hidden(a, block - 1), uvit_hidden(a, block));
        ctx_download(ctx, score, q->unsat, (size_t)B * sizeof(float));
    }
    if (x->batch_all) calm_batch_rule(score, B);
}

static void calm_head(EarlyExitRule *r, Ctx *ctx, UViTActs *a, int block, const int *rows, int n, Tensor out)
{
    CalmRule *q = r->state;
    exit_head_rows_predict(&q->hr, ctx, uvit_hidden(a, block), block, rows, n, out);
}

/* no per-row state: the arena's compaction keeps the states in step */
static void calm_keep(EarlyExitRule *r, Ctx *ctx, const int *keep, int n)
{
    (void)r, (void)ctx, (void)keep, (void)n;
}

static double calm_macs_estimator(const Method *me, const UViTConfig *c)
{
    const Calm *x = me->impl;
    // the saturation's dot products are elementwise work (not counted, as norms)
    return x->meta ? pooled_probe_macs(c, 2) : 0;
}

static double calm_macs_head(const Method *me, const UViTConfig *c)
{
    (void)me;
    return exit_head_macs(c);
}

static EarlyExitRule *calm_exit_rule(Method *me, Ctx *ctx, const UViT *bb, int B, double threshold)
{
    Calm *x = me->impl;
    ExitDims dm = exit_dims(&bb->cfg);
    CalmRule *q = xcalloc(1, sizeof *q);
    q->x = x;
    exit_head_rows_alloc(&q->hr, ctx, &x->heads, me, bb, B);
    if (x->meta) {
        q->pooled = ctx_alloc(ctx, (size_t)B * dm.D * sizeof(float));
        q->z = ctx_alloc(ctx, (size_t)B * 2 * sizeof(float));
        q->z_host = xmalloc((size_t)B * 2 * sizeof(float));
    } else {
        q->unsat = ctx_alloc(ctx, (size_t)B * sizeof(float));
    }
    q->rule = (EarlyExitRule){.begin = calm_begin, .score = calm_score, .head = calm_head, .keep = calm_keep,
                              .macs_score = calm_macs_estimator(me, &bb->cfg),
                              .macs_head = calm_macs_head(me, &bb->cfg), .state = q};
    (void)threshold;
    return &q->rule;
}

static void calm_exit_rule_free(Method *me, Ctx *ctx, EarlyExitRule *rule)
{
    CalmRule *q = rule->state;
    exit_head_rows_free(&q->hr, ctx);
    if (q->pooled) ctx_free(ctx, q->pooled);
    if (q->z) ctx_free(ctx, q->z);
    if (q->unsat) ctx_free(ctx, q->unsat);
    free(q->z_host);
    free(q);
    (void)me;
}

#define CALM_COMMON_OPTIONS                                                                        \
    EXIT_HEADS_OPTION_HELP \
    "batch_rule=per_image|all    images leave one by one, or the batch only when all are confident\n"

/* every hook but create: calm and calm-meta differ only by the flag create sets */
#define CALM_HOOKS                                                                                  \
    .destroy = calm_destroy, .set_option = calm_set_option, .options_json = calm_options_json,       \
    .build_params = calm_build_params, .init_params = calm_init_params, .train_begin = calm_train_begin, \
    .train_step = calm_train_step, .train_end = calm_train_end, .exit_rule = calm_exit_rule,         \
    .exit_rule_free = calm_exit_rule_free, .macs_estimator = calm_macs_estimator, .macs_head = calm_macs_head

const MethodKind method_calm_kind = {
    .name = "calm",
    .summary = "CALM: exit heads with the anytime loss, exit on hidden-state saturation 1 - cos(h_i-1, h_i)",
    .options_help = CALM_COMMON_OPTIONS,
    .create = calm_create,
    CALM_HOOKS,
};

const MethodKind method_calm_meta_kind = {
    .name = "calm-meta",
    .summary = "CALM's meta-classifier on pooled tokens (trained on a calm model, backbone frozen)",
    .options_help = CALM_COMMON_OPTIONS
                    "tolerance=0.01              label 'consistent' when mean (g_i - g_final)^2 <= this\n",
    .create = calm_meta_create,
    .frozen_backbone_only = 1,
    CALM_HOOKS,
};
