/*
 * bench_cuda_ops.c: how close the CUDA ops come to the card's ceilings.
 *
 * Built and run by `make gpu-check` on a CUDA machine. It measures three
 * ceilings on the card it runs on, then each op as model code calls it
 * (through kernels/ops.h on a CUDA context), and prints next to each
 * measured time the op's floor on this card and the floor's share of it:
 *   floor = max(FLOPs / GEMM ceiling of the op's dtype, bytes / copy ceiling)
 * with FLOPs the op's necessary arithmetic (2 per multiply-add; attention:
 * QK^T and PV forward, the 5 products of FlashAttention-2 backward) and
 * bytes what it must read and write once (kernels/cuda/NOTES.md has each
 * op's formula). The ceilings:
 *   - BF16 GEMM: cuBLAS BF16 8192^3, F32 accumulation (tensor cores)
 *   - F32 GEMM: cuBLAS F32 4096^3, CUBLAS_COMPUTE_32F (no TF32)
 *   - memory: a device-to-device copy of 1 GiB, read + write
 *
 * Timing: a warm-up call, then the number of calls that fills about 20 ms,
 * five times, with a device synchronize around each; the median is reported.
 * Shapes: U-ViT-S/2 at batch 32 (T = 257 tokens, D = 512, 8 heads of 64;
 * its fused fc2 + residual and fc1 GELU backward too),
 * U-ViT-H/2 at 512x512 (T = 1026, 16 heads of 72), the FID Inception's, a
 * sampler step of 64 CIFAR-10 images, and the Stable Diffusion KL
 * autoencoder's at 256x256, batch 8.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/errors.h"
#include "kernels/ops.h"
#include "kernels/philox.h"

#ifdef DEEDIFF_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "tests/cuda_bench/bf16_host.h"

#define REPEATS 5
#define TARGET_SECONDS 0.02
#define MAX_BUFFERS 32

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
    fn(arg); /* warm-up: cuBLASLt heuristics, scratch growth, the Philox table, clocks */
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
static void *buffers[MAX_BUFFERS];
static int n_buffers;

/* n values uniform in [lo, hi) as dtype dt on the device, freed by free_buffers() */
static void *device_values(int64_t n, DType dt, float lo, float hi, uint64_t seed)
{
    size_t es = dtype_size(dt);
    void *host = xmalloc((size_t)(n ? n : 1) * es);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        float v = lo + (hi - lo) * (float)((s >> 40) * (1.0 / 16777216.0));
        if (dt == DT_BF16) ((uint16_t *)host)[i] = bf16_from_f32(v);
        else ((float *)host)[i] = v;
    }
    void *dev = ctx_alloc(&ctx, (size_t)n * es);
    ctx_upload(&ctx, dev, host, (size_t)n * es);
    ctx_sync(&ctx);
    free(host);
    if (n_buffers == MAX_BUFFERS) FATAL("bench_cuda_ops: more than %d buffers", MAX_BUFFERS);
    buffers[n_buffers++] = dev;
    return dev;
}
static void *device_random(int64_t n, DType dt, uint64_t seed) { return device_values(n, dt, -1, 1, seed); }

static void free_buffers(void)
{
    for (int i = 0; i < n_buffers; i++) ctx_free(&ctx, buffers[i]);
    n_buffers = 0;
}

/* ---- ceilings -------------------------------------------------------------------------- */

typedef struct {
    double bf16_flops, f32_flops, bytes_per_s;
} Ceilings;

typedef struct {
    cublasHandle_t h;
    int n;
    cudaDataType t;
    void *a, *b, *c;
} PeakGemm;

static void peak_gemm(void *arg)
{
    PeakGemm *g = arg;
    const float alpha = 1.0f, beta = 0.0f;
    cublasStatus_t st = cublasGemmEx(g->h, CUBLAS_OP_T, CUBLAS_OP_N, g->n, g->n, g->n, &alpha, g->a, g->t, g->n,
                                     g->b, g->t, g->n, &beta, g->c, g->t, g->n, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) FATAL("cublasGemmEx: %s", cublasGetStatusString(st));
}

