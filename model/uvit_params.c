/*
 * uvit_params.c: U-ViT's parameters: the name table (official state-dict
 * names), the single parameter buffer and its tensor views, checkpoint load
 * and save, and the parameter and multiply-add counts.
 */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "../kernels/errors.h"
#include "uvit.h"

/* ---- the name table ------------------------------------------------------- */

typedef struct {
    UViT *m;
    int count, cap;
} TableBuilder;

/* appends one parameter; returns its index */
static int add_param(TableBuilder *tb, int ndim, const int64_t *shape, const char *fmt, ...)
{
    UViT *m = tb->m;
    if (tb->count == tb->cap) {
        tb->cap = tb->cap ? 2 * tb->cap : 64;
        m->params = xrealloc(m->params, (size_t)tb->cap * sizeof *m->params);
    }
    ParamInfo *p = &m->params[tb->count];
    memset(p, 0, sizeof *p);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    param_place(p, ndim, shape, &m->total);
    return tb->count++;
}

#define P1(tb, a, ...) add_param(tb, 1, (int64_t[]){a}, __VA_ARGS__)
#define P2(tb, a, b, ...) add_param(tb, 2, (int64_t[]){a, b}, __VA_ARGS__)
#define P3(tb, a, b, c, ...) add_param(tb, 3, (int64_t[]){a, b, c}, __VA_ARGS__)
#define P4(tb, a, b, c, d, ...) add_param(tb, 4, (int64_t[]){a, b, c, d}, __VA_ARGS__)

/* indices of every parameter, -1 when the configuration has none */
typedef struct {
    int norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b;
    int norm2_w, norm2_b, fc1_w, fc1_b, fc2_w, fc2_b, skip_w, skip_b;
} BlockIndex;
typedef struct {
    int patch_w, patch_b, time0_w, time0_b, time2_w, time2_b, context_w, context_b, label_emb, pos_embed;
    int norm_w, norm_b, dec_w, dec_b, final_w, final_b;
    BlockIndex blk[UVIT_MAX_BLOCKS];
} ParamIndex;

/* block i's state-dict prefix: in_blocks.i, mid_block, out_blocks.j */
static void block_prefix(const UViTConfig *c, int i, char *buf, size_t n)
{
    int n_in = c->depth / 2;
    if (i < n_in) snprintf(buf, n, "in_blocks.%d", i);
    else if (i == n_in) snprintf(buf, n, "mid_block");
    else snprintf(buf, n, "out_blocks.%d", i - n_in - 1);
}

