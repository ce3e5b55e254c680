/*
 * inception.c: the FID Inception-v3 network (model/inception.h).
 *
 * The architecture is written once, as a walk over the layers (stem, the
 * Mixed blocks, the final pool). The same walk runs in two modes:
 *   build: at load time, with no data and one image, it names and shapes
 *          every BasicConv2d in pytorch-fid's order and measures the
 *          activation memory one image needs;
 *   run:   with a batch, it executes the ops.
 * Memory (per image, times the batch): two stage buffers that alternate as
 * each stage's input and output, and a stack for the branch temporaries of
 * a block, released when the block ends. A branch's last conv writes its
 * channels into the block output with op_token_place_forward (a [B,C,H*W]
 * view), which is torch.cat along dim 1.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "../kernels/errors.h"
#include "inception.h"

/* an activation [B, C, H, W] in the arena (data NULL while building) */
typedef struct {
    float *d;
    int C, H, W;
} Act;

typedef struct {
    Inception *m;          /* build: receives the convs and sizes */
    const Inception *rm;   /* run: the loaded network */
    Ctx *ctx;
    int build;
    int64_t B;
    int next;              /* conv cursor */
    int cur;               /* which stage buffer holds the current input */
    float *stage[2];       /* run: the two stage buffers */
    float *stack;          /* run: the scratch stack */
    size_t top;            /* per-image floats in use on the stack */
    size_t stage_peak, stack_peak;
    const char *block;     /* name prefix of the block being walked */
} Walk;

static size_t act_floats(int C, int H, int W) { return (size_t)C * H * W; }
static Tensor act_tensor(const Walk *w, Act a) { return tensor4(a.d, DT_F32, w->B, a.C, a.H, a.W); }

/* a new activation on the scratch stack */
static Act push(Walk *w, int C, int H, int W)
{
    Act a = {NULL, C, H, W};
    if (!w->build) a.d = w->stack + w->top * w->B;
    w->top += act_floats(C, H, W);
    if (w->top > w->stack_peak) w->stack_peak = w->top;
    return a;
}

/* the output of the current stage: the stage buffer not holding its input */
static Act stage_output(Walk *w, int C, int H, int W)
{
    Act a = {w->build ? NULL : w->stage[1 - w->cur], C, H, W};
    if (act_floats(C, H, W) > w->stage_peak) w->stage_peak = act_floats(C, H, W);
    return a;
}
static void stage_done(Walk *w) { w->cur = 1 - w->cur, w->top = 0; }

/* the next BasicConv2d: registered while building, checked while running */
static const InceptionConv *next_conv(Walk *w, const char *name, int cin, int cout, int kh,
                                      int kw, int sh, int sw, int ph, int pw)
{
    if (w->build) {
        CHECK(w->next < INCEPTION_CONVS, "inception: more convs than INCEPTION_CONVS");
        InceptionConv *c = &w->m->conv[w->next++];
        memset(c, 0, sizeof *c);
        snprintf(c->name, sizeof c->name, "%s%s%s", w->block, *w->block ? "." : "", name);
        c->cin = cin, c->cout = cout, c->kh = kh, c->kw = kw;
        c->p = (Conv2dParams){sh, sw, ph, pw};
        return c;
    }
    const InceptionConv *c = &w->rm->conv[w->next++];
    CHECK(c->cin == cin && c->cout == cout, "inception: walk out of step at %s", c->name);
    return c;
}

static int out_size(int n, int k, int s, int p) { return (n + 2 * p - k) / s + 1; }

/* conv + folded BN + ReLU of x into dst (C = cout, spatially matching) */
static void basic_conv_run(Walk *w, const InceptionConv *c, Act x, Act dst)
{
    op_conv2d_relu_forward(w->ctx, act_tensor(w, dst), act_tensor(w, x),
                           tensor4(c->w, DT_F32, c->cout, c->cin, c->kh, c->kw),
                           tensor1(c->b, DT_F32, c->cout), c->p);
}

