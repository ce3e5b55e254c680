/*
 * conv2d_relu.c: out = relu(conv(in, w) + b) on the CPU, the FID
 * Inception's BasicConv2d (its BatchNorm folded into w and b), through
 * oneDNN's direct convolution (op_conv2d_relu_forward in kernels/ops.h).
 *
 * oneDNN's fast fp32 convolutions (brgconv, avx512_core and newer) read
 * and write channels-last (NHWC) activations: on NCHW in and out it falls
 * back to im2col + GEMM, what conv2d.c does (measured on Inception's 3x3
 * and 1x7 layers, Zen 5: 1.3-4x slower). So each call, on its images:
 *   in [B,Ci,H,W] (NCHW)  -> reorder -> src [B,H,W,Ci] (this thread's scratch)
 *   w  [Co,Ci,kh,kw]      -> reorder -> the primitive's blocked weights
 *   conv + bias + ReLU (one primitive, the ReLU a post-op) -> dst [B,Ho,Wo,Co]
 *   dst                   -> reorder -> out [B,Co,Ho,Wo] (NCHW)
 * The weights are reordered every call (a few percent of the work), so a
 * caller may change them between calls. Primitives are built once per
 * shape (cpu_dnnl.h) and run with user-managed scratchpads, so teams of
 * one thread (model/inception.c) may run them at once; outside a parallel
 * region they use every thread. The ReLU is oneDNN's: NaN propagates
 * (op_relu_forward maps it to 0).
 */
#include <string.h>

#include "cpu_dnnl.h"
#include "cpu_ops.h"

typedef struct {
    int64_t B, Ci, H, W, Co, kh, kw, Ho, Wo;
    int64_t sh, sw, ph, pw, bias;
} ConvKey;

typedef struct {
    dnnl_primitive_t conv, to_nhwc, to_nchw, to_wfmt;
    dnnl_memory_desc_t in, src, dst, out, w, wfmt, b, pad[4];
    size_t src_bytes, dst_bytes, w_bytes, pad_bytes[4];
} ConvPlan;

static dnnl_primitive_attr_t user_scratchpad_attr(void)
{
    dnnl_primitive_attr_t attr;
    DNNL_OK(dnnl_primitive_attr_create(&attr), "dnnl_primitive_attr_create");
    DNNL_OK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    return attr;
}

/* a primitive from pd, its scratchpad's descriptor into *pad */
static dnnl_primitive_t make(dnnl_primitive_desc_t pd, dnnl_memory_desc_t *pad, size_t *pad_bytes)
{
    *pad = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    *pad_bytes = dnnl_memory_desc_get_size(pad);
    dnnl_primitive_t p;
    DNNL_OK(dnnl_primitive_create(&p, pd), "dnnl_primitive_create");
    dnnl_primitive_desc_destroy(pd);
    return p;
}

static dnnl_primitive_t reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                dnnl_memory_desc_t *pad, size_t *pad_bytes)
{
    dnnl_engine_t e = cpu_dnnl_engine();
    dnnl_primitive_attr_t attr = user_scratchpad_attr();
    dnnl_primitive_desc_t pd;
    DNNL_OK(dnnl_reorder_primitive_desc_create(&pd, from, e, to, e, attr), "a reorder descriptor");
    dnnl_primitive_attr_destroy(attr);
    return make(pd, pad, pad_bytes);
}

static void *build(const void *key)
{
    const ConvKey *k = key;
    ConvPlan *p = xcalloc(1, sizeof *p);
    dnnl_dims_t sd = {k->B, k->Ci, k->H, k->W}, dd = {k->B, k->Co, k->Ho, k->Wo};
    dnnl_dims_t wd = {k->Co, k->Ci, k->kh, k->kw}, bd = {k->Co};
    DNNL_OK(dnnl_memory_desc_init_by_tag(&p->in, 4, sd, dnnl_f32, dnnl_nchw), "in");
    DNNL_OK(dnnl_memory_desc_init_by_tag(&p->src, 4, sd, dnnl_f32, dnnl_nhwc), "src");
    DNNL_OK(dnnl_memory_desc_init_by_tag(&p->dst, 4, dd, dnnl_f32, dnnl_nhwc), "dst");
    DNNL_OK(dnnl_memory_desc_init_by_tag(&p->out, 4, dd, dnnl_f32, dnnl_nchw), "out");
    DNNL_OK(dnnl_memory_desc_init_by_tag(&p->w, 4, wd, dnnl_f32, dnnl_oihw), "w");
    DNNL_OK(dnnl_memory_desc_init_by_tag(&p->b, 1, bd, dnnl_f32, dnnl_a), "b");
    dnnl_memory_desc_t wany;
    DNNL_OK(dnnl_memory_desc_init_by_tag(&wany, 4, wd, dnnl_f32, dnnl_format_tag_any), "w any");
    dnnl_dims_t strides = {k->sh, k->sw}, pad = {k->ph, k->pw};
    dnnl_convolution_desc_t cd;
    DNNL_OK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &p->src,
                                               &wany, k->bias ? &p->b : NULL, &p->dst, strides, pad, pad),
            "the convolution descriptor");
    dnnl_primitive_attr_t attr = user_scratchpad_attr();
    dnnl_post_ops_t po;
    DNNL_OK(dnnl_post_ops_create(&po), "dnnl_post_ops_create");
    DNNL_OK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f), "the ReLU post-op");
    DNNL_OK(dnnl_primitive_attr_set_post_ops(attr, po), "the ReLU post-op");
    dnnl_primitive_desc_t pd;
    DNNL_OK(dnnl_primitive_desc_create(&pd, &cd, attr, cpu_dnnl_engine(), NULL), "the convolution");
    p->wfmt = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    p->conv = make(pd, &p->pad[0], &p->pad_bytes[0]);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    p->to_nhwc = reorder(&p->in, &p->src, &p->pad[1], &p->pad_bytes[1]);
    p->to_wfmt = reorder(&p->w, &p->wfmt, &p->pad[2], &p->pad_bytes[2]);
    p->to_nchw = reorder(&p->dst, &p->out, &p->pad[3], &p->pad_bytes[3]);
    p->src_bytes = dnnl_memory_desc_get_size(&p->src);
    p->dst_bytes = dnnl_memory_desc_get_size(&p->dst);
    p->w_bytes = dnnl_memory_desc_get_size(&p->wfmt);
    return p;
}