static void build_table(UViT *m, ParamIndex *ix)
{
    const UViTConfig *c = &m->cfg;
    TableBuilder tb = {m, 0, 0};
    int64_t D = c->embed_dim, C = c->in_chans, p = c->patch_size;
    memset(ix, -1, sizeof *ix);

    ix->patch_w = P4(&tb, D, C, p, p, "patch_embed.proj.weight");
    ix->patch_b = P1(&tb, D, "patch_embed.proj.bias");
    if (c->mlp_time_embed) {
        ix->time0_w = P2(&tb, 4 * D, D, "time_embed.0.weight");
        ix->time0_b = P1(&tb, 4 * D, "time_embed.0.bias");
        ix->time2_w = P2(&tb, D, 4 * D, "time_embed.2.weight");
        ix->time2_b = P1(&tb, D, "time_embed.2.bias");
    }
    if (uvit_is_text(c)) {
        ix->context_w = P2(&tb, D, c->clip_dim, "context_embed.weight");
        ix->context_b = P1(&tb, D, "context_embed.bias");
    }
    if (c->num_classes > 0) ix->label_emb = P2(&tb, c->num_classes, D, "label_emb.weight");
    ix->pos_embed = P3(&tb, 1, uvit_num_tokens(c), D, "pos_embed");
    for (int i = 0; i < c->num_blocks; i++) {
        char pre[32];
        block_prefix(c, i, pre, sizeof pre);
        int64_t A = (int64_t)c->block_num_heads[i] * c->head_dim, Hm = c->block_mlp_hidden[i];
        ix->blk[i].norm1_w = P1(&tb, D, "%s.norm1.weight", pre);
        ix->blk[i].norm1_b = P1(&tb, D, "%s.norm1.bias", pre);
        ix->blk[i].qkv_w = P2(&tb, 3 * A, D, "%s.attn.qkv.weight", pre);
        if (c->qkv_bias) ix->blk[i].qkv_b = P1(&tb, 3 * A, "%s.attn.qkv.bias", pre);
        ix->blk[i].proj_w = P2(&tb, D, A, "%s.attn.proj.weight", pre);
        ix->blk[i].proj_b = P1(&tb, D, "%s.attn.proj.bias", pre);
        ix->blk[i].norm2_w = P1(&tb, D, "%s.norm2.weight", pre);
        ix->blk[i].norm2_b = P1(&tb, D, "%s.norm2.bias", pre);
        ix->blk[i].fc1_w = P2(&tb, Hm, D, "%s.mlp.fc1.weight", pre);
        ix->blk[i].fc1_b = P1(&tb, Hm, "%s.mlp.fc1.bias", pre);
        ix->blk[i].fc2_w = P2(&tb, D, Hm, "%s.mlp.fc2.weight", pre);
        ix->blk[i].fc2_b = P1(&tb, D, "%s.mlp.fc2.bias", pre);
        if (i > c->depth / 2) {
            ix->blk[i].skip_w = P2(&tb, D, 2 * D, "%s.skip_linear.weight", pre);
            ix->blk[i].skip_b = P1(&tb, D, "%s.skip_linear.bias", pre);
        }
    }
    ix->norm_w = P1(&tb, D, "norm.weight");
    ix->norm_b = P1(&tb, D, "norm.bias");
    ix->dec_w = P2(&tb, p * p * C, D, "decoder_pred.weight");
    ix->dec_b = P1(&tb, p * p * C, "decoder_pred.bias");
    if (c->conv) {
        ix->final_w = P4(&tb, C, C, 3, 3, "final_layer.weight");
        ix->final_b = P1(&tb, C, "final_layer.bias");
    }
    m->num_params = tb.count;
}

/* a view of parameter i inside buffer base, or none when i < 0 */
static Tensor view(const UViT *m, float *base, int i)
{
    if (i < 0 || !base) return tensor_none();
    return param_view(&m->params[i], base);
}

static void build_views(const UViT *m, const ParamIndex *ix, float *base, struct UViTViews *v)
{
    const UViTConfig *c = &m->cfg;
    v->patch_w = view(m, base, ix->patch_w);
    /* the patch-embedding conv runs as a GEMM over (C, p1, p2) patches */
    if (base) v->patch_w = tensor2(v->patch_w.data, DT_F32, c->embed_dim,
                                   (int64_t)c->in_chans * c->patch_size * c->patch_size);
    v->patch_b = view(m, base, ix->patch_b);
    v->time0_w = view(m, base, ix->time0_w);
    v->time0_b = view(m, base, ix->time0_b);
    v->time2_w = view(m, base, ix->time2_w);
    v->time2_b = view(m, base, ix->time2_b);
    v->context_w = view(m, base, ix->context_w);
    v->context_b = view(m, base, ix->context_b);
    v->label_emb = view(m, base, ix->label_emb);
    v->pos_embed = view(m, base, ix->pos_embed);
    v->norm_w = view(m, base, ix->norm_w);
    v->norm_b = view(m, base, ix->norm_b);
    v->dec_w = view(m, base, ix->dec_w);
    v->dec_b = view(m, base, ix->dec_b);
    v->final_w = view(m, base, ix->final_w);
    v->final_b = view(m, base, ix->final_b);
    for (int i = 0; i < c->num_blocks; i++) {
        UViTBlockParams *b = &v->blocks[i];
        b->heads = c->block_num_heads[i];
        b->attn_dim = b->heads * c->head_dim;
        b->mlp_hidden = c->block_mlp_hidden[i];
        b->norm1_w = view(m, base, ix->blk[i].norm1_w);
        b->norm1_b = view(m, base, ix->blk[i].norm1_b);
        b->qkv_w = view(m, base, ix->blk[i].qkv_w);
        b->qkv_b = view(m, base, ix->blk[i].qkv_b);
        b->proj_w = view(m, base, ix->blk[i].proj_w);
        b->proj_b = view(m, base, ix->blk[i].proj_b);
        b->norm2_w = view(m, base, ix->blk[i].norm2_w);
        b->norm2_b = view(m, base, ix->blk[i].norm2_b);
        b->fc1_w = view(m, base, ix->blk[i].fc1_w);
        b->fc1_b = view(m, base, ix->blk[i].fc1_b);
        b->fc2_w = view(m, base, ix->blk[i].fc2_w);
        b->fc2_b = view(m, base, ix->blk[i].fc2_b);
        b->skip_w = view(m, base, ix->blk[i].skip_w);
        b->skip_b = view(m, base, ix->blk[i].skip_b);
    }
}

