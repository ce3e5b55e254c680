/*
 * autoencoder_graph.c: the KL autoencoder's architecture, written once as a
 * walk (libs/autoencoder.py's Encoder, Decoder, ResnetBlock, AttnBlock,
 * Downsample, Upsample, FrozenAutoencoderKL's quant convs), that yields the
 * parameter table and the graph of steps (autoencoder_graph.h).
 *
 * Both parts are always walked, encoder first, so every parameter gets the
 * same place whichever part's graph is recorded; steps and activations are
 * recorded for one part only (or none, for the table alone).
 */
#include <stdio.h>
#include <string.h>

#include "../kernels/errors.h"
#include "autoencoder_graph.h"

/* an image activation [C,H,W] (id -1 while its part is not recorded) */
typedef struct {
    int id;
    int64_t C, H, W;
} Val;

typedef struct {
    const AutoencoderConfig *c;
    ParamInfo *params;
    int nparams, cap_params;
    size_t total;
    AeGraph *g;       /* the graph being recorded, NULL while walking the other part */
    int cap_steps, cap_acts;
} Walk;

/* ---- parameters ------------------------------------------------------------------------ */

static ParamInfo *new_params(Walk *w, int n)
{
    if (w->nparams + n > w->cap_params) {
        w->cap_params = 2 * (w->nparams + n) + 64;
        w->params = xrealloc(w->params, (size_t)w->cap_params * sizeof *w->params);
    }
    ParamInfo *p = w->params + w->nparams;
    memset(p, 0, (size_t)n * sizeof *p);
    w->nparams += n;
    return p;
}

static void name_param(ParamInfo *p, const char *prefix, const char *suffix)
{
    int n = snprintf(p->name, sizeof p->name, "%s.%s", prefix, suffix);
    CHECK(n > 0 && (size_t)n < sizeof p->name, "autoencoder: parameter name too long: %s.%s", prefix, suffix);
}

static AeParamRef ref_of(const ParamInfo *p, int ndim, const int64_t *shape)
{
    AeParamRef r = {(int64_t)p->offset, ndim, {0}};
    for (int k = 0; k < ndim; k++) r.shape[k] = shape[k];
    return r;
}

/* prefix.suffix of shape[ndim], seen by the op as op_shape[op_ndim] (the
   same floats: a 1x1 conv's [C, C, 1, 1] weight as a linear's [C, C]) */
static AeParamRef param_as(Walk *w, const char *prefix, const char *suffix, int ndim, const int64_t *shape,
                           int op_ndim, const int64_t *op_shape)
{
    ParamInfo *p = new_params(w, 1);
    name_param(p, prefix, suffix);
    param_place(p, ndim, shape, &w->total);
    return ref_of(p, op_ndim, op_shape);
}

static AeParamRef param(Walk *w, const char *prefix, const char *suffix, int ndim, const int64_t *shape)
{
    return param_as(w, prefix, suffix, ndim, shape, ndim, shape);
}

/* prefix.{a,b,c}.suffix packed (param_place_packed), seen by the op as one
   tensor of op_shape */
static AeParamRef packed3(Walk *w, const char *prefix, const char *const names[3], const char *suffix,
                          int ndim, const int64_t *shape, int op_ndim, const int64_t *op_shape)
{
    ParamInfo *p = new_params(w, 3);
    char sub[32];
    for (int i = 0; i < 3; i++) {
        snprintf(sub, sizeof sub, "%s.%s", names[i], suffix);
        name_param(&p[i], prefix, sub);
    }
    param_place_packed(p, 3, ndim, shape, &w->total);
    return ref_of(p, op_ndim, op_shape);
}

/* ---- activations and steps --------------------------------------------------------------- */

static int new_act(Walk *w, AeActKind kind, int ndim, int64_t d0, int64_t d1, int64_t d2)
{
    if (!w->g) return -1;
    AeGraph *g = w->g;
    if (g->nacts == w->cap_acts) {
        w->cap_acts = 2 * w->cap_acts + 64;
        g->acts = xrealloc(g->acts, (size_t)w->cap_acts * sizeof *g->acts);
    }
    AeAct *a = &g->acts[g->nacts];
    memset(a, 0, sizeof *a);
    a->kind = kind, a->ndim = ndim;
    a->dims[0] = d0, a->dims[1] = d1, a->dims[2] = d2;
    a->floats = (size_t)d0 * (ndim > 1 ? d1 : 1) * (ndim > 2 ? d2 : 1);
    a->first = a->last = -1;
    return g->nacts++;
}

