/*
 * berxit.c: BERxiT (Xin et al. 2021, castorini/berxit) re-implemented for
 * a diffusion U-ViT as a Method: exit heads as DeeDiff's, one
 * learning-to-exit (LTE) module shared by every exit, and BERxiT's
 * alternating training.
 *
 *   LTE:    u_i = sigmoid(w . mean_tokens(h_i) + b)        (pooled_probe.h, K = 1)
 *   target: y_i = mean over the image of tanh|g_i - eps|    (per image, detached)
 *   L_lte = sum_i mean_b (u_i - y_i)^2
 *   step k even: L_simple + L_lte; k odd: sum_i mean (g_i - eps)^2 + L_lte
 * The exit rule: an image leaves at the first block whose u_i < threshold.
 *
 * Where we depart from the original, and why: BERxiT pools BERT's [CLS]
 * state; U-ViT has no [CLS], so the LTE reads the mean of every token of
 * the block's output (the patches and the time token). Its input is
 * detached: the LTE learns to read the features, only the heads' and the
 * final loss shape them (options: heads=per_layer|shared).
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
    int shared_heads;
    ExitHeadSet heads;
    PooledProbe lte;
    /* training */
    ExitTrainBuffers tb;
    float *pooled, *z;              /* backend [B,D], [B,1] */
    float *eps_host, *g_host;       /* host [B*C*H*W] */
    float *z_host;                  /* host [B] */
    const MethodStep *step;         /* the step on_exit belongs to */
    double lte_loss;
} Berxit;

static int berxit_create(Method *me)
{
    me->impl = xcalloc(1, sizeof(Berxit));
    return 0;
}

static void berxit_destroy(Method *me) { free(me->impl); }

static int berxit_set_option(Method *me, const char *key, const char *v)
{
    Berxit *x = me->impl;
    CHECK(!me->params, "berxit: options are fixed once the parameters exist");
    if (!strcmp(key, "heads")) return method_option_choice(key, v, "per_layer", "shared", &x->shared_heads);
    return err_set("method.%s: not an option of berxit (heads)", key);
}

static char *berxit_options_json(const Method *me)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "heads", ((const Berxit *)me->impl)->shared_heads ? "shared" : "per_layer");
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static void berxit_build_params(Method *me, const UViTConfig *c)
{
    Berxit *x = me->impl;
    exit_heads_build(&x->heads, me, c, x->shared_heads);
    pooled_probe_build(&x->lte, me, c, "lte", 1);
}

static void berxit_init_params(Method *me, Ctx *ctx, const UViT *bb, uint64_t seed)
{
    Berxit *x = me->impl;
    exit_heads_init(&x->heads, me, ctx, bb);
    pooled_probe_init(&x->lte, me, ctx, seed);
}

/* ---- training ---------------------------------------------------------------------------- */

static void berxit_train_begin(Method *me, Ctx *ctx, const UViT *bb, int B)
{
    Berxit *x = me->impl;
    ExitDims dm = exit_dims(&bb->cfg);
    size_t img = (size_t)B * dm.C * dm.H * dm.H;
    exit_train_buffers_alloc(ctx, &x->tb, &bb->cfg, B);
    x->pooled = ctx_alloc(ctx, (size_t)B * dm.D * sizeof(float));
    x->z = ctx_alloc(ctx, (size_t)B * sizeof(float));
    x->eps_host = xmalloc(img * sizeof(float));
    x->g_host = xmalloc(img * sizeof(float));
    x->z_host = xmalloc((size_t)B * sizeof(float));
}

static void berxit_train_end(Method *me, Ctx *ctx)
{
    Berxit *x = me->impl;
    exit_train_buffers_free(ctx, &x->tb);
    ctx_free(ctx, x->pooled);
    ctx_free(ctx, x->z);
    free(x->eps_host);
    free(x->g_host);
    free(x->z_host);
}

/* after head i: the LTE's loss against this exit's detached target, and
   its backward into the LTE alone */
static void berxit_on_exit(void *user, Ctx *ctx, int i, Tensor g, Tensor hidden)
{
    Method *me = user;
    Berxit *x = me->impl;
    int B = (int)g.shape[0];
    int64_t per = tensor_numel(g) / B;
    Tensor pooled = tensor2(x->pooled, DT_F32, B, hidden.shape[2]), z = tensor2(x->z, DT_F32, B, 1);
    ctx_download(ctx, x->g_host, g.data, (size_t)(B * per) * sizeof(float));
    pooled_probe_forward(&x->lte, me, ctx, hidden, pooled, z);
    ctx_download(ctx, x->z_host, x->z, (size_t)B * sizeof(float));
    double loss = 0;
    for (int b = 0; b < B; b++) {
        double y = 0;
        for (int64_t j = 0; j < per; j++) y += tanh(fabs((double)x->g_host[b * per + j] - x->eps_host[b * per + j]));
        y /= (double)per;
        double u = 1 / (1 + exp(-(double)x->z_host[b]));
        loss += (u - y) * (u - y) / B;
        x->z_host[b] = (float)(2 * (u - y) / B * u * (1 - u));   // dL/dz
    }
    x->lte_loss += loss;
    ctx_upload(ctx, x->z, x->z_host, (size_t)B * sizeof(float));
    pooled_probe_backward(&x->lte, me, ctx, pooled, z, tensor_none(), tensor_none());
    (void)i;
}

