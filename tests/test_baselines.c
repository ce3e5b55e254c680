/*
 * test_baselines.c: the paper's baselines as Methods (baselines/): BERxiT,
 * CALM (calm, calm-meta) and the static exit.
 *   - the rules' arithmetic (exit_rules.h) on constructed values: BERxiT's
 *     alternation, CALM's anytime weights, batch rule and meta label, the
 *     static exit's block (CALM's saturation is an op: ops_core/
 *     row_cosine_distance);
 *   - gradients against finite differences: the pooled probe (BERxiT's
 *     LTE, calm-meta's classifier) for its weights and its input, and each
 *     method's training step (calm, static: every parameter and the
 *     backbone's; berxit: its LTE on odd and even steps; calm-meta: its
 *     classifier, which trains only with the backbone frozen);
 *   - BERxiT's alternation on real gradients: even steps reach the
 *     backbone's tail and not the heads, odd steps the heads and not the tail;
 *   - each exit rule on a tiny network's real hidden states: the scores
 *     recomputed on the host from a full forward decide each image's exit,
 *     which the method's predictor must reproduce, with head i's prediction
 *     for the images leaving after block i (CALM: also its batch rule);
 *   - files: the static exit on DeeDiff's heads, refused on a plain backbone,
 *     calm-meta taking CALM's heads from a calm model file.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../baselines/exit_rules.h"
#include "../baselines/pooled_probe.h"
#include "../kernels/errors.h"
#include "../model/exit_heads.h"
#include "../model/method.h"
#include "support/exit_scores.h"
#include "support/float_buffers.h"
#include "support/gradcheck.h"
#include "support/method_joint.h"
#include "support/temp_dir.h"
#include "support/tiny_uvit.h"

/* 5 blocks (training, gradient checks) and 7 blocks (exit rules) */
#define TINY "{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,\"embed_dim\":8,\"depth\":4,\"num_heads\":2," \
             "\"mlp_ratio\":2,\"conv\":true}"
#define TINY7 "{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,\"embed_dim\":8,\"depth\":6,\"num_heads\":2," \
              "\"mlp_ratio\":2,\"conv\":true}"
#define IMG (2 * 8 * 8)
#define GB 3   /* a training batch */
#define NS 6   /* a sampling batch */

/* ---- shared helpers ---------------------------------------------------------------- */

static int param_index(const ParamInfo *params, int num_params, const char *name)
{
    for (int i = 0; i < num_params; i++)
        if (!strcmp(params[i].name, name)) return i;
    return -1;
}

