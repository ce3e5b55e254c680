/*
 * test_cli_autoencoder.c: `deediff encode` and `deediff decode` as a user
 * runs them ("cli_autoencoder" suite): on the golden fixture they give
 * PyTorch's moments and images (any --batch); bad input (a missing tensor,
 * a wrong channel count, a side the factor does not divide, values out of
 * range, a checkpoint of another configuration or of another network) is
 * one line on stderr naming the file and the field, exit status 2, and no
 * output file.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/errors.h"
#include "harness/data/dataset.h"
#include "model/autoencoder.h"
#include "model/safetensors.h"
#include "tests/support/cli_run.h"
#include "tests/support/gradcheck.h"
#include "tests/support/temp_dir.h"

#define MODEL "tests/fixtures/autoencoder_small.model.safetensors"
#define IO "tests/fixtures/autoencoder_small.io.safetensors"
#define UVIT "tests/fixtures/uvit_uncond_conv.model.safetensors"

static char dir[64];

static void setup(void)
{
    cli_need_binary();
    temp_dir_make(dir, sizeof dir, "/tmp/deediff-cli-ae-XXXXXX");
}

static void teardown(void) { temp_dir_remove(dir); }

TestSuite(cli_autoencoder, .init = setup, .fini = teardown, .timeout = 60);

/* tensor `name` of path as a new float array; *n gets its element count */
static float *read_tensor(const char *path, const char *name, int64_t *n)
{
    SafeTensors st;
    cr_assert_eq(st_open(&st, path), 0, "%s", err_msg());
    const StEntry *e = st_find(&st, name);
    cr_assert(e, "%s: no '%s'", path, name);
    *n = 1;
    for (int k = 0; k < e->ndim; k++) *n *= e->shape[k];
    float *x = malloc((size_t)*n * sizeof(float));
    cr_assert_eq(st_read_f32(&st, name, x, -1, NULL), 0, "%s", err_msg());
    st_close(&st);
    return x;
}

/* runs `deediff CMD --autoencoder W --FLAG IN --output OUT extra`, returns its status */
static int run(const char *cmd, const char *weights, const char *in, const char *out, const char *extra, char *err,
               size_t n)
{
    char args[1024];
    snprintf(args, sizeof args, "%s --autoencoder '%s' %s '%s' --output '%s' --threads 2 %s", cmd, weights,
             strcmp(cmd, "encode") ? "--latents" : "--images", in, out, extra ? extra : "");
    return cli_run(args, NULL, 0, err, n);
}

static void expect_matches(const char *out, const char *name, const char *want_name)
{
    int64_t n, m;
    float *got = read_tensor(out, name, &n), *want = read_tensor(IO, want_name, &m);
    cr_assert_eq(n, m, "%s: %lld values, expected %lld", name, (long long)n, (long long)m);
    double e = rel_l2(got, want, n);
    cr_expect(e < 1e-4, "%s: relative error %g", name, e);
    free(got), free(want);
}

Test(cli_autoencoder, encode_and_decode_the_fixture)
{
    const char *out = temp_dir_path(dir, "out.safetensors");
    char err[2048];
    static const char *const batches[] = {"", "--batch 1"};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(run("encode", MODEL, IO, out, batches[k], err, sizeof err), 0, "%s", err);
        expect_matches(out, "moments", "moments");
        cr_assert_eq(run("decode", MODEL, IO, out, batches[k], err, sizeof err), 0, "%s", err);
        expect_matches(out, "images", "images");
    }
}

/* writes `name` F32 of shape [b,c,h,w] (NaN at nan_at >= 0, else value v everywhere) */
static void write_input(const char *path, const char *name, int64_t b, int64_t c, int64_t h, int64_t w, float v,
                        int64_t nan_at)
{
    int64_t shape[4] = {b, c, h, w}, n = b * c * h * w;
    float *x = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = v;
    if (nan_at >= 0) x[nan_at] = NAN;
    StWriter *wr = st_writer_new();
    st_writer_add(wr, name, DT_F32, 4, shape, x);
    cr_assert_eq(st_writer_save(wr, path), 0, "%s", err_msg());
    st_writer_free(wr);
    free(x);
}

