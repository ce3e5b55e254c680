/*
 * cpu_gemm_bf16.c: cpu_gemm_bf16 (cpu_gemm.h), a GEMM with bf16 operands
 * and fp32 accumulation, through oneDNN's matmul primitive.
 *
 * op(A) and op(B) are rounded to bf16 (cpu_bf16.h: round to nearest even,
 * as the CUDA backend) into packed buffers of this thread, keeping their
 * stored layout (a transpose is a pair of strides in the memory
 * descriptor); the matmul multiplies them, accumulates in fp32 and writes
 * C in fp32, alpha as its output scale and beta as a sum post-op. The
 * primitives (one JIT kernel per problem) are kept in a small table keyed
 * by the problem, so a layer that runs every step builds its kernel once;
 * past the table's size a primitive is built and dropped per call.
 */
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>

#include "../errors.h"
#include "cpu_bf16.h"
#include "cpu_gemm.h"

#define DNNL_OK(call, what)                                                                  \
    do {                                                                                     \
        dnnl_status_t st_ = (call);                                                          \
        CHECK(st_ == dnnl_success, "bf16 GEMM: %s failed with oneDNN status %d", what, (int)st_); \
    } while (0)

/* ---- one engine and stream per process -------------------------------------------- */

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void engine_init(void)
{
    DNNL_OK(dnnl_engine_create(&engine, dnnl_cpu, 0), "dnnl_engine_create");
    DNNL_OK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags), "dnnl_stream_create");
}

/* ---- the problem and its memory descriptors ----------------------------------------- */

typedef struct {
    int ta, tb;
    int64_t M, N, K, ldc;
    float alpha, beta;
} Problem;

static int same_problem(const Problem *a, const Problem *b)
{
    return a->ta == b->ta && a->tb == b->tb && a->M == b->M && a->N == b->N && a->K == b->K &&
           a->ldc == b->ldc && a->alpha == b->alpha && a->beta == b->beta;
}

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

static dnnl_primitive_t build(const Problem *p)
{
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
    DNNL_OK(dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL), "the matmul primitive descriptor");
    dnnl_primitive_t prim;
    DNNL_OK(dnnl_primitive_create(&prim, pd), "the matmul primitive");
    dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return prim;
}

/* ---- the table of built primitives ------------------------------------------------- */

#define TABLE_SIZE 128

static struct { Problem p; dnnl_primitive_t prim; } table[TABLE_SIZE];
static int table_used;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

/* the primitive of p; *keep 0 when the caller must destroy it after use */
static dnnl_primitive_t primitive_for(const Problem *p, int *keep)
{
    pthread_mutex_lock(&table_lock);
    dnnl_primitive_t prim = NULL;
    for (int i = 0; i < table_used && !prim; i++)
        if (same_problem(&table[i].p, p)) prim = table[i].prim;
    *keep = 1;
    if (!prim) {
        prim = build(p);
        if (table_used < TABLE_SIZE) table[table_used].p = *p, table[table_used++].prim = prim;
        else *keep = 0;
    }
    pthread_mutex_unlock(&table_lock);
    return prim;
}

/* ---- this thread's packed operands -------------------------------------------------- */

static _Thread_local uint16_t *packed[2];
static _Thread_local size_t packed_n[2];

static uint16_t *packed_buffer(int which, size_t n)
{
    if (n > packed_n[which]) {
        free(packed[which]);
        packed[which] = xmalloc(n * sizeof(uint16_t));
        packed_n[which] = n;
    }
    return packed[which];
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
    pthread_once(&engine_once, engine_init);
    // A is stored (M,K) or, transposed, (K,M); B is stored (K,N) or (N,K)
    int64_t ar = ta == GEMM_T ? K : M, ac = ta == GEMM_T ? M : K;
    int64_t br = tb == GEMM_T ? N : K, bc = tb == GEMM_T ? K : N;
    uint16_t *a16 = packed_buffer(0, (size_t)(ar * ac)), *b16 = packed_buffer(1, (size_t)(br * bc));
    cpu_bf16_pack(a16, A, ar, ac, lda);
    cpu_bf16_pack(b16, B, br, bc, ldb);
    Problem p = {ta == GEMM_T, tb == GEMM_T, M, N, K, ldc, alpha, beta};
    int keep;
    dnnl_primitive_t prim = primitive_for(&p, &keep);
    dnnl_memory_desc_t ad, bd, cd;
    descs(&p, &ad, &bd, &cd);
    dnnl_memory_t am, bm, cm;
    DNNL_OK(dnnl_memory_create(&am, &ad, engine, a16), "the A memory");
    DNNL_OK(dnnl_memory_create(&bm, &bd, engine, b16), "the B memory");
    DNNL_OK(dnnl_memory_create(&cm, &cd, engine, C), "the C memory");
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    DNNL_OK(dnnl_primitive_execute(prim, stream, 3, args), "dnnl_primitive_execute");
    DNNL_OK(dnnl_stream_wait(stream), "dnnl_stream_wait");
    dnnl_memory_destroy(am), dnnl_memory_destroy(bm), dnnl_memory_destroy(cm);
    if (!keep) dnnl_primitive_destroy(prim);
}
