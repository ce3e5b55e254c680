/*
 * test_analyze.c: `deediff analyze` as a user runs it, on a tiny DeeDiff
 * model written to a file here (a random 1x28x28 U-ViT with four exits),
 * with a few images, DDIM 4 steps and a few Fashion-MNIST images: every
 * figure gets its points in one finished run of kind sample (config
 * "command":"analyze"), the early-exit run at threshold 0 follows the full
 * model's trajectory exactly (fig 6 is 0) while threshold 1 leaves it, the
 * map PNGs are written and recorded as artifacts; a plain backbone and bad
 * flags exit 2 with one line and write no database.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kernels/errors.h"
#include "../model/method.h"
#include "support/cli_run.h"
#include "support/db_query.h"
#include "support/float_buffers.h"
#include "support/temp_dir.h"
#include "support/tiny_uvit.h"

#define UVIT "results/weights/fmnist-uvit.safetensors"
#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
#define TINY "{\"img_size\":28,\"patch_size\":7,\"in_chans\":1,\"embed_dim\":16,\"depth\":4,\"num_heads\":2," \
             "\"mlp_ratio\":2,\"conv\":true}"
#define EXITS 4        /* depth 4: 5 blocks, exits after blocks 0..3 */
#define EVALS 4        /* DDIM 4 steps */
#define CHW (28 * 28)

static char dir[64], model[128], db[128];

/* a DeeDiff model file: the tiny backbone, its heads and UEMs moved off their
   initial values so the maps vary */
static void write_tiny_deediff(const char *path)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    UViT m;
    tiny_uvit_create(&m, &ctx, TINY, 3);
    Method *me;
    cr_assert_eq(method_new(&me, "deediff"), 0, "%s", err_msg());
    method_create_params(me, &ctx, &m);
    method_init_from_backbone(me, &ctx, &m, 9);
    float *noise = fvec((int64_t)me->total, -0.2f, 0.2f, 77);
    for (size_t k = 0; k < me->total; k++) me->weights[k] += noise[k];
    free(noise);
    StWriter *w = st_writer_new();
    uvit_write_params(&m, &ctx, w, "", m.weights);
    method_write_params(me, &ctx, w, "", me->weights);
    method_write_meta(me, w);
    char *json = uvit_config_to_json(&m.cfg);
    st_writer_meta(w, "config", json);
    free(json);
    cr_assert_eq(st_writer_save(w, path), 0, "%s", err_msg());
    st_writer_free(w);
    method_free(me, &ctx);
    uvit_destroy(&m, &ctx);
    ctx_destroy(&ctx);
}

static void setup(void)
{
    temp_dir_make(dir, sizeof dir, "/tmp/deediff-analyze-XXXXXX");
    snprintf(model, sizeof model, "%s/tiny-deediff.safetensors", dir);
    snprintf(db, sizeof db, "%s/results.db", dir);
    write_tiny_deediff(model);
}

static void teardown(void) { temp_dir_remove(dir); }

TestSuite(analyze, .init = setup, .fini = teardown, .timeout = 120);

static double points(const char *figure, const char *series_like)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM figure_points WHERE figure = '%s' AND series LIKE '%s'", figure,
             series_like);
    return db_number(db, sql);
}