/* a BasicConv2d whose output is a new stack activation */
static Act conv(Walk *w, Act x, const char *name, int cout, int kh, int kw, int sh, int sw, int ph,
                int pw)
{
    const InceptionConv *c = next_conv(w, name, x.C, cout, kh, kw, sh, sw, ph, pw);
    Act y = push(w, cout, out_size(x.H, kh, sh, ph), out_size(x.W, kw, sw, pw));
    if (!w->build) basic_conv_run(w, c, x, y);
    return y;
}

/* copies a branch result into channels [at, at + src.C) of dst (torch.cat) */
static void place(Walk *w, Act dst, Act src, int at)
{
    CHECK(src.H == dst.H && src.W == dst.W && at + src.C <= dst.C, "inception: bad concat");
    if (w->build) return;
    op_token_place_forward(w->ctx, tensor3(dst.d, DT_F32, w->B, dst.C, (int64_t)dst.H * dst.W),
                           tensor3(src.d, DT_F32, w->B, src.C, (int64_t)src.H * src.W), at);
}

/* a BasicConv2d whose output goes into channels [at, ...) of dst */
static void conv_into(Walk *w, Act x, Act dst, int at, const char *name, int cout, int kh, int kw,
                      int sh, int sw, int ph, int pw)
{
    size_t mark = w->top;
    place(w, dst, conv(w, x, name, cout, kh, kw, sh, sw, ph, pw), at);
    w->top = mark;
}

static Act pool(Walk *w, Act x, int is_max, int k, int s, int p)
{
    Act y = push(w, x.C, out_size(x.H, k, s, p), out_size(x.W, k, s, p));
    if (!w->build) {
        Pool2dParams pp = {k, k, s, s, p, p, 0};  // count_include_pad=False
        if (is_max) op_max_pool2d_forward(w->ctx, act_tensor(w, y), act_tensor(w, x), pp);
        else op_avg_pool2d_forward(w->ctx, act_tensor(w, y), act_tensor(w, x), pp);
    }
    return y;
}

/* ---- stages ------------------------------------------------------------------ */

static Act stem_conv(Walk *w, Act x, const char *name, int cout, int k, int s, int p)
{
    w->block = "";
    const InceptionConv *c = next_conv(w, name, x.C, cout, k, k, s, s, p, p);
    Act y = stage_output(w, cout, out_size(x.H, k, s, p), out_size(x.W, k, s, p));
    if (!w->build) basic_conv_run(w, c, x, y);
    stage_done(w);
    return y;
}

/* MaxPool2d(3, stride 2) between the stem's stages */
static Act stem_max_pool(Walk *w, Act x)
{
    Act y = stage_output(w, x.C, out_size(x.H, 3, 2, 0), out_size(x.W, 3, 2, 0));
    if (!w->build)
        op_max_pool2d_forward(w->ctx, act_tensor(w, y), act_tensor(w, x),
                              (Pool2dParams){3, 3, 2, 2, 0, 0, 0});
    stage_done(w);
    return y;
}

/* FIDInceptionA: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg pool -> 1x1 */
static Act block_a(Walk *w, Act x, const char *name, int pool_features)
{
    w->block = name;
    Act y = stage_output(w, 64 + 64 + 96 + pool_features, x.H, x.W);
    conv_into(w, x, y, 0, "branch1x1", 64, 1, 1, 1, 1, 0, 0);
    Act t = conv(w, x, "branch5x5_1", 48, 1, 1, 1, 1, 0, 0);
    conv_into(w, t, y, 64, "branch5x5_2", 64, 5, 5, 1, 1, 2, 2);
    t = conv(w, x, "branch3x3dbl_1", 64, 1, 1, 1, 1, 0, 0);
    t = conv(w, t, "branch3x3dbl_2", 96, 3, 3, 1, 1, 1, 1);
    conv_into(w, t, y, 128, "branch3x3dbl_3", 96, 3, 3, 1, 1, 1, 1);
    t = pool(w, x, 0, 3, 1, 1);
    conv_into(w, t, y, 224, "branch_pool", pool_features, 1, 1, 1, 1, 0, 0);
    stage_done(w);
    return y;
}

