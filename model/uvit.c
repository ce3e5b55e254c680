/*
 * uvit.c: U-ViT's forward and backward passes over the op interface, and
 * the activation arena they run in.
 *
 * Shapes: B images, C channels, image H x W, patch p, N = (H/p)(W/p)
 * patches, D = embed_dim, T = N + extras tokens (extras = 1 time token, plus
 * 1 label token first when class-conditional, or L = num_clip_token context
 * tokens after it when text-to-image; model/uvit_config.h), Dc = clip_dim,
 * per block A = heads * hd attention width and Hm MLP width.
 *
 * The arena is carved once for max_batch images. In training every
 * intermediate of every block is kept for the backward pass; in inference
 * only the hidden state after each block is kept (skips and early exits
 * need them) and one set of intermediates is shared by all blocks.
 */
#include <stddef.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../kernels/phase.h"
#include "row_list.h"
#include "uvit.h"

typedef struct {
    void *in;                 /* block input: skip_linear output (out blocks) */
    void *cat;                /* [B,T,2D] out blocks: [x, skip] */
    void *ln1, *qkv, *att;    /* [B,T,D], [B,T,3A], [B,T,A] */
    void *res1, *ln2;         /* [B,T,D] x + attn, its LayerNorm */
    void *fc1, *gelu;         /* [B,T,Hm] before (training only) and after GELU */
    float *mean1, *rstd1, *mean2, *rstd2;  /* [B*T] */
    float *probs;             /* [B,H,T,T] training only */
} BlockActs;

struct UViTActs {
    int max_batch, training, B;
    int b0;                   /* a piece's view: its first image in the buffers (0 for the arena) */
    int pieces;               /* the most pieces a block runs as (uvit_block_pieces) */
    float *piece_grads;       /* training, pieces > 1: [pieces - 1, block_grad_floats] */
    RowList kept;             /* the rows uvit_keep_rows keeps, on the backend */
    size_t block_grad_floats; /* the largest block's parameter count */
    int T, D;                 /* tokens and width, for uvit_hidden */
    DType dt;
    size_t bytes;
    char *arena;
    /* embedding */
    void *patches;            /* [B,N,C p p] */
    void *patch_tok;          /* [B,N,D] */
    void *temb, *te1, *te1s;  /* [B,D], [B,4D], [B,4D] */
    void *time_tok, *label_tok; /* [B,D] */
    void *context_tok;        /* [B,L,D] text-to-image */
    void *context_act;        /* [B,L,Dc] the contexts in the activation dtype, when it is not F32 */
    void *seq, *h0;           /* [B,T,D] before and after pos_embed */
    Tensor y;                 /* labels of the last forward (caller's) */
    Tensor context;           /* [B,L,Dc] contexts of the last forward (caller's, or context_act) */
    /* blocks */
    void *hidden[UVIT_MAX_BLOCKS];     /* [B,T,D] after each block */
    BlockActs blk[UVIT_MAX_BLOCKS];
    /* decoding */
    void *hslice, *lnf;       /* [B,N,D] */
    float *meanf, *rstdf;     /* [B*N] */
    void *dec;                /* [B,N,p p C] */
    void *img;                /* [B,C,H,W] before the final conv */
    /* gradients (training) */
    void *dh0, *dh[UVIT_MAX_BLOCKS];   /* [B,T,D] */
    void *d_ln, *d_res1, *d_skip;      /* [B,T,D] */
    void *d_qkv, *d_att;               /* [B,T,3A], [B,T,A] */
    float *d_probs;                    /* [B,H,T,T] */
    void *d_fc1, *d_gelu;              /* [B,T,Hm] */
    void *d_cat;                       /* [B,T,2D] */
    void *d_hslice, *d_lnf, *d_dec, *d_img;
    void *d_patch_tok, *d_time_tok, *d_te1, *d_te1s, *d_label_tok;
    void *d_context_tok;               /* [B,L,D] */
};

/* ---- the arena ------------------------------------------------------------ */

typedef struct {
    char *base;   /* NULL while measuring */
    size_t off;
} Carver;

static void *carve(Carver *c, size_t bytes)
{
    size_t at = (c->off + 63) & ~(size_t)63;
    c->off = at + bytes;
    return c->base ? c->base + at : NULL;
}

static int max_attn_dim(const UViTConfig *c)
{
    int m = 0;
    for (int i = 0; i < c->num_blocks; i++)
        if (c->block_num_heads[i] * c->head_dim > m) m = c->block_num_heads[i] * c->head_dim;
    return m;
}
static int max_heads(const UViTConfig *c)
{
    int m = 0;
    for (int i = 0; i < c->num_blocks; i++)
        if (c->block_num_heads[i] > m) m = c->block_num_heads[i];
    return m;
}
static int max_mlp(const UViTConfig *c)
{
    int m = 0;
    for (int i = 0; i < c->num_blocks; i++)
        if (c->block_mlp_hidden[i] > m) m = c->block_mlp_hidden[i];
    return m;
}

