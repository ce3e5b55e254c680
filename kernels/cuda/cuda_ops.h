/*
 * cuda_ops.h: the CUDA backend's ops (internal to kernels/cuda).
 *
 * Each function implements the op of the same name in kernels/ops.h after
 * kernels/ops.c has checked shapes, and fills the entry of the same name in
 * cuda_op_table (cuda_context.cu). Dtypes: activations F32 or BF16 (the
 * file of each op says which of its tensors may mix), parameters and their
 * gradients F32, statistics F32, ids I64; optimizer and sampler tensors F32.
 * Files: cuda_linear.cu, cuda_linear_gelu.cu, cuda_layernorm.cu, cuda_attention_*.cu,
 * cuda_activations.cu, cuda_add.cu, cuda_tokens.cu, cuda_conv2d.cu,
 * cuda_patch.cu, cuda_timestep.cu, cuda_embedding.cu, cuda_loss.cu,
 * cuda_optim.cu, cuda_sampler.cu, cuda_pool.cu, cuda_resize.cu,
 * cuda_batchnorm.cu, cuda_relu_affine.cu, cuda_cross_entropy.cu,
 * cuda_group_norm.cu, cuda_upsample.cu, cuda_pad.cu, cuda_gaussian_sample.cu.
 */
#ifndef DEEDIFF_CUDA_OPS_H
#define DEEDIFF_CUDA_OPS_H

#include "cuda_c_headers.h"

void cuda_linear_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b);
void cuda_linear_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                          Tensor dout, Tensor in, Tensor w);
void cuda_linear_backward_set(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                              Tensor dout, Tensor in, Tensor w);
void cuda_linear_residual_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w,
                                  Tensor b, Tensor res);
void cuda_linear_gelu_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                               Tensor dpre, Tensor dout, Tensor in, Tensor w,
                               Tensor pre);
void cuda_linear_gelu_backward_set(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                                   Tensor dpre, Tensor dout, Tensor in,
                                   Tensor w, Tensor pre);
void cuda_layernorm_forward(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd,
                            Tensor in, Tensor w, Tensor b, float eps);
void cuda_layernorm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                             Tensor dout, Tensor in, Tensor w, Tensor mean,
                             Tensor rstd);
void cuda_attention_forward(Ctx *ctx, Tensor out, Tensor probs, Tensor qkv,
                            int heads);
void cuda_attention_backward(Ctx *ctx, Tensor dqkv, Tensor dprobs, Tensor dout,
                             Tensor qkv, Tensor probs, int heads);
void cuda_attention_backward_set(Ctx *ctx, Tensor dqkv, Tensor dprobs,
                                 Tensor dout, Tensor qkv, Tensor probs,
                                 int heads);
void cuda_gelu_forward(Ctx *ctx, Tensor out, Tensor in);
void cuda_gelu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in);
void cuda_sigmoid_forward(Ctx *ctx, Tensor out, Tensor in);
void cuda_sigmoid_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in);
void cuda_silu_forward(Ctx *ctx, Tensor out, Tensor in);
void cuda_silu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in);
void cuda_add_forward(Ctx *ctx, Tensor out, Tensor a, Tensor b);
void cuda_accumulate(Ctx *ctx, Tensor dst, Tensor src);
void cuda_add_bcast_forward(Ctx *ctx, Tensor out, Tensor in, Tensor row);
void cuda_add_bcast_backward(Ctx *ctx, Tensor din, Tensor drow, Tensor dout);
void cuda_add_per_image_forward(Ctx *ctx, Tensor out, Tensor in, Tensor v);
void cuda_add_per_image_backward(Ctx *ctx, Tensor din, Tensor dv, Tensor dout);
void cuda_concat_forward(Ctx *ctx, Tensor out, Tensor a, Tensor b);
void cuda_concat_backward(Ctx *ctx, Tensor da, Tensor db, Tensor dout);
void cuda_token_slice_forward(Ctx *ctx, Tensor out, Tensor in, int at);
void cuda_token_slice_backward(Ctx *ctx, Tensor din, Tensor dout, int at);
void cuda_token_place_forward(Ctx *ctx, Tensor seq, Tensor src, int at);
void cuda_token_place_backward(Ctx *ctx, Tensor dsrc, Tensor dseq, int at);
void cuda_rows_copy(Ctx *ctx, Tensor out, Tensor out_rows, Tensor in, Tensor in_rows);
void cuda_row_mean(Ctx *ctx, Tensor out, Tensor in);
void cuda_row_cosine_distance(Ctx *ctx, Tensor out, Tensor a, Tensor b);
void cuda_conv2d_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b,
                         Conv2dParams p);
void cuda_conv2d_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                          Tensor dout, Tensor in, Tensor w, Conv2dParams p);
void cuda_patchify_forward(Ctx *ctx, Tensor tokens, Tensor img, int p,
                           PatchLayout layout);
void cuda_patchify_backward(Ctx *ctx, Tensor dimg, Tensor dtokens, int p,
                            PatchLayout layout);
void cuda_unpatchify_forward(Ctx *ctx, Tensor img, Tensor tokens, int p,
                             PatchLayout layout);
void cuda_unpatchify_backward(Ctx *ctx, Tensor dtokens, Tensor dimg, int p,
                              PatchLayout layout);