static Val value(Walk *w, int64_t C, int64_t H, int64_t W)
{
    Val v = {new_act(w, AE_ACT_VALUE, 3, C, H, W), C, H, W};
    return v;
}

/* appends a step (when recording) and marks its activations' lifetimes */
static void emit(Walk *w, AeStep s)
{
    if (!w->g) return;
    AeGraph *g = w->g;
    if (g->nsteps == w->cap_steps) {
        w->cap_steps = 2 * w->cap_steps + 64;
        g->steps = xrealloc(g->steps, (size_t)w->cap_steps * sizeof *g->steps);
    }
    int at = g->nsteps++;
    g->steps[at] = s;
    const int reads[2] = {s.in, s.in2}, writes[2] = {s.out, s.aux};
    for (int k = 0; k < 2; k++) {
        if (reads[k] >= 0) g->acts[reads[k]].last = at;
        if (writes[k] >= 0) g->acts[writes[k]].first = g->acts[writes[k]].last = at;
    }
}

static AeStep step(AeStepKind kind, int in, int out)
{
    AeStep s;
    memset(&s, 0, sizeof s);
    s.kind = kind, s.in = in, s.in2 = -1, s.out = out, s.aux = -1;
    s.w.offset = s.b.offset = -1;
    return s;
}

/* ---- layers ------------------------------------------------------------------------------- */

static int64_t conv_side(int64_t n, int k, int stride, int pad) { return (n + 2 * pad - k) / stride + 1; }

/* prefix.weight [Co, C, k, k], prefix.bias [Co] */
static Val conv(Walk *w, Val x, const char *prefix, int64_t Co, int k, int stride, int pad)
{
    AeStep s = step(AE_STEP_CONV, x.id, -1);
    s.w = param(w, prefix, "weight", 4, (int64_t[]){Co, x.C, k, k});
    s.b = param(w, prefix, "bias", 1, (int64_t[]){Co});
    s.conv = (Conv2dParams){stride, stride, pad, pad};
    Val y = value(w, Co, conv_side(x.H, k, stride, pad), conv_side(x.W, k, stride, pad));
    s.out = y.id;
    emit(w, s);
    return y;
}

/* Normalize(C): GroupNorm(num_groups, C, eps 1e-6, affine) */
static Val group_norm(Walk *w, Val x, const char *prefix)
{
    AeStep s = step(AE_STEP_GROUP_NORM, x.id, -1);
    s.w = param(w, prefix, "weight", 1, (int64_t[]){x.C});
    s.b = param(w, prefix, "bias", 1, (int64_t[]){x.C});
    s.groups = w->c->num_groups;
    Val y = value(w, x.C, x.H, x.W);
    s.out = y.id;
    s.aux = new_act(w, AE_ACT_STATS, 1, 2 * (int64_t)s.groups, 0, 0);
    emit(w, s);
    return y;
}

/* an op with one input and an output of the given shape */
static Val unary(Walk *w, AeStepKind kind, Val x, int64_t C, int64_t H, int64_t W)
{
    Val y = value(w, C, H, W);
    emit(w, step(kind, x.id, y.id));
    return y;
}

static Val silu(Walk *w, Val x) { return unary(w, AE_STEP_SILU, x, x.C, x.H, x.W); }

static Val add(Walk *w, Val a, Val b)
{
    Val y = value(w, a.C, a.H, a.W);
    AeStep s = step(AE_STEP_ADD, a.id, y.id);
    s.in2 = b.id;
    emit(w, s);
    return y;
}

static Val scale(Walk *w, Val x, float by)
{
    Val y = value(w, x.C, x.H, x.W);
    AeStep s = step(AE_STEP_SCALE, x.id, y.id);
    s.scale = by;
    emit(w, s);
    return y;
}

/* ResnetBlock(in_channels = x.C, out_channels = Co), no time embedding */
static Val resnet(Walk *w, Val x, const char *prefix, int64_t Co)
{
    char sub[160];
    snprintf(sub, sizeof sub, "%s.norm1", prefix);
    Val h = silu(w, group_norm(w, x, sub));
    snprintf(sub, sizeof sub, "%s.conv1", prefix);
    h = conv(w, h, sub, Co, 3, 1, 1);
    snprintf(sub, sizeof sub, "%s.norm2", prefix);
    h = silu(w, group_norm(w, h, sub));
    snprintf(sub, sizeof sub, "%s.conv2", prefix);
    h = conv(w, h, sub, Co, 3, 1, 1);
    Val shortcut = x;
    if (x.C != Co) {
        snprintf(sub, sizeof sub, "%s.nin_shortcut", prefix);
        shortcut = conv(w, x, sub, Co, 1, 1, 0);
    }
    return add(w, shortcut, h);
}

