/*
 * store_writers.h: several processes writing one results database at once
 * through the store API (test support for the store's and merge's
 * concurrency tests).
 */
#ifndef DEEDIFF_TEST_STORE_WRITERS_H
#define DEEDIFF_TEST_STORE_WRITERS_H

#include "harness/store/store.h"

/* forks `writers` processes; writer w stores `runs` finished runs described
   by *ri into db, run i with the metrics fid = i, layers_ratio = w and
   gflops = 1 (the first `metrics` of these, 1..3); waits for all and fails
   the test when one of them failed */
void store_writers_run(const char *db, int writers, int runs, const RunInfo *ri, int metrics);

#endif