static int starts_with(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

static double max_abs(const float *x, size_t n)
{
    double m = 0;
    for (size_t k = 0; k < n; k++) m = fmax(m, fabs(x[k]));
    return m;
}

static Tensor img4(float *x, int rows) { return tensor4(x, DT_F32, rows, 2, 8, 8); }

/* ---- 1. the rules' arithmetic -------------------------------------------------------- */

Test(baselines_rules, berxit_even_steps_train_the_final_output_odd_steps_the_exits)
{
    cr_expect_eq(berxit_step_is_final(1), 0);
    cr_expect_eq(berxit_step_is_final(2), 1);
    cr_expect_eq(berxit_step_is_final(0), 1);
    cr_expect_eq(berxit_step_is_final(3), 0);
    cr_expect_eq(berxit_step_is_final(4), 1);
    cr_expect_eq(berxit_step_is_final(5000001), 0);
    cr_expect_eq(berxit_step_is_final((int64_t)1 << 40), 1);
}

Test(baselines_rules, calm_anytime_weights_grow_with_depth_and_sum_to_one)
{
    float w[UVIT_MAX_BLOCKS];
    float wf = calm_anytime_weights(5, w);
    for (int i = 0; i < 4; i++) cr_expect(fabsf(w[i] - (float)(i + 1) / 15.0f) < 1e-7f, "w[%d] = %g", i, w[i]);
    cr_expect(fabsf(wf - 5.0f / 15.0f) < 1e-7f, "final %g", wf);
    for (int L = 1; L <= 13; L++) {
        wf = calm_anytime_weights(L, w);
        double sum = wf;
        for (int i = 0; i < L - 1; i++) {
            sum += w[i];
            if (i > 0) cr_expect(w[i] > w[i - 1], "L %d: w[%d] not above w[%d]", L, i, i - 1);
        }
        cr_expect(fabs(sum - 1) < 1e-6, "L %d: the weights sum to %.9g", L, sum);
        cr_expect(L == 1 || wf > w[L - 2], "L %d: the final output does not weigh most", L);
    }
}

Test(baselines_rules, calm_batch_rule_gives_every_image_the_largest_score)
{
    float s[5] = {0.1f, 0.7f, 0.3f, -0.2f, 0.69f};
    calm_batch_rule(s, 5);
    for (int b = 0; b < 5; b++) cr_expect_eq(s[b], 0.7f, "score %d: %g", b, s[b]);
    float first[3] = {0.9f, 0.2f, 0.4f};
    calm_batch_rule(first, 3);
    for (int b = 0; b < 3; b++) cr_expect_eq(first[b], 0.9f);
    float one = 0.25f;
    calm_batch_rule(&one, 1);
    cr_expect_eq(one, 0.25f);
}

Test(baselines_rules, calm_meta_label_is_consistent_up_to_the_tolerance_inclusive)
{
    /* differences of +-0.5: mean square exactly 0.25 */
    float final[4] = {1, 2, -1, 0.5f}, g[4];
    for (int j = 0; j < 4; j++) g[j] = final[j] + (j % 2 ? -0.5f : 0.5f);
    cr_expect_eq(calm_meta_label(g, final, 4, 0.3), 1, "within the tolerance");
    cr_expect_eq(calm_meta_label(g, final, 4, 0.25), 1, "at the tolerance (<=)");
    cr_expect_eq(calm_meta_label(g, final, 4, 0.2499), 0, "over the tolerance");
    cr_expect_eq(calm_meta_label(final, final, 4, 0), 1, "equal predictions at tolerance 0");
}

Test(baselines_rules, static_exit_block_is_l_minus_1_minus_round_tl_clamped)
{
    cr_expect_eq(static_exit_block(0, 13), 12, "T 0: the full network");
    cr_expect_eq(static_exit_block(1, 13), 0, "T 1: the first exit");
    cr_expect_eq(static_exit_block(0.5, 13), 5, "T 0.5: 13 - 1 - round(6.5)");
    cr_expect_eq(static_exit_block(0.01, 13), 12, "T 0.01: round(0.13) = 0");
    cr_expect_eq(static_exit_block(0.3, 13), 8, "T 0.3: 12 - round(3.9)");
    cr_expect_eq(static_exit_block(2, 13), 0, "T 2 clamped");
    cr_expect_eq(static_exit_block(-1, 13), 12, "T -1 clamped");
    for (int L = 1; L <= 13; L++) {
        int last = L - 1;
        for (int k = 0; k <= 150; k++) {
            double T = k / 100.0;
            int b = static_exit_block(T, L);
            cr_expect(b >= 0 && b <= L - 1, "L %d, T %g: block %d", L, T, b);
            cr_expect(b <= last, "L %d, T %g: the block grows with T", L, T);
            last = b;
        }
    }
}

/* ---- 2. gradients: the pooled probe ----------------------------------------------------- */

typedef struct {
    Ctx ctx;
    Method *me;
    PooledProbe p;
    int K;
    int64_t T, D;
    float *hidden, *pooled, *z;
} ProbeCase;

static void probe_forward(void *user)
{
    ProbeCase *c = user;
    pooled_probe_forward(&c->p, c->me, &c->ctx, tensor3(c->hidden, DT_F32, GB, c->T, c->D),
                         tensor2(c->pooled, DT_F32, GB, c->D), tensor2(c->z, DT_F32, GB, c->K));
}

static void check_probe(int K)
{
    ProbeCase c = {.K = K};
    ctx_init_cpu(&c.ctx, 1);
    UViTConfig cfg;
    cr_assert_eq(uvit_config_parse(&cfg, TINY, "test"), 0, "%s", err_msg());
    c.T = uvit_num_tokens(&cfg);
    c.D = cfg.embed_dim;
    /* a method of no kind of its own holding the probe alone */
    cr_assert_eq(method_new(&c.me, "none"), 0);
    c.me->cfg = cfg;
    pooled_probe_build(&c.p, c.me, &cfg, "probe", K);
    cr_assert_eq(c.me->num_params, 2);
    cr_expect_str_eq(c.me->params[c.p.w].name, "method.probe.weight");
    cr_expect_str_eq(c.me->params[c.p.b].name, "method.probe.bias");
    cr_expect(c.me->params[c.p.w].ndim == 2 && c.me->params[c.p.w].shape[0] == K &&
              c.me->params[c.p.w].shape[1] == c.D && c.me->params[c.p.b].numel == (size_t)K);
    c.me->weights = ctx_alloc(&c.ctx, c.me->total * sizeof(float));
    ctx_zero(&c.ctx, tensor1(c.me->weights, DT_F32, (int64_t)c.me->total));
    pooled_probe_init(&c.p, c.me, &c.ctx, 4);
    const ParamInfo *pw = &c.me->params[c.p.w], *pb = &c.me->params[c.p.b];
    cr_expect(max_abs(c.me->weights + pb->offset, pb->numel) == 0, "the bias starts at 0");
    cr_expect(max_abs(c.me->weights + pw->offset, pw->numel) > 0, "the weights start at 0");
    move_params(c.me->params, c.me->num_params, c.me->weights, 0.5f, 60);
    method_enable_grads(c.me, &c.ctx);

    int64_t nh = GB * c.T * c.D;
    c.hidden = fvec(nh, -1.5f, 1.5f, 61);
    c.pooled = fzeros(GB * c.D);
    c.z = fzeros(GB * K);
    probe_forward(&c);
    /* the forward against its definition */
    const float *w = c.me->weights + pw->offset, *bias = c.me->weights + pb->offset;
    for (int b = 0; b < GB; b++)
        for (int k = 0; k < K; k++) {
            double z = bias[k];
            for (int64_t d = 0; d < c.D; d++) {
                double mean = 0;
                for (int64_t t = 0; t < c.T; t++) mean += c.hidden[(b * c.T + t) * c.D + d];
                z += w[k * c.D + d] * mean / (double)c.T;
            }
            cr_expect(fabs(c.z[b * K + k] - z) < 1e-5, "z[%d,%d] = %g, expected %g", b, k, c.z[b * K + k], z);
        }

    /* the backward for dz = r; d_hidden starts non-zero: the probe adds to it */
    float *r = fvec(GB * K, -1, 1, 62), *dh = fvec(nh, -0.5f, 0.5f, 63), *dh0 = fzeros(nh);
    float *d_pooled = fzeros(GB * c.D);
    memcpy(dh0, dh, (size_t)nh * sizeof(float));
    pooled_probe_backward(&c.p, c.me, &c.ctx, tensor2(c.pooled, DT_F32, GB, c.D), tensor2(r, DT_F32, GB, K),
                          tensor3(dh, DT_F32, GB, c.T, c.D), tensor2(d_pooled, DT_F32, GB, c.D));
    for (int64_t k = 0; k < nh; k++) dh[k] -= dh0[k];
    GradCheck g = {c.z, GB * K, r, probe_forward, &c};
    float *grads = fzeros((int64_t)c.me->total);
    memcpy(grads, c.me->grads, c.me->total * sizeof(float));
    double ew = gradcheck_max_error(&g, c.me->weights + pw->offset, (int64_t)pw->numel, grads + pw->offset, 1e-2f, 64);
    double eb = gradcheck_max_error(&g, c.me->weights + pb->offset, (int64_t)pb->numel, grads + pb->offset, 1e-2f, 64);
    double eh = gradcheck_max_error(&g, c.hidden, nh, dh, 1e-2f, 60);
    cr_expect(ew < 1e-3, "K %d: weight gradient error %g", K, ew);
    cr_expect(eb < 1e-3, "K %d: bias gradient error %g", K, eb);
    cr_expect(eh < 1e-3, "K %d: hidden gradient error %g", K, eh);
    cr_expect(max_abs(dh, (size_t)nh) > 1e-3, "K %d: no gradient reached the hidden state", K);

    /* without d_hidden (both methods detach the state): the same w, b gradients */
    method_zero_grads(c.me, &c.ctx);
    pooled_probe_backward(&c.p, c.me, &c.ctx, tensor2(c.pooled, DT_F32, GB, c.D), tensor2(r, DT_F32, GB, K),
                          tensor_none(), tensor_none());
    cr_expect(memcmp(grads, c.me->grads, c.me->total * sizeof(float)) == 0,
              "K %d: the probe's gradients depend on d_hidden being asked for", K);
    /* a second backward accumulates */
    pooled_probe_backward(&c.p, c.me, &c.ctx, tensor2(c.pooled, DT_F32, GB, c.D), tensor2(r, DT_F32, GB, K),
                          tensor_none(), tensor_none());
    for (size_t k = 0; k < pw->numel; k++) {
        float once = grads[pw->offset + k], twice = c.me->grads[pw->offset + k];
        cr_expect(fabsf(twice - 2 * once) <= 1e-6f * (1 + fabsf(once)), "K %d: w[%zu]: %g after two, %g after one",
                  K, k, twice, once);
    }
    cr_expect_eq(pooled_probe_macs(&cfg, K), (double)c.D * K);

    free(r);
    free(dh);
    free(dh0);
    free(d_pooled);
    free(grads);
    free(c.hidden);
    free(c.pooled);
    free(c.z);
    method_free(c.me, &c.ctx);
    ctx_destroy(&c.ctx);
}

Test(baselines_grad, pooled_probe_k1_gradients_of_weights_bias_and_hidden)
{
    check_probe(1);
}

Test(baselines_grad, pooled_probe_k2_gradients_of_weights_bias_and_hidden)
{
    check_probe(2);
}

/* ---- 2. gradients: each method's training step -------------------------------------------- */

/* checks the gradients of every method parameter whose name starts with
   `which` (NULL: all) and, with backbone, every backbone parameter's */
static void check_step(const char *kind, const char *const *options, int n_options, int train_backbone,
                       int64_t step, const char *which, int backbone, double tol)
{
    MethodJoint j;
    method_joint_setup(&j, TINY, kind, options, n_options, train_backbone, step);
    method_joint_step(&j);
    j.base = j.last.loss;
    float one = 1;
    GradCheck g = {&j.loss, 1, &one, method_joint_step, &j};
    /* the analytic gradients of the unperturbed point (each rerun zeroes them) */
    float *mg = fzeros((int64_t)j.me->total), *bg = fzeros((int64_t)j.m.total);
    memcpy(mg, j.me->grads, j.me->total * sizeof(float));
    memcpy(bg, j.m.grads, j.m.total * sizeof(float));
    int checked = 0;
    double worst = 0, largest = 0;
    for (int i = 0; i < j.me->num_params; i++) {
        const ParamInfo *p = &j.me->params[i];
        if (which && !starts_with(p->name, which)) continue;
        double err = gradcheck_max_error(&g, j.me->weights + p->offset, (int64_t)p->numel, mg + p->offset, 3e-3f, 5);
        cr_expect(err < tol, "%s step %lld: %s: gradient error %g", kind, (long long)step, p->name, err);
        worst = fmax(worst, err);
        largest = fmax(largest, max_abs(mg + p->offset, p->numel));
        checked++;
    }
    cr_assert(checked > 0, "%s: no parameter named %s*", kind, which ? which : "");
    /* the check must not pass on gradients too small to tell apart from 0 */
    cr_expect(largest > 10 * tol, "%s: the largest gradient checked is %g", kind, largest);
    for (int i = 0; backbone && i < j.m.num_params; i++) {
        const ParamInfo *p = &j.m.params[i];
        double err = gradcheck_max_error(&g, j.m.weights + p->offset, (int64_t)p->numel, bg + p->offset, 1e-2f, 4);
        cr_expect(err < 5e-3, "%s: backbone %s: gradient error %g", kind, p->name, err);
        worst = fmax(worst, err);
    }
    cr_log_info("%s step %lld %s: %d method parameters%s, worst error %g, largest gradient %g", kind,
                (long long)step, which ? which : "all", checked, backbone ? " and the backbone" : "", worst, largest);
    free(mg);
    free(bg);
    method_joint_teardown(&j);
}

/* CALM's anytime loss and the static exit's layer-wise loss have no detached
   part: every gradient, the heads' and the backbone's, is the loss's derivative */
Test(baselines_grad, calm_anytime_loss_gradients_all_parameters)
{
    check_step("calm", NULL, 0, 1, 1, NULL, 1, 2e-3);
}

Test(baselines_grad, static_layer_loss_gradients_all_parameters)
{
    check_step("static", NULL, 0, 1, 1, NULL, 1, 2e-3);
}

Test(baselines_grad, static_layer_loss_gradients_with_one_shared_head)
{
    static const char *const shared[] = {"heads", "shared"};
    check_step("static", shared, 2, 1, 1, "method.head.", 0, 2e-3);
}

/* BERxiT's LTE learns y_i = mean tanh|g_i - eps|, a target held fixed
   (detached) in the loss: the heads' gradients leave out the LTE loss's
   dependence on g_i through y_i, so finite differences over the heads (or
   the backbone feeding them) would not match. The LTE's own parameters do
   not move the target: there the step's gradient is the loss's derivative,
   on the final-output (even) steps and on the exits' (odd) steps alike. */
Test(baselines_grad, berxit_lte_gradients_on_odd_and_even_steps)
{
    check_step("berxit", NULL, 0, 1, 1, "method.lte.", 0, 1e-3);
    check_step("berxit", NULL, 0, 1, 2, "method.lte.", 0, 1e-3);
}

/* calm-meta trains with the backbone frozen; its labels are a step function
   of g_i (flat almost everywhere, and the classifier does not move g_i), so
   the classifier's gradients are the loss's derivative */
Test(baselines_grad, calm_meta_classifier_gradients_with_the_backbone_frozen)
{
    check_step("calm-meta", NULL, 0, 0, 1, "method.meta.", 0, 1e-3);
}

Test(baselines_grad, calm_meta_refuses_to_train_the_backbone)
{
    MethodJoint j;
    method_joint_setup(&j, TINY, "calm-meta", NULL, 0, 1, 1);
    cr_expect_eq(method_joint_run(&j), -1);
    cr_expect(strstr(err_msg(), "freeze_backbone") != NULL, "%s", err_msg());
    method_joint_teardown(&j);
}

/* ---- 3. BERxiT's alternation on real gradients ----------------------------------------------- */

typedef struct {
    double heads, lte, tail, blocks;   /* the largest |gradient| of each group */
} GradGroups;

static int is_tail(const char *name)
{
    static const char *const tail[] = {"norm.weight", "norm.bias", "decoder_pred.weight", "decoder_pred.bias",
                                       "final_layer.weight", "final_layer.bias"};
    for (size_t k = 0; k < sizeof tail / sizeof tail[0]; k++)
        if (!strcmp(name, tail[k])) return 1;
    return 0;
}

static GradGroups grad_groups(const MethodJoint *j)
{
    GradGroups g = {0};
    int tail = 0;
    for (int i = 0; i < j->me->num_params; i++) {
        const ParamInfo *p = &j->me->params[i];
        double m = max_abs(j->me->grads + p->offset, p->numel);
        if (starts_with(p->name, "method.heads.")) g.heads = fmax(g.heads, m);
        else if (starts_with(p->name, "method.lte.")) g.lte = fmax(g.lte, m);
        else cr_assert_fail("berxit: unexpected parameter %s", p->name);
    }
    for (int i = 0; i < j->m.num_params; i++) {
        const ParamInfo *p = &j->m.params[i];
        double m = max_abs(j->m.grads + p->offset, p->numel);
        if (is_tail(p->name)) g.tail = fmax(g.tail, m), tail++;
        else g.blocks = fmax(g.blocks, m);
    }
    cr_assert_eq(tail, 6, "the backbone's tail: %d of its 6 parameters found", tail);
    return g;
}

Test(baselines, berxit_even_steps_train_the_final_output_odd_steps_the_exits)
{
    MethodJoint j;
    method_joint_setup(&j, TINY, "berxit", NULL, 0, 1, 2);
    /* even: L_simple + L_lte */
    method_joint_step(&j);
    GradGroups g = grad_groups(&j);
    cr_expect(g.heads == 0, "even step: the heads got gradient %g", g.heads);
    cr_expect(g.tail > 1e-4, "even step: the tail got no gradient (%g)", g.tail);
    cr_expect(g.blocks > 1e-4, "even step: the blocks got no gradient (%g)", g.blocks);
    cr_expect(g.lte > 1e-4, "even step: the LTE got no gradient (%g)", g.lte);
    cr_expect(j.last.loss_layers == 0 && j.last.loss_u > 0 && j.last.loss_simple > 0);
    cr_expect(fabs(j.last.loss - (j.last.loss_simple + j.last.loss_u)) < 1e-9, "even step: loss %g", j.last.loss);
    /* odd: sum_i mse_i + L_lte */
    j.step = 1;
    method_joint_step(&j);
    g = grad_groups(&j);
    cr_expect(g.tail == 0, "odd step: the tail got gradient %g", g.tail);
    cr_expect(g.heads > 1e-4, "odd step: the heads got no gradient (%g)", g.heads);
    cr_expect(g.blocks > 1e-4, "odd step: the blocks got no gradient (%g)", g.blocks);
    cr_expect(g.lte > 1e-4, "odd step: the LTE got no gradient (%g)", g.lte);
    cr_expect(j.last.loss_layers > 0 && j.last.loss_u > 0);
    cr_expect(fabs(j.last.loss - (j.last.loss_layers + j.last.loss_u)) < 1e-9, "odd step: loss %g", j.last.loss);
    method_joint_teardown(&j);
}

/* ---- 4. each exit rule on a tiny network's hidden states ----------------------------------------
 * A tiny U-ViT (7 blocks) and a method, every weight of both moved away
 * from its init. A full forward keeps every block's hidden state h_i; on
 * the host each image's score at every block is recomputed as the rule
 * defines it, a threshold is read off halfway between two scores (no image
 * on the edge of a decision), and the exit each image must take follows.
 * The method's predictor on the same x, t must send every image there,
 * with head i's prediction on the full forward's h_i.                    */

typedef struct {
    Ctx ctx;
    UViT m;
    Method *me;
    int L;
    float x[NS * IMG];
    double t[NS];
    int64_t ids[NS];
    /* the full forward */
    float out[NS * IMG];                   /* the backbone's prediction */
    float *g;                              /* [(L-1) * NS * IMG] head i on h_i */
    float s[NS * UVIT_MAX_BLOCKS];         /* s[b * L + i]: the rule's score of image b after block i */
} Net;

/* the method's head set as exit_heads_build lays it out: built on a scratch
   method, whose names and places must be the method's own */
static void head_set(const Method *me, ExitHeadSet *hs)
{
    Method *scratch;
    cr_assert_eq(method_new(&scratch, "none"), 0);
    scratch->cfg = me->cfg;
    exit_heads_build(hs, scratch, &me->cfg, 0);
    cr_assert(scratch->num_params <= me->num_params);
    for (int i = 0; i < scratch->num_params; i++) {
        cr_assert_str_eq(me->params[i].name, scratch->params[i].name);
        cr_assert_eq(me->params[i].offset, scratch->params[i].offset, "%s", me->params[i].name);
    }
    method_free(scratch, NULL);
}

static void net_create(Net *n, const char *kind, const char *const *options, int n_options)
{
    memset(n, 0, sizeof *n);
    ctx_init_cpu(&n->ctx, 1);
    tiny_uvit_create(&n->m, &n->ctx, TINY7, 5);
    move_params(n->m.params, n->m.num_params, n->m.weights, 0.1f, 31);
    cr_assert_eq(method_new(&n->me, kind), 0, "%s", err_msg());
    for (int i = 0; i < n_options; i += 2)
        cr_assert_eq(method_set_option(n->me, options[i], options[i + 1]), 0, "%s", err_msg());
    method_create_params(n->me, &n->ctx, &n->m);
    method_init_from_backbone(n->me, &n->ctx, &n->m, 9);
    move_params(n->me->params, n->me->num_params, n->me->weights, 0.3f, 32);
    n->L = n->m.cfg.num_blocks;
    cr_assert_eq(n->L, 7);
    fill_uniform(n->x, NS * IMG, -1.5f, 1.5f, 33);
    for (int b = 0; b < NS; b++) {
        n->t[b] = 0.04 + 0.92 * b / (NS - 1);
        n->ids[b] = 100 + 7 * b;
    }
    n->g = fzeros((int64_t)(n->L - 1) * NS * IMG);
}

static void net_destroy(Net *n)
{
    free(n->g);
    method_free(n->me, &n->ctx);
    uvit_destroy(&n->m, &n->ctx);
    ctx_destroy(&n->ctx);
}

/* mean over the T tokens of image b's hidden state [T,D] -> pooled[D] */
static void mean_tokens(const float *h, int64_t T, int64_t D, double *pooled)
{
    for (int64_t d = 0; d < D; d++) pooled[d] = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t d = 0; d < D; d++) pooled[d] += h[t * D + d];
    for (int64_t d = 0; d < D; d++) pooled[d] /= (double)T;
}

