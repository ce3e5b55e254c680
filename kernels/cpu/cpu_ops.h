/*
 * cpu_ops.h: the CPU fp32 reference backend's kernels (internal).
 *
 * Each function implements the op of the same name in kernels/ops.h, after
 * kernels/ops.c has checked shapes; every tensor here is F32 except ids (I64).
 * Parallel over rows with OpenMP; GEMMs through cpu_sgemm (cpu_gemm.h: oneDNN,
 * or OpenBLAS as the fallback).
 */
#ifndef DEEDIFF_CPU_OPS_H
#define DEEDIFF_CPU_OPS_H

#include "../ops.h"

void cpu_linear_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b);
void cpu_linear_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                         Tensor dout, Tensor in, Tensor w);
void cpu_linear_backward_set(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                             Tensor dout, Tensor in, Tensor w);
/* linear_fused.c */
void cpu_linear_gelu_forward(Ctx *ctx, Tensor out, Tensor pre, Tensor in, Tensor w, Tensor b);
void cpu_linear_gelu_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dpre,
                              Tensor dout, Tensor in, Tensor w, Tensor pre);
void cpu_linear_gelu_backward_set(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dpre,
                                  Tensor dout, Tensor in, Tensor w, Tensor pre);
void cpu_linear_residual_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b,
                                 Tensor res);
void cpu_layernorm_forward(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd,
                           Tensor in, Tensor w, Tensor b, float eps);
void cpu_layernorm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                            Tensor dout, Tensor in, Tensor w, Tensor mean,
                            Tensor rstd);
void cpu_attention_forward(Ctx *ctx, Tensor out, Tensor probs, Tensor qkv,
                           int heads);
void cpu_attention_backward(Ctx *ctx, Tensor dqkv, Tensor dprobs, Tensor dout,
                            Tensor qkv, Tensor probs, int heads);
void cpu_attention_backward_set(Ctx *ctx, Tensor dqkv, Tensor dprobs, Tensor dout,
                                Tensor qkv, Tensor probs, int heads);
void cpu_gelu_forward(Ctx *ctx, Tensor out, Tensor in);
void cpu_gelu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in);
void cpu_sigmoid_forward(Ctx *ctx, Tensor out, Tensor in);
void cpu_sigmoid_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in);
void cpu_silu_forward(Ctx *ctx, Tensor out, Tensor in);
void cpu_silu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in);
void cpu_add_forward(Ctx *ctx, Tensor out, Tensor a, Tensor b);
void cpu_accumulate(Ctx *ctx, Tensor dst, Tensor src);
void cpu_add_bcast_forward(Ctx *ctx, Tensor out, Tensor in, Tensor row);
void cpu_add_bcast_backward(Ctx *ctx, Tensor din, Tensor drow, Tensor dout);
void cpu_add_per_image_forward(Ctx *ctx, Tensor out, Tensor in, Tensor v);
void cpu_add_per_image_backward(Ctx *ctx, Tensor din, Tensor dv, Tensor dout);
void cpu_concat_forward(Ctx *ctx, Tensor out, Tensor a, Tensor b);
void cpu_concat_backward(Ctx *ctx, Tensor da, Tensor db, Tensor dout);
void cpu_token_slice_forward(Ctx *ctx, Tensor out, Tensor in, int at);
void cpu_token_slice_backward(Ctx *ctx, Tensor din, Tensor dout, int at);
void cpu_token_place_forward(Ctx *ctx, Tensor seq, Tensor src, int at);
void cpu_token_place_backward(Ctx *ctx, Tensor dsrc, Tensor dseq, int at);
void cpu_rows_copy(Ctx *ctx, Tensor out, Tensor out_rows, Tensor in, Tensor in_rows);
void cpu_conv2d_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b,
                        Conv2dParams p);
void cpu_conv2d_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                         Tensor dout, Tensor in, Tensor w, Conv2dParams p);
/* conv2d_relu.c (oneDNN) */
void cpu_conv2d_relu_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b,
                             Conv2dParams p);
void cpu_patchify_forward(Ctx *ctx, Tensor tokens, Tensor img, int p,
                          PatchLayout layout);
void cpu_patchify_backward(Ctx *ctx, Tensor dimg, Tensor dtokens, int p,
                           PatchLayout layout);
void cpu_unpatchify_forward(Ctx *ctx, Tensor img, Tensor tokens, int p,
                            PatchLayout layout);
void cpu_unpatchify_backward(Ctx *ctx, Tensor dtokens, Tensor dimg, int p,
                             PatchLayout layout);
void cpu_timestep_embedding_forward(Ctx *ctx, Tensor out, Tensor t);
void cpu_timestep_embedding_backward(Ctx *ctx, Tensor dt, Tensor dout,
                                     Tensor t);
