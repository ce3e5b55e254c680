/*
 * test_deediff.c: DeeDiff's method against finite differences and against
 * the plain backbone: the joint loss's gradients for every parameter (the
 * backbone's, the heads', the UEMs'), each option's path, the early-exit
 * predictor's limits (threshold 0 = the full model bit for bit, threshold 1
 * = every image at the first exit with head 0's prediction), compaction (an
 * image in a shrinking batch gets what it gets alone, to the 1e-6 the plain
 * U-ViT itself keeps across batch sizes; also under guidance), the account's
 * multiply-adds per exit, the heads' initialisation as copies of the tail, a
 * model file's round trip through method_load, and the new ops' gradients.
 * Each on a text-to-image backbone too (1 + 5 extras before the heads), and
 * guidance's two exit pairings: independent passes, or paired passes that
 * leave together at the later of their two decisions.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kernels/errors.h"
#include "../model/denoiser.h"
#include "../model/early_exit.h"
#include "../model/exit_head.h"
#include "../model/method.h"
#include "support/exit_scores.h"
#include "support/float_buffers.h"
#include "support/gradcheck.h"
#include "support/method_joint.h"
#include "support/tiny_uvit.h"

#define TINY "{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,\"embed_dim\":8,\"depth\":4,\"num_heads\":2," \
             "\"mlp_ratio\":2,\"conv\":true}"
#define B 3
#define IMG (2 * 8 * 8)

/* ---- the new ops ---------------------------------------------------------------- */

typedef struct {
    Ctx ctx;
    float x[60], out[60];
} SigmoidCase;

static void sigmoid_fwd(void *user)
{
    SigmoidCase *s = user;
    op_sigmoid_forward(&s->ctx, tensor1(s->out, DT_F32, 60), tensor1(s->x, DT_F32, 60));
}

Test(deediff_ops, sigmoid_gradient)
{
    SigmoidCase s;
    ctx_init_cpu(&s.ctx, 1);
    float r[60], dx[60] = {0};
    fill_uniform(s.x, 60, -6, 6, 1);
    fill_uniform(r, 60, -1, 1, 2);
    sigmoid_fwd(&s);
    for (int i = 0; i < 60; i++) cr_expect(fabs(s.out[i] - 1 / (1 + exp(-s.x[i]))) < 1e-6);
    op_sigmoid_backward(&s.ctx, tensor1(dx, DT_F32, 60), tensor1(r, DT_F32, 60), tensor1(s.x, DT_F32, 60));
    GradCheck g = {s.out, 60, r, sigmoid_fwd, &s};
    cr_expect(gradcheck_max_error(&g, s.x, 60, dx, 1e-3f, 60) < 1e-3);
    ctx_destroy(&s.ctx);
}

typedef struct {
    Ctx ctx;
    float g[50], eps[50], u[50], target[50];
    float loss;
    float w_u, w_ual;
    int detached_target;   /* the pseudo target is held fixed at target[] */
} LossCase;

/* the forward with u_hat = tanh|g - eps| held at its value for the unperturbed g */
static void loss_fwd(void *user)
{
    LossCase *s = user;
    double lu = 0, lual = 0;
    for (int i = 0; i < 50; i++) {
        double e = (double)s->g[i] - s->eps[i];
        lu += (s->u[i] - s->target[i]) * (double)(s->u[i] - s->target[i]);
        lual += (1 - s->u[i]) * e * e;
    }
    s->loss = (float)(s->w_u * lu / 50 + s->w_ual * lual / 50);
}

Test(deediff_ops, uncertainty_loss_values_and_gradients)
{
    LossCase s = {.w_u = 0.7f, .w_ual = 1.3f};
    ctx_init_cpu(&s.ctx, 1);
    fill_uniform(s.g, 50, -2, 2, 3);
    fill_uniform(s.eps, 50, -2, 2, 4);
    fill_uniform(s.u, 50, 0.05f, 0.95f, 5);
    for (int i = 0; i < 50; i++) s.target[i] = tanhf(fabsf(s.g[i] - s.eps[i]));
    Tensor g = tensor1(s.g, DT_F32, 50), e = tensor1(s.eps, DT_F32, 50), u = tensor1(s.u, DT_F32, 50);
    UncertaintyLoss ul = op_uncertainty_loss_forward(&s.ctx, g, e, u);
    loss_fwd(&s);
    cr_expect(fabs(0.7 * ul.lu + 1.3 * ul.lual - s.loss) < 1e-5, "%g vs %g", 0.7 * ul.lu + 1.3 * ul.lual, s.loss);
    float dg[50] = {0}, du[50] = {0}, one = 1;
    op_uncertainty_loss_backward(&s.ctx, tensor1(dg, DT_F32, 50), tensor1(du, DT_F32, 50), g, e, u, 0.7f, 1.3f, 1.3f);
    GradCheck gc = {&s.loss, 1, &one, loss_fwd, &s};
    cr_expect(gradcheck_max_error(&gc, s.g, 50, dg, 1e-3f, 50) < 1e-3, "dg");
    cr_expect(gradcheck_max_error(&gc, s.u, 50, du, 1e-3f, 50) < 1e-3, "du");
    /* u detached inside L_UAL: du has only L_u's part */
    float du2[50] = {0};
    op_uncertainty_loss_backward(&s.ctx, tensor_none(), tensor1(du2, DT_F32, 50), g, e, u, 0.7f, 1.3f, 0);
    s.w_ual = 0;
    cr_expect(gradcheck_max_error(&gc, s.u, 50, du2, 1e-3f, 50) < 1e-3, "du detached");
    ctx_destroy(&s.ctx);
}

/* ---- the whole joint loss ------------------------------------------------------------ */

/* checks the gradients of every parameter whose name contains `which` (all
   with NULL; method parameters are "method.*") */