/* exit 2, one stderr line holding both needles, no output file */
static void expect_refused(const char *cmd, const char *weights, const char *in, const char *needle1,
                           const char *needle2)
{
    const char *out = temp_dir_path(dir, "never.safetensors");
    char err[2048];
    int rc = run(cmd, weights, in, out, NULL, err, sizeof err);
    cr_expect_eq(rc, 2, "%s: exit %d for '%s': %s", cmd, rc, needle2, err);
    cr_expect_eq(count_lines(err), 1, "not one line: %s", err);
    cr_expect(strstr(err, needle1) != NULL, "'%s' not in: %s", needle1, err);
    cr_expect(strstr(err, needle2) != NULL, "'%s' not in: %s", needle2, err);
    cr_expect(access(out, F_OK) != 0, "an output file was written");
}

Test(cli_autoencoder, bad_inputs_are_refused)
{
    char p[256];
    /* encode: x [B,3,16,16] in [-1,1] with sides multiples of 2 */
    snprintf(p, sizeof p, "%s", temp_dir_path(dir, "no-x.safetensors"));
    write_input(p, "z", 1, 3, 16, 16, 0, -1);
    expect_refused("encode", MODEL, p, p, "missing tensor 'x'");
    snprintf(p, sizeof p, "%s", temp_dir_path(dir, "channels.safetensors"));
    write_input(p, "x", 1, 4, 16, 16, 0, -1);
    expect_refused("encode", MODEL, p, p, "4 channels");
    snprintf(p, sizeof p, "%s", temp_dir_path(dir, "odd-side.safetensors"));
    write_input(p, "x", 1, 3, 16, 15, 0, -1);
    expect_refused("encode", MODEL, p, p, "16x15 is not a multiple");
    snprintf(p, sizeof p, "%s", temp_dir_path(dir, "range.safetensors"));
    write_input(p, "x", 1, 3, 4, 4, 255, -1);
    expect_refused("encode", MODEL, p, p, "[-1,1]");
    snprintf(p, sizeof p, "%s", temp_dir_path(dir, "nan.safetensors"));
    write_input(p, "x", 2, 3, 4, 4, 0, 7);
    expect_refused("encode", MODEL, p, p, "element 7");
    /* decode: z [B,3,h,w] */
    snprintf(p, sizeof p, "%s", temp_dir_path(dir, "no-z.safetensors"));
    write_input(p, "x", 1, 3, 8, 8, 0, -1);
    expect_refused("decode", MODEL, p, p, "missing tensor 'z'");
    snprintf(p, sizeof p, "%s", temp_dir_path(dir, "z-channels.safetensors"));
    write_input(p, "z", 1, 4, 8, 8, 0, -1);
    expect_refused("decode", MODEL, p, p, "tensor 'z': 4 channels");
    snprintf(p, sizeof p, "%s", temp_dir_path(dir, "z-nan.safetensors"));
    write_input(p, "z", 1, 3, 2, 2, 0, 3);
    expect_refused("decode", MODEL, p, p, "element 3");
    expect_refused("decode", MODEL, temp_dir_path(dir, "absent.safetensors"), "absent.safetensors", "absent");
}

/* copies MODEL leaving out `omit`, with config `config` (NULL: the file's, "" none) */
static void write_model_variant(const char *path, const char *omit, const char *config)
{
    SafeTensors st;
    cr_assert_eq(st_open(&st, MODEL), 0, "%s", err_msg());
    StWriter *w = st_writer_new();
    for (int i = 0; i < st.count; i++) {
        const StEntry *e = &st.entries[i];
        if (!omit || strcmp(e->name, omit)) st_writer_add(w, e->name, e->dtype, e->ndim, e->shape, st_data(&st, e));
    }
    if (!config) config = st_metadata(&st, "config");
    if (*config) st_writer_meta(w, "config", config);
    cr_assert_eq(st_writer_save(w, path), 0, "%s", err_msg());
    st_writer_free(w);
    st_close(&st);
}

Test(cli_autoencoder, bad_checkpoints_are_refused)
{
    char p[256];
    snprintf(p, sizeof p, "%s", temp_dir_path(dir, "missing.safetensors"));
    write_model_variant(p, "decoder.conv_out.bias", NULL);
    expect_refused("decode", p, IO, p, "'decoder.conv_out.bias'");
    /* the tensors of a 2-level model under a 3-level configuration */
    snprintf(p, sizeof p, "%s", temp_dir_path(dir, "other-config.safetensors"));
    write_model_variant(p, NULL,
                        "{\"z_channels\":4,\"resolution\":16,\"in_channels\":3,\"out_ch\":2,\"ch\":8,"
                        "\"ch_mult\":[1,2,2],\"num_res_blocks\":1,\"attn_resolutions\":[8],\"embed_dim\":3,"
                        "\"num_groups\":4}");
    expect_refused("encode", p, IO, p, "tensor 'encoder.");
    snprintf(p, sizeof p, "%s", temp_dir_path(dir, "no-config.safetensors"));
    write_model_variant(p, NULL, "");
    expect_refused("encode", p, IO, p, "\"config\"");
    expect_refused("encode", UVIT, IO, UVIT, "unknown key");
}

