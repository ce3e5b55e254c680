/*
 * autoencoder_run.c: the KL autoencoder's activation arena and its forward
 * and backward passes over the graph of autoencoder_graph.h.
 *
 * Memory, in floats per image (an activation at per-image offset o of a
 * batch of B lies at arena + o*B, so any B <= max_batch packs densely):
 *   - inference: each activation takes a free region when its step runs
 *     (best fit, else the arena grows) and gives it back after its last
 *     reader, so the arena holds about the widest few activations at once;
 *     attention weights are not kept (op_attention uses scratch);
 *   - with gradients: every activation keeps its own region for the
 *     backward pass, and every one gradients flow through has a gradient
 *     region (an attention's weights get one too: dprobs scratch).
 * The part's input and output are the caller's tensors; so are their
 * gradients in the backward pass. Each step is one op; the backward runs the
 * steps' backward ops in reverse order, which ADD into gradients, so an
 * activation read twice (a residual input) sums both contributions.
 */
#include <stdint.h>
#include <string.h>

#include "../kernels/errors.h"
#include "autoencoder.h"
#include "autoencoder_graph.h"

#define NOWHERE SIZE_MAX

struct AutoencoderActs {
    AutoencoderPart part;
    int max_batch, with_grads;
    int64_t height, width;
    AeGraph g;
    int input, output;         /* activation ids */
    size_t *offset;            /* per activation, floats per image; NOWHERE: not in the arena */
    size_t *grad_offset;       /* likewise in the gradient arena */
    size_t floats, grad_floats;  /* per image */
    float *arena, *grads;      /* backend memory */
    Tensor *v, *gv;            /* views of one call (no allocation per call) */
    int64_t batch;             /* the batch of the last forward pass */
};

/* ---- planning ------------------------------------------------------------------------------ */

typedef struct { size_t at, n; } Region;

typedef struct {
    Region *free;
    int nfree, cap;
    size_t end;
} Planner;

static size_t whole_lines(size_t n) { return (n + 15) & ~(size_t)15; }

/* a region of n floats: the smallest free one that fits (its front), else new */
static size_t plan_take(Planner *p, size_t n)
{
    int best = -1;
    for (int i = 0; i < p->nfree; i++)
        if (p->free[i].n >= n && (best < 0 || p->free[i].n < p->free[best].n)) best = i;
    if (best < 0) {
        size_t at = p->end;
        p->end += n;
        return at;
    }
    size_t at = p->free[best].at;
    p->free[best].at += n, p->free[best].n -= n;
    if (p->free[best].n == 0) p->free[best] = p->free[--p->nfree];
    return at;
}

/* gives [at, at + n) back, merged with free neighbours */
static void plan_give(Planner *p, size_t at, size_t n)
{
    for (int i = 0; i < p->nfree;) {
        Region r = p->free[i];
        if (r.at + r.n == at || at + n == r.at) {
            at = at < r.at ? at : r.at;
            n += r.n;
            p->free[i] = p->free[--p->nfree];
            i = 0;
            continue;
        }
        i++;
    }
    if (p->nfree == p->cap) p->free = xrealloc(p->free, (size_t)(p->cap = 2 * p->cap + 16) * sizeof *p->free);
    p->free[p->nfree++] = (Region){at, n};
}

/* inference: regions reused after each activation's last reader */
static void plan_reusing(AutoencoderActs *a)
{
    const AeGraph *g = &a->g;
    Planner p = {0};
    for (int s = 0; s < g->nsteps; s++) {
        const AeStep *st = &g->steps[s];
        const int born[2] = {st->out, st->aux};
        for (int k = 0; k < 2; k++) {
            int id = born[k];
            if (id < 0 || id == a->output || g->acts[id].kind == AE_ACT_PROBS) continue;
            a->offset[id] = plan_take(&p, whole_lines(g->acts[id].floats));
        }
        for (int id = 0; id < g->nacts; id++)
            if (g->acts[id].last == s && a->offset[id] != NOWHERE)
                plan_give(&p, a->offset[id], whole_lines(g->acts[id].floats));
    }
    a->floats = p.end;
    free(p.free);
}

/* training: every activation its own region; gradient regions for those
   gradients flow through */
static void plan_keeping(AutoencoderActs *a)
{
    const AeGraph *g = &a->g;
    for (int id = 0; id < g->nacts; id++) {
        if (id == a->input || id == a->output) continue;
        size_t n = whole_lines(g->acts[id].floats);
        a->offset[id] = a->floats, a->floats += n;
        if (g->acts[id].kind != AE_ACT_STATS) a->grad_offset[id] = a->grad_floats, a->grad_floats += n;
    }
}

