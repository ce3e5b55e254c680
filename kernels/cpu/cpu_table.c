/*
 * cpu_table.c: the CPU backend's memory functions and its op table.
 */
#include <string.h>

#include "../errors.h"
#include "../op_table.h"
#include "cpu_bf16.h"
#include "cpu_ops.h"
#include "cpu_startup.h"

static void *cpu_alloc(Ctx *ctx, size_t n)
{
    (void)ctx;
    /* 64-byte alignment for AVX loads and to keep rows off shared lines */
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0)
        FATAL("out of host memory allocating %zu bytes", n);
    return p;
}
static void cpu_free(Ctx *ctx, void *p) { (void)ctx; free(p); }
static void cpu_copy(Ctx *ctx, void *dst, const void *src, size_t n)
{
    (void)ctx;
    if (n) memmove(dst, src, n);
}
static void cpu_zero(Ctx *ctx, void *p, size_t n) { (void)ctx; if (n) memset(p, 0, n); }
static void cpu_sync(Ctx *ctx) { (void)ctx; }

int cpu_precision_supported(Precision p)
{
    return p == PRECISION_FP32 || cpu_bf16_supported(cpu_flags());
}
static void cpu_destroy(Ctx *ctx) { (void)ctx; }

const OpTable cpu_op_table = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .destroy = cpu_destroy,
    .linear_forward = cpu_linear_forward,
    .linear_backward = cpu_linear_backward,
    .linear_backward_set = cpu_linear_backward_set,
    .linear_gelu_forward = cpu_linear_gelu_forward,
    .linear_gelu_backward = cpu_linear_gelu_backward,
    .linear_gelu_backward_set = cpu_linear_gelu_backward_set,
    .linear_residual_forward = cpu_linear_residual_forward,
    .layernorm_forward = cpu_layernorm_forward,
    .layernorm_backward = cpu_layernorm_backward,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
    .attention_backward_set = cpu_attention_backward_set,
    .gelu_forward = cpu_gelu_forward,
    .gelu_backward = cpu_gelu_backward,
    .sigmoid_forward = cpu_sigmoid_forward,
    .sigmoid_backward = cpu_sigmoid_backward,
    .silu_forward = cpu_silu_forward,
    .silu_backward = cpu_silu_backward,
    .add_forward = cpu_add_forward,
    .accumulate = cpu_accumulate,
    .add_bcast_forward = cpu_add_bcast_forward,
    .add_bcast_backward = cpu_add_bcast_backward,
    .add_per_image_forward = cpu_add_per_image_forward,
    .add_per_image_backward = cpu_add_per_image_backward,
    .concat_forward = cpu_concat_forward,
    .concat_backward = cpu_concat_backward,
    .token_slice_forward = cpu_token_slice_forward,
    .token_slice_backward = cpu_token_slice_backward,
    .token_place_forward = cpu_token_place_forward,
    .token_place_backward = cpu_token_place_backward,
    .rows_copy = cpu_rows_copy,
    .row_mean = cpu_row_mean,
    .row_cosine_distance = cpu_row_cosine_distance,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward = cpu_conv2d_backward,
    .conv2d_relu_forward = cpu_conv2d_relu_forward,
    .patchify_forward = cpu_patchify_forward,
    .patchify_backward = cpu_patchify_backward,
    .unpatchify_forward = cpu_unpatchify_forward,
    .unpatchify_backward = cpu_unpatchify_backward,
    .timestep_embedding_forward = cpu_timestep_embedding_forward,
    .timestep_embedding_backward = cpu_timestep_embedding_backward,
    .embedding_forward = cpu_embedding_forward,
    .embedding_backward = cpu_embedding_backward,
    .mse_forward = cpu_mse_forward,
    .mse_backward = cpu_mse_backward,
    .uncertainty_loss_forward = cpu_uncertainty_loss_forward,
    .uncertainty_loss_backward = cpu_uncertainty_loss_backward,
    .adamw_step = cpu_adamw_step,
    .ema_update = cpu_ema_update,
    .sum_squares = cpu_sum_squares,
    .scale = cpu_scale,
    .has_nonfinite = cpu_has_nonfinite,
    .axpby = cpu_axpby,
    .randn = cpu_randn,
    .add_randn = cpu_add_randn,
    .max_pool2d_forward = cpu_max_pool2d_forward,
    .max_pool2d_backward = cpu_max_pool2d_backward,
    .avg_pool2d_forward = cpu_avg_pool2d_forward,
    .avg_pool2d_backward = cpu_avg_pool2d_backward,
    .global_avg_pool_forward = cpu_global_avg_pool_forward,
    .global_avg_pool_backward = cpu_global_avg_pool_backward,
    .token_mean_forward = cpu_token_mean_forward,
    .token_mean_backward = cpu_token_mean_backward,
    .resize_bilinear_forward = cpu_resize_bilinear_forward,
    .resize_bilinear_backward = cpu_resize_bilinear_backward,
    .batchnorm_forward = cpu_batchnorm_forward,
    .batchnorm_backward = cpu_batchnorm_backward,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
    .affine_forward = cpu_affine_forward,
    .affine_backward = cpu_affine_backward,
    .cross_entropy_forward = cpu_cross_entropy_forward,
    .cross_entropy_backward = cpu_cross_entropy_backward,
    .group_norm_forward = cpu_group_norm_forward,
    .group_norm_backward = cpu_group_norm_backward,
    .upsample_nearest_forward = cpu_upsample_nearest_forward,
    .upsample_nearest_backward = cpu_upsample_nearest_backward,
    .pad2d_forward = cpu_pad2d_forward,
    .pad2d_backward = cpu_pad2d_backward,
    .gaussian_sample_forward = cpu_gaussian_sample_forward,
    .gaussian_sample_backward = cpu_gaussian_sample_backward,
};