/* lays out every buffer; with base NULL only measures */
static void layout(UViTActs *a, const UViTConfig *c, char *base)
{
    Carver cv = {base, 0};
    size_t e = dtype_size(a->dt), B = (size_t)a->max_batch;
    size_t D = c->embed_dim, N = uvit_num_patches(c), T = uvit_num_tokens(c);
    size_t P = (size_t)c->in_chans * c->patch_size * c->patch_size;
    size_t img = (size_t)c->in_chans * c->img_size * c->img_size;
    size_t L = uvit_is_text(c) ? (size_t)c->num_clip_token : 0;
    size_t BTD = B * T * D * e;
#define ACT(n) carve(&cv, (n) * e)
#define F32(n) (float *)carve(&cv, (n) * sizeof(float))
    a->patches = ACT(B * N * P);
    a->patch_tok = ACT(B * N * D);
    a->temb = ACT(B * D);
    a->te1 = ACT(B * 4 * D);
    a->te1s = ACT(B * 4 * D);
    a->time_tok = ACT(B * D);
    a->label_tok = ACT(B * D);
    a->context_tok = L ? ACT(B * L * D) : NULL;
    a->context_act = L && a->dt != DT_F32 ? ACT(B * L * (size_t)c->clip_dim) : NULL;
    a->seq = ACT(B * T * D);
    a->h0 = ACT(B * T * D);
    BlockActs shared = {0};
    for (int i = 0; i < c->num_blocks; i++) {
        a->hidden[i] = carve(&cv, BTD);
        if (!a->training && i > 0) {
            a->blk[i] = shared;
            continue;
        }
        /* inference sizes its one shared set for the widest block */
        size_t A = a->training ? (size_t)c->block_num_heads[i] * c->head_dim : (size_t)max_attn_dim(c);
        size_t H = a->training ? (size_t)c->block_num_heads[i] : (size_t)max_heads(c);
        size_t Hm = a->training ? (size_t)c->block_mlp_hidden[i] : (size_t)max_mlp(c);
        BlockActs *b = &a->blk[i];
        b->in = carve(&cv, BTD);
        b->cat = ACT(B * T * 2 * D);
        b->ln1 = carve(&cv, BTD);
        b->qkv = ACT(B * T * 3 * A);
        b->att = ACT(B * T * A);
        b->res1 = carve(&cv, BTD);
        b->ln2 = carve(&cv, BTD);
        b->fc1 = a->training ? ACT(B * T * Hm) : NULL;  /* the GELU's input, for its backward */
        b->gelu = ACT(B * T * Hm);
        b->mean1 = F32(B * T);
        b->rstd1 = F32(B * T);
        b->mean2 = F32(B * T);
        b->rstd2 = F32(B * T);
        b->probs = a->training ? F32(B * H * T * T) : NULL;
        shared = *b;
    }
    a->hslice = ACT(B * N * D);
    a->lnf = ACT(B * N * D);
    a->meanf = F32(B * N);
    a->rstdf = F32(B * N);
    a->dec = ACT(B * N * P);
    a->img = ACT(B * img);
    if (a->training) {
        size_t A = max_attn_dim(c), H = max_heads(c), Hm = max_mlp(c);
        a->dh0 = carve(&cv, BTD);
        for (int i = 0; i < c->num_blocks; i++) a->dh[i] = carve(&cv, BTD);
        a->d_ln = carve(&cv, BTD);
        a->d_res1 = carve(&cv, BTD);
        a->d_skip = carve(&cv, BTD);
        a->d_qkv = ACT(B * T * 3 * A);
        a->d_att = ACT(B * T * A);
        a->d_probs = F32(B * H * T * T);
        a->d_fc1 = ACT(B * T * Hm);
        a->d_gelu = ACT(B * T * Hm);
        a->d_cat = ACT(B * T * 2 * D);
        a->d_hslice = ACT(B * N * D);
        a->d_lnf = ACT(B * N * D);
        a->d_dec = ACT(B * N * P);
        a->d_img = ACT(B * img);
        a->d_patch_tok = ACT(B * N * D);
        a->d_time_tok = ACT(B * D);
        a->d_te1 = ACT(B * 4 * D);
        a->d_te1s = ACT(B * 4 * D);
        a->d_label_tok = ACT(B * D);
        a->d_context_tok = L ? ACT(B * L * D) : NULL;
    }
#undef ACT
#undef F32
    a->bytes = cv.off;
}

