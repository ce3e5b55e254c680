/*
 * analyze_figures.h: the measurements behind the paper's figures 1, 3, 4
 * and 6 for a model with exits (`deediff analyze`, harness/analyze/cmd_analyze.c),
 * each as points for the results database (table figure_points).
 *
 *   analyze_points.c      PointList: figure points with their series names
 *   analyze_probe.c       the full model's sampling trajectory, every exit
 *                         probed at every evaluation: fig 1 (each exit's MSE
 *                         to the final output), fig 4 (uncertainty maps), and
 *                         the states x that fig 6 compares against; the
 *                         maps as PNG
 *   analyze_error.c       fig 6: the trajectory of an early-exit run against
 *                         the full model's, evaluation by evaluation
 *   analyze_loss.c        fig 3: the loss against the true noise by time t,
 *                         of the final output and of every exit
 *
 * Images are ids 0..n-1 (the sampler's noise streams, model/sampler.h), so
 * the full and the early-exit runs start from the same x_T and add the same
 * noise; with equal batches the early-exit predictor at threshold 0 gives the
 * full model's bits, and its error curve is exactly 0.
 */
#ifndef DEEDIFF_ANALYZE_FIGURES_H
#define DEEDIFF_ANALYZE_FIGURES_H

#include <stdint.h>

#include "../../model/method.h"
#include "../../model/sampler.h"
#include "../../model/uvit.h"
#include "../data/dataset.h"
#include "../store/store.h"

#define FIG1 "fig1_layer_mse"
#define FIG3 "fig3_loss_by_t"
#define FIG4 "fig4_uncertainty"
#define FIG6 "fig6_error_accumulation"

/* ---- points ---------------------------------------------------------------------- */

typedef struct {
    FigurePoint *p;
    int64_t n, cap;
    char **names;      /* the series names the points point into (owned) */
    int n_names, cap_names;
} PointList;

/* a series name printf(fmt) that lives as long as the list */
const char *points_series(PointList *pl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* one point; series is a name from points_series (figure a literal) */
void points_add(PointList *pl, const char *figure, const char *series, double x, double y);
/* points of one figure */
int64_t points_count(const PointList *pl, const char *figure);
void points_free(PointList *pl);

/* ---- what the runs share ---------------------------------------------------------- */

typedef struct {
    const UViT *m;
    Method *me;                 /* has a probe (exits for blocks 0..num_blocks-2) */
    const SamplerConfig *sc;
    int64_t n;                  /* images, ids 0..n-1 */
    const int64_t *ids;         /* [n]: 0..n-1 */
    const int64_t *labels;      /* [n] host, or NULL when unconditional */
    int batch;                  /* images per network call */
    int evals;                  /* sampler_num_evals(sc) */
} AnalyzeSampling;

/* ---- figures 1 and 4, and fig 6's reference -------------------------------------------- */

typedef struct {
    int exits;                  /* num_blocks - 1 */
    int64_t chw;
    int map_images;             /* k: images 0..k-1 have their maps kept */
    int n_maps;
    const int *maps_at;         /* [n_maps] evaluation indices, ascending */
    double *t;                  /* [evals] the evaluation's continuous time */
    double *layer_mse;          /* [evals][exits] mean over the n images */
    double *map_mean;           /* [evals][exits] mean of the maps of images 0..k-1 */
    float *maps;                /* [n_maps][exits][k][C,H,W] */
    float *traj;                /* [evals][n][C,H,W] the sampler's state x at each evaluation */
    float *final;               /* [n][C,H,W] the samples */
} ProbeResult;

/* samples the n images with the full model, probing every exit at every
   evaluation; -1 + err_msg() */
int analyze_probe_run(Ctx *ctx, const AnalyzeSampling *s, int map_images, const int *maps_at, int n_maps,
                      ProbeResult *r);
void probe_result_free(ProbeResult *r);
/* fig 1's and fig 4's points ("block i", "mean block i", "map eval E block B image I") */
void analyze_probe_points(const AnalyzeSampling *s, const ProbeResult *r, PointList *pl);
/* fig 4's grid DIR/fig4_uncertainty_evalE.png of chosen evaluation maps_at[slot]:
   a row per exit, a column per image, each map's mean over channels u in
   [0,1] drawn as gray 2u-1 (png_write's [-1,1]); *art records it (kind
   "figure"; its path and hash are allocated: analyze_artifacts_free) */
int analyze_map_png(const char *dir, const ProbeResult *r, int slot, int C, int H, Artifact *art);
void analyze_artifacts_free(Artifact *arts, int n);

/* ---- figure 6 ----------------------------------------------------------------------------- */

typedef struct {
    double threshold;
    double *mse;                /* [evals] MSE of x to the full model's at each evaluation */
    double final_mse;           /* of the samples */
    double layers_ratio;        /* blocks run / blocks available */
} ErrorCurve;

/* samples with the method's early exit at threshold and compares every
   evaluation's state with the reference; -1 + err_msg() */
int analyze_error_run(Ctx *ctx, const AnalyzeSampling *s, const ProbeResult *ref, double threshold,
                      ErrorCurve *e);
void error_curve_free(ErrorCurve *e);
/* "threshold T" (x = evaluation index), "final samples" and "layers ratio" (x = T) */
void analyze_error_points(const AnalyzeSampling *s, const ErrorCurve *e, PointList *pl);
/* fig 6's "t": x = evaluation index, y = its time (once per run) */
void analyze_time_points(const AnalyzeSampling *s, const ProbeResult *ref, PointList *pl);

/* ---- figure 3 ----------------------------------------------------------------------------- */

typedef struct {
    int64_t items;              /* images 0..items-1 of the dataset */
    int n_times;                /* t_k = (k + 0.5) / n_times */
    uint64_t seed;              /* the noise: Philox (seed, RNG_NOISE_TRAIN_EPS, 0) */
    int batch;
    ScheduleKind schedule;      /* alpha_t, sigma_t and the network's time input */
} LossByT;

/* "full" and "block i" against t; -1 + err_msg() */
int analyze_loss_by_t(Ctx *ctx, const UViT *m, Method *me, Dataset *ds, const LossByT *o, PointList *pl);

#endif
