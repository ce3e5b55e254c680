/*
 * test_autoencoder_golden.c: our KL autoencoder against the PyTorch
 * reference ("autoencoder_golden" suite).
 *
 * tests/fixtures/autoencoder_small.{model,io}.safetensors come from
 * tests/reference/make_autoencoder_fixture.py (autoencoder_ref.py, an
 * independent PyTorch implementation checked against U-ViT's own
 * libs/autoencoder.py by check_autoencoder_official.py; float64 results of
 * float32 weights and inputs). The test loads the model file like any
 * checkpoint, encodes x and decodes z, compares moments and images
 * (relative L2 < 1e-4), then runs both backward passes with the fixture's
 * loss weights and compares grad.x, grad.z and every parameter's gradient
 * (relative L2 < 1e-3; an attention's k.bias, whose true gradient is 0,
 * absolutely). It runs with 1 and 2 threads (the convolutions split
 * batches over threads differently).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/errors.h"
#include "model/autoencoder.h"
#include "tests/support/golden_fixture.h"
#include "tests/support/gradcheck.h"

#define OUT_TOL 1e-4
#define GRAD_TOL 1e-3

static void check_fixture(int threads)
{
    char model_path[FIXTURE_PATH_MAX], io_path[FIXTURE_PATH_MAX];
    fixture_paths("autoencoder", "small", model_path, io_path);
    Ctx ctx;
    ctx_init_cpu(&ctx, threads);
    Autoencoder m;
    cr_assert_eq(autoencoder_load(&m, &ctx, model_path), 0, "%s", err_msg());
    autoencoder_enable_grads(&m, &ctx);
    SafeTensors io;
    cr_assert_eq(st_open(&io, io_path), 0, "%s", err_msg());

    const AutoencoderConfig *c = &m.cfg;
    const StEntry *xe = st_find(&io, "x");
    cr_assert(xe && xe->ndim == 4, "%s: no 4-d 'x'", io_path);
    int64_t B = xe->shape[0], H = xe->shape[2], W = xe->shape[3], f = autoencoder_factor(c);
    int64_t xs[4] = {B, c->in_channels, H, W}, ms[4] = {B, 2 * c->embed_dim, H / f, W / f};
    int64_t zs[4] = {B, c->embed_dim, H / f, W / f}, is[4] = {B, c->out_ch, H, W};
    float *x = fixture_f32(&io, "x", 4, xs), *z = fixture_f32(&io, "z", 4, zs);
    float *want_m = fixture_f32(&io, "moments", 4, ms), *want_i = fixture_f32(&io, "images", 4, is);
    float *r_m = fixture_f32(&io, "r_moments", 4, ms), *r_i = fixture_f32(&io, "r_images", 4, is);
    float *want_dx = fixture_f32(&io, "grad.x", 4, xs), *want_dz = fixture_f32(&io, "grad.z", 4, zs);
    int64_t nx = xs[0] * xs[1] * xs[2] * xs[3], nm = ms[0] * ms[1] * ms[2] * ms[3];
    int64_t nz = zs[0] * zs[1] * zs[2] * zs[3], ni = is[0] * is[1] * is[2] * is[3];
    float *moments = calloc((size_t)nm, sizeof(float)), *images = calloc((size_t)ni, sizeof(float));
    float *dx = calloc((size_t)nx, sizeof(float)), *dz = calloc((size_t)nz, sizeof(float));

    AutoencoderActs *enc = autoencoder_acts_create(&ctx, &m, AE_ENCODER, (int)B, H, W, 1);
    AutoencoderActs *dec = autoencoder_acts_create(&ctx, &m, AE_DECODER, (int)B, H, W, 1);
    Tensor tx = tensor4(x, DT_F32, xs[0], xs[1], xs[2], xs[3]), tz = tensor4(z, DT_F32, zs[0], zs[1], zs[2], zs[3]);
    autoencoder_encode_moments(&ctx, &m, enc, tx, tensor4(moments, DT_F32, ms[0], ms[1], ms[2], ms[3]));
    autoencoder_decode(&ctx, &m, dec, tz, tensor4(images, DT_F32, is[0], is[1], is[2], is[3]));
    double e = rel_l2(moments, want_m, nm);
    cr_expect(e < OUT_TOL, "%d threads: moments relative error %g", threads, e);
    e = rel_l2(images, want_i, ni);
    cr_expect(e < OUT_TOL, "%d threads: images relative error %g", threads, e);

    autoencoder_encode_backward(&ctx, &m, enc, tx, tensor4(r_m, DT_F32, ms[0], ms[1], ms[2], ms[3]),
                                tensor4(dx, DT_F32, xs[0], xs[1], xs[2], xs[3]));
    autoencoder_decode_backward(&ctx, &m, dec, tz, tensor4(r_i, DT_F32, is[0], is[1], is[2], is[3]),
                                tensor4(dz, DT_F32, zs[0], zs[1], zs[2], zs[3]));
    e = rel_l2(dx, want_dx, nx);
    cr_expect(e < GRAD_TOL, "%d threads: grad.x relative error %g", threads, e);
    e = rel_l2(dz, want_dz, nz);
    cr_expect(e < GRAD_TOL, "%d threads: grad.z relative error %g", threads, e);
    cr_expect_eq(fixture_grad_count(&io), m.num_params + 2, "the fixture's gradients are not our parameters");
    /* an attention's k.bias adds q.b to a whole row of logits, which the
       softmax ignores: its gradient is 0 (float rounding here, 1e-17 in the
       fixture), so it is checked absolutely, the rest relatively */
    ParamInfo *rest = malloc((size_t)m.num_params * sizeof *rest);
    int nrest = 0;
    for (int i = 0; i < m.num_params; i++) {
        const ParamInfo *p = &m.params[i];
        if (!strstr(p->name, ".k.bias")) {
            rest[nrest++] = *p;
            continue;
        }
        for (size_t k = 0; k < p->numel; k++)
            cr_expect(fabsf(m.grads[p->offset + k]) < 1e-5f, "%s[%zu] = %g, expected 0", p->name, k,
                      m.grads[p->offset + k]);
    }
    cr_expect(nrest < m.num_params, "no k.bias found");
    const char *worst_name;
    double worst = fixture_worst_grad(&io, rest, nrest, m.grads, &worst_name);
    cr_expect(worst >= 0 && worst < GRAD_TOL, "%d threads: worst gradient %s, relative error %g", threads,
              worst_name, worst);
    free(rest);

    autoencoder_acts_destroy(&ctx, enc);
    autoencoder_acts_destroy(&ctx, dec);
    free(x), free(z), free(want_m), free(want_i), free(r_m), free(r_i), free(want_dx), free(want_dz);
    free(moments), free(images), free(dx), free(dz);
    st_close(&io);
    autoencoder_destroy(&m, &ctx);
    ctx_destroy(&ctx);
}

Test(autoencoder_golden, small_matches_pytorch_one_thread) { check_fixture(1); }
Test(autoencoder_golden, small_matches_pytorch_two_threads) { check_fixture(2); }
