/*
 * cpu_matmul.h: the tiles schedule's product (cpu_linear.h) through
 * oneDNN's matmul primitive with the weights packed once per layer call
 * (internal).
 *
 * The tiles schedule multiplies blocks of `rows` rows by the same weights,
 * in @ w^T with w [N,K]. dnnl_sgemm takes w as it is stored in every call;
 * here w is reordered once per call into the layout the primitive's brgemm
 * kernels read (a reorder primitive), and each full block runs the matmul
 * on it. Measured on an Emerald Rapids, 2 threads, session 13: the small
 * U-ViT's layers (800 rows a thread, K 128-512, one product per core)
 * 1-17% faster than dnnl_sgemm, the reorder included; that model's forward
 * loop 3.6% faster (the median of 14 runs of the old and the new build in
 * turn, 12 of them faster), its training step unchanged within the
 * machine's noise (8 pairs, median 1.0). The block's rows are fixed per plan (a runtime row count makes
 * oneDNN fall back to its gemm kernels), so a shorter last block goes
 * through cpu_sgemm.
 *
 * Taken only where cpu_sgemm would call oneDNN itself, at fp32; the sums
 * run in the library's order, as any GEMM's.
 */
#ifndef DEEDIFF_CPU_MATMUL_H
#define DEEDIFF_CPU_MATMUL_H

#include <stdint.h>

typedef struct CpuMatmulPlan CpuMatmulPlan;

typedef struct {
    const CpuMatmulPlan *plan;
    void *packed;    /* w in the primitive's layout: this thread's scratch */
    void *scratch;   /* the primitive's scratchpad, after it */
} CpuMatmul;

/* packs w[N,K] for blocks of `rows` rows into this thread's scratch; 0 when
   the path does not apply here (not oneDNN, or no plan for the shape), and
   the caller uses cpu_sgemm. The packing lives until this thread's next
   cpu_matmul_begin or other use of cpu_dnnl_scratch.                      */
int cpu_matmul_begin(CpuMatmul *mm, const float *w, int64_t rows, int64_t N, int64_t K);

/* d[rows, N] = in[rows, K] @ w^T for one full block (row strides K and N) */
void cpu_matmul_block(const CpuMatmul *mm, const float *in, float *d);

#endif