/* FLOP/s of an n^3 cuBLAS GEMM of dtype dt */
static double gemm_ceiling(int n, DType dt)
{
    PeakGemm g = {NULL, n, dt == DT_BF16 ? CUDA_R_16BF : CUDA_R_32F, NULL, NULL, NULL};
    int64_t nn = (int64_t)n * n;
    g.a = device_random(nn, dt, 1);
    g.b = device_random(nn, dt, 2);
    g.c = device_random(nn, dt, 3);
    if (cublasCreate(&g.h) != CUBLAS_STATUS_SUCCESS) FATAL("cublasCreate failed");
    if (cublasSetMathMode(g.h, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS) FATAL("cublasSetMathMode failed");
    double s = seconds_per_call(peak_gemm, &g);
    cublasDestroy(g.h);
    free_buffers();
    return 2.0 * n * (double)n * n / s;
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

/* bytes/s of a 1 GiB device-to-device copy, counting read and write */
static double copy_ceiling(void)
{
    Copy c = {NULL, NULL, (size_t)1 << 30};
    c.src = device_random((int64_t)(c.bytes / 4), DT_F32, 4);
    c.dst = device_random((int64_t)(c.bytes / 4), DT_F32, 5);
    double s = seconds_per_call(device_copy, &c);
    free_buffers();
    return 2.0 * (double)c.bytes / s;
}

/* ---- the ops ------------------------------------------------------------------------------ */

typedef enum {
    LINEAR_FWD, LINEAR_BWD, LINEAR_RES_FWD, LINEAR_GELU_BWD_SET, LAYERNORM_FWD, LAYERNORM_BWD, ATTENTION_FWD, ATTENTION_BWD, GELU_FWD,
    GELU_BWD, ADD, ADAMW, RANDN, AXPBY, CONV_FWD, CONV_BWD, MAX_POOL, RESIZE, SUM_SQUARES,
    GROUP_NORM_FWD, GROUP_NORM_BWD, UPSAMPLE_FWD, UPSAMPLE_BWD, PAD_FWD, PAD_BWD, GAUSSIAN_FWD,
    GAUSSIAN_BWD
} Kind;

/* one op call: its kind and the tensors it takes (the meaning per kind in run_case) */
typedef struct {
    Kind kind;
    Tensor t[8];
    int heads;
    int groups;
    Conv2dParams conv;
    Pool2dParams pool;
    Pad2dParams pad;
    const float *coef;
    const int64_t *ids;
} Case;

static void run_case(void *arg)
{
    Case *c = arg;
    Tensor *t = c->t;
    static int64_t adam_step;
    switch (c->kind) {
    case LINEAR_FWD: op_linear_forward(&ctx, t[0], t[1], t[2], t[3]); break;
    case LINEAR_BWD: op_linear_backward(&ctx, t[0], t[1], t[2], t[3], t[4], t[5]); break;
    case LINEAR_RES_FWD: op_linear_residual_forward(&ctx, t[0], t[1], t[2], t[3], t[4]); break;
    case LINEAR_GELU_BWD_SET:
        op_linear_gelu_backward_set(&ctx, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]);
        break;
    case LAYERNORM_FWD: op_layernorm_forward(&ctx, t[0], t[1], t[2], t[3], t[4], t[5], 1e-5f); break;
    case LAYERNORM_BWD: op_layernorm_backward(&ctx, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]); break;
    case ATTENTION_FWD: op_attention_forward(&ctx, t[0], t[1], t[2], c->heads); break;
    case ATTENTION_BWD: op_attention_backward(&ctx, t[0], t[1], t[2], t[3], t[4], c->heads); break;
    case GELU_FWD: op_gelu_forward(&ctx, t[0], t[1]); break;
    case GELU_BWD: op_gelu_backward(&ctx, t[0], t[1], t[2]); break;
    case ADD: op_add_forward(&ctx, t[0], t[1], t[2]); break;
    case ADAMW: {
        AdamWParams p = {1e-4, 0.9, 0.999, 1e-8, 0.03, ++adam_step};
        op_adamw_step(&ctx, t[0], t[1], t[2], t[3], p);
        break;
    }
    case RANDN: op_randn(&ctx, t[0], c->ids, 1, RNG_SAMPLE_STEP, 7); break;
    case AXPBY: op_axpby(&ctx, t[0], c->coef, t[1], c->coef, t[2]); break;
    case CONV_FWD: op_conv2d_forward(&ctx, t[0], t[1], t[2], t[3], c->conv); break;
    case CONV_BWD: op_conv2d_backward(&ctx, t[0], t[1], t[2], t[3], t[4], t[5], c->conv); break;
    case MAX_POOL: op_max_pool2d_forward(&ctx, t[0], t[1], c->pool); break;
    case RESIZE: op_resize_bilinear_forward(&ctx, t[0], t[1]); break;
    case SUM_SQUARES: (void)op_sum_squares(&ctx, t[0]); break;
    case GROUP_NORM_FWD: op_group_norm_forward(&ctx, t[0], t[1], t[2], t[3], t[4], t[5], c->groups, 1e-6f); break;
    case GROUP_NORM_BWD:
        op_group_norm_backward(&ctx, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], c->groups);
        break;
    case UPSAMPLE_FWD: op_upsample_nearest_forward(&ctx, t[0], t[1]); break;
    case UPSAMPLE_BWD: op_upsample_nearest_backward(&ctx, t[0], t[1]); break;
    case PAD_FWD: op_pad2d_forward(&ctx, t[0], t[1], c->pad); break;
    case PAD_BWD: op_pad2d_backward(&ctx, t[0], t[1], c->pad); break;
    case GAUSSIAN_FWD: (void)op_gaussian_sample_forward(&ctx, t[0], t[1], t[2]); break;
    case GAUSSIAN_BWD: op_gaussian_sample_backward(&ctx, t[0], t[1], t[2], t[3], 1e-6f); break;
    }
}