static void check_joint(const char *const *options, int n_options, const char *which, int backbone)
{
    MethodJoint j;
    method_joint_setup(&j, TINY, "deediff", options, n_options, 1, 1);
    method_joint_step(&j);
    j.base = j.last.loss;
    float one = 1;
    GradCheck g = {&j.loss, 1, &one, method_joint_step, &j};
    /* the analytic gradients of the unperturbed point (joint_step reruns zero them) */
    float *mg = xmalloc(j.me->total * sizeof(float)), *bg = xmalloc(j.m.total * sizeof(float));
    memcpy(mg, j.me->grads, j.me->total * sizeof(float));
    memcpy(bg, j.m.grads, j.m.total * sizeof(float));
    for (int i = 0; i < j.me->num_params; i++) {
        const ParamInfo *p = &j.me->params[i];
        if (which && !strstr(p->name, which)) continue;
        double err = gradcheck_max_error(&g, j.me->weights + p->offset, (int64_t)p->numel, mg + p->offset, 3e-3f, 5);
        cr_expect(err < 2e-2, "%s: gradient error %g", p->name, err);
    }
    for (int i = 0; backbone && i < j.m.num_params; i++) {
        const ParamInfo *p = &j.m.params[i];
        double err = gradcheck_max_error(&g, j.m.weights + p->offset, (int64_t)p->numel, bg + p->offset, 1e-2f, 4);
        cr_expect(err < 2e-2, "%s: gradient error %g", p->name, err);
    }
    free(mg);
    free(bg);
    method_joint_teardown(&j);
}

/* a training step on 2 threads, the backbone's blocks as pieces: the same
   loss and gradients as on 1 thread up to fp32 rounding */
Test(deediff, joint_step_as_pieces_matches_one_thread)
{
    MethodJoint one, two;
    method_joint_setup(&one, TINY, "deediff", NULL, 0, 1, 1);
    method_joint_setup_threads(&two, TINY, "deediff", NULL, 0, 1, 1, 2);
    method_joint_step(&one);
    method_joint_step(&two);
    cr_expect_eq(two.ctx.num_workers, 2, "the blocks did not run as pieces");
    cr_expect(fabs(two.last.loss - one.last.loss) <= 1e-6 * fabs(one.last.loss), "loss %.9g on 2 threads, %.9g on 1",
              two.last.loss, one.last.loss);
    double eb = rel_l2(two.m.grads, one.m.grads, (int64_t)one.m.total);
    double em = rel_l2(two.me->grads, one.me->grads, (int64_t)one.me->total);
    cr_expect(eb < 1e-5 && em < 1e-5, "gradients differ: backbone %g, method %g", eb, em);
    method_joint_teardown(&one);
    method_joint_teardown(&two);
}

/* lambda 0: no detached target anywhere, so every parameter's gradient is
   the derivative of the loss; u reached through L_UAL */
Test(deediff, joint_loss_gradients_all_parameters)
{
    const char *o[] = {"lambda", "0", "ual_detach_u", "false"};
    check_joint(o, 4, NULL, 1);
}

/* the UEMs do not feed the pseudo target, so with lambda > 0 their
   gradients are exact derivatives too when L_UAL's gradient reaches u */
Test(deediff, joint_loss_gradients_uem_with_lu)
{
    const char *o[] = {"ual_detach_u", "false"};
    check_joint(o, 2, ".uem.", 0);
}

Test(deediff, joint_loss_gradients_shared_and_plain)
{
    const char *o[] = {"lambda", "0", "heads", "shared", "uem", "shared", "layer_loss", "plain",
                       "uem_buckets", "1", "uem_time_input", "false"};
    check_joint(o, 12, NULL, 1);
}

/* ---- sampling: the early-exit predictor -------------------------------------------------
 * A tiny U-ViT whose weights are moved away from their init and a deediff
 * method whose every parameter is moved too, so the UEMs' scores differ by
 * image and by block. Thresholds that split the images over several exits
 * are read off the scores a full forward gives (the probe hook), halfway
 * between two scores, so no image sits on the edge of a decision.        */

/* class-conditional (4 classes + the null class), no final conv, 7 blocks */
#define TINY_COND "{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,\"embed_dim\":8,\"depth\":6,\"num_heads\":2," \
                  "\"mlp_ratio\":2,\"conv\":false,\"num_classes\":5}"
/* text-to-image (libs/uvit_t2i.py): [time, 5 context tokens, patches], final conv, 5 blocks */
#define TINY_T2I "{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,\"embed_dim\":8,\"depth\":4,\"num_heads\":2," \
                 "\"mlp_ratio\":2,\"conv\":true,\"clip_dim\":4,\"num_clip_token\":5}"
#define CTX (5 * 4)   /* one prompt's context [5, 4] */
#define NS 6   /* images in a sampling batch */

typedef struct {
    Ctx ctx;
    UViT m;
    Method *me;
    int L;       /* blocks */
    int cond;    /* class-conditional */
    int text;    /* text-to-image */
    float x[NS * IMG];
    double t[NS];
    int64_t ids[NS], y[NS];
    float context[NS * CTX], empty[CTX];   /* text-to-image: prompts, the empty prompt */
} Net;

static void net_create(Net *n, const char *json, int move_method, const char *const *options, int n_options)
{
    memset(n, 0, sizeof *n);
    ctx_init_cpu(&n->ctx, 1);
    tiny_uvit_create(&n->m, &n->ctx, json, 5);
    move_params(n->m.params, n->m.num_params, n->m.weights, 0.1f, 31);
    cr_assert_eq(method_new(&n->me, "deediff"), 0);
    for (int i = 0; i < n_options; i += 2)
        cr_assert_eq(method_set_option(n->me, options[i], options[i + 1]), 0, "%s", err_msg());
    method_create_params(n->me, &n->ctx, &n->m);
    method_init_from_backbone(n->me, &n->ctx, &n->m, 9);
    if (move_method) move_params(n->me->params, n->me->num_params, n->me->weights, 0.3f, 32);
    n->L = n->m.cfg.num_blocks;
    n->cond = n->m.cfg.num_classes > 0;
    n->text = uvit_is_text(&n->m.cfg);
    fill_uniform(n->x, NS * IMG, -1.5f, 1.5f, 33);
    fill_uniform(n->context, NS * CTX, -2, 2, 34);
    fill_uniform(n->empty, CTX, -2, 2, 35);
    for (int b = 0; b < NS; b++) {
        n->t[b] = 0.04 + 0.92 * b / (NS - 1);   /* every UEM bucket */
        n->ids[b] = 100 + 7 * b;
        n->y[b] = n->cond ? b % (n->m.cfg.num_classes - 1) : 0;
    }
}

static void net_destroy(Net *n)
{
    method_free(n->me, &n->ctx);
    uvit_destroy(&n->m, &n->ctx);
    ctx_destroy(&n->ctx);
}

static Tensor img4(float *x, int rows) { return tensor4(x, DT_F32, rows, 2, 8, 8); }