/* probe k's logit w[k] . pooled + b[k] from the method's weights */
static double probe_logit(const Method *me, const char *name, int k, const double *pooled, int64_t D)
{
    char wn[64], bn[64];
    snprintf(wn, sizeof wn, "method.%s.weight", name);
    snprintf(bn, sizeof bn, "method.%s.bias", name);
    int wi = param_index(me->params, me->num_params, wn), bi = param_index(me->params, me->num_params, bn);
    cr_assert(wi >= 0 && bi >= 0, "%s: no %s probe", me->kind->name, name);
    const float *w = me->weights + me->params[wi].offset, *b = me->weights + me->params[bi].offset;
    double z = b[k];
    for (int64_t d = 0; d < D; d++) z += w[k * D + d] * pooled[d];
    return z;
}

/* a full forward of the net's images, every head's prediction on its
   block's hidden state, and every image's score at every exit as the
   method's rule defines it */
static void net_full_forward(Net *n)
{
    Ctx *ctx = &n->ctx;
    const UViTConfig *cfg = &n->m.cfg;
    const char *kind = n->me->kind->name;
    UViTActs *a = uvit_acts_create(ctx, &n->m, NS, 0);
    float net_t[NS];
    /* the network's time input as the predictor makes it (uvit_network_times) */
    for (int b = 0; b < NS; b++) net_t[b] = (float)sampler_network_time(SCHEDULE_VPSDE, n->t[b]);
    uvit_forward(ctx, &n->m, a, img4(n->x, NS), tensor1(net_t, DT_F32, NS), cond_none(), img4(n->out, NS));
    ExitHeadSet hs;
    head_set(n->me, &hs);
    ExitActs e = {0};
    exit_acts_alloc(ctx, &e, cfg, NS);
    int64_t T = uvit_num_tokens(cfg), D = cfg->embed_dim;
    double pooled[64];
    cr_assert(D <= 64);
    for (int i = 0; i < n->L - 1; i++) {
        ExitHead h = exit_heads_view(&hs, n->me, n->me->weights, i);
        exit_head_norm(ctx, cfg, &h, &e, uvit_hidden(a, i));
        exit_head_decode(ctx, cfg, &h, &e, e.ln, NS, img4(n->g + (size_t)i * NS * IMG, NS));
        Tensor hid = uvit_hidden(a, i), prev = uvit_hidden(a, i - 1);
        cr_assert(hid.dtype == DT_F32 && hid.shape[0] == NS && hid.shape[1] == T && hid.shape[2] == D);
        for (int b = 0; b < NS; b++) {
            const float *hb = (const float *)hid.data + (size_t)b * T * D;
            const float *pb = (const float *)prev.data + (size_t)b * T * D;
            double score;
            if (!strcmp(kind, "berxit")) {   /* sigmoid(w . mean_tokens(h_i) + b) */
                mean_tokens(hb, T, D, pooled);
                score = 1 / (1 + exp(-probe_logit(n->me, "lte", 0, pooled, D)));
            } else if (!strcmp(kind, "calm-meta")) {   /* 1 - softmax(z)[1] = sigmoid(z0 - z1) */
                mean_tokens(hb, T, D, pooled);
                double z0 = probe_logit(n->me, "meta", 0, pooled, D), z1 = probe_logit(n->me, "meta", 1, pooled, D);
                score = 1 / (1 + exp(z1 - z0));
            } else if (!strcmp(kind, "calm")) {   /* 1 - cos(h_{i-1}, h_i) over [T*D] */
                double pc = 0, pp = 0, cc = 0;
                for (int64_t k = 0; k < T * D; k++) {
                    pc += (double)pb[k] * hb[k];
                    pp += (double)pb[k] * pb[k];
                    cc += (double)hb[k] * hb[k];
                }
                score = 1 - pc / sqrt(pp * cc);
            } else {
                score = NAN;   /* the static exit scores nothing of the state */
            }
            n->s[b * n->L + i] = (float)score;
        }
    }
    exit_acts_free(ctx, &e);
    uvit_acts_destroy(ctx, a);
}