void cpu_embedding_forward(Ctx *ctx, Tensor out, Tensor ids, Tensor table);
void cpu_embedding_backward(Ctx *ctx, Tensor dtable, Tensor dout, Tensor ids);
float cpu_mse_forward(Ctx *ctx, Tensor pred, Tensor target);
UncertaintyLoss cpu_uncertainty_loss_forward(Ctx *ctx, Tensor g, Tensor eps, Tensor u);
void cpu_uncertainty_loss_backward(Ctx *ctx, Tensor dg, Tensor du, Tensor g, Tensor eps,
                                   Tensor u, float w_u, float w_ual, float w_ual_u);
void cpu_mse_backward(Ctx *ctx, Tensor dpred, Tensor pred, Tensor target,
                      float dloss);
/* sampler arithmetic (kernels/cpu/sampler_ops.c) */
void cpu_axpby(Ctx *ctx, Tensor out, const float *a, Tensor x, const float *b, Tensor y);
void cpu_randn(Ctx *ctx, Tensor out, const int64_t *ids, uint64_t seed,
               uint32_t purpose, uint32_t step);
void cpu_add_randn(Ctx *ctx, Tensor out, const float *c, const int64_t *ids,
                   uint64_t seed, uint32_t purpose, uint32_t step);

/* row_scores.c: early exit's per-row scores (no backward) */
void cpu_row_mean(Ctx *ctx, Tensor out, Tensor in);
void cpu_row_cosine_distance(Ctx *ctx, Tensor out, Tensor a, Tensor b);

/* optim.c: optimizer updates (no backward) */
void cpu_adamw_step(Ctx *ctx, Tensor params, Tensor grads, Tensor m, Tensor v,
                    AdamWParams p);
void cpu_ema_update(Ctx *ctx, Tensor ema, Tensor params, double decay);
double cpu_sum_squares(Ctx *ctx, Tensor x);
void cpu_scale(Ctx *ctx, Tensor x, float s);
int cpu_has_nonfinite(Ctx *ctx, Tensor x);

/* vision ops (FID Inception): pool.c, resize.c, batchnorm.c, relu_affine.c */
void cpu_max_pool2d_forward(Ctx *ctx, Tensor out, Tensor in, Pool2dParams p);
void cpu_max_pool2d_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in, Pool2dParams p);
void cpu_avg_pool2d_forward(Ctx *ctx, Tensor out, Tensor in, Pool2dParams p);
void cpu_avg_pool2d_backward(Ctx *ctx, Tensor din, Tensor dout, Pool2dParams p);
void cpu_global_avg_pool_forward(Ctx *ctx, Tensor out, Tensor in);
void cpu_global_avg_pool_backward(Ctx *ctx, Tensor din, Tensor dout);
void cpu_token_mean_forward(Ctx *ctx, Tensor out, Tensor in);
void cpu_token_mean_backward(Ctx *ctx, Tensor din, Tensor dout);
void cpu_resize_bilinear_forward(Ctx *ctx, Tensor out, Tensor in);
void cpu_resize_bilinear_backward(Ctx *ctx, Tensor din, Tensor dout);
void cpu_batchnorm_forward(Ctx *ctx, Tensor out, Tensor in, Tensor mean, Tensor var,
                           Tensor w, Tensor b, float eps);
void cpu_batchnorm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout,
                            Tensor in, Tensor mean, Tensor var, Tensor w, float eps);
void cpu_relu_forward(Ctx *ctx, Tensor out, Tensor in);
void cpu_relu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in);
void cpu_affine_forward(Ctx *ctx, Tensor out, Tensor in, float a, float b);
void cpu_affine_backward(Ctx *ctx, Tensor din, Tensor dout, float a);

/* classifier loss (FD-FMNIST feature network): cross_entropy.c */
float cpu_cross_entropy_forward(Ctx *ctx, Tensor logits, Tensor labels);
void cpu_cross_entropy_backward(Ctx *ctx, Tensor dlogits, Tensor logits, Tensor labels,
                                float dloss);

/* latent-space ops (KL autoencoder): group_norm.c, upsample.c, pad.c */
void cpu_group_norm_forward(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd, Tensor in,
                            Tensor w, Tensor b, int groups, float eps);
void cpu_group_norm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout,
                             Tensor in, Tensor w, Tensor mean, Tensor rstd, int groups);
void cpu_upsample_nearest_forward(Ctx *ctx, Tensor out, Tensor in);
void cpu_upsample_nearest_backward(Ctx *ctx, Tensor din, Tensor dout);
void cpu_pad2d_forward(Ctx *ctx, Tensor out, Tensor in, Pad2dParams p);
void cpu_pad2d_backward(Ctx *ctx, Tensor din, Tensor dout, Pad2dParams p);
float cpu_gaussian_sample_forward(Ctx *ctx, Tensor z, Tensor moments, Tensor eps);
void cpu_gaussian_sample_backward(Ctx *ctx, Tensor dmoments, Tensor dz, Tensor moments, Tensor eps,
                                  float kl_weight);

#endif