/* what `count` rows are conditioned on: labels y[count] or contexts [count, 5, 4] (either may be NULL) */
static Conditioning rows_cond(const Net *n, const int64_t *y, const float *context, int count)
{
    Conditioning c = cond_none();
    if (n->cond) c.y = tensor1((int64_t *)y, DT_I64, count);
    if (n->text) c.context = tensor3((float *)context, DT_F32, count, 5, 4);
    return c;
}

/* g = classifier-free guidance around p: the net's null class, or its empty context */
static void guide(CfgPredictor *g, Net *n, NoisePredictor *p, double scale, CfgExit exit)
{
    CfgSettings s = {.scale = scale, .exit = exit, .null_class = -1};
    if (n->text) {
        s.empty_context = n->empty;
        s.context_len = 5;
        s.context_dim = 4;
    } else {
        s.null_class = uvit_null_class(&n->m.cfg);
    }
    cr_assert_eq(cfg_predictor_init(g, &n->ctx, p, &s, 2, 8, 8), 0, "%s", err_msg());
}

/* one predictor call (evaluation 0) on images first..first+count-1 */
static void predict_rows(Net *n, NoisePredictor *p, int first, int count, float *out)
{
    Conditioning c = rows_cond(n, n->y + first, n->context + first * CTX, count);
    int rc = p->predict(p, &n->ctx, img4(n->x + first * IMG, count), n->t + first, c, n->ids + first, 0,
                        img4(out, count));
    cr_assert_eq(rc, 0, "%s", err_msg());
}

/* a full forward of rows[count] (x, continuous t, labels and/or contexts as
   the net takes them) in an inference arena, then every exit's probe:
   s[b * L + i] the mean of u_i of row b (as the exit rule scores it), and
   head `head`'s prediction into g, the full output into full (any of the
   three may be NULL) */
static void probe_rows_full(Net *n, const float *x, const double *t, Conditioning cond, int count, float *s,
                            int head, float *g_out, float *full)
{
    Ctx *ctx = &n->ctx;
    UViTActs *a = uvit_acts_create(ctx, &n->m, count, 0);
    float *net_t = fzeros(count), *out = fzeros(count * IMG), *g = fzeros(count * IMG), *u = fzeros(count * IMG);
    for (int b = 0; b < count; b++) net_t[b] = (float)sampler_network_time(SCHEDULE_VPSDE, t[b]);
    Tensor tt = tensor1(net_t, DT_F32, count);
    uvit_forward(ctx, &n->m, a, img4((float *)x, count), tt, cond, img4(out, count));
    if (full) memcpy(full, out, (size_t)count * IMG * sizeof(float));
    for (int i = 0; i < n->L - 1; i++) {
        n->me->kind->probe(n->me, ctx, &n->m, a, i, t, tt, img4(g, count), img4(u, count));
        for (int b = 0; s && b < count; b++) {
            double sum = 0;
            for (int j = 0; j < IMG; j++) sum += u[b * IMG + j];
            s[b * n->L + i] = (float)(sum / (double)IMG);
        }
        if (g_out && i == head) memcpy(g_out, g, (size_t)count * IMG * sizeof(float));
    }
    free(net_t);
    free(out);
    free(g);
    free(u);
    uvit_acts_destroy(ctx, a);
}

static void probe_rows(Net *n, const float *x, const double *t, Conditioning cond, int count, float *s, int head,
                       float *g_out)
{
    probe_rows_full(n, x, t, cond, count, s, head, g_out, NULL);
}

/* the net's batch as guidance hands it on: rows [cond 0..NS-1; uncond 0..NS-1]
   (x2, t2, y2 and context2 of 2 NS rows, the null class or the empty context below) */
typedef struct {
    float x[2 * NS * IMG];
    double t[2 * NS];
    int64_t y[2 * NS];
    float context[2 * NS * CTX];
} GuidedRows;

static void guided_rows(const Net *n, GuidedRows *g)
{
    for (int r = 0; r < 2 * NS; r++) {
        memcpy(g->x + r * IMG, n->x + (r % NS) * IMG, IMG * sizeof(float));
        g->t[r] = n->t[r % NS];
        g->y[r] = r < NS ? n->y[r] : n->cond ? uvit_null_class(&n->m.cfg) : 0;
        memcpy(g->context + r * CTX, r < NS ? n->context + r * CTX : n->empty, CTX * sizeof(float));
    }
}

/* per-block scores s[rows * L] of the net's batch (with guidance: its
   conditional and unconditional rows together) */
static void net_scores(Net *n, int guided, float *s)
{
    GuidedRows *g = calloc(1, sizeof *g);
    guided_rows(n, g);
    int rows = guided ? 2 * NS : NS;
    probe_rows(n, g->x, g->t, rows_cond(n, g->y, g->context, rows), rows, s, -1, NULL);
    free(g);
}

/* the threshold for the net's batch (with guidance: its conditional and
   unconditional rows together) */
static double net_threshold(Net *n, int guided, int *distinct)
{
    int rows = guided ? 2 * NS : NS;
    float *s = fzeros(rows * n->L);
    net_scores(n, guided, s);
    double T = spread_threshold(s, n->L, rows, distinct);
    cr_log_info("threshold %.6f sends %d rows to %d different exits", T, rows, *distinct);
    free(s);
    return T;
}

static int distinct_exits(const SampleAccount *acc, int L)
{
    int d = 0;
    for (int i = 0; i < L; i++) d += acc->exits[i] > 0;
    return d;
}

static SamplerConfig sampler(SamplerKind k, int steps, uint64_t seed)
{
    SamplerConfig c = sampler_config_default(k, SCHEDULE_VPSDE);
    c.steps = steps;
    c.seed = seed;
    return c;
}

/* sample_run of images first..first+count-1 into out */
static void sample_rows(Net *n, NoisePredictor *p, const SamplerConfig *sc, int first, int count, float *out)
{
    SampleCond c = {.labels = n->cond ? n->y + first : NULL, .context = n->text ? n->context + first * CTX : NULL,
                    .context_len = 5, .context_dim = 4};
    int rc = sample_run_cond(&n->ctx, p, sc, 2, 8, 8, count, n->ids + first, &c, out);
    cr_assert_eq(rc, 0, "%s", err_msg());
}

