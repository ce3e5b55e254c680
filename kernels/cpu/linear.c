/*
 * linear.c: out = in @ w^T + b and its backward, and the linear-layer
 * driver every linear op shares (cpu_linear.h), through cpu_sgemm (oneDNN
 * or OpenBLAS, cpu_gemm.h).
 *
 * The backward, for dout[M,N], in[M,K], w[N,K]:
 *   din[M,K] += dout @ w     (op_linear_backward_set: din = dout @ w, beta 0,
 *                             for a scratch gradient that would be zeroed)
 *   dw[N,K]  += dout^T @ in
 *   db[N]    += column sums of dout
 * The backward's GEMMs run outside any parallel region, so they use all
 * threads. Every GEMM here runs at the context's precision (cpu_gemm:
 * fp32, or bf16 operands with fp32 sums; bf16 always takes the whole-
 * matrix schedule, one primitive per layer shape).
 */
#include <string.h>

#include "cpu_gelu.h"
#include "cpu_gemm.h"
#include "cpu_linear.h"
#include "cpu_matmul.h"
#include "cpu_ops.h"
#include "cpu_parallel.h"

/* columns of dout summed by one task of the db reduction (4 cache lines) */
#define DB_COLS 64
/* the side of a transpose's square tiles */
#define TILE 32

/* dst[c, r] (=, or += when add) src[r, c] for src (rows, cols); tiles of
   TILE x TILE, rows of tiles across threads */
static void transpose(Ctx *ctx, float *dst, const float *src, int64_t rows, int64_t cols, int add)
{
    // src is (rows,cols), dst is (cols,rows)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (rows * cols > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t r0 = 0; r0 < rows; r0 += TILE)
        for (int64_t c0 = 0; c0 < cols; c0 += TILE) {
            int64_t r1 = rows - r0 < TILE ? rows : r0 + TILE, c1 = cols - c0 < TILE ? cols : c0 + TILE;
            for (int64_t c = c0; c < c1; c++)
                for (int64_t r = r0; r < r1; r++)
                    dst[c * rows + r] = add ? dst[c * rows + r] + src[r * cols + c] : src[r * cols + c];
        }
}

/* oneDNN's sgemm computes in @ w^T at 130-140 GFLOP/s where in @ (w^T
   stored) runs at 165-198 when N <= K (U-ViT-S/2's fc2, 8224 x 512 x 2048,
   and proj; Zen 5, 2 threads), and dout^T @ in for a tall dw (N > K, fc1's
   2048 x 512) at 146 where (in^T @ dout)^T runs at 182. The whole schedule
   takes those forms, the transposes in ctx scratch (a few % of the GEMM). */
static int onednn_fp32(const Ctx *ctx)
{
    return ctx->precision == PRECISION_FP32 && cpu_gemm_library() == GEMM_ONEDNN;
}

/* rows of out per tile: CPU_LINEAR_TILE_FLOATS of the wider of in and
   out, at least 16 */
static int64_t tile_rows(int64_t N, int64_t K)
{
    int64_t wide = N > K ? N : K, r = CPU_LINEAR_TILE_FLOATS / (wide > 0 ? wide : 1);
    return r < 16 ? 16 : r;
}

/* rows [lo, hi) after the GEMM, one row at a time (in L1 in the tiles
   schedule): d += bias (+ res), then out = gelu(d) when asked. With no GELU
   d is out; a residual never comes with a GELU. The residual is added after
   the bias, as the unfused linear then add did, so the sums round the same
   way. */
static void finish_rows(float *out, float *d, const CpuLinearEpilogue *e, int64_t N, int64_t lo, int64_t hi)
{
    const float *b = e->bias;
    for (int64_t m = lo; m < hi; m++) {
        float *x = d + m * N;
        const float *r = e->res ? e->res + m * N : NULL;
        if (b && r) {
            #pragma omp simd
            for (int64_t i = 0; i < N; i++) x[i] = (x[i] + b[i]) + r[i];
        } else if (b) {
            #pragma omp simd
            for (int64_t i = 0; i < N; i++) x[i] += b[i];
        } else if (r) {
            #pragma omp simd
            for (int64_t i = 0; i < N; i++) x[i] += r[i];
        }
        if (e->gelu) cpu_gelu_span(out + m * N, x, N);
    }
}

/* rows [lo, hi) of the tiles schedule, in blocks of `rows`: each block's
   GEMM and finish back to back */
static void tile_rows_run(float *out, float *d, const float *in, const float *w, int64_t N, int64_t K,
                          const CpuLinearEpilogue *e, int64_t lo, int64_t hi, int64_t rows)
{
    CpuMatmul mm;   /* w packed once for every full block, when oneDNN makes them (cpu_matmul.h) */
    int packed = hi - lo >= rows && cpu_matmul_begin(&mm, w, rows, N, K);
    for (int64_t r0 = lo; r0 < hi; r0 += rows) {
        int64_t r1 = hi - r0 < rows ? hi : r0 + rows;
        if (packed && r1 - r0 == rows) cpu_matmul_block(&mm, in + r0 * K, d + r0 * N);
        else cpu_sgemm(GEMM_N, GEMM_T, r1 - r0, N, K, 1.0f, in + r0 * K, K, w, K, 0.0f, d + r0 * N, N);
        finish_rows(out, d, e, N, r0, r1);
    }
}

