/*
 * test_train_autoencoder.c: `deediff train-autoencoder` end to end on real
 * Fashion-MNIST with a tiny autoencoder: the loss falls, the written model
 * loads with its measured scale factor, the run's numbers are stored, and
 * bad configurations are one-line errors that write nothing.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kernels/errors.h"
#include "model/autoencoder.h"
#include "support/cli_run.h"
#include "support/db_query.h"
#include "support/temp_dir.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static char dir[64];
static void setup(void) { temp_dir_make(dir, sizeof dir, "/tmp/deediff-train-ae-XXXXXX"); }
static void teardown(void) { temp_dir_remove(dir); }
TestSuite(train_autoencoder, .init = setup, .fini = teardown, .timeout = 300);

/* writes the tiny configuration; returns its path */
static const char *tiny_config(void)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/ae.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"model\": {\"z_channels\": 2, \"resolution\": 28, \"in_channels\": 1, \"out_ch\": 1, \"ch\": 8,"
               " \"ch_mult\": [1, 2], \"num_res_blocks\": 1, \"embed_dim\": 2, \"num_groups\": 4},"
               " \"data\": {\"dataset\": \"fmnist\"},"
               " \"train\": {\"steps\": 12, \"batch\": 8, \"seed\": 2, \"log_every\": 6},"
               " \"optim\": {\"lr\": 2e-3, \"warmup_steps\": 0},"
               " \"output\": {\"dir\": \"%s/run\", \"db\": \"%s/results.db\", \"export\": \"%s/ae.safetensors\"}}\n",
            dir, dir, dir);
    fclose(f);
    return path;
}

static int run(const char *extra, char *err, size_t size)
{
    char args[1024];
    snprintf(args, sizeof args, "train-autoencoder --config %s --threads 2 %s", tiny_config(), extra);
    return cli_run(args, NULL, 0, err, size);
}

Test(train_autoencoder, trains_measures_and_writes_a_loadable_model)
{
    if (access(FMNIST, R_OK)) cr_skip_test("Fashion-MNIST is not installed");
    cli_need_binary();
    char err[8192], db[128], model[128];
    cr_assert_eq(run("", err, sizeof err), 0, "%s", err);
    snprintf(db, sizeof db, "%s/results.db", dir);
    snprintf(model, sizeof model, "%s/ae.safetensors", dir);
    double first = db_number(db, "SELECT loss FROM train_log ORDER BY step LIMIT 1");
    double last = db_number(db, "SELECT loss FROM train_log ORDER BY step DESC LIMIT 1");
    cr_expect(last < first, "the loss did not fall: %g -> %g", first, last);
    double scale = db_number(db, "SELECT value FROM metrics WHERE name = 'ae.scale_factor'");
    double recon = db_number(db, "SELECT value FROM metrics WHERE name = 'ae.recon_mse_test'");
    cr_expect(scale > 0 && isfinite(scale) && recon > 0 && recon < 2, "scale %g, reconstruction %g", scale, recon);
    cr_expect_eq(db_number(db, "SELECT count(*) FROM runs WHERE status = 'done' AND kind = 'train'"), 1);
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    Autoencoder m;
    cr_assert_eq(autoencoder_load(&m, &ctx, model), 0, "%s", err_msg());
    cr_expect(fabs(m.cfg.scale_factor - scale) < 1e-6 * scale, "file %g, database %g", m.cfg.scale_factor, scale);
    cr_expect(m.cfg.ch == 8 && m.cfg.embed_dim == 2);
    autoencoder_destroy(&m, &ctx);
    ctx_destroy(&ctx);
}

Test(train_autoencoder, bad_configurations_write_nothing)
{
    cli_need_binary();
    static const struct { const char *override, *needle; } cases[] = {
        {"model.ch=7", "ch"},
        {"model.in_channels=3", "in_channels"},
        {"data.dataset=latents", "an autoencoder trains on images"},
        {"output.export=", "output.export: where the autoencoder goes"},
        {"train.p_uncond=0.1", "train.p_uncond"},
        {"train.kl_weight=-1", "train.kl_weight"},
        {"model.resolution=32 model.ch_mult=[1,2,2,2]", "images are 28x28, not multiples of the factor 8"},
    };
    char err[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (strstr(cases[i].override, "in_channels") || strstr(cases[i].override, "factor"))
            if (access(FMNIST, R_OK)) continue;  // found only when the data is read
        int rc = run(cases[i].override, err, sizeof err);
        cr_expect_eq(rc, 2, "%s: exit %d", cases[i].override, rc);
        cr_expect(strstr(err, cases[i].needle) != NULL, "%s: %s", cases[i].override, err);
        cr_expect_eq(count_lines(err), 1, "%s: %s", cases[i].override, err);
    }
    char p[128];
    snprintf(p, sizeof p, "%s/results.db", dir);
    cr_expect(access(p, F_OK) != 0, "a database was created");
    snprintf(p, sizeof p, "%s/ae.safetensors", dir);
    cr_expect(access(p, F_OK) != 0, "a model was written");
}

/* U-ViT training has no KL term to weigh */
Test(train_autoencoder, kl_weight_is_refused_for_a_uvit)
{
    cli_need_binary();
    char err[4096], args[512];
    snprintf(args, sizeof args, "train --config experiments/deediff/fmnist-deediff.json train.kl_weight=1 "
                                "output.dir=%s/u output.db=%s/u.db", dir, dir);
    cr_expect_eq(cli_run(args, NULL, 0, err, sizeof err), 2);
    cr_expect(strstr(err, "train.kl_weight: only an autoencoder's training has a KL term") != NULL, "%s", err);
}
