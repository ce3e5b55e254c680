/*
 * exit_heads.h: the set of exit heads an early-exit method keeps among its
 * parameters, and what every such method does with them: the heads'
 * names and initialisation, the layer-weighted loss that trains them, and
 * the head half of a sampling rule.
 *
 * DeeDiff, BERxiT, CALM and the static exit all attach a head (exit_head.h:
 * a copy of U-ViT's tail) after blocks 0..L-2, under the same names,
 * method.heads.I.{norm,decoder_pred,final_layer}.* (method.head.* when one
 * head serves every exit), so a method can run on another's heads: the
 * static exit on DeeDiff's, calm-meta on CALM's (method_load takes any
 * file holding every parameter a method needs).
 *
 * The layer-weighted step, for weights w_final and w_i (L blocks):
 *   loss = w_final L_simple + sum_{i<L-1} w_i mean (g_i - eps)^2
 * with g_i = head_i(h_i); every gradient reaches the heads, and the
 * backbone when it trains. CALM's anytime loss is w = (i+1) / sum 1..L,
 * w_final = L / sum 1..L; the static exit's (eq. 11's plain layer-wise
 * loss) w = 1, w_final = 1; BERxiT alternates w_final = 1, w = 0 and
 * w_final = 0, w = 1. A method may read each g_i as it is made (on_exit:
 * BERxiT's and calm-meta's targets).
 */
#ifndef DEEDIFF_EXIT_HEADS_H
#define DEEDIFF_EXIT_HEADS_H

#include "exit_head.h"
#include "method.h"
#include "row_list.h"

typedef struct {
    int norm_w, norm_b, dec_w, dec_b, final_w, final_b;   /* method parameter indices (-1: absent) */
} ExitHeadIndex;

typedef struct {
    int exits;                              /* num_blocks - 1 */
    int shared;                             /* one head for every exit */
    ExitHeadIndex idx[UVIT_MAX_BLOCKS];
} ExitHeadSet;

/* the heads option every method with exit heads takes, for options_help */
#define EXIT_HEADS_OPTION_HELP "heads=per_layer|shared      an exit head per block (a copy of U-ViT's tail) or one for all\n"

/* appends the heads' parameters to me (build_params) */
void exit_heads_build(ExitHeadSet *s, Method *me, const UViTConfig *c, int shared);
/* head i's parameters inside base (me->weights or me->grads) */
ExitHead exit_heads_view(const ExitHeadSet *s, const Method *me, const float *base, int i);
/* every head a copy of the backbone's tail (norm, decoder_pred, final_layer) */
void exit_heads_init(const ExitHeadSet *s, Method *me, Ctx *ctx, const UViT *bb);

/* ---- training ------------------------------------------------------------------------ */
typedef struct {
    int B;
    ExitActs e;
    float *g, *dg, *d_img;     /* [B,C,H,W] */
    float *d_dec;              /* [B,N,P] */
    float *d_ln, *d_hs;        /* [B,N,D] */
} ExitTrainBuffers;

void exit_train_buffers_alloc(Ctx *ctx, ExitTrainBuffers *tb, const UViTConfig *c, int B);
void exit_train_buffers_free(Ctx *ctx, ExitTrainBuffers *tb);

typedef struct {
    float w_final;                     /* of L_simple (0: the tail gets no gradient) */
    float w_exit[UVIT_MAX_BLOCKS];     /* of head i's MSE (0: forward only) */
    /* after head i's forward: g[B,C,H,W], the block's hidden state [B,T,D] */
    void (*on_exit)(void *user, Ctx *ctx, int i, Tensor g, Tensor hidden);
    void *user;
} LayerWeights;

/* one layer-weighted step on s's batch: forward, every head, the weighted
   loss's backward into me->grads and (s->train_backbone) the backbone's.
   Sets s->loss_simple, s->loss_layers (sum_i w_i mse_i) and s->loss. */
void exit_heads_layer_step(const ExitHeadSet *hs, Method *me, Ctx *ctx, ExitTrainBuffers *tb, MethodStep *s,
                           const LayerWeights *lw);

/* ---- sampling: the head half of an early-exit rule ------------------------------------- */
typedef struct {
    const ExitHeadSet *heads;
    const Method *me;
    const UViT *m;
    ExitActs e;
    void *rows;                /* [B,T,D] gathered hidden rows, in the activation dtype */
    RowList list;              /* which rows, on the backend */
} ExitHeadRows;

void exit_head_rows_alloc(ExitHeadRows *r, Ctx *ctx, const ExitHeadSet *heads, const Method *me, const UViT *m,
                          int B);
void exit_head_rows_free(ExitHeadRows *r, Ctx *ctx);
/* head `block`'s prediction out[n,C,H,W] for rows[n] of hidden[B,T,D] */
void exit_head_rows_predict(ExitHeadRows *r, Ctx *ctx, Tensor hidden, int block, const int *rows, int n,
                            Tensor out);

#endif