/* a scratch model holding only the name table of configuration c */
static void table_for(const UViTConfig *c, UViT *tmp, ParamIndex *ix)
{
    memset(tmp, 0, sizeof *tmp);
    tmp->cfg = *c;
    build_table(tmp, ix);
}

static void rebuild_views(UViT *m)
{
    UViT tmp;
    ParamIndex ix;
    table_for(&m->cfg, &tmp, &ix);
    free(tmp.params);
    build_views(m, &ix, m->weights, &m->w);
    build_views(m, &ix, m->grads, &m->g);
}

void uvit_create(UViT *m, Ctx *ctx, const UViTConfig *cfg)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    ParamIndex ix;
    build_table(m, &ix);
    m->weights = ctx_alloc(ctx, m->total * sizeof(float));
    ctx_zero(ctx, tensor1(m->weights, DT_F32, (int64_t)m->total));
    build_views(m, &ix, m->weights, &m->w);
}

void uvit_destroy(UViT *m, Ctx *ctx)
{
    ctx_free(ctx, m->weights);
    ctx_free(ctx, m->grads);
    free(m->params);
    memset(m, 0, sizeof *m);
}

void uvit_enable_grads(UViT *m, Ctx *ctx)
{
    if (!m->grads) {
        m->grads = ctx_alloc(ctx, m->total * sizeof(float));
        rebuild_views(m);
    }
    uvit_zero_grads(m, ctx);
}

void uvit_zero_grads(UViT *m, Ctx *ctx)
{
    if (m->grads) ctx_zero(ctx, tensor1(m->grads, DT_F32, (int64_t)m->total));
}

int uvit_find_param(const UViT *m, const char *name)
{
    for (int i = 0; i < m->num_params; i++)
        if (!strcmp(m->params[i].name, name)) return i;
    return -1;
}

/* ---- checkpoints ------------------------------------------------------------ */

int uvit_read_params(const UViT *m, Ctx *ctx, const SafeTensors *st, const char *prefix,
                     float *dst)
{
    size_t plen = strlen(prefix);
    /* every tensor under the prefix must be a parameter of this configuration;
       with no prefix, every tensor of the file; a method's own parameters
       ("method.*", model/method.h) sit beside the backbone's and are its to read */
    for (int i = 0; i < st->count; i++) {
        const char *name = st->entries[i].name;
        if (strncmp(name, prefix, plen) || !strncmp(name + plen, "method.", 7)) continue;
        if (uvit_find_param(m, name + plen) < 0)
            return err_set("%s: tensor '%s': not a parameter of this configuration "
                           "(check the config metadata)", st->path, name);
    }
    return param_table_read(st, m->params, m->num_params, prefix, ctx, dst);
}

int uvit_load_weights(UViT *m, Ctx *ctx, const SafeTensors *st, const char *prefix)
{
    return uvit_read_params(m, ctx, st, prefix, m->weights);
}

const char *uvit_default_prefix(const SafeTensors *st)
{
    static const char *const order[] = {"", "ema.", "model."};
    char name[64];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%spos_embed", order[i]);
        if (st_find(st, name)) return order[i];
    }
    return "";
}

int uvit_load_prefixed(UViT *m, Ctx *ctx, const char *path, const char *prefix)
{
    SafeTensors st;
    if (st_open(&st, path)) return -1;
    const char *json = st_metadata(&st, "config");
    UViTConfig cfg;
    char source[1100];
    snprintf(source, sizeof source, "%s: __metadata__", path);
    if (!json) {
        st_close(&st);
        return err_set("%s: missing \"config\" (the U-ViT configuration as JSON; see README)", source);
    }
    if (uvit_config_parse(&cfg, json, source)) {
        st_close(&st);
        return -1;
    }
    if (!prefix) prefix = uvit_default_prefix(&st);
    uvit_create(m, ctx, &cfg);
    int rc = uvit_load_weights(m, ctx, &st, prefix);
    st_close(&st);
    if (rc) uvit_destroy(m, ctx);
    return rc;
}

