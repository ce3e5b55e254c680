/*
 * cmd_bench.c: `deediff bench`: performance as ratios measured in one run.
 *
 * For each model configuration it times our forward and forward+backward
 * passes and, in the same run, (a) the best sgemm rate on a large square
 * GEMM among the libraries we can use (oneDNN, OpenBLAS: bench_ceiling.c),
 * the machine's practical ceiling, and (b) the PyTorch reference module
 * (tests/reference/bench_torch.py on Debian's python3-torch) with the same
 * weights, the same batch and the same thread count, as installed and with
 * OpenBLAS's best core type (torch*). It prints ratios, never a bare time
 * without its reference. `--rounds R` repeats each model's measurements
 * (ours, torch, torch*, in turn) R times and keeps each side's best, so a
 * minute when another process held a core skews neither side; `--busy`
 * measures sharing instead (bench_busy.c). `--backend cuda` runs the GPU
 * comparison instead (bench_gpu.c): our CUDA backend against PyTorch on the
 * same card, every line a ratio measured in the same run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../kernels/cpu/cpu_startup.h"
#include "../../kernels/errors.h"
#include "../../model/uvit.h"
#include "bench_ours.h"
#include "bench_util.h"
#include "../cli/cli.h"
#include "../cli/run_context.h"

typedef struct {
    const char *name;
    const char *json;
    int batch;
    int iters;
} BenchModel;

static const BenchModel bench_models[] = {
    {"U-ViT-S/2 (CIFAR-10)",
     "{\"img_size\":32,\"patch_size\":2,\"in_chans\":3,\"embed_dim\":512,\"depth\":12,\"num_heads\":8}",
     32, 2},
    {"small (28x28 p4 D128)",
     "{\"img_size\":28,\"patch_size\":4,\"in_chans\":1,\"embed_dim\":128,\"depth\":12,\"num_heads\":4}",
     32, 10},
};

/* each rate of *best raised to the round's where the round's is higher */
static void keep_best_ours(OurTimes *best, const OurTimes *r)
{
    if (r->fwd_ips > best->fwd_ips) best->fwd_ips = r->fwd_ips;
    if (r->fwdbwd_ips > best->fwdbwd_ips) best->fwdbwd_ips = r->fwdbwd_ips;
    if (r->train_ips > best->train_ips) best->train_ips = r->train_ips;
    best->gflop_fwd = r->gflop_fwd;
}

static void keep_best_torch(TorchTimes *best, const TorchTimes *r)
{
    if (r->forward_ips > best->forward_ips) best->forward_ips = r->forward_ips;
    if (r->fwdbwd_ips > best->fwdbwd_ips) best->fwdbwd_ips = r->fwdbwd_ips;
    if (r->train_ips > best->train_ips) best->train_ips = r->train_ips;
    if (r->version[0]) snprintf(best->version, sizeof best->version, "%s", r->version);
}

/* the U-ViT section: every model of bench_models, measured first and
   printed after, against the best sgemm rate of the whole section */