/* the batch rule's exit: the first block where every image's score is below T */
static int batch_exit_of(const float *s, int L, double T)
{
    for (int i = 0; i < L - 1; i++) {
        int all = 1;
        for (int b = 0; b < NS; b++) all &= s[b * L + i] < T;
        if (all) return i;
    }
    return L - 1;
}

/* what the predictor's account recorded per image */
typedef struct {
    const int64_t *ids;
    int calls[NS], exit_block[NS];
    float score[NS];
} ExitRecord;

static void record_exit(void *user, int64_t id, int eval, double t, int exit_block, float score)
{
    ExitRecord *r = user;
    for (int b = 0; b < NS; b++)
        if (r->ids[b] == id) {
            r->calls[b]++;
            r->exit_block[b] = exit_block;
            r->score[b] = score;
            return;
        }
    cr_assert_fail("the account recorded an unknown image id %lld", (long long)id);
    (void)eval, (void)t;
}

/* one predictor call on the net's images at threshold T: every image leaves
   where expected[b] says, with head i's prediction (the backbone's when it
   ran every block); want_score[b], when given, is the score recorded */
static void expect_exits(Net *n, double T, const int *expected, const float *want_score)
{
    ExitRecord rec = {.ids = n->ids};
    SampleAccount acc = {.record = record_exit, .record_user = &rec};
    NoisePredictor *p = method_predictor(n->me, &n->ctx, &n->m, NS, SCHEDULE_VPSDE, T, &acc);
    cr_assert_not_null(p);
    float out[NS * IMG];
    int rc = p->predict(p, &n->ctx, img4(n->x, NS), n->t, cond_none(), n->ids, 0, img4(out, NS));
    cr_assert_eq(rc, 0, "%s", err_msg());
    const char *kind = n->me->kind->name;
    int64_t blocks = 0;
    for (int b = 0; b < NS; b++) {
        cr_assert_eq(rec.calls[b], 1, "%s: image %d recorded %d times", kind, b, rec.calls[b]);
        int e = rec.exit_block[b];
        cr_expect_eq(e, expected[b], "%s, threshold %g: image %d left after block %d, expected %d", kind, T, b, e,
                     expected[b]);
        if (e != expected[b]) continue;
        blocks += e + 1;
        const float *want = e == n->L - 1 ? n->out + b * IMG : n->g + ((size_t)e * NS + b) * IMG;
        double err = rel_l2(out + b * IMG, want, IMG);
        cr_expect(err <= 1e-5, "%s: image %d leaving after block %d: not %s (rel. error %g)", kind, b, e,
                  e == n->L - 1 ? "the backbone's prediction" : "its head's prediction", err);
        if (want_score)
            cr_expect(fabsf(rec.score[b] - want_score[b]) < 1e-5f, "%s: image %d: score %g recorded, expected %g",
                      kind, b, rec.score[b], want_score[b]);
    }
    cr_expect(acc.image_evals == NS && acc.blocks_run == blocks, "%s: %lld evaluations, %lld blocks", kind,
              (long long)acc.image_evals, (long long)acc.blocks_run);
    method_predictor_free(n->me, &n->ctx, p);
}

