/*
 * test_deediff.c: DeeDiff's method against finite differences and against
 * the plain backbone: the joint loss's gradients for every parameter (the
 * backbone's, the heads', the UEMs'), each option's path, the early-exit
 * predictor's limits (threshold 0 = the full model bit for bit, threshold 1
 * = every image at the first exit), compaction (an image in a shrinking
 * batch gets what it gets alone), and the new ops' gradients.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../model/early_exit.h"
#include "../model/method.h"
#include "support/gradcheck.h"
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

typedef struct {
    Ctx ctx;
    UViT m;
    Method *me;
    UViTActs *acts;
    TrainNoise tn;
    float x0[B * IMG];
    float loss;
} Joint;

static void joint_setup(Joint *j, const char *const *options, int n_options)
{
    ctx_init_cpu(&j->ctx, 1);
    tiny_uvit_create(&j->m, &j->ctx, TINY, 3);
    /* a trained-looking backbone: norms and biases away from their init */
    for (int i = 0; i < j->m.num_params; i++) {
        const ParamInfo *p = &j->m.params[i];
        float noise[4096];
        fill_uniform(noise, (int64_t)p->numel, -0.1f, 0.1f, 100 + i);
        for (size_t k = 0; k < p->numel; k++) j->m.weights[p->offset + k] += noise[k];
    }
    cr_assert_eq(method_new(&j->me, "deediff"), 0);
    for (int i = 0; i < n_options; i += 2)
        cr_assert_eq(method_set_option(j->me, options[i], options[i + 1]), 0, "%s", err_msg());
    method_create_params(j->me, &j->ctx, &j->m);
    method_init_from_backbone(j->me, &j->ctx, &j->m, 9);
    /* move every method parameter too, so no gradient is trivially zero */
    float *noise = xmalloc(j->me->total * sizeof(float));
    fill_uniform(noise, (int64_t)j->me->total, -0.2f, 0.2f, 77);
    for (size_t k = 0; k < j->me->total; k++) j->me->weights[k] += noise[k];
    free(noise);
    uvit_enable_grads(&j->m, &j->ctx);
    method_enable_grads(j->me, &j->ctx);
    j->acts = uvit_acts_create(&j->ctx, &j->m, B, 1);
    j->me->kind->train_begin(j->me, &j->ctx, &j->m, B);
    train_noise_create(&j->tn, &j->ctx, TRAIN_NOISE_VPSDE, B, 2, 8, 8);
    fill_uniform(j->x0, B * IMG, -1, 1, 21);
}

static void joint_teardown(Joint *j)
{
    j->me->kind->train_end(j->me, &j->ctx);
    train_noise_destroy(&j->tn, &j->ctx);
    uvit_acts_destroy(&j->ctx, j->acts);
    method_free(j->me, &j->ctx);
    uvit_destroy(&j->m, &j->ctx);
    ctx_destroy(&j->ctx);
}

static void joint_step(void *user)
{
    Joint *j = user;
    train_noise_draw(&j->ctx, &j->tn, tensor4(j->x0, DT_F32, B, 2, 8, 8), 5, 1);
    uvit_zero_grads(&j->m, &j->ctx);
    method_zero_grads(j->me, &j->ctx);
    MethodStep s = {.backbone = &j->m, .acts = j->acts, .tn = &j->tn, .train_backbone = 1, .step = 1};
    cr_assert_eq(j->me->kind->train_step(j->me, &j->ctx, &s), 0);
    j->loss = (float)s.loss;
}

/* checks the gradients of every parameter whose name contains `which` (all
   with NULL; method parameters are "method.*") */
static void check_joint(const char *const *options, int n_options, const char *which, int backbone)
{
    Joint j;
    joint_setup(&j, options, n_options);
    joint_step(&j);
    float one = 1;
    GradCheck g = {&j.loss, 1, &one, joint_step, &j};
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
    joint_teardown(&j);
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
