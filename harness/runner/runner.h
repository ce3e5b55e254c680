/*
 * runner.h: a plan (experiment.h) executed: every run the database does not
 * already hold, in plan order, then the experiment's report.
 *
 * What makes it safe to kill, rerun and split:
 *   - a run is skipped when a finished run with its key is stored
 *     (run_key.h), or, for a command that writes a file ("creates": a
 *     training, a sample grid), when that file exists;
 *   - each run is a child process (this binary, the command's argv, the
 *     run's keys in its environment: store.h STORE_ENV_*), and every command
 *     stores its results in one transaction at its end (a training resumes
 *     from its checkpoint), so a kill loses at most the run in progress and
 *     never stores half of one (a runner killed on its own takes its run
 *     with it); runs left 'running' by a dead process of this machine are
 *     marked failed (interrupted) on the next start;
 *   - shard K of N takes every N-th group of runs (a row's model: the shard
 *     that trains a model evaluates it); each shard writes its own database
 *     and `deediff merge` combines them;
 *   - only = "A,B" takes the runs whose label ("column/row/T/seed")
 *     contains A or B, with what they need.
 */
#ifndef DEEDIFF_RUNNER_H
#define DEEDIFF_RUNNER_H

#include "experiment.h"

typedef struct {
    const char *db;          /* the results database */
    const char *only;        /* NULL: every run */
    int shard_k, shard_n;    /* shard_n 0: every run */
    const char *threads;     /* --threads of each run, NULL: the command's default */
    const char *out_dir;     /* where the report goes ("paper") */
    int list;                /* print the runs with done/todo; run nothing */
    int no_report;
} RunnerOptions;

/* 0, or -1 + err_msg() (a run that failed is named, with its exit status) */
int runner_execute(const Plan *p, const RunnerOptions *o);

/* "K/N" -> shard k of n (NULL or "": n = 0); -1 + err_msg() */
int runner_parse_shard(const char *text, int *k, int *n);

#endif
