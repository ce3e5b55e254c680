/*
 * test_eval.c: `deediff eval` and `deediff table 1` as a user runs them, on
 * the committed Fashion-MNIST U-ViT (results/weights/fmnist-uvit.safetensors)
 * with a cheap protocol (130 images, DPM-Solver 3 steps, fmnist-test): the
 * distance is named FD-FMNIST-130 and never FID, the database holds one eval
 * run with its metrics and protocol, the table shows the row; N below the
 * feature dimension and a missing reference exit 2 with one line; the
 * distance from memory equals `deediff fid` of the PNGs `deediff sample`
 * writes with the same protocol. Also the
 * SHA-256 behind every protocol's hashes, against FIPS 180-4 vectors.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness/eval/fd_name.h"
#include "../harness/store/file_hash.h"
#include "../kernels/errors.h"
#include "../model/autoencoder.h"
#include "support/cli_run.h"
#include "support/db_query.h"
#include "support/temp_dir.h"
#include "support/tiny_uvit.h"

#define UVIT "results/weights/fmnist-uvit.safetensors"

static char dir[64];

static void setup(void) { temp_dir_make(dir, sizeof dir, "/tmp/deediff-eval-XXXXXX"); }

static void teardown(void) { temp_dir_remove(dir); }

TestSuite(eval, .init = setup, .fini = teardown, .timeout = 120);

static void need_binary(void)
{
    cli_need_binary();
    if (access(UVIT, R_OK)) cr_skip_test("%s is missing", UVIT);
}

Test(eval, sha256_matches_fips_vectors)
{
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_hex("", 0, hex);
    cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    // two blocks: the padding crosses a block boundary
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(m, strlen(m), hex);
    cr_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char path[128];
    snprintf(path, sizeof path, "%s/abc", dir);
    FILE *f = fopen(path, "wb");
    fputs("abc", f);
    fclose(f);
    cr_assert_eq(file_sha256(path, hex), 0);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(eval, distance_names_carry_network_and_n)
{
    char b[64];
    cr_assert_str_eq(fd_name("fmnist", 1000, b, sizeof b), "FD-FMNIST-1k");
    cr_assert_str_eq(fd_name("inception", 50000, b, sizeof b), "FID-50k");
    cr_assert_str_eq(fd_name(NULL, 2500, b, sizeof b), "FD-2.5k");
    cr_assert_str_eq(fd_name("fmnist", 130, b, sizeof b), "FD-FMNIST-130");
}

Test(eval, stores_one_run_with_its_protocol)
{
    need_binary();
    static char out[16384], err[16384];
    char args[1024], db[128];
    snprintf(db, sizeof db, "%s/r.db", dir);
    snprintf(args, sizeof args,
             "eval --model " UVIT " --n 130 --sampler dpm --steps 3 --ref fmnist-test --db %s --stats-dir %s/stats "
             "--threads 2",
             db, dir);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "stdout: %s\nstderr: %s", out, err);
    cr_assert_not_null(strstr(out, "FD-FMNIST-130 = "), "%s", out);
    cr_assert_null(strstr(out, "FID"), "the proxy must never be called FID: %s", out);
    cr_assert_not_null(strstr(err, "warning: N = 130 < 50000"), "%s", err);

    cr_assert_eq(db_number(db, "SELECT count(*) FROM runs WHERE kind = 'eval' AND status = 'done'"), 1);
    cr_assert_eq(db_number(db, "SELECT count(*) FROM runs"), 1);
    double fd = db_number(db, "SELECT value FROM metrics WHERE name = 'fd_fmnist'");
    cr_assert(fd > 0, "fd_fmnist %g", fd);
    cr_assert_eq(db_number(db, "SELECT count(*) FROM metrics WHERE name = 'fid'"), 0);
    cr_assert_eq(db_number(db, "SELECT value FROM metrics WHERE name = 'layers_ratio'"), 1.0);
    double gmacs = db_number(db, "SELECT value FROM metrics WHERE name = 'gmacs_per_image'");
    cr_assert(gmacs > 0);
    cr_assert_float_eq(db_number(db, "SELECT value FROM metrics WHERE name = 'gflops_per_image'"), 2 * gmacs, 1e-12);
    cr_assert(db_number(db, "SELECT value FROM metrics WHERE name = 'seconds_per_image'") > 0);
    // the protocol travels with the run
    cr_assert_eq(db_number(db, "SELECT json_extract(config, '$.n') FROM runs"), 130);
    cr_assert_eq(db_number(db, "SELECT json_extract(config, '$.steps') FROM runs"), 3);
    cr_assert_eq(db_number(db, "SELECT length(json_extract(config, '$.model_sha256')) FROM runs"), 64);
    cr_assert_eq(db_number(db, "SELECT length(json_extract(config, '$.ref_sha256')) FROM runs"), 64);
    cr_assert_eq(db_number(db, "SELECT json_extract(config, '$.weights') = 'ema' FROM runs"), 1);
    cr_assert_eq(db_number(db, "SELECT json_extract(config, '$.feature_dim') FROM runs"), 128);

    // evaluating from memory equals evaluating the PNGs deediff sample writes
    double fd_printed, fd_png;
    cr_assert_eq(sscanf(strstr(out, "FD-FMNIST-130 = "), "FD-FMNIST-130 = %lf", &fd_printed), 1);
    snprintf(args, sizeof args,
             "sample --model " UVIT " --n 130 --sampler dpm --steps 3 --out %s/png --threads 2 && rm %s/png/grid.png && "
             "$DEEDIFF fid %s/png %s/stats/fmnist-test-*.npz --features fmnist",
             dir, dir, dir, dir);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    const char *at = strstr(out, "FD-FMNIST-130 (vs N = 10k) = ");
    at = at ? strstr(at, ") = ") + 1 : NULL;
    cr_assert(at && sscanf(at, " = %lf", &fd_png) == 1, "%s", out);
    cr_assert_float_eq(fd_png, fd_printed, 1e-4 + 5e-5 /* printed to 4 decimals */, "PNG folder %g vs memory %g", fd_png, fd_printed);

    // the paper's tables are experiments now (tests/test_runner.c draws them)
    snprintf(args, sizeof args, "table 1 --db %s", db);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 2, "%s", err);
    cr_assert_not_null(strstr(err, "deediff run experiments/table1.json"), "%s", err);
}