static void drop(ConvPlan *p)
{
    dnnl_primitive_destroy(p->conv), dnnl_primitive_destroy(p->to_nhwc);
    dnnl_primitive_destroy(p->to_wfmt), dnnl_primitive_destroy(p->to_nchw);
    free(p);
}

void cpu_conv2d_relu_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b, Conv2dParams cp)
{
    // in is (B,Ci,H,W), w is (Co,Ci,kh,kw), b is (Co) or none, out is (B,Co,Ho,Wo)
    (void)ctx;
    ConvKey k;
    memset(&k, 0, sizeof k);  /* the key is compared bytewise */
    k.B = in.shape[0], k.Ci = in.shape[1], k.H = in.shape[2], k.W = in.shape[3];
    k.Co = w.shape[0], k.kh = w.shape[2], k.kw = w.shape[3], k.Ho = out.shape[2], k.Wo = out.shape[3];
    k.sh = cp.stride_h, k.sw = cp.stride_w, k.ph = cp.pad_h, k.pw = cp.pad_w, k.bias = tensor_present(b);
    if (k.B == 0 || k.Co == 0 || k.Ho == 0 || k.Wo == 0) return;
    int keep;
    ConvPlan *p = cpu_dnnl_plan(&k, sizeof k, build, &keep);
    size_t pad_max = 0;
    for (int i = 0; i < 4; i++) pad_max = p->pad_bytes[i] > pad_max ? p->pad_bytes[i] : pad_max;
    char *s = cpu_dnnl_scratch(cpu_dnnl_up64(p->src_bytes) + cpu_dnnl_up64(p->dst_bytes) + cpu_dnnl_up64(p->w_bytes) + cpu_dnnl_up64(pad_max));
    char *src = s, *dst = src + cpu_dnnl_up64(p->src_bytes), *wf = dst + cpu_dnnl_up64(p->dst_bytes), *pad = wf + cpu_dnnl_up64(p->w_bytes);
    dnnl_memory_t m_in = cpu_dnnl_memory(&p->in, in.data), m_src = cpu_dnnl_memory(&p->src, src), m_dst = cpu_dnnl_memory(&p->dst, dst);
    dnnl_memory_t m_out = cpu_dnnl_memory(&p->out, out.data), m_w = cpu_dnnl_memory(&p->w, w.data), m_wf = cpu_dnnl_memory(&p->wfmt, wf);
    dnnl_memory_t m_b = k.bias ? cpu_dnnl_memory(&p->b, b.data) : NULL;
    dnnl_exec_arg_t a[5];
    a[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, m_in}, a[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, m_src};
    cpu_dnnl_run(p->to_nhwc, a, 2, &p->pad[1], pad);
    a[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, m_w}, a[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, m_wf};
    cpu_dnnl_run(p->to_wfmt, a, 2, &p->pad[2], pad);
    int n = 0;
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, m_src};
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, m_wf};
    if (m_b) a[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, m_b};
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, m_dst};
    cpu_dnnl_run(p->conv, a, n, &p->pad[0], pad);
    a[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, m_dst}, a[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, m_out};
    cpu_dnnl_run(p->to_nchw, a, 2, &p->pad[3], pad);
    dnnl_memory_t ms[] = {m_in, m_src, m_dst, m_out, m_w, m_wf, m_b};
    for (int i = 0; i < 7; i++)
        if (ms[i]) dnnl_memory_destroy(ms[i]);
    if (!keep) drop(p);
}