void cpu_linear_run(Ctx *ctx, float *out, const float *in, const float *w, int64_t M, int64_t N,
                    int64_t K, const CpuLinearEpilogue *e)
{
    // in is (M,K), w is (N,K), out and pre are (M,N)
    if (M <= 0 || N <= 0) return;
    /* the GEMM's destination: pre when the GELU's input is kept, else out */
    float *d = e->gelu && e->pre ? e->pre : out;
    int nt = M * N > CPU_PARALLEL_MIN ? cpu_threads(ctx) : 1;
    int tiles = ctx->precision == PRECISION_FP32 && (nt == 1 || N * K <= CPU_LINEAR_TILE_WEIGHTS);
    if (tiles) {
        int64_t rows = tile_rows(N, K);
        if (nt == 1) {
            /* tiny work: no parallel construct to enter at all */
            tile_rows_run(out, d, in, w, N, K, e, 0, M, rows);
            return;
        }
        #pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num(), n = omp_get_num_threads();
            int64_t lo = M * t / n, hi = M * (t + 1) / n;  /* this thread's share */
            tile_rows_run(out, d, in, w, N, K, e, lo, hi, rows);
        }
        return;
    }
    if (onednn_fp32(ctx) && N <= K) {
        float *wt = ctx_scratch(ctx, (size_t)(N * K) * sizeof(float));  // wt is (K,N)
        transpose(ctx, wt, w, N, K, 0);
        cpu_sgemm(GEMM_N, GEMM_N, M, N, K, 1.0f, in, K, wt, N, 0.0f, d, N);
    } else {
        cpu_gemm(ctx, GEMM_N, GEMM_T, M, N, K, 1.0f, in, K, w, K, 0.0f, d, N);
    }
    if (e->bias || e->res || e->gelu) {
        int64_t rows = tile_rows(N, 1);
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t r0 = 0; r0 < M; r0 += rows) finish_rows(out, d, e, N, r0, M - r0 < rows ? M : r0 + rows);
    }
}

void cpu_linear_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b)
{
    // in is (M,K), w is (N,K), b is (N) or none, out is (M,N)
    int64_t M = tensor_rows(in), K = tensor_cols(in), N = w.shape[0];
    CpuLinearEpilogue e = {.bias = tensor_present(b) ? tensor_f32(b) : NULL};
    cpu_linear_run(ctx, tensor_f32(out), tensor_f32(in), tensor_f32(w), M, N, K, &e);
}

/* db[N] += sum over rows of dout[M,N]; each task owns DB_COLS columns and
   walks every row, so no two threads write one line and the sum order is
   fixed (deterministic for any thread count) */
static void bias_grad(Ctx *ctx, float *db, const float *dout, int64_t M, int64_t N)
{
    int64_t tasks = (N + DB_COLS - 1) / DB_COLS;
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (M * N > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t task = 0; task < tasks; task++) {
        int64_t c0 = task * DB_COLS, nc = N - c0 < DB_COLS ? N - c0 : DB_COLS;
        float acc[DB_COLS] = {0};
        for (int64_t m = 0; m < M; m++) {
            const float *row = dout + m * N + c0;
            for (int64_t c = 0; c < nc; c++) acc[c] += row[c];
        }
        for (int64_t c = 0; c < nc; c++) db[c0 + c] += acc[c];
    }
}

void cpu_linear_grads(Ctx *ctx, int set, float *din, float *dw, float *db, const float *dout,
                      const float *in, const float *w, int64_t M, int64_t N, int64_t K)
{
    // dout is (M,N), in is (M,K), w is (N,K)
    if (M <= 0) return;
    if (din && K > 0) {
        if (N > 0) cpu_gemm(ctx, GEMM_N, GEMM_N, M, K, N, 1.0f, dout, N, w, K, set ? 0.0f : 1.0f, din, K);
        else if (set) memset(din, 0, (size_t)(M * K) * sizeof(float));
    }
    if (dw && K > 0 && N > 0 && onednn_fp32(ctx) && N > K && N * K > CPU_LINEAR_TILE_WEIGHTS) {
        float *dwt = ctx_scratch(ctx, (size_t)(N * K) * sizeof(float));  // dwt is (K,N)
        cpu_sgemm(GEMM_T, GEMM_N, K, N, M, 1.0f, in, K, dout, N, 0.0f, dwt, N);
        transpose(ctx, dw, dwt, K, N, 1);
    } else if (dw && K > 0 && N > 0) {
        cpu_gemm(ctx, GEMM_T, GEMM_N, N, K, M, 1.0f, dout, N, in, K, 1.0f, dw, K);
    }
    if (db) bias_grad(ctx, db, dout, M, N);
}

static void linear_backward(Ctx *ctx, int set, Tensor din, Tensor dw, Tensor db, Tensor dout,
                            Tensor in, Tensor w)
{
    // dout is (M,N), in is (M,K), w is (N,K); din (M,K), dw (N,K), db (N) optional
    cpu_linear_grads(ctx, set, tensor_present(din) ? tensor_f32(din) : NULL,
                     tensor_present(dw) ? tensor_f32(dw) : NULL,
                     tensor_present(db) ? tensor_f32(db) : NULL, tensor_f32(dout), tensor_f32(in),
                     tensor_f32(w), tensor_rows(in), w.shape[0], tensor_cols(in));
}

void cpu_linear_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout, Tensor in,
                         Tensor w)
{
    linear_backward(ctx, 0, din, dw, db, dout, in, w);
}

void cpu_linear_backward_set(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout, Tensor in,
                             Tensor w)
{
    linear_backward(ctx, 1, din, dw, db, dout, in, w);
}