Test(eval, refuses_n_below_the_feature_dimension)
{
    need_binary();
    char out[4096], err[4096], args[512];
    snprintf(args, sizeof args, "eval --model " UVIT " --n 127 --sampler dpm --steps 3 --ref fmnist-test --db %s/r.db",
             dir);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 2);
    cr_assert_eq(count_lines(err), 1, "%s", err);
    cr_assert_not_null(strstr(err, "below the feature dimension 128"), "%s", err);
    snprintf(args, sizeof args, "%s/r.db", dir);
    cr_assert_neq(access(args, F_OK), 0, "nothing is stored for a refused run");
}

Test(eval, missing_reference_or_database_is_named)
{
    need_binary();
    char out[4096], err[4096], args[512];
    snprintf(args, sizeof args, "eval --model " UVIT " --n 200 --ref %s/none.npz --db %s/r.db", dir, dir);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 2);
    cr_assert_eq(count_lines(err), 1, "%s", err);
    cr_assert_not_null(strstr(err, "none.npz"), "%s", err);
    // a missing results database is named too
    snprintf(args, sizeof args, "table sweep --model " UVIT " --db %s/missing.db", dir);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 2);
    cr_assert_eq(count_lines(err), 1, "%s", err);
    cr_assert_not_null(strstr(err, "missing.db"), "%s", err);
}

/* a latent model and its autoencoder, random, written under dir: a U-ViT on
   2x14x14 latents (class-conditional, 11 classes) and a 1-channel
   autoencoder of factor 2 */