/* 1. threshold 0 computes no score and lets nothing leave: the plain U-ViT's bits */
Test(deediff, threshold_zero_is_the_full_model_bit_for_bit)
{
    const char *jsons[3] = {TINY, TINY_COND, TINY_T2I};
    for (int c = 0; c < 3; c++) {
        Net n;
        net_create(&n, jsons[c], 1, NULL, 0);
        UViTDenoiser den;
        uvit_denoiser_init(&den, &n.ctx, &n.m, 2 * NS, SCHEDULE_VPSDE);
        SampleAccount acc = {0};
        NoisePredictor *p = method_predictor(n.me, &n.ctx, &n.m, 2 * NS, SCHEDULE_VPSDE, 0, &acc);
        float a[NS * IMG], b[NS * IMG];
        predict_rows(&n, p, 0, NS, a);
        predict_rows(&n, &den.base, 0, NS, b);
        cr_expect(memcmp(a, b, sizeof a) == 0, "%s: one evaluation differs from the plain U-ViT", jsons[c]);
        cr_expect(acc.image_evals == NS && acc.exits[n.L - 1] == NS && acc.blocks_run == (int64_t)NS * n.L);
        /* through the samplers (with guidance around both on the conditional models) */
        CfgPredictor ga, gb;
        NoisePredictor *pa = p, *pb = &den.base;
        if (n.cond || n.text) {
            guide(&ga, &n, p, 0.7, CFG_EXIT_INDEPENDENT);
            guide(&gb, &n, &den.base, 0.7, CFG_EXIT_INDEPENDENT);
            pa = &ga.base, pb = &gb.base;
        }
        SamplerConfig sc[2] = {sampler(SAMPLER_DPM, 6, 1), sampler(SAMPLER_EM, 8, 2)};
        for (int k = 0; k < 2; k++) {
            sample_rows(&n, pa, &sc[k], 0, NS, a);
            sample_rows(&n, pb, &sc[k], 0, NS, b);
            cr_expect(memcmp(a, b, sizeof a) == 0, "%s, %s: the samples differ from the plain U-ViT's", jsons[c],
                      sampler_kind_name(sc[k].kind));
        }
        cr_expect(acc.exits[n.L - 1] == acc.image_evals && acc.blocks_run == acc.image_evals * n.L);
        if (n.cond || n.text) {
            cfg_predictor_destroy(&ga, &n.ctx);
            cfg_predictor_destroy(&gb, &n.ctx);
        }
        method_predictor_free(n.me, &n.ctx, p);
        uvit_denoiser_destroy(&den, &n.ctx);
        net_destroy(&n);
    }
}

/* 2. threshold 1: every image at the first exit, with head 0's prediction */
Test(deediff, threshold_one_leaves_every_image_at_the_first_exit)
{
    const char *jsons[3] = {TINY, TINY_COND, TINY_T2I};
    for (int c = 0; c < 3; c++) {
        Net n;
        net_create(&n, jsons[c], 1, NULL, 0);
        SampleAccount acc = {0};
        NoisePredictor *p = method_predictor(n.me, &n.ctx, &n.m, NS, SCHEDULE_VPSDE, 1, &acc);
        float out[NS * IMG], g[NS * IMG];
        predict_rows(&n, p, 0, NS, out);
        cr_expect(acc.image_evals == NS && acc.exits[0] == NS && acc.blocks_run == NS, "%lld evals, %lld at 0, %lld blocks",
                  (long long)acc.image_evals, (long long)acc.exits[0], (long long)acc.blocks_run);
        probe_rows(&n, n.x, n.t, rows_cond(&n, n.y, n.context, NS), NS, NULL, 0, g);
        cr_expect(memcmp(out, g, sizeof out) == 0, "%s: not head 0's prediction (rel. error %g)", jsons[c],
                  rel_l2(out, g, NS * IMG));
        /* a whole sampling run */
        memset(&acc, 0, sizeof acc);
        SamplerConfig sc = sampler(SAMPLER_EM, 8, 3);
        sample_rows(&n, p, &sc, 0, NS, out);
        cr_expect(acc.image_evals == (int64_t)NS * sampler_num_evals(&sc) && acc.exits[0] == acc.image_evals &&
                  acc.blocks_run == acc.image_evals);
        method_predictor_free(n.me, &n.ctx, p);
        net_destroy(&n);
    }
}

/* how an image's prediction in a batch compares with its prediction alone:
   counts the images that differ in any bit, and the worst relative error.
   Not bit for bit: the plain U-ViT already rounds differently at batch 1
   and batch 6 on the CPU backend (relative 1e-7; test_uvit's
   rows_are_independent_and_blocks_compose allows 1e-6), so compaction is
   held to the same 1e-6. */
#define COMPACTION_TOL 1e-6
static void compare_rows(const float *batch, const float *alone, int b, int *differ, double *worst)
{
    if (memcmp(batch + b * IMG, alone, IMG * sizeof(float))) {
        (*differ)++;
        *worst = fmax(*worst, rel_l2(alone, batch + b * IMG, IMG));
    }
}

/* 3. compaction: an image in a batch whose other images leave early gets
   what it gets alone; guidance > 0 wraps the method's predictor in CFG.
   On threads > 1 the blocks run as pieces of the rows still going on. */