Test(analyze, stores_every_figure)
{
    cli_need_binary();
    if (access(FMNIST, R_OK)) cr_skip_test("%s is missing (figure 3 reads it)", FMNIST);
    char args[1024], out[8192], err[8192];
    snprintf(args, sizeof args,
             "analyze --model %s --out %s/maps --db %s --n 3 --batch 2 --sampler ddim --steps %d --threshold 0,1 "
             "--maps-at 0,3 --map-images 2 --data-items 5 --loss-times 3 --threads 1",
             model, dir, db, EVALS);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "stdout: %s\nstderr: %s", out, err);

    cr_expect_eq(db_number(db, "SELECT COUNT(*) FROM runs WHERE kind = 'sample' AND status = 'done' AND "
                               "json_extract(config, '$.command') = 'analyze'"), 1);
    // fig 1: every exit at every evaluation, finite and >= 0
    cr_expect_eq(points("fig1_layer_mse", "block %"), EXITS * EVALS);
    cr_expect_eq(db_number(db, "SELECT COUNT(*) FROM figure_points WHERE figure = 'fig1_layer_mse' AND y < 0"), 0);
    // fig 3: "full" and every exit at 3 times in (0, 1)
    cr_expect_eq(points("fig3_loss_by_t", "full"), 3);
    cr_expect_eq(points("fig3_loss_by_t", "block %"), EXITS * 3);
    cr_expect_eq(db_number(db, "SELECT COUNT(*) FROM figure_points WHERE figure = 'fig3_loss_by_t' AND "
                               "(x <= 0 OR x >= 1 OR y <= 0)"), 0);
    // fig 4: the means, and 2 evaluations x 4 exits x 2 images of whole maps in [0, 1]
    cr_expect_eq(points("fig4_uncertainty", "mean block %"), EXITS * EVALS);
    cr_expect_eq(points("fig4_uncertainty", "map eval %"), 2 * EXITS * 2 * CHW);
    cr_expect_eq(points("fig4_uncertainty", "map eval 3 block 3 image 1"), CHW);
    cr_expect_eq(db_number(db, "SELECT COUNT(*) FROM figure_points WHERE figure = 'fig4_uncertainty' AND "
                               "(y < 0 OR y > 1)"), 0);
    cr_expect_gt(db_number(db, "SELECT MAX(y) - MIN(y) FROM figure_points WHERE series = 'map eval 3 block 0 image 0'"),
                 0);
    // a mean is its maps' mean (evaluation 3: the fourth largest t, time running down)
    double mean3 = db_number(db, "SELECT y FROM figure_points WHERE figure = 'fig4_uncertainty' AND "
                                 "series = 'mean block 2' ORDER BY x DESC LIMIT 1 OFFSET 3");
    double maps3 = db_number(db, "SELECT AVG(y) FROM figure_points WHERE series LIKE 'map eval 3 block 2 image %'");
    cr_expect(maps3 > 0 && fabs(mean3 - maps3) <= 1e-6 * maps3, "mean %.9g against its maps' %.9g", mean3, maps3);
    // fig 6: threshold 0 is the full model bit for bit; threshold 1 (every image at exit 0) is not
    cr_expect_eq(points("fig6_error_accumulation", "threshold 0"), EVALS);
    cr_expect_eq(db_number(db, "SELECT MAX(ABS(y)) FROM figure_points WHERE series = 'threshold 0'"), 0);
    cr_expect_eq(db_number(db, "SELECT y FROM figure_points WHERE series = 'final samples' AND x = 0"), 0);
    cr_expect_eq(db_number(db, "SELECT y FROM figure_points WHERE series = 'layers ratio' AND x = 0"), 1);
    cr_expect_eq(db_number(db, "SELECT y FROM figure_points WHERE series = 'threshold 1' AND x = 0"), 0);
    cr_expect_gt(db_number(db, "SELECT y FROM figure_points WHERE series = 'threshold 1' AND x = 3"), 0);
    cr_expect_gt(db_number(db, "SELECT y FROM figure_points WHERE series = 'final samples' AND x = 1"), 0);
    cr_expect_eq(db_number(db, "SELECT y FROM figure_points WHERE series = 'layers ratio' AND x = 1"), 1.0 / 5);
    cr_expect_eq(points("fig6_error_accumulation", "t"), EVALS);
    // the two map grids, written and recorded
    cr_expect_eq(db_number(db, "SELECT COUNT(*) FROM artifacts WHERE kind = 'figure' AND bytes > 0"), 2);
    char png[160];
    snprintf(png, sizeof png, "%s/maps/fig4_uncertainty_eval3.png", dir);
    cr_expect_eq(access(png, R_OK), 0, "%s", png);
}

/* runs args (with --db and --out of the temp dir) and expects exit 2 with
   one line containing `names`, and no database written */
static void expect_refused(const char *flags, const char *names)
{
    char args[1024], out[4096], err[4096];
    snprintf(args, sizeof args, "analyze %s --out %s/maps --db %s --threads 1", flags, dir, db);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 2, "%s\nstdout: %s\nstderr: %s", args, out, err);
    cr_expect_eq(count_lines(err), 1, "%s", err);
    cr_expect_not_null(strstr(err, names), "'%s' not named in: %s", names, err);
    cr_expect_neq(access(db, F_OK), 0, "%s was written", db);
}

Test(analyze, refuses_a_plain_backbone)
{
    cli_need_binary();
    if (access(UVIT, R_OK)) cr_skip_test("%s is missing", UVIT);
    expect_refused("--model " UVIT " --n 2 --sampler ddim --steps 2", UVIT);
}

Test(analyze, refuses_bad_flags)
{
    cli_need_binary();
    char flags[512];
    snprintf(flags, sizeof flags, "--model %s --sampler ddim --steps 4 --maps-at 1,4", model);
    expect_refused(flags, "--maps-at");
    snprintf(flags, sizeof flags, "--model %s --sampler ddim --steps 4 --threshold 0.1,1.5", model);
    expect_refused(flags, "--threshold");
    snprintf(flags, sizeof flags, "--model %s --n 2 --map-images 3", model);
    expect_refused(flags, "--map-images");
    snprintf(flags, sizeof flags, "--model %s --sampler ddim --steps 2 --data-items 70000", model);
    expect_refused(flags, "--data-items");
}
