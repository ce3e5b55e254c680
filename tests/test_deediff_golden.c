/*
 * test_deediff_golden.c: DeeDiff's training loss against the PyTorch reference.
 *
 * tests/fixtures/deediff_<name>.{model,io}.safetensors come from
 * tests/reference/make_deediff_fixture.py (an independent PyTorch DeeDiff,
 * tests/reference/deediff_ref.py, on the U-ViT of uvit_ref.py; float64
 * results of float32 weights and inputs). The model file is a DeeDiff model
 * file as `deediff sample` reads it; the io file holds one batch of B = 3
 * (x_t, eps, continuous t, net_t = t * 999) and what the joint loss gives.
 * For each fixture:
 *   - method_load reads the backbone, the method's parameters and options;
 *     the options print back as the fixture's method_options JSON;
 *   - one training step (train_begin, train_step with train_backbone on a
 *     TrainNoise filled from the fixture): the loss and its parts
 *     (relative error < 1e-5) and the gradient of L_all for every backbone
 *     and method parameter (relative L2 < 1e-4);
 *   - a full forward in an inference arena, then probe at every exit:
 *     the head's g_i and the UEM's u_i (relative L2 < 1e-5).
 * A failure names the worst tensor. Paths are relative to the repository
 * root, where the tests run.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../model/method.h"
#include "../model/safetensors.h"
#include "../model/uvit.h"
#include "support/golden_fixture.h"
#include "support/gradcheck.h"

#define LOSS_TOL 1e-5
#define GRAD_TOL 1e-4
#define EXIT_TOL 1e-5
#define BATCH 3

static double read_scalar(const SafeTensors *io, const char *name)
{
    int64_t one[1] = {1};
    float *v = fixture_f32(io, name, 1, one);
    double x = v[0];
    free(v);
    return x;
}

static void check_fixture(const char *name)
{
    char model_path[FIXTURE_PATH_MAX], io_path[FIXTURE_PATH_MAX];
    fixture_paths("deediff", name, model_path, io_path);

    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    UViT m;
    Method *me;
    cr_assert_eq(method_load(model_path, NULL, NULL, &ctx, &m, &me), 0, "%s", err_msg());
    cr_assert_str_eq(me->kind->name, "deediff");
    SafeTensors io;
    cr_assert_eq(st_open(&io, io_path), 0, "%s", err_msg());

    // the options as the C code prints them == what the reference wrote
    const char *want_opts = st_metadata(&io, "method_options");
    cr_assert(want_opts != NULL, "%s: no method_options metadata", io_path);
    char *opts = method_options_json(me);
    cr_expect_str_eq(opts, want_opts, "%s: options print as %s, the fixture has %s", name, opts, want_opts);
    free(opts);

    const UViTConfig *c = &m.cfg;
    int64_t B = BATCH, C = c->in_chans, H = c->img_size;
    int64_t img_shape[4] = {B, C, H, H}, batch_shape[1] = {B};
    size_t img_bytes = (size_t)(B * C * H * H) * sizeof(float);

    // inputs: x_t, eps (B,C,H,W); t (B) continuous; net_t (B) = t * 999; a, s (B)
    float *x_t = fixture_f32(&io, "x_t", 4, img_shape);
    float *eps = fixture_f32(&io, "eps", 4, img_shape);
    float *t = fixture_f32(&io, "t", 1, batch_shape);
    float *net_t = fixture_f32(&io, "net_t", 1, batch_shape);
    float *a = fixture_f32(&io, "a", 1, batch_shape);
    float *s = fixture_f32(&io, "s", 1, batch_shape);
    double t_d[BATCH];
    for (int b = 0; b < B; b++) t_d[b] = t[b];

    TrainNoise tn;
    train_noise_create(&tn, &ctx, TRAIN_NOISE_VPSDE, (int)B, (int)C, (int)H, (int)H);
    ctx_upload(&ctx, tn.x_t, x_t, img_bytes);
    ctx_upload(&ctx, tn.eps, eps, img_bytes);
    ctx_upload(&ctx, tn.net_t, net_t, (size_t)B * sizeof(float));
    for (int b = 0; b < B; b++) {
        tn.t[b] = t_d[b];
        tn.net_t_host[b] = net_t[b];
        tn.a[b] = a[b];
        tn.s[b] = s[b];
    }
    tn.batch = (int)B;

    // one training step
    uvit_enable_grads(&m, &ctx);
    method_enable_grads(me, &ctx);
    UViTActs *acts = uvit_acts_create(&ctx, &m, (int)B, 1);
    me->kind->train_begin(me, &ctx, &m, (int)B);
    MethodStep step = {.backbone = &m, .acts = acts, .tn = &tn, .conditional = 0, .train_backbone = 1, .step = 1};
    cr_assert_eq(me->kind->train_step(me, &ctx, &step), 0, "%s", err_msg());
    ctx_sync(&ctx);

    struct { const char *key; double got; } parts[] = {
        {"loss_simple", step.loss_simple}, {"loss_u", step.loss_u},
        {"loss_layers", step.loss_layers}, {"loss", step.loss}};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        double want = read_scalar(&io, parts[i].key), err = fabs(parts[i].got - want) / fabs(want);
        cr_log_info("%s: %s %.7g (reference %.7g, relative error %.2g)", name, parts[i].key, parts[i].got, want,
                    err);
        cr_expect_lt(err, LOSS_TOL, "%s: %s = %.9g, the reference %.9g (relative error %.3g)", name,
                     parts[i].key, parts[i].got, want, err);
    }

    // every parameter's gradient: the backbone's, then the method's
    int grads_in_file = fixture_grad_count(&io);
    cr_expect_eq(grads_in_file, m.num_params + me->num_params,
                 "%s: %d gradients in the fixture, %d + %d parameters in the model", name, grads_in_file,
                 m.num_params, me->num_params);
    float *bg = xmalloc(m.total * sizeof(float)), *mg = xmalloc(me->total * sizeof(float));
    ctx_download(&ctx, bg, m.grads, m.total * sizeof(float));
    ctx_download(&ctx, mg, me->grads, me->total * sizeof(float));
    const char *wb = "", *wm = "";
    double eb = fixture_worst_grad(&io, m.params, m.num_params, bg, &wb);
    double em = fixture_worst_grad(&io, me->params, me->num_params, mg, &wm);
    cr_log_info("%s: worst backbone gradient %s %.3g, worst method gradient %s %.3g", name, wb, eb, wm, em);
    cr_expect_lt(eb, GRAD_TOL, "%s: gradient of %s: relative L2 error %.3g (the worst of %d backbone parameters)",
                 name, wb, eb, m.num_params);
    cr_expect_lt(em, GRAD_TOL, "%s: gradient of %s: relative L2 error %.3g (the worst of %d method parameters)",
                 name, wm, em, me->num_params);
    free(bg);
    free(mg);
    me->kind->train_end(me, &ctx);
    uvit_acts_destroy(&ctx, acts);

    // every exit's g_i and u_i through probe, after a forward in an inference arena
    UViTActs *ia = uvit_acts_create(&ctx, &m, (int)B, 0);
    float *out_dev = ctx_alloc(&ctx, img_bytes), *g_dev = ctx_alloc(&ctx, img_bytes);
    float *u_dev = ctx_alloc(&ctx, img_bytes);
    Tensor xt_t = tensor4(tn.x_t, DT_F32, B, C, H, H), nt_t = tensor1(tn.net_t, DT_F32, B);
    uvit_forward(&ctx, &m, ia, xt_t, nt_t, cond_none(), tensor4(out_dev, DT_F32, B, C, H, H));
    float *g = xmalloc(img_bytes), *u = xmalloc(img_bytes);
    double worst_g = -1, worst_u = -1;
    int at_g = 0, at_u = 0;
    for (int i = 0; i < c->num_blocks - 1; i++) {
        me->kind->probe(me, &ctx, &m, ia, i, t_d, nt_t, tensor4(g_dev, DT_F32, B, C, H, H),
                        tensor4(u_dev, DT_F32, B, C, H, H));
        ctx_sync(&ctx);
        ctx_download(&ctx, g, g_dev, img_bytes);
        ctx_download(&ctx, u, u_dev, img_bytes);
        char key[32];
        snprintf(key, sizeof key, "g.%d", i);
        float *want_g = fixture_f32(&io, key, 4, img_shape);
        snprintf(key, sizeof key, "u.%d", i);
        float *want_u = fixture_f32(&io, key, 4, img_shape);
        double eg = rel_l2(g, want_g, B * C * H * H), eu = rel_l2(u, want_u, B * C * H * H);
        cr_expect_lt(eg, EXIT_TOL, "%s: exit %d: g relative L2 error %.3g", name, i, eg);
        cr_expect_lt(eu, EXIT_TOL, "%s: exit %d: u relative L2 error %.3g", name, i, eu);
        if (eg > worst_g) worst_g = eg, at_g = i;
        if (eu > worst_u) worst_u = eu, at_u = i;
        free(want_g);
        free(want_u);
    }
    cr_log_info("%s: probe: worst g exit %d %.3g, worst u exit %d %.3g", name, at_g, worst_g, at_u, worst_u);

    free(g);
    free(u);
    ctx_free(&ctx, out_dev);
    ctx_free(&ctx, g_dev);
    ctx_free(&ctx, u_dev);
    uvit_acts_destroy(&ctx, ia);
    free(x_t);
    free(eps);
    free(t);
    free(net_t);
    free(a);
    free(s);
    train_noise_destroy(&tn, &ctx);
    st_close(&io);
    method_free(me, &ctx);
    uvit_destroy(&m, &ctx);
    ctx_destroy(&ctx);
}

/* the defaults: per-layer heads (final conv) and UEMs, 4 buckets, time
   input, u detached inside L_UAL; backbone with a time MLP */
Test(deediff_golden, defaults)
{
    check_fixture("default");
}

/* L_UAL's gradient reaching u_i (ual_detach_u false, the uncertainty
   layer loss), 3 buckets, lambda 0.7, beta 1.5 */
Test(deediff_golden, ual_gradient_through_u)
{
    check_fixture("ual_u");
}

/* every option away from its default: shared head and UEM, 1 bucket, no
   time input, L_UAL's gradient reaching u (unused: plain layer loss),
   lambda 0.5, beta 2; no final conv, qkv bias */
Test(deediff_golden, ablation_options)
{
    check_fixture("ablation");
}