static Ceilings ceil_;

/* times the case and prints one row: measured, floor, the floor's basis and
   share (the bench_* functions free their buffers after their rows) */
static void report(const char *label, const char *shape, Case *c, double flops, DType flop_dt, double bytes)
{
    double s = seconds_per_call(run_case, c);
    double rate = flop_dt == DT_BF16 ? ceil_.bf16_flops : ceil_.f32_flops;
    double t_flop = flops / rate, t_mem = bytes / ceil_.bytes_per_s;
    double floor_s = t_flop > t_mem ? t_flop : t_mem;
    printf("%-28s %-30s %10.1f us %10.1f us  %-9s %6.1f%%\n", label, shape, s * 1e6, floor_s * 1e6,
           t_flop > t_mem ? (flop_dt == DT_BF16 ? "bf16 gemm" : "f32 gemm") : "memory", 100.0 * floor_s / s);
}

static Tensor dev2(int64_t a, int64_t b, DType dt, uint64_t seed) { return tensor2(device_random(a * b, dt, seed), dt, a, b); }

static void bench_linear(int64_t M, int64_t K, int64_t N, DType act)
{
    char shape[64];
    size_t es = dtype_size(act);
    snprintf(shape, sizeof shape, "%lldx%lld -> %lld %s", (long long)M, (long long)K, (long long)N, dtype_name(act));
    Case c = {.kind = LINEAR_FWD};
    c.t[0] = dev2(M, N, act, 1), c.t[1] = dev2(M, K, act, 2), c.t[2] = dev2(N, K, DT_F32, 3);
    c.t[3] = tensor1(device_random(N, DT_F32, 4), DT_F32, N);
    /* F32 weights are rounded to BF16 on the way: read 4, write 2 per weight */
    double wbytes = act == DT_BF16 ? 8.0 * N * K : 4.0 * N * K;
    report("linear_forward (+ bias)", shape, &c, 2.0 * M * N * K, act, (M * K + M * N) * (double)es + wbytes);
    c.kind = LINEAR_BWD;
    c.t[0] = dev2(M, K, act, 5), c.t[1] = dev2(N, K, DT_F32, 6), c.t[2] = tensor1(device_random(N, DT_F32, 7), DT_F32, N);
    c.t[3] = dev2(M, N, act, 8), c.t[4] = dev2(M, K, act, 9), c.t[5] = dev2(N, K, DT_F32, 10);
    report("linear_backward (din dw db)", shape, &c, 4.0 * M * N * K, act,
           (2.0 * M * K + 2.0 * M * N) * (double)es + 8.0 * N * K + wbytes);
    free_buffers();
}

