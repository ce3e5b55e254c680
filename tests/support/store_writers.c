/*
 * store_writers.c: concurrent writers of one results database (see
 * store_writers.h).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/errors.h"
#include "store_writers.h"

/* the child's whole life: _exit(0) when every run is stored */
static void writer(const char *db, int w, int runs, const RunInfo *ri, int metrics)
{
    Store s;
    if (store_open(&s, db)) {
        fprintf(stderr, "writer %d: %s\n", w, err_msg());
        _exit(1);
    }
    for (int i = 0; i < runs; i++) {
        Metric m[3] = {{.name = "fid", .value = i, .step = -1},
                       {.name = "layers_ratio", .value = w, .step = -1},
                       {.name = "gflops", .value = 1, .step = -1}};
        int64_t run;
        if (store_run_begin(&s, ri, &run) || store_metrics(&s, run, m, metrics) || store_run_done(&s, run)) {
            fprintf(stderr, "writer %d: %s\n", w, err_msg());
            _exit(1);
        }
    }
    store_close(&s);
    _exit(0);
}

void store_writers_run(const char *db, int writers, int runs, const RunInfo *ri, int metrics)
{
    pid_t pids[16];
    cr_assert(writers <= 16 && metrics >= 1 && metrics <= 3);
    for (int w = 0; w < writers; w++) {
        pids[w] = fork();
        cr_assert_geq(pids[w], 0);
        if (pids[w] == 0) writer(db, w, runs, ri, metrics);
    }
    for (int w = 0; w < writers; w++) {
        int status;
        cr_assert_eq(waitpid(pids[w], &status, 0), pids[w]);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed", w);
    }
}
