/*
 * cpu_matmul.c: blocks of in @ w^T through oneDNN's matmul primitive on
 * weights packed once per call (cpu_matmul.h).
 *
 * A plan per (rows, N, K), kept in cpu_dnnl.h's table: the matmul (src
 * [rows,K] row-major, weights [K,N] in the layout the primitive chooses,
 * dst [rows,N] row-major, a user scratchpad) and the reorder from w [N,K]
 * (that is, [K,N] with strides 1 and K) into that layout. A call carves
 * the packed weights and the scratchpad from this thread's oneDNN scratch,
 * so primitives run on several threads at once without sharing memory.
 */
#include <stdlib.h>

#include "cpu_dnnl.h"
#include "cpu_gemm.h"
#include "cpu_matmul.h"

struct CpuMatmulPlan {
    dnnl_primitive_t matmul, reorder;
    dnnl_memory_desc_t src, dst, plain_w, packed_w, matmul_pad, reorder_pad;
    size_t packed_bytes, scratch_bytes;   /* the scratchpad: the larger of the two pads */
};

typedef struct {
    int64_t rows, N, K;
} Shape;

static size_t larger(size_t a, size_t b) { return a > b ? a : b; }

static void *build(const void *key)
{
    const Shape *s = key;
    CpuMatmulPlan *p = xcalloc(1, sizeof *p);
    dnnl_dims_t src = {s->rows, s->K}, dst = {s->rows, s->N}, w = {s->K, s->N}, w_strides = {1, s->K};
    dnnl_memory_desc_t any_w;
    DNNL_OK(dnnl_memory_desc_init_by_tag(&p->src, 2, src, dnnl_f32, dnnl_ab), "the matmul's src");
    DNNL_OK(dnnl_memory_desc_init_by_tag(&p->dst, 2, dst, dnnl_f32, dnnl_ab), "the matmul's dst");
    DNNL_OK(dnnl_memory_desc_init_by_strides(&p->plain_w, 2, w, dnnl_f32, w_strides), "w [N,K]");
    DNNL_OK(dnnl_memory_desc_init_by_tag(&any_w, 2, w, dnnl_f32, dnnl_format_tag_any), "the packed w");
    dnnl_matmul_desc_t md;
    DNNL_OK(dnnl_matmul_desc_init(&md, &p->src, &any_w, NULL, &p->dst), "dnnl_matmul_desc_init");
    dnnl_primitive_attr_t attr;
    DNNL_OK(dnnl_primitive_attr_create(&attr), "dnnl_primitive_attr_create");
    DNNL_OK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "the scratchpad mode");
    dnnl_primitive_desc_t pd, rpd;
    DNNL_OK(dnnl_primitive_desc_create(&pd, &md, attr, cpu_dnnl_engine(), NULL), "the matmul descriptor");
    p->packed_w = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    p->matmul_pad = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    DNNL_OK(dnnl_primitive_create(&p->matmul, pd), "the matmul primitive");
    DNNL_OK(dnnl_reorder_primitive_desc_create(&rpd, &p->plain_w, cpu_dnnl_engine(), &p->packed_w,
                                               cpu_dnnl_engine(), attr),
            "the weights' reorder descriptor");
    p->reorder_pad = *dnnl_primitive_desc_query_md(rpd, dnnl_query_scratchpad_md, 0);
    DNNL_OK(dnnl_primitive_create(&p->reorder, rpd), "the weights' reorder");
    p->packed_bytes = cpu_dnnl_up64(dnnl_memory_desc_get_size(&p->packed_w));
    p->scratch_bytes = larger(dnnl_memory_desc_get_size(&p->matmul_pad), dnnl_memory_desc_get_size(&p->reorder_pad));
    dnnl_primitive_desc_destroy(rpd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    return p;
}

static void drop(CpuMatmulPlan *p)
{
    dnnl_primitive_destroy(p->matmul);
    dnnl_primitive_destroy(p->reorder);
    free(p);
}

/* prim on args[0..n), whose memory objects are destroyed after it, with
   the scratchpad `pad` at scratch */
static void run(dnnl_primitive_t prim, dnnl_exec_arg_t *args, int n, const dnnl_memory_desc_t *pad, void *scratch)
{
    cpu_dnnl_run(prim, args, n, pad, scratch);
    for (int i = 0; i < n; i++) dnnl_memory_destroy(args[i].memory);
}

int cpu_matmul_begin(CpuMatmul *mm, const float *w, int64_t rows, int64_t N, int64_t K)
{
    /* once cpu_dnnl's table is full, every new shape would be a plan built
       (milliseconds of JIT) for one call: the path stays off from then on */
    static int table_full;
    GemmLibrary lib = cpu_gemm_library_for(cpu_gemm_threads_here(), cpu_gemm_library(), cpu_gemm_library_one_thread());
    if (lib != GEMM_ONEDNN || rows <= 0 || N <= 0 || K <= 0 || __atomic_load_n(&table_full, __ATOMIC_RELAXED))
        return 0;
    Shape s = {rows, N, K};
    int keep;
    CpuMatmulPlan *p = cpu_dnnl_plan(&s, sizeof s, build, &keep);
    if (!keep) {
        __atomic_store_n(&table_full, 1, __ATOMIC_RELAXED);
        drop(p);
        return 0;
    }
    char *buf = cpu_dnnl_scratch(p->packed_bytes + p->scratch_bytes);
    mm->plan = p, mm->packed = buf, mm->scratch = buf + p->packed_bytes;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, cpu_dnnl_memory(&p->plain_w, (void *)w)},
                               {DNNL_ARG_TO, cpu_dnnl_memory(&p->packed_w, mm->packed)}};
    run(p->reorder, args, 2, &p->reorder_pad, mm->scratch);
    return 1;
}

void cpu_matmul_block(const CpuMatmul *mm, const float *in, float *d)
{
    const CpuMatmulPlan *p = mm->plan;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, cpu_dnnl_memory(&p->src, (void *)in)},
                               {DNNL_ARG_WEIGHTS, cpu_dnnl_memory(&p->packed_w, mm->packed)},
                               {DNNL_ARG_DST, cpu_dnnl_memory(&p->dst, d)}};
    run(p->matmul, args, 3, &p->matmul_pad, mm->scratch);
}