static int berxit_train_step(Method *me, Ctx *ctx, MethodStep *s)
{
    Berxit *x = me->impl;
    Tensor eps = train_noise_eps(s->tn);
    ctx_download(ctx, x->eps_host, eps.data, (size_t)tensor_numel(eps) * sizeof(float));
    int final = berxit_step_is_final(s->step);
    LayerWeights lw = {.w_final = final ? 1.0f : 0.0f, .on_exit = berxit_on_exit, .user = me};
    for (int i = 0; i < x->heads.exits; i++) lw.w_exit[i] = final ? 0.0f : 1.0f;
    x->lte_loss = 0;
    exit_heads_layer_step(&x->heads, me, ctx, &x->tb, s, &lw);
    s->loss_u = x->lte_loss;
    s->loss += x->lte_loss;
    return 0;
}

/* ---- sampling: the LTE as an early-exit rule ------------------------------------------------ */

typedef struct {
    EarlyExitRule rule;
    ExitHeadRows hr;
    float *pooled, *z;               /* backend [B,D], [B,1] */
} LteRule;

static void lte_begin(EarlyExitRule *r, Ctx *ctx, int B, const double *t, Tensor net_t)
{
    (void)r, (void)ctx, (void)B, (void)t, (void)net_t;
}

/* score = the LTE's output u_i of each row */
static void lte_score(EarlyExitRule *r, Ctx *ctx, UViTActs *a, int block, int B, float *score)
{
    LteRule *q = r->state;
    const Berxit *x = q->hr.me->impl;
    Tensor z = tensor2(q->z, DT_F32, B, 1);
    pooled_probe_forward(&x->lte, q->hr.me, ctx, uvit_hidden(a, block),
                         tensor2(q->pooled, DT_F32, B, q->hr.m->cfg.embed_dim), z);
    ctx_download(ctx, score, q->z, (size_t)B * sizeof(float));
    for (int b = 0; b < B; b++) score[b] = 1.0f / (1.0f + expf(-score[b]));
}

static void lte_head(EarlyExitRule *r, Ctx *ctx, UViTActs *a, int block, const int *rows, int n, Tensor out)
{
    LteRule *q = r->state;
    exit_head_rows_predict(&q->hr, ctx, uvit_hidden(a, block), block, rows, n, out);
}

static void lte_keep(EarlyExitRule *r, Ctx *ctx, const int *keep, int n)
{
    (void)r, (void)ctx, (void)keep, (void)n;   // no per-row state
}

static double berxit_macs_estimator(const Method *me, const UViTConfig *c)
{
    (void)me;
    return pooled_probe_macs(c, 1);
}

static double berxit_macs_head(const Method *me, const UViTConfig *c)
{
    (void)me;
    return exit_head_macs(c);
}

static EarlyExitRule *berxit_exit_rule(Method *me, Ctx *ctx, const UViT *bb, int B, double threshold)
{
    Berxit *x = me->impl;
    LteRule *q = xcalloc(1, sizeof *q);
    exit_head_rows_alloc(&q->hr, ctx, &x->heads, me, bb, B);
    q->pooled = ctx_alloc(ctx, (size_t)B * bb->cfg.embed_dim * sizeof(float));
    q->z = ctx_alloc(ctx, (size_t)B * sizeof(float));
    q->rule = (EarlyExitRule){.begin = lte_begin, .score = lte_score, .head = lte_head, .keep = lte_keep,
                              .macs_score = berxit_macs_estimator(me, &bb->cfg),
                              .macs_head = berxit_macs_head(me, &bb->cfg), .state = q};
    (void)threshold;
    return &q->rule;
}

static void berxit_exit_rule_free(Method *me, Ctx *ctx, EarlyExitRule *rule)
{
    LteRule *q = rule->state;
    exit_head_rows_free(&q->hr, ctx);
    ctx_free(ctx, q->pooled);
    ctx_free(ctx, q->z);
    free(q);
    (void)me;
}

const MethodKind method_berxit_kind = {
    .name = "berxit",
    .summary = "BERxiT: exit heads, one learning-to-exit module on pooled tokens, alternating training",
    .options_help = EXIT_HEADS_OPTION_HELP,
    .create = berxit_create,
    .destroy = berxit_destroy,
    .set_option = berxit_set_option,
    .options_json = berxit_options_json,
    .build_params = berxit_build_params,
    .init_params = berxit_init_params,
    .train_begin = berxit_train_begin,
    .train_step = berxit_train_step,
    .train_end = berxit_train_end,
    .exit_rule = berxit_exit_rule,
    .exit_rule_free = berxit_exit_rule_free,
    .macs_estimator = berxit_macs_estimator,
    .macs_head = berxit_macs_head,
};
