/*
 * bench_cuda_ops.c: how close the CUDA ops come to the card's ceilings.
 *
 * Built and run by `make gpu-check` on a CUDA machine. It measures two
 * ceilings on the card it runs on, then each op as model code calls it
 * (through kernels/ops.h on a CUDA context), and prints rates with their
 * ratio to the ceiling, never a bare time:
 *   - GEMM ceiling: a large cuBLAS BF16 GEMM (cublasGemmEx, 8192^3, F32
 *     accumulation), in TFLOP/s
 *   - memory ceiling: a device-to-device copy of 1 GiB, in GB/s (read + write)
 * GEMMs are reported in TFLOP/s against the GEMM ceiling (F32 GEMMs run
 * without tensor cores, so expect a few % there); memory-bound ops in GB/s of
 * the bytes they must move, against the copy.
 *
 * Timing: a warm-up call, then the number of calls that fills about 20 ms,
 * five times, with a device synchronize around each; the median is reported.
 * Shapes are U-ViT-S/2's at batch 32 (M = 32 * 257 tokens, D = 512) and 8192^3.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/errors.h"
#include "kernels/ops.h"

#ifdef DEEDIFF_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "tests/cuda_bench/bf16_host.h"

#define REPEATS 5
#define TARGET_SECONDS 0.02

typedef void (*BenchFn)(void *arg);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void device_sync(void)
{
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) FATAL("cudaDeviceSynchronize: %s", cudaGetErrorString(e));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median seconds per call of fn(arg) */
static double seconds_per_call(BenchFn fn, void *arg)
{
    fn(arg); /* warm-up: cuBLASLt heuristics, scratch growth, clocks */
    device_sync();
    double t0 = now();
    fn(arg);
    device_sync();
    double once = now() - t0;
    int calls = once > 0 ? (int)(TARGET_SECONDS / once) : 1000;
    if (calls < 1) calls = 1;
    if (calls > 1000) calls = 1000;
    double per_call[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
        device_sync();
        t0 = now();
        for (int i = 0; i < calls; i++) fn(arg);
        device_sync();
        per_call[r] = (now() - t0) / calls;
    }
    qsort(per_call, REPEATS, sizeof per_call[0], cmp_double);
    return per_call[REPEATS / 2];
}

/* ---- device buffers ---------------------------------------------------------------- */

static Ctx ctx;

/* n values uniform in [-1, 1) as dtype dt on the device */
static void *device_random(int64_t n, DType dt, uint64_t seed)
{
    size_t es = dtype_size(dt);
    void *host = xmalloc((size_t)n * es);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        float v = (float)((s >> 40) * (2.0 / 16777216.0)) - 1.0f;
        if (dt == DT_BF16) ((uint16_t *)host)[i] = bf16_from_f32(v);
        else ((float *)host)[i] = v;
    }
    void *dev = ctx_alloc(&ctx, (size_t)n * es);
    ctx_upload(&ctx, dev, host, (size_t)n * es);
    ctx_sync(&ctx);
    free(host);
    return dev;
}

/* ---- ceilings -------------------------------------------------------------------------- */

typedef struct {
    cublasHandle_t h;
    int n;
    void *a, *b, *c;
} PeakGemm;

static void peak_gemm(void *arg)
{
    PeakGemm *g = arg;
    const float alpha = 1.0f, beta = 0.0f;
    cublasStatus_t st = cublasGemmEx(g->h, CUBLAS_OP_T, CUBLAS_OP_N, g->n, g->n, g->n, &alpha,
                                     g->a, CUDA_R_16BF, g->n, g->b, CUDA_R_16BF, g->n, &beta,
                                     g->c, CUDA_R_16BF, g->n, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) FATAL("cublasGemmEx: %s", cublasGetStatusString(st));
}

/* TFLOP/s of a BF16 8192^3 cuBLAS GEMM */
static double gemm_ceiling(void)
{
    PeakGemm g = {NULL, 8192, NULL, NULL, NULL};
    int64_t nn = (int64_t)g.n * g.n;
    g.a = device_random(nn, DT_BF16, 1);
    g.b = device_random(nn, DT_BF16, 2);
    g.c = ctx_alloc(&ctx, (size_t)nn * 2);
    if (cublasCreate(&g.h) != CUBLAS_STATUS_SUCCESS) FATAL("cublasCreate failed");
    double s = seconds_per_call(peak_gemm, &g);
    cublasDestroy(g.h);
    ctx_free(&ctx, g.a), ctx_free(&ctx, g.b), ctx_free(&ctx, g.c);
    return 2.0 * g.n * (double)g.n * g.n / s / 1e12;
}

typedef struct {
    void *dst, *src;
    size_t bytes;
} Copy;

static void device_copy(void *arg)
{
    Copy *c = arg;
    ctx_copy(&ctx, c->dst, c->src, c->bytes);
}

/* GB/s of a 1 GiB device-to-device copy, counting read and write */
static double copy_ceiling(void)
{
    Copy c = {NULL, NULL, (size_t)1 << 30};
    c.src = ctx_alloc(&ctx, c.bytes);
    c.dst = ctx_alloc(&ctx, c.bytes);
    ctx_zero(&ctx, tensor1(c.src, DT_F32, (int64_t)(c.bytes / 4)));
    double s = seconds_per_call(device_copy, &c);
    ctx_free(&ctx, c.src), ctx_free(&ctx, c.dst);
    return 2.0 * (double)c.bytes / s / 1e9;
}

/* ---- ops ---------------------------------------------------------------------------------- */

typedef struct {
    Tensor out, in, w, b;
} Linear;

static void run_linear(void *arg)
{
    Linear *l = arg;
    op_linear_forward(&ctx, l->out, l->in, l->w, l->b);
}