/* U-ViT's fused MLP and residual ops on [M, D] tokens (BF16, F32 weights):
   fc2 + residual, and fc1's GELU backward (_set, as the model calls it) */
static void bench_fused(int64_t M, int64_t D)
{
    char shape[64];
    int64_t H = 4 * D;
    snprintf(shape, sizeof shape, "%lldx%lld -> %lld + res bf16", (long long)M, (long long)H, (long long)D);
    Case c = {.kind = LINEAR_RES_FWD};
    c.t[0] = dev2(M, D, DT_BF16, 1), c.t[1] = dev2(M, H, DT_BF16, 2), c.t[2] = dev2(D, H, DT_F32, 3);
    c.t[3] = tensor1(device_random(D, DT_F32, 4), DT_F32, D), c.t[4] = dev2(M, D, DT_BF16, 5);
    report("linear_residual_forward", shape, &c, 2.0 * M * D * H, DT_BF16, (M * H + 2.0 * M * D) * 2 + 8.0 * D * H);
    free_buffers();
    snprintf(shape, sizeof shape, "%lldx%lld -> %lld gelu bf16", (long long)M, (long long)D, (long long)H);
    c.kind = LINEAR_GELU_BWD_SET;
    c.t[0] = dev2(M, D, DT_BF16, 6), c.t[1] = dev2(H, D, DT_F32, 7), c.t[2] = tensor1(device_random(H, DT_F32, 8), DT_F32, H);
    c.t[3] = dev2(M, H, DT_BF16, 9), c.t[4] = dev2(M, H, DT_BF16, 10), c.t[5] = dev2(M, D, DT_BF16, 11);
    c.t[6] = dev2(H, D, DT_F32, 12), c.t[7] = dev2(M, H, DT_BF16, 13);
    /* dout, pre read, dpre written and read twice, in twice, din written; dw, db F32 read + written */
    report("linear_gelu_backward_set", shape, &c, 4.0 * M * D * H, DT_BF16,
           (5.0 * M * H + 3.0 * M * D) * 2 + 8.0 * H * D + 8.0 * D * H);
    free_buffers();
}

static void bench_layernorm(int64_t M, int64_t C)
{
    char shape[64];
    snprintf(shape, sizeof shape, "%lldx%lld bf16", (long long)M, (long long)C);
    Case c = {.kind = LAYERNORM_FWD};
    c.t[0] = dev2(M, C, DT_BF16, 1), c.t[1] = tensor1(device_random(M, DT_F32, 2), DT_F32, M);
    c.t[2] = tensor1(device_random(M, DT_F32, 3), DT_F32, M), c.t[3] = dev2(M, C, DT_BF16, 4);
    c.t[4] = tensor1(device_random(C, DT_F32, 5), DT_F32, C), c.t[5] = tensor1(device_random(C, DT_F32, 6), DT_F32, C);
    report("layernorm_forward", shape, &c, 0, DT_BF16, 4.0 * M * C + 8.0 * M);
    c.kind = LAYERNORM_BWD;
    c.t[0] = dev2(M, C, DT_BF16, 7), c.t[1] = tensor1(device_random(C, DT_F32, 8), DT_F32, C);
    c.t[2] = tensor1(device_random(C, DT_F32, 9), DT_F32, C), c.t[3] = dev2(M, C, DT_BF16, 10);
    c.t[4] = dev2(M, C, DT_BF16, 11), c.t[5] = tensor1(device_random(C, DT_F32, 12), DT_F32, C);
    c.t[6] = tensor1(device_random(M, DT_F32, 13), DT_F32, M);
    c.t[7] = tensor1(device_values(M, DT_F32, 0.5f, 2, 14), DT_F32, M);
    /* reads dout, in, din; writes din: 4 values of 2 bytes per element */
    report("layernorm_backward", shape, &c, 0, DT_BF16, 8.0 * M * C + 8.0 * M);
    free_buffers();
}

