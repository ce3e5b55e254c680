/*
 * bench_busy.c: sampling throughput when another process keeps one core
 * busy (`deediff bench --busy`).
 *
 * Laptops and CI runners are shared: the goal (issue 10) is that with one
 * core busy elsewhere, sampling throughput falls by at most 2.5x. This
 * forks a child that spins on one core (stopped with SIGSTOP while the idle
 * runs are timed, SIGCONT for the busy ones, killed at the end and when
 * deediff dies) and samples the same images from the embedded default
 * backbone (results/weights/fmnist-uvit.safetensors, method none, DPM-Solver
 * BUSY_EVALS evaluations, BUSY_IMAGES images; --quick: a quarter of each,
 * for tests) idle and busy in turn, BUSY_REPS times each, interleaved so a
 * slow minute hits both alike. It prints the medians and busy/idle; the README's "Threads" section says why
 * the OpenMP wait policy decides this.
 */
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../kernels/cpu/cpu_startup.h"
#include "../../kernels/errors.h"
#include "../../model/method.h"
#include "bench_util.h"

#define BUSY_MODEL "results/weights/fmnist-uvit.safetensors"
#define BUSY_IMAGES 64
#define BUSY_EVALS 20
#define BUSY_REPS 3
#define BUSY_LIMIT 2.5

/* a child process spinning on one core until killed (also when we die) */
static pid_t start_spinner(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0, "bench --busy: fork failed");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (volatile unsigned long i = 0;; i++) {}
    }
    kill(pid, SIGSTOP);
    return pid;
}

/* seconds of one sampling run of n images (n <= BUSY_IMAGES) */
static double time_sampling(Ctx *ctx, Method *me, const UViT *m, const SamplerConfig *sc, int n, float *imgs)
{
    const UViTConfig *c = &m->cfg;
    SampleAccount acc = {0};
    NoisePredictor *p = method_predictor(me, ctx, m, n, sc->schedule, 0, &acc);
    int64_t ids[BUSY_IMAGES];
    for (int i = 0; i < n; i++) ids[i] = i;
    double t0 = bench_now();
    int rc = sample_run(ctx, p, sc, c->in_chans, c->img_size, c->img_size, n, ids, NULL, imgs);
    ctx_sync(ctx);
    double dt = bench_now() - t0;
    method_predictor_free(me, ctx, p);
    CHECK(rc == 0, "bench --busy: %s", err_msg());
    return dt;
}

int bench_busy(FILE *out, Ctx *ctx, int quick)
{
    if (access(BUSY_MODEL, R_OK))
        return err_set("bench --busy: %s is missing (run from the repository root)", BUSY_MODEL);
    UViT m;
    Method *me;
    if (method_load(BUSY_MODEL, "none", NULL, ctx, &m, &me)) return -1;
    SamplerConfig sc = sampler_config_default(SAMPLER_DPM, SCHEDULE_VPSDE);
    sc.steps = quick ? BUSY_EVALS / 4 : BUSY_EVALS;
    int n = quick ? BUSY_IMAGES / 4 : BUSY_IMAGES;
    const UViTConfig *c = &m.cfg;
    float *imgs = xmalloc(sizeof(float) * BUSY_IMAGES * c->in_chans * c->img_size * c->img_size);
    time_sampling(ctx, me, &m, &sc, n, imgs);  /* warm-up: page faults, JIT kernels */
    pid_t spinner = start_spinner();
    double idle[BUSY_REPS], busy[BUSY_REPS];
    for (int r = 0; r < BUSY_REPS; r++) {
        idle[r] = time_sampling(ctx, me, &m, &sc, n, imgs);
        kill(spinner, SIGCONT);
        busy[r] = time_sampling(ctx, me, &m, &sc, n, imgs);
        kill(spinner, SIGSTOP);
    }
    kill(spinner, SIGKILL);
    waitpid(spinner, NULL, 0);
    double ti = bench_median(idle, BUSY_REPS), tb = bench_median(busy, BUSY_REPS);
    int threads = ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
    fprintf(out, "sharing the machine: %s, %d images, DPM-Solver %d evaluations, %s, %d threads, "
                 "median of %d interleaved runs%s\n", BUSY_MODEL, n, sc.steps, bench_cpu_name(),
            threads, BUSY_REPS, quick ? " (--quick: a check that it runs, not a measurement)" : "");
    cpu_describe(out);
    fprintf(out, "  idle:                      %8.2f images/s\n", n / ti);
    fprintf(out, "  one core busy (a spinner): %8.2f images/s\n", n / tb);
    fprintf(out, "  slowdown busy/idle         %8.2fx (goal: at most %.1fx) %s\n", tb / ti, BUSY_LIMIT,
            tb / ti <= BUSY_LIMIT ? "ok" : "MISSED");
    free(imgs);
    method_free(me, ctx);
    uvit_destroy(&m, ctx);
    return 0;
}