void cuda_timestep_embedding_forward(Ctx *ctx, Tensor out, Tensor t);
void cuda_timestep_embedding_backward(Ctx *ctx, Tensor dt, Tensor dout,
                                      Tensor t);
void cuda_embedding_forward(Ctx *ctx, Tensor out, Tensor ids, Tensor table);
void cuda_embedding_backward(Ctx *ctx, Tensor dtable, Tensor dout, Tensor ids);
float cuda_mse_forward(Ctx *ctx, Tensor pred, Tensor target);
UncertaintyLoss cuda_uncertainty_loss_forward(Ctx *ctx, Tensor g, Tensor eps, Tensor u);
void cuda_uncertainty_loss_backward(Ctx *ctx, Tensor dg, Tensor du, Tensor g, Tensor eps,
                                    Tensor u, float w_u, float w_ual, float w_ual_u);
void cuda_mse_backward(Ctx *ctx, Tensor dpred, Tensor pred, Tensor target,
                       float dloss);
/* sampler arithmetic (cuda_sampler.cu) */
void cuda_axpby(Ctx *ctx, Tensor out, const float *a, Tensor x, const float *b, Tensor y);
void cuda_randn(Ctx *ctx, Tensor out, const int64_t *ids, uint64_t seed,
                uint32_t purpose, uint32_t step);
void cuda_add_randn(Ctx *ctx, Tensor out, const float *c, const int64_t *ids,
                    uint64_t seed, uint32_t purpose, uint32_t step);

/* cuda_optim.cu: optimizer updates (no backward) */
void cuda_adamw_step(Ctx *ctx, Tensor params, Tensor grads, Tensor m, Tensor v,
                     AdamWParams p);
void cuda_ema_update(Ctx *ctx, Tensor ema, Tensor params, double decay);
double cuda_sum_squares(Ctx *ctx, Tensor x);
void cuda_scale(Ctx *ctx, Tensor x, float s);
int cuda_has_nonfinite(Ctx *ctx, Tensor x);

/* vision ops (FID Inception): cuda_pool.cu, cuda_resize.cu, cuda_batchnorm.cu, cuda_relu_affine.cu */
void cuda_max_pool2d_forward(Ctx *ctx, Tensor out, Tensor in, Pool2dParams p);
void cuda_max_pool2d_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in, Pool2dParams p);
void cuda_avg_pool2d_forward(Ctx *ctx, Tensor out, Tensor in, Pool2dParams p);
void cuda_avg_pool2d_backward(Ctx *ctx, Tensor din, Tensor dout, Pool2dParams p);
void cuda_global_avg_pool_forward(Ctx *ctx, Tensor out, Tensor in);
void cuda_global_avg_pool_backward(Ctx *ctx, Tensor din, Tensor dout);
void cuda_token_mean_forward(Ctx *ctx, Tensor out, Tensor in);
void cuda_token_mean_backward(Ctx *ctx, Tensor din, Tensor dout);
void cuda_resize_bilinear_forward(Ctx *ctx, Tensor out, Tensor in);
void cuda_resize_bilinear_backward(Ctx *ctx, Tensor din, Tensor dout);
void cuda_batchnorm_forward(Ctx *ctx, Tensor out, Tensor in, Tensor mean, Tensor var,
                            Tensor w, Tensor b, float eps);
void cuda_batchnorm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout,
                             Tensor in, Tensor mean, Tensor var, Tensor w, float eps);
void cuda_relu_forward(Ctx *ctx, Tensor out, Tensor in);
void cuda_relu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in);
void cuda_affine_forward(Ctx *ctx, Tensor out, Tensor in, float a, float b);
void cuda_affine_backward(Ctx *ctx, Tensor din, Tensor dout, float a);

/* classifier loss (FD-FMNIST feature network): cuda_cross_entropy.cu */
float cuda_cross_entropy_forward(Ctx *ctx, Tensor logits, Tensor labels);
void cuda_cross_entropy_backward(Ctx *ctx, Tensor dlogits, Tensor logits, Tensor labels,
                                 float dloss);

/* latent-space ops (KL autoencoder): cuda_group_norm.cu, cuda_upsample.cu, cuda_pad.cu,
   cuda_gaussian_sample.cu */
void cuda_group_norm_forward(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd, Tensor in,
                             Tensor w, Tensor b, int groups, float eps);
void cuda_group_norm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout,
                              Tensor in, Tensor w, Tensor mean, Tensor rstd, int groups);
void cuda_upsample_nearest_forward(Ctx *ctx, Tensor out, Tensor in);
void cuda_upsample_nearest_backward(Ctx *ctx, Tensor din, Tensor dout);
void cuda_pad2d_forward(Ctx *ctx, Tensor out, Tensor in, Pad2dParams p);
void cuda_pad2d_backward(Ctx *ctx, Tensor din, Tensor dout, Pad2dParams p);
float cuda_gaussian_sample_forward(Ctx *ctx, Tensor z, Tensor moments, Tensor eps);
void cuda_gaussian_sample_backward(Ctx *ctx, Tensor dmoments, Tensor dz, Tensor moments, Tensor eps,
                                   float kl_weight);

#endif