/* a per-image rule: the threshold between two scores, each image's exit and
   its score there (at the last exit scored when it ran every block) */
static void expect_per_image_rule(const char *kind)
{
    Net n;
    net_create(&n, kind, NULL, 0);
    net_full_forward(&n);
    int distinct;
    double T = spread_threshold(n.s, n.L, NS, &distinct);
    cr_assert(distinct >= 2, "%s: no threshold splits the images over two exits", kind);
    int expected[NS];
    float score[NS];
    for (int b = 0; b < NS; b++) {
        expected[b] = exit_of(n.s, n.L, b, T);
        score[b] = n.s[b * n.L + (expected[b] < n.L - 1 ? expected[b] : n.L - 2)];
    }
    cr_log_info("%s: threshold %.6f: exits %d %d %d %d %d %d", kind, T, expected[0], expected[1], expected[2],
                expected[3], expected[4], expected[5]);
    expect_exits(&n, T, expected, score);
    net_destroy(&n);
}

Test(baselines, berxit_exits_where_the_lte_on_pooled_tokens_falls_below_the_threshold)
{
    expect_per_image_rule("berxit");
}

Test(baselines, calm_exits_where_the_state_saturates_per_image)
{
    expect_per_image_rule("calm");
}

Test(baselines, calm_meta_exits_where_the_classifier_is_confident)
{
    expect_per_image_rule("calm-meta");
}