static void expect_compaction_threads(const char *json, double guidance, int threads)
{
    Net n;
    net_create(&n, json, 1, NULL, 0);
    n.ctx.threads = threads;
    int distinct;
    double T = net_threshold(&n, guidance > 0, &distinct);
    cr_assert(distinct >= 2, "no threshold splits the images over two exits");
    SampleAccount acc = {0};
    int max_batch = guidance > 0 ? 2 * NS : NS;
    NoisePredictor *p = method_predictor(n.me, &n.ctx, &n.m, max_batch, SCHEDULE_VPSDE, T, &acc);
    CfgPredictor g;
    if (guidance > 0) {
        guide(&g, &n, p, guidance, CFG_EXIT_INDEPENDENT);
        p = &g.base;
    }
    /* one evaluation */
    float batch[NS * IMG], alone[IMG];
    predict_rows(&n, p, 0, NS, batch);
    cr_expect(distinct_exits(&acc, n.L) >= 2, "one evaluation: every image left at the same block");
    int differ = 0;
    double worst = 0;
    for (int b = 0; b < NS; b++) {
        predict_rows(&n, p, b, 1, alone);
        compare_rows(batch, alone, b, &differ, &worst);
    }
    cr_log_info("one evaluation: %d of %d images differ in some bit alone, worst rel. error %g", differ, NS, worst);
    cr_expect(worst <= COMPACTION_TOL, "one evaluation: an image alone differs from its batch copy by %g", worst);
    /* a sampling run */
    memset(&acc, 0, sizeof acc);
    SamplerConfig sc = sampler(SAMPLER_DPM, 6, 4);
    sample_rows(&n, p, &sc, 0, NS, batch);
    cr_expect(distinct_exits(&acc, n.L) >= 2, "sampling: every image left at the same block");
    cr_log_info("%s guidance %g: exits 0..%d: %lld %lld %lld %lld %lld ...", json, guidance, n.L - 1,
                (long long)acc.exits[0], (long long)acc.exits[1], (long long)acc.exits[2],
                (long long)acc.exits[3], (long long)acc.exits[4]);
    differ = 0, worst = 0;
    for (int b = 0; b < NS; b++) {
        sample_rows(&n, p, &sc, b, 1, alone);
        compare_rows(batch, alone, b, &differ, &worst);
    }
    cr_log_info("sampling: %d of %d images differ in some bit alone, worst rel. error %g", differ, NS, worst);
    cr_expect(worst <= COMPACTION_TOL, "sampling: an image alone differs from its batch copy by %g", worst);
    if (guidance > 0) {
        p = g.inner;
        cfg_predictor_destroy(&g, &n.ctx);
    }
    method_predictor_free(n.me, &n.ctx, p);
    cr_expect_eq(n.ctx.num_workers, threads > 1 ? threads : 0, "%d threads: the blocks did not run as pieces",
                 threads);
    net_destroy(&n);
}

static void expect_compaction(const char *json, double guidance) { expect_compaction_threads(json, guidance, 1); }

Test(deediff, compaction_as_pieces_on_two_threads)
{
    expect_compaction_threads(TINY, 0, 2);
    expect_compaction_threads(TINY_COND, 0.8, 2);
}

/* the scores an evaluation records, in order */
typedef struct {
    int n;
    float score[64];
    int exit_block[64];
} ScoreLog;

static void log_score(void *user, int64_t id, int eval, double t, int exit_block, float uncertainty)
{
    ScoreLog *log = user;
    cr_assert(log->n < 64);
    log->exit_block[log->n] = exit_block;
    log->score[log->n++] = uncertainty;
}

/* on 2 threads the UEM scores run as pieces of rows (the rule's score_rows):
   the same scores, exits and predictions as on 1 thread */
Test(deediff, exit_scores_as_pieces_match_one_thread)
{
    Net n[2];
    ScoreLog log[2] = {0};
    float out[2][NS * IMG];
    for (int k = 0; k < 2; k++) {
        net_create(&n[k], TINY, 1, NULL, 0);
        n[k].ctx.threads = k + 1;
        int distinct;
        double T = net_threshold(&n[k], 0, &distinct);
        cr_assert(distinct >= 2, "no threshold splits the images over two exits");
        SampleAccount acc = {.record = log_score, .record_user = &log[k]};
        NoisePredictor *p = method_predictor(n[k].me, &n[k].ctx, &n[k].m, NS, SCHEDULE_VPSDE, T, &acc);
        predict_rows(&n[k], p, 0, NS, out[k]);
        method_predictor_free(n[k].me, &n[k].ctx, p);
    }
    cr_expect_eq(n[1].ctx.num_workers, 2, "the scores and blocks did not run as pieces");
    cr_assert_eq(log[0].n, NS);
    cr_assert_eq(log[1].n, NS);
    for (int i = 0; i < NS; i++) {
        cr_expect_eq(log[1].exit_block[i], log[0].exit_block[i], "image %d: exit %d on 2 threads, %d on 1", i,
                     log[1].exit_block[i], log[0].exit_block[i]);
        cr_expect(fabsf(log[1].score[i] - log[0].score[i]) <= 1e-6f * fabsf(log[0].score[i]),
                  "image %d: score %.9g on 2 threads, %.9g on 1", i, log[1].score[i], log[0].score[i]);
    }
    cr_expect(rel_l2(out[1], out[0], NS * IMG) <= COMPACTION_TOL, "predictions differ by %g",
              rel_l2(out[1], out[0], NS * IMG));
    for (int k = 0; k < 2; k++) net_destroy(&n[k]);
}

Test(deediff, compaction_an_image_in_a_batch_equals_it_alone)
{
    expect_compaction(TINY, 0);
}

Test(deediff, compaction_with_classifier_free_guidance)
{
    expect_compaction(TINY_COND, 0.8);
}

Test(deediff, compaction_text_to_image_with_the_empty_context)
{
    expect_compaction(TINY_T2I, 0);
    expect_compaction(TINY_T2I, 1.0);
}

/* 4. the account's multiply-adds */
typedef struct {
    int n;
    int exit_block[4096];
} ExitTrace;

static void trace_exit(void *user, int64_t id, int eval, double t, int exit_block, float u)
{
    ExitTrace *tr = user;
    cr_assert(tr->n < 4096);
    tr->exit_block[tr->n++] = exit_block;
    (void)id, (void)eval, (void)t, (void)u;
}