/* ---- pieces: a block's batch split across threads ------------------------------
 * On the CPU a block may run its batch as pieces at once (ctx_split_run),
 * each piece on one thread through every op of the block, instead of every
 * op splitting its rows across the threads and meeting them at its end. On
 * a 2-core Zen 5, for the Fashion-MNIST config (D = 128, T = 50, batch 32;
 * its largest block holds 0.88 MiB of weights) that made the forward and the
 * forward + backward 7-17% faster; for D = 256 (3.5 MiB) forwards ranged
 * from 11% slower to 8% faster; for U-ViT-S/2 (D = 512, 14 MiB) the forward
 * was 30% slower, each thread streaming every weight itself. So blocks run
 * as pieces when the largest one's weights fit UVIT_PIECE_MAX_WEIGHT_BYTES
 * (uvit.h). In a backward, piece k > 0 sums its weight gradients into its
 * own zeroed buffer (piece_grads), added to the model's after the block.
 */
enum { BLOCK_TENSORS = 14 };
/* every tensor of a block's parameters is in block_tensors' list: one left
   out would have the pieces add to the model's gradient at once */
_Static_assert(sizeof(UViTBlockParams) == offsetof(UViTBlockParams, norm1_w) + BLOCK_TENSORS * sizeof(Tensor),
               "UViTBlockParams: block_tensors must list every tensor");

/* the block's parameter tensors (absent ones included) */
static void block_tensors(UViTBlockParams *b, Tensor *t[BLOCK_TENSORS])
{
    Tensor *all[BLOCK_TENSORS] = {&b->norm1_w, &b->norm1_b, &b->qkv_w,   &b->qkv_b,   &b->proj_w,
                                  &b->proj_b,  &b->norm2_w, &b->norm2_b, &b->fc1_w,   &b->fc1_b,
                                  &b->fc2_w,   &b->fc2_b,   &b->skip_w,  &b->skip_b};
    memcpy(t, all, sizeof all);
}

int uvit_block_pieces(const Ctx *ctx, const UViTConfig *c)
{
    return uvit_largest_block_params(c) * sizeof(float) <= UVIT_PIECE_MAX_WEIGHT_BYTES ? ctx_split_threads(ctx) : 1;
}

/* points b's tensors into buf, packed in block_tensors' order */
static void block_repoint(UViTBlockParams *b, float *buf)
{
    Tensor *t[BLOCK_TENSORS];
    block_tensors(b, t);
    for (int k = 0; k < BLOCK_TENSORS; k++)
        if (tensor_present(*t[k])) {
            t[k]->data = buf;
            buf += tensor_numel(*t[k]);
        }
}

/* how many pieces a's blocks run as for its current batch */
static int pieces_now(Ctx *ctx, const UViTActs *a) { return ctx_split_pieces(ctx, a->pieces, a->B); }

/* piece k of n of a's current batch */
static void piece_view(UViTActs *view, const UViTActs *a, int k, int n)
{
    *view = *a;
    view->b0 = a->b0 + ctx_piece_start(a->B, k, n);
    view->B = ctx_piece_start(a->B, k + 1, n) - ctx_piece_start(a->B, k, n);
}

UViTActs *uvit_acts_create(Ctx *ctx, const UViT *m, int max_batch, int training)
{
    CHECK(max_batch > 0, "uvit_acts_create: max_batch must be positive");
    UViTActs *a = xcalloc(1, sizeof *a);
    a->max_batch = max_batch;
    a->training = training;
    a->dt = ctx->act_dtype;
    a->T = uvit_num_tokens(&m->cfg);
    a->D = m->cfg.embed_dim;
    layout(a, &m->cfg, NULL);
    a->arena = ctx_alloc(ctx, a->bytes);
    layout(a, &m->cfg, a->arena);
    a->block_grad_floats = uvit_largest_block_params(&m->cfg);
    a->pieces = uvit_block_pieces(ctx, &m->cfg);
    if (training && a->pieces > 1)
        a->piece_grads = ctx_alloc(ctx, (size_t)(a->pieces - 1) * a->block_grad_floats * sizeof(float));
    if (!training) row_list_create(&a->kept, ctx, max_batch);
    return a;
}

void uvit_acts_destroy(Ctx *ctx, UViTActs *a)
{
    if (!a) return;
    ctx_free(ctx, a->arena);
    ctx_free(ctx, a->piece_grads);
    if (!a->training) row_list_destroy(&a->kept, ctx);
    free(a);
}

/* ---- views ------------------------------------------------------------------ */

/* every view starts at the view's first image, b0, of a buffer of
   `per_image` elements of `bytes` each per image */