/* CALM's batch rule: the batch leaves together at the first block where
   every image's score is below T (or runs the full network) */
Test(baselines, calm_batch_rule_all_leaves_together_when_every_image_is_confident)
{
    static const char *const all[] = {"batch_rule", "all"};
    Net n;
    net_create(&n, "calm", all, 2);
    net_full_forward(&n);
    /* candidate thresholds halfway between two scores 1e-4 apart: one where
       the batch leaves early, preferably where some image alone would leave
       at another block than the batch */
    int nv = 0;
    float v[NS * UVIT_MAX_BLOCKS];
    for (int b = 0; b < NS; b++)
        for (int i = 0; i < n.L - 1; i++) v[nv++] = n.s[b * n.L + i];
    qsort(v, (size_t)nv, sizeof *v, cmp_float);
    double T = -1;
    int best = -1;
    for (int k = 0; k + 1 < nv; k++) {
        if (v[k + 1] - v[k] < 1e-4f) continue;
        double c = 0.5 * ((double)v[k] + v[k + 1]);
        int e = batch_exit_of(n.s, n.L, c), differ = 0;
        if (e == n.L - 1) continue;
        for (int b = 0; b < NS; b++) differ += exit_of(n.s, n.L, b, c) != e;
        if (differ > best) best = differ, T = c;
    }
    cr_assert(T > 0, "calm: no threshold lets the batch leave before the last block");
    cr_expect(best > 0, "calm: at every threshold the images alone leave where the batch does");
    int e = batch_exit_of(n.s, n.L, T), expected[NS];
    float score[NS], worst = -INFINITY;
    for (int b = 0; b < NS; b++) worst = fmaxf(worst, n.s[b * n.L + e]);
    for (int b = 0; b < NS; b++) expected[b] = e, score[b] = worst;   /* each records the batch's score */
    cr_log_info("calm batch_rule=all: threshold %.6f: the batch leaves after block %d (%d images alone elsewhere)",
                T, e, best);
    expect_exits(&n, T, expected, score);
    /* at a threshold below every block's largest score the batch runs the full
       network, though some image alone would leave */
    float lowest_max = INFINITY, last_max = -INFINITY;
    for (int i = 0; i < n.L - 1; i++) {
        float m = -INFINITY;
        for (int b = 0; b < NS; b++) m = fmaxf(m, n.s[b * n.L + i]);
        lowest_max = fminf(lowest_max, m);
        if (i == n.L - 2) last_max = m;
    }
    double T2 = -1;
    for (int k = 0; k + 1 < nv && v[k + 1] <= lowest_max; k++)
        if (v[k + 1] - v[k] >= 1e-4f) T2 = 0.5 * ((double)v[k] + v[k + 1]);
    cr_expect(T2 > 0, "calm: no threshold between two scores below every block's largest");
    if (T2 > 0) {
        for (int b = 0; b < NS; b++) expected[b] = n.L - 1, score[b] = last_max;
        expect_exits(&n, T2, expected, score);
    }
    net_destroy(&n);
}

