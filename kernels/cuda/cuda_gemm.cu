/*
 * cuda_gemm.cu: the CUDA backend's GEMM (cuda_gemm.h): cuBLASLt with a fused
 * bias epilogue and a per-problem algorithm cache, cublasGemmEx as the
 * fallback; and the F32 -> BF16 cast that feeds F32 master weights to BF16
 * GEMMs.
 */
#include <string.h>

#include "cuda_gemm.h"

static cudaDataType cuda_type(DType dt) { return dt == DT_BF16 ? CUDA_R_16BF : CUDA_R_32F; }
static size_t dtype_bytes(DType dt) { return dt == DT_BF16 ? 2 : 4; }

void cuda_gemm_check_dims(const char *op, int64_t m, int64_t n, int64_t k)
{
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        FATAL("%s on cuda: GEMM m=%lld n=%lld k=%lld exceeds cuBLAS's int range", op,
              (long long)m, (long long)n, (long long)k);
}

/* ---- casts -------------------------------------------------------------------------- */

// dst, src are (n,)
__global__ void cast_f32_to_bf16_kernel(__nv_bfloat16 *dst, const float *src, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) dst[i] = __float2bfloat16_rn(src[i]);
}

void cuda_cast_to_bf16(Ctx *ctx, void *dst, const float *src, int64_t n)
{
    if (n <= 0) return;
    CUDA_LAUNCH(ctx, n, cast_f32_to_bf16_kernel, (__nv_bfloat16 *)dst, src, n);
}

const void *cuda_as_dtype(Ctx *ctx, const char *op, Tensor w, DType want, void *buf)
{
    if (w.dtype == want) return w.data;
    if (w.dtype != DT_F32 || want != DT_BF16)
        FATAL("%s on cuda: a %s operand cannot join a %s GEMM (F32 parameters are rounded to "
              "BF16 for BF16 activations; F32 activations need F32 parameters)",
              op, dtype_name(w.dtype), dtype_name(want));
    cuda_cast_to_bf16(ctx, buf, (const float *)w.data, tensor_numel(w));
    return buf;
}

/* ---- cuBLASLt ------------------------------------------------------------------------ */

/* the largest power of two (at most 256) dividing the address and the
   leading dimension in bytes: what cuBLASLt's alignment preferences mean */
static uint32_t alignment(const void *p, uint64_t ld_bytes)
{
    uint64_t v = (uint64_t)(uintptr_t)p | ld_bytes | 256;
    return (uint32_t)(v & (~v + 1));
}

typedef struct {
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
} LtProblem;

/* a layout of rows x cols (column-major, leading dimension ld), batched */
static cublasLtMatrixLayout_t lt_layout(cudaDataType t, int rows, int cols, int ld, int batch,
                                        int64_t stride)
{
    cublasLtMatrixLayout_t l;
    cublasCheck(cuda_blas.cublasLtMatrixLayoutCreate(&l, t, rows, cols, ld));
    if (batch > 1) {
        int32_t count = batch;
        cublasCheck(cuda_blas.cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                               &count, sizeof count));
        cublasCheck(cuda_blas.cublasLtMatrixLayoutSetAttribute(
            l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
    }
    return l;
}

static LtProblem lt_problem(const CudaGemm *g)
{
    LtProblem p;
    cublasCheck(cuda_blas.cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasCheck(cuda_blas.cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &g->ta, sizeof g->ta));
    cublasCheck(cuda_blas.cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &g->tb, sizeof g->tb));
    if (g->bias) {
        /* the bias has D's type (cublasLt.h, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE) */
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        cublasCheck(cuda_blas.cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        cublasCheck(cuda_blas.cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g->bias, sizeof g->bias));
    }
    /* op(A) is m x k, op(B) is k x n: the stored shapes before the ops */
    int a_rows = g->ta == CUBLAS_OP_N ? g->m : g->k, a_cols = g->ta == CUBLAS_OP_N ? g->k : g->m;
    int b_rows = g->tb == CUBLAS_OP_N ? g->k : g->n, b_cols = g->tb == CUBLAS_OP_N ? g->n : g->k;
    p.la = lt_layout(cuda_type(g->ab), a_rows, a_cols, g->lda, g->batch, g->stride_a);
    p.lb = lt_layout(cuda_type(g->ab), b_rows, b_cols, g->ldb, g->batch, g->stride_b);
    p.lc = lt_layout(cuda_type(g->c_dt), g->m, g->n, g->ldc, g->batch, g->stride_c);
    return p;
}