/* InceptionB (Mixed_6a): 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max pool 3/2 */
static Act block_b(Walk *w, Act x, const char *name)
{
    w->block = name;
    int H = out_size(x.H, 3, 2, 0), W = out_size(x.W, 3, 2, 0);
    Act y = stage_output(w, 384 + 96 + x.C, H, W);
    conv_into(w, x, y, 0, "branch3x3", 384, 3, 3, 2, 2, 0, 0);
    Act t = conv(w, x, "branch3x3dbl_1", 64, 1, 1, 1, 1, 0, 0);
    t = conv(w, t, "branch3x3dbl_2", 96, 3, 3, 1, 1, 1, 1);
    conv_into(w, t, y, 384, "branch3x3dbl_3", 96, 3, 3, 2, 2, 0, 0);
    place(w, y, pool(w, x, 1, 3, 2, 0), 480);
    stage_done(w);
    return y;
}

/* FIDInceptionC: 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 |
   avg pool -> 1x1 */
static Act block_c(Walk *w, Act x, const char *name, int c7)
{
    w->block = name;
    Act y = stage_output(w, 4 * 192, x.H, x.W);
    conv_into(w, x, y, 0, "branch1x1", 192, 1, 1, 1, 1, 0, 0);
    Act t = conv(w, x, "branch7x7_1", c7, 1, 1, 1, 1, 0, 0);
    t = conv(w, t, "branch7x7_2", c7, 1, 7, 1, 1, 0, 3);
    conv_into(w, t, y, 192, "branch7x7_3", 192, 7, 1, 1, 1, 3, 0);
    t = conv(w, x, "branch7x7dbl_1", c7, 1, 1, 1, 1, 0, 0);
    t = conv(w, t, "branch7x7dbl_2", c7, 7, 1, 1, 1, 3, 0);
    t = conv(w, t, "branch7x7dbl_3", c7, 1, 7, 1, 1, 0, 3);
    t = conv(w, t, "branch7x7dbl_4", c7, 7, 1, 1, 1, 3, 0);
    conv_into(w, t, y, 384, "branch7x7dbl_5", 192, 1, 7, 1, 1, 0, 3);
    t = pool(w, x, 0, 3, 1, 1);
    conv_into(w, t, y, 576, "branch_pool", 192, 1, 1, 1, 1, 0, 0);
    stage_done(w);
    return y;
}

/* InceptionD (Mixed_7a): 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 |
   max pool 3/2 */
static Act block_d(Walk *w, Act x, const char *name)
{
    w->block = name;
    int H = out_size(x.H, 3, 2, 0), W = out_size(x.W, 3, 2, 0);
    Act y = stage_output(w, 320 + 192 + x.C, H, W);
    Act t = conv(w, x, "branch3x3_1", 192, 1, 1, 1, 1, 0, 0);
    conv_into(w, t, y, 0, "branch3x3_2", 320, 3, 3, 2, 2, 0, 0);
    t = conv(w, x, "branch7x7x3_1", 192, 1, 1, 1, 1, 0, 0);
    t = conv(w, t, "branch7x7x3_2", 192, 1, 7, 1, 1, 0, 3);
    t = conv(w, t, "branch7x7x3_3", 192, 7, 1, 1, 1, 3, 0);
    conv_into(w, t, y, 320, "branch7x7x3_4", 192, 3, 3, 2, 2, 0, 0);
    place(w, y, pool(w, x, 1, 3, 2, 0), 512);
    stage_done(w);
    return y;
}

/* FIDInceptionE_1 (avg pool) and _2 (max pool):
   1x1 | 1x1 -> (1x3, 3x1) | 1x1 -> 3x3 -> (1x3, 3x1) | pool -> 1x1 */