/* the probe hook (deediff analyze): after a full forward, head i's
   prediction on h_i for every image, and each image's score as its map */
static void expect_probe(const char *kind)
{
    Net n;
    net_create(&n, kind, NULL, 0);
    net_full_forward(&n);
    Ctx *ctx = &n.ctx;
    UViTActs *a = uvit_acts_create(ctx, &n.m, NS, 0);
    float net_t[NS], *g = fzeros(NS * IMG), *u = fzeros(NS * IMG);
    for (int b = 0; b < NS; b++) net_t[b] = (float)sampler_network_time(SCHEDULE_VPSDE, n.t[b]);
    uvit_forward(ctx, &n.m, a, img4(n.x, NS), tensor1(net_t, DT_F32, NS), cond_none(), img4(n.out, NS));
    cr_assert(method_has_probe(n.me), "%s has no probe", kind);
    for (int i = 0; i < n.L - 1; i++) {
        method_probe(n.me, ctx, &n.m, a, i, n.t, tensor1(net_t, DT_F32, NS), img4(g, NS), img4(u, NS));
        cr_expect(rel_l2(g, n.g + (size_t)i * NS * IMG, NS * IMG) < 1e-5, "%s block %d: g", kind, i);
        for (int b = 0; b < NS; b++) {
            float want = isnan(n.s[b * n.L + i]) ? 0.0f : n.s[b * n.L + i];   // static: 0 at the probed exit
            cr_expect(fabsf(u[b * IMG] - want) < 1e-5f && u[b * IMG + IMG - 1] == u[b * IMG],
                      "%s block %d image %d: map %g, score %g", kind, i, b, u[b * IMG], want);
        }
    }
    free(g);
    free(u);
    uvit_acts_destroy(ctx, a);
    net_destroy(&n);
}

Test(baselines, probe_gives_each_heads_prediction_and_the_rules_score_as_a_map)
{
    static const char *const kinds[] = {"berxit", "calm", "calm-meta", "static"};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) expect_probe(kinds[k]);
}