static void lt_problem_destroy(LtProblem *p)
{
    cublasCheck(cuda_blas.cublasLtMatrixLayoutDestroy(p->lc));
    cublasCheck(cuda_blas.cublasLtMatrixLayoutDestroy(p->lb));
    cublasCheck(cuda_blas.cublasLtMatrixLayoutDestroy(p->la));
    cublasCheck(cuda_blas.cublasLtMatmulDescDestroy(p->desc));
}

/* the cached cuBLASLt algorithm for g (the heuristic asked once per problem) */
static const CudaGemmAlgo *lt_algo(CudaState *s, const CudaGemm *g, const LtProblem *p)
{
    size_t ab = dtype_bytes(g->ab), cd = dtype_bytes(g->c_dt);
    uint32_t al_a = alignment(g->A, (uint64_t)g->lda * ab);
    uint32_t al_b = alignment(g->B, (uint64_t)g->ldb * ab);
    uint32_t al_c = alignment(g->C, (uint64_t)g->ldc * cd);
    uint32_t al_cin = g->C_in ? alignment(g->C_in, (uint64_t)g->ldc * cd) : al_c;
    uint32_t al_bias = g->bias ? alignment(g->bias, 0) : 0;
    if (g->batch > 1) { /* every batch entry's start must share the alignment */
        al_a = al_a < alignment(NULL, (uint64_t)g->stride_a * ab) ? al_a : alignment(NULL, (uint64_t)g->stride_a * ab);
        al_b = al_b < alignment(NULL, (uint64_t)g->stride_b * ab) ? al_b : alignment(NULL, (uint64_t)g->stride_b * ab);
        al_c = al_c < alignment(NULL, (uint64_t)g->stride_c * cd) ? al_c : alignment(NULL, (uint64_t)g->stride_c * cd);
        al_cin = al_cin < al_c ? al_cin : al_c;
    }
    uint64_t key[8] = {
        (uint64_t)g->m << 32 | (uint32_t)g->n,
        (uint64_t)g->k << 32 | (uint64_t)g->ta << 8 | (uint64_t)g->tb,
        (uint64_t)g->lda << 32 | (uint32_t)g->ldb,
        (uint64_t)g->ldc << 32 | (uint64_t)g->ab << 16 | (uint64_t)g->c_dt,
        (uint64_t)(g->bias != NULL) << 32 | al_bias | (uint64_t)(g->beta != 0.0f) << 40 |
            (uint64_t)(g->C_in != NULL) << 41 | (uint64_t)al_cin << 44,
        (uint64_t)al_a << 40 | (uint64_t)al_b << 20 | al_c,
        (uint64_t)g->batch,
        (uint64_t)g->stride_a ^ (uint64_t)g->stride_b << 21 ^ (uint64_t)g->stride_c << 42,
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
    cublasCheck(cuda_blas.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_cin, sizeof al_cin));
    cublasCheck(cuda_blas.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof al_c));
    cublasLtMatmulHeuristicResult_t result;
    int count = 0;
    cublasStatus_t st = cuda_blas.cublasLtMatmulAlgoGetHeuristic(s->lt, p->desc, p->la, p->lb, p->lc,
                                                                 p->lc, pref, 1, &result, &count);
    cublasCheck(cuda_blas.cublasLtMatmulPreferenceDestroy(pref));
    c->found = st == CUBLAS_STATUS_SUCCESS && count > 0;
    if (c->found) c->algo = result.algo;
    return c;
}

/* runs g with cuBLASLt; returns 0 when cuBLASLt has no algorithm for it */
static int gemm_lt(CudaState *s, const CudaGemm *g)
{
    LtProblem p = lt_problem(g);
    const CudaGemmAlgo *c = lt_algo(s, g, &p);
    if (c->found)
        cublasCheck(cuda_blas.cublasLtMatmul(s->lt, p.desc, &g->alpha, g->A, p.la, g->B, p.lb,
                                             &g->beta, g->C_in ? g->C_in : g->C, p.lc, g->C, p.lc, &c->algo,
                                             s->lt_workspace, CUDA_LT_WORKSPACE_BYTES, s->stream));
    lt_problem_destroy(&p);
    return c->found;
}

/* ---- cublasGemmEx ---------------------------------------------------------------------- */

/* every column j of C (m x n, ld ldc) = bias[m] */
template <typename T>
__global__ void fill_columns_kernel(T *C, const T *bias, int64_t m, int64_t n, int64_t ldc)
{
    CUDA_GRID_STRIDE(i, m * n) C[(i / m) * ldc + i % m] = bias[i % m];
}