static int bench_uvit(RunContext *run, const char *backend, int quick, int no_torch, int rounds)
{
    enum { NMODELS = sizeof bench_models / sizeof bench_models[0] };
    int threads = run->threads > 0 ? run->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    OurTimes ours[NMODELS];
    TorchTimes torch[NMODELS], fair[NMODELS];
    int pieces[NMODELS];   /* how our blocks ran: uvit_block_pieces */
    /* measured before and after every model: one slow measurement on a busy
       machine cannot inflate the ratios below it */
    SgemmCeiling ceiling = {0};
    bench_sgemm_ceiling(&ceiling, 2048, 5, "/proc/self/exe");
    for (size_t k = quick ? 1 : 0; k < NMODELS; k++) {
        const BenchModel *bm = &bench_models[k];
        UViTConfig c;
        CHECK(uvit_config_parse(&c, bm->json, "bench") == 0, "%s", err_msg());
        pieces[k] = ctx_split_pieces(&run->ctx, uvit_block_pieces(&run->ctx, &c), bm->batch);
        UViT m;
        uvit_create(&m, &run->ctx, &c);
        uvit_init_random(&m, &run->ctx, 1);
        char weights[] = "/tmp/deediff-bench-XXXXXX";
        int fd = mkstemp(weights);
        CHECK(fd >= 0, "bench: cannot create a temporary file");
        close(fd);
        CHECK(uvit_save(&m, &run->ctx, weights, 0, NULL, NULL) == 0, "%s", err_msg());
        memset(&ours[k], 0, sizeof ours[k]);
        memset(&torch[k], 0, sizeof torch[k]);
        memset(&fair[k], 0, sizeof fair[k]);
        for (int r = 0; r < rounds; r++) {
            OurTimes o;
            bench_ours(&run->ctx, &m, bm->batch, 1, bm->iters, 1, &o);
            keep_best_ours(&ours[k], &o);
            for (int f = 0; f < 2 && !no_torch; f++) {
                TorchTimes t;
                bench_peer_env(f);
                if (bench_torch(bm->json, weights, bm->batch, threads, bm->iters, &t) == 0)
                    keep_best_torch(f ? &fair[k] : &torch[k], &t);
            }
        }
        unlink(weights);
        uvit_destroy(&m, &run->ctx);
        bench_sgemm_ceiling(&ceiling, 2048, 5, "/proc/self/exe");
    }
    double peak = ceiling.best;
    printf("U-ViT, ours %s (PyTorch fp32), %s, %d threads, backend %s, best of %d round%s\n",
           precision_name(run->ctx.precision), bench_cpu_name(), threads, backend, rounds, rounds > 1 ? "s" : "");
    bench_print_ceiling(stdout, &ceiling);
    printf("torch: PyTorch as installed; torch*: with OPENBLAS_CORETYPE=%s and our OpenMP wait policy\n\n",
           cpu_openblas_best_coretype() ? cpu_openblas_best_coretype() : "(none better)");
    printf("%-24s %-8s %9s %9s %10s %9s %10s %8s %8s\n", "model (batch)", "pass", "ours im/s",
           "torch im/s", "ours/torch", "torch*", "ours/torch*", "GFLOP/s", "of ceil");
    for (size_t k = quick ? 1 : 0; k < NMODELS; k++) {
        const BenchModel *bm = &bench_models[k];
        char label[64];
        snprintf(label, sizeof label, "%s (%d)", bm->name, bm->batch);
        /* a backward does 2x the forward's multiply-adds (the update's are few) */
        double ips[3] = {ours[k].fwd_ips, ours[k].fwdbwd_ips, ours[k].train_ips};
        double tips[3] = {torch[k].forward_ips, torch[k].fwdbwd_ips, torch[k].train_ips};
        double fips[3] = {fair[k].forward_ips, fair[k].fwdbwd_ips, fair[k].train_ips};
        double flops[3] = {1, 3, 3};
        const char *pass[3] = {"fwd", "fwd+bwd", "train"};
        for (int p = 0; p < 3; p++) {
            char tcol[32] = "-", rcol[32] = "-", fcol[32] = "-", frcol[32] = "-";
            if (tips[p] > 0) {
                snprintf(tcol, sizeof tcol, "%.2f", tips[p]);
                snprintf(rcol, sizeof rcol, "%.2fx", ips[p] / tips[p]);
            }
            if (fips[p] > 0) {
                snprintf(fcol, sizeof fcol, "%.2f", fips[p]);
                snprintf(frcol, sizeof frcol, "%.2fx", ips[p] / fips[p]);
            }
            double gf = flops[p] * ours[k].gflop_fwd * ips[p];
            printf("%-24s %-8s %9.2f %9s %10s %9s %10s %8.1f %7.0f%%\n", p ? "" : label, pass[p], ips[p],
                   tcol, rcol, fcol, frcol, gf, 100 * gf / peak);
        }
        printf("%-24s train step / forward = %.2f (a backward of 2 forwards gives 3)\n", "",
               ours[k].fwd_ips / ours[k].train_ips);
        if (pieces[k] > 1) printf("%-24s our blocks ran as %d pieces of the batch, one per thread\n", "", pieces[k]);
        else if (run->ctx.backend == BACKEND_CPU) printf("%-24s our blocks ran op by op, each op across the threads\n", "");
        if (torch[k].version[0]) printf("%-24s torch %s, %d threads\n", "", torch[k].version, threads);
    }
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    int no_torch = 0, quick = 0, busy = 0;
    const char *sgemm = NULL, *rounds_s = NULL;
    const char *only = NULL;
    RunOptions ro = run_options_default();
    ro.backend = "cpu"; /* its ratios are to this CPU's ceilings */
    CliOpt opts[] = {
        {"--only", "uvit,inception,autoencoder,frechet,early-exit", "run only these sections (default all)", &only, NULL, 0},
        {"--no-torch", NULL, "skip the PyTorch peer", NULL, &no_torch, 0},
        {"--quick", NULL, "U-ViT: only the small configuration; --busy: a quarter of the images, a quarter of the "
         "evaluations (a check that it runs, not a measurement)", NULL, &quick, 0},
        {"--rounds", "R", "U-ViT and Inception: measure each side R times in turn, keep each side's best "
         "(default 1)", &rounds_s, NULL, 0},
        {"--busy", NULL, "instead: sampling throughput with one core kept busy by a spinning process", NULL,
         &busy, 0},
        {"--sgemm", "N", "instead: each library's sgemm GFLOP/s on N^3 (the ceiling's child process)", &sgemm,
         NULL, 0},
        {"--backend", "cpu|cuda|auto", "where it runs (default cpu: the ratios are to this CPU's ceilings; cuda: "
         "the GPU against PyTorch on the same card, its BF16 GEMM ceiling and MFU)", &ro.backend, NULL, 0},
        {"--threads", "N", "CPU threads (default: all cores)", &ro.threads, NULL, 0},
    };
    int rc = cli_parse("bench", "[options]",
                       "Performance as ratios measured in one run: U-ViT forward, forward+backward "
                       "and training step vs the best sgemm of oneDNN and OpenBLAS and vs PyTorch; FID Inception vs "
                       "PyTorch; the Frechet distance vs a general matrix square root; early exit's wall-clock "
                       "saving vs its layer saving.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : -1;
    static const char *const sections[] = {"uvit", "inception", "autoencoder", "frechet", "early-exit"};
    if (only) {
        int any = 0;
        for (int i = 0; i < 5; i++) any |= cli_listed(only, sections[i]);
        if (!any) return err_set("--only: '%s' names none of uvit, inception, autoencoder, frechet, early-exit", only);
    }
    long rounds = 1;
    if (rounds_s && cli_int("--rounds", rounds_s, 1, 100, &rounds)) return -1;
    RunContext run;
    if (run_context_open(&run, &ro)) return -1;
    if (sgemm) {
        long n;
        if (cli_int("--sgemm", sgemm, 1, 16384, &n)) return -1;
        bench_print_sgemm(stdout, (int)n, 5);
        return 0;
    }
    if (busy) {
        rc = bench_busy(stdout, &run.ctx, quick);
        run_context_close(&run);
        return rc;
    }
    if (run.ctx.backend == BACKEND_CUDA) { /* the GPU against PyTorch on the same card (bench_gpu.c) */
        rc = bench_gpu(stdout, &run.ctx, only, no_torch);
        run_context_close(&run);
        return rc;
    }
    if (rc == 0 && cli_listed(only, "uvit")) rc = bench_uvit(&run, ro.backend, quick, no_torch, (int)rounds);
    if (rc == 0 && cli_listed(only, "inception")) {
        printf("\n");
        rc = bench_inception(stdout, NULL, (int)rounds);
    }
    if (rc == 0 && cli_listed(only, "autoencoder")) {
        printf("\n");
        rc = bench_autoencoder(stdout);
    }
    if (rc == 0 && cli_listed(only, "frechet")) {
        printf("\n");
        rc = bench_frechet(stdout);
    }
    if (rc == 0 && cli_listed(only, "early-exit")) rc = bench_early_exit(stdout, &run.ctx);
    run_context_close(&run);
    return rc;
}