static Act block_e(Walk *w, Act x, const char *name, int max_pool)
{
    w->block = name;
    Act y = stage_output(w, 320 + 768 + 768 + 192, x.H, x.W);
    conv_into(w, x, y, 0, "branch1x1", 320, 1, 1, 1, 1, 0, 0);
    size_t mark = w->top;
    Act t = conv(w, x, "branch3x3_1", 384, 1, 1, 1, 1, 0, 0);
    conv_into(w, t, y, 320, "branch3x3_2a", 384, 1, 3, 1, 1, 0, 1);
    conv_into(w, t, y, 704, "branch3x3_2b", 384, 3, 1, 1, 1, 1, 0);
    w->top = mark;
    t = conv(w, x, "branch3x3dbl_1", 448, 1, 1, 1, 1, 0, 0);
    t = conv(w, t, "branch3x3dbl_2", 384, 3, 3, 1, 1, 1, 1);
    conv_into(w, t, y, 1088, "branch3x3dbl_3a", 384, 1, 3, 1, 1, 0, 1);
    conv_into(w, t, y, 1472, "branch3x3dbl_3b", 384, 3, 1, 1, 1, 1, 0);
    w->top = mark;
    t = pool(w, x, max_pool, 3, 1, 1);
    conv_into(w, t, y, 1856, "branch_pool", 192, 1, 1, 1, 1, 0, 0);
    stage_done(w);
    return y;
}

/* the whole network from the [-1,1] image x[B,3,299,299] in stage buffer 0;
   returns Mixed_7c's output [B,2048,8,8] */
static Act walk_network(Walk *w, Act x)
{
    x = stem_conv(w, x, "Conv2d_1a_3x3", 32, 3, 2, 0);
    x = stem_conv(w, x, "Conv2d_2a_3x3", 32, 3, 1, 0);
    x = stem_conv(w, x, "Conv2d_2b_3x3", 64, 3, 1, 1);
    x = stem_max_pool(w, x);
    x = stem_conv(w, x, "Conv2d_3b_1x1", 80, 1, 1, 0);
    x = stem_conv(w, x, "Conv2d_4a_3x3", 192, 3, 1, 0);
    x = stem_max_pool(w, x);
    x = block_a(w, x, "Mixed_5b", 32);
    x = block_a(w, x, "Mixed_5c", 64);
    x = block_a(w, x, "Mixed_5d", 64);
    x = block_b(w, x, "Mixed_6a");
    x = block_c(w, x, "Mixed_6b", 128);
    x = block_c(w, x, "Mixed_6c", 160);
    x = block_c(w, x, "Mixed_6d", 160);
    x = block_c(w, x, "Mixed_6e", 192);
    x = block_d(w, x, "Mixed_7a");
    x = block_e(w, x, "Mixed_7b", 0);
    x = block_e(w, x, "Mixed_7c", 1);
    return x;
}

/* fills m's conv table and memory sizes */
static void build(Inception *m)
{
    memset(m, 0, sizeof *m);
    Walk w = {.m = m, .build = 1, .B = 1, .block = ""};
    Act x = {NULL, 3, INCEPTION_SIZE, INCEPTION_SIZE};
    w.stage_peak = act_floats(3, INCEPTION_SIZE, INCEPTION_SIZE);
    Act y = walk_network(&w, x);
    CHECK(w.next == INCEPTION_CONVS && y.C == INCEPTION_FEATURES, "inception: bad architecture");
    m->nconv = w.next;
    m->stage_floats = w.stage_peak;
    m->scratch_floats = w.stack_peak;
}

/* ---- loading -------------------------------------------------------------------- */