int uvit_load(UViT *m, Ctx *ctx, const char *path) { return uvit_load_prefixed(m, ctx, path, NULL); }

void uvit_write_params(const UViT *m, Ctx *ctx, StWriter *w, const char *prefix,
                       const float *src)
{
    float *host = xmalloc(m->total * sizeof(float));
    ctx_download(ctx, host, src, m->total * sizeof(float));
    param_table_write(w, m->params, m->num_params, prefix, host);
    free(host);
}

int uvit_save(const UViT *m, Ctx *ctx, const char *path, int n_meta,
              const char *const *meta_keys, const char *const *meta_values)
{
    StWriter *w = st_writer_new();
    uvit_write_params(m, ctx, w, "", m->weights);
    char *json = uvit_config_to_json(&m->cfg);
    st_writer_meta(w, "config", json);
    free(json);
    for (int i = 0; i < n_meta; i++) st_writer_meta(w, meta_keys[i], meta_values[i]);
    int rc = st_writer_save(w, path);
    st_writer_free(w);
    return rc;
}

/* ---- counts ---------------------------------------------------------------------- */

/* the parameters of block i of the table tmp with indices ix */
static size_t block_params(const UViT *tmp, const ParamIndex *ix, int block)
{
    BlockIndex b = ix->blk[block];
    int index[] = {b.norm1_w, b.norm1_b, b.qkv_w, b.qkv_b, b.proj_w, b.proj_b, b.norm2_w,
                   b.norm2_b, b.fc1_w,   b.fc1_b,   b.fc2_w, b.fc2_b, b.skip_w, b.skip_b};
    size_t n = 0;
    for (size_t k = 0; k < sizeof index / sizeof index[0]; k++)
        if (index[k] >= 0) n += tmp->params[index[k]].numel;
    return n;
}

/* configuration c's parameter count, and the most any block has */
static void count_params(const UViTConfig *c, size_t *total, size_t *largest_block)
{
    UViT tmp;
    ParamIndex ix;
    table_for(c, &tmp, &ix);
    *total = 0;
    for (int i = 0; i < tmp.num_params; i++) *total += tmp.params[i].numel;
    *largest_block = 0;
    for (int i = 0; i < c->num_blocks; i++) {
        size_t n = block_params(&tmp, &ix, i);
        if (n > *largest_block) *largest_block = n;
    }
    free(tmp.params);
}

size_t uvit_param_count(const UViTConfig *c)
{
    size_t total, largest;
    count_params(c, &total, &largest);
    return total;
}

size_t uvit_largest_block_params(const UViTConfig *c)
{
    size_t total, largest;
    count_params(c, &total, &largest);
    return largest;
}

void uvit_macs(const UViTConfig *c, UViTMacs *out)
{
    double D = c->embed_dim, C = c->in_chans, p = c->patch_size;
    double N = uvit_num_patches(c), T = uvit_num_tokens(c), hw = (double)c->img_size * c->img_size;
    memset(out, 0, sizeof *out);
    out->embed = N * (C * p * p) * D;                       /* patch embedding */
    if (c->mlp_time_embed) out->embed += 2 * D * 4 * D;     /* time MLP */
    if (uvit_is_text(c)) out->embed += (double)c->num_clip_token * c->clip_dim * D;  /* context_embed */
    out->decode = N * D * (p * p * C);                      /* decoder_pred on patches */
    if (c->conv) out->decode += hw * C * C * 9;             /* final 3x3 conv */
    out->total = out->embed + out->decode;
    for (int i = 0; i < c->num_blocks; i++) {
        double A = (double)c->block_num_heads[i] * c->head_dim, Hm = c->block_mlp_hidden[i];
        double b = T * D * 3 * A          /* qkv */
                 + 2 * T * T * A          /* q k^T and probs v */
                 + T * A * D              /* proj */
                 + 2 * T * D * Hm;        /* fc1, fc2 */
        if (i > c->depth / 2) b += T * 2 * D * D;  /* skip_linear */
        out->per_block[i] = b;
        out->total += b;
    }
}
