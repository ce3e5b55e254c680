/*
 * linear.c: out = in @ w^T + b and its backward, through cpu_sgemm (oneDNN or
 * OpenBLAS, cpu_gemm.h).
 *
 * The bias is fused for free: out is filled with b row by row and sgemm
 * accumulates onto it (beta = 1), which costs no more than beta = 0 (the
 * library zeroes C first then). The backward accumulates into every gradient given:
 *   din[M,K] += dout[M,N] @ w[N,K]
 *   dw[N,K]  += dout^T @ in[M,K]
 *   db[N]    += column sums of dout
 * The GEMMs run outside any parallel region, so they use all threads.
 */
#include <string.h>

#include "cpu_gemm.h"
#include "cpu_ops.h"
#include "cpu_parallel.h"

/* columns of dout summed by one task of the db reduction (4 cache lines) */
#define DB_COLS 64

void cpu_linear_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b)
{
    // in is (M,K), w is (N,K), b is (N) or none, out is (M,N)
    int64_t M = tensor_rows(in), K = tensor_cols(in), N = w.shape[0];
    float *o = tensor_f32(out);
    float beta = 0.0f;
    if (tensor_present(b)) {
        const float *bias = tensor_f32(b);
        #pragma omp parallel for num_threads(cpu_threads(ctx)) if (M * N > CPU_PARALLEL_MIN) schedule(static)
        for (int64_t m = 0; m < M; m++) memcpy(o + m * N, bias, (size_t)N * sizeof(float));
        beta = 1.0f;
    }
    if (M == 0 || N == 0 || K == 0) {  /* an empty product: out is just b */
        if (beta == 0.0f) memset(o, 0, (size_t)(M * N) * sizeof(float));
        return;
    }
    cpu_sgemm(GEMM_N, GEMM_T, M, N, K, 1.0f, tensor_f32(in), K, tensor_f32(w), K, beta, o, N);
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

void cpu_linear_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout, Tensor in,
                         Tensor w)
{
    // dout is (M,N), in is (M,K), w is (N,K); din (M,K), dw (N,K), db (N) optional
    int64_t M = tensor_rows(in), K = tensor_cols(in), N = w.shape[0];
    if (M == 0) return;
    const float *g = tensor_f32(dout);
    if (tensor_present(din) && K > 0)
        cpu_sgemm(GEMM_N, GEMM_N, M, K, N, 1.0f, g, N, tensor_f32(w), K, 1.0f, tensor_f32(din), K);
    if (tensor_present(dw) && K > 0 && N > 0)
        cpu_sgemm(GEMM_T, GEMM_N, N, K, M, 1.0f, g, N, tensor_f32(in), K, 1.0f, tensor_f32(dw), K);
    if (tensor_present(db)) bias_grad(ctx, tensor_f32(db), g, M, N);
}
