/*
 * test_uvit_golden.c: our U-ViT against the PyTorch reference, on fixtures.
 *
 * tests/fixtures/uvit_<name>.{model,io}.safetensors come from
 * tests/reference/make_fixtures.py (an independent PyTorch U-ViT that was
 * itself checked against the official code; float64 results of float32
 * weights and inputs). For each fixture: load the model, run the forward on
 * x, t (and y, or a text-to-image model's context), compare the hidden state after every block and the output
 * (relative L2 < 1e-4), then run the backward with dL/dout = r (the loss is
 * L = sum(out * r)) and compare every parameter's gradient with
 * grad.<name> (relative L2 < 1e-3). A failure names the worst tensor.
 * Each fixture runs on 1 thread and on 2 (where the blocks run as pieces,
 * model/uvit.c).
 * Paths are relative to the repository root, where the tests run.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../model/safetensors.h"
#include "../model/uvit.h"
#include "support/golden_fixture.h"
#include "support/gradcheck.h"

#define OUT_TOL 1e-4
#define HIDDEN_TOL 1e-4
#define GRAD_TOL 1e-3

/* a backend buffer holding host data */
static void *upload(Ctx *ctx, const void *host, size_t bytes)
{
    void *dev = ctx_alloc(ctx, bytes);
    ctx_upload(ctx, dev, host, bytes);
    return dev;
}