/* reads conv c's weight and BN from st, folds them, uploads; -1 on bad input */
static int load_conv(InceptionConv *c, Ctx *ctx, const SafeTensors *st)
{
    char name[96];
    size_t nw = (size_t)c->cout * c->cin * c->kh * c->kw;
    float *w = xmalloc(nw * sizeof(float)), *bn = xmalloc(4 * (size_t)c->cout * sizeof(float));
    float *gamma = bn, *beta = bn + c->cout, *mean = bn + 2 * c->cout, *var = bn + 3 * c->cout;
    int64_t wshape[4] = {c->cout, c->cin, c->kh, c->kw}, cshape[1] = {c->cout};
    static const char *const bn_fields[4] = {"weight", "bias", "running_mean", "running_var"};
    int rc;
    snprintf(name, sizeof name, "%s.conv.weight", c->name);
    rc = st_read_f32(st, name, w, 4, wshape);
    for (int f = 0; f < 4 && rc == 0; f++) {
        snprintf(name, sizeof name, "%s.bn.%s", c->name, bn_fields[f]);
        rc = st_read_f32(st, name, bn + (size_t)f * c->cout, 1, cshape);
    }
    for (int o = 0; o < c->cout && rc == 0; o++)
        if (!(var[o] >= 0) || !isfinite(var[o]))
            rc = err_set("%s: tensor '%s.bn.running_var': element %d is %g, expected a finite "
                         "value >= 0", st->path, c->name, o, var[o]);
    if (rc == 0) {
        size_t per_out = nw / (size_t)c->cout;
        for (int o = 0; o < c->cout; o++) {
            double scale = gamma[o] / sqrt((double)var[o] + INCEPTION_BN_EPS);
            for (size_t i = 0; i < per_out; i++)
                w[o * per_out + i] = (float)(w[o * per_out + i] * scale);
            beta[o] = (float)(beta[o] - mean[o] * scale);  // beta now holds the folded bias
        }
        c->w = ctx_alloc(ctx, nw * sizeof(float));
        c->b = ctx_alloc(ctx, (size_t)c->cout * sizeof(float));
        ctx_upload(ctx, c->w, w, nw * sizeof(float));
        ctx_upload(ctx, c->b, beta, (size_t)c->cout * sizeof(float));
    }
    free(w);
    free(bn);
    return rc;
}

int inception_load_st(Inception *m, Ctx *ctx, const SafeTensors *st)
{
    build(m);
    for (int i = 0; i < m->nconv; i++)
        if (load_conv(&m->conv[i], ctx, st)) {
            inception_destroy(m, ctx);
            return -1;
        }
    return 0;
}

int inception_load(Inception *m, Ctx *ctx, const char *path)
{
    SafeTensors st;
    memset(m, 0, sizeof *m);
    if (st_open(&st, path)) return -1;
    int rc = inception_load_st(m, ctx, &st);
    st_close(&st);
    return rc;
}

void inception_destroy(Inception *m, Ctx *ctx)
{
    for (int i = 0; i < m->nconv; i++) {
        if (m->conv[i].w) ctx_free(ctx, m->conv[i].w);
        if (m->conv[i].b) ctx_free(ctx, m->conv[i].b);
        m->conv[i].w = m->conv[i].b = NULL;
    }
}

/* ---- running ----------------------------------------------------------------------- */

void inception_acts_create(InceptionActs *a, Ctx *ctx, const Inception *m, int max_batch)
{
    CHECK(max_batch >= 1, "inception_acts_create: max_batch %d", max_batch);
    a->max_batch = max_batch;
    a->arena = ctx_alloc(ctx, (size_t)max_batch * (2 * m->stage_floats + m->scratch_floats) *
                                  sizeof(float));
    a->teams = 0;
    if (ctx->backend == BACKEND_CPU) {
        int nt = ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
        a->teams = nt < max_batch ? nt : max_batch;
        if (a->teams > INCEPTION_MAX_TEAMS) a->teams = INCEPTION_MAX_TEAMS;
        if (a->teams < 2) a->teams = 0;
        for (int t = 0; t < a->teams; t++) ctx_init_cpu(&a->team[t], 1);
    }
}

void inception_acts_destroy(InceptionActs *a, Ctx *ctx)
{
    if (a->arena) ctx_free(ctx, a->arena);
    a->arena = NULL;
    for (int t = 0; t < a->teams; t++) ctx_destroy(&a->team[t]);
    a->teams = 0;
}

/* pool3[B,2048] <- images[B,3,H,W] with `arena` holding B images' activations */
static void forward_images(Ctx *ctx, const Inception *m, float *arena, Tensor images, Tensor pool3)
{
    int64_t B = images.shape[0];
    Walk w = {.rm = m, .ctx = ctx, .B = B, .block = ""};
    w.stage[0] = arena;
    w.stage[1] = arena + (size_t)B * m->stage_floats;
    w.stack = arena + (size_t)B * 2 * m->stage_floats;
    Act x = {w.stage[0], 3, INCEPTION_SIZE, INCEPTION_SIZE};  // x is (B,3,299,299)
    Tensor tx = act_tensor(&w, x);
    op_resize_bilinear_forward(ctx, tx, images);
    op_affine_forward(ctx, tx, tx, 2.0f, -1.0f);
    Act y = walk_network(&w, x);  // y is (B,2048,8,8)
    op_global_avg_pool_forward(ctx, pool3, act_tensor(&w, y));
}

