/*
 * run_lookup.h: finding a plan's runs in the results database by their
 * keys (run_key.h). The runner asks "is this run done?"; the reports ask
 * "which stored run measured this cell?".
 */
#ifndef DEEDIFF_RUN_LOOKUP_H
#define DEEDIFF_RUN_LOOKUP_H

#include <stdint.h>

#include "../store/store.h"
#include "experiment.h"
#include "run_key.h"

typedef struct {
    int64_t run_id;   /* 0: not found */
    int stale;        /* found by its setting key only: a build of other code made it */
} RunFound;

/* the latest finished run with this run key, else (stale) with this setting
   key; -1 + err_msg() on a database error */
int run_lookup(Store *s, const RunKey *k, RunFound *found);

/* the same for run i of a plan (its keys computed from the files as they
   are now) */
int run_lookup_plan(Store *s, const Plan *p, int i, RunFound *found);

/* *pid receives the process of this machine that is running this setting
   now (another runner, e.g. one started with --only), or 0 */
int run_lookup_busy(Store *s, const RunKey *k, long *pid);

/* marks 'running' runs of this machine whose process is gone as failed
   ("interrupted"), so a killed experiment leaves no run half-alive;
   *n receives how many */
int run_lookup_reap(Store *s, int *n);

#endif