static void bench_attention(int64_t B, int64_t T, int heads, int64_t hd)
{
    char shape[64];
    int64_t A = heads * hd, H = heads;
    snprintf(shape, sizeof shape, "B%lld T%lld H%d hd%lld bf16", (long long)B, (long long)T, heads, (long long)hd);
    double fwd_flops = 4.0 * B * H * (double)T * T * hd;
    Case c = {.kind = ATTENTION_FWD, .heads = heads};
    c.t[0] = tensor3(device_random(B * T * A, DT_BF16, 1), DT_BF16, B, T, A);
    c.t[1] = tensor4(device_random(B * H * T * T, DT_F32, 2), DT_F32, B, H, T, T);
    c.t[2] = tensor3(device_random(B * T * 3 * A, DT_BF16, 3), DT_BF16, B, T, 3 * A);
    report("attention_forward", shape, &c, fwd_flops, DT_BF16, 2.0 * B * T * 4 * A + 4.0 * B * H * T);
    /* the backward needs a real log-sum-exp in probs: run the forward once */
    Tensor probs = c.t[1], qkv = c.t[2];
    op_attention_forward(&ctx, c.t[0], probs, qkv, heads);
    Case b = {.kind = ATTENTION_BWD, .heads = heads};
    b.t[0] = tensor3(device_random(B * T * 3 * A, DT_BF16, 4), DT_BF16, B, T, 3 * A);
    b.t[1] = tensor4(device_random(B * H * T * T, DT_F32, 5), DT_F32, B, H, T, T);
    b.t[2] = tensor3(device_random(B * T * A, DT_BF16, 6), DT_BF16, B, T, A);
    b.t[3] = qkv, b.t[4] = probs;
    report("attention_backward", shape, &b, 2.5 * fwd_flops, DT_BF16, 2.0 * B * T * (3 * A + A + 6 * A));
    free_buffers();
}

static void bench_pointwise(int64_t M, int64_t C)
{
    char shape[64];
    int64_t n = M * C;
    snprintf(shape, sizeof shape, "%lldx%lld bf16", (long long)M, (long long)C);
    Case c = {.kind = GELU_FWD};
    c.t[0] = dev2(M, C, DT_BF16, 1), c.t[1] = dev2(M, C, DT_BF16, 2), c.t[2] = dev2(M, C, DT_BF16, 3);
    report("gelu_forward", shape, &c, 0, DT_BF16, 4.0 * n);
    c.kind = GELU_BWD;
    report("gelu_backward", shape, &c, 0, DT_BF16, 8.0 * n);
    c.kind = ADD;
    report("add_forward", shape, &c, 0, DT_BF16, 6.0 * n);
    free_buffers();
}

static void bench_training_step_ops(int64_t n)
{
    char shape[64];
    snprintf(shape, sizeof shape, "%lld params f32", (long long)n);
    Case c = {.kind = ADAMW};
    for (int i = 0; i < 4; i++) c.t[i] = tensor1(device_values(n, DT_F32, i == 3 ? 0 : -1, 1, 20 + i), DT_F32, n);
    report("adamw_step (fused)", shape, &c, 0, DT_F32, 28.0 * n);
    c.kind = SUM_SQUARES;
    c.t[0] = tensor1(device_random(n, DT_F32, 30), DT_F32, n);
    report("sum_squares", shape, &c, 0, DT_F32, 4.0 * n);
    free_buffers();
}

