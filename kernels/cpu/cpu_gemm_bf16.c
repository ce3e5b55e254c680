/*
 * cpu_gemm_bf16.c: cpu_gemm_bf16 (cpu_gemm.h), a GEMM with bf16 operands
 * and fp32 accumulation, through oneDNN's matmul primitive.
 *
 * op(A) and op(B) are rounded to bf16 (cpu_bf16.h: round to nearest even,
 * as the CUDA backend) into packed buffers of this thread, keeping their
 * stored layout (a transpose is a pair of strides in the memory
 * descriptor); the matmul multiplies them, accumulates in fp32 and writes
 * C in fp32, alpha as its output scale and beta as a sum post-op. The
 * primitives (one JIT kernel per problem) are kept in cpu_dnnl.h's plan
 * table, so a layer that runs every step builds its kernel once.
 */
#include <omp.h>
#include <string.h>

#include "cpu_bf16.h"
#include "cpu_dnnl.h"
#include "cpu_gemm.h"

/* ---- the problem and its memory descriptors ----------------------------------------- */

typedef struct {
    int ta, tb;
    int64_t M, N, K, ldc;
    float alpha, beta;
} Problem;

/* op(A)[M,K] over the packed stored A ([M,K], or [K,M] when transposed);
   op(B)[K,N] likewise; C [M,N] with row stride ldc */
static void descs(const Problem *p, dnnl_memory_desc_t *a, dnnl_memory_desc_t *b, dnnl_memory_desc_t *c)
{
    dnnl_dims_t ad = {p->M, p->K}, as = {p->ta ? 1 : p->K, p->ta ? p->M : 1};
    dnnl_dims_t bd = {p->K, p->N}, bs = {p->tb ? 1 : p->N, p->tb ? p->K : 1};
    dnnl_dims_t cd = {p->M, p->N}, cs = {p->ldc, 1};
    DNNL_OK(dnnl_memory_desc_init_by_strides(a, 2, ad, dnnl_bf16, as), "the A descriptor");
    DNNL_OK(dnnl_memory_desc_init_by_strides(b, 2, bd, dnnl_bf16, bs), "the B descriptor");
    DNNL_OK(dnnl_memory_desc_init_by_strides(c, 2, cd, dnnl_f32, cs), "the C descriptor");
}

/* a plan: the matmul primitive of one problem */
static void *build(const void *key)
{
    const Problem *p = key;
    dnnl_memory_desc_t a, b, c;
    descs(p, &a, &b, &c);
    dnnl_matmul_desc_t md;
    DNNL_OK(dnnl_matmul_desc_init(&md, &a, &b, NULL, &c), "dnnl_matmul_desc_init");
    dnnl_primitive_attr_t attr;
    DNNL_OK(dnnl_primitive_attr_create(&attr), "dnnl_primitive_attr_create");
    if (p->alpha != 1.0f) DNNL_OK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &p->alpha), "alpha");
    dnnl_post_ops_t po = NULL;
    if (p->beta != 0.0f) {
        DNNL_OK(dnnl_post_ops_create(&po), "dnnl_post_ops_create");
        DNNL_OK(dnnl_post_ops_append_sum(po, p->beta), "beta");
        DNNL_OK(dnnl_primitive_attr_set_post_ops(attr, po), "beta");
    }
    dnnl_primitive_desc_t pd;
    DNNL_OK(dnnl_primitive_desc_create(&pd, &md, attr, cpu_dnnl_engine(), NULL), "the matmul descriptor");
    dnnl_primitive_t prim;
    DNNL_OK(dnnl_primitive_create(&prim, pd), "the matmul primitive");
    dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return prim;
}

void cpu_gemm_bf16(GemmTrans ta, GemmTrans tb, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                   int64_t ldc)
{
    CHECK(!omp_in_parallel(), "cpu_gemm_bf16: called inside an OpenMP parallel region");
    if (M <= 0 || N <= 0 || K <= 0) {  /* no products: cpu_sgemm_with's C = beta C */
        cpu_sgemm_with(GEMM_ONEDNN, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    // A is stored (M,K) or, transposed, (K,M); B is stored (K,N) or (N,K)
    int64_t ar = ta == GEMM_T ? K : M, ac = ta == GEMM_T ? M : K;
    int64_t br = tb == GEMM_T ? N : K, bc = tb == GEMM_T ? K : N;
    size_t a_n = (size_t)((ar * ac + 31) & ~(int64_t)31);
    uint16_t *a16 = cpu_dnnl_scratch((a_n + (size_t)(br * bc)) * sizeof(uint16_t)), *b16 = a16 + a_n;
    cpu_bf16_pack(a16, A, ar, ac, lda);
    cpu_bf16_pack(b16, B, br, bc, ldb);
    Problem p;
    memset(&p, 0, sizeof p);  /* the key is compared bytewise */
    p.ta = ta == GEMM_T, p.tb = tb == GEMM_T, p.M = M, p.N = N, p.K = K, p.ldc = ldc;
    p.alpha = alpha, p.beta = beta;
    int keep;
    dnnl_primitive_t prim = cpu_dnnl_plan(&p, sizeof p, build, &keep);
    dnnl_memory_desc_t ad, bd, cd;
    descs(&p, &ad, &bd, &cd);
    dnnl_memory_t am = cpu_dnnl_memory(&ad, a16), bm = cpu_dnnl_memory(&bd, b16), cm = cpu_dnnl_memory(&cd, C);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    cpu_dnnl_run(prim, args, 3, NULL, NULL);
    dnnl_memory_destroy(am), dnnl_memory_destroy(bm), dnnl_memory_destroy(cm);
    if (!keep) dnnl_primitive_destroy(prim);
}
