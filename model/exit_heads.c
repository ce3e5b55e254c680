/*
 * exit_heads.c: an early-exit method's set of exit heads (exit_heads.h):
 * names, initialisation from the backbone's tail, the layer-weighted
 * training step, and head predictions for the rows leaving at sampling.
 */
#include <stdio.h>

#include "../kernels/errors.h"
#include "../kernels/phase.h"
#include "exit_heads.h"

void exit_heads_build(ExitHeadSet *s, Method *me, const UViTConfig *c, int shared)
{
    ExitDims dm = exit_dims(c);
    s->exits = c->num_blocks - 1;
    s->shared = shared;
    for (int i = 0; i < s->exits; i++) {
        if (i > 0 && shared) {
            s->idx[i] = s->idx[0];
            continue;
        }
        char h[32];
        snprintf(h, sizeof h, shared ? "head" : "heads.%d", i);
        ExitHeadIndex *x = &s->idx[i];
        x->norm_w = method_add_param(me, 1, (int64_t[]){dm.D}, "%s.norm.weight", h);
        x->norm_b = method_add_param(me, 1, (int64_t[]){dm.D}, "%s.norm.bias", h);
        x->dec_w = method_add_param(me, 2, (int64_t[]){dm.P, dm.D}, "%s.decoder_pred.weight", h);
        x->dec_b = method_add_param(me, 1, (int64_t[]){dm.P}, "%s.decoder_pred.bias", h);
        x->final_w = x->final_b = -1;
        if (c->conv) {
            x->final_w = method_add_param(me, 4, (int64_t[]){dm.C, dm.C, 3, 3}, "%s.final_layer.weight", h);
            x->final_b = method_add_param(me, 1, (int64_t[]){dm.C}, "%s.final_layer.bias", h);
        }
    }
}

ExitHead exit_heads_view(const ExitHeadSet *s, const Method *me, const float *base, int i)
{
    const ExitHeadIndex *x = &s->idx[i];
    ExitHead h = {method_param(me, base, x->norm_w), method_param(me, base, x->norm_b),
                  method_param(me, base, x->dec_w),  method_param(me, base, x->dec_b),
                  method_param(me, base, x->final_w), method_param(me, base, x->final_b)};
    return h;
}

static void copy_param(Ctx *ctx, Tensor dst, Tensor src)
{
    CHECK(tensor_numel(dst) == tensor_numel(src), "exit heads: head and backbone tail differ in size");
    ctx_copy(ctx, dst.data, src.data, (size_t)tensor_numel(src) * sizeof(float));
}

void exit_heads_init(const ExitHeadSet *s, Method *me, Ctx *ctx, const UViT *bb)
{
    for (int i = 0; i < s->exits; i++) {
        ExitHead h = exit_heads_view(s, me, me->weights, i);
        copy_param(ctx, h.norm_w, bb->w.norm_w);
        copy_param(ctx, h.norm_b, bb->w.norm_b);
        copy_param(ctx, h.dec_w, bb->w.dec_w);
        copy_param(ctx, h.dec_b, bb->w.dec_b);
        if (bb->cfg.conv) {
            copy_param(ctx, h.final_w, bb->w.final_w);
            copy_param(ctx, h.final_b, bb->w.final_b);
        }
    }
}

/* ---- training ---------------------------------------------------------------------------- */

void exit_train_buffers_alloc(Ctx *ctx, ExitTrainBuffers *tb, const UViTConfig *c, int B)
{
    ExitDims dm = exit_dims(c);
    size_t f = sizeof(float), img = (size_t)B * dm.C * dm.H * dm.H * f;
    tb->B = B;
    exit_acts_alloc(ctx, &tb->e, c, B);
    tb->g = ctx_alloc(ctx, img);
    tb->dg = ctx_alloc(ctx, img);
    tb->d_img = ctx_alloc(ctx, img);
    tb->d_dec = ctx_alloc(ctx, (size_t)B * dm.N * dm.P * f);
    tb->d_ln = ctx_alloc(ctx, (size_t)B * dm.N * dm.D * f);
    tb->d_hs = ctx_alloc(ctx, (size_t)B * dm.N * dm.D * f);
}

void exit_train_buffers_free(Ctx *ctx, ExitTrainBuffers *tb)
{
    if (!tb->B) return;
    exit_acts_free(ctx, &tb->e);
    float *all[] = {tb->g, tb->dg, tb->d_img, tb->d_dec, tb->d_ln, tb->d_hs};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ctx_free(ctx, all[i]);
    *tb = (ExitTrainBuffers){0};
}