static void bench_sampler(int64_t B, int64_t n)
{
    char shape[64];
    snprintf(shape, sizeof shape, "%lld x %lld f32", (long long)B, (long long)n);
    int64_t *ids = xmalloc((size_t)B * sizeof *ids);
    float *coef = xmalloc((size_t)B * sizeof *coef);
    for (int64_t i = 0; i < B; i++) ids[i] = i, coef[i] = 0.5f;
    Case c = {.kind = RANDN, .ids = ids, .coef = coef};
    c.t[0] = dev2(B, n, DT_F32, 1);
    report("randn (Philox, CPU bits)", shape, &c, 0, DT_F32, 4.0 * B * n);
    c.kind = AXPBY;
    c.t[0] = dev2(B, n, DT_F32, 2), c.t[1] = dev2(B, n, DT_F32, 3), c.t[2] = dev2(B, n, DT_F32, 4);
    report("axpby", shape, &c, 0, DT_F32, 12.0 * B * n);
    free_buffers();
    free(ids), free(coef);
}

static void bench_conv(int64_t B, int64_t Ci, int64_t H, int64_t Co, int64_t k, int pad)
{
    char shape[64];
    int64_t Ho = H + 2 * pad - k + 1, K = Ci * k * k, N = Ho * Ho;
    snprintf(shape, sizeof shape, "B%lld %lld->%lld %lldx%lld %lldx%lld f32", (long long)B, (long long)Ci,
             (long long)Co, (long long)H, (long long)H, (long long)k, (long long)k);
    Case c = {.kind = CONV_FWD, .conv = {1, 1, pad, pad}};
    c.t[0] = tensor4(device_random(B * Co * N, DT_F32, 1), DT_F32, B, Co, Ho, Ho);
    c.t[1] = tensor4(device_random(B * Ci * H * H, DT_F32, 2), DT_F32, B, Ci, H, H);
    c.t[2] = tensor4(device_random(Co * K, DT_F32, 3), DT_F32, Co, Ci, k, k);
    c.t[3] = tensor1(device_random(Co, DT_F32, 4), DT_F32, Co);
    report("conv2d_forward (im2col)", shape, &c, 2.0 * B * Co * N * K, DT_F32, 4.0 * (B * Ci * H * H + B * Co * N));
    c.kind = CONV_BWD;
    c.t[0] = tensor4(device_random(B * Ci * H * H, DT_F32, 5), DT_F32, B, Ci, H, H);
    c.t[1] = tensor4(device_random(Co * K, DT_F32, 6), DT_F32, Co, Ci, k, k);
    c.t[2] = tensor1(device_random(Co, DT_F32, 7), DT_F32, Co);
    c.t[3] = tensor4(device_random(B * Co * N, DT_F32, 8), DT_F32, B, Co, Ho, Ho);
    c.t[4] = tensor4(device_random(B * Ci * H * H, DT_F32, 9), DT_F32, B, Ci, H, H);
    c.t[5] = tensor4(device_random(Co * K, DT_F32, 10), DT_F32, Co, Ci, k, k);
    report("conv2d_backward", shape, &c, 4.0 * B * Co * N * K, DT_F32, 4.0 * (3 * B * Ci * H * H + B * Co * N));
    free_buffers();
}

static void bench_vision(void)
{
    Case c = {.kind = MAX_POOL, .pool = {3, 3, 2, 2, 0, 0, 0}};
    c.t[0] = tensor4(device_random(50 * 64 * 73 * 73, DT_F32, 1), DT_F32, 50, 64, 73, 73);
    c.t[1] = tensor4(device_random(50 * 64 * 147 * 147, DT_F32, 2), DT_F32, 50, 64, 147, 147);
    report("max_pool2d 3x3 s2", "B50 64x147x147 f32", &c, 0, DT_F32, 4.0 * 50 * 64 * (147 * 147 + 73 * 73));
    c.kind = RESIZE;
    c.t[0] = tensor4(device_random(50 * 3 * 299 * 299, DT_F32, 3), DT_F32, 50, 3, 299, 299);
    c.t[1] = tensor4(device_random(50 * 3 * 32 * 32, DT_F32, 4), DT_F32, 50, 3, 32, 32);
    report("resize_bilinear 32 -> 299", "B50 C3 f32", &c, 0, DT_F32, 4.0 * 50 * 3 * (299 * 299 + 32 * 32));
    free_buffers();
}