/* AttnBlock: the 1x1 convs q, k, v and proj_out are linears over the H*W
   tokens; q, k, v are packed into one [3C, C] projection, which is the
   qkv layout op_attention reads (one head: scale C^-0.5) */
static Val attn_block(Walk *w, Val x, const char *prefix)
{
    static const char *const qkv_names[3] = {"q", "k", "v"};
    char sub[160];
    int64_t C = x.C, N = x.H * x.W;
    snprintf(sub, sizeof sub, "%s.norm", prefix);
    Val n = group_norm(w, x, sub);
    int tokens = new_act(w, AE_ACT_VALUE, 2, N, C, 0);                     // [N,C]
    emit(w, step(AE_STEP_TO_TOKENS, n.id, tokens));
    AeStep s = step(AE_STEP_LINEAR, tokens, new_act(w, AE_ACT_VALUE, 2, N, 3 * C, 0));  // qkv [N,3C]
    s.w = packed3(w, prefix, qkv_names, "weight", 4, (int64_t[]){C, C, 1, 1}, 2, (int64_t[]){3 * C, C});
    s.b = packed3(w, prefix, qkv_names, "bias", 1, (int64_t[]){C}, 1, (int64_t[]){3 * C});
    emit(w, s);
    int qkv = s.out;
    s = step(AE_STEP_ATTENTION, qkv, new_act(w, AE_ACT_VALUE, 2, N, C, 0));          // [N,C]
    s.aux = new_act(w, AE_ACT_PROBS, 3, 1, N, N);                                    // [1,N,N]
    emit(w, s);
    int att = s.out;
    snprintf(sub, sizeof sub, "%s.proj_out", prefix);
    s = step(AE_STEP_LINEAR, att, new_act(w, AE_ACT_VALUE, 2, N, C, 0));           // [N,C]
    s.w = param_as(w, sub, "weight", 4, (int64_t[]){C, C, 1, 1}, 2, (int64_t[]){C, C});
    s.b = param(w, sub, "bias", 1, (int64_t[]){C});
    emit(w, s);
    Val o = value(w, C, x.H, x.W);
    emit(w, step(AE_STEP_TO_IMAGE, s.out, o.id));
    return add(w, x, o);
}

/* Downsample(with_conv): F.pad (0,1,0,1), conv 3x3 stride 2 pad 0 */
static Val downsample(Walk *w, Val x, const char *prefix)
{
    Val p = value(w, x.C, x.H + 1, x.W + 1);
    AeStep s = step(AE_STEP_PAD, x.id, p.id);
    s.pad = (Pad2dParams){0, 1, 0, 1};
    emit(w, s);
    char sub[160];
    snprintf(sub, sizeof sub, "%s.conv", prefix);
    return conv(w, p, sub, x.C, 3, 2, 0);
}

/* Upsample(with_conv): nearest 2x, conv 3x3 */
static Val upsample(Walk *w, Val x, const char *prefix)
{
    Val u = unary(w, AE_STEP_UPSAMPLE, x, x.C, 2 * x.H, 2 * x.W);
    char sub[160];
    snprintf(sub, sizeof sub, "%s.conv", prefix);
    return conv(w, u, sub, x.C, 3, 1, 1);
}

/* mid: block_1, attn_1, block_2 (side is encoder or decoder) */
static Val mid(Walk *w, Val h, const char *side)
{
    char sub[64];
    snprintf(sub, sizeof sub, "%s.mid.block_1", side);
    h = resnet(w, h, sub, h.C);
    snprintf(sub, sizeof sub, "%s.mid.attn_1", side);
    h = attn_block(w, h, sub);
    snprintf(sub, sizeof sub, "%s.mid.block_2", side);
    return resnet(w, h, sub, h.C);
}

/* norm_out, SiLU, conv_out */
static Val tail(Walk *w, Val h, const char *side, int64_t Co)
{
    char sub[64];
    snprintf(sub, sizeof sub, "%s.norm_out", side);
    h = silu(w, group_norm(w, h, sub));
    snprintf(sub, sizeof sub, "%s.conv_out", side);
    return conv(w, h, sub, Co, 3, 1, 1);
}

