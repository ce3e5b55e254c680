/*
 * cuda_compare.h: one CUDA op against the CPU reference (test support for
 * tests/test_cuda_*.c).
 *
 * A test draws inputs on the host, runs the op on a CPU context (cc_cpu) and
 * on a CUDA context (cc_gpu: upload, op, download) and compares by relative
 * L2 error: CC_TOL_F32 for F32 (CC_TOL_GEMM_F32 where cuBLAS sums in another
 * order), CC_TOL_BF16 for BF16 activations. BF16 inputs are rounded to BF16
 * on the host first (cc_values), so both backends see the same numbers and
 * the error left is the GPU's rounding of its outputs (and of F32 weights in
 * a BF16 GEMM). Some ops promise the CPU's bits exactly (sampler and
 * optimizer arithmetic): cc_expect_equal.
 *
 * cc_start() skips the test with "no CUDA device" when there is no CUDA
 * build or no GPU. Everything cc_* allocates (host arrays, device tensors)
 * is freed by cc_finish().
 */
#ifndef DEEDIFF_TEST_CUDA_COMPARE_H
#define DEEDIFF_TEST_CUDA_COMPARE_H

#include "kernels/ops.h"

#define CC_TOL_F32 1e-5
#define CC_TOL_GEMM_F32 1e-4
#define CC_TOL_BF16 1e-2

extern Ctx cc_cpu, cc_gpu;

/* both contexts, or the test is skipped */
void cc_start(void);
void cc_finish(void);
/* CC_TOL_F32 or CC_TOL_BF16 */
double cc_tol(DType dt);

/* n floats uniform in [lo, hi), rounded to BF16 values when dt is BF16 */
float *cc_values(int64_t n, float lo, float hi, uint64_t seed, DType dt);
/* a host copy of x[n] */
float *cc_copy(const float *x, int64_t n);

/* a device tensor of dtype dt with the shape and values of host (an F32 view) */
Tensor cc_upload(Tensor host, DType dt);
/* a device tensor with host's shape, dtype and bytes (I64 ids) */
Tensor cc_upload_raw(Tensor host);
/* a zeroed device tensor of dtype dt with host's shape */
Tensor cc_zeros(Tensor host, DType dt);
/* dev's values as F32 in a new host array */
float *cc_download(Tensor dev);

/* expects the relative L2 error of dev against want[] below tol (logged) */
void cc_expect_close(const char *what, Tensor dev, const float *want, double tol);
/* expects dev (F32) to hold want[] bit for bit */
void cc_expect_equal(const char *what, Tensor dev, const float *want);

#endif