static Tensor dev4(int64_t a, int64_t b, int64_t c, int64_t d, DType dt, uint64_t seed)
{
    return tensor4(device_random(a * b * c * d, dt, seed), dt, a, b, c, d);
}

/* the KL autoencoder's group norm on [B,C,H,W], G groups (32 in SD's) */
static void bench_group_norm(int64_t B, int64_t C, int64_t H, int64_t W, int G)
{
    char shape[64];
    int64_t n = B * C * H * W;
    snprintf(shape, sizeof shape, "B%lld %lldx%lldx%lld G%d bf16", (long long)B, (long long)C, (long long)H,
             (long long)W, G);
    Case c = {.kind = GROUP_NORM_FWD, .groups = G};
    c.t[0] = dev4(B, C, H, W, DT_BF16, 1), c.t[1] = dev2(B, G, DT_F32, 2), c.t[2] = dev2(B, G, DT_F32, 3);
    c.t[3] = dev4(B, C, H, W, DT_BF16, 4);
    c.t[4] = tensor1(device_random(C, DT_F32, 5), DT_F32, C), c.t[5] = tensor1(device_random(C, DT_F32, 6), DT_F32, C);
    report("group_norm_forward", shape, &c, 0, DT_BF16, 4.0 * n);
    c.kind = GROUP_NORM_BWD;
    Tensor in = c.t[3], w = c.t[4], mean = c.t[1], rstd = c.t[2];
    op_group_norm_forward(&ctx, c.t[0], mean, rstd, in, w, c.t[5], G, 1e-6f); /* real statistics */
    c.t[0] = dev4(B, C, H, W, DT_BF16, 7), c.t[1] = tensor1(device_random(C, DT_F32, 8), DT_F32, C);
    c.t[2] = tensor1(device_random(C, DT_F32, 9), DT_F32, C), c.t[3] = dev4(B, C, H, W, DT_BF16, 10);
    c.t[4] = in, c.t[5] = w, c.t[6] = mean, c.t[7] = rstd;
    /* reads dout, in, din; writes din: 4 values of 2 bytes per element */
    report("group_norm_backward", shape, &c, 0, DT_BF16, 8.0 * n);
    free_buffers();
}

/* the autoencoder's resampling: nearest x2 before the decoder's up convs, the
   (0,1,0,1) padding before the encoder's stride-2 convs */
static void bench_resample(int64_t B, int64_t C, int64_t H)
{
    char shape[64];
    int64_t n = B * C * H * H, n2 = 4 * n, np = B * C * (H + 1) * (H + 1);
    snprintf(shape, sizeof shape, "B%lld %lldx%lldx%lld bf16", (long long)B, (long long)C, (long long)H,
             (long long)H);
    Case c = {.kind = UPSAMPLE_FWD};
    c.t[0] = dev4(B, C, 2 * H, 2 * H, DT_BF16, 1), c.t[1] = dev4(B, C, H, H, DT_BF16, 2);
    report("upsample_nearest_forward x2", shape, &c, 0, DT_BF16, 2.0 * (n + n2));
    c.kind = UPSAMPLE_BWD;
    c.t[0] = c.t[1], c.t[1] = dev4(B, C, 2 * H, 2 * H, DT_BF16, 3);
    report("upsample_nearest_backward x2", shape, &c, 0, DT_BF16, 2.0 * (n2 + 2 * n));
    free_buffers();
    c = (Case){.kind = PAD_FWD, .pad = {0, 1, 0, 1}};
    c.t[0] = dev4(B, C, H + 1, H + 1, DT_BF16, 4), c.t[1] = dev4(B, C, H, H, DT_BF16, 5);
    report("pad2d_forward (0,1,0,1)", shape, &c, 0, DT_BF16, 2.0 * (n + np));
    c.kind = PAD_BWD;
    c.t[0] = c.t[1], c.t[1] = dev4(B, C, H + 1, H + 1, DT_BF16, 6);
    report("pad2d_backward (0,1,0,1)", shape, &c, 0, DT_BF16, 2.0 * 3 * n);
    free_buffers();
}

