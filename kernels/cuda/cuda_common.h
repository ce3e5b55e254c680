/*
 * cuda_common.h: what every CUDA kernel file shares (internal to kernels/cuda).
 *
 *   - CudaState: the backend state behind Ctx.backend_state (one device per
 *     process: the stream, the cuBLAS and cuBLASLt handles, the cuBLASLt
 *     workspace, a small cache of chosen GEMM algorithms, the Philox libm
 *     table of cuda_sampler.cu)
 *   - dtype rules: activations are F32 or BF16; weights and other parameters
 *     are F32 master copies; every kernel accumulates in F32 (or F64 for
 *     reductions)
 *   - element access: load_f32 / store_f32 for float and __nv_bfloat16
 *     pointers (templated kernels, the dtype known at compile time) and for
 *     CudaIn / CudaOut (the dtype known at run time: one compiled kernel
 *     serves F32, BF16 and ops whose tensors mix the two, as an F32 image
 *     and BF16 tokens do). A kernel uses CudaIn/CudaOut unless a hot loop
 *     wants the type at compile time; the branch on the dtype is uniform
 *     across a warp, so memory-bound kernels do not notice it.
 *   - launch helpers, warp sums, scratch carving
 * The ops themselves are declared in cuda_ops.h.
 */
#ifndef DEEDIFF_CUDA_COMMON_H
#define DEEDIFF_CUDA_COMMON_H

#include <cublasLt.h>
#include <cuda_bf16.h>

#include "cuda_check.h"

/* ---- backend state ------------------------------------------------------- */

/* one remembered cuBLASLt algorithm for a GEMM problem (cuda_gemm.cu) */
typedef struct {
    uint64_t key[8];               /* ops, shape, leading dims, dtypes, epilogue, alignments, batch */
    int found;                     /* 0: the heuristic had no algorithm */
    cublasLtMatmulAlgo_t algo;
} CudaGemmAlgo;

#define CUDA_GEMM_CACHE 64
#define CUDA_LT_WORKSPACE_BYTES ((size_t)32 << 20)  /* what Hopper wants */

typedef struct {
    int device;
    char name[256];                /* cudaDeviceProp.name: "NVIDIA H200", ... */
    cudaStream_t stream;           /* every kernel and copy of the ctx */
    cublasHandle_t cublas;         /* fallback GEMMs (cublasGemmEx) */
    cublasLtHandle_t lt;           /* GEMMs with a fused bias epilogue */
    void *lt_workspace;            /* CUDA_LT_WORKSPACE_BYTES */
    int use_lt;                    /* 0 when DEEDIFF_CUDA_GEMM=cublas */
    CudaGemmAlgo gemm_cache[CUDA_GEMM_CACHE];
    int gemm_cache_used;
    unsigned char *philox_ulps;    /* device, 2^23 bytes, built by the first randn */
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

/* launches kernel<<<cuda_blocks(n), CUDA_THREADS, 0, stream>>>(args...) and
   checks the launch: the one-line form of every grid-stride kernel */
#define CUDA_LAUNCH(ctx, n, kernel, ...)                                        \
    do {                                                                        \
        kernel<<<cuda_blocks(n), CUDA_THREADS, 0, cuda_stream(ctx)>>>(__VA_ARGS__); \
        cudaCheck(cudaGetLastError());                                          \
    } while (0)

/* ---- element access: T is float or __nv_bfloat16 (compile time) ---------- */

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

/* ---- element access: the dtype known at run time ---------------------------- */

/* an F32 or BF16 tensor's data, read-only / writable; NULL data = absent */
struct CudaIn {
    const void *p;
    int bf16;
};
struct CudaOut {
    void *p;
    int bf16;
};

__device__ __forceinline__ float load_f32(CudaIn a, int64_t i)
{
    return a.bf16 ? __bfloat162float(((const __nv_bfloat16 *)a.p)[i]) : ((const float *)a.p)[i];
}
__device__ __forceinline__ float load_f32(CudaOut a, int64_t i)
{
    return a.bf16 ? __bfloat162float(((const __nv_bfloat16 *)a.p)[i]) : ((const float *)a.p)[i];
}
__device__ __forceinline__ void store_f32(CudaOut a, int64_t i, float v)
{
    if (a.bf16) ((__nv_bfloat16 *)a.p)[i] = __float2bfloat16_rn(v);
    else ((float *)a.p)[i] = v;
}
/* a[i] += v, rounded once to a's dtype (a backward's accumulation) */
__device__ __forceinline__ void add_f32(CudaOut a, int64_t i, float v)
{
    store_f32(a, i, load_f32(a, i) + v);
}

/* views of activation tensors (F32 or BF16, checked); an absent tensor gives
   a NULL pointer, which kernels test for optional gradients */
static inline CudaIn cuda_in(const char *op, Tensor t)
{
    if (!tensor_present(t)) return CudaIn{NULL, 0};
    return CudaIn{t.data, cuda_act_dtype(op, t) == DT_BF16};
}
static inline CudaOut cuda_out(const char *op, Tensor t)
{
    if (!tensor_present(t)) return CudaOut{NULL, 0};
    return CudaOut{t.data, cuda_act_dtype(op, t) == DT_BF16};
}

/* ---- warp sums ------------------------------------------------------------------ */

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
__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* ---- scratch ---------------------------------------------------------------------- */

/* bytes rounded up to 256, so pieces carved one after another stay aligned
   for cuBLASLt and vector loads */
static inline size_t cuda_align(size_t n) { return (n + 255) & ~(size_t)255; }

/* carves consecutive pieces out of one ctx_scratch() block. An op asks for
   its whole scratch in one call: a second ctx_scratch() may move the block. */
typedef struct {
    char *base;
    size_t used;
} CudaCarve;

static inline void *cuda_carve(CudaCarve *c, size_t bytes)
{
    void *p = c->base + c->used;
    c->used += cuda_align(bytes);
    return p;
}

#endif