AutoencoderActs *autoencoder_acts_create(Ctx *ctx, const Autoencoder *m, AutoencoderPart part, int max_batch,
                                         int64_t height, int64_t width, int with_grads)
{
    CHECK(max_batch >= 1, "autoencoder_acts_create: max_batch %d", max_batch);
    AutoencoderActs *a = xcalloc(1, sizeof *a);
    a->part = part, a->max_batch = max_batch, a->with_grads = with_grads;
    a->height = height, a->width = width;
    ae_build_graph(&m->cfg, part, height, width, &a->g);
    a->input = 0, a->output = a->g.steps[a->g.nsteps - 1].out;
    a->offset = xmalloc((size_t)a->g.nacts * sizeof *a->offset);
    a->grad_offset = xmalloc((size_t)a->g.nacts * sizeof *a->grad_offset);
    for (int id = 0; id < a->g.nacts; id++) a->offset[id] = a->grad_offset[id] = NOWHERE;
    if (with_grads) plan_keeping(a);
    else plan_reusing(a);
    a->arena = ctx_alloc(ctx, (size_t)max_batch * a->floats * sizeof(float));
    if (with_grads) a->grads = ctx_alloc(ctx, (size_t)max_batch * a->grad_floats * sizeof(float));
    a->v = xcalloc((size_t)a->g.nacts, sizeof *a->v);
    a->gv = xcalloc((size_t)a->g.nacts, sizeof *a->gv);
    return a;
}

void autoencoder_acts_destroy(Ctx *ctx, AutoencoderActs *a)
{
    if (!a) return;
    ctx_free(ctx, a->arena);
    ctx_free(ctx, a->grads);
    ae_graph_free(&a->g);
    free(a->offset), free(a->grad_offset), free(a->v), free(a->gv);
    free(a);
}

size_t autoencoder_acts_bytes(const AutoencoderActs *a)
{
    return (size_t)a->max_batch * (a->floats + a->grad_floats) * sizeof(float);
}

/* ---- views --------------------------------------------------------------------------------- */

/* activation id of a batch of B at per-image offset `at` of base (none when NOWHERE) */
static Tensor act_view(const AeAct *act, float *base, size_t at, int64_t B)
{
    if (at == NOWHERE) return tensor_none();
    Tensor t = {base + at * (size_t)B, DT_F32, act->ndim + 1, {B}};
    for (int k = 0; k < act->ndim; k++) t.shape[k + 1] = act->dims[k];
    return t;
}

/* a parameter (or packed group) inside buffer base; none when absent */
static Tensor param_at(const AeParamRef *r, float *base)
{
    if (r->offset < 0 || !base) return tensor_none();
    Tensor t = {base + r->offset, DT_F32, r->ndim, {0}};
    for (int k = 0; k < r->ndim; k++) t.shape[k] = r->shape[k];
    return t;
}

/* GroupNorm's mean [B,G] and rstd [B,G], the two halves of its stats activation */
static void stats_views(Tensor stats, int groups, Tensor *mean, Tensor *rstd)
{
    int64_t B = stats.shape[0];
    *mean = tensor2(stats.data, DT_F32, B, groups);
    *rstd = tensor2((float *)stats.data + B * groups, DT_F32, B, groups);
}

/* the views of every activation (and with grads, of their gradients) for batch B */
static void bind(AutoencoderActs *a, int64_t B, Tensor in, Tensor out, Tensor din, Tensor dout)
{
    for (int id = 0; id < a->g.nacts; id++) {
        a->v[id] = act_view(&a->g.acts[id], a->arena, a->offset[id], B);
        a->gv[id] = act_view(&a->g.acts[id], a->grads, a->grad_offset[id], B);
    }
    a->v[a->input] = in, a->v[a->output] = out;
    a->gv[a->input] = din, a->gv[a->output] = dout;
}

/* ---- one step each way ----------------------------------------------------------------------- */

