/*
 * cuda_gemm.h: every GEMM of the CUDA backend, in cuBLAS's column-major terms
 * (internal to kernels/cuda).
 *
 *   C (m x n) = alpha op(A) op(B) + beta C  [+ bias[m] added to every column]
 *
 * or, with C_in set, out of place: C = alpha op(A) op(B) + beta C_in [+ bias]
 * (C_in has C's dtype and layout and is only read: a residual added in the
 * GEMM's epilogue, one rounding, no pass over memory of its own).
 *
 * for `batch` problems at element strides stride_a/b/c (a stride of 0 reuses
 * one matrix, e.g. a conv's weight for every image). A row-major [R, C]
 * tensor is the column-major C x R matrix with leading dimension C; each
 * caller writes its mapping next to its call (cuda_linear.cu, cuda_conv2d.cu).
 *
 * A and B share one dtype (F32 or BF16); C is F32 or BF16. Accumulation is
 * always F32 (CUBLAS_COMPUTE_32F, never TF32: F32 inputs stay F32). The bias,
 * when given, has C's dtype (cuBLASLt's default bias type).
 *
 * cuBLASLt runs it with the bias fused as an epilogue; the algorithm its
 * heuristic picks is cached per problem (ops, shape, leading dimensions,
 * dtypes, epilogue, pointer alignments, batch). When the heuristic offers
 * nothing, or DEEDIFF_CUDA_GEMM=cublas, cublasGemmEx runs each batch entry
 * instead: C_in copied into C first, the bias filled in before the GEMM
 * (beta 0) or added after it (beta != 0).
 */
#ifndef DEEDIFF_CUDA_GEMM_H
#define DEEDIFF_CUDA_GEMM_H

#include <string.h>

#include "cuda_common.h"

typedef struct {
    cublasOperation_t ta, tb;
    int m, n, k;
    DType ab, c_dt;              /* A/B dtype, C dtype: F32 or BF16 */
    const void *A;
    int lda;
    const void *B;
    int ldb;
    void *C;
    int ldc;
    const void *C_in;            /* NULL: C is read (beta != 0) and written in place */
    float alpha, beta;
    const void *bias;            /* [m] of C's dtype, or NULL */
    int batch;                   /* >= 1 */
    int64_t stride_a, stride_b, stride_c;
} CudaGemm;

/* a single (batch 1) GEMM with alpha 1, no bias; callers set the rest */
static inline CudaGemm cuda_gemm_problem(cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, DType ab, DType c_dt)
{
    CudaGemm g;
    memset(&g, 0, sizeof g);
    g.ta = ta, g.tb = tb, g.m = m, g.n = n, g.k = k, g.ab = ab, g.c_dt = c_dt;
    g.alpha = 1.0f, g.beta = 0.0f, g.batch = 1;
    return g;
}

/* queues g on the context's stream */
void cuda_gemm(Ctx *ctx, const CudaGemm *g);

/* dims must fit cuBLAS's int; FATAL naming the op otherwise */
void cuda_gemm_check_dims(const char *op, int64_t m, int64_t n, int64_t k);

/* dst[n] = bf16(src[n]) on the stream (F32 parameters for a BF16 GEMM) */
void cuda_cast_to_bf16(Ctx *ctx, void *dst, const float *src, int64_t n);

/* w as the dtype `want`: w itself when it already is, else cast into `buf`
   (cuda_align(numel * 2) bytes of the caller's scratch; only F32 -> BF16) */
const void *cuda_as_dtype(Ctx *ctx, const char *op, Tensor w, DType want, void *buf);

#endif