static void *first(const UViTActs *a, void *p, int64_t per_image, size_t bytes)
{
    return p ? (char *)p + (size_t)a->b0 * (size_t)per_image * bytes : NULL;
}
static Tensor v2(const UViTActs *a, void *p, int64_t d1)
{
    return tensor2(first(a, p, d1, dtype_size(a->dt)), a->dt, a->B, d1);
}
static Tensor v3(const UViTActs *a, void *p, int64_t d1, int64_t d2)
{
    return tensor3(first(a, p, d1 * d2, dtype_size(a->dt)), a->dt, a->B, d1, d2);
}
static Tensor stats(const UViTActs *a, float *p, int64_t rows)
{
    return tensor1(first(a, p, rows, sizeof(float)), DT_F32, a->B * rows);
}
static Tensor image(const UViTActs *a, const UViTConfig *c, void *p)
{
    int64_t C = c->in_chans, H = c->img_size;
    return tensor4(first(a, p, C * H * H, dtype_size(a->dt)), a->dt, a->B, C, H, H);
}
/* attention probabilities [B, heads, T, T], F32 */
static Tensor probs_view(const UViTActs *a, float *p, int64_t heads, int64_t T)
{
    return tensor4(first(a, p, heads * T * T, sizeof(float)), DT_F32, a->B, heads, T, T);
}

Tensor uvit_hidden(const UViTActs *a, int block)
{
    return v3(a, block < 0 ? a->h0 : a->hidden[block], a->T, a->D);
}

/* out blocks take a skip from the in block that mirrors them */
static int skip_source(const UViTConfig *c, int block)
{
    int n_in = c->depth / 2;
    return block > n_in ? n_in - 1 - (block - n_in - 1) : -1;
}

/* ---- forward -------------------------------------------------------------------- */

/* checks the conditioning against the configuration (a caller's bug when wrong) */
static void check_cond(const UViTConfig *c, Conditioning cond, int64_t B)
{
    CHECK((c->num_classes > 0) == tensor_present(cond.y), "uvit_embed: labels %s for a %s network",
          tensor_present(cond.y) ? "given" : "missing", c->num_classes > 0 ? "class-conditional" : "label-free");
    CHECK(uvit_is_text(c) == tensor_present(cond.context), "uvit_embed: context %s for a %s network",
          tensor_present(cond.context) ? "given" : "missing", uvit_is_text(c) ? "text-to-image" : "context-free");
    if (uvit_is_text(c))
        CHECK(cond.context.dtype == DT_F32 && cond.context.ndim == 3 && cond.context.shape[0] == B &&
                  cond.context.shape[1] == c->num_clip_token && cond.context.shape[2] == c->clip_dim,
              "uvit_embed: context is not F32 [%lld, %d, %d]", (long long)B, c->num_clip_token, c->clip_dim);
}

void uvit_embed(Ctx *ctx, const UViT *m, UViTActs *a, Tensor x, Tensor t, Conditioning cond)
{
    const UViTConfig *c = &m->cfg;
    int B = (int)x.shape[0];
    CHECK(B >= 1 && B <= a->max_batch, "uvit_embed: batch %d outside 1..%d", B, a->max_batch);
    check_cond(c, cond, B);
    a->B = B;
    a->y = cond.y;
    a->context = cond.context;
    int64_t D = c->embed_dim, N = uvit_num_patches(c), T = uvit_num_tokens(c);
    int64_t P = (int64_t)c->in_chans * c->patch_size * c->patch_size;
    int extras = uvit_num_extras(c);
    const struct UViTViews *w = &m->w;

    /* patch embedding: a stride-p conv as patchify + GEMM */
    Tensor patches = v3(a, a->patches, N, P);            /* [B,N,C p p] */
    Tensor ptok = v3(a, a->patch_tok, N, D);             /* [B,N,D] */
    op_patchify_forward(ctx, patches, x, c->patch_size, PATCH_CHW);
    op_linear_forward(ctx, ptok, patches, w->patch_w, w->patch_b);

    /* time token [B,D] */
    Tensor temb = v2(a, a->temb, D);
    op_timestep_embedding_forward(ctx, temb, t);
    Tensor ttok = temb;
    if (c->mlp_time_embed) {
        Tensor te1 = v2(a, a->te1, 4 * D), te1s = v2(a, a->te1s, 4 * D);
        ttok = v2(a, a->time_tok, D);
        op_linear_forward(ctx, te1, temb, w->time0_w, w->time0_b);
        op_silu_forward(ctx, te1s, te1);
        op_linear_forward(ctx, ttok, te1s, w->time2_w, w->time2_b);
    }

    /* sequence [label, time, patches], [time, patches] or [time, context, patches]
       + pos_embed -> h0 [B,T,D] */
    Tensor seq = v3(a, a->seq, T, D);
    if (c->num_classes > 0) {
        Tensor ltok = v2(a, a->label_tok, D);
        op_embedding_forward(ctx, ltok, cond.y, w->label_emb);
        op_token_place_forward(ctx, seq, v3(a, a->label_tok, 1, D), 0);
    }
    op_token_place_forward(ctx, seq, v3(a, ttok.data, 1, D), uvit_time_token(c));
    if (uvit_is_text(c)) {
        /* context_embed: [B,L,Dc] -> [B,L,D]. The contexts are F32 (check_cond),
           the activations' dtype on the CPU backend; a BF16 backend's linear
           takes its input in BF16, so they are converted first (a converting
           copy of every token), and the backward reads that copy */
        if (a->context_act) {
            a->context = v3(a, a->context_act, c->num_clip_token, c->clip_dim);
            op_token_slice_forward(ctx, a->context, cond.context, 0);
        }
        Tensor ctok = v3(a, a->context_tok, c->num_clip_token, D);
        op_linear_forward(ctx, ctok, a->context, w->context_w, w->context_b);
        op_token_place_forward(ctx, seq, ctok, UVIT_CONTEXT_TOKEN);
    }
    op_token_place_forward(ctx, seq, ptok, extras);
    op_add_bcast_forward(ctx, v3(a, a->h0, T, D), seq, tensor2(w->pos_embed.data, DT_F32, T, D));
}