/* every column j of C (m x n, ld ldc) += bias[m] (after a GEMM with beta != 0) */
template <typename T>
__global__ void add_columns_kernel(T *C, const T *bias, int64_t m, int64_t n, int64_t ldc)
{
    CUDA_GRID_STRIDE(i, m * n)
    {
        int64_t at = (i / m) * ldc + i % m;
        store_f32(C, at, load_f32(C, at) + load_f32(bias, i % m));
    }
}

/* C (m x n, ld ldc) filled with (add 0) or increased by (add 1) the bias */
static void bias_columns(Ctx *ctx, const CudaGemm *g, char *C, int add)
{
    int64_t mn = (int64_t)g->m * g->n, m = g->m, n = g->n, ldc = g->ldc;
    if (g->c_dt == DT_BF16) {
        const __nv_bfloat16 *b = (const __nv_bfloat16 *)g->bias;
        if (add) CUDA_LAUNCH(ctx, mn, add_columns_kernel, (__nv_bfloat16 *)C, b, m, n, ldc);
        else CUDA_LAUNCH(ctx, mn, fill_columns_kernel, (__nv_bfloat16 *)C, b, m, n, ldc);
    } else {
        const float *b = (const float *)g->bias;
        if (add) CUDA_LAUNCH(ctx, mn, add_columns_kernel, (float *)C, b, m, n, ldc);
        else CUDA_LAUNCH(ctx, mn, fill_columns_kernel, (float *)C, b, m, n, ldc);
    }
}

/* runs g with cublasGemmEx, one call per batch entry: any shape and alignment.
   C_in is copied into C first; a bias is filled in before a beta-0 GEMM
   (one rounding) and added after any other (a second rounding). */
static void gemm_ex(Ctx *ctx, const CudaGemm *g)
{
    CudaState *s = cuda_state(ctx);
    size_t ab = dtype_bytes(g->ab), cd = dtype_bytes(g->c_dt);
    for (int b = 0; b < g->batch; b++) {
        size_t c_off = (size_t)(b * g->stride_c) * cd;
        char *C = (char *)g->C + c_off;
        float beta = g->beta;
        if (g->C_in && beta != 0.0f)
            cudaCheck(cudaMemcpy2DAsync(C, (size_t)g->ldc * cd, (const char *)g->C_in + c_off,
                                        (size_t)g->ldc * cd, (size_t)g->m * cd, (size_t)g->n,
                                        cudaMemcpyDeviceToDevice, s->stream));
        if (g->bias && beta == 0.0f) {
            bias_columns(ctx, g, C, 0);
            beta = 1.0f;
        }
        const char *A = (const char *)g->A + (size_t)(b * g->stride_a) * ab;
        const char *B = (const char *)g->B + (size_t)(b * g->stride_b) * ab;
        cublasCheck(cuda_blas.cublasGemmEx(s->cublas, g->ta, g->tb, g->m, g->n, g->k, &g->alpha, A,
                                           cuda_type(g->ab), g->lda, B, cuda_type(g->ab), g->ldb,
                                           &beta, C, cuda_type(g->c_dt), g->ldc, CUBLAS_COMPUTE_32F,
                                           CUBLAS_GEMM_DEFAULT));
        if (g->bias && g->beta != 0.0f) bias_columns(ctx, g, C, 1);
    }
}

/* ---- the entry point ---------------------------------------------------------------------- */

void cuda_gemm(Ctx *ctx, const CudaGemm *g)
{
    CudaState *s = cuda_state(ctx);
    if (g->m == 0 || g->n == 0 || g->batch == 0) return;
    if (g->k == 0) { /* no products: C = beta C, which callers only ask with beta 0 or 1 */
        if (g->bias || g->C_in || (g->beta != 0.0f && g->beta != 1.0f))
            FATAL("cuda_gemm: k = 0 with a bias or beta %g: the caller fills C itself", g->beta);
        if (g->beta == 1.0f) return;
        size_t es = dtype_bytes(g->c_dt);
        for (int b = 0; b < g->batch; b++)
            cudaCheck(cudaMemset2DAsync((char *)g->C + (size_t)(b * g->stride_c) * es,
                                        (size_t)g->ldc * es, 0, (size_t)g->m * es, (size_t)g->n,
                                        s->stream));
        return;
    }
    /* cuBLASLt takes no alignment for the bias, and its fused-bias kernels
       may read it in 16-byte vectors: a bias less aligned (exit heads' and
       the UEM's, packed among the parameters) goes to cublasGemmEx */
    int bias_aligned = ((uintptr_t)g->bias & 15) == 0;
    if (!(s->use_lt && bias_aligned && gemm_lt(s, g))) gemm_ex(ctx, g);
}
