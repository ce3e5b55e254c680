/*
 * method_joint.c: the rerunnable method training step of method_joint.h.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "exit_scores.h"
#include "float_buffers.h"
#include "kernels/errors.h"
#include "method_joint.h"
#include "tiny_uvit.h"

void method_joint_setup_threads(MethodJoint *j, const char *json, const char *kind, const char *const *options,
                                int n_options, int train_backbone, int64_t step, int threads)
{
    memset(j, 0, sizeof *j);
    ctx_init_cpu(&j->ctx, threads);
    tiny_uvit_create(&j->m, &j->ctx, json, 3);
    move_params(j->m.params, j->m.num_params, j->m.weights, 0.1f, 100);
    cr_assert_eq(method_new(&j->me, kind), 0, "%s", err_msg());
    for (int i = 0; i < n_options; i += 2)
        cr_assert_eq(method_set_option(j->me, options[i], options[i + 1]), 0, "%s", err_msg());
    method_create_params(j->me, &j->ctx, &j->m);
    method_init_from_backbone(j->me, &j->ctx, &j->m, 9);
    move_params(j->me->params, j->me->num_params, j->me->weights, 0.2f, 77);
    uvit_enable_grads(&j->m, &j->ctx);
    method_enable_grads(j->me, &j->ctx);
    const UViTConfig *c = &j->m.cfg;
    j->acts = uvit_acts_create(&j->ctx, &j->m, JOINT_BATCH, 1);
    j->me->kind->train_begin(j->me, &j->ctx, &j->m, JOINT_BATCH);
    train_noise_create(&j->tn, &j->ctx, TRAIN_NOISE_VPSDE, JOINT_BATCH, c->in_chans, c->img_size, c->img_size);
    j->x0 = fvec((int64_t)JOINT_BATCH * c->in_chans * c->img_size * c->img_size, -1, 1, 21);
    j->train_backbone = train_backbone;
    j->step = step;
}

void method_joint_setup(MethodJoint *j, const char *json, const char *kind, const char *const *options,
                        int n_options, int train_backbone, int64_t step)
{
    method_joint_setup_threads(j, json, kind, options, n_options, train_backbone, step, 1);
}

void method_joint_teardown(MethodJoint *j)
{
    j->me->kind->train_end(j->me, &j->ctx);
    train_noise_destroy(&j->tn, &j->ctx);
    uvit_acts_destroy(&j->ctx, j->acts);
    method_free(j->me, &j->ctx);
    uvit_destroy(&j->m, &j->ctx);
    ctx_destroy(&j->ctx);
    free(j->x0);
}

int method_joint_run(MethodJoint *j)
{
    const UViTConfig *c = &j->m.cfg;
    train_noise_draw(&j->ctx, &j->tn, tensor4(j->x0, DT_F32, JOINT_BATCH, c->in_chans, c->img_size, c->img_size),
                     5, 1);
    uvit_zero_grads(&j->m, &j->ctx);
    method_zero_grads(j->me, &j->ctx);
    j->last = (MethodStep){.backbone = &j->m, .acts = j->acts, .tn = &j->tn, .train_backbone = j->train_backbone,
                           .step = j->step};
    int rc = j->me->kind->train_step(j->me, &j->ctx, &j->last);
    j->loss = (float)(j->last.loss - j->base);
    return rc;
}

void method_joint_step(void *user)
{
    cr_assert_eq(method_joint_run(user), 0, "%s", err_msg());
}