void exit_heads_layer_step(const ExitHeadSet *hs, Method *me, Ctx *ctx, ExitTrainBuffers *tb, MethodStep *s,
                           const LayerWeights *lw)
{
    const UViTConfig *c = &s->backbone->cfg;
    TrainNoise *tn = s->tn;
    int B = tn->batch;
    CHECK(B <= tb->B, "exit heads: batch %d above the %d of train_begin", B, tb->B);
    ExitDims dm = exit_dims(c);
    Tensor eps = train_noise_eps(tn);
    Tensor g = tensor4(tb->g, DT_F32, B, dm.C, dm.H, dm.H), dg = tensor4(tb->dg, DT_F32, B, dm.C, dm.H, dm.H);
    Tensor d_ln = tensor3(tb->d_ln, DT_F32, B, dm.N, dm.D);

    // the backbone, every hidden state kept: L_simple and dL/dpred
    s->loss_simple = train_noise_uvit_loss(ctx, tn, s->backbone, s->acts, s->conditional);
    if (s->train_backbone) uvit_backward_zero(ctx, s->backbone, s->acts);
    double layers = 0;
    for (int i = 0; i < hs->exits; i++) {
        ExitHead hw = exit_heads_view(hs, me, me->weights, i), hg = exit_heads_view(hs, me, me->grads, i);
        phase_begin(ctx, PHASE_HEAD, i);   /* the head's forward, loss and backward; the estimator's too */
        exit_head_norm(ctx, c, &hw, &tb->e, uvit_hidden(s->acts, i));
        exit_head_decode(ctx, c, &hw, &tb->e, tb->e.ln, B, g);     // g_i [B,C,H,W]
        if (lw->on_exit) {
            phase_begin(ctx, PHASE_EXIT_RULE, i);
            lw->on_exit(lw->user, ctx, i, g, uvit_hidden(s->acts, i));
            phase_end(ctx, PHASE_EXIT_RULE);
        }
        float w = lw->w_exit[i];
        if (w == 0) {
            phase_end(ctx, PHASE_HEAD);
            continue;
        }
        layers += w * op_mse_forward(ctx, g, eps);
        ctx_zero(ctx, dg);
        op_mse_backward(ctx, dg, g, eps, w);
        ctx_zero(ctx, d_ln);
        exit_head_decode_backward(ctx, c, &hw, &hg, &tb->e, B, dg, d_ln, tb->d_img, tb->d_dec);
        exit_head_norm_backward(ctx, c, &hw, &hg, &tb->e, B, d_ln,
                                s->train_backbone ? uvit_hidden_grad(s->acts, i) : tensor_none(), tb->d_hs);
        phase_end(ctx, PHASE_HEAD);
    }
    if (s->train_backbone) {
        Tensor dpred = train_noise_dpred(tn);
        if (lw->w_final != 1) op_scale(ctx, dpred, lw->w_final);
        uvit_backward_from(ctx, s->backbone, s->acts, lw->w_final != 0 ? dpred : tensor_none());
    }
    s->loss_layers = layers;
    s->loss = lw->w_final * s->loss_simple + layers;
}

/* ---- sampling ------------------------------------------------------------------------------ */

void exit_head_rows_alloc(ExitHeadRows *r, Ctx *ctx, const ExitHeadSet *heads, const Method *me, const UViT *m,
                          int B)
{
    ExitDims dm = exit_dims(&m->cfg);
    r->heads = heads;
    r->me = me;
    r->m = m;
    exit_acts_alloc(ctx, &r->e, &m->cfg, B);
    r->rows = ctx_alloc(ctx, (size_t)B * dm.T * dm.D * dtype_size(ctx->act_dtype));
    row_list_create(&r->list, ctx, B);
}

void exit_head_rows_free(ExitHeadRows *r, Ctx *ctx)
{
    exit_acts_free(ctx, &r->e);
    ctx_free(ctx, r->rows);
    row_list_destroy(&r->list, ctx);
}

void exit_head_rows_predict(ExitHeadRows *r, Ctx *ctx, Tensor hidden, int block, const int *rows, int n,
                            Tensor out)
{
    const UViTConfig *c = &r->m->cfg;
    ExitDims dm = exit_dims(c);
    /* hidden is the backbone's activation dtype (BF16 on CUDA): rows are
       gathered in it, and exit_head_norm's slice converts to F32 */
    int leading = rows_in_place(rows, n);   // the whole batch leaving, as the static exit's: no gather
    if (!leading)
        op_rows_copy(ctx, tensor3(r->rows, hidden.dtype, n, dm.T, dm.D), tensor_none(), hidden,
                     row_list_set(&r->list, ctx, rows, NULL, n));
    ExitHead h = exit_heads_view(r->heads, r->me, r->me->weights, block);
    exit_head_norm(ctx, c, &h, &r->e, tensor3(leading ? hidden.data : r->rows, hidden.dtype, n, dm.T, dm.D));
    exit_head_decode(ctx, c, &h, &r->e, r->e.ln, n, out);
}
