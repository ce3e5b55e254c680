/*
 * op_table.h: what a backend implements (internal to kernels/).
 *
 * kernels/ops.c checks shapes and dtypes, then calls the context's table.
 * A backend fills every entry it supports; a NULL entry makes the op abort
 * with "op X is not implemented on backend Y". Signatures mirror ops.h.
 * The fused and overwriting forms, each marked "optional" on its line, may
 * be NULL: ops.c then composes them from the plain ops (zeroing a gradient
 * first); the generated op list (op_coverage.h) carries the mark.
 */
#ifndef DEEDIFF_OP_TABLE_H
#define DEEDIFF_OP_TABLE_H

#include "ops.h"

struct OpTable {
    const char *name;
    /* memory */
    void *(*alloc)(Ctx *, size_t);
    void (*free)(Ctx *, void *);
    void (*upload)(Ctx *, void *, const void *, size_t);
    void (*download)(Ctx *, void *, const void *, size_t);
    void (*copy)(Ctx *, void *, const void *, size_t);
    void (*zero)(Ctx *, void *, size_t);
    void (*sync)(Ctx *);
    void (*destroy)(Ctx *);
    /* ops */
    void (*linear_forward)(Ctx *, Tensor, Tensor, Tensor, Tensor);
    void (*linear_backward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor);
    /* fused and overwriting forms */
    void (*linear_backward_set)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor);  /* optional */
    void (*linear_gelu_forward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor);  /* optional */
    void (*linear_gelu_backward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor);  /* optional */
    void (*linear_gelu_backward_set)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor);  /* optional */
    void (*linear_residual_forward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor);  /* optional */
    void (*layernorm_forward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, float);
    void (*layernorm_backward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor);
    void (*attention_forward)(Ctx *, Tensor, Tensor, Tensor, int);
    void (*attention_backward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, int);
    void (*attention_backward_set)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, int);  /* optional */
    void (*gelu_forward)(Ctx *, Tensor, Tensor);
    void (*gelu_backward)(Ctx *, Tensor, Tensor, Tensor);
    void (*silu_forward)(Ctx *, Tensor, Tensor);
    void (*silu_backward)(Ctx *, Tensor, Tensor, Tensor);
    void (*sigmoid_forward)(Ctx *, Tensor, Tensor);
    void (*sigmoid_backward)(Ctx *, Tensor, Tensor, Tensor);
    void (*add_forward)(Ctx *, Tensor, Tensor, Tensor);
    void (*accumulate)(Ctx *, Tensor, Tensor);
    void (*add_bcast_forward)(Ctx *, Tensor, Tensor, Tensor);
    void (*add_bcast_backward)(Ctx *, Tensor, Tensor, Tensor);
    void (*add_per_image_forward)(Ctx *, Tensor, Tensor, Tensor);
    void (*add_per_image_backward)(Ctx *, Tensor, Tensor, Tensor);
    void (*concat_forward)(Ctx *, Tensor, Tensor, Tensor);
    void (*concat_backward)(Ctx *, Tensor, Tensor, Tensor);
    void (*token_slice_forward)(Ctx *, Tensor, Tensor, int);
    void (*token_slice_backward)(Ctx *, Tensor, Tensor, int);
    void (*token_place_forward)(Ctx *, Tensor, Tensor, int);
    void (*token_place_backward)(Ctx *, Tensor, Tensor, int);
    void (*rows_copy)(Ctx *, Tensor, Tensor, Tensor, Tensor);
    void (*row_mean)(Ctx *, Tensor, Tensor);
    void (*row_cosine_distance)(Ctx *, Tensor, Tensor, Tensor);
    void (*conv2d_forward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Conv2dParams);
    void (*conv2d_backward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Conv2dParams);
    void (*conv2d_relu_forward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Conv2dParams);  /* optional */
    void (*patchify_forward)(Ctx *, Tensor, Tensor, int, PatchLayout);
    void (*patchify_backward)(Ctx *, Tensor, Tensor, int, PatchLayout);
    void (*unpatchify_forward)(Ctx *, Tensor, Tensor, int, PatchLayout);
    void (*unpatchify_backward)(Ctx *, Tensor, Tensor, int, PatchLayout);
    void (*timestep_embedding_forward)(Ctx *, Tensor, Tensor);
    void (*timestep_embedding_backward)(Ctx *, Tensor, Tensor, Tensor);
    void (*embedding_forward)(Ctx *, Tensor, Tensor, Tensor);
    void (*embedding_backward)(Ctx *, Tensor, Tensor, Tensor);
    float (*mse_forward)(Ctx *, Tensor, Tensor);
    void (*mse_backward)(Ctx *, Tensor, Tensor, Tensor, float);
    UncertaintyLoss (*uncertainty_loss_forward)(Ctx *, Tensor, Tensor, Tensor);
    void (*uncertainty_loss_backward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, float, float, float);
    /* optimizer updates (no backward) */
    void (*adamw_step)(Ctx *, Tensor, Tensor, Tensor, Tensor, AdamWParams);
    void (*ema_update)(Ctx *, Tensor, Tensor, double);
    double (*sum_squares)(Ctx *, Tensor);
    void (*scale)(Ctx *, Tensor, float);
    int (*has_nonfinite)(Ctx *, Tensor);
    /* sampler arithmetic (no backward) */
    void (*axpby)(Ctx *, Tensor, const float *, Tensor, const float *, Tensor);
    void (*randn)(Ctx *, Tensor, const int64_t *, uint64_t, uint32_t, uint32_t);
    void (*add_randn)(Ctx *, Tensor, const float *, const int64_t *, uint64_t, uint32_t, uint32_t);
    /* vision ops (FID Inception) */
    void (*max_pool2d_forward)(Ctx *, Tensor, Tensor, Pool2dParams);
    void (*max_pool2d_backward)(Ctx *, Tensor, Tensor, Tensor, Pool2dParams);
    void (*avg_pool2d_forward)(Ctx *, Tensor, Tensor, Pool2dParams);
    void (*avg_pool2d_backward)(Ctx *, Tensor, Tensor, Pool2dParams);
    void (*global_avg_pool_forward)(Ctx *, Tensor, Tensor);
    void (*global_avg_pool_backward)(Ctx *, Tensor, Tensor);
    void (*token_mean_forward)(Ctx *, Tensor, Tensor);
    void (*token_mean_backward)(Ctx *, Tensor, Tensor);
    void (*resize_bilinear_forward)(Ctx *, Tensor, Tensor);
    void (*resize_bilinear_backward)(Ctx *, Tensor, Tensor);
    void (*batchnorm_forward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, float);
    void (*batchnorm_backward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, float);
    void (*relu_forward)(Ctx *, Tensor, Tensor);
    void (*relu_backward)(Ctx *, Tensor, Tensor, Tensor);
    void (*affine_forward)(Ctx *, Tensor, Tensor, float, float);
    void (*affine_backward)(Ctx *, Tensor, Tensor, float);
    /* classifier loss (FD-FMNIST feature network) */
    float (*cross_entropy_forward)(Ctx *, Tensor, Tensor);
    void (*cross_entropy_backward)(Ctx *, Tensor, Tensor, Tensor, float);
    /* latent-space ops (KL autoencoder) */
    void (*group_norm_forward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int, float);
    void (*group_norm_backward)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int);
    void (*upsample_nearest_forward)(Ctx *, Tensor, Tensor);
    void (*upsample_nearest_backward)(Ctx *, Tensor, Tensor);
    void (*pad2d_forward)(Ctx *, Tensor, Tensor, Pad2dParams);
    void (*pad2d_backward)(Ctx *, Tensor, Tensor, Pad2dParams);
    float (*gaussian_sample_forward)(Ctx *, Tensor, Tensor, Tensor);
    void (*gaussian_sample_backward)(Ctx *, Tensor, Tensor, Tensor, Tensor, float);
};

/* the backends' tables */
extern const OpTable cpu_op_table;
/* 1 when the CPU backend computes at precision p on this machine: fp32
   always, bf16 when the CPU's flags (cpu_flags) name native bf16 products */
int cpu_precision_supported(Precision p);
/* the CPU side of ctx_split_threads and ctx_split_run (kernels/cpu/cpu_split.c) */
int cpu_split_threads(const Ctx *ctx);
void cpu_split_run(Ctx *ctx, int n, CtxPieceFn fn, void *user);
void cpu_split_destroy(Ctx *ctx);
#ifdef DEEDIFF_CUDA
extern const OpTable cuda_op_table;
/* fills ctx for device `device` (kernels/cuda/cuda_context.cu) */
int cuda_ctx_init(Ctx *ctx, int device);
int cuda_device_count(void);
/* the GPU's name ("NVIDIA H200") of a CUDA context */
const char *cuda_device_name(const Ctx *ctx);
/* the one stream every op of a CUDA context is queued on (a cudaStream_t) */
void *cuda_ctx_stream(Ctx *ctx);
#endif

#endif
