/*
 * cuda_linear.cu: out[M,N] = in[M,K] @ w[N,K]^T + b[N] on the GPU.
 *
 * Row-major out[M,N] is column-major out^T[N,M], so cuBLAS computes
 *   out^T (N x M, ld N) = w^T (op T on the column-major K x N view of w, ld K)
 *                       @ in^T (column-major K x M, ld K)
 * which is the "TN" layout tensor cores like best.
 *
 * Dtypes (all accumulate in F32, CUBLAS_COMPUTE_32F, never TF32):
 *   in/out F32,  w F32,  b F32        -> F32 GEMM
 *   in/out BF16, w BF16, b BF16       -> BF16 GEMM
 *   in/out BF16, w F32 and/or b F32   -> w and b are rounded to BF16 in ctx
 *       scratch first (one pass over N*K values, a few % of a U-ViT GEMM),
 *       then the BF16 GEMM. The F32 master weights are never changed. A
 *       BF16 weight copy kept by the optimizer would remove this pass.
 *
 * The GEMM runs in cuBLASLt with the bias fused as an epilogue; the algorithm
 * the heuristic picks is cached per problem (shape, dtypes, alignments). When
 * the heuristic offers nothing, or DEEDIFF_CUDA_GEMM=cublas, cublasGemmEx runs
 * instead, after out is filled with the bias (beta = 1).
 */
#include <string.h>

#include "cuda_common.h"

/* dst[i] = bf16(src[i]) */
__global__ void cast_f32_to_bf16_kernel(__nv_bfloat16 *dst, const float *src, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) dst[i] = __float2bfloat16_rn(src[i]);
}

/* out[m, j] = b[j] for every row m; out is (M, N) */
template <typename T>
__global__ void fill_rows_kernel(T *out, const T *b, int64_t M, int64_t N)
{
    CUDA_GRID_STRIDE(i, M * N) out[i] = b[i % N];
}

static cudaDataType cuda_type(DType dt) { return dt == DT_BF16 ? CUDA_R_16BF : CUDA_R_32F; }

/* the largest power of two (at most 256) dividing the address and the
   leading dimension in bytes: what cuBLASLt's alignment preferences mean */
static uint32_t alignment(const void *p, uint64_t ld_bytes)
{
    uint64_t v = (uint64_t)(uintptr_t)p | ld_bytes | 256;
    return (uint32_t)(v & (~v + 1));
}

/* a GEMM problem in cuBLAS's column-major terms: D (m x n) = A^T B + bias */
typedef struct {
    int m, n, k;                 /* m = N, n = M, k = K of the op */
    cudaDataType ab, cd;         /* A/B and C/D element types */
    const void *A, *B, *bias;    /* A is w, B is in */
    void *D;
} Gemm;

/* the cached cuBLASLt algorithm for g (looked up once per problem) */
static const CudaGemmAlgo *lt_algo(CudaState *s, const Gemm *g, cublasLtMatmulDesc_t desc,
                                   cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                                   cublasLtMatrixLayout_t lc)
{
    size_t es_ab = g->ab == CUDA_R_16BF ? 2 : 4, es_cd = g->cd == CUDA_R_16BF ? 2 : 4;
    uint32_t al_a = alignment(g->A, (uint64_t)g->k * es_ab);
    uint32_t al_b = alignment(g->B, (uint64_t)g->k * es_ab);
    uint32_t al_d = alignment(g->D, (uint64_t)g->m * es_cd);
    uint32_t al_bias = g->bias ? alignment(g->bias, 0) : 0;
    uint64_t key[4] = {
        (uint64_t)g->m << 32 | (uint32_t)g->n,
        (uint64_t)g->k << 32 | (uint64_t)g->ab << 16 | (uint64_t)g->cd,
        (uint64_t)(g->bias != NULL) << 32 | al_bias,
        (uint64_t)al_a << 40 | (uint64_t)al_b << 20 | al_d,
    };
    for (int i = 0; i < s->gemm_cache_used; i++)
        if (memcmp(s->gemm_cache[i].key, key, sizeof key) == 0) return &s->gemm_cache[i];

    /* a full cache starts over: problems come in a few shapes per model */
    if (s->gemm_cache_used == CUDA_GEMM_CACHE) s->gemm_cache_used = 0;
    CudaGemmAlgo *c = &s->gemm_cache[s->gemm_cache_used++];
    memcpy(c->key, key, sizeof key);

    cublasLtMatmulPreference_t pref;
    cublasCheck(cuda_blas.cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = CUDA_LT_WORKSPACE_BYTES;
    cublasCheck(cuda_blas.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    cublasCheck(cuda_blas.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a));
    cublasCheck(cuda_blas.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b));
    cublasCheck(cuda_blas.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_d, sizeof al_d));
    cublasCheck(cuda_blas.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d, sizeof al_d));
    cublasLtMatmulHeuristicResult_t result;
    int count = 0;
    cublasStatus_t st = cuda_blas.cublasLtMatmulAlgoGetHeuristic(s->lt, desc, la, lb, lc, lc, pref, 1, &result, &count);
    cublasCheck(cuda_blas.cublasLtMatmulPreferenceDestroy(pref));
    c->found = st == CUBLAS_STATUS_SUCCESS && count > 0;
    if (c->found) c->algo = result.algo;
    return c;
}

