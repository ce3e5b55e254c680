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
    p->packed_bytes = (dnnl_memory_desc_get_size(&p->packed_w) + 63) & ~(size_t)63;
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

/* one operand of a primitive: its argument, descriptor and data */
typedef struct {
    int arg;
    const dnnl_memory_desc_t *md;
    void *data;
} Operand;

/* executes prim on this thread's stream; a scratchpad of no bytes is left out */
static void run(dnnl_primitive_t prim, const Operand *op, int n)
{
    dnnl_memory_t mem[4];
    dnnl_exec_arg_t args[4];
    int used = 0;
    for (int i = 0; i < n; i++) {
        if (dnnl_memory_desc_get_size(op[i].md) == 0) continue;
        DNNL_OK(dnnl_memory_create(&mem[used], op[i].md, cpu_dnnl_engine(), op[i].data), "a matmul memory");
        args[used] = (dnnl_exec_arg_t){op[i].arg, mem[used]};
        used++;
    }
    DNNL_OK(dnnl_primitive_execute(prim, cpu_dnnl_stream(), used, args), "dnnl_primitive_execute");
    DNNL_OK(dnnl_stream_wait(cpu_dnnl_stream()), "dnnl_stream_wait");
    for (int i = 0; i < used; i++) dnnl_memory_destroy(mem[i]);
}

int cpu_matmul_begin(CpuMatmul *mm, const float *w, int64_t rows, int64_t N, int64_t K)
{
    GemmLibrary lib = cpu_gemm_library_for(cpu_gemm_threads_here(), cpu_gemm_library(), cpu_gemm_library_one_thread());
    if (lib != GEMM_ONEDNN || rows <= 0 || N <= 0 || K <= 0) return 0;
    Shape s = {rows, N, K};
    int keep;
    CpuMatmulPlan *p = cpu_dnnl_plan(&s, sizeof s, build, &keep);
    if (!keep) {   /* a full table: cpu_sgemm, not a primitive built for each call (milliseconds of JIT) */
        drop(p);
        return 0;
    }
    char *buf = cpu_dnnl_scratch(p->packed_bytes + p->scratch_bytes);
    mm->plan = p, mm->packed = buf, mm->scratch = buf + p->packed_bytes;
    Operand op[3] = {{DNNL_ARG_FROM, &p->plain_w, (void *)w},
                     {DNNL_ARG_TO, &p->packed_w, mm->packed},
                     {DNNL_ARG_SCRATCHPAD, &p->reorder_pad, mm->scratch}};
    run(p->reorder, op, 3);
    return 1;
}

void cpu_matmul_block(const CpuMatmul *mm, const float *in, float *d)
{
    const CpuMatmulPlan *p = mm->plan;
    Operand op[4] = {{DNNL_ARG_SRC, &p->src, (void *)in},
                     {DNNL_ARG_WEIGHTS, &p->packed_w, mm->packed},
                     {DNNL_ARG_DST, &p->dst, d},
                     {DNNL_ARG_SCRATCHPAD, &p->matmul_pad, mm->scratch}};
    run(p->matmul, op, 4);
}
