/*
 * test_train.c: the training loop end to end on real Fashion-MNIST with a
 * tiny U-ViT: exact resume, NaN handling, and bad configurations (one-line
 * errors, nothing written).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../harness/train/train_checkpoint.h"
#include "../kernels/errors.h"
#include "../model/safetensors.h"
#include "support/cli_run.h"
#include "support/temp_dir.h"
#include "support/train_cpu.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static char dir[64];

static void setup(void) { temp_dir_make(dir, sizeof dir, "/tmp/deediff-train-XXXXXX"); }

static void teardown(void) { temp_dir_remove(dir); }

/* writes the tiny configuration and returns its path */
static const char *tiny_config(void)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/tiny.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"model\": {\"img_size\": 28, \"patch_size\": 7, \"in_chans\": 1, \"embed_dim\": 16,"
               " \"depth\": 2, \"num_heads\": 2},"
               " \"data\": {\"dataset\": \"fmnist\"},"
               " \"train\": {\"steps\": 6, \"batch\": 4, \"seed\": 3, \"log_every\": 2, \"ckpt_every\": 3},"
               " \"optim\": {\"lr\": 1e-3, \"warmup_steps\": 2, \"ema_decay\": 0.9}}\n");
    fclose(f);
    return path;
}

/* trains with overrides (output folder and db inside dir); returns rc */
static int train(const char *out, const char *resume, const char *extra)
{
    char o1[256], o2[256];
    snprintf(o1, sizeof o1, "output.dir=%s/%s", dir, out);
    snprintf(o2, sizeof o2, "output.db=%s/results.db", dir);
    const char *ov[3] = {o1, o2, extra};
    return train_cpu(tiny_config(), extra ? 3 : 2, ov, resume);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = malloc(*n);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* every tensor of two checkpoints is bit-identical */
static void expect_same_tensors(const char *a, const char *b)
{
    SafeTensors x, y;
    cr_assert_eq(st_open(&x, a), 0, "%s", err_msg());
    cr_assert_eq(st_open(&y, b), 0, "%s", err_msg());
    cr_assert_eq(x.count, y.count);
    for (int i = 0; i < x.count; i++) {
        const StEntry *e = &x.entries[i], *f = st_find(&y, e->name);
        cr_assert_not_null(f, "%s missing", e->name);
        cr_expect(e->end - e->begin == f->end - f->begin &&
                      memcmp(st_data(&x, e), st_data(&y, f), e->end - e->begin) == 0,
                  "%s differs", e->name);
    }
    st_close(&x);
    st_close(&y);
}

TestSuite(train, .init = setup, .fini = teardown, .timeout = 120);

Test(train, resume_is_bit_identical)
{
    if (access(FMNIST, R_OK)) cr_skip_test("Fashion-MNIST is not installed");
    cr_assert_eq(train("straight", NULL, NULL), 0, "%s", err_msg());
    cr_assert_eq(train("split", NULL, "train.steps=3"), 0, "%s", err_msg());
    char ck[256], straight[256];
    snprintf(ck, sizeof ck, "%s/split/checkpoint.safetensors", dir);
    snprintf(straight, sizeof straight, "%s/straight/checkpoint.safetensors", dir);
    cr_assert_eq(train("split", ck, NULL), 0, "%s", err_msg());
    expect_same_tensors(straight, ck);
}

Test(train, nan_loss_names_the_step_and_keeps_the_checkpoint)
{
    if (access(FMNIST, R_OK)) cr_skip_test("Fashion-MNIST is not installed");
    cr_assert_eq(train("run", NULL, "train.steps=3"), 0, "%s", err_msg());
    char ck[256];
    snprintf(ck, sizeof ck, "%s/run/checkpoint.safetensors", dir);
    size_t n0, n1;
    uint8_t *before = slurp(ck, &n0);
    /* a huge learning rate blows the weights up on the next update */
    int rc = train("run", ck, "optim.lr=1e30");
    cr_assert_eq(rc, -1);
    cr_expect(strstr(err_msg(), "step 5: the loss is") != NULL, "%s", err_msg());
    cr_expect(strstr(err_msg(), "step 3") != NULL, "%s", err_msg());
    uint8_t *after = slurp(ck, &n1);
    cr_expect(n0 == n1 && memcmp(before, after, n0) == 0, "the checkpoint changed");
    free(before);
    free(after);
}

Test(train, resume_from_another_configuration_is_refused)
{
    if (access(FMNIST, R_OK)) cr_skip_test("Fashion-MNIST is not installed");
    cr_assert_eq(train("a", NULL, "train.steps=3"), 0, "%s", err_msg());
    char ck[256];
    snprintf(ck, sizeof ck, "%s/a/checkpoint.safetensors", dir);
    cr_assert_eq(train("b", ck, "model.embed_dim=32"), -1);
    cr_expect(strstr(err_msg(), "checkpoint of another configuration") != NULL, "%s", err_msg());
    cr_expect(strstr(err_msg(), ck) == err_msg(), "the message starts with the file: %s", err_msg());
    char b[256];
    snprintf(b, sizeof b, "%s/b", dir);
    cr_expect(access(b, F_OK) != 0, "an output folder was created");
}

Test(train, bad_configurations_write_nothing)
{
    static const struct { const char *override, *needle; } cases[] = {
        {"train.stepz=3", "train.stepz: unknown key"},
        {"train.batch=0", "train.batch: 0 is outside"},
        {"optim.lr=\"fast\"", "optim.lr: must be a number"},
        {"data.dataset=\"mnist\"", "data.dataset: 'mnist'"},
        {"data.path=\"/nonexistent\"", "/nonexistent"},
        {"model.depth=3", "depth"},
        {"model.in_chans=3", "the model takes 3x28x28"},
        {"train.p_uncond=0.1", "train.p_uncond"},
        {"nonsense", "expected section.key=value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_expect_eq(train("out", NULL, cases[i].override), -1, "%s was accepted", cases[i].override);
        cr_expect(strstr(err_msg(), cases[i].needle) != NULL, "%s: %s", cases[i].override, err_msg());
        cr_expect(strchr(err_msg(), '\n') == NULL);
    }
    char p[256];
    snprintf(p, sizeof p, "%s/results.db", dir);
    cr_expect(access(p, F_OK) != 0, "a database was created");
    snprintf(p, sizeof p, "%s/out", dir);
    cr_expect(access(p, F_OK) != 0, "an output folder was created");
}

/* `deediff train --resume auto`: the run's own checkpoint when it holds this
   configuration (a killed run's rerun), a fresh start when it does not */
Test(train, resume_auto_continues_only_its_own_configuration)
{
    if (access(FMNIST, R_OK)) cr_skip_test("Fashion-MNIST is not installed");
    cli_need_binary();
    char args[1024], err[4096];
    const char *cfg = tiny_config();
    snprintf(args, sizeof args, "train --config %s output.dir=%s/run output.db=%s/results.db train.steps=3 --resume auto",
             cfg, dir, dir);
    cr_assert_eq(cli_run(args, NULL, 0, err, sizeof err), 0, "%s", err);
    cr_expect(strstr(err, "--resume auto") == NULL, "a first run has nothing to resume: %s", err);
    cr_assert_eq(cli_run(args, NULL, 0, err, sizeof err), 0, "%s", err);
    cr_expect(strstr(err, "--resume auto: continuing from") != NULL, "%s", err);
    snprintf(args, sizeof args, "train --config %s output.dir=%s/run output.db=%s/results.db train.steps=4 --resume auto",
             cfg, dir, dir);
    cr_assert_eq(cli_run(args, NULL, 0, err, sizeof err), 0, "%s", err);
    cr_expect(strstr(err, "written by another configuration; starting afresh") != NULL, "%s", err);
}