/* the static exit: every image after block k = static_exit_block(T, L) */
Test(baselines, static_exit_leaves_every_image_after_block_l_minus_1_minus_round_tl)
{
    Net n;
    net_create(&n, "static", NULL, 0);
    net_full_forward(&n);
    static const double thresholds[] = {0.9, 0.5, 0.3, 0.05};
    int seen[UVIT_MAX_BLOCKS] = {0};
    for (size_t k = 0; k < sizeof thresholds / sizeof thresholds[0]; k++) {
        int e = static_exit_block(thresholds[k], n.L), expected[NS];
        float score[NS];
        for (int b = 0; b < NS; b++) expected[b] = e, score[b] = e < n.L - 1 ? 0.0f : 1.0f;
        seen[e] = 1;
        expect_exits(&n, thresholds[k], expected, score);
    }
    /* 0.9 -> 0, 0.5 -> 2, 0.3 -> 4, 0.05 -> 6 (the full network) */
    cr_expect(seen[0] && seen[2] && seen[4] && seen[6]);
    net_destroy(&n);
}

/* ---- 5. files ------------------------------------------------------------------------------ */

#define DEEDIFF_FILE "results/weights/fmnist-deediff.safetensors"
#define PLAIN_FILE "results/weights/fmnist-uvit.safetensors"

static char dir[256];
static void files_setup(void) { temp_dir_make(dir, sizeof dir, "/tmp/deediff-baselines-XXXXXX"); }
static void files_teardown(void) { temp_dir_remove(dir); }
TestSuite(baselines_files, .init = files_setup, .fini = files_teardown, .timeout = 60);

Test(baselines_files, static_runs_on_a_deediff_model_files_heads)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    UViT m, md;
    Method *me, *dd;
    cr_assert_eq(method_load(DEEDIFF_FILE, "static", NULL, &ctx, &m, &me), 0, "%s", err_msg());
    cr_expect_str_eq(me->kind->name, "static");
    cr_assert_eq(method_load(DEEDIFF_FILE, NULL, NULL, &ctx, &md, &dd), 0, "%s", err_msg());
    cr_expect_str_eq(dd->kind->name, "deediff");
    /* every static parameter is DeeDiff's of the same name, bit for bit */
    cr_assert_eq(me->num_params, 6 * (m.cfg.num_blocks - 1));
    for (int i = 0; i < me->num_params; i++) {
        const ParamInfo *p = &me->params[i];
        cr_assert(starts_with(p->name, "method.heads."), "%s", p->name);
        int k = param_index(dd->params, dd->num_params, p->name);
        cr_assert(k >= 0, "deediff has no %s", p->name);
        cr_expect(dd->params[k].numel == p->numel &&
                      !memcmp(me->weights + p->offset, dd->weights + dd->params[k].offset, p->numel * sizeof(float)),
                  "%s differs from the file's", p->name);
    }
    cr_expect(!memcmp(m.weights, md.weights, m.total * sizeof(float)), "the backbones differ");
    method_free(me, &ctx);
    method_free(dd, &ctx);
    uvit_destroy(&m, &ctx);
    uvit_destroy(&md, &ctx);
    ctx_destroy(&ctx);
}

Test(baselines_files, static_on_a_plain_backbone_names_the_missing_head)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    UViT m;
    Method *me = (Method *)1;
    cr_expect_eq(method_load(PLAIN_FILE, "static", NULL, &ctx, &m, &me), -1);
    cr_expect_null(me);
    cr_expect(strstr(err_msg(), "method.heads.0") != NULL, "%s", err_msg());
    cr_expect(strstr(err_msg(), "plain backbone") != NULL, "%s", err_msg());
    ctx_destroy(&ctx);
}

Test(baselines_files, calm_meta_takes_the_heads_of_a_calm_model_file)
{
    Net n;
    net_create(&n, "calm", NULL, 0);
    Ctx *ctx = &n.ctx;
    /* a calm model file, as `deediff train` exports one */
    const char *path = temp_dir_path(dir, "calm.safetensors");
    StWriter *w = method_model_writer(n.me, ctx, &n.m, n.m.weights, n.me->weights);
    cr_assert_eq(st_writer_save(w, path), 0, "%s", err_msg());
    st_writer_free(w);

    /* calm-meta from the backbone (heads: copies of the tail), then CALM's heads taken */
    Method *cm;
    cr_assert_eq(method_new(&cm, "calm-meta"), 0);
    method_create_params(cm, ctx, &n.m);
    method_init_from_backbone(cm, ctx, &n.m, 11);
    float *before = fzeros((int64_t)cm->total);
    memcpy(before, cm->weights, cm->total * sizeof(float));
    int heads = 0;
    for (int i = 0; i < cm->num_params; i++) heads += starts_with(cm->params[i].name, "method.heads.");
    cr_assert_eq(heads, 6 * (n.L - 1));
    SafeTensors st;
    cr_assert_eq(st_open(&st, path), 0, "%s", err_msg());
    cr_expect_eq(method_take_params(cm, ctx, &st, ""), heads, "not exactly the heads were taken");
    st_close(&st);
    for (int i = 0; i < cm->num_params; i++) {
        const ParamInfo *p = &cm->params[i];
        const float *got = cm->weights + p->offset;
        if (starts_with(p->name, "method.heads.")) {
            int k = param_index(n.me->params, n.me->num_params, p->name);
            cr_assert(k >= 0);
            cr_expect(!memcmp(got, n.me->weights + n.me->params[k].offset, p->numel * sizeof(float)),
                      "%s is not the file's", p->name);
        } else {
            cr_expect(starts_with(p->name, "method.meta."), "%s", p->name);
            cr_expect(!memcmp(got, before + p->offset, p->numel * sizeof(float)), "%s changed", p->name);
        }
    }
    /* the calm file alone cannot run calm-meta: it lacks the classifier */
    UViT m2;
    Method *me2;
    cr_expect_eq(method_load(path, "calm-meta", NULL, ctx, &m2, &me2), -1);
    cr_expect(strstr(err_msg(), "method.meta.weight") != NULL, "%s", err_msg());
    free(before);
    method_free(cm, ctx);
    net_destroy(&n);
}
