/*
 * cuda_blas.h: cuBLAS and cuBLASLt, opened when the first CUDA context starts.
 *
 * Linking libcublasLt costs every process about 0.15 s and 200 MB of memory
 * at start (its relocations), CPU runs and each forked test process
 * included. So deediff links only the CUDA runtime and dlopen()s the two
 * libraries in cuda_ctx_init; the kernels call them through `cuda_blas`:
 *
 *   cublasCheck(cuda_blas.cublasLtMatmul(...));
 *
 * Each entry has the type of the function of the same name in the CUDA
 * headers, so calls are checked by the compiler as direct calls would be.
 */
#ifndef DEEDIFF_CUDA_BLAS_H
#define DEEDIFF_CUDA_BLAS_H

#include <cublasLt.h>
#include <cublas_v2.h>

/* every function used, by its exported symbol (cublas_v2.h's _v2 names) */
#define CUDA_BLAS_FUNCTIONS(X)                                                  \
    X(cublas, cublasCreate_v2)                                                  \
    X(cublas, cublasDestroy_v2)                                                 \
    X(cublas, cublasSetStream_v2)                                               \
    X(cublas, cublasSetMathMode)                                                \
    X(cublas, cublasGetStatusName)                                              \
    X(cublas, cublasGetStatusString)                                            \
    X(lt, cublasLtCreate)                                                       \
    X(lt, cublasLtDestroy)                                                      \
    X(lt, cublasLtMatmulDescCreate)                                             \
    X(lt, cublasLtMatmulDescDestroy)                                            \
    X(lt, cublasLtMatmulDescSetAttribute)                                       \
    X(lt, cublasLtMatrixLayoutCreate)                                           \
    X(lt, cublasLtMatrixLayoutDestroy)                                          \
    X(lt, cublasLtMatrixLayoutSetAttribute)                                     \
    X(lt, cublasLtMatmulPreferenceCreate)                                       \
    X(lt, cublasLtMatmulPreferenceDestroy)                                      \
    X(lt, cublasLtMatmulPreferenceSetAttribute)                                 \
    X(lt, cublasLtMatmulAlgoGetHeuristic)                                       \
    X(lt, cublasLtMatmul)

/* cublasGemmEx is overloaded in C++ (an old cudaDataType compute type), so
   its pointer type is spelled out: the C function with cublasComputeType_t */
typedef cublasStatus_t (*CublasGemmExFn)(cublasHandle_t, cublasOperation_t, cublasOperation_t,
                                         int, int, int, const void *, const void *,
                                         cudaDataType, int, const void *, cudaDataType, int,
                                         const void *, void *, cudaDataType, int,
                                         cublasComputeType_t, cublasGemmAlgo_t);

typedef struct {
#define CUDA_BLAS_MEMBER(lib, name) decltype(&::name) name;
    CUDA_BLAS_FUNCTIONS(CUDA_BLAS_MEMBER)
#undef CUDA_BLAS_MEMBER
    CublasGemmExFn cublasGemmEx;
} CudaBlas;

extern CudaBlas cuda_blas;

/* opens both libraries once per process; 0, or -1 with err_set naming the
   library that could not be loaded */
int cuda_blas_load(void);

#endif