Test(deediff, account_macs_are_what_each_exit_costs)
{
    Net n;
    net_create(&n, TINY, 1, NULL, 0);
    const UViTConfig *cfg = &n.m.cfg;
    int L = n.L, distinct;
    double T = net_threshold(&n, 0, &distinct);
    cr_assert(distinct >= 2);
    /* each image alone, one evaluation: exactly its exit's cost */
    SampleAccount acc = {0};
    NoisePredictor *p = method_predictor(n.me, &n.ctx, &n.m, NS, SCHEDULE_VPSDE, T, &acc);
    float out[NS * IMG];
    int seen[UVIT_MAX_BLOCKS] = {0};
    for (int b = 0; b < NS; b++) {
        memset(&acc, 0, sizeof acc);
        predict_rows(&n, p, b, 1, out);
        int e = -1;
        for (int i = 0; i < L; i++)
            if (acc.exits[i]) e = i;
        cr_assert(acc.image_evals == 1 && e >= 0 && acc.exits[e] == 1);
        seen[e] = 1;
        double want = method_macs_of_exit(n.me, cfg, e, e < L - 1 ? e + 1 : L - 1);
        cr_expect(acc.macs == want, "image %d left after block %d: %.17g MACs, expected %.17g", b, e, acc.macs, want);
        cr_expect(acc.blocks_run == e + 1);
    }
    int d = 0;
    for (int i = 0; i < L; i++) d += seen[i];
    cr_expect(d >= 2, "the images alone left at %d different blocks", d);
    /* a whole run: the sum of the exits' costs, in the order they were counted */
    ExitTrace *tr = calloc(1, sizeof *tr);
    memset(&acc, 0, sizeof acc);
    acc.record = trace_exit;
    acc.record_user = tr;
    SamplerConfig sc = sampler(SAMPLER_DPM, 6, 5);
    sample_rows(&n, p, &sc, 0, NS, out);
    cr_assert_eq(tr->n, NS * sampler_num_evals(&sc));
    double want = 0;
    int64_t blocks = 0, exits[UVIT_MAX_BLOCKS] = {0};
    for (int k = 0; k < tr->n; k++) {
        int e = tr->exit_block[k];
        want += method_macs_of_exit(n.me, cfg, e, e < L - 1 ? e + 1 : L - 1);
        blocks += e + 1;
        exits[e]++;
    }
    cr_expect(acc.macs == want, "%.17g MACs, expected %.17g", acc.macs, want);
    cr_expect(acc.image_evals == tr->n && acc.blocks_run == blocks);
    cr_expect(memcmp(acc.exits, exits, sizeof exits) == 0);
    cr_expect(distinct_exits(&acc, L) >= 2);
    method_predictor_free(n.me, &n.ctx, p);
    /* threshold 0: U-ViT's own cost per image evaluation */
    UViTMacs um;
    uvit_macs(cfg, &um);
    cr_expect(method_macs_of_exit(n.me, cfg, L - 1, 0) == um.total);
    memset(&acc, 0, sizeof acc);
    p = method_predictor(n.me, &n.ctx, &n.m, NS, SCHEDULE_VPSDE, 0, &acc);
    sample_rows(&n, p, &sc, 0, NS, out);
    want = 0;
    for (int k = 0; k < NS * sampler_num_evals(&sc); k++) want += um.total;
    cr_expect(acc.macs == want, "threshold 0: %.17g MACs, expected %.17g", acc.macs, want);
    method_predictor_free(n.me, &n.ctx, p);
    free(tr);
    net_destroy(&n);
}

/* 5. the heads start as copies of the backbone's tail: head i on the last
   block's hidden state is the backbone's own decode */
static ExitHead head_params(const Method *me, int i, int shared)
{
    char prefix[64], name[128];
    snprintf(prefix, sizeof prefix, shared ? "method.head." : "method.heads.%d.", i);
    static const char *const parts[6] = {"norm.weight", "norm.bias", "decoder_pred.weight", "decoder_pred.bias",
                                         "final_layer.weight", "final_layer.bias"};
    Tensor t[6];
    for (int k = 0; k < 6; k++) {
        snprintf(name, sizeof name, "%s%s", prefix, parts[k]);
        int idx = -1;
        for (int p = 0; p < me->num_params; p++)
            if (!strcmp(me->params[p].name, name)) idx = p;
        cr_assert(idx >= 0 || k >= 4, "%s: no such parameter", name);
        t[k] = method_param(me, me->weights, idx);
    }
    return (ExitHead){t[0], t[1], t[2], t[3], t[4], t[5]};
}

Test(deediff, exit_heads_start_as_copies_of_the_backbone_tail)
{
    static const char *const shared[] = {"heads", "shared"};
    struct { const char *json; const char *const *opts; int n_opts; } cases[4] = {
        {TINY, NULL, 0}, {TINY, shared, 2}, {TINY_COND, NULL, 0}, {TINY_T2I, NULL, 0}};
    for (int c = 0; c < 4; c++) {
        Net n;
        net_create(&n, cases[c].json, 0, cases[c].opts, cases[c].n_opts);
        Ctx *ctx = &n.ctx;
        const UViTConfig *cfg = &n.m.cfg;
        UViTActs *a = uvit_acts_create(ctx, &n.m, NS, 0);
        float net_t[NS], out[NS * IMG], g[NS * IMG];
        for (int b = 0; b < NS; b++) net_t[b] = (float)sampler_network_time(SCHEDULE_VPSDE, n.t[b]);
        uvit_forward(ctx, &n.m, a, img4(n.x, NS), tensor1(net_t, DT_F32, NS),
                     rows_cond(&n, n.y, n.context, NS), img4(out, NS));
        ExitActs e = {0};
        exit_acts_alloc(ctx, &e, cfg, NS);
        for (int i = 0; i < n.L - 1; i++) {
            ExitHead h = head_params(n.me, i, cases[c].n_opts > 0);
            exit_head_norm(ctx, cfg, &h, &e, uvit_hidden(a, n.L - 1));
            exit_head_decode(ctx, cfg, &h, &e, e.ln, NS, img4(g, NS));
            cr_expect(memcmp(g, out, sizeof g) == 0, "case %d: head %d on the last hidden state is not the tail "
                      "(rel. error %g)", c, i, rel_l2(g, out, NS * IMG));
        }
        /* the UEMs: weights normal(0, 0.02), biases 0 */
        for (int p = 0; p < n.me->num_params; p++) {
            const ParamInfo *pi = &n.me->params[p];
            const float *w = n.me->weights + pi->offset;
            double ss = 0, amax = 0;
            for (size_t k = 0; k < pi->numel; k++) ss += (double)w[k] * w[k], amax = fmax(amax, fabs(w[k]));
            if (strstr(pi->name, ".uem") && strstr(pi->name, ".bias")) cr_expect(amax == 0, "%s is not 0", pi->name);
            if (strstr(pi->name, ".proj.weight") || strstr(pi->name, ".time.weight")) {
                double sd = sqrt(ss / (double)pi->numel);
                cr_expect(sd > 0.015 && sd < 0.025, "%s: sd %g, not 0.02", pi->name, sd);
            }
        }
        exit_acts_free(ctx, &e);
        uvit_acts_destroy(ctx, a);
        net_destroy(&n);
    }
}

/* 7. a model file of the method: written as `deediff train` exports one,
   method_load with no requested method takes deediff and its options from
   the metadata, and the loaded model redraws the same samples */
/* every parameter of two buffers of one layout is bit-identical */
static int same_params(const ParamInfo *params, int num_params, const float *a, const float *b)
{
    for (int i = 0; i < num_params; i++)
        if (memcmp(a + params[i].offset, b + params[i].offset, params[i].numel * sizeof(float))) return 0;
    return 1;
}

