/*
 * bench_inception.c: FID Inception throughput against PyTorch in the same
 * run: the "inception" section of `deediff bench`.
 *
 * Both sides run the same network (pytorch-fid's Inception-v3, fp32,
 * inference) on the same synthetic weights (inception_write_synthetic) and
 * batches of 32 random 32x32 images resized to 299x299, on 2 CPU threads.
 * The peer is tests/reference/bench_inception.py (torchvision's layers with
 * pytorch-fid's blocks, run by Debian's /usr/bin/python3), as installed and
 * with OpenBLAS's best core type (bench_peer_env), in turn, `rounds` times,
 * each side's best kept. Result: images/s of each and the ratios ours /
 * PyTorch (> 1: we are faster).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../kernels/errors.h"
#include "../../kernels/philox.h"
#include "../../model/inception.h"
#include "bench_util.h"
#include "../cli/cli.h"
#include "../cli/run_context.h"

#define BENCH_BATCH 32
#define BENCH_SIZE 32
#define BENCH_THREADS 2
#define BENCH_ITERS 3

/* images/s of our network: the median of BENCH_ITERS batches after a warm-up */
static double ours_images_per_s(const char *weights)
{
    set_cpu_threads(BENCH_THREADS);
    Ctx ctx;
    ctx_init_cpu(&ctx, BENCH_THREADS);
    Inception m;
    CHECK(inception_load(&m, &ctx, weights) == 0, "%s", err_msg());
    size_t n = (size_t)BENCH_BATCH * 3 * BENCH_SIZE * BENCH_SIZE;
    float *x = xmalloc(n * sizeof(float)), *f = xmalloc((size_t)BENCH_BATCH * INCEPTION_FEATURES * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)((i * 2654435761u) % 1000) / 999.0f;
    InceptionActs acts;
    inception_acts_create(&acts, &ctx, &m, BENCH_BATCH);
    Tensor tx = tensor4(x, DT_F32, BENCH_BATCH, 3, BENCH_SIZE, BENCH_SIZE);
    Tensor tf = tensor2(f, DT_F32, BENCH_BATCH, INCEPTION_FEATURES);
    inception_forward(&ctx, &m, &acts, tx, tf);  // warm-up: page faults, scratch growth
    double times[BENCH_ITERS];
    for (int i = 0; i < BENCH_ITERS; i++) {
        double t0 = bench_now();
        inception_forward(&ctx, &m, &acts, tx, tf);
        times[i] = bench_now() - t0;
    }
    inception_acts_destroy(&acts, &ctx);
    inception_destroy(&m, &ctx);
    ctx_destroy(&ctx);
    free(x), free(f);
    return BENCH_BATCH / bench_median(times, BENCH_ITERS);
}

/* images/s of the PyTorch peer, or 0 (note on stderr) when it cannot run */
static double torch_images_per_s(const char *weights, char *version, size_t vn)
{
    char cmd[1024], line[4096] = {0};
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tests/reference/bench_inception.py --weights '%s' --batch %d "
             "--threads %d --iters %d --size %d",
             weights, BENCH_BATCH, BENCH_THREADS, BENCH_ITERS, BENCH_SIZE);
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

int bench_inception(FILE *out, int rounds)
{
    char weights[256];
    snprintf(weights, sizeof weights, "/tmp/deediff-bench-inception-%d.safetensors", (int)getpid());
    if (inception_write_synthetic(weights)) return -1;
    char version[64] = "?";
    double ours = 0, peers[2] = {0, 0};
    for (int r = 0; r < rounds; r++) {
        double o = ours_images_per_s(weights);
        if (o > ours) ours = o;
        for (int fair = 0; fair < 2; fair++) {
            bench_peer_env(fair);
            double p = torch_images_per_s(weights, version, sizeof version);
            if (p > peers[fair]) peers[fair] = p;
        }
    }
    unlink(weights);
    fprintf(out, "FID Inception pool3, fp32, batch %d of %dx%d -> 299x299, %d threads, %s, best of %d round%s\n",
            BENCH_BATCH, BENCH_SIZE, BENCH_SIZE, BENCH_THREADS, bench_cpu_name(), rounds, rounds > 1 ? "s" : "");
    fprintf(out, "  ours:               %8.2f images/s\n", ours);
    for (int fair = 0; fair < 2; fair++) {
        const char *how = fair ? "with OpenBLAS's best core" : "as installed";
        if (peers[fair] > 0)
            fprintf(out, "  PyTorch %s, %-26s %8.2f images/s, ours/PyTorch %.2f\n", version, how,
                    peers[fair], ours / peers[fair]);
        else
            fprintf(out, "  PyTorch %s: not available, no ratio\n", how);
    }
    return 0;
}
