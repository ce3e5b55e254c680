/*
 * uvit.h: the U-ViT network (baofff/U-ViT, libs/uvit.py) on the op interface.
 *
 * Parameters live in one backend allocation with a name table that uses the
 * official state-dict names, so a converted official checkpoint loads
 * unchanged and ours load in PyTorch. Activations live in a UViTActs arena
 * sized for a maximum batch up front: no allocation inside a step.
 *
 * The forward pass is also available block by block (embed, block i,
 * decode), which is what early-exit methods drive; the hidden state after
 * every block is kept and can be read with uvit_hidden().
 */
#ifndef DEEDIFF_UVIT_H
#define DEEDIFF_UVIT_H

#include <stdint.h>

#include "../kernels/ops.h"
#include "cond.h"
#include "param_table.h"
#include "safetensors.h"
#include "uvit_config.h"


/* tensor views of one transformer block's parameters */
typedef struct {
    int mlp_hidden, heads, attn_dim;   /* attn_dim = heads * head_dim */
    Tensor norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b;
    Tensor norm2_w, norm2_b, fc1_w, fc1_b, fc2_w, fc2_b;
    Tensor skip_w, skip_b;             /* out blocks only */
} UViTBlockParams;

typedef struct {
    UViTConfig cfg;
    int num_params;
    ParamInfo *params;
    size_t total;          /* floats in the parameter buffer */
    float *weights;        /* backend memory, F32 */
    float *grads;          /* backend memory, F32; NULL until uvit_enable_grads */
    /* views into weights (w) and grads (g) */
    struct UViTViews {
        Tensor patch_w, patch_b, time0_w, time0_b, time2_w, time2_b;
        Tensor context_w, context_b;   /* context_embed [D, clip_dim], [D] (text-to-image) */
        Tensor label_emb, pos_embed, norm_w, norm_b, dec_w, dec_b, final_w, final_b;
        UViTBlockParams blocks[UVIT_MAX_BLOCKS];
    } w, g;
} UViT;

/* builds the name table and allocates the weights (zeroed) */
void uvit_create(UViT *m, Ctx *ctx, const UViTConfig *cfg);
void uvit_destroy(UViT *m, Ctx *ctx);
/* allocates (and zeroes) the gradient buffer */
void uvit_enable_grads(UViT *m, Ctx *ctx);
void uvit_zero_grads(UViT *m, Ctx *ctx);
/* U-ViT's initialisation: trunc_normal(std .02) linear weights and pos_embed,
   zero biases, LayerNorm (1, 0), conv/embedding PyTorch defaults; seeded */
void uvit_init_random(UViT *m, Ctx *ctx, uint64_t seed);
int uvit_find_param(const UViT *m, const char *name);

/* loads a checkpoint: config from __metadata__["config"], then every
   parameter by name (F32/F16/BF16), checking shapes. -1 + err_msg().
   A plain model file names parameters as U-ViT does; a training checkpoint
   holds several copies under prefixes ("ema.", "model."): uvit_load takes
   the plain names if present, else the EMA weights, else the raw model. */
int uvit_load(UViT *m, Ctx *ctx, const char *path);
/* the same with an explicit prefix ("" plain, "ema.", "model.") */
int uvit_load_prefixed(UViT *m, Ctx *ctx, const char *path, const char *prefix);
/* the prefix uvit_load would choose for an open file ("" when none fits) */
const char *uvit_default_prefix(const SafeTensors *st);
/* loads prefix+name for every parameter into an already created model;
   every tensor under the prefix must be a parameter of the configuration */
int uvit_load_weights(UViT *m, Ctx *ctx, const SafeTensors *st, const char *prefix);
/* reads prefix+name of every parameter into dst (a backend buffer of the
   weights' layout, e.g. an optimizer's EMA copy); same checks as above */
int uvit_read_params(const UViT *m, Ctx *ctx, const SafeTensors *st, const char *prefix,
                     float *dst);
/* adds every parameter of src (a buffer of the weights' layout) to a writer
   as prefix+name, F32 */
void uvit_write_params(const UViT *m, Ctx *ctx, StWriter *w, const char *prefix,
                       const float *src);
/* writes config + weights (atomically); extra metadata pairs may be NULL */
int uvit_save(const UViT *m, Ctx *ctx, const char *path, int n_meta,
              const char *const *meta_keys, const char *const *meta_values);