static void block_forward(Ctx *ctx, const UViT *m, UViTActs *a, int i)
{
    const UViTConfig *c = &m->cfg;
    const UViTBlockParams *w = &m->w.blocks[i];
    BlockActs *b = &a->blk[i];
    int64_t D = c->embed_dim, T = uvit_num_tokens(c), A = w->attn_dim, Hm = w->mlp_hidden;
    Tensor in = v3(a, i == 0 ? a->h0 : a->hidden[i - 1], T, D);
    int src = skip_source(c, i);
    if (src >= 0) {
        /* x = skip_linear(cat[x, skip]) */
        Tensor cat = v3(a, b->cat, T, 2 * D);
        op_concat_forward(ctx, cat, in, v3(a, a->hidden[src], T, D));
        in = v3(a, b->in, T, D);
        op_linear_forward(ctx, in, cat, w->skip_w, w->skip_b);
    }
    Tensor ln1 = v3(a, b->ln1, T, D), qkv = v3(a, b->qkv, T, 3 * A), att = v3(a, b->att, T, A);
    Tensor res1 = v3(a, b->res1, T, D), ln2 = v3(a, b->ln2, T, D);
    Tensor fc1 = b->fc1 ? v3(a, b->fc1, T, Hm) : tensor_none(), gelu = v3(a, b->gelu, T, Hm);
    Tensor out = v3(a, a->hidden[i], T, D);
    Tensor probs = b->probs ? probs_view(a, b->probs, w->heads, T) : tensor_none();

    /* x = x + proj(attn(norm1(x))) */
    op_layernorm_forward(ctx, ln1, stats(a, b->mean1, T), stats(a, b->rstd1, T), in,
                         w->norm1_w, w->norm1_b, 1e-5f);
    op_linear_forward(ctx, qkv, ln1, w->qkv_w, w->qkv_b);
    op_attention_forward(ctx, att, probs, qkv, w->heads);
    op_linear_residual_forward(ctx, res1, att, w->proj_w, w->proj_b, in);
    /* x = x + fc2(gelu(fc1(norm2(x)))) */
    op_layernorm_forward(ctx, ln2, stats(a, b->mean2, T), stats(a, b->rstd2, T), res1,
                         w->norm2_w, w->norm2_b, 1e-5f);
    op_linear_gelu_forward(ctx, gelu, fc1, ln2, w->fc1_w, w->fc1_b);
    op_linear_residual_forward(ctx, out, gelu, w->fc2_w, w->fc2_b, res1);
}

/* one block run as pieces (ctx_split_run) */
typedef struct {
    const UViT *m;
    UViTActs *a;
    int block, pieces;
} BlockPieces;

static void block_forward_piece(Ctx *worker, int piece, void *user)
{
    const BlockPieces *job = user;
    UViTActs view;
    piece_view(&view, job->a, piece, job->pieces);
    block_forward(worker, job->m, &view, job->block);
}

void uvit_block(Ctx *ctx, const UViT *m, UViTActs *a, int i)
{
    phase_begin(ctx, PHASE_BLOCK, i);
    int n = pieces_now(ctx, a);
    if (n > 1) ctx_split_run(ctx, n, block_forward_piece, &(BlockPieces){m, a, i, n});
    else block_forward(ctx, m, a, i);
    phase_end(ctx, PHASE_BLOCK);
}

void uvit_decode(Ctx *ctx, const UViT *m, UViTActs *a, Tensor out)
{
    const UViTConfig *c = &m->cfg;
    const struct UViTViews *w = &m->w;
    int64_t D = c->embed_dim, N = uvit_num_patches(c), T = uvit_num_tokens(c);
    int64_t P = (int64_t)c->in_chans * c->patch_size * c->patch_size;
    /* LayerNorm and decoder_pred are per token, so the extras are dropped
       first: the same result as U-ViT, without decoding tokens it discards */
    Tensor hs = v3(a, a->hslice, N, D), lnf = v3(a, a->lnf, N, D), dec = v3(a, a->dec, N, P);
    op_token_slice_forward(ctx, hs, v3(a, a->hidden[c->num_blocks - 1], T, D), uvit_num_extras(c));
    op_layernorm_forward(ctx, lnf, stats(a, a->meanf, N), stats(a, a->rstdf, N), hs,
                         w->norm_w, w->norm_b, 1e-5f);
    op_linear_forward(ctx, dec, lnf, w->dec_w, w->dec_b);
    if (c->conv) {
        Tensor img = image(a, c, a->img);
        op_unpatchify_forward(ctx, img, dec, c->patch_size, PATCH_HWC);
        op_conv2d_forward(ctx, out, img, w->final_w, w->final_b, (Conv2dParams){1, 1, 1, 1});
    } else {
        op_unpatchify_forward(ctx, out, dec, c->patch_size, PATCH_HWC);
    }
}

