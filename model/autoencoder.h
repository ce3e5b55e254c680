/*
 * autoencoder.h: the KL autoencoder that U-ViT's latent models use (Stable
 * Diffusion's "KL-f8"; baofff/U-ViT libs/autoencoder.py, FrozenAutoencoderKL)
 * on the op interface, forward and backward.
 *
 * The network (ddconfig keys in autoencoder_config.h; GroupNorm: num_groups
 * groups, eps 1e-6; SiLU = x sigmoid(x); every conv 3x3 pad 1 unless said):
 *
 *   ResnetBlock(x, Cout):  h = conv2(SiLU(norm2(conv1(SiLU(norm1(x))))))
 *                          out = (nin_shortcut(x) if Cin != Cout, a 1x1 conv, else x) + h
 *   AttnBlock(x [C,H,W]):  n = norm(x); q, k, v = 1x1 convs of n;
 *                          out = x + proj_out(softmax(q^T k C^-0.5) v), one head over H*W
 *   Downsample:            pad (0,1,0,1) with zeros, conv 3x3 stride 2 pad 0
 *   Upsample:              nearest 2x, conv
 *
 *   encode_moments(x [B,in,H,W] in [-1,1]):
 *     encoder.conv_in -> ch;
 *     level i = 0..L-1: num_res_blocks ResnetBlocks to ch*ch_mult[i] (each
 *       followed by an AttnBlock when the level's side H/2^i is listed in
 *       attn_resolutions), then a Downsample unless i = L-1;
 *     mid: block_1, attn_1, block_2; norm_out, SiLU, conv_out -> 2 z_channels;
 *     quant_conv (1x1) -> moments [B, 2 embed_dim, H/f, W/f], f = 2^(L-1):
 *     mean then log-variance along the channels.
 *   decode(z [B,embed_dim,h,w], z already multiplied by scale_factor, as
 *   U-ViT's latent models see it):
 *     z / scale_factor; post_quant_conv (1x1) -> z_channels; decoder.conv_in
 *     -> ch*ch_mult[L-1]; mid as above; level i = L-1..0: num_res_blocks + 1
 *     ResnetBlocks to ch*ch_mult[i] (+ AttnBlocks as above), then an
 *     Upsample unless i = 0; norm_out, SiLU, conv_out -> images [B,out_ch,h f,w f].
 *
 * Weights load by the official state-dict names: encoder.conv_in.weight,
 * encoder.down.{i}.block.{j}.norm1.weight, ...conv1, norm2, conv2,
 * nin_shortcut, encoder.down.{i}.attn.{j}.{norm,q,k,v,proj_out},
 * encoder.down.{i}.downsample.conv, encoder.mid.{block_1,attn_1,block_2},
 * encoder.norm_out, encoder.conv_out, quant_conv, post_quant_conv, and the
 * decoder's likewise with decoder.up.{i} (i is the level: decoder.up.0 works
 * at full resolution and has no upsample; decoder.up.{L-1} runs first).
 * The configuration travels in the file's __metadata__["config"]
 * (autoencoder_config.h); the file must hold exactly the tensors that
 * configuration has, with their shapes (strict, as load_state_dict).
 * tests/reference/convert_autoencoder_pth.py converts U-ViT's
 * autoencoder_kl.pth.
 *
 * Parameters live in one buffer named by a ParamInfo table (param_table.h),
 * the encoder's (and quant_conv) first; a q, k, v triple is packed so one
 * linear computes all three. Activations live in an AutoencoderActs arena
 * made for one part (encoder or decoder), an image side and a maximum batch;
 * without gradients it reuses memory as soon as an activation is dead, with
 * gradients it keeps every activation for the backward pass. Usage:
 *
 *   Autoencoder m;  autoencoder_load(&m, ctx, "autoencoder_kl.safetensors");
 *   AutoencoderActs *a = autoencoder_acts_create(ctx, &m, AE_DECODER, 8, 256, 256, 0);
 *   autoencoder_decode(ctx, &m, a, z, images);      // z [B<=8,4,32,32] -> [B,3,256,256]
 *
 * Rows are independent: no op mixes two images.
 */
#ifndef DEEDIFF_AUTOENCODER_H
#define DEEDIFF_AUTOENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/ops.h"
#include "autoencoder_config.h"
#include "param_table.h"
#include "safetensors.h"

