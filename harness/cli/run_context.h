/*
 * run_context.h: the options every compute command shares (--backend,
 * --threads, --precision) and the op context they open.
 */
#ifndef DEEDIFF_RUN_CONTEXT_H
#define DEEDIFF_RUN_CONTEXT_H

#include "../../kernels/ops.h"

typedef struct {
    const char *backend;   /* "cpu" (default) or "cuda" */
    const char *threads;   /* CPU threads; default: all cores */
    const char *precision; /* "fp32" or "bf16"; default: the backend's (CPU fp32, CUDA bf16) */
} RunOptions;

typedef struct {
    Ctx ctx;
    int threads;
} RunContext;

RunOptions run_options_default(void);

/* the CliOpt entries for a RunOptions, for a command's option table */
#define RUN_OPTIONS(ro)                                                              \
    {"--backend", "cpu|cuda", "where the network runs (default cpu)", &(ro).backend, NULL, 0}, \
    {"--threads", "N", "CPU threads (default: all cores)", &(ro).threads, NULL, 0},       \
    {"--precision", "fp32|bf16", "the network's GEMMs: fp32 (default on CPU), or bf16 operands with fp32 " \
     "sums (CPUs with AVX512-BF16 or AMX; CUDA is bf16)", &(ro).precision, NULL, 0}

/* opens the context; -1 + err_msg() on a bad option, no GPU, or a
   precision this machine cannot compute (one line naming the flag)       */
int run_context_open(RunContext *rc, const RunOptions *ro);
void run_context_close(RunContext *rc);

/* sets OpenMP's and OpenBLAS's thread counts (n <= 0: all cores) */
void set_cpu_threads(int n);

#endif