/* ---- the two parts --------------------------------------------------------------------------- */

/* moments [2 embed_dim, H/f, W/f] of x [in_channels, H, W] */
static Val walk_encoder(Walk *w, Val x)
{
    const AutoencoderConfig *c = w->c;
    char prefix[96];
    Val h = conv(w, x, "encoder.conv_in", c->ch, 3, 1, 1);
    for (int i = 0; i < c->num_levels; i++) {
        for (int j = 0; j < c->num_res_blocks; j++) {
            snprintf(prefix, sizeof prefix, "encoder.down.%d.block.%d", i, j);
            h = resnet(w, h, prefix, (int64_t)c->ch * c->ch_mult[i]);
            if (autoencoder_level_has_attn(c, i)) {
                snprintf(prefix, sizeof prefix, "encoder.down.%d.attn.%d", i, j);
                h = attn_block(w, h, prefix);
            }
        }
        if (i != c->num_levels - 1) {
            snprintf(prefix, sizeof prefix, "encoder.down.%d.downsample", i);
            h = downsample(w, h, prefix);
        }
    }
    h = mid(w, h, "encoder");
    h = tail(w, h, "encoder", 2 * (int64_t)c->z_channels);
    return conv(w, h, "quant_conv", 2 * (int64_t)c->embed_dim, 1, 1, 0);
}

/* images [out_ch, h f, w f] of z [embed_dim, h, w] */
static Val walk_decoder(Walk *w, Val z)
{
    const AutoencoderConfig *c = w->c;
    char prefix[96];
    Val h = scale(w, z, (float)(1.0 / c->scale_factor));
    h = conv(w, h, "post_quant_conv", c->z_channels, 1, 1, 0);
    h = conv(w, h, "decoder.conv_in", (int64_t)c->ch * c->ch_mult[c->num_levels - 1], 3, 1, 1);
    h = mid(w, h, "decoder");
    for (int i = c->num_levels - 1; i >= 0; i--) {
        for (int j = 0; j <= c->num_res_blocks; j++) {
            snprintf(prefix, sizeof prefix, "decoder.up.%d.block.%d", i, j);
            h = resnet(w, h, prefix, (int64_t)c->ch * c->ch_mult[i]);
            if (autoencoder_level_has_attn(c, i)) {
                snprintf(prefix, sizeof prefix, "decoder.up.%d.attn.%d", i, j);
                h = attn_block(w, h, prefix);
            }
        }
        if (i != 0) {
            snprintf(prefix, sizeof prefix, "decoder.up.%d.upsample", i);
            h = upsample(w, h, prefix);
        }
    }
    return tail(w, h, "decoder", c->out_ch);
}

/* walks both parts; records the graph of `record` into g (g NULL: none) */
static void walk(Walk *w, AutoencoderPart record, AeGraph *g, int64_t height, int64_t width, int *num_encoder)
{
    const AutoencoderConfig *c = w->c;
    int64_t f = autoencoder_factor(c);
    w->g = record == AE_ENCODER ? g : NULL;
    walk_encoder(w, value(w, c->in_channels, height, width));
    *num_encoder = w->nparams;
    w->g = record == AE_DECODER ? g : NULL;
    walk_decoder(w, value(w, c->embed_dim, height / f, width / f));
    w->g = NULL;
}

void ae_build_params(const AutoencoderConfig *c, ParamInfo **params, int *num_params, int *num_encoder,
                     size_t *total)
{
    Walk w = {.c = c};
    walk(&w, AE_ENCODER, NULL, c->resolution, c->resolution, num_encoder);
    *params = w.params, *num_params = w.nparams, *total = w.total;
}

void ae_build_graph(const AutoencoderConfig *c, AutoencoderPart part, int64_t height, int64_t width, AeGraph *g)
{
    int64_t f = autoencoder_factor(c);
    CHECK(height >= f && width >= f && height % f == 0 && width % f == 0,
          "autoencoder: image side %lldx%lld is not a multiple of the factor %lld", (long long)height,
          (long long)width, (long long)f);
    memset(g, 0, sizeof *g);
    Walk w = {.c = c};
    int num_encoder;
    walk(&w, part, g, height, width, &num_encoder);
    free(w.params);
    CHECK(g->nsteps > 0 && g->acts[0].first == -1, "autoencoder: bad graph");
}

void ae_graph_free(AeGraph *g)
{
    free(g->steps);
    free(g->acts);
    memset(g, 0, sizeof *g);
}
