/*
 * bench_inception.c: FID Inception throughput against PyTorch in the same
 * run: the "inception" section of `deediff bench`.
 *
 * Both sides run the same network (pytorch-fid's Inception-v3, fp32,
 * inference) on the same synthetic weights (inception_write_synthetic) and
 * batches of random 32x32 images resized to 299x299. The peer is
 * tests/reference/bench_inception.py (torchvision's layers with
 * pytorch-fid's blocks), `rounds` times in turn with ours, each side's best
 * kept. Result: images/s of each and the ratios ours / PyTorch (> 1: we are
 * faster).
 *   CPU   batch 32 on 2 threads; the peer (Debian's /usr/bin/python3) as
 *         installed and with OpenBLAS's best core type (bench_peer_env)
 *   CUDA  batch 256 on the card; the peer on the same card as pytorch-fid
 *         runs it (cuDNN, TF32 convolutions allowed: PyTorch's default) and
 *         with TF32 off (exact F32 products, as ours)
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../kernels/errors.h"
#include "../../model/inception.h"
#include "bench_util.h"
#include "../cli/cli.h"
#include "../cli/run_context.h"

#define BENCH_SIZE 32
#define CPU_BATCH 32
#define CPU_THREADS 2
#define CPU_ITERS 3
#define GPU_BATCH 256
#define GPU_ITERS 5

/* images/s of our network on ctx: the median of `iters` batches after a warm-up */
static double ours_on(Ctx *ctx, const char *weights, int batch, int iters)
{
    Inception m;
    CHECK(inception_load(&m, ctx, weights) == 0, "%s", err_msg());
    size_t n = (size_t)batch * 3 * BENCH_SIZE * BENCH_SIZE, nf = (size_t)batch * INCEPTION_FEATURES;
    float *host = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) host[i] = (float)((i * 2654435761u) % 1000) / 999.0f;
    // x is (batch, 3, 32, 32) in [0, 1], f is (batch, 2048): backend memory
    float *x = ctx_alloc(ctx, n * sizeof(float)), *f = ctx_alloc(ctx, nf * sizeof(float));
    ctx_upload(ctx, x, host, n * sizeof(float));
    InceptionActs acts;
    inception_acts_create(&acts, ctx, &m, batch);
    Tensor tx = tensor4(x, DT_F32, batch, 3, BENCH_SIZE, BENCH_SIZE);
    Tensor tf = tensor2(f, DT_F32, batch, INCEPTION_FEATURES);
    inception_forward(ctx, &m, &acts, tx, tf);  // warm-up: page faults, scratch growth, GEMM heuristics
    double *times = xmalloc((size_t)iters * sizeof(double));
    for (int i = 0; i < iters; i++) {
        ctx_sync(ctx);
        double t0 = bench_now();
        inception_forward(ctx, &m, &acts, tx, tf);
        ctx_sync(ctx);
        times[i] = bench_now() - t0;
    }
    double ips = batch / bench_median(times, iters);
    inception_acts_destroy(&acts, ctx);
    inception_destroy(&m, ctx);
    ctx_free(ctx, x), ctx_free(ctx, f);
    free(host), free(times);
    return ips;
}

static double ours_on_cpu(const char *weights)
{
    set_cpu_threads(CPU_THREADS);
    Ctx ctx;
    ctx_init_cpu(&ctx, CPU_THREADS);
    double ips = ours_on(&ctx, weights, CPU_BATCH, CPU_ITERS);
    ctx_destroy(&ctx);
    return ips;
}

/* images/s of the PyTorch peer run by `python` with `extra` arguments, or 0
   (note on stderr) when it cannot run */