void inception_forward(Ctx *ctx, const Inception *m, InceptionActs *a, Tensor images, Tensor pool3)
{
    CHECK(images.ndim == 4 && images.shape[1] == 3, "inception_forward: images must be [N,3,H,W]");
    int64_t B = images.shape[0];
    CHECK(B >= 1 && B <= a->max_batch, "inception_forward: batch %lld, arena holds %d",
          (long long)B, a->max_batch);
    CHECK(pool3.ndim == 2 && pool3.shape[0] == B && pool3.shape[1] == INCEPTION_FEATURES,
          "inception_forward: pool3 must be [N,2048]");
    int teams = a->teams < B ? a->teams : (int)B;
    if (teams < 2) {
        forward_images(ctx, m, a->arena, images, pool3);
        return;
    }
    /* team t takes images [lo, hi) and the matching slice of the arena */
    size_t per_image = 2 * m->stage_floats + m->scratch_floats;
    int64_t C = images.shape[1], H = images.shape[2], W = images.shape[3];
    #pragma omp parallel for num_threads(teams) schedule(static, 1)
    for (int t = 0; t < teams; t++) {
        int64_t lo = B * t / teams, hi = B * (t + 1) / teams;
        if (hi == lo) continue;
        Tensor part = tensor4((float *)images.data + lo * C * H * W, DT_F32, hi - lo, C, H, W);
        Tensor out = tensor2((float *)pool3.data + lo * INCEPTION_FEATURES, DT_F32, hi - lo,
                             INCEPTION_FEATURES);
        forward_images(&a->team[t], m, a->arena + (size_t)lo * per_image, part, out);
    }
}

/* ---- synthetic weights ----------------------------------------------------------------- */

static uint32_t fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static uint32_t fnv1a32(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* x[n] for tensor `name` by the formula in inception.h */
static void synthetic_fill(float *x, size_t n, const char *name, const char *field, int fan_in)
{
    uint32_t salt = fnv1a32(name);
    for (size_t i = 0; i < n; i++) {
        double u = fmix32((uint32_t)i * 0x9E3779B1u + salt) / 4294967296.0;
        double v;
        if (!strcmp(field, "conv.weight")) v = (u - 0.5) * 2.0 * sqrt(6.0 / fan_in);
        else if (!strcmp(field, "bn.weight") || !strcmp(field, "bn.running_var")) v = 0.5 + u;
        else v = 0.2 * (u - 0.5);
        x[i] = (float)v;
    }
}

int inception_write_synthetic(const char *path)
{
    Inception m;
    build(&m);
    StWriter *wr = st_writer_new();
    static const char *const fields[5] = {"conv.weight", "bn.weight", "bn.bias", "bn.running_mean",
                                          "bn.running_var"};
    for (int i = 0; i < m.nconv; i++) {
        const InceptionConv *c = &m.conv[i];
        int fan_in = c->cin * c->kh * c->kw;
        for (int f = 0; f < 5; f++) {
            char name[96];
            snprintf(name, sizeof name, "%s.%s", c->name, fields[f]);
            int64_t shape[4] = {c->cout, c->cin, c->kh, c->kw};
            size_t n = f == 0 ? (size_t)c->cout * fan_in : (size_t)c->cout;
            float *x = xmalloc(n * sizeof(float));
            synthetic_fill(x, n, name, fields[f], fan_in);
            st_writer_add(wr, name, DT_F32, f == 0 ? 4 : 1, shape, x);
            free(x);
        }
    }
    st_writer_meta(wr, "format", "pytorch-fid FID Inception state dict, synthetic values");
    int rc = st_writer_save(wr, path);
    st_writer_free(wr);
    return rc;
}