#define AE_GROUP_NORM_EPS 1e-6f

typedef struct {
    AutoencoderConfig cfg;
    int num_params;
    int num_encoder_params;  /* params[0 .. num_encoder_params) are the encoder's and quant_conv */
    ParamInfo *params;
    size_t total;            /* floats in the parameter buffer */
    float *weights;          /* backend memory, F32 */
    float *grads;            /* backend memory, F32; NULL until autoencoder_enable_grads */
} Autoencoder;

/* builds the name table and allocates the weights (zeroed); cfg must have
   passed autoencoder_config_check */
void autoencoder_create(Autoencoder *m, Ctx *ctx, const AutoencoderConfig *cfg);
void autoencoder_destroy(Autoencoder *m, Ctx *ctx);
/* allocates (and zeroes) the gradient buffer */
void autoencoder_enable_grads(Autoencoder *m, Ctx *ctx);
void autoencoder_zero_grads(Autoencoder *m, Ctx *ctx);
/* PyTorch's defaults: every conv's weight and bias uniform in
   +-1/sqrt(fan_in), GroupNorm weight 1 and bias 0; parameter i draws from
   Philox stream (seed, RNG_INIT_WEIGHTS, i) */
void autoencoder_init_random(Autoencoder *m, Ctx *ctx, uint64_t seed);
/* the index of parameter `name`, -1 when there is none */
int autoencoder_find_param(const Autoencoder *m, const char *name);

/* loads a file: configuration from __metadata__["config"], then every
   parameter by name (F32/F16/BF16), shapes checked, values finite, no
   tensor that is not a parameter. -1 + err_msg() naming the file and the
   field or tensor. */
int autoencoder_load(Autoencoder *m, Ctx *ctx, const char *path);
/* writes the configuration and every parameter (F32) atomically; n_meta
   extra metadata pairs (keys may not be "config"); -1 + err_msg() */
int autoencoder_save(const Autoencoder *m, Ctx *ctx, const char *path, int n_meta,
                     const char *const *keys, const char *const *values);

/* ---- activations -------------------------------------------------------------- */

typedef enum { AE_ENCODER = 0, AE_DECODER = 1 } AutoencoderPart;

typedef struct AutoencoderActs AutoencoderActs;

/* the arena for one part at image side height x width (multiples of the
   factor f; the latent is height/f x width/f) and batches of up to
   max_batch; with_grads keeps what the backward pass needs */
AutoencoderActs *autoencoder_acts_create(Ctx *ctx, const Autoencoder *m, AutoencoderPart part,
                                         int max_batch, int64_t height, int64_t width, int with_grads);
void autoencoder_acts_destroy(Ctx *ctx, AutoencoderActs *a);
/* backend bytes the arena holds (activations and, with grads, their gradients) */
size_t autoencoder_acts_bytes(const AutoencoderActs *a);

/* ---- forward and backward -------------------------------------------------------
 * Tensors are backend memory, F32, B <= the arena's max_batch and the
 * arena's image side (a mismatch is a programming error: FATAL). The
 * backward passes run after the forward on the same arena and the same
 * input, ADD the parameter gradients into m->grads and the input gradient
 * into dx / dz (which may be tensor_none()).                                */

/* moments[B, 2 embed_dim, H/f, W/f] <- x[B, in_channels, H, W] (an encoder arena) */
void autoencoder_encode_moments(Ctx *ctx, const Autoencoder *m, AutoencoderActs *a, Tensor x,
                                Tensor moments);
void autoencoder_encode_backward(Ctx *ctx, Autoencoder *m, AutoencoderActs *a, Tensor x,
                                 Tensor dmoments, Tensor dx);
/* images[B, out_ch, h f, w f] <- z[B, embed_dim, h, w] (a decoder arena);
   z is divided by scale_factor first, as the official decode does */
void autoencoder_decode(Ctx *ctx, const Autoencoder *m, AutoencoderActs *a, Tensor z, Tensor images);
void autoencoder_decode_backward(Ctx *ctx, Autoencoder *m, AutoencoderActs *a, Tensor z,
                                 Tensor dimages, Tensor dz);

/* multiply-adds of one image through a part at side height x width (convs,
   linears and attention products) */
double autoencoder_macs(const Autoencoder *m, AutoencoderPart part, int64_t height, int64_t width);

#endif