Test(deediff, model_file_loads_the_method_and_redraws_the_samples)
{
    static const char *const opts[] = {"uem_buckets", "3", "heads", "shared", "lambda", "0.5"};
    Net n;
    net_create(&n, TINY, 1, opts, 6);
    Ctx *ctx = &n.ctx;
    char path[] = "/tmp/deediff-method-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    StWriter *w = method_model_writer(n.me, ctx, &n.m, n.m.weights, n.me->weights);
    cr_assert_eq(st_writer_save(w, path), 0, "%s", err_msg());
    st_writer_free(w);

    UViT m2;
    Method *me2;
    cr_assert_eq(method_load(path, NULL, NULL, ctx, &m2, &me2), 0, "%s", err_msg());
    cr_expect_str_eq(me2->kind->name, "deediff");
    char *o1 = method_options_json(n.me), *o2 = method_options_json(me2);
    cr_expect_str_eq(o2, o1);
    free(o1);
    free(o2);
    cr_assert_eq(me2->total, n.me->total);
    cr_assert_eq(m2.total, n.m.total);
    cr_expect(same_params(n.me->params, n.me->num_params, me2->weights, n.me->weights), "method weights differ");
    cr_expect(same_params(n.m.params, n.m.num_params, m2.weights, n.m.weights), "backbone weights differ");

    int distinct;
    double T = net_threshold(&n, 0, &distinct);
    cr_assert(distinct >= 2);
    SampleAccount a1 = {0}, a2 = {0};
    NoisePredictor *p1 = method_predictor(n.me, ctx, &n.m, NS, SCHEDULE_VPSDE, T, &a1);
    NoisePredictor *p2 = method_predictor(me2, ctx, &m2, NS, SCHEDULE_VPSDE, T, &a2);
    float s1[NS * IMG], s2[NS * IMG];
    SamplerConfig sc = sampler(SAMPLER_DPM, 6, 6);
    sample_rows(&n, p1, &sc, 0, NS, s1);
    sample_rows(&n, p2, &sc, 0, NS, s2);
    cr_expect(memcmp(s1, s2, sizeof s1) == 0, "the loaded model draws other samples");
    cr_expect(memcmp(a1.exits, a2.exits, sizeof a1.exits) == 0 && a1.macs == a2.macs);
    cr_expect(distinct_exits(&a1, n.L) >= 2);
    method_predictor_free(n.me, ctx, p1);
    method_predictor_free(me2, ctx, p2);
    method_free(me2, ctx);
    uvit_destroy(&m2, ctx);

    /* "none" runs the file's backbone alone; another method is refused */
    cr_assert_eq(method_load(path, "none", NULL, ctx, &m2, &me2), 0, "%s", err_msg());
    cr_expect_str_eq(me2->kind->name, "none");
    cr_expect(me2->total == 0 && same_params(n.m.params, n.m.num_params, m2.weights, n.m.weights));
    method_free(me2, ctx);
    uvit_destroy(&m2, ctx);
    cr_expect_eq(method_load(path, "nosuch", NULL, ctx, &m2, &me2), -1);
    cr_expect(strstr(err_msg(), "--method") != NULL, "%s", err_msg());
    unlink(path);
    net_destroy(&n);
}

/* 8. guidance's exit pairings (model/denoiser.h CfgExit): independent
   passes leave at their own first exits; paired passes of an image leave
   together at the later of the two, with that block's heads mixed by the
   guidance formula; nothing changes where no row exits (threshold 0) or
   every row takes the first exit (threshold 1) */
typedef struct {
    int n;
    int64_t id[4096];
    int eval[4096], exit_block[4096];
} PairTrace;

static void trace_pair(void *user, int64_t id, int eval, double t, int exit_block, float u)
{
    PairTrace *tr = user;
    cr_assert(tr->n < 4096);
    tr->id[tr->n] = id;
    tr->eval[tr->n] = eval;
    tr->exit_block[tr->n++] = exit_block;
    (void)t, (void)u;
}

/* the exit traced for image id's pass (uncond: its unconditional one) at evaluation eval */
static int traced_exit(const PairTrace *tr, int64_t id, int uncond, int eval)
{
    int64_t want = uncond ? id | CFG_UNCOND_ID_BIT : id;
    for (int k = 0; k < tr->n; k++)
        if (tr->id[k] == want && tr->eval[k] == eval) return tr->exit_block[k];
    cr_assert_fail("no exit traced for image %lld (%s) at evaluation %d", (long long)id, uncond ? "uncond" : "cond",
                   eval);
    return -1;
}

/* a threshold midway between two sorted scores (at least 2e-4 apart) that
   sends the most images' two passes to different exits, both before the
   last block (so the pair leaves by a head) */
static double disagreeing_threshold(const float *s, int L, int *disagree)
{
    int rows = 2 * NS, m = rows * (L - 1);
    float *sorted = fzeros(m);
    for (int r = 0, k = 0; r < rows; r++)
        for (int i = 0; i < L - 1; i++) sorted[k++] = s[r * L + i];
    qsort(sorted, (size_t)m, sizeof *sorted, cmp_float);
    double best = 0;
    *disagree = -1;
    for (int k = 0; k + 1 < m; k++) {
        if (sorted[k + 1] - sorted[k] < 2e-4) continue;
        double T = 0.5 * ((double)sorted[k] + sorted[k + 1]);
        int d = 0;
        for (int b = 0; b < NS; b++) {
            int ec = exit_of(s, L, b, T), eu = exit_of(s, L, NS + b, T);
            d += ec != eu && ec < L - 1 && eu < L - 1;
        }
        if (d > *disagree) *disagree = d, best = T;
    }
    free(sorted);
    return best;
}

/* one guided evaluation of the net's NS images under pairing `exit` at
   threshold T: the guided eps into out, every pass's exit into tr */
static void guided_eval(Net *n, double T, double scale, CfgExit exit, float *out, PairTrace *tr, SampleAccount *acc)
{
    memset(acc, 0, sizeof *acc);
    acc->record = trace_pair;
    acc->record_user = tr;
    tr->n = 0;
    NoisePredictor *p = method_predictor(n->me, &n->ctx, &n->m, 2 * NS, SCHEDULE_VPSDE, T, acc);
    CfgPredictor g;
    guide(&g, n, p, scale, exit);
    predict_rows(n, &g.base, 0, NS, out);
    cfg_predictor_destroy(&g, &n->ctx);
    method_predictor_free(n->me, &n->ctx, p);
}

