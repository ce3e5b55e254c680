/*
 * cpu_gemm.h: the CPU backend's one fp32 matrix product, and which library
 * computes it.
 *
 * Every GEMM of kernels/cpu/ (linear layers, attention, im2col convolutions)
 * goes through cpu_sgemm, which calls the library chosen once per process:
 *
 *   onednn    oneDNN's dnnl_sgemm (Debian libdnnl-dev). Its JIT kernels are
 *             picked from the CPU's feature flags (AVX2, AVX-512, ...), not
 *             its model number, so a CPU newer than the library still gets
 *             the widest kernels it supports.
 *   openblas  OpenBLAS cblas_sgemm. Its core type is fixed at start-up by
 *             cpu_startup.h when OpenBLAS detected a weaker one than the
 *             CPU's flags support (Prescott on Emerald Rapids).
 *
 * The choice: the environment variable DEEDIFF_GEMM=auto|onednn|openblas
 * (any other value: a one-line error, exit status 2); unset is auto:
 * OpenBLAS when it runs the widest core type the CPU's flags support (as
 * detected, or forced by cpu_startup), oneDNN when it does not (a user's
 * OPENBLAS_CORETYPE pins a weaker one: this project's machines set Haswell
 * on a Zen 5) or when the flags give no AVX. Why not always oneDNN: on
 * U-ViT's shapes OpenBLAS's SkylakeX kernels were faster on the Zen 5 we
 * measured (fc2's K = 2048 and the weight gradients: 180-190 GFLOP/s
 * against oneDNN's 130-150; U-ViT-S/2 forward 78% of the ceiling against
 * 60%), while oneDNN needs no core type fixed. Under auto a product made
 * on one thread (called inside an OpenMP parallel region: a piece's worker,
 * cpu_split.c, or a thread's share of a layer or of the attention heads; or
 * in a one-thread process) goes through oneDNN whatever the threaded
 * choice: on the small model's shapes (800 x 128 x 384 and its kin, one
 * product per core at once) its kernels ran 284-325 GFLOP/s against
 * OpenBLAS SkylakeX's 257-285 on an Emerald Rapids, and 234-324 against
 * 223-292 at the 128-row tiles of cpu_linear.h, where OpenBLAS's per-call
 * cost shows; the small model's forward went 12-15% faster, its training
 * step 11-30%, U-ViT-S/2 unchanged within the noise. The rule is
 * deterministic: no timing at start-up, so a run's numbers never depend on
 * a noisy probe.
 * It is made once, by cpu_startup (first thing in main) or else on the
 * first call of any function below, and never changes. The sanitizer build
 * (make test-asan) runs the same rule: oneDNN's JIT code is not
 * instrumented, so ASan checks our side of its calls; the suite passes.
 *
 * Threads: outside an OpenMP parallel region a product uses the process's
 * OpenMP thread count (omp_set_num_threads); inside one it runs on the
 * calling thread alone (both libraries are built on the same libgomp).
 */
#ifndef DEEDIFF_CPU_GEMM_H
#define DEEDIFF_CPU_GEMM_H

#include <stdint.h>

#include "../ops.h"

typedef enum { GEMM_N = 0, GEMM_T = 1 } GemmTrans;
typedef enum { GEMM_ONEDNN = 0, GEMM_OPENBLAS = 1 } GemmLibrary;

/* C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C[M,N], all row-major.
 * op(A) = A stored [M,K] with row stride lda >= K, or (GEMM_T) A stored
 * [K,M] with lda >= M; likewise op(B) from B [K,N] or [N,K], and C has row
 * stride ldc >= N. beta = 0 never reads C (NaN there does not propagate);
 * K = 0 leaves beta C; M = 0 or N = 0 does nothing.                       */
void cpu_sgemm(GemmTrans ta, GemmTrans tb, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
               int64_t ldc);

/* the same product by a named library, whatever the process chose (the
   benchmark's ceiling and the tests compare libraries with it)            */
void cpu_sgemm_with(GemmLibrary lib, GemmTrans ta, GemmTrans tb, int64_t M, int64_t N,
                    int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                    int64_t ldb, float beta, float *C, int64_t ldc);

/* the same product with bf16 operands (kernels/cpu/cpu_gemm_bf16.c):
   op(A) and op(B) rounded to bf16 (cpu_bf16.h), multiplied and summed in
   fp32 by oneDNN's matmul primitive; C, alpha and beta stay fp32. Needs a
   CPU with bf16 products (cpu_bf16_supported); call it outside OpenMP
   parallel regions (the packed operands and the stream are per call).
   Every element is within |alpha| (2^-7 + 2^-16 + (K+1) 2^-24) sum_k
   |a_ik| |b_kj| (+ 2^-23 |beta c_ij|) of the exact product: bf16 keeps 8
   significant bits, so an operand rounds by at most u = 2^-8 relative and
   a product by 2u + u^2; fp32 accumulation adds at most 2^-24 per term
   (tests/test_bf16.c checks it, and that C is exactly the fp32 sum of the
   rounded operands' products). */
void cpu_gemm_bf16(GemmTrans ta, GemmTrans tb, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                   int64_t ldc);

/* the product at a context's precision: cpu_sgemm for fp32, cpu_gemm_bf16
   for bf16 */
void cpu_gemm(const Ctx *ctx, GemmTrans ta, GemmTrans tb, int64_t M, int64_t N, int64_t K,
              float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
              float *C, int64_t ldc);

/* the library this process uses for products on several threads */
GemmLibrary cpu_gemm_library(void);
/* the library for products on one thread: oneDNN under auto, else the
   library DEEDIFF_GEMM names                                              */
GemmLibrary cpu_gemm_library_one_thread(void);
/* the threads a product made here would run on: 1 inside an OpenMP
   parallel region, else the process's OpenMP thread count               */
int cpu_gemm_threads_here(void);
/* the library for a product on `threads` threads, given the threaded and
   the one-thread choice; pure (cpu_sgemm passes cpu_gemm_threads_here()
   and the two above)                                                      */
GemmLibrary cpu_gemm_library_for(int threads, GemmLibrary threaded, GemmLibrary one_thread);
/* the auto rule above, pure: OpenBLAS unless it runs below the best core
   type for the flags or the flags have none (openblas_best_core NULL)     */
GemmLibrary cpu_gemm_auto(int openblas_below_best, const char *openblas_best_core);
/* "onednn" or "openblas" */
const char *cpu_gemm_library_name(GemmLibrary lib);

/* one line naming a library, its version and the kernels it chose on this
   CPU, e.g. "onednn 2.6.3 avx512_core_bf16" or "openblas 0.3.21 SkylakeX";
   static storage                                                           */
const char *cpu_gemm_provenance_of(GemmLibrary lib);
/* the provenance of the libraries this process uses (results.db records it
   with every run): the threaded one's, then "; on one thread " and the
   one-thread products' library when that differs                           */
const char *cpu_gemm_provenance(void);

#endif