void uvit_forward(Ctx *ctx, const UViT *m, UViTActs *a, Tensor x, Tensor t, Conditioning cond, Tensor out)
{
    uvit_embed(ctx, m, a, x, t, cond);
    for (int i = 0; i < m->cfg.num_blocks; i++) uvit_block(ctx, m, a, i);
    uvit_decode(ctx, m, a, out);
}

/* ---- backward -------------------------------------------------------------------- */

static void zero(Ctx *ctx, const UViTActs *a, void *p, int64_t per_image)
{
    ctx_zero(ctx, v2(a, p, per_image));
}

/* block i's backward into the gradients g (the model's, or a piece's own) */
static void block_backward(Ctx *ctx, const UViT *m, UViTActs *a, int i, const UViTBlockParams *g)
{
    const UViTConfig *c = &m->cfg;
    const UViTBlockParams *w = &m->w.blocks[i];
    BlockActs *b = &a->blk[i];
    int64_t D = c->embed_dim, T = uvit_num_tokens(c), A = w->attn_dim, Hm = w->mlp_hidden;
    int src = skip_source(c, i);
    void *prev = i == 0 ? a->h0 : a->hidden[i - 1];
    Tensor in = v3(a, src >= 0 ? b->in : prev, T, D);
    /* where dL/d(block input) goes: straight to the previous hidden state,
       or through skip_linear for out blocks */
    Tensor din = v3(a, src >= 0 ? a->d_skip : (i == 0 ? a->dh0 : a->dh[i - 1]), T, D);
    Tensor dout = v3(a, a->dh[i], T, D);
    Tensor ln1 = v3(a, b->ln1, T, D), qkv = v3(a, b->qkv, T, 3 * A), att = v3(a, b->att, T, A);
    Tensor res1 = v3(a, b->res1, T, D), ln2 = v3(a, b->ln2, T, D);
    Tensor fc1 = v3(a, b->fc1, T, Hm), gelu = v3(a, b->gelu, T, Hm);
    Tensor d_ln = v3(a, a->d_ln, T, D), d_res1 = v3(a, a->d_res1, T, D);
    Tensor d_fc1 = v3(a, a->d_fc1, T, Hm), d_gelu = v3(a, a->d_gelu, T, Hm);
    Tensor d_qkv = v3(a, a->d_qkv, T, 3 * A), d_att = v3(a, a->d_att, T, A);
    Tensor probs = probs_view(a, b->probs, w->heads, T), d_probs = probs_view(a, a->d_probs, w->heads, T);

    /* MLP branch: out = res1 + fc2(gelu(fc1(ln2(res1)))); the scratch
       gradients are written (_set), not zeroed and accumulated into */
    op_linear_backward_set(ctx, d_gelu, g->fc2_w, g->fc2_b, dout, gelu, w->fc2_w);
    op_linear_gelu_backward_set(ctx, d_ln, g->fc1_w, g->fc1_b, d_fc1, d_gelu, ln2, w->fc1_w, fc1);
    /* the residual: d_res1 = dout, plus what flows back through ln2 */
    ctx_copy(ctx, d_res1.data, dout.data, tensor_bytes(dout));
    op_layernorm_backward(ctx, d_res1, g->norm2_w, g->norm2_b, d_ln, res1, w->norm2_w,
                          stats(a, b->mean2, T), stats(a, b->rstd2, T));
    /* attention branch: res1 = in + proj(attn(ln1(in))); an out block's din
       (d_skip) starts here, the others add to what later blocks left */
    if (src >= 0) ctx_copy(ctx, din.data, d_res1.data, tensor_bytes(d_res1));
    else op_accumulate(ctx, din, d_res1);
    op_linear_backward_set(ctx, d_att, g->proj_w, g->proj_b, d_res1, att, w->proj_w);
    op_attention_backward_set(ctx, d_qkv, d_probs, d_att, qkv, probs, w->heads);
    op_linear_backward_set(ctx, d_ln, g->qkv_w, g->qkv_b, d_qkv, ln1, w->qkv_w);
    op_layernorm_backward(ctx, din, g->norm1_w, g->norm1_b, d_ln, in, w->norm1_w,
                          stats(a, b->mean1, T), stats(a, b->rstd1, T));
    if (src >= 0) {
        /* in = skip_linear(cat[prev, skip]) */
        Tensor d_cat = v3(a, a->d_cat, T, 2 * D);
        op_linear_backward_set(ctx, d_cat, g->skip_w, g->skip_b, din, v3(a, b->cat, T, 2 * D), w->skip_w);
        op_concat_backward(ctx, v3(a, a->dh[i - 1], T, D), v3(a, a->dh[src], T, D), d_cat);
    }
}