static void step_forward(Ctx *ctx, const AeStep *s, const Tensor *v, float *weights)
{
    Tensor w = param_at(&s->w, weights), b = param_at(&s->b, weights), mean, rstd;
    switch (s->kind) {
    case AE_STEP_CONV: op_conv2d_forward(ctx, v[s->out], v[s->in], w, b, s->conv); break;
    case AE_STEP_GROUP_NORM:
        stats_views(v[s->aux], s->groups, &mean, &rstd);
        op_group_norm_forward(ctx, v[s->out], mean, rstd, v[s->in], w, b, s->groups, AE_GROUP_NORM_EPS);
        break;
    case AE_STEP_SILU: op_silu_forward(ctx, v[s->out], v[s->in]); break;
    case AE_STEP_ADD: op_add_forward(ctx, v[s->out], v[s->in], v[s->in2]); break;
    case AE_STEP_UPSAMPLE: op_upsample_nearest_forward(ctx, v[s->out], v[s->in]); break;
    case AE_STEP_PAD: op_pad2d_forward(ctx, v[s->out], v[s->in], s->pad); break;
    case AE_STEP_TO_TOKENS: op_patchify_forward(ctx, v[s->out], v[s->in], 1, PATCH_CHW); break;
    case AE_STEP_TO_IMAGE: op_unpatchify_forward(ctx, v[s->out], v[s->in], 1, PATCH_CHW); break;
    case AE_STEP_LINEAR: op_linear_forward(ctx, v[s->out], v[s->in], w, b); break;
    case AE_STEP_ATTENTION: op_attention_forward(ctx, v[s->out], v[s->aux], v[s->in], 1); break;
    case AE_STEP_SCALE: op_affine_forward(ctx, v[s->out], v[s->in], s->scale, 0.0f); break;
    }
}

static void step_backward(Ctx *ctx, const AeStep *s, const Tensor *v, const Tensor *gv, float *weights,
                          float *grads)
{
    Tensor w = param_at(&s->w, weights), dw = param_at(&s->w, grads), db = param_at(&s->b, grads), mean, rstd;
    Tensor din = gv[s->in], din2 = s->in2 >= 0 ? gv[s->in2] : tensor_none(), dout = gv[s->out];
    if (!tensor_present(din) && !tensor_present(din2) && !tensor_present(dw) && !tensor_present(db)) return;
    switch (s->kind) {
    case AE_STEP_CONV: op_conv2d_backward(ctx, din, dw, db, dout, v[s->in], w, s->conv); break;
    case AE_STEP_GROUP_NORM:
        stats_views(v[s->aux], s->groups, &mean, &rstd);
        op_group_norm_backward(ctx, din, dw, db, dout, v[s->in], w, mean, rstd, s->groups);
        break;
    case AE_STEP_SILU: op_silu_backward(ctx, din, dout, v[s->in]); break;
    case AE_STEP_ADD: op_add_backward(ctx, din, din2, dout); break;
    case AE_STEP_UPSAMPLE: op_upsample_nearest_backward(ctx, din, dout); break;
    case AE_STEP_PAD: op_pad2d_backward(ctx, din, dout, s->pad); break;
    case AE_STEP_TO_TOKENS: op_patchify_backward(ctx, din, dout, 1, PATCH_CHW); break;
    case AE_STEP_TO_IMAGE: op_unpatchify_backward(ctx, din, dout, 1, PATCH_CHW); break;
    case AE_STEP_LINEAR: op_linear_backward(ctx, din, dw, db, dout, v[s->in], w); break;
    case AE_STEP_ATTENTION: op_attention_backward(ctx, din, gv[s->aux], dout, v[s->in], v[s->aux], 1); break;
    case AE_STEP_SCALE: op_affine_backward(ctx, din, dout, s->scale); break;
    }
}

/* ---- the passes ----------------------------------------------------------------------------- */