static void check_fixture_threads(const char *name, int threads)
{
    char model_path[FIXTURE_PATH_MAX], io_path[FIXTURE_PATH_MAX];
    fixture_paths("uvit", name, model_path, io_path);

    Ctx ctx;
    ctx_init_cpu(&ctx, threads);
    UViT m;
    cr_assert_eq(uvit_load(&m, &ctx, model_path), 0, "%s", err_msg());
    SafeTensors io;
    cr_assert_eq(st_open(&io, io_path), 0, "%s", err_msg());

    const UViTConfig *c = &m.cfg;
    const StEntry *xe = st_find(&io, "x");
    cr_assert(xe != NULL && xe->ndim == 4, "%s: tensor 'x' missing or not 4-d", io_path);
    int64_t B = xe->shape[0], C = c->in_chans, H = c->img_size, W = c->img_size;
    int64_t T = uvit_num_tokens(c), D = c->embed_dim;
    int64_t img_shape[4] = {B, C, H, W}, batch_shape[1] = {B}, hidden_shape[3] = {B, T, D};
    size_t img_bytes = (size_t)(B * C * H * W) * sizeof(float);

    // inputs: x is (B,C,H,W), t is (B), y is (B) when class-conditional
    float *x = fixture_f32(&io, "x", 4, img_shape);
    float *t = fixture_f32(&io, "t", 1, batch_shape);
    float *r = fixture_f32(&io, "r", 4, img_shape);
    float *expected_out = fixture_f32(&io, "out", 4, img_shape);
    int64_t y[64];
    cr_assert(B <= 64);
    int conditional = c->num_classes > 0;
    if (conditional)
        cr_assert_eq(st_read_i64(&io, "y", y, 1, batch_shape), 0, "%s", err_msg());
    // a text-to-image model's context is (B, num_clip_token, clip_dim)
    int64_t ctx_shape[3] = {B, c->num_clip_token, c->clip_dim};
    float *context = uvit_is_text(c) ? fixture_f32(&io, "context", 3, ctx_shape) : NULL;
    size_t ctx_bytes = (size_t)(B * c->num_clip_token * c->clip_dim) * sizeof(float);

    float *x_dev = upload(&ctx, x, img_bytes);
    float *t_dev = upload(&ctx, t, (size_t)B * sizeof(float));
    float *r_dev = upload(&ctx, r, img_bytes);
    int64_t *y_dev = conditional ? upload(&ctx, y, (size_t)B * sizeof(int64_t)) : NULL;
    float *ctx_dev = context ? upload(&ctx, context, ctx_bytes) : NULL;
    float *out_dev = ctx_alloc(&ctx, img_bytes);
    Tensor x_t = tensor4(x_dev, DT_F32, B, C, H, W);
    Tensor t_t = tensor1(t_dev, DT_F32, B);
    Tensor y_t = conditional ? tensor1(y_dev, DT_I64, B) : tensor_none();
    Tensor out_t = tensor4(out_dev, DT_F32, B, C, H, W);
    Tensor r_t = tensor4(r_dev, DT_F32, B, C, H, W);

    uvit_enable_grads(&m, &ctx);
    uvit_zero_grads(&m, &ctx);
    UViTActs *acts = uvit_acts_create(&ctx, &m, (int)B, 1);
    Conditioning cond = cond_labels(y_t);
    if (context) cond.context = tensor3(ctx_dev, DT_F32, B, c->num_clip_token, c->clip_dim);
    uvit_forward(&ctx, &m, acts, x_t, t_t, cond, out_t);
    ctx_sync(&ctx);

    // the hidden state after every block, then the output
    float *h = xmalloc((size_t)(B * T * D) * sizeof(float));
    for (int i = 0; i < c->num_blocks; i++) {
        char key[32];
        snprintf(key, sizeof key, "hidden.%d", i);
        float *want = fixture_f32(&io, key, 3, hidden_shape);
        Tensor ht = uvit_hidden(acts, i);
        cr_assert(ht.dtype == DT_F32 && tensor_numel(ht) == B * T * D, "%s: hidden %d: wrong view", name, i);
        ctx_download(&ctx, h, ht.data, (size_t)(B * T * D) * sizeof(float));
        double err = rel_l2(h, want, B * T * D);
        cr_expect_lt(err, HIDDEN_TOL, "%s: hidden state after block %d: relative L2 error %.3g", name, i, err);
        free(want);
    }
    float *out = xmalloc(img_bytes);
    ctx_download(&ctx, out, out_dev, img_bytes);
    double out_err = rel_l2(out, expected_out, B * C * H * W);
    cr_log_info("%s: output relative L2 error %.3g", name, out_err);
    cr_assert_lt(out_err, OUT_TOL, "%s: output: relative L2 error %.3g", name, out_err);

    // backward with dL/dout = r; every parameter's gradient against grad.<name>
    uvit_backward(&ctx, &m, acts, r_t);
    ctx_sync(&ctx);
    float *grads = xmalloc(m.total * sizeof(float));
    ctx_download(&ctx, grads, m.grads, m.total * sizeof(float));
    int grads_in_file = fixture_grad_count(&io);
    cr_assert_eq(grads_in_file, m.num_params, "%s: %d gradients in the fixture, %d parameters in the model",
                 name, grads_in_file, m.num_params);
    const char *worst_name = "";
    double worst = fixture_worst_grad(&io, m.params, m.num_params, grads, &worst_name);
    cr_log_info("%s: worst gradient %s, relative L2 error %.3g", name, worst_name, worst);
    cr_expect_lt(worst, GRAD_TOL, "%s: gradient of %s: relative L2 error %.3g (the worst of %d)",
                 name, worst_name, worst, m.num_params);

    free(grads);
    free(out);
    free(h);
    free(x);
    free(t);
    free(r);
    free(expected_out);
    uvit_acts_destroy(&ctx, acts);
    ctx_free(&ctx, x_dev);
    ctx_free(&ctx, t_dev);
    ctx_free(&ctx, r_dev);
    if (y_dev) ctx_free(&ctx, y_dev);
    if (ctx_dev) ctx_free(&ctx, ctx_dev);
    free(context);
    ctx_free(&ctx, out_dev);
    st_close(&io);
    uvit_destroy(&m, &ctx);
    ctx_destroy(&ctx);
}

static void check_fixture(const char *name)
{
    check_fixture_threads(name, 1);
    check_fixture_threads(name, 2);
}

/* unconditional, final conv, no qkv bias, three structurally pruned blocks */
Test(uvit_golden, uncond_conv_pruned)
{
    check_fixture("uncond_conv");
}

/* class-conditional (label token first), time MLP, qkv bias, no final conv */
Test(uvit_golden, cond_mlp)
{
    check_fixture("cond_mlp");
}

/* text-to-image (libs/uvit_t2i.py): [time, 77 context tokens, patches],
   context_embed Linear(16, D), the 78 extras dropped before decoding */
Test(uvit_golden, t2i_context)
{
    check_fixture("t2i");
}