static void decode_backward(Ctx *ctx, UViT *m, UViTActs *a, Tensor dout)
{
    const UViTConfig *c = &m->cfg;
    const struct UViTViews *w = &m->w, *g = &m->g;
    int64_t D = c->embed_dim, N = uvit_num_patches(c), T = uvit_num_tokens(c);
    int64_t P = (int64_t)c->in_chans * c->patch_size * c->patch_size;
    Tensor d_dec = v3(a, a->d_dec, N, P), d_lnf = v3(a, a->d_lnf, N, D), d_hs = v3(a, a->d_hslice, N, D);
    Tensor dimg = dout;
    if (c->conv) {
        dimg = image(a, c, a->d_img);
        ctx_zero(ctx, dimg);
        op_conv2d_backward(ctx, dimg, g->final_w, g->final_b, dout, image(a, c, a->img), w->final_w,
                           (Conv2dParams){1, 1, 1, 1});
    }
    ctx_zero(ctx, d_dec);
    op_unpatchify_backward(ctx, d_dec, dimg, c->patch_size, PATCH_HWC);
    op_linear_backward_set(ctx, d_lnf, g->dec_w, g->dec_b, d_dec, v3(a, a->lnf, N, D), w->dec_w);
    ctx_zero(ctx, d_hs);
    op_layernorm_backward(ctx, d_hs, g->norm_w, g->norm_b, d_lnf, v3(a, a->hslice, N, D), w->norm_w,
                          stats(a, a->meanf, N), stats(a, a->rstdf, N));
    op_token_slice_backward(ctx, v3(a, a->dh[c->num_blocks - 1], T, D), d_hs, uvit_num_extras(c));
}

static void embed_backward(Ctx *ctx, UViT *m, UViTActs *a)
{
    const UViTConfig *c = &m->cfg;
    const struct UViTViews *w = &m->w, *g = &m->g;
    int64_t D = c->embed_dim, N = uvit_num_patches(c), T = uvit_num_tokens(c);
    int64_t P = (int64_t)c->in_chans * c->patch_size * c->patch_size;
    int extras = uvit_num_extras(c);
    Tensor dh0 = v3(a, a->dh0, T, D);
    /* h0 = seq + pos_embed: dL/dseq is dh0 itself */
    op_add_bcast_backward(ctx, tensor_none(), tensor2(g->pos_embed.data, DT_F32, T, D), dh0);
    Tensor d_ptok = v3(a, a->d_patch_tok, N, D);
    ctx_zero(ctx, d_ptok);
    op_token_place_backward(ctx, d_ptok, dh0, extras);
    op_linear_backward(ctx, tensor_none(), g->patch_w, g->patch_b, d_ptok, v3(a, a->patches, N, P),
                       w->patch_w);
    if (c->mlp_time_embed) {
        Tensor d_tt = v3(a, a->d_time_tok, 1, D);
        Tensor d_te1 = v2(a, a->d_te1, 4 * D), d_te1s = v2(a, a->d_te1s, 4 * D);
        ctx_zero(ctx, d_tt);
        op_token_place_backward(ctx, d_tt, dh0, uvit_time_token(c));
        d_tt = v2(a, a->d_time_tok, D);
        op_linear_backward_set(ctx, d_te1s, g->time2_w, g->time2_b, d_tt, v2(a, a->te1s, 4 * D), w->time2_w);
        ctx_zero(ctx, d_te1);
        op_silu_backward(ctx, d_te1, d_te1s, v2(a, a->te1, 4 * D));
        op_linear_backward(ctx, tensor_none(), g->time0_w, g->time0_b, d_te1, v2(a, a->temb, D),
                           w->time0_w);
    }
    if (uvit_is_text(c)) {
        /* context_embed's weights; the contexts themselves are inputs */
        Tensor d_ctok = v3(a, a->d_context_tok, c->num_clip_token, D);
        ctx_zero(ctx, d_ctok);
        op_token_place_backward(ctx, d_ctok, dh0, UVIT_CONTEXT_TOKEN);
        op_linear_backward(ctx, tensor_none(), g->context_w, g->context_b, d_ctok, a->context, w->context_w);
    }
    if (c->num_classes > 0) {
        Tensor d_lt = v3(a, a->d_label_tok, 1, D);
        ctx_zero(ctx, d_lt);
        op_token_place_backward(ctx, d_lt, dh0, 0);
        op_embedding_backward(ctx, g->label_emb, v2(a, a->d_label_tok, D), a->y);
    }
}