/* in [B, Cin, side] and out [B, Cout, side / or * f] fit the arena */
static void check_io(const Autoencoder *m, const AutoencoderActs *a, AutoencoderPart part, Tensor in, Tensor out,
                     const char *fn)
{
    const AutoencoderConfig *c = &m->cfg;
    int64_t f = autoencoder_factor(c), H = a->height, W = a->width;
    int64_t cin = part == AE_ENCODER ? c->in_channels : c->embed_dim;
    int64_t cout = part == AE_ENCODER ? 2 * c->embed_dim : c->out_ch;
    int64_t hin = part == AE_ENCODER ? H : H / f, win = part == AE_ENCODER ? W : W / f;
    int64_t hout = part == AE_ENCODER ? H / f : H, wout = part == AE_ENCODER ? W / f : W;
    char si[96], so[96];
    CHECK(a->part == part, "%s: the arena was made for the %s", fn, a->part == AE_ENCODER ? "encoder" : "decoder");
    CHECK(in.ndim == 4 && in.shape[0] >= 1 && in.shape[0] <= a->max_batch && in.shape[1] == cin &&
              in.shape[2] == hin && in.shape[3] == win && in.dtype == DT_F32,
          "%s: input %s, expected F32 [B<=%d, %lld, %lld, %lld]", fn, tensor_shape_str(in, si, sizeof si),
          a->max_batch, (long long)cin, (long long)hin, (long long)win);
    CHECK(out.ndim == 4 && out.shape[0] == in.shape[0] && out.shape[1] == cout && out.shape[2] == hout &&
              out.shape[3] == wout && out.dtype == DT_F32,
          "%s: output %s, expected F32 [%lld, %lld, %lld, %lld]", fn, tensor_shape_str(out, so, sizeof so),
          (long long)in.shape[0], (long long)cout, (long long)hout, (long long)wout);
}

static void run_forward(Ctx *ctx, const Autoencoder *m, AutoencoderActs *a, Tensor in, Tensor out)
{
    int64_t B = in.shape[0];
    bind(a, B, in, out, tensor_none(), tensor_none());
    for (int s = 0; s < a->g.nsteps; s++) step_forward(ctx, &a->g.steps[s], a->v, m->weights);
    a->batch = B;
}

static void run_backward(Ctx *ctx, Autoencoder *m, AutoencoderActs *a, Tensor in, Tensor dout, Tensor din,
                         const char *fn)
{
    int64_t B = in.shape[0];
    CHECK(a->with_grads, "%s: the arena was made without gradients", fn);
    CHECK(a->batch == B, "%s: the last forward pass ran %lld images, not %lld", fn, (long long)a->batch,
          (long long)B);
    if (tensor_present(din)) CHECK(din.ndim == 4 && tensor_numel(din) == tensor_numel(in), "%s: bad input gradient", fn);
    bind(a, B, in, tensor_none(), din, dout);
    ctx_zero(ctx, tensor1(a->grads, DT_F32, (int64_t)(B * a->grad_floats)));
    for (int s = a->g.nsteps - 1; s >= 0; s--) step_backward(ctx, &a->g.steps[s], a->v, a->gv, m->weights, m->grads);
}

void autoencoder_encode_moments(Ctx *ctx, const Autoencoder *m, AutoencoderActs *a, Tensor x, Tensor moments)
{
    check_io(m, a, AE_ENCODER, x, moments, "autoencoder_encode_moments");
    run_forward(ctx, m, a, x, moments);
}

void autoencoder_encode_backward(Ctx *ctx, Autoencoder *m, AutoencoderActs *a, Tensor x, Tensor dmoments, Tensor dx)
{
    check_io(m, a, AE_ENCODER, x, dmoments, "autoencoder_encode_backward");
    run_backward(ctx, m, a, x, dmoments, dx, "autoencoder_encode_backward");
}

void autoencoder_decode(Ctx *ctx, const Autoencoder *m, AutoencoderActs *a, Tensor z, Tensor images)
{
    check_io(m, a, AE_DECODER, z, images, "autoencoder_decode");
    run_forward(ctx, m, a, z, images);
}

void autoencoder_decode_backward(Ctx *ctx, Autoencoder *m, AutoencoderActs *a, Tensor z, Tensor dimages, Tensor dz)
{
    check_io(m, a, AE_DECODER, z, dimages, "autoencoder_decode_backward");
    run_backward(ctx, m, a, z, dimages, dz, "autoencoder_decode_backward");
}

/* ---- cost --------------------------------------------------------------------------------- */

double autoencoder_macs(const Autoencoder *m, AutoencoderPart part, int64_t height, int64_t width)
{
    AeGraph g;
    ae_build_graph(&m->cfg, part, height, width, &g);
    double macs = 0;
    for (int i = 0; i < g.nsteps; i++) {
        const AeStep *s = &g.steps[i];
        const AeAct *out = &g.acts[s->out];
        if (s->kind == AE_STEP_CONV) macs += (double)out->floats * s->w.shape[1] * s->w.shape[2] * s->w.shape[3];
        else if (s->kind == AE_STEP_LINEAR) macs += (double)out->floats * s->w.shape[1];
        else if (s->kind == AE_STEP_ATTENTION) macs += 2.0 * out->dims[0] * out->dims[0] * out->dims[1];
    }
    ae_graph_free(&g);
    return macs;
}