/* out[M,N] = in[M,K] w[N,K]^T + b: TFLOP/s and its share of the GEMM ceiling */
static void bench_linear(const char *label, int64_t M, int64_t K, int64_t N, DType act,
                         DType w_dt, double ceiling)
{
    Linear l;
    l.in = tensor2(device_random(M * K, act, 3), act, M, K);
    l.w = tensor2(device_random(N * K, w_dt, 4), w_dt, N, K);
    l.b = tensor1(device_random(N, w_dt, 5), w_dt, N);
    l.out = tensor2(ctx_alloc(&ctx, (size_t)(M * N) * dtype_size(act)), act, M, N);
    double s = seconds_per_call(run_linear, &l);
    double tflops = 2.0 * M * (double)N * K / s / 1e12;
    char shape[64];
    snprintf(shape, sizeof shape, "%lldx%lld -> %lld + b", (long long)M, (long long)K, (long long)N);
    printf("%-34s %-24s %9.1f TFLOP/s  %6.1f%% of GEMM ceiling\n", label, shape, tflops,
           100.0 * tflops / ceiling);
    ctx_free(&ctx, l.in.data), ctx_free(&ctx, l.w.data), ctx_free(&ctx, l.b.data);
    ctx_free(&ctx, l.out.data);
}

typedef struct {
    int which; /* 0 layernorm, 1 gelu, 2 add */
    Tensor out, in, other, w, b, mean, rstd;
} Pointwise;

static void run_pointwise(void *arg)
{
    Pointwise *p = arg;
    if (p->which == 0) op_layernorm_forward(&ctx, p->out, p->mean, p->rstd, p->in, p->w, p->b, 1e-5f);
    else if (p->which == 1) op_gelu_forward(&ctx, p->out, p->in);
    else op_add_forward(&ctx, p->out, p->in, p->other);
}

/* a memory-bound op over in[M,C] (BF16): GB/s of the bytes it must move */
static void bench_memory_op(const char *label, int which, int64_t M, int64_t C, double ceiling)
{
    Pointwise p = {.which = which};
    int64_t n = M * C;
    p.in = tensor2(device_random(n, DT_BF16, 6), DT_BF16, M, C);
    p.other = tensor2(device_random(n, DT_BF16, 7), DT_BF16, M, C);
    p.out = tensor2(ctx_alloc(&ctx, (size_t)n * 2), DT_BF16, M, C);
    p.w = tensor1(device_random(C, DT_F32, 8), DT_F32, C);
    p.b = tensor1(device_random(C, DT_F32, 9), DT_F32, C);
    p.mean = tensor1(ctx_alloc(&ctx, (size_t)M * 4), DT_F32, M);
    p.rstd = tensor1(ctx_alloc(&ctx, (size_t)M * 4), DT_F32, M);
    /* bytes read + written: layernorm and gelu 2 n BF16 values, add 3 n */
    double bytes = (which == 2 ? 3.0 : 2.0) * (double)n * 2 + (which == 0 ? 8.0 * M : 0);
    double s = seconds_per_call(run_pointwise, &p);
    double gbs = bytes / s / 1e9;
    char shape[64];
    snprintf(shape, sizeof shape, "%lldx%lld bf16", (long long)M, (long long)C);
    printf("%-34s %-24s %9.0f GB/s     %6.1f%% of copy ceiling\n", label, shape, gbs,
           100.0 * gbs / ceiling);
    ctx_free(&ctx, p.in.data), ctx_free(&ctx, p.other.data), ctx_free(&ctx, p.out.data);
    ctx_free(&ctx, p.w.data), ctx_free(&ctx, p.b.data);
    ctx_free(&ctx, p.mean.data), ctx_free(&ctx, p.rstd.data);
}

int main(void)
{
    if (ctx_init_cuda(&ctx, 0) != 0) {
        fprintf(stderr, "bench_cuda_ops: %s\n", err_msg());
        return EXIT_BAD_INPUT;
    }
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) FATAL("cudaGetDeviceProperties failed");
    printf("bench_cuda_ops on %s (%d SMs), median of %d runs\n", prop.name,
           prop.multiProcessorCount, REPEATS);

    double gemm_peak = gemm_ceiling(), copy_peak = copy_ceiling();
    printf("ceilings: cuBLAS BF16 GEMM 8192^3 %.1f TFLOP/s, device copy %.0f GB/s\n\n",
           gemm_peak, copy_peak);

    const int64_t M = 32 * 257, D = 512, H = 8192; /* U-ViT-S/2 at batch 32; a large GEMM */
    bench_linear("linear bf16, F32 weights", M, D, 3 * D, DT_BF16, DT_F32, gemm_peak);
    bench_linear("linear bf16, BF16 weights", M, D, 3 * D, DT_BF16, DT_BF16, gemm_peak);
    bench_linear("linear f32 (no TF32)", M, D, 3 * D, DT_F32, DT_F32, gemm_peak);
    bench_linear("linear bf16, F32 weights", H, H, H, DT_BF16, DT_F32, gemm_peak);
    bench_linear("linear bf16, BF16 weights", H, H, H, DT_BF16, DT_BF16, gemm_peak);
    bench_linear("linear f32 (no TF32)", H, H, H, DT_F32, DT_F32, gemm_peak);
    bench_memory_op("layernorm_forward", 0, M, D, copy_peak);
    bench_memory_op("gelu_forward", 1, M, 4 * D, copy_peak);
    bench_memory_op("add_forward", 2, M, D, copy_peak);

    ctx_destroy(&ctx);
    return 0;
}

#else

int main(void)
{
    fprintf(stderr, "bench_cuda_ops: this build has no CUDA (no nvcc found, or CUDA=0)\n");
    return EXIT_BAD_INPUT;
}

#endif