/* ---- activations ------------------------------------------------------------ */

typedef struct UViTActs UViTActs;

/* an arena for batches of up to max_batch images; with training set, every
   intermediate needed by uvit_backward is kept and gradient buffers exist */
UViTActs *uvit_acts_create(Ctx *ctx, const UViT *m, int max_batch, int training);
void uvit_acts_destroy(Ctx *ctx, UViTActs *a);

/* full forward: x[B,C,H,W], t[B] (the value the network sees, e.g. t*999),
   and what the configuration is conditioned on (model/cond.h): cond.y[B]
   I64 when class-conditional, cond.context[B, num_clip_token, clip_dim] F32
   when text-to-image, each tensor_none() otherwise -> out[B,C,H,W]. The
   tensors are the caller's and must stay until the backward (training).
   A missing or misshapen conditioning is a programming error (callers check
   with uvit_predict_check, model/denoiser.h). */
void uvit_forward(Ctx *ctx, const UViT *m, UViTActs *a, Tensor x, Tensor t,
                  Conditioning cond, Tensor out);
/* the hidden state [B, T, D] after block i of the last forward (block -1:
   the embedded tokens block 0 reads; valid until the next embed, and never
   compacted by uvit_keep_rows) */
Tensor uvit_hidden(const UViTActs *a, int block);
/* backward of the last forward for dL/dout[B,C,H,W]; accumulates into
   m->grads (call uvit_zero_grads first) */
void uvit_backward(Ctx *ctx, UViT *m, UViTActs *a, Tensor dout);
/* the same in two halves, for losses on hidden states (exit heads):
   uvit_backward_zero clears dL/d(hidden); the caller may then add into
   uvit_hidden_grad(a, i) [B,T,D]; uvit_backward_from runs the tail's
   backward for dout (skipped when dout is tensor_none()), every block's and
   the embedding's. uvit_backward = zero + from. */
void uvit_backward_zero(Ctx *ctx, const UViT *m, UViTActs *a);
Tensor uvit_hidden_grad(const UViTActs *a, int block);
void uvit_backward_from(Ctx *ctx, UViT *m, UViTActs *a, Tensor dout);

/* ---- block by block ----------------------------------------------------------
 * uvit_forward is embed; block 0..num_blocks-1; decode(last hidden).
 * Early-exit methods run the same pieces and may decode any hidden state
 * with their own heads.                                                    */
void uvit_embed(Ctx *ctx, const UViT *m, UViTActs *a, Tensor x, Tensor t, Conditioning cond);
void uvit_block(Ctx *ctx, const UViT *m, UViTActs *a, int block);
void uvit_decode(Ctx *ctx, const UViT *m, UViTActs *a, Tensor out);

/* ---- early exit: compaction, never masking -----------------------------------
 * After block `block` ran on the arena's B rows, keep only rows keep[0..n)
 * (ascending): they move to rows 0..n-1 of the hidden state after `block`
 * and of every in block's output whose out block is still to run (U-ViT's
 * long skips), together; the next uvit_block then runs on n rows. Inference
 * arenas only. uvit_batch is the number of rows the arena holds now.     */
void uvit_keep_rows(Ctx *ctx, const UViT *m, UViTActs *a, int block, const int *keep, int n);
int uvit_batch(const UViTActs *a);

/* ---- cost --------------------------------------------------------------------
 * Multiply-adds per image per forward (convention: one multiply-add = 1 MAC;
 * GEMMs, attention scores and mixing, convolutions; elementwise ops and
 * norms are not counted). per_block[num_blocks] may be NULL.               */
typedef struct {
    double embed, decode, total;
    double per_block[UVIT_MAX_BLOCKS];
} UViTMacs;
void uvit_macs(const UViTConfig *c, UViTMacs *out);
size_t uvit_param_count(const UViTConfig *c);
/* the most parameters any block has (its norms, attention, MLP and skip
   linear) */
size_t uvit_largest_block_params(const UViTConfig *c);

/* How many pieces of a batch the blocks run as on ctx (model/uvit.c): one
   per thread on a CPU context in fp32 when no block holds more than
   UVIT_PIECE_MAX_WEIGHT_BYTES of weights, else 1 (each op then splits its
   rows across the threads). */
#define UVIT_PIECE_MAX_WEIGHT_BYTES (2u << 20)
int uvit_block_pieces(const Ctx *ctx, const UViTConfig *c);

#endif
