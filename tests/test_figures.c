/*
 * test_figures.c: the figure data files (harness/report/figure_data.h)
 * exported from a small database built here, checked byte for byte: a
 * block per series in natural order with its header line, figure 6's
 * curves titled with method and layers ratio, figure 4's mosaic with NaN
 * gaps and the time of each evaluation, figure 5's seeds averaged with
 * their standard deviation and its distance named FD-FMNIST (never FID),
 * figure 7's pixels from PNG; refusals with one line naming the file; and
 * gnuplot drawing paper/fig1.gp to PNG and SVG (skipped without gnuplot).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../harness/analyze/analyze_figures.h"
#include "../harness/data/png_write.h"
#include "../harness/report/figure_data.h"
#include "../harness/report/figure_plot.h"
#include "../kernels/errors.h"
#include "support/temp_dir.h"

static char dir[64], db[128];
static Store st;
static int64_t analyze_run, eval_runs[7], fid_run, running_run;

static int64_t add_run(const char *kind, const char *config, int done)
{
    RunInfo ri = {.kind = kind, .name = "fixture", .config_json = config, .backend = "cpu"};
    int64_t id;
    cr_assert_eq(store_run_begin(&st, &ri, &id), 0, "%s", err_msg());
    if (done) cr_assert_eq(store_run_done(&st, id), 0, "%s", err_msg());
    return id;
}

static void add_points(int64_t run, const FigurePoint *p, int n)
{
    cr_assert_eq(store_figure_points(&st, run, p, n), 0, "%s", err_msg());
}

/* an eval run at threshold with its distance (metric "fd_fmnist" or "fid", N 1000) and layers ratio */
static int64_t add_eval(const char *method, double threshold, int seed, const char *metric, double fd, double ratio)
{
    char config[256];
    snprintf(config, sizeof config,
             "{\"command\":\"eval\",\"method\":\"%s\",\"threshold\":%g,\"seed\":%d,\"dataset\":\"fmnist\","
             "\"sampler\":\"dpm\",\"steps\":50,\"n\":1000}", method, threshold, seed);
    int64_t id = add_run("eval", config, 0);
    Metric m[2] = {{.name = metric, .value = fd, .protocol_json = "{\"n\":1000}", .step = -1},
                   {.name = "layers_ratio", .value = ratio, .step = -1}};
    cr_assert_eq(store_metrics(&st, id, m, 2), 0, "%s", err_msg());
    cr_assert_eq(store_run_done(&st, id), 0, "%s", err_msg());
    return id;
}

static void setup(void)
{
    temp_dir_make(dir, sizeof dir, "/tmp/deediff-figures-XXXXXX");
    snprintf(db, sizeof db, "%s", temp_dir_path(dir, "results.db"));
    cr_assert_eq(store_open(&st, db), 0, "%s", err_msg());
    analyze_run = add_run("sample",
                          "{\"command\":\"analyze\",\"model\":\"w/m.safetensors\",\"method\":\"deediff\","
                          "\"model_config\":{\"img_size\":2,\"in_chans\":1},\"sampler\":\"em\",\"steps\":2,"
                          "\"seed\":0,\"n\":2,\"data_items\":8,\"loss_times\":2}", 0);
    FigurePoint p[] = {
        {FIG1, "block 10", 0.5, 1}, {FIG1, "block 10", 0.25, 2}, {FIG1, "block 2", 0.25, 3},
        {FIG6, "threshold 0.1", 0, 0}, {FIG6, "threshold 0.1", 1, 0.5}, {FIG6, "layers ratio", 0.1, 0.75},
        {FIG6, "t", 0, 1}, {FIG6, "t", 1, 0.5}, {FIG6, "final samples", 0.1, 0.25},
        {FIG4, "map eval 1 block 0 image 0", 0, 0.1}, {FIG4, "map eval 1 block 0 image 0", 1, 0.2},
        {FIG4, "map eval 1 block 0 image 0", 2, 0.3}, {FIG4, "map eval 1 block 0 image 0", 3, 0.4},
        {FIG4, "mean block 0", 1, 0.125}, {FIG4, "mean block 0", 0.5, 0.25},
    };
    add_points(analyze_run, p, sizeof p / sizeof p[0]);
    cr_assert_eq(store_run_done(&st, analyze_run), 0, "%s", err_msg());
    // DeeDiff: threshold 0.1 over three seeds, threshold 0 once; BERxiT: one run
    eval_runs[0] = add_eval("deediff", 0.1, 0, "fd_fmnist", 10, 0.5);
    eval_runs[1] = add_eval("deediff", 0.1, 1, "fd_fmnist", 12, 0.6);
    eval_runs[2] = add_eval("deediff", 0.1, 2, "fd_fmnist", 14, 0.7);
    eval_runs[3] = add_eval("deediff", 0, 0, "fd_fmnist", 5, 1);
    eval_runs[4] = add_eval("berxit", 0.2, 0, "fd_fmnist", 30, 0.25);
    fid_run = add_eval("deediff", 0.3, 0, "fid", 40, 0.2);
    running_run = add_run("eval", "{\"threshold\":0.5}", 0);
}

