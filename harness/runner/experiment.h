/*
 * experiment.h: an experiment file (experiments/<name>.json) expanded at one
 * scale into a plan: the runs it needs, in order, and which table cell each
 * run belongs to. The runner (cmd_run.c) executes a plan; the reports
 * (harness/report/) read the same plan back from the database, so a table
 * shows exactly what its experiment asked for and nothing else.
 *
 * The file, in short (experiments/README.md has the full grammar):
 *
 *   { "experiment": "table1", "title": "...", "report": "table",
 *     "rows": ["U-ViT", "DeeDiff", ...],          // row order of the report
 *     "paper": { ... the paper's own numbers, shown beside ours ... },
 *     "scales": {
 *       "tiny": {
 *         "seeds": [0, 1, 2],
 *         "eval": {"n": 1000, "sampler": "dpm", ...},   // deediff eval flags
 *         "columns": [{"name": "CIFAR-10", "setup": "cifar10", "else": "fmnist"}],
 *         "setups": {
 *           "fmnist": { "label": "Fashion-MNIST 28x28", "requires": [],
 *                       "eval": {...},                   // overrides
 *                       "rows": { "DeeDiff": {"model": "W.safetensors",
 *                                              "threshold": 0.15,
 *                                              "before": [{"creates": "W.safetensors",
 *                                                          "run": ["train", ...]}]},
 *                                 "Fig. 1": {"run": ["analyze", ...]} } } } } } }
 *
 * Expansion. A row with a "model" is an eval per seed (and per threshold
 * when "threshold" is a list); a row with "run" is that one command. A
 * row's "before" commands come ahead of every run of its model (also the
 * evals of other rows of that model), each skipped when the file it creates
 * exists. A column whose setup is missing, or whose "requires" names a
 * file that does not exist or a variable that is not set, runs its "else"
 * setup instead, and the plan says so (PlanColumn.note); without "else" it
 * is an error. Columns that end up on the same setup are one column.
 * Strings may hold ${NAME}: NAME=VALUE given to the command first, then the
 * environment.
 * Identical command lines are one run, however many cells use it.
 *
 * Invariant: the plan depends only on the file, the scale, the variables
 * and which files exist, so every shard of an experiment (SHARD=i/n) that
 * sees the same files computes the same plan and the same shares.
 */
#ifndef DEEDIFF_EXPERIMENT_H
#define DEEDIFF_EXPERIMENT_H

#include <cjson/cJSON.h>

#define PLAN_MAX_VARS 32

typedef struct {
    const char *name[PLAN_MAX_VARS], *value[PLAN_MAX_VARS];
    int n;
} PlanVars;

typedef struct {
    char *name;      /* as the report shows it: "CIFAR-10", or "Fashion-MNIST 28x28" */
    char *setup;     /* the setup whose rows run it */
    char *note;      /* NULL, or why a stand-in runs ("CIFAR-10, CelebA: data absent; ...") */
    cJSON *paper;    /* the paper's columns this one stands for (names), never NULL */
} PlanColumn;

typedef struct {
    char **argv;     /* "eval", "--model", ...: no --db, no --threads (not part of the key) */
    int argc;
    char *creates;   /* the file the command writes (skip when it exists), or NULL */
    char *label;     /* "Fashion-MNIST 28x28/DeeDiff/T0.15/seed1", for progress and ONLY= */
    int group;       /* runs of one group go to one shard (a row and its "before") */
    int is_eval;     /* an eval with a seed: a measurement of its cell */
    int is_before;   /* a row's "before" command (taken with any run of its group) */
    double threshold;/* the eval's --threshold, or NAN */
    long seed;       /* the eval's --seed, or -1 */
} PlanRun;

typedef struct {
    int column;      /* index into Plan.columns */
    int row;         /* index into Plan.rows */
    int *runs;       /* indices into Plan.runs: this cell's measurements (evals or its "run") */
    int n_runs;
} PlanCell;

typedef struct {
    char *path, *name, *scale, *title, *report;
    cJSON *doc;          /* the whole file: "paper", "metrics", report options */
    cJSON *scale_doc;    /* doc.scales[scale] */
    PlanColumn *columns;
    int n_columns;
    char **rows;
    int n_rows;
    PlanRun *runs;
    int n_runs, n_groups;
    PlanCell *cells;
    int n_cells;
} Plan;

/* Reads and expands; -1 + err_msg() naming the file and the field on bad
   input (also: an unknown scale, a scale the file marks "unavailable"). */
int plan_load(Plan *p, const char *path, const char *scale, const PlanVars *vars);
void plan_free(Plan *p);

/* the cell (column, row), or NULL when the experiment has none there */
const PlanCell *plan_cell(const Plan *p, int column, int row);

/* a command's positional arguments: EXPERIMENT.json [NAME=VALUE ...], loaded
   at this scale; -1 + err_msg() ("CMD: the experiment file is missing" when
   npos is 0) */
int plan_load_args(Plan *p, const char *cmd, const char *const *pos, int npos, const char *scale);

/* "NAME=VALUE" added to vars (the string is kept, not copied); -1 + err_msg() */
int plan_vars_add(PlanVars *vars, const char *assignment);

/* does run i take part when ONLY= and SHARD= are given? only: comma-separated
   substrings of the label (NULL: all); shard k of n (n = 0: all). A run
   "before" a taken one is taken too (plan order guarantees it comes first). */
int plan_run_taken(const Plan *p, int i, const char *only, int shard_k, int shard_n);

#endif
