/*
 * emu_rules.c: the CUDA backend's dtype rules, for the emulator (emu.h).
 *
 * A HAND COPY. The rules live in kernels/cuda as host-side FATALs inside
 * each op (cuda_act_dtype, cuda_same_dtype, cuda_need_f32 in
 * cuda_common.h; cuda_as_dtype in cuda_gemm.cu), next to device code that
 * a CUDA=0 build cannot compile, so they cannot be shared without moving
 * them out of kernels/cuda into a plain C header. Until then: when an op
 * of kernels/cuda/cuda_*.cu changes what it accepts, change it here too.
 * A violation aborts naming the op, as the GPU's FATAL would.
 *
 * Arguments are numbered as in kernels/op_table.h, 0 being the context:
 * linear_forward(ctx, out=1, in=2, w=3, b=4).
 */
#include <string.h>

#include "tests/cuda_emu/emu.h"

static int is_op(const EmuCall *c, const char *name) { return !strcmp(c->op, name); }

static void need(const EmuCall *c, int ok, const char *what)
{
    if (!ok) emu_die("CUDA dtype rule: %s: %s", c->op, what);
}

#define PRES(i) (tensor_present(a[i]))
#define DT(i) (a[i].dtype)
/* cuda_act_dtype */
#define ACT(i) need(c, !PRES(i) || DT(i) == DT_F32 || DT(i) == DT_BF16, "activation must be F32 or BF16")
/* cuda_need_f32 */
#define F32(i) need(c, !PRES(i) || DT(i) == DT_F32, "must be F32")
/* cuda_same_dtype */
#define SAME(i, j) need(c, !PRES(i) || !PRES(j) || DT(i) == DT(j), "tensors must share a dtype")
/* cuda_as_dtype: an operand joins a GEMM of dtype `want` as it is, or F32 rounded to BF16 */
#define AS(i, want) need(c, !PRES(i) || DT(i) == (want) || (DT(i) == DT_F32 && (want) == DT_BF16), \
                         "operand cannot join the GEMM's dtype (cuda_as_dtype)")

/* a convolution's GEMM dtype (cuda_conv2d.cu): F32 when input and output are F32 */
static DType conv_dtype(const Tensor *a, int in, int out)
{
    return DT(in) == DT_F32 && DT(out) == DT_F32 ? DT_F32 : DT_BF16;
}

void emu_check(const EmuCall *c, const Tensor *a, int n)
{
    /* every tensor an activation (F32 or BF16) but the I64 ids and labels,
       and rows_copy's rows, which are bytes of any dtype */
    for (int i = 1; i < n; i++) {
        if (!PRES(i)) continue;
        int ids = (is_op(c, "embedding_forward") && i == 2) || (is_op(c, "embedding_backward") && i == 3) ||
                  (is_op(c, "cross_entropy_forward") && i == 2) || (is_op(c, "cross_entropy_backward") && i == 3) ||
                  (is_op(c, "rows_copy") && (i == 2 || i == 4));
        if (ids) need(c, DT(i) == DT_I64, "ids must be I64");
        else if (!is_op(c, "rows_copy")) ACT(i);
    }
    if (is_op(c, "linear_forward") || is_op(c, "linear_residual_forward")) {   /* cuda_linear.cu */
        SAME(1, 2);
        AS(3, DT(2));
        AS(4, DT(2));
        if (is_op(c, "linear_residual_forward")) SAME(5, 1);
    } else if (is_op(c, "linear_backward") || is_op(c, "linear_backward_set")) {   /* din dw db dout in w */
        SAME(4, 5);
        SAME(1, 5);
        F32(2), F32(3);
        if (PRES(1)) AS(6, DT(5));
    } else if (is_op(c, "linear_gelu_backward") || is_op(c, "linear_gelu_backward_set")) {
        /* cuda_linear_gelu.cu: linear_backward's rules with dpre as dout */
        SAME(4, 6);
        SAME(1, 6);
        F32(2), F32(3);
        if (PRES(1)) AS(7, DT(6));
    } else if (is_op(c, "rows_copy")) {
        SAME(1, 3);
    } else if (is_op(c, "row_mean")) {   /* cuda_row_scores.cu */
        F32(1), F32(2);
    } else if (is_op(c, "row_cosine_distance")) {
        F32(1);
    } else if (is_op(c, "layernorm_forward")) {
        F32(2), F32(3), F32(5), F32(6);
    } else if (is_op(c, "layernorm_backward")) {
        F32(2), F32(3), F32(6), F32(7), F32(8);
    } else if (is_op(c, "attention_forward")) {
        SAME(1, 3);
        F32(2);
    } else if (is_op(c, "attention_backward") || is_op(c, "attention_backward_set")) {
        SAME(4, 3);
        SAME(1, 4);
        F32(2), F32(5);
    } else if (is_op(c, "add_bcast_forward") || is_op(c, "add_per_image_forward")) {
        F32(3);
    } else if (is_op(c, "add_bcast_backward") || is_op(c, "add_per_image_backward")) {
        F32(2);
    } else if (is_op(c, "conv2d_forward")) {
        F32(4);
        AS(3, conv_dtype(a, 2, 1));
    } else if (is_op(c, "conv2d_backward")) {
        F32(2), F32(3);
        if (PRES(1)) AS(6, conv_dtype(a, 5, 4));
    } else if (is_op(c, "timestep_embedding_forward")) {
        F32(2);
    } else if (is_op(c, "timestep_embedding_backward")) {
        F32(1), F32(3);
    } else if (is_op(c, "embedding_backward") || is_op(c, "cross_entropy_backward")) {
        F32(1);
    } else if (is_op(c, "batchnorm_forward")) {
        F32(3), F32(4), F32(5), F32(6);
    } else if (is_op(c, "batchnorm_backward")) {
        F32(2), F32(3), F32(6), F32(7), F32(8);
    } else if (is_op(c, "group_norm_forward")) {
        F32(2), F32(3), F32(5), F32(6);
    } else if (is_op(c, "group_norm_backward")) {
        F32(2), F32(3), F32(6), F32(7), F32(8);
    }
}

/* 1 when the CUDA backend reads F32 argument i of this call rounded to BF16:
   the weights of a BF16 GEMM (cuda_as_dtype), a BF16 convolution's input
   (im2col in BF16) and F32 dout (rounded for the GEMMs of din and dw; db
   sums it unrounded, emu.c splits that call) */
int emu_rounds_to_bf16(const EmuCall *c, int i, const Tensor *a)
{
    if (is_op(c, "linear_forward") || is_op(c, "linear_residual_forward"))
        return (i == 3 || i == 4) && DT(2) == DT_BF16;
    if (is_op(c, "linear_backward") || is_op(c, "linear_backward_set")) return i == 6 && DT(5) == DT_BF16;
    if (is_op(c, "linear_gelu_backward") || is_op(c, "linear_gelu_backward_set")) return i == 7 && DT(6) == DT_BF16;
    if (is_op(c, "conv2d_forward")) return (i == 2 || i == 3) && conv_dtype(a, 2, 1) == DT_BF16;
    if (is_op(c, "conv2d_backward"))
        return (i == 4 || i == 5 || i == 6) && (PRES(1) || PRES(2)) && conv_dtype(a, 5, 4) == DT_BF16;
    return 0;
}