static void write_latent_pair(const char *uvit, const char *ae, int embed_dim)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    UViT m;
    tiny_uvit_create(&m, &ctx, "{\"img_size\": 14, \"patch_size\": 2, \"in_chans\": 2, \"embed_dim\": 16, "
                                "\"depth\": 2, \"num_heads\": 2, \"num_classes\": 11}", 3);
    cr_assert_eq(uvit_save(&m, &ctx, uvit, 0, NULL, NULL), 0, "%s", err_msg());
    uvit_destroy(&m, &ctx);
    AutoencoderConfig c;
    char json[512];
    snprintf(json, sizeof json, "{\"z_channels\": 2, \"resolution\": 28, \"in_channels\": 1, \"out_ch\": 1, "
                                "\"ch\": 4, \"ch_mult\": [1, 2], \"num_res_blocks\": 1, \"embed_dim\": %d, "
                                "\"num_groups\": 2, \"scale_factor\": 0.7}", embed_dim);
    cr_assert_eq(autoencoder_config_parse(&c, json, "test"), 0, "%s", err_msg());
    Autoencoder a;
    autoencoder_create(&a, &ctx, &c);
    autoencoder_init_random(&a, &ctx, 4);
    cr_assert_eq(autoencoder_save(&a, &ctx, ae, 0, NULL, NULL), 0, "%s", err_msg());
    autoencoder_destroy(&a, &ctx);
    ctx_destroy(&ctx);
}

/* --autoencoder: latent samples are decoded before the features, the
   decoder's time and the autoencoder are stored; a latent model without
   it, or with one of other channels, is one line and exit 2 */
Test(eval, latent_model_decodes_through_its_autoencoder)
{
    cli_need_binary();
    static char out[16384], err[16384];
    char uvit[128], ae[128], other[128], db[128], args[1024];
    snprintf(uvit, sizeof uvit, "%s/latent-uvit.safetensors", dir);
    snprintf(ae, sizeof ae, "%s/ae.safetensors", dir);
    snprintf(other, sizeof other, "%s/ae3.safetensors", dir);
    snprintf(db, sizeof db, "%s/r.db", dir);
    write_latent_pair(uvit, ae, 2);
    write_latent_pair(uvit, other, 3);
    const char *common = "--n 130 --sampler dpm --steps 2 --ref fmnist-test --guidance 0.4 --threads 2";
    snprintf(args, sizeof args, "eval --model %s --autoencoder %s %s --db %s --stats-dir %s/stats", uvit, ae, common,
             db, dir);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "stdout: %s\nstderr: %s", out, err);
    cr_expect_not_null(strstr(out, "decoded by"), "%s", out);
    cr_expect(db_number(db, "SELECT value FROM metrics WHERE name = 'fd_fmnist'") > 0);
    cr_expect(db_number(db, "SELECT value FROM metrics WHERE name = 'decode_seconds_per_image'") > 0);
    cr_expect_eq(db_number(db, "SELECT length(json_extract(config, '$.autoencoder_sha256')) FROM runs"), 64);
    cr_expect_float_eq(db_number(db, "SELECT json_extract(config, '$.scale_factor') FROM runs"), 0.7, 1e-9);
    cr_expect_eq(db_number(db, "SELECT json_extract(config, '$.guidance') FROM runs"), 0.4);

    static const struct { const char *ae, *needle; } bad[] = {
        {NULL, "2-channel samples (latents) cannot be evaluated without the autoencoder that made them"},
        {"other", "config: embed_dim 3, but the model samples 2-channel latents"},
        {"missing", "--autoencoder: "},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char flag[256] = "";
        if (bad[i].ae) snprintf(flag, sizeof flag, "--autoencoder %s", !strcmp(bad[i].ae, "other") ? other
                                                                        : "/nonexistent/ae.safetensors");
        snprintf(args, sizeof args, "eval --model %s %s %s --db %s/never.db --stats-dir %s/stats", uvit, flag, common,
                 dir, dir);
        cr_expect_eq(cli_run(args, out, sizeof out, err, sizeof err), 2, "%s", err);
        cr_expect_not_null(strstr(err, bad[i].needle), "'%s' not in: %s", bad[i].needle, err);
        cr_expect_eq(count_lines(err), 1, "%s", err);
    }
    char never[128];
    snprintf(never, sizeof never, "%s/never.db", dir);
    cr_expect(access(never, F_OK) != 0, "a database was written");
}
