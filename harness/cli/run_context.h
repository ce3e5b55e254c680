/*
 * run_context.h: the options every compute command shares (--backend,
 * --threads) and the op context they open.
 */
#ifndef DEEDIFF_RUN_CONTEXT_H
#define DEEDIFF_RUN_CONTEXT_H

#include "../../kernels/ops.h"

typedef struct {
    const char *backend;   /* "cpu" (default) or "cuda" */
    const char *threads;   /* CPU threads; default: all cores */
} RunOptions;

typedef struct {
    Ctx ctx;
    int threads;
} RunContext;

RunOptions run_options_default(void);

/* the CliOpt entries for a RunOptions, for a command's option table */
#define RUN_OPTIONS(ro)                                                              \
    {"--backend", "cpu|cuda", "where the network runs (default cpu)", &(ro).backend, NULL, 0}, \
    {"--threads", "N", "CPU threads (default: all cores)", &(ro).threads, NULL, 0}

/* opens the context; -1 + err_msg() on a bad option or no GPU */
int run_context_open(RunContext *rc, const RunOptions *ro);
void run_context_close(RunContext *rc);

/* sets OpenMP's and OpenBLAS's thread counts (n <= 0: all cores) */
void set_cpu_threads(int n);

#endif
