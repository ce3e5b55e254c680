/*
 * run_context.h: the options every compute command shares (--backend,
 * --threads, --precision) and the op context they open.
 *
 * --backend auto (the default) is cuda when this deediff was built with
 * CUDA and a GPU is usable (ctx_cuda_available()), else cpu; so a CPU-only
 * build or a machine without a GPU behaves exactly as with --backend cpu.
 * run_context_open() replaces "auto" in the options with the backend it
 * chose, so run records name "cpu" or "cuda", never "auto".
 */
#ifndef DEEDIFF_RUN_CONTEXT_H
#define DEEDIFF_RUN_CONTEXT_H

#include "../../kernels/ops.h"
#include "../profile/profile.h"
#include "../store/store.h"

typedef struct {
    const char *backend;   /* "auto" (default), "cpu" or "cuda"; "cpu" or "cuda" once opened */
    const char *threads;   /* CPU threads; default: all cores */
    const char *precision; /* "fp32" or "bf16"; default: the backend's (CPU fp32, CUDA bf16) */
    int profile;           /* --profile (train, sample, eval): kernel timings, harness/profile/profile.h */
} RunOptions;

typedef struct {
    Ctx ctx;
    int threads;
    Profiler *profiler;    /* NULL unless --profile */
} RunContext;

RunOptions run_options_default(void);

/* the CliOpt entries for a RunOptions, for a command's option table */
#define RUN_OPTIONS(ro)                                                              \
    {"--backend", "auto|cpu|cuda", "where the network runs (default auto: cuda when a GPU is usable, else cpu)", \
     &(ro).backend, NULL, 0},                                                        \
    {"--threads", "N", "CPU threads (default: all cores)", &(ro).threads, NULL, 0},  \
    {"--precision", "fp32|bf16", "the network's GEMMs: fp32 (default on CPU), or bf16 operands with fp32 " \
     "sums (CPUs with AVX512-BF16 or AMX; CUDA is bf16)", &(ro).precision, NULL, 0}

/* --profile, for the commands whose runs record kernel timings */
#define PROFILE_OPTION(ro)                                                           \
    {"--profile", NULL, "time every GPU kernel by phase (CUPTI, else CUDA events) into the results "   \
     "database, table kernel_timings; CUDA backend only", NULL, &(ro).profile, 0}

/* opens the context and sets ro->backend to the backend chosen ("cpu" or
   "cuda"); -1 + err_msg() on a bad option, --backend cuda and no GPU, or
   a precision this machine cannot compute (one line naming the flag); with
   ro->profile, starts the profiler (-1 on the CPU backend: profile.h) */
int run_context_open(RunContext *rc, RunOptions *ro);

/* --profile: the kernel timings into run_id's rows (profile_finish) and a
   line on stderr; 0 without --profile */
int run_context_profile_store(RunContext *rc, Store *s, int64_t run_id);

/* for commands that run on the CPU only: "auto" becomes "cpu"; "cuda" is
   bad input (-1 + err_msg() saying `why`) */
int run_options_cpu_only(RunOptions *ro, const char *why);

/* what the context computes in, for run records: "fp32", or "bf16" (bf16
   GEMM operands with fp32 sums on the CPU; bf16 activations, fp32
   accumulation and fp32 weights on CUDA) */
const char *run_context_precision(const RunContext *rc);
void run_context_close(RunContext *rc);

/* sets OpenMP's and OpenBLAS's thread counts (n <= 0: all cores) */
void set_cpu_threads(int n);

#endif
