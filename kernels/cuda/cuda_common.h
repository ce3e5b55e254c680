/*
 * cuda_common.h: what every CUDA kernel file shares (internal to kernels/cuda).
 *
 *   - CudaState: the backend state behind Ctx.backend_state (one device per
 *     process: the stream, the cuBLAS and cuBLASLt handles, the cuBLASLt
 *     workspace and a small cache of chosen GEMM algorithms)
 *   - dtype rules: activations are F32 or BF16 (all activation tensors of one
 *     call share a dtype, checked here); weights and other parameters are F32
 *     master copies; every kernel accumulates in F32 (or F64 for reductions)
 *   - element load/store for float and __nv_bfloat16 in templated kernels
 *   - the cuda_* ops, one per entry of the OpTable (kernels/op_table.h)
 */
#ifndef DEEDIFF_CUDA_COMMON_H
#define DEEDIFF_CUDA_COMMON_H

#include <cublasLt.h>
#include <cuda_bf16.h>

#include "cuda_check.h"

/* ---- backend state ------------------------------------------------------- */

/* one remembered cuBLASLt algorithm for a GEMM problem (cuda_linear.cu) */
typedef struct {
    uint64_t key[4];               /* shape, dtypes, epilogue, alignments */
    int found;                     /* 0: the heuristic had no algorithm */
    cublasLtMatmulAlgo_t algo;
} CudaGemmAlgo;

#define CUDA_GEMM_CACHE 64
#define CUDA_LT_WORKSPACE_BYTES ((size_t)32 << 20)  /* what Hopper wants */

typedef struct {
    int device;
    cudaStream_t stream;           /* every kernel and copy of the ctx */
    cublasHandle_t cublas;         /* fallback GEMMs (cublasGemmEx) */
    cublasLtHandle_t lt;           /* GEMMs with a fused bias epilogue */
    void *lt_workspace;            /* CUDA_LT_WORKSPACE_BYTES */
    int use_lt;                    /* 0 when DEEDIFF_CUDA_GEMM=cublas */
    CudaGemmAlgo gemm_cache[CUDA_GEMM_CACHE];
    int gemm_cache_used;
} CudaState;

static inline CudaState *cuda_state(Ctx *ctx) { return (CudaState *)ctx->backend_state; }
static inline cudaStream_t cuda_stream(Ctx *ctx) { return cuda_state(ctx)->stream; }

/* ---- dtype rules (host side; a violation is a caller bug: FATAL) ---------- */

/* t is an activation: F32 or BF16 */
static inline DType cuda_act_dtype(const char *op, Tensor t)
{
    if (t.dtype != DT_F32 && t.dtype != DT_BF16)
        FATAL("%s on cuda: activations must be F32 or BF16, got %s", op, dtype_name(t.dtype));
    return t.dtype;
}
/* b has a's dtype (two activations of one op) */
static inline void cuda_same_dtype(const char *op, Tensor a, Tensor b)
{
    if (a.dtype != b.dtype)
        FATAL("%s on cuda: tensors must share one dtype, got %s and %s", op,
              dtype_name(a.dtype), dtype_name(b.dtype));
}
/* t is F32 (parameters, statistics, timesteps) */
static inline void cuda_need_f32(const char *op, const char *what, Tensor t)
{
    if (t.dtype != DT_F32)
        FATAL("%s on cuda: %s must be F32, got %s", op, what, dtype_name(t.dtype));
}

/* ---- launches --------------------------------------------------------------- */

#define CUDA_THREADS 256

/* blocks for a grid-stride loop over n elements (capped, the loop does the rest) */
static inline unsigned cuda_blocks(int64_t n)
{
    int64_t b = (n + CUDA_THREADS - 1) / CUDA_THREADS;
    if (b < 1) b = 1;
    if (b > 65535 * 8) b = 65535 * 8;
    return (unsigned)b;
}

#define CUDA_GRID_STRIDE(i, n)                                                  \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);   \
         i += (int64_t)gridDim.x * blockDim.x)

/* ---- element access in templated kernels: T is float or __nv_bfloat16 ----- */

__device__ __forceinline__ float load_f32(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load_f32(const __nv_bfloat16 *p, int64_t i)
{
    return __bfloat162float(p[i]);
}
__device__ __forceinline__ void store_f32(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store_f32(__nv_bfloat16 *p, int64_t i, float v)
{
    p[i] = __float2bfloat16_rn(v);
}

/* sum over the 32 lanes of a warp; every lane gets the total */
__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ double warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* ---- the ops (each in its own file; signatures as in kernels/ops.h) -------- */

void cuda_linear_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b);
void cuda_layernorm_forward(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd,
                            Tensor in, Tensor w, Tensor b, float eps);
void cuda_gelu_forward(Ctx *ctx, Tensor out, Tensor in);
void cuda_gelu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in);
void cuda_silu_forward(Ctx *ctx, Tensor out, Tensor in);
void cuda_add_forward(Ctx *ctx, Tensor out, Tensor a, Tensor b);
void cuda_accumulate(Ctx *ctx, Tensor dst, Tensor src);
void cuda_add_bcast_forward(Ctx *ctx, Tensor out, Tensor in, Tensor row);
void cuda_token_slice_forward(Ctx *ctx, Tensor out, Tensor in, int at);
void cuda_token_place_forward(Ctx *ctx, Tensor seq, Tensor src, int at);
void cuda_timestep_embedding_forward(Ctx *ctx, Tensor out, Tensor t);
float cuda_mse_forward(Ctx *ctx, Tensor pred, Tensor target);

#endif
