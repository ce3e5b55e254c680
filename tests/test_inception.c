/*
 * test_inception.c: the FID Inception network against PyTorch ("inception"
 * suite).
 *
 * tests/fixtures/inception_io.safetensors holds images and the pool3
 * features that tests/reference/make_inception_fixture.py computed with
 * torchvision's Inception-v3 and pytorch-fid's block patches, written
 * independently of ours. The weights are not stored: both sides compute them
 * from the same formula (inception_write_synthetic), so the test writes the
 * file, loads it like any pytorch-fid checkpoint and compares pool3.
 * Also: a missing tensor or a wrong shape makes the load fail with the file
 * and the tensor named.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kernels/errors.h"
#include "model/inception.h"
#include "model/safetensors.h"
#include "tests/support/gradcheck.h"

#define IO_FIXTURE "tests/fixtures/inception_io.safetensors"

static char weights_path[256];

/* the synthetic weights, written once per test process */
static const char *weights_file(void)
{
    if (!weights_path[0]) {
        snprintf(weights_path, sizeof weights_path, "/tmp/deediff-test-inception-%d.safetensors",
                 (int)getpid());
        cr_assert(inception_write_synthetic(weights_path) == 0, "%s", err_msg());
    }
    return weights_path;
}

static void remove_weights(void)
{
    if (weights_path[0]) unlink(weights_path);
    weights_path[0] = 0;
}

/* runs the network on `images` of the fixture and compares with `pool3` */
static void check_features(Inception *m, Ctx *ctx, const SafeTensors *io, const char *images,
                           const char *pool3)
{
    const StEntry *e = st_find(io, images);
    cr_assert(e && e->ndim == 4, "%s: no %s", IO_FIXTURE, images);
    int64_t n = e->shape[0], numel = n * e->shape[1] * e->shape[2] * e->shape[3];
    float *x = malloc((size_t)numel * sizeof(float));
    float *want = malloc((size_t)n * INCEPTION_FEATURES * sizeof(float));
    float *got = malloc((size_t)n * INCEPTION_FEATURES * sizeof(float));
    cr_assert(st_read_f32(io, images, x, -1, NULL) == 0, "%s", err_msg());
    int64_t fshape[2] = {n, INCEPTION_FEATURES};
    cr_assert(st_read_f32(io, pool3, want, 2, fshape) == 0, "%s", err_msg());

    InceptionActs acts;
    inception_acts_create(&acts, ctx, m, (int)n);
    inception_forward(ctx, m, &acts, tensor4(x, DT_F32, n, e->shape[1], e->shape[2], e->shape[3]),
                      tensor2(got, DT_F32, n, INCEPTION_FEATURES));
    inception_acts_destroy(&acts, ctx);
    double err = rel_l2(got, want, n * INCEPTION_FEATURES);
    cr_expect(err < 1e-4, "%s: pool3 relative error %g (got[0] %g, want %g)", images, err, got[0],
              want[0]);
    free(x), free(want), free(got);
}

Test(inception, pool3_matches_pytorch, .fini = remove_weights)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    Inception m;
    cr_assert(inception_load(&m, &ctx, weights_file()) == 0, "%s", err_msg());
    SafeTensors io;
    cr_assert(st_open(&io, IO_FIXTURE) == 0, "%s", err_msg());
    check_features(&m, &ctx, &io, "images_32", "pool3_32");
    check_features(&m, &ctx, &io, "images_64x48", "pool3_64x48");
    st_close(&io);
    inception_destroy(&m, &ctx);
    ctx_destroy(&ctx);
}

/* copies every tensor of the synthetic weights into a new file, leaving out
   `omit` and giving `reshape` (if not NULL) a wrong shape; loads it and
   expects -1 with `expect` in the message */
static void expect_load_error(const char *omit, const char *reshape, const char *expect)
{
    SafeTensors st;
    cr_assert(st_open(&st, weights_file()) == 0, "%s", err_msg());
    StWriter *w = st_writer_new();
    for (int i = 0; i < st.count; i++) {
        const StEntry *e = &st.entries[i];
        if (omit && !strcmp(e->name, omit)) continue;
        int64_t shape[TENSOR_MAX_DIMS];
        memcpy(shape, e->shape, sizeof shape);
        int ndim = e->ndim;
        if (reshape && !strcmp(e->name, reshape)) {  // [C] -> [C/2, 2]: same bytes, wrong shape
            shape[0] = e->shape[0] / 2, shape[1] = 2, ndim = 2;
        }
        st_writer_add(w, e->name, e->dtype, ndim, shape, st_data(&st, e));
    }
    char bad[300];
    snprintf(bad, sizeof bad, "%s.bad.safetensors", weights_file());
    cr_assert(st_writer_save(w, bad) == 0, "%s", err_msg());
    st_writer_free(w);
    st_close(&st);

    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    Inception m;
    err_clear();
    cr_assert(inception_load(&m, &ctx, bad) == -1, "loading %s should fail", bad);
    cr_expect(strstr(err_msg(), bad) != NULL, "error does not name the file: %s", err_msg());
    cr_expect(strstr(err_msg(), expect) != NULL, "error does not name '%s': %s", expect, err_msg());
    unlink(bad);
    ctx_destroy(&ctx);
}

Test(inception, missing_tensor_is_named, .fini = remove_weights)
{
    expect_load_error("Mixed_7c.branch_pool.bn.running_var", NULL, "Mixed_7c.branch_pool.bn.running_var");
}

Test(inception, wrong_shape_is_named, .fini = remove_weights)
{
    expect_load_error(NULL, "Mixed_6b.branch7x7_2.bn.bias", "Mixed_6b.branch7x7_2.bn.bias");
}

Test(inception, extra_tensors_are_ignored)
{
    /* fc.* and num_batches_tracked in a pytorch-fid file do not matter: the
       loader reads by name only, so a file of just a few wrong extras fails
       on the first tensor it needs, and names that one */
    char path[256];
    snprintf(path, sizeof path, "/tmp/deediff-test-inception-extra-%d.safetensors", (int)getpid());
    StWriter *w = st_writer_new();
    int64_t one[1] = {1};
    int64_t nbt = 0;
    float fc = 0;
    st_writer_add(w, "Conv2d_1a_3x3.bn.num_batches_tracked", DT_I64, 1, one, &nbt);
    st_writer_add(w, "fc.bias", DT_F32, 1, one, &fc);
    cr_assert(st_writer_save(w, path) == 0, "%s", err_msg());
    st_writer_free(w);
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    Inception m;
    cr_assert(inception_load(&m, &ctx, path) == -1);
    cr_expect(strstr(err_msg(), "Conv2d_1a_3x3.conv.weight") != NULL, "%s", err_msg());
    unlink(path);
    ctx_destroy(&ctx);
}