/* runs g with cuBLASLt; returns 0 when cuBLASLt has no algorithm for it */
static int gemm_lt(CudaState *s, const Gemm *g)
{
    cublasLtMatmulDesc_t desc;
    cublasCheck(cuda_blas.cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasCheck(cuda_blas.cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    cublasCheck(cuda_blas.cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (g->bias) {
        /* the bias has D's type (cublasLt.h, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE) */
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        cublasCheck(cuda_blas.cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        cublasCheck(cuda_blas.cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g->bias, sizeof g->bias));
    }
    cublasLtMatrixLayout_t la, lb, lc;
    cublasCheck(cuda_blas.cublasLtMatrixLayoutCreate(&la, g->ab, g->k, g->m, g->k)); /* w: K x N, ld K */
    cublasCheck(cuda_blas.cublasLtMatrixLayoutCreate(&lb, g->ab, g->k, g->n, g->k)); /* in: K x M, ld K */
    cublasCheck(cuda_blas.cublasLtMatrixLayoutCreate(&lc, g->cd, g->m, g->n, g->m)); /* out: N x M, ld N */

    const CudaGemmAlgo *c = lt_algo(s, g, desc, la, lb, lc);
    if (c->found) {
        const float alpha = 1.0f, beta = 0.0f;
        cublasCheck(cuda_blas.cublasLtMatmul(s->lt, desc, &alpha, g->A, la, g->B, lb, &beta, g->D, lc,
                                   g->D, lc, &c->algo, s->lt_workspace,
                                   CUDA_LT_WORKSPACE_BYTES, s->stream));
    }
    cublasCheck(cuda_blas.cublasLtMatrixLayoutDestroy(lc));
    cublasCheck(cuda_blas.cublasLtMatrixLayoutDestroy(lb));
    cublasCheck(cuda_blas.cublasLtMatrixLayoutDestroy(la));
    cublasCheck(cuda_blas.cublasLtMatmulDescDestroy(desc));
    return c->found;
}

/* every row of D (the op's out[M,N]) = bias[N] */
static void fill_bias(CudaState *s, const Gemm *g)
{
    int64_t n = (int64_t)g->m * g->n;
    if (g->cd == CUDA_R_16BF)
        fill_rows_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, s->stream>>>(
            (__nv_bfloat16 *)g->D, (const __nv_bfloat16 *)g->bias, g->n, g->m);
    else
        fill_rows_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, s->stream>>>(
            (float *)g->D, (const float *)g->bias, g->n, g->m);
    cudaCheck(cudaGetLastError());
}

/* runs g with cublasGemmEx, which takes any shape and alignment */
static void gemm_ex(CudaState *s, const Gemm *g)
{
    float beta = 0.0f;
    if (g->bias) {
        fill_bias(s, g);
        beta = 1.0f;
    }
    const float alpha = 1.0f;
    cublasCheck(cuda_blas.cublasGemmEx(s->cublas, CUBLAS_OP_T, CUBLAS_OP_N, g->m, g->n, g->k, &alpha,
                             g->A, g->ab, g->k, g->B, g->ab, g->k, &beta, g->D, g->cd, g->m,
                             CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/* scratch bytes rounded up so the next piece stays 256-byte aligned */
static size_t aligned_bytes(size_t n) { return (n + 255) & ~(size_t)255; }

void cuda_linear_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b)
{
    const char *op = "linear_forward";
    CudaState *s = cuda_state(ctx);
    DType act = cuda_act_dtype(op, in);
    cuda_same_dtype(op, out, in);
    int64_t M = tensor_rows(in), K = tensor_cols(in), N = w.shape[0];
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
        FATAL("%s on cuda: M=%lld N=%lld K=%lld exceed cuBLAS's int range", op,
              (long long)M, (long long)N, (long long)K);
    if (M == 0 || N == 0) return;

    const void *wp = w.data, *bp = tensor_present(b) ? b.data : NULL;
    if (act == DT_F32) {
        cuda_need_f32(op, "w (with F32 activations)", w);
        if (bp) cuda_need_f32(op, "b (with F32 activations)", b);
    } else {
        if (w.dtype != DT_F32 && w.dtype != DT_BF16)
            FATAL("%s on cuda: w must be F32 or BF16, got %s", op, dtype_name(w.dtype));
        if (bp && b.dtype != DT_F32 && b.dtype != DT_BF16)
            FATAL("%s on cuda: b must be F32 or BF16, got %s", op, dtype_name(b.dtype));
        /* round F32 parameters to BF16 in scratch: [w (N*K) | b (N)] */
        size_t w_bytes = w.dtype == DT_F32 ? aligned_bytes((size_t)(N * K) * 2) : 0;
        size_t b_bytes = bp && b.dtype == DT_F32 ? aligned_bytes((size_t)N * 2) : 0;
        if (w_bytes + b_bytes) {
            char *scratch = (char *)ctx_scratch(ctx, w_bytes + b_bytes);
            if (w_bytes) {
                cast_f32_to_bf16_kernel<<<cuda_blocks(N * K), CUDA_THREADS, 0, s->stream>>>(
                    (__nv_bfloat16 *)scratch, (const float *)w.data, N * K);
                cudaCheck(cudaGetLastError());
                wp = scratch;
            }
            if (b_bytes) {
                cast_f32_to_bf16_kernel<<<cuda_blocks(N), CUDA_THREADS, 0, s->stream>>>(
                    (__nv_bfloat16 *)(scratch + w_bytes), (const float *)b.data, N);
                cudaCheck(cudaGetLastError());
                bp = scratch + w_bytes;
            }
        }
    }

    Gemm g = {(int)N, (int)M, (int)K, cuda_type(act), cuda_type(act), wp, in.data, bp, out.data};
    if (K == 0) { /* no products: out is the bias, or zero */
        if (bp) fill_bias(s, &g);
        else cudaCheck(cudaMemsetAsync(out.data, 0, tensor_bytes(out), s->stream));
        return;
    }
    if (!(s->use_lt && gemm_lt(s, &g))) gemm_ex(s, &g);
}
