/*
 * test_autoencoder_convert.c: tests/reference/convert_autoencoder_pth.py
 * with the C model ("autoencoder_convert" suite).
 *
 * The converter writes a .pth of autoencoder_ref.py's model with random
 * weights (as U-ViT's autoencoder_kl.pth is: a plain state dict) in a
 * configuration with the official 32 GroupNorm groups, and PyTorch's
 * float64 moments and images of it; the test converts the .pth, loads the
 * result like any checkpoint and compares (relative L2 < 1e-4); converts it
 * back to .pth and again to .safetensors (the same weights, bit for bit);
 * and checks that a .pth of another configuration is refused in one line
 * naming the file and the tensor, exit status 2, nothing written.
 * Skipped when /usr/bin/python3 cannot import torch.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/errors.h"
#include "model/autoencoder.h"
#include "tests/support/cli_run.h"
#include "tests/support/golden_fixture.h"
#include "tests/support/gradcheck.h"
#include "tests/support/temp_dir.h"

#define PYTHON "/usr/bin/python3"
#define CONVERT "tests/reference/convert_autoencoder_pth.py"
/* ch 32 for the official 32 groups; two levels; scale_factor's default */
#define CONFIG "{\"z_channels\":4,\"resolution\":16,\"in_channels\":3,\"out_ch\":3,\"ch\":32,\"ch_mult\":[1,2]," \
               "\"num_res_blocks\":1,\"embed_dim\":4}"

static char dir[64];

static void setup(void)
{
    if (shell_run(PYTHON " -c 'import torch'", NULL, 0, NULL, 0) != 0)
        cr_skip_test(PYTHON " cannot import torch (Debian: python3-torch)");
    temp_dir_make(dir, sizeof dir, "/tmp/deediff-ae-convert-XXXXXX");
}

static void teardown(void) { temp_dir_remove(dir); }

TestSuite(autoencoder_convert, .init = setup, .fini = teardown, .timeout = 120);

/* runs the converter with args; returns its exit status, stderr in err */
static int convert(const char *args, char *err, size_t n)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, PYTHON " " CONVERT " %s", args);
    return shell_run(cmd, NULL, 0, err, n);
}

/* runs one part of m on io tensor `in` and compares with io tensor `want` */
static void expect_part(Ctx *ctx, const Autoencoder *m, const SafeTensors *io, AutoencoderPart part)
{
    const char *in_name = part == AE_ENCODER ? "x" : "z", *out_name = part == AE_ENCODER ? "moments" : "images";
    const StEntry *ei = st_find(io, in_name), *eo = st_find(io, out_name);
    cr_assert(ei && eo && ei->ndim == 4 && eo->ndim == 4, "io lacks %s or %s", in_name, out_name);
    int64_t side = part == AE_ENCODER ? ei->shape[2] : eo->shape[2];
    float *in = fixture_f32(io, in_name, 4, ei->shape), *want = fixture_f32(io, out_name, 4, eo->shape);
    int64_t n = eo->shape[0] * eo->shape[1] * eo->shape[2] * eo->shape[3];
    float *got = calloc((size_t)n, sizeof(float));
    AutoencoderActs *a = autoencoder_acts_create(ctx, m, part, (int)ei->shape[0], side, side, 0);
    Tensor ti = tensor4(in, DT_F32, ei->shape[0], ei->shape[1], ei->shape[2], ei->shape[3]);
    Tensor to = tensor4(got, DT_F32, eo->shape[0], eo->shape[1], eo->shape[2], eo->shape[3]);
    if (part == AE_ENCODER) autoencoder_encode_moments(ctx, m, a, ti, to);
    else autoencoder_decode(ctx, m, a, ti, to);
    double e = rel_l2(got, want, n);
    cr_expect(e < 1e-4, "%s: relative error %g", out_name, e);
    autoencoder_acts_destroy(ctx, a);
    free(in), free(want), free(got);
}

/* one test: every converter run costs a PyTorch start (2-3 s of CPU) */
Test(autoencoder_convert, converted_pth_matches_pytorch_round_trips_and_checks_its_config)
{
    char args[1024], err[4096];
    const char *pth = temp_dir_path(dir, "random.pth"), *io_path = temp_dir_path(dir, "io.safetensors");
    snprintf(args, sizeof args, "--write-random '%s' --config '" CONFIG "' --seed 5 --io '%s'", pth, io_path);
    cr_assert_eq(convert(args, err, sizeof err), 0, "%s", err);
    char st_path[256], back[256], again[256];
    snprintf(st_path, sizeof st_path, "%s", temp_dir_path(dir, "random.safetensors"));
    snprintf(back, sizeof back, "%s", temp_dir_path(dir, "back.pth"));
    snprintf(again, sizeof again, "%s", temp_dir_path(dir, "again.safetensors"));
    snprintf(args, sizeof args, "'%s' '%s' --config '" CONFIG "'", pth, st_path);
    cr_assert_eq(convert(args, err, sizeof err), 0, "%s", err);

    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    Autoencoder m, m2;
    cr_assert_eq(autoencoder_load(&m, &ctx, st_path), 0, "%s", err_msg());
    cr_expect_eq(m.cfg.num_groups, 32);
    SafeTensors io;
    cr_assert_eq(st_open(&io, io_path), 0, "%s", err_msg());
    expect_part(&ctx, &m, &io, AE_ENCODER);
    expect_part(&ctx, &m, &io, AE_DECODER);
    st_close(&io);

    /* back to .pth (config from the metadata) and in again: the same weights */
    snprintf(args, sizeof args, "'%s' '%s'", st_path, back);
    cr_assert_eq(convert(args, err, sizeof err), 0, "%s", err);
    snprintf(args, sizeof args, "'%s' '%s' --config '" CONFIG "'", back, again);
    cr_assert_eq(convert(args, err, sizeof err), 0, "%s", err);
    cr_assert_eq(autoencoder_load(&m2, &ctx, again), 0, "%s", err_msg());
    cr_expect(m.total == m2.total && memcmp(m.weights, m2.weights, m.total * sizeof(float)) == 0,
              "weights changed on the round trip");
    autoencoder_destroy(&m, &ctx);
    autoencoder_destroy(&m2, &ctx);
    ctx_destroy(&ctx);

    /* the same .pth read as Stable Diffusion's configuration (the default) */
    const char *out = temp_dir_path(dir, "never.safetensors");
    snprintf(args, sizeof args, "'%s' '%s'", pth, out);
    int rc = convert(args, err, sizeof err);
    cr_expect_eq(rc, 2, "exit %d: %s", rc, err);
    cr_expect_eq(count_lines(err), 1, "not one line: %s", err);
    cr_expect(strstr(err, pth) && strstr(err, "tensor 'encoder.conv_in.weight'"), "file or tensor not named: %s", err);
    cr_expect(access(out, F_OK) != 0, "an output file was written");
}