/* encode --dataset: a whole labelled dataset into the latent file that
   training reads (harness/data/dataset_latent_file.c), with the
   autoencoder's scale factor; an unknown dataset or one of other channels
   is refused */
Test(cli_autoencoder, encode_a_dataset_into_a_latent_file)
{
    if (access("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", R_OK))
        cr_skip_test("Fashion-MNIST is not installed");
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    AutoencoderConfig c;
    cr_assert_eq(autoencoder_config_parse(&c, "{\"z_channels\": 2, \"resolution\": 28, \"in_channels\": 1, "
                                          "\"out_ch\": 1, \"ch\": 4, \"ch_mult\": [1, 2], \"num_res_blocks\": 1, "
                                          "\"embed_dim\": 2, \"num_groups\": 2, \"scale_factor\": 0.5}", "test"),
                 0, "%s", err_msg());
    Autoencoder m;
    autoencoder_create(&m, &ctx, &c);
    autoencoder_init_random(&m, &ctx, 7);
    const char *weights = temp_dir_path(dir, "fm-ae.safetensors");
    cr_assert_eq(autoencoder_save(&m, &ctx, weights, 0, NULL, NULL), 0, "%s", err_msg());
    char args[1024], err[2048];
    const char *out = temp_dir_path(dir, "latents.safetensors");
    snprintf(args, sizeof args, "encode --autoencoder '%s' --dataset fmnist-test --n 300 --output '%s' --batch 100 --threads 2",
             weights, out);
    cr_assert_eq(cli_run(args, NULL, 0, err, sizeof err), 0, "%s", err);

    DatasetSpec spec = {.format = DATA_LATENTS, .path = out};
    Dataset *lat, *img;
    cr_assert_eq(dataset_open(&spec, &lat), 0, "%s", err_msg());
    DatasetSpec fm = {.format = DATA_FMNIST, .test_split = 1};
    cr_assert_eq(dataset_open(&fm, &img), 0, "%s", err_msg());
    cr_assert(lat->n == 300 && lat->c == 2 && lat->h == 14 && lat->w == 14 && lat->num_classes == 10);
    /* item 123: its label, and z = 0.5 * the mean of its own encoding */
    float x[28 * 28], z[2 * 14 * 14], mom[4 * 14 * 14];
    int64_t y_img, y_lat;
    cr_assert_eq(dataset_get(img, 123, x, &y_img), 0);
    cr_assert_eq(dataset_get(lat, 123, z, &y_lat), 0);
    cr_expect_eq(y_lat, y_img);
    AutoencoderActs *a = autoencoder_acts_create(&ctx, &m, AE_ENCODER, 1, 28, 28, 0);
    autoencoder_encode_moments(&ctx, &m, a, tensor4(x, DT_F32, 1, 1, 28, 28), tensor4(mom, DT_F32, 1, 4, 14, 14));
    for (int j = 0; j < 2 * 14 * 14; j++)
        cr_assert(fabsf(z[j] - 0.5f * mom[j]) <= 1e-5f * (1 + fabsf(mom[j])), "z[%d] %g, mean %g", j, z[j], mom[j]);
    autoencoder_acts_destroy(&ctx, a);
    dataset_close(lat);
    dataset_close(img);

    const char *never = temp_dir_path(dir, "never.safetensors");
    snprintf(args, sizeof args, "encode --autoencoder '%s' --dataset mnist --output '%s'", weights, never);
    cr_expect_eq(cli_run(args, NULL, 0, err, sizeof err), 2);
    cr_expect(strstr(err, "--dataset: 'mnist' is not") != NULL, "%s", err);
    snprintf(args, sizeof args, "encode --autoencoder '%s' --dataset fmnist-test --output '%s'", MODEL, never);
    cr_expect_eq(cli_run(args, NULL, 0, err, sizeof err), 2);
    cr_expect(strstr(err, "has 1 channels, the autoencoder takes 3") != NULL, "%s", err);
    cr_expect(access(never, F_OK) != 0, "an output file was written");
    autoencoder_destroy(&m, &ctx);
    ctx_destroy(&ctx);
}
