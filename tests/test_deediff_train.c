/*
 * test_deediff_train.c: DeeDiff trained end to end on real Fashion-MNIST
 * from a tiny backbone file (suite "deediff_train"): a run resumes bit for
 * bit, jointly and with the backbone frozen; the exported model and the
 * checkpoint name their method, load with it (method_load with no requested
 * method), and redraw the same samples through `deediff sample
 * --threshold` (when DEEDIFF names the binary).
 */
#include <criterion/criterion.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kernels/errors.h"
#include "../model/method.h"
#include "../model/safetensors.h"
#include "support/cli_run.h"
#include "support/temp_dir.h"
#include "support/tiny_uvit.h"
#include "support/train_cpu.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static char dir[64];

static void setup(void) { temp_dir_make(dir, sizeof dir, "/tmp/deediff-dtrain-XXXXXX"); }

static void teardown(void) { temp_dir_remove(dir); }

TestSuite(deediff_train, .init = setup, .fini = teardown, .timeout = 180);

static const char *path_in(const char *name) { return temp_dir_path(dir, name); }

/* a tiny Fashion-MNIST backbone (5 blocks: 4 exits), randomly initialised,
   as a plain model file; the training configuration (no model section: it
   is the backbone's) */
static void write_inputs(void)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    UViT m;
    tiny_uvit_create(&m, &ctx,
                     "{\"img_size\":28,\"patch_size\":7,\"in_chans\":1,\"embed_dim\":16,\"depth\":4,"
                     "\"num_heads\":2,\"mlp_ratio\":2,\"conv\":true}",
                     11);
    cr_assert_eq(uvit_save(&m, &ctx, path_in("backbone.safetensors"), 0, NULL, NULL), 0, "%s", err_msg());
    uvit_destroy(&m, &ctx);
    ctx_destroy(&ctx);
    FILE *f = fopen(path_in("deediff.json"), "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"data\": {\"dataset\": \"fmnist\"},"
               " \"train\": {\"steps\": 6, \"batch\": 4, \"seed\": 3, \"log_every\": 2, \"ckpt_every\": 3},"
               " \"optim\": {\"lr\": 1e-3, \"warmup_steps\": 2, \"ema_decay\": 0.9},"
               " \"method\": {\"name\": \"deediff\", \"uem_buckets\": 3}}\n");
    fclose(f);
}

/* trains into dir/out (exporting dir/out/model.safetensors), resuming when
   asked; extra1, extra2 are more overrides or NULL. Returns train_run's rc. */
static int train(const char *out, const char *resume, const char *extra1, const char *extra2)
{
    char o1[256], o2[256], o3[256], o4[256];
    snprintf(o1, sizeof o1, "output.dir=%s/%s", dir, out);
    snprintf(o2, sizeof o2, "output.db=%s/results.db", dir);
    snprintf(o3, sizeof o3, "output.init=%s/backbone.safetensors", dir);
    snprintf(o4, sizeof o4, "output.export=%s/%s/model.safetensors", dir, out);
    const char *ov[6] = {o1, o2, o3, o4};
    int n = 4;
    if (extra1) ov[n++] = extra1;
    if (extra2) ov[n++] = extra2;
    return train_cpu(path_in("deediff.json"), n, ov, resume);
}

/* every tensor of two files is bit-identical; returns how many differ */
static int count_differing_tensors(const char *a, const char *b)
{
    SafeTensors x, y;
    cr_assert_eq(st_open(&x, a), 0, "%s", err_msg());
    cr_assert_eq(st_open(&y, b), 0, "%s", err_msg());
    cr_expect_eq(x.count, y.count);
    int differ = 0;
    for (int i = 0; i < x.count; i++) {
        const StEntry *e = &x.entries[i], *f = st_find(&y, e->name);
        cr_assert_not_null(f, "%s missing in %s", e->name, b);
        if (e->end - e->begin != f->end - f->begin || memcmp(st_data(&x, e), st_data(&y, f), e->end - e->begin)) {
            cr_log_error("%s differs", e->name);
            differ++;
        }
    }
    st_close(&x);
    st_close(&y);
    return differ;
}

/* the file holds a tensor whose name starts with prefix */
static int has_tensor_prefix(const char *path, const char *prefix)
{
    SafeTensors st;
    cr_assert_eq(st_open(&st, path), 0, "%s", err_msg());
    int found = 0;
    for (int i = 0; i < st.count; i++) found |= !strncmp(st.entries[i].name, prefix, strlen(prefix));
    st_close(&st);
    return found;
}

/* 6. six steps straight = three steps, then --resume to six: every tensor of
   the checkpoint (backbone, method, both EMAs, both optimizers' moments) and
   of the exported model */
static void expect_exact_resume(const char *extra)
{
    cr_assert_eq(train("straight", NULL, extra, NULL), 0, "%s", err_msg());
    cr_assert_eq(train("split", NULL, extra, "train.steps=3"), 0, "%s", err_msg());
    const char *ck = path_in("split/checkpoint.safetensors");
    cr_assert_eq(train("split", ck, extra, NULL), 0, "%s", err_msg());
    const char *straight = path_in("straight/checkpoint.safetensors");
    cr_expect(has_tensor_prefix(straight, "model.method.heads.") && has_tensor_prefix(straight, "ema.method.uem.") &&
                  has_tensor_prefix(straight, "method_optim.m"),
              "the checkpoint lacks the method's parameters or moments");
    cr_expect_eq(count_differing_tensors(straight, ck), 0, "the resumed checkpoint differs");
    cr_expect_eq(count_differing_tensors(path_in("straight/model.safetensors"), path_in("split/model.safetensors")), 0,
                 "the resumed run's exported model differs");
}

