/*
 * static_exit.c: the static exit as a Method: every image leaves after the
 * same block k, through that block's exit head; no decision is computed.
 * The floor any dynamic exit rule must beat at equal compute.
 *
 * --threshold T picks the block as every method's threshold does (0: the
 * full network, larger: earlier): k = L - 1 - round(T L), so the layers
 * ratio is about 1 - T (exit_rules.h). Heads: the layer-wise loss's
 * (eq. 11: L_simple + sum_i mean (g_i - eps)^2), trained by
 * `deediff train --method static`, or any other method's heads of the same
 * names (DeeDiff's: `--method static` on a deediff file).
 * Options: heads=per_layer|shared.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../model/early_exit.h"
#include "../model/exit_heads.h"
#include "exit_rules.h"

typedef struct {
    int shared_heads;
    ExitHeadSet heads;
    ExitTrainBuffers tb;
} StaticExit;

static int static_create(Method *me)
{
    me->impl = xcalloc(1, sizeof(StaticExit));
    return 0;
}

static void static_destroy(Method *me) { free(me->impl); }

static int static_set_option(Method *me, const char *key, const char *v)
{
    StaticExit *x = me->impl;
    CHECK(!me->params, "static: options are fixed once the parameters exist");
    if (!strcmp(key, "heads")) return method_option_choice(key, v, "per_layer", "shared", &x->shared_heads);
    return err_set("method.%s: not an option of static (heads)", key);
}

static char *static_options_json(const Method *me)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "heads", ((const StaticExit *)me->impl)->shared_heads ? "shared" : "per_layer");
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static void static_build_params(Method *me, const UViTConfig *c)
{
    StaticExit *x = me->impl;
    exit_heads_build(&x->heads, me, c, x->shared_heads);
}

static void static_init_params(Method *me, Ctx *ctx, const UViT *bb, uint64_t seed)
{
    exit_heads_init(&((StaticExit *)me->impl)->heads, me, ctx, bb);
    (void)seed;
}

static void static_train_begin(Method *me, Ctx *ctx, const UViT *bb, int B)
{
    exit_train_buffers_alloc(ctx, &((StaticExit *)me->impl)->tb, &bb->cfg, B);
}

static void static_train_end(Method *me, Ctx *ctx)
{
    exit_train_buffers_free(ctx, &((StaticExit *)me->impl)->tb);
}

/* eq. 11: L_simple + the plain layer-wise loss, every weight 1 */
static int static_train_step(Method *me, Ctx *ctx, MethodStep *s)
{
    StaticExit *x = me->impl;
    LayerWeights lw = {.w_final = 1};
    for (int i = 0; i < x->heads.exits; i++) lw.w_exit[i] = 1;
    exit_heads_layer_step(&x->heads, me, ctx, &x->tb, s, &lw);
    return 0;
}

/* ---- sampling ------------------------------------------------------------------------------ */

typedef struct {
    EarlyExitRule rule;
    ExitHeadRows hr;
    int block;                       /* k */
} StaticRule;

static void static_begin(EarlyExitRule *r, Ctx *ctx, int B, const double *t, Tensor net_t)
{
    (void)r, (void)ctx, (void)B, (void)t, (void)net_t;
}

/* 0 (leave) at block k, 1 (stay: T < 1 here) before it */
static void static_score(EarlyExitRule *r, Ctx *ctx, UViTActs *a, int block, int B, float *score)
{
    StaticRule *q = r->state;
    for (int b = 0; b < B; b++) score[b] = block == q->block ? 0.0f : 1.0f;
    (void)ctx, (void)a;
}

static void static_head(EarlyExitRule *r, Ctx *ctx, UViTActs *a, int block, const int *rows, int n, Tensor out)
{
    StaticRule *q = r->state;
    exit_head_rows_predict(&q->hr, ctx, uvit_hidden(a, block), block, rows, n, out);
}

static void static_keep(EarlyExitRule *r, Ctx *ctx, const int *keep, int n)
{
    (void)r, (void)ctx, (void)keep, (void)n;
}

static double static_macs_head(const Method *me, const UViTConfig *c)
{
    (void)me;
    return exit_head_macs(c);
}

static EarlyExitRule *static_exit_rule(Method *me, Ctx *ctx, const UViT *bb, int B, double threshold)
{
    StaticExit *x = me->impl;
    StaticRule *q = xcalloc(1, sizeof *q);
    exit_head_rows_alloc(&q->hr, ctx, &x->heads, me, bb, B);
    q->block = static_exit_block(threshold, bb->cfg.num_blocks);
    q->rule = (EarlyExitRule){.begin = static_begin, .score = static_score, .head = static_head,
                              .keep = static_keep, .macs_score = 0, .macs_head = static_macs_head(me, &bb->cfg),
                              .state = q};
    return &q->rule;
}

static void static_exit_rule_free(Method *me, Ctx *ctx, EarlyExitRule *rule)
{
    StaticRule *q = rule->state;
    exit_head_rows_free(&q->hr, ctx);
    free(q);
    (void)me;
}

/* analysis: head `block`'s prediction; the map is 0 (the exit a static rule
   at this block takes) */
static void static_probe(Method *me, Ctx *ctx, const UViT *bb, UViTActs *a, int block, const double *t,
                         Tensor net_t, Tensor g, Tensor u)
{
    EarlyExitRule *rule = static_exit_rule(me, ctx, bb, uvit_batch(a), 0);
    ((StaticRule *)rule->state)->block = block;
    early_exit_rule_probe(rule, ctx, a, block, t, net_t, g, u);
    static_exit_rule_free(me, ctx, rule);
}

const MethodKind method_static_kind = {
    .name = "static",
    .summary = "static exit: every image leaves after block L-1-round(T L) through its exit head",
    .options_help = EXIT_HEADS_OPTION_HELP,
    .create = static_create,
    .destroy = static_destroy,
    .set_option = static_set_option,
    .options_json = static_options_json,
    .build_params = static_build_params,
    .init_params = static_init_params,
    .train_begin = static_train_begin,
    .train_step = static_train_step,
    .train_end = static_train_end,
    .exit_rule = static_exit_rule,
    .exit_rule_free = static_exit_rule_free,
    .probe = static_probe,
    .macs_head = static_macs_head,
};
