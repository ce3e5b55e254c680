/*
 * linear_fused.c: the fused linear layers of a transformer block on the CPU,
 * forward and backward, on the linear-layer driver (cpu_linear.h).
 *
 *   linear_gelu:      pre = in @ w^T + b, out = gelu(pre)
 *                     backward: dpre = dout * gelu'(pre) (written into the
 *                     caller's dpre), then the linear backward on dpre
 *   linear_residual:  out = in @ w^T + b + res
 *                     (its backward is the linear one plus dres += dout:
 *                     kernels/ops.c composes it)
 *
 * Each saves whole passes over [M,N] that the unfused ops make: the GELU
 * and the residual run on each tile of the GEMM while it sits in cache, and
 * the backward writes dpre instead of zeroing a buffer and accumulating
 * into it.
 */
#include "cpu_gelu.h"
#include "cpu_linear.h"
#include "cpu_ops.h"
#include "cpu_parallel.h"

void cpu_linear_gelu_forward(Ctx *ctx, Tensor out, Tensor pre, Tensor in, Tensor w, Tensor b)
{
    // in is (M,K), w is (N,K), b is (N) or none; out and pre (or none) are (M,N)
    int64_t M = tensor_rows(in), K = tensor_cols(in), N = w.shape[0];
    CpuLinearEpilogue e = {.bias = tensor_present(b) ? tensor_f32(b) : NULL,
                           .pre = tensor_present(pre) ? tensor_f32(pre) : NULL,
                           .gelu = 1};
    cpu_linear_run(ctx, tensor_f32(out), tensor_f32(in), tensor_f32(w), M, N, K, &e);
}

static void linear_gelu_backward(Ctx *ctx, int set, Tensor din, Tensor dw, Tensor db, Tensor dpre,
                                 Tensor dout, Tensor in, Tensor w, Tensor pre)
{
    // dout, pre, dpre are (M,N); in is (M,K), w is (N,K); din (M,K), dw (N,K), db (N)
    int64_t M = tensor_rows(in), K = tensor_cols(in), N = w.shape[0], n = M * N;
    float *dp = tensor_f32(dpre);
    const float *g = tensor_f32(dout), *x = tensor_f32(pre);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < cpu_chunks(n); c++) {
        int64_t lo = c * CPU_CHUNK, len = n - lo < CPU_CHUNK ? n - lo : CPU_CHUNK;
        cpu_gelu_grad_span(dp + lo, g + lo, x + lo, len, 1);
    }
    cpu_linear_grads(ctx, set, tensor_present(din) ? tensor_f32(din) : NULL,
                     tensor_present(dw) ? tensor_f32(dw) : NULL,
                     tensor_present(db) ? tensor_f32(db) : NULL, dp, tensor_f32(in), tensor_f32(w),
                     M, N, K);
}

void cpu_linear_gelu_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dpre, Tensor dout,
                              Tensor in, Tensor w, Tensor pre)
{
    linear_gelu_backward(ctx, 0, din, dw, db, dpre, dout, in, w, pre);
}

void cpu_linear_gelu_backward_set(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dpre,
                                  Tensor dout, Tensor in, Tensor w, Tensor pre)
{
    linear_gelu_backward(ctx, 1, din, dw, db, dpre, dout, in, w, pre);
}

void cpu_linear_residual_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b, Tensor res)
{
    // in is (M,K), w is (N,K), b is (N) or none; out and res are (M,N), distinct
    int64_t M = tensor_rows(in), K = tensor_cols(in), N = w.shape[0];
    CpuLinearEpilogue e = {.bias = tensor_present(b) ? tensor_f32(b) : NULL, .res = tensor_f32(res)};
    cpu_linear_run(ctx, tensor_f32(out), tensor_f32(in), tensor_f32(w), M, N, K, &e);
}