static double torch_images_per_s(const char *python, const char *weights, int batch, int threads, int iters,
                                 const char *extra, char *version, size_t vn)
{
    char cmd[1024], line[4096] = {0};
    snprintf(cmd, sizeof cmd,
             "%s tests/reference/bench_inception.py --weights '%s' --batch %d "
             "--threads %d --iters %d --size %d %s",
             python, weights, batch, threads, iters, BENCH_SIZE, extra);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    char buf[4096];
    while (fgets(buf, sizeof buf, p))
        if (buf[0] == '{') snprintf(line, sizeof line, "%s", buf);
    int status = pclose(p);
    cJSON *j = line[0] ? cJSON_Parse(line) : NULL;
    double ips = 0;
    if (status == 0 && j) {
        cJSON *v = cJSON_GetObjectItem(j, "images_per_s"), *t = cJSON_GetObjectItem(j, "torch");
        if (cJSON_IsNumber(v)) ips = v->valuedouble;
        if (cJSON_IsString(t)) snprintf(version, vn, "%s", t->valuestring);
    }
    cJSON_Delete(j);
    if (ips <= 0) fprintf(stderr, "bench inception: the PyTorch peer did not run (%s)\n", cmd);
    return ips;
}

static void print_peer(FILE *out, const char *version, const char *how, double ours, double peer, const char *goal)
{
    if (peer > 0)
        fprintf(out, "  PyTorch %s, %-30s %8.2f images/s, ours/PyTorch %.2fx%s\n", version, how, peer,
                ours / peer, goal);
    else
        fprintf(out, "  PyTorch %s: not available, no ratio\n", how);
    fflush(out);
}

static int bench_cpu(FILE *out, const char *weights, int rounds)
{
    char version[64] = "?";
    double ours = 0, peers[2] = {0, 0};
    for (int r = 0; r < rounds; r++) {
        double o = ours_on_cpu(weights);
        if (o > ours) ours = o;
        for (int fair = 0; fair < 2; fair++) {
            bench_peer_env(fair);
            double p = torch_images_per_s("/usr/bin/python3", weights, CPU_BATCH, CPU_THREADS, CPU_ITERS, "",
                                          version, sizeof version);
            if (p > peers[fair]) peers[fair] = p;
        }
    }
    fprintf(out, "FID Inception pool3, fp32, batch %d of %dx%d -> 299x299, %d threads, %s, best of %d round%s\n",
            CPU_BATCH, BENCH_SIZE, BENCH_SIZE, CPU_THREADS, bench_cpu_name(), rounds, rounds > 1 ? "s" : "");
    fprintf(out, "  ours:               %8.2f images/s\n", ours);
    print_peer(out, version, "as installed", ours, peers[0], "");
    print_peer(out, version, "with OpenBLAS's best core", ours, peers[1], "");
    return 0;
}

static int bench_cuda(FILE *out, Ctx *gpu, const char *weights, int rounds)
{
    char version[64] = "?";
    static const char *const extra[2] = {"--device cuda --tf32 1", "--device cuda --tf32 0"};
    static const char *const how[2] = {"cuDNN, TF32 convs (default)", "cuDNN, TF32 off (F32 as ours)"};
    double ours = 0, peers[2] = {0, 0};
    fprintf(out, "FID Inception pool3, fp32, batch %d of %dx%d -> 299x299, %s, best of %d round%s\n", GPU_BATCH,
            BENCH_SIZE, BENCH_SIZE, bench_device_name(gpu), rounds, rounds > 1 ? "s" : "");
    fflush(out);
    bench_peer_env(0); /* the GPU peer starts as the user started us */
    for (int r = 0; r < rounds; r++) {
        double o = ours_on(gpu, weights, GPU_BATCH, GPU_ITERS);
        if (o > ours) ours = o;
        for (int k = 0; k < 2; k++) {
            double p = torch_images_per_s(bench_python(gpu), weights, GPU_BATCH, 1, GPU_ITERS, extra[k], version,
                                          sizeof version);
            if (p > peers[k]) peers[k] = p;
        }
    }
    fprintf(out, "  ours (F32, no TF32):  %8.2f images/s\n", ours);
    print_peer(out, version, how[0], ours, peers[0], " (goal >= 1.5x)");
    print_peer(out, version, how[1], ours, peers[1], "");
    return 0;
}

int bench_inception(FILE *out, Ctx *gpu, int rounds)
{
    char weights[256];
    snprintf(weights, sizeof weights, "/tmp/deediff-bench-inception-%d.safetensors", (int)getpid());
    if (inception_write_synthetic(weights)) return -1;
    int rc = gpu ? bench_cuda(out, gpu, weights, rounds) : bench_cpu(out, weights, rounds);
    unlink(weights);
    return rc;
}