static void block_backward_piece(Ctx *worker, int piece, void *user)
{
    const BlockPieces *job = user;
    UViTActs view;
    piece_view(&view, job->a, piece, job->pieces);
    UViTBlockParams g = job->m->g.blocks[job->block];
    if (piece > 0) {
        float *own = job->a->piece_grads + (size_t)(piece - 1) * job->a->block_grad_floats;
        block_repoint(&g, own);
        ctx_zero(worker, tensor1(own, DT_F32, (int64_t)job->a->block_grad_floats));
    }
    block_backward(worker, job->m, &view, job->block, &g);
}

/* block i's backward, as pieces when a's blocks run so; the pieces'
   gradients are then added to the model's */
static void block_backward_pieces(Ctx *ctx, UViT *m, UViTActs *a, int i)
{
    int n = pieces_now(ctx, a);
    if (n == 1) {
        block_backward(ctx, m, a, i, &m->g.blocks[i]);
        return;
    }
    ctx_split_run(ctx, n, block_backward_piece, &(BlockPieces){m, a, i, n});
    Tensor *mine[BLOCK_TENSORS], *theirs[BLOCK_TENSORS];
    block_tensors(&m->g.blocks[i], mine);
    for (int piece = 1; piece < n; piece++) {
        UViTBlockParams g = m->g.blocks[i];
        block_repoint(&g, a->piece_grads + (size_t)(piece - 1) * a->block_grad_floats);
        block_tensors(&g, theirs);
        for (int k = 0; k < BLOCK_TENSORS; k++)
            if (tensor_present(*mine[k])) op_accumulate(ctx, *mine[k], *theirs[k]);
    }
}

void uvit_backward_zero(Ctx *ctx, const UViT *m, UViTActs *a)
{
    CHECK(a->training, "uvit_backward: the activations were created for inference");
    int64_t TD = (int64_t)uvit_num_tokens(&m->cfg) * m->cfg.embed_dim;
    zero(ctx, a, a->dh0, TD);
    for (int i = 0; i < m->cfg.num_blocks; i++) zero(ctx, a, a->dh[i], TD);
}

Tensor uvit_hidden_grad(const UViTActs *a, int block)
{
    CHECK(a->training, "uvit_hidden_grad: the activations were created for inference");
    return v3(a, a->dh[block], a->T, a->D);
}

void uvit_backward_from(Ctx *ctx, UViT *m, UViTActs *a, Tensor dout)
{
    CHECK(a->training, "uvit_backward: the activations were created for inference");
    CHECK(m->grads, "uvit_backward: call uvit_enable_grads first");
    if (tensor_present(dout)) decode_backward(ctx, m, a, dout);
    for (int i = m->cfg.num_blocks - 1; i >= 0; i--) {
        phase_begin(ctx, PHASE_BLOCK_BACKWARD, i);
        block_backward_pieces(ctx, m, a, i);
        phase_end(ctx, PHASE_BLOCK_BACKWARD);
    }
    embed_backward(ctx, m, a);
}

void uvit_backward(Ctx *ctx, UViT *m, UViTActs *a, Tensor dout)
{
    uvit_backward_zero(ctx, m, a);
    uvit_backward_from(ctx, m, a, dout);
}

/* ---- early exit: dropping rows ------------------------------------------------- */

/* moves rows kept[k] of a [B, T, D] buffer of the arena to rows k, in order */
static void keep_rows(Ctx *ctx, const UViTActs *a, void *buf, Tensor kept)
{
    Tensor t = tensor3(buf, a->dt, a->B, a->T, a->D);
    op_rows_copy(ctx, t, tensor_none(), t, kept);
}

void uvit_keep_rows(Ctx *ctx, const UViT *m, UViTActs *a, int block, const int *keep, int n)
{
    const UViTConfig *c = &m->cfg;
    CHECK(!a->training, "uvit_keep_rows: training arenas keep every row");
    CHECK(n >= 1 && n <= a->B, "uvit_keep_rows: %d rows of %d", n, a->B);
    for (int k = 0; k < n; k++)
        CHECK(keep[k] >= k && keep[k] < a->B && (k == 0 || keep[k] > keep[k - 1]),
              "uvit_keep_rows: keep must be ascending rows of the batch");
    if (!rows_in_place(keep, n)) {
        Tensor kept = row_list_set(&a->kept, ctx, keep, NULL, n);
        keep_rows(ctx, a, a->hidden[block], kept);
        /* the long skips still to be read by the out blocks after this one,
           from in blocks that ran (a later in block writes its own rows) */
        for (int r = block + 1; r < c->num_blocks; r++) {
            int j = skip_source(c, r);
            if (j >= 0 && j < block) keep_rows(ctx, a, a->hidden[j], kept);
        }
    }
    a->B = n;
}

int uvit_batch(const UViTActs *a) { return a->B; }