/* the posterior of B latents [C,h,w] (moments [B,2C,h,w]), F32 */
static void bench_gaussian_sample(int64_t B, int64_t C, int64_t h)
{
    char shape[64];
    int64_t n = B * C * h * h;
    snprintf(shape, sizeof shape, "B%lld %lldx%lldx%lld f32", (long long)B, (long long)C, (long long)h, (long long)h);
    Case c = {.kind = GAUSSIAN_FWD};
    c.t[0] = dev4(B, C, h, h, DT_F32, 1), c.t[1] = dev4(B, 2 * C, h, h, DT_F32, 2), c.t[2] = dev4(B, C, h, h, DT_F32, 3);
    /* reads moments (2n) and eps, writes z; plus the KL's round trip to the host */
    report("gaussian_sample_forward", shape, &c, 0, DT_F32, 16.0 * n);
    c.kind = GAUSSIAN_BWD;
    Tensor moments = c.t[1], eps = c.t[2];
    c.t[0] = dev4(B, 2 * C, h, h, DT_F32, 4), c.t[1] = dev4(B, C, h, h, DT_F32, 5), c.t[2] = moments, c.t[3] = eps;
    /* reads dz, eps, moments and dmoments (2n each), writes dmoments */
    report("gaussian_sample_backward", shape, &c, 0, DT_F32, 32.0 * n);
    free_buffers();
}

int main(void)
{
    if (ctx_init_cuda(&ctx, 0) != 0) {
        fprintf(stderr, "bench_cuda_ops: %s\n", err_msg());
        return EXIT_BAD_INPUT;
    }
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) FATAL("cudaGetDeviceProperties failed");
    printf("bench_cuda_ops on %s (%d SMs), median of %d runs\n", prop.name, prop.multiProcessorCount, REPEATS);
    ceil_.bf16_flops = gemm_ceiling(8192, DT_BF16);
    ceil_.f32_flops = gemm_ceiling(4096, DT_F32);
    ceil_.bytes_per_s = copy_ceiling();
    printf("ceilings: cuBLAS BF16 GEMM %.1f TFLOP/s, F32 GEMM %.1f TFLOP/s, device copy %.0f GB/s\n\n",
           ceil_.bf16_flops / 1e12, ceil_.f32_flops / 1e12, ceil_.bytes_per_s / 1e9);
    printf("%-28s %-30s %13s %13s  %-9s %7s\n", "op", "shape", "measured", "floor", "floor by", "floor/t");

    const int64_t M = 32 * 257, D = 512; /* U-ViT-S/2 at batch 32 */
    bench_linear(M, D, 3 * D, DT_BF16);
    bench_linear(M, D, 4 * D, DT_BF16);
    bench_linear(M, 4 * D, D, DT_BF16);
    bench_linear(M, D, 3 * D, DT_F32);
    bench_linear(8192, 8192, 8192, DT_BF16);
    bench_fused(M, D);
    bench_layernorm(M, D);
    bench_attention(32, 257, 8, 64);
    bench_attention(4, 1026, 16, 72);
    bench_pointwise(M, 4 * D);
    bench_training_step_ops(44000000); /* U-ViT-S/2's parameters */
    bench_sampler(64, 3 * 32 * 32);
    bench_conv(50, 192, 35, 64, 1, 0);  /* Inception Mixed_5b's 1x1 */
    bench_conv(50, 64, 35, 96, 3, 1);   /* and its 3x3 */
    bench_vision();
    /* the Stable Diffusion KL autoencoder at 256x256, batch 8 */
    bench_group_norm(8, 128, 256, 256, 32);
    bench_group_norm(8, 512, 32, 32, 32);
    bench_resample(8, 512, 64);   /* decoder up 64 -> 128 */
    bench_resample(8, 128, 256);  /* encoder down 256 -> 128 */
    bench_gaussian_sample(8, 4, 32);

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
