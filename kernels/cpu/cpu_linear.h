/*
 * cpu_linear.h: the CPU backend's linear-layer driver, shared by the plain
 * linear op (linear.c) and the fused ones (linear_fused.c) (internal).
 *
 * cpu_linear_run computes, for every row m of in[M,K] and w[N,K]:
 *   acc[m,:] = (in[m,:] @ w^T + b) + res[m,:]   (b [N], res [M,N] optional)
 *   out[m,:] = gelu(acc[m,:]) when gelu is set, else acc[m,:]
 * with acc stored in pre[M,N] when pre is given (the GELU's input, kept
 * for the backward pass). Both schedules run the GEMM with beta 0 and
 * then add the bias, then the residual, in that order, as the unfused
 * linear and add did (and as the CUDA backend's epilogue adds its bias).
 *
 * Two schedules, chosen by shape only (never by timing), the same
 * arithmetic per element up to the library's summation order:
 *   tiles  small weights (N*K <= CPU_LINEAR_TILE_WEIGHTS): one parallel
 *          region; each thread takes an equal contiguous share of the rows
 *          and walks it in blocks of up to CPU_LINEAR_TILE_FLOATS floats of
 *          out, each block's GEMM (on the calling thread alone, beta 0) and
 *          bias, residual or GELU back to back while the block sits in L2. One
 *          thread-team wake-up per layer instead of three, and no pass
 *          over out in memory after the GEMM. Measured on U-ViT's small shapes (M 1600,
 *          N*K 16-64 Ki floats, Zen 5): as fast as the threaded GEMM alone.
 *          Where oneDNN makes a thread's products, the full blocks run
 *          oneDNN's matmul on w packed once per call (cpu_matmul.h), the
 *          last shorter block cpu_sgemm.
 *   whole  larger weights (U-ViT-S/2: 0.25-1 Mi floats): one threaded
 *          GEMM, then the bias, residual or GELU pass; repacking 4 MB of
 *          weights for every block would cost more than the passes save.
 *          With oneDNN, shapes it runs slowly as in @ w^T (N <= K) use
 *          transposed weights (linear.c says what was measured).
 * Work below CPU_PARALLEL_MIN floats of out runs on the calling thread.
 * At bf16 precision (ctx->precision) the GEMMs are cpu_gemm_bf16's, always
 * in the whole schedule.
 */
#ifndef DEEDIFF_CPU_LINEAR_H
#define DEEDIFF_CPU_LINEAR_H

#include <stdint.h>

#include "../ops.h"

/* weights of at most this many floats use the tiles schedule (1 MiB) */
#define CPU_LINEAR_TILE_WEIGHTS (256 * 1024)
/* floats of out (and of in) per tile: 256 KiB, a quarter of a Zen 5 L2 */
#define CPU_LINEAR_TILE_FLOATS (64 * 1024)

typedef struct {
    const float *bias;  /* [N] or NULL */
    const float *res;   /* [M,N] or NULL; not out, and not with gelu */
    float *pre;         /* [M,N] or NULL: acc, before the GELU */
    int gelu;           /* out = gelu(acc) */
} CpuLinearEpilogue;

void cpu_linear_run(Ctx *ctx, float *out, const float *in, const float *w, int64_t M, int64_t N,
                    int64_t K, const CpuLinearEpilogue *e);

/* the backward of out = in @ w^T + b for dout[M,N]:
 *   din[M,K] (+)= dout @ w       (set: =, else +=; NULL: skipped)
 *   dw[N,K]  += dout^T @ in      (NULL: skipped)
 *   db[N]    += column sums of dout, in a fixed order (NULL: skipped) */
void cpu_linear_grads(Ctx *ctx, int set, float *din, float *dw, float *db, const float *dout,
                      const float *in, const float *w, int64_t M, int64_t N, int64_t K);

#endif