Test(deediff_train, resume_is_bit_identical)
{
    if (access(FMNIST, R_OK)) cr_skip_test("Fashion-MNIST is not installed");
    write_inputs();
    expect_exact_resume(NULL);
}

Test(deediff_train, resume_with_a_frozen_backbone_is_bit_identical)
{
    if (access(FMNIST, R_OK)) cr_skip_test("Fashion-MNIST is not installed");
    write_inputs();
    expect_exact_resume("train.freeze_backbone=true");
    /* frozen: the backbone stays the file's */
    SafeTensors a, b;
    cr_assert_eq(st_open(&a, path_in("backbone.safetensors")), 0, "%s", err_msg());
    cr_assert_eq(st_open(&b, path_in("straight/model.safetensors")), 0, "%s", err_msg());
    for (int i = 0; i < a.count; i++) {
        const StEntry *e = &a.entries[i], *f = st_find(&b, e->name);
        cr_assert_not_null(f, "%s", e->name);
        cr_expect(memcmp(st_data(&a, e), st_data(&b, f), e->end - e->begin) == 0, "%s moved", e->name);
    }
    st_close(&a);
    st_close(&b);
}

/* the pixels of a PNG (8-bit gray), n of them; free() the result */
static uint8_t *png_pixels(const char *path, size_t *n)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_file(&img, path), "%s: %s", path, img.message);
    img.format = PNG_FORMAT_GRAY;
    *n = PNG_IMAGE_SIZE(img);
    uint8_t *px = malloc(*n);
    cr_assert(png_image_finish_read(&img, NULL, px, 0, NULL), "%s: %s", path, img.message);
    return px;
}

/* deediff sample into dir/out; the exit status */
static int sample(const char *model, const char *weights, const char *threshold, const char *out, char *stdout_buf,
                  size_t size)
{
    char args[1024], err[4096];
    snprintf(args, sizeof args, "sample --model '%s'%s%s --threshold %s --n 3 --steps 5 --seed 2 --out '%s'", model,
             weights ? " --weights " : "", weights ? weights : "", threshold, path_in(out));
    int rc = cli_run(args, stdout_buf, size, err, sizeof err);
    cr_expect_eq(rc, 0, "%s: %s", args, err);
    return rc;
}

static void expect_same_pixels(const char *a, const char *b)
{
    for (int i = 0; i < 3; i++) {
        char pa[256], pb[256];
        snprintf(pa, sizeof pa, "%s/%s/%06d.png", dir, a, i);
        snprintf(pb, sizeof pb, "%s/%s/%06d.png", dir, b, i);
        size_t na, nb;
        uint8_t *x = png_pixels(pa, &na), *y = png_pixels(pb, &nb);
        cr_expect(na == nb && memcmp(x, y, na) == 0, "image %d differs between %s and %s", i, a, b);
        free(x);
        free(y);
    }
}

/* 7. the exported model and the checkpoint are deediff's: method_load takes
   the method from the metadata, and sampling twice (and from the
   checkpoint's EMA weights) draws the same pixels */
Test(deediff_train, model_and_checkpoint_load_as_deediff_and_redraw_the_samples)
{
    if (access(FMNIST, R_OK)) cr_skip_test("Fashion-MNIST is not installed");
    write_inputs();
    cr_assert_eq(train("run", NULL, NULL, NULL), 0, "%s", err_msg());
    const char *model = path_in("run/model.safetensors"), *ck = path_in("run/checkpoint.safetensors");
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    const char *files[2] = {model, ck};
    float *weights[2] = {NULL, NULL};
    size_t total = 0;
    for (int k = 0; k < 2; k++) {
        UViT m;
        Method *me;
        cr_assert_eq(method_load(files[k], NULL, NULL, &ctx, &m, &me), 0, "%s", err_msg());
        cr_expect_str_eq(me->kind->name, "deediff", "%s", files[k]);
        char *opts = method_options_json(me);
        cr_expect(strstr(opts, "\"uem_buckets\":3") != NULL, "%s: options %s", files[k], opts);
        free(opts);
        cr_assert(me->total > 0);
        total = me->total;
        weights[k] = malloc(total * sizeof(float));
        memcpy(weights[k], me->weights, total * sizeof(float));
        method_free(me, &ctx);
        uvit_destroy(&m, &ctx);
    }
    /* the export is the checkpoint's EMA (the default prefix of a checkpoint) */
    cr_expect(memcmp(weights[0], weights[1], total * sizeof(float)) == 0,
              "the exported method parameters are not the checkpoint's EMA");
    free(weights[0]);
    free(weights[1]);
    ctx_destroy(&ctx);

    if (!cli_binary()) cr_skip_test("DEEDIFF is not set: the sampling half needs the binary");
    static char out[8192];
    /* 0.3 as a user would; 0.5 sits at an untrained UEM's sigmoid(0) and sends images out early */
    const char *thresholds[2] = {"0.3", "0.5"};
    for (int k = 0; k < 2; k++) {
        char a[32], b[32], c[32];
        snprintf(a, sizeof a, "a%d", k);
        snprintf(b, sizeof b, "b%d", k);
        snprintf(c, sizeof c, "c%d", k);
        if (sample(model, NULL, thresholds[k], a, out, sizeof out)) continue;
        cr_expect(strstr(out, "exits") != NULL, "no exit histogram: %s", out);
        cr_log_info("threshold %s: %s", thresholds[k], out);
        if (sample(model, NULL, thresholds[k], b, NULL, 0)) continue;
        if (sample(ck, "ema", thresholds[k], c, NULL, 0)) continue;
        expect_same_pixels(a, b);
        expect_same_pixels(a, c);
    }
}