static void expect_paired_exits(const char *json)
{
    const double scale = 0.9;
    Net n;
    net_create(&n, json, 1, NULL, 0);
    int L = n.L, disagree;
    float *s = fzeros(2 * NS * L);
    net_scores(&n, 1, s);
    double T = disagreeing_threshold(s, L, &disagree);
    cr_log_info("%s: threshold %.6f: %d of %d images' passes decide at different heads", json, T, disagree, NS);
    cr_assert(disagree >= 1, "no threshold separates an image's two passes");
    PairTrace *ti = calloc(1, sizeof *ti), *tp = calloc(1, sizeof *tp);
    SampleAccount ai, ap;
    float eps_i[NS * IMG], eps_p[NS * IMG];
    guided_eval(&n, T, scale, CFG_EXIT_INDEPENDENT, eps_i, ti, &ai);
    guided_eval(&n, T, scale, CFG_EXIT_PAIRED, eps_p, tp, &ap);
    GuidedRows *gr = calloc(1, sizeof *gr);
    guided_rows(&n, gr);
    float *g = fzeros(2 * NS * IMG), *full = fzeros(2 * NS * IMG), want[IMG];
    for (int b = 0; b < NS; b++) {
        int ec = exit_of(s, L, b, T), eu = exit_of(s, L, NS + b, T), e = ec > eu ? ec : eu;
        int64_t id = n.ids[b];
        cr_expect_eq(traced_exit(ti, id, 0, 0), ec, "independent, image %d: conditional pass", b);
        cr_expect_eq(traced_exit(ti, id, 1, 0), eu, "independent, image %d: unconditional pass", b);
        cr_expect_eq(traced_exit(tp, id, 0, 0), e, "paired, image %d: conditional pass not at block %d", b, e);
        cr_expect_eq(traced_exit(tp, id, 1, 0), e, "paired, image %d: unconditional pass not at block %d", b, e);
        /* the paired eps is the guidance formula on block e's two predictions */
        probe_rows_full(&n, gr->x, gr->t, rows_cond(&n, gr->y, gr->context, 2 * NS), 2 * NS, NULL,
                        e < L - 1 ? e : 0, g, full);
        const float *src = e < L - 1 ? g : full;
        for (int j = 0; j < IMG; j++)
            want[j] = (float)((1 + scale) * src[b * IMG + j] - scale * src[(NS + b) * IMG + j]);
        double err = rel_l2(eps_p + b * IMG, want, IMG);
        cr_expect(err < 1e-5, "paired, image %d: eps is not block %d's guided prediction (rel. error %g)", b, e, err);
    }
    cr_expect(ap.blocks_run > ai.blocks_run, "paired passes ran %lld blocks, independent %lld", (long long)ap.blocks_run,
              (long long)ai.blocks_run);
    cr_log_info("%s: one evaluation: blocks run independent %lld, paired %lld of %d", json, (long long)ai.blocks_run,
                (long long)ap.blocks_run, 2 * NS * L);
    free(g);
    free(full);
    free(gr);
    free(ti);
    free(tp);
    free(s);
    net_destroy(&n);
}

Test(deediff, paired_guidance_exits_leave_at_the_later_of_the_two_decisions)
{
    expect_paired_exits(TINY_COND);
    expect_paired_exits(TINY_T2I);
}

/* a whole sampling run under paired exits: in every evaluation both passes
   of every image left at the same block; at thresholds 0 and 1 the pairing
   changes nothing, bit for bit */
Test(deediff, paired_guidance_exits_in_a_sampling_run_and_at_the_limits)
{
    Net n;
    net_create(&n, TINY_COND, 1, NULL, 0);
    int distinct;
    double T = net_threshold(&n, 1, &distinct);
    SamplerConfig sc = sampler(SAMPLER_DPM, 6, 7);
    PairTrace *tr = calloc(1, sizeof *tr);
    SampleAccount acc = {.record = trace_pair, .record_user = tr};
    NoisePredictor *p = method_predictor(n.me, &n.ctx, &n.m, 2 * NS, SCHEDULE_VPSDE, T, &acc);
    CfgPredictor g;
    guide(&g, &n, p, 0.9, CFG_EXIT_PAIRED);
    cr_assert_eq(g.base.max_batch, NS, "paired guidance takes half the inner batch");
    float out[NS * IMG];
    sample_rows(&n, &g.base, &sc, 0, NS, out);
    cr_assert_eq(tr->n, 2 * NS * sampler_num_evals(&sc));
    for (int e = 0; e < sampler_num_evals(&sc); e++)
        for (int b = 0; b < NS; b++)
            cr_expect_eq(traced_exit(tr, n.ids[b], 0, e), traced_exit(tr, n.ids[b], 1, e),
                         "evaluation %d, image %d: the two passes left at different blocks", e, b);
    cr_expect(distinct_exits(&acc, n.L) >= 2, "every pair left at the same block");
    cfg_predictor_destroy(&g, &n.ctx);
    method_predictor_free(n.me, &n.ctx, p);
    /* the limits: independent and paired give the same bits */
    const double limits[2] = {0, 1};
    for (int k = 0; k < 2; k++) {
        float a[NS * IMG], b[NS * IMG];
        CfgExit modes[2] = {CFG_EXIT_INDEPENDENT, CFG_EXIT_PAIRED};
        float *outs[2] = {a, b};
        for (int m = 0; m < 2; m++) {
            SampleAccount ac = {0};
            NoisePredictor *q = method_predictor(n.me, &n.ctx, &n.m, 2 * NS, SCHEDULE_VPSDE, limits[k], &ac);
            CfgPredictor gq;
            guide(&gq, &n, q, 0.9, modes[m]);
            sample_rows(&n, &gq.base, &sc, 0, NS, outs[m]);
            cr_expect_eq(ac.exits[limits[k] == 0 ? n.L - 1 : 0], ac.image_evals);
            cfg_predictor_destroy(&gq, &n.ctx);
            method_predictor_free(n.me, &n.ctx, q);
        }
        cr_expect(memcmp(a, b, sizeof a) == 0, "threshold %g: paired and independent exits differ", limits[k]);
    }
    free(tr);
    net_destroy(&n);
}