static void teardown(void)
{
    store_close(&st);
    temp_dir_remove(dir);
}

TestSuite(figures, .init = setup, .fini = teardown, .timeout = 60);

/* the whole file (static buffer) */
static const char *slurp(const char *path)
{
    static char buf[1 << 16];
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: missing", path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* the file after its opening comment lines (those before the first "# series") */
static const char *blocks(const char *path)
{
    const char *s = strstr(slurp(path), "# series ");
    cr_assert_not_null(s, "%s has no series", path);
    return s;
}

Test(figures, fig1_blocks_in_natural_order_with_headers)
{
    const char *path = temp_dir_path(dir, "fig1.dat");
    cr_assert_eq(figure_export_points(&st, analyze_run, FIG1, path), 0, "%s", err_msg());
    cr_expect_str_eq(blocks(path), "# series block 2\n\"t\" \"block 2\"\n0.25 3\n\n\n"
                                   "# series block 10\n\"t\" \"block 10\"\n0.25 2\n0.5 1\n");
    cr_expect(strstr(slurp(path), "# fig1_layer_mse of run") == slurp(path), "opens with what it is");
    cr_expect_eq(access(temp_dir_path(dir, "fig1.dat.tmp"), F_OK), -1, "no temporary file left");
}

Test(figures, fig6_curves_carry_method_and_layers_ratio)
{
    const char *path = temp_dir_path(dir, "fig6.dat");
    cr_assert_eq(figure_export_points(&st, analyze_run, FIG6, path), 0, "%s", err_msg());
    cr_expect_str_eq(blocks(path),
                     "# series final samples\n\"threshold\" \"final samples\"\n0.1 0.25\n\n\n"
                     "# series layers ratio\n\"threshold\" \"layers ratio\"\n0.1 0.75\n\n\n"
                     "# series t\n\"evaluation\" \"t\"\n0 1\n1 0.5\n\n\n"
                     "# series threshold 0.1\n\"evaluation\" \"DeeDiff, threshold 0.1 (layers ratio 0.750)\"\n"
                     "0 0\n1 0.5\n");
}

Test(figures, fig4_mosaic_with_gaps_then_mean_curves)
{
    const char *path = temp_dir_path(dir, "fig4.dat");
    cr_assert_eq(figure_export_points(&st, analyze_run, FIG4, path), 0, "%s", err_msg());
    // one 2x2 map: a tile of 3x3 cells (the last row and column NaN), at evaluation 1, t = 0.5
    cr_expect_str_eq(blocks(path),
                     "# series maps eval 1\n\"x\" \"y\" \"eval 1, t = 0.5\"\n"
                     "0 0 0.1\n0.333333333 0 0.2\n0.666666667 0 NaN\n\n"
                     "0 0.333333333 0.3\n0.333333333 0.333333333 0.4\n0.666666667 0.333333333 NaN\n\n"
                     "0 0.666666667 NaN\n0.333333333 0.666666667 NaN\n0.666666667 0.666666667 NaN\n\n\n"
                     "# series mean block 0\n\"t\" \"block 0\"\n0.5 0.25\n1 0.125\n");
}

Test(figures, fig5_averages_seeds_and_names_the_proxy)
{
    const char *path = temp_dir_path(dir, "fig5.dat");
    FigureSeries s[2] = {{"DeeDiff", eval_runs, 4}, {"BERxiT", &eval_runs[4], 1}};
    cr_assert_eq(figure_export_pareto(&st, s, 2, path), 0, "%s", err_msg());
    // seeds of threshold 0.1: FD 10, 12, 14 (mean 12, sd 2), ratio 0.5, 0.6, 0.7
    cr_expect_str_eq(blocks(path),
                     "# series DeeDiff\n\"DeeDiff\" \"FD-FMNIST-1k\" \"FD-FMNIST-1k sd\" \"threshold\" \"runs\"\n"
                     "1 5 0 0 1\n0.6 12 2 0.1 3\n\n\n"
                     "# series BERxiT\n\"BERxiT\" \"FD-FMNIST-1k\" \"FD-FMNIST-1k sd\" \"threshold\" \"runs\"\n"
                     "0.25 30 0 0.2 1\n");
    cr_expect_null(strstr(slurp(path), "FID"), "FD-FMNIST is never called FID");
}

Test(figures, fig5_refuses_mixed_distances_and_unfinished_runs)
{
    const char *path = temp_dir_path(dir, "fig5.dat");
    int64_t mixed[2] = {eval_runs[0], fid_run};
    FigureSeries s = {"DeeDiff", mixed, 2};
    cr_expect_eq(figure_export_pareto(&st, &s, 1, path), -1);
    cr_expect(strstr(err_msg(), path) && strstr(err_msg(), "FID-1k") && strstr(err_msg(), "FD-FMNIST-1k"), "%s",
              err_msg());
    FigureSeries r = {"DeeDiff", &running_run, 1};
    cr_expect_eq(figure_export_pareto(&st, &r, 1, path), -1);
    cr_expect(strstr(err_msg(), "not done"), "%s", err_msg());
    int64_t missing = 999;
    FigureSeries m = {"DeeDiff", &missing, 1};
    cr_expect_eq(figure_export_pareto(&st, &m, 1, path), -1);
    cr_expect(strstr(err_msg(), "run 999 is not in"), "%s", err_msg());
    cr_expect_eq(access(path, F_OK), -1, "nothing written");
}

Test(figures, points_refuse_an_unknown_figure_or_run)
{
    const char *path = temp_dir_path(dir, "x.dat");
    cr_expect_eq(figure_export_points(&st, analyze_run, "fig9", path), -1);
    cr_expect(strstr(err_msg(), path) && strstr(err_msg(), "fig9"), "%s", err_msg());
    cr_expect_eq(figure_export_points(&st, eval_runs[0], FIG1, path), -1);
    cr_expect(strstr(err_msg(), "has no points of fig1_layer_mse"), "%s", err_msg());
    cr_expect_eq(access(path, F_OK), -1, "nothing written");
}

Test(figures, fig7_pixels_from_png)
{
    float gray[4] = {-1, 1, 1, -1};              // 2x2: black white / white black
    float rgb[3] = {1, -1, -1};                  // 1x1 red
    const char *a = temp_dir_path(dir, "a.png"), *b = temp_dir_path(dir, "b.png");
    cr_assert_eq(png_write_chw(a, gray, 1, 2, 2, 0, NULL, NULL), 0, "%s", err_msg());
    cr_assert_eq(png_write_chw(b, rgb, 3, 1, 1, 0, NULL, NULL), 0, "%s", err_msg());
    const char *pngs[2] = {a, b}, *titles[2] = {"U-ViT", "DeeDiff (T = 0.1)"};
    const char *path = temp_dir_path(dir, "fig7.dat");
    cr_assert_eq(figure_export_grid(pngs, titles, 2, path), 0, "%s", err_msg());
    cr_expect_str_eq(blocks(path), "# series U-ViT\n\"x\" \"y\" \"U-ViT\" \"g\" \"b\"\n"
                                   "0 0 0 0 0\n1 0 255 255 255\n\n0 1 255 255 255\n1 1 0 0 0\n\n\n"
                                   "# series DeeDiff (T = 0.1)\n\"x\" \"y\" \"DeeDiff (T = 0.1)\" \"g\" \"b\"\n"
                                   "0 0 255 0 0\n");
    const char *bad[1] = {temp_dir_path(dir, "none.png")};
    cr_expect_eq(figure_export_grid(bad, titles, 1, path), -1);
    cr_expect(strstr(err_msg(), "none.png"), "%s", err_msg());
}

Test(figures, captions_say_the_protocol)
{
    char buf[256];
    cr_assert_eq(figure_caption(&st, analyze_run, FIG1, buf, sizeof buf), 0, "%s", err_msg());
    cr_expect_str_eq(buf, "DeeDiff (m.safetensors); EM (Euler-Maruyama) 2 steps; 2 images, seed 0; run 1");
    cr_assert_eq(figure_caption(&st, analyze_run, FIG3, buf, sizeof buf), 0, "%s", err_msg());
    cr_expect_str_eq(buf, "DeeDiff (m.safetensors); loss on Fashion-MNIST training images 0..7 at 2 times t; "
                          "seed 0; run 1");
    cr_assert_eq(figure_caption(&st, eval_runs[0], NULL, buf, sizeof buf), 0, "%s", err_msg());
    cr_expect_str_eq(buf, "Fashion-MNIST 28x28; DPM-Solver 50 steps; 1000 images per run");
    cr_expect_eq(figure_caption(&st, 999, NULL, buf, sizeof buf), -1);
}

Test(figures, gnuplot_quoting_of_variables)
{
    TextBuf t;
    text_init(&t);
    figure_var(&t, "caption", "it's");
    cr_expect_str_eq(t.data, "caption='it''s'; ");
    text_free(&t);
}

static int have_gnuplot(void) { return system("gnuplot --version >/dev/null 2>&1") == 0; }

static long file_size(const char *path)
{
    struct stat s;
    return stat(path, &s) ? -1 : (long)s.st_size;
}

Test(figures, gnuplot_draws_png_and_svg)
{
    if (!have_gnuplot()) cr_skip_test("gnuplot is not installed (Debian package gnuplot-nox)");
    const char *data = temp_dir_path(dir, "fig1.dat");
    cr_assert_eq(figure_export_points(&st, analyze_run, FIG1, data), 0, "%s", err_msg());
    TextBuf v;
    text_init(&v);
    figure_var(&v, "data", data);
    figure_var(&v, "caption", "fixture's caption");
    const char *out = temp_dir_path(dir, "fig1");
    cr_assert_eq(figure_plot("paper/fig1.gp", v.data, out), 0, "%s", err_msg());
    text_free(&v);
    cr_expect_gt(file_size(temp_dir_path(dir, "fig1.png")), 1000);
    cr_expect_gt(file_size(temp_dir_path(dir, "fig1.svg")), 1000);
    cr_expect_str_eq(slurp(temp_dir_path(dir, "fig1.png")) + 1, "PNG\r\n\032\n");   // stops at the NUL
}

Test(figures, gnuplot_failure_is_one_line_and_leaves_nothing)
{
    if (!have_gnuplot()) cr_skip_test("gnuplot is not installed (Debian package gnuplot-nox)");
    const char *out = temp_dir_path(dir, "bad");
    // the data file does not exist: gnuplot fails
    cr_expect_eq(figure_plot("paper/fig1.gp", "data='/nonexistent/fig1.dat'; ", out), -1);
    cr_expect(strstr(err_msg(), "paper/fig1.gp") && !strchr(err_msg(), '\n'), "%s", err_msg());
    cr_expect_eq(file_size(temp_dir_path(dir, "bad.png")), -1);
    cr_expect_eq(figure_plot("paper/none.gp", "", out), -1);
    cr_expect(strstr(err_msg(), "paper/none.gp"), "%s", err_msg());
}
