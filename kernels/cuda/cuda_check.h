/*
 * cuda_check.h: checked calls into the CUDA runtime, cuBLAS and cuBLASLt.
 *
 * A failed call is never bad user input: it is a broken driver, a GPU out of
 * memory or a bug in a kernel launch. So each macro prints file:line, the
 * failed expression, the library's own error text and what to try, then
 * aborts (errors.h FATAL style).
 *
 *   cudaCheck(cudaMemcpyAsync(...));
 *   cudaCheck(cudaGetLastError());      // right after every kernel launch
 *   cublasCheck(cuda_blas.cublasLtMatmul(...));   // see cuda_blas.h
 */
#ifndef DEEDIFF_CUDA_CHECK_H
#define DEEDIFF_CUDA_CHECK_H

#include <cuda_runtime.h>

#include "cuda_blas.h"
#include "cuda_c_headers.h"

#define CUDA_CHECK_HINT                                                        \
    "(check nvidia-smi for the device and free memory; rerun with "           \
    "CUDA_LAUNCH_BLOCKING=1 to find the kernel that failed)"

#define cudaCheck(call)                                                        \
    do {                                                                       \
        cudaError_t cuda_check_err_ = (call);                                  \
        if (cuda_check_err_ != cudaSuccess)                                    \
            fatal_at(__FILE__, __LINE__, "CUDA error %s (%s) in %s %s",       \
                     cudaGetErrorName(cuda_check_err_),                        \
                     cudaGetErrorString(cuda_check_err_), #call,               \
                     CUDA_CHECK_HINT);                                         \
    } while (0)

/* cuBLAS and cuBLASLt share cublasStatus_t */
#define cublasCheck(call)                                                      \
    do {                                                                       \
        cublasStatus_t cublas_check_st_ = (call);                              \
        if (cublas_check_st_ != CUBLAS_STATUS_SUCCESS)                         \
            fatal_at(__FILE__, __LINE__, "cuBLAS error %s (%s) in %s %s",     \
                     cuda_blas.cublasGetStatusName(cublas_check_st_),          \
                     cuda_blas.cublasGetStatusString(cublas_check_st_), #call, \
                     CUDA_CHECK_HINT);                                         \
    } while (0)

#endif
