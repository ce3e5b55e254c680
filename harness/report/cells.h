/*
 * cells.h: what the database holds for each cell of an experiment: every
 * metric as mean, sample standard deviation and count over the cell's
 * sampling seeds, per threshold, with the protocol that produced it. The
 * tables, the claims page, figure 5 and `make regress` all read cells
 * through this one function, so they can never disagree.
 *
 * A cell's runs are found by key (harness/runner/run_lookup.h): a run made
 * by this code, else the latest made by other code for the same setting
 * (then the point is marked stale and every report says so).
 */
#ifndef DEEDIFF_CELLS_H
#define DEEDIFF_CELLS_H

#include <stdint.h>

#include "../runner/experiment.h"
#include "../store/store.h"

typedef enum {
    CELL_QUALITY,          /* fd_fmnist (FD-FMNIST-N, a proxy) or fid (FID-N) */
    CELL_LAYERS_RATIO,     /* blocks evaluated / blocks available */
    CELL_COMPUTE_RATIO,    /* GMAC spent / the unpruned full network's */
    CELL_GFLOPS,           /* GFLOPs per network evaluation (the paper's unit) */
    CELL_SECONDS,          /* sampling seconds per image */
    CELL_NUM_METRICS
} CellMetric;

extern const char *const cell_metric_names[CELL_NUM_METRICS];  /* "quality", "layers_ratio", ... */

typedef struct {
    double mean, sd;       /* sd: sample standard deviation (n - 1); NAN when n < 2 */
    int n;                 /* 0: not measured */
} CellStat;

typedef struct {
    double threshold;      /* NAN: the row has none */
    CellStat m[CELL_NUM_METRICS];
    int seeds_wanted, seeds_found, stale;  /* stale: runs made by other code */
    char quality_name[32]; /* "FD-FMNIST-1k", "FID-50k" ("" when nothing is measured) */
    char *protocol;        /* one line: sampler, steps, N, seeds, features, reference, precision, ... */
    int64_t *run_ids;
    int n_run_ids;
} CellPoint;

typedef struct {
    int column, row;
    CellPoint *points;     /* by threshold, in the experiment's order */
    int n_points;
    int64_t run_id;        /* a "run" row (analyze, sample): its stored run, 0 when none */
    int run_stale, run_exists;  /* run_exists: its "creates" file is there */
} CellResult;

/* every cell of the plan; -1 + err_msg() on a database error */
int cells_measure(Store *st, const Plan *p, CellResult **cells, int *n);
void cells_free(CellResult *cells, int n);
/* the cell (column, row), or NULL */
const CellResult *cells_find(const CellResult *cells, int n, int column, int row);

#endif
