/*
 * figure_data.h: the data files of the paper's figures, exported from the
 * results database (and, for figure 7, from sample grids) in a form gnuplot
 * reads directly; the scripts in paper/fig*.gp draw them (figure_plot.h
 * runs gnuplot).
 *
 * Every file is text, written atomically (PATH.tmp, then rename). It opens
 * with comment lines saying what it holds and where from, then one data
 * block per series; blocks are separated by two blank lines, so gnuplot's
 * `index i` selects one. Each block starts with a comment line
 * "# series NAME" and a header line of quoted column names, read with
 * `set datafile columnheaders` (`title columnhead(2)`, or
 * `stats ... using (v = columnhead(2), $2)` to fetch a name in a script).
 * Series come in natural order ("block 2" before "block 10").
 *
 *   fig1_layer_mse, fig3_loss_by_t     a block per series: "t" NAME, x y
 *   fig6_error_accumulation            "threshold T" curves: "evaluation"
 *                                      TITLE, where TITLE is "METHOD,
 *                                      threshold T (layers ratio R)"; "t":
 *                                      "evaluation" "t"; "final samples"
 *                                      and "layers ratio": "threshold" NAME
 *   fig4_uncertainty                   first a block per kept evaluation E,
 *                                      "# series maps eval E", header "x" "y"
 *                                      "eval E, t = T", rows "x y u": a
 *                                      mosaic of tiles, a row of tiles per
 *                                      exit (block 0 on row 0) and a column
 *                                      per image, each map's mean over
 *                                      channels; tile (b, k) covers x in
 *                                      [k, k+1), y in [b, b+1), a pixel is
 *                                      1/(W+1) wide and each tile's last
 *                                      column and row are NaN (the gap);
 *                                      then the mean curves "mean block i":
 *                                      "t" "block i", x y
 *
 * Failures return -1 with err_msg() one line naming the file written (or
 * the PNG read); nothing is left half-written.
 */
#ifndef DEEDIFF_FIGURE_DATA_H
#define DEEDIFF_FIGURE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "../store/store.h"

/* the points one `deediff analyze` run stored for figure ("fig1_layer_mse",
   "fig3_loss_by_t", "fig4_uncertainty", "fig6_error_accumulation") */
int figure_export_points(Store *s, int64_t run_id, const char *figure, const char *path);

/* figure 5: one series per method, each a set of eval runs */
typedef struct {
    const char *label;          /* "DeeDiff", "BERxiT", "CALM", "static exit" */
    const int64_t *run_ids;     /* finished eval runs, one threshold each (several seeds allowed) */
    int n;
} FigureSeries;

/* a block per series, "# series LABEL", header LABEL QUALITY "sd" "threshold"
   "runs" where QUALITY is the distance's name ("FD-FMNIST-1k": the Fashion-
   MNIST proxy, never called FID; "FID-50k"); a row per threshold (the
   config's, 0 when it has none), ascending: mean layers ratio, mean quality,
   the quality's sample standard deviation over the runs of that threshold
   (0 for one run), threshold, number of runs. Every run must be finished
   and measure the same distance (same network and N). */
int figure_export_pareto(Store *s, const FigureSeries *series, int n_series, const char *path);

/* figure 7: n sample grids (8-bit PNG, gray or RGB, any size) as n blocks,
   "# series TITLE", header "x" "y" TITLE "g" "b", rows "x y r g b" (x the
   column, y the row from the top, one scan line after another separated
   by a blank line) for `with rgbimage` */
int figure_export_grid(const char *const *png_paths, const char *const *titles, int n, const char *path);

/* a one-line description of a run's protocol for a figure's title. figure
   NULL (a figure of runs of several models, 5 or 7): what they share,
   "Fashion-MNIST 28x28; DPM-Solver 50 steps; 1000 images per run"; an analyze figure
   (FIG1 ...): the model first, "DeeDiff (fmnist-deediff.safetensors); EM
   (Euler-Maruyama) 1000 steps; 16 images, seed 0; run 3", and for FIG3 the
   loss's data instead of the sampler ("loss on Fashion-MNIST training
   images 0..255 at 20 times t"); -1 + err_msg() when the run is not there */
int figure_caption(Store *s, int64_t run_id, const char *figure, char *buf, size_t size);

#endif
