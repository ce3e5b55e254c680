/*
 * bench_util.h: what every benchmark shares: a monotonic clock, medians,
 * the CPU's name, and running the PyTorch peer.
 */
#ifndef DEEDIFF_BENCH_UTIL_H
#define DEEDIFF_BENCH_UTIL_H

#include <stdio.h>

/* seconds on a monotonic clock */
double bench_now(void);
/* median of v[n] (sorts v) */
double bench_median(double *v, int n);
/* "AMD EPYC ..." from /proc/cpuinfo, or "unknown CPU" */
const char *bench_cpu_name(void);
struct Ctx;
/* where ctx computes: the GPU's name on CUDA, else the CPU's */
const char *bench_device_name(const struct Ctx *ctx);
/* the Python that runs the PyTorch peer: Debian's /usr/bin/python3 on the
   CPU (python3-torch), on CUDA $DEEDIFF_PYTHON or else python3 from PATH
   (a CUDA build of PyTorch is rarely Debian's)                             */
const char *bench_python(const struct Ctx *ctx);

typedef struct {
    double forward_ips, fwdbwd_ips, train_ips;
    char version[32];
} TorchTimes;

/* runs tests/reference/bench_torch.py with Debian's /usr/bin/python3 on the
   same configuration, weights file, batch and threads; returns -1 (times
   left at 0, a note on stderr) when PyTorch is unavailable */
int bench_torch(const char *config_json, const char *weights, int batch, int threads,
                int iters, TorchTimes *out);

/* the machine's fp32 GEMM ceiling (bench_ceiling.c), in GFLOP/s: gflops
   per library (index GemmLibrary; [2]: OpenBLAS with its best core type in
   a child process, when this process runs a weaker one) and the best, with
   its provenance. Start zeroed; each measurement keeps the best rate seen,
   so a slow minute cannot lower the ceiling. self: this program (it runs
   `self bench --sgemm n`), or NULL to measure in this process alone.     */
typedef struct {
    int n;
    double gflops[3], best;
    char best_name[160], child_name[128];
} SgemmCeiling;
void bench_sgemm_ceiling(SgemmCeiling *c, int n, int reps, const char *self);
void bench_print_ceiling(FILE *out, const SgemmCeiling *c);
/* `deediff bench --sgemm n`: one line "sgemm <provenance> <GFLOP/s>" per
   library, in this process                                                 */
void bench_print_sgemm(FILE *out, int n, int reps);
/* the environment for the PyTorch peer's process: fair 0 as the user
   started deediff, fair 1 with OpenBLAS's best core type for this CPU and
   our OpenMP wait policy (see bench_ceiling.c) */
void bench_peer_env(int fair);

/* the benchmark sections of `deediff bench` beyond U-ViT, each printing
   its ratio to a reference measured in the same run; -1 + err_msg() */
/* FID Inception images/s vs PyTorch, best of rounds: on the CPU (2 threads)
   when gpu is NULL, else on that CUDA context against PyTorch on the card */
int bench_inception(FILE *out, struct Ctx *gpu, int rounds);
int bench_autoencoder(FILE *out);            /* KL autoencoder encode/decode images/s vs PyTorch */
int bench_frechet(FILE *out);    /* Frechet distance at 2048-d vs a general sqrtm */
int bench_early_exit(FILE *out, struct Ctx *ctx);  /* wall-clock vs layer saving of early exit */
int bench_busy(FILE *out, struct Ctx *ctx, int quick);  /* sampling with one core busy elsewhere */
/* `deediff bench --backend cuda`: the card's BF16 GEMM ceiling, U-ViT-S/2
   vs PyTorch (eager, torch.compile) with MFU, then the Inception and early
   exit on the GPU, for the sections `only` lists (NULL: all) (bench_gpu.c) */
int bench_gpu(FILE *out, struct Ctx *ctx, const char *only, int no_torch);

#endif
