/*
 * cmd_forward.c: `deediff forward`: run a U-ViT checkpoint on inputs from a
 * safetensors file and write its output.
 *
 * IN holds x F32 [B,C,H,W], t F32 [B] (the value the network receives, e.g.
 * t*999 in the VPSDE setting) and, for class-conditional models, y I64 [B],
 * for text-to-image models context F32 [B, num_clip_token, clip_dim] (each
 * image's prompt as CLIP token features, U-ViT's {i}_{k}.npy). A tensor the
 * model does not take is refused. OUT receives out F32 [B,C,H,W], written
 * atomically.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../../model/uvit.h"
#include "cli.h"
#include "run_context.h"

/* images per network call: bounds the activation arena */
#define FORWARD_CHUNK 64

/* checks that tensor `name` exists with dtype dt and the given shape */
static int expect_tensor(const SafeTensors *st, const char *name, DType dt, int ndim,
                         const int64_t *shape, const char *meaning)
{
    const StEntry *e = st_find(st, name);
    if (!e) return err_set("%s: missing tensor '%s' (%s)", st->path, name, meaning);
    if (e->dtype != dt)
        return err_set("%s: tensor '%s': dtype %s, expected %s", st->path, name,
                       dtype_name(e->dtype), dtype_name(dt));
    int ok = e->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = e->shape[i] == shape[i];
    if (!ok) {
        char got[96], want[96];
        Tensor g = {NULL, dt, e->ndim, {0}}, w = {NULL, dt, ndim, {0}};
        memcpy(g.shape, e->shape, sizeof g.shape);
        memcpy(w.shape, shape, (size_t)ndim * sizeof *shape);
        return err_set("%s: tensor '%s': shape %s, expected %s (%s)", st->path, name,
                       tensor_shape_str(g, got, sizeof got), tensor_shape_str(w, want, sizeof want),
                       meaning);
    }
    return 0;
}

static int check_finite(const char *path, const char *name, const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return err_set("%s: tensor '%s': element %lld is %s", path, name, (long long)i,
                           isnan(v[i]) ? "NaN" : "infinite");
    return 0;
}

/* reads and validates context [B, L, Dc] for a text-to-image model (NULL otherwise) */
static int read_context(const SafeTensors *st, const UViTConfig *c, int64_t B, float **context)
{
    *context = NULL;
    if (!uvit_is_text(c)) {
        if (st_find(st, "context"))
            return err_set("%s: tensor 'context': the model is not text-to-image (clip_dim 0)", st->path);
        return 0;
    }
    int64_t cs[3] = {B, c->num_clip_token, c->clip_dim};
    char meaning[160];
    snprintf(meaning, sizeof meaning, "the prompts' CLIP token features of a text-to-image model: [B, "
             "num_clip_token %d, clip_dim %d]", c->num_clip_token, c->clip_dim);
    if (expect_tensor(st, "context", DT_F32, 3, cs, meaning)) return -1;
    size_t n = (size_t)(B * cs[1] * cs[2]);
    *context = xmalloc(n * sizeof(float));
    if (st_read_f32(st, "context", *context, 3, cs)) return -1;
    return check_finite(st->path, "context", *context, (int64_t)n);
}

/* reads and validates x, t, y and context for the model's configuration */
static int read_inputs(const SafeTensors *st, const UViTConfig *c, int64_t *B, float **x,
                       float **t, int64_t **y, float **context)
{
    const StEntry *ex = st_find(st, "x");
    if (!ex) return err_set("%s: missing tensor 'x' (F32 [B,C,H,W] noisy images)", st->path);
    if (ex->ndim != 4 || ex->shape[0] < 1)
        return err_set("%s: tensor 'x': expected 4 dimensions [B,C,H,W] with B >= 1", st->path);
    *B = ex->shape[0];
    int64_t xs[4] = {*B, c->in_chans, c->img_size, c->img_size}, ts[1] = {*B};
    char meaning[96];
    snprintf(meaning, sizeof meaning, "the model takes [B, %d, %d, %d]", c->in_chans, c->img_size,
             c->img_size);
    if (expect_tensor(st, "x", DT_F32, 4, xs, meaning)) return -1;
    if (expect_tensor(st, "t", DT_F32, 1, ts, "one timestep per image")) return -1;
    size_t nx = (size_t)(*B * c->in_chans * c->img_size * c->img_size);
    *x = xmalloc(nx * sizeof(float));
    *t = xmalloc((size_t)*B * sizeof(float));
    *y = NULL;
    if (st_read_f32(st, "x", *x, 4, xs) || st_read_f32(st, "t", *t, 1, ts)) return -1;
    if (check_finite(st->path, "x", *x, (int64_t)nx) || check_finite(st->path, "t", *t, *B))
        return -1;
    if (c->num_classes > 0) {
        if (expect_tensor(st, "y", DT_I64, 1, ts, "class labels of a class-conditional model"))
            return -1;
        *y = xmalloc((size_t)*B * sizeof(int64_t));
        if (st_read_i64(st, "y", *y, 1, ts)) return -1;
        for (int64_t i = 0; i < *B; i++)
            if ((*y)[i] < 0 || (*y)[i] >= c->num_classes)
                return err_set("%s: tensor 'y': label %lld at %lld is outside [0, %d)", st->path,
                               (long long)(*y)[i], (long long)i, c->num_classes);
    } else if (st_find(st, "y")) {
        return err_set("%s: tensor 'y': the model is not class-conditional (num_classes -1)", st->path);
    }
    return read_context(st, c, *B, context);
}

/* runs the network over all B images in chunks; out is host [B,C,H,W] */
static void run_network(RunContext *rc, const UViT *m, int64_t B, const float *x, const float *t,
                        const int64_t *y, const float *context, float *out)
{
    Ctx *ctx = &rc->ctx;
    const UViTConfig *c = &m->cfg;
    int chunk = B < FORWARD_CHUNK ? (int)B : FORWARD_CHUNK;
    size_t per_img = (size_t)c->in_chans * c->img_size * c->img_size;
    UViTActs *acts = uvit_acts_create(ctx, m, chunk, 0);
    float *dx = ctx_alloc(ctx, (size_t)chunk * per_img * sizeof(float));
    float *dout = ctx_alloc(ctx, (size_t)chunk * per_img * sizeof(float));
    float *dt = ctx_alloc(ctx, (size_t)chunk * sizeof(float));
    int64_t *dy = ctx_alloc(ctx, (size_t)chunk * sizeof(int64_t));
    size_t per_ctx = uvit_is_text(c) ? (size_t)c->num_clip_token * c->clip_dim : 0;
    float *dctx = per_ctx ? ctx_alloc(ctx, (size_t)chunk * per_ctx * sizeof(float)) : NULL;
    for (int64_t at = 0; at < B; at += chunk) {
        int n = (int)(B - at < chunk ? B - at : chunk);
        ctx_upload(ctx, dx, x + at * per_img, n * per_img * sizeof(float));
        ctx_upload(ctx, dt, t + at, n * sizeof(float));
        Conditioning cond = cond_none();
        if (y) {
            ctx_upload(ctx, dy, y + at, n * sizeof(int64_t));
            cond.y = tensor1(dy, DT_I64, n);
        }
        if (context) {
            ctx_upload(ctx, dctx, context + at * per_ctx, n * per_ctx * sizeof(float));
            cond.context = tensor3(dctx, DT_F32, n, c->num_clip_token, c->clip_dim);   // (n, L, Dc)
        }
        Tensor tx = tensor4(dx, DT_F32, n, c->in_chans, c->img_size, c->img_size);
        Tensor to = tensor4(dout, DT_F32, n, c->in_chans, c->img_size, c->img_size);
        uvit_forward(ctx, m, acts, tx, tensor1(dt, DT_F32, n), cond, to);
        ctx_download(ctx, out + at * per_img, dout, n * per_img * sizeof(float));
    }
    ctx_free(ctx, dx);
    ctx_free(ctx, dout);
    ctx_free(ctx, dt);
    ctx_free(ctx, dy);
    if (dctx) ctx_free(ctx, dctx);
    uvit_acts_destroy(ctx, acts);
}

int cmd_forward(int argc, char **argv)
{
    const char *model = NULL, *input = NULL, *output = NULL;
    RunOptions ro = run_options_default();
    CliOpt opts[] = {
        {"--model", "M.safetensors", "U-ViT checkpoint (config in __metadata__)", &model, NULL, 1},
        {"--input", "IN.safetensors", "x F32 [B,C,H,W], t F32 [B], y I64 [B] if class-conditional, context F32 "
         "[B,num_clip_token,clip_dim] if text-to-image", &input, NULL, 1},
        {"--output", "OUT.safetensors", "receives out F32 [B,C,H,W]", &output, NULL, 1},
        RUN_OPTIONS(ro),
    };
    int rc = cli_parse("forward", "--model M --input IN --output OUT [options]",
                       "Runs the U-ViT network once on every image of IN and writes its output "
                       "(the predicted noise) to OUT.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : -1;
    RunContext run;
    if (run_context_open(&run, &ro)) return -1;
    UViT m;
    if (uvit_load(&m, &run.ctx, model)) {
        run_context_close(&run);
        return -1;
    }
    SafeTensors st;
    float *x = NULL, *t = NULL, *out = NULL, *context = NULL;
    int64_t *y = NULL, B = 0;
    rc = st_open(&st, input);
    if (rc == 0) {
        rc = read_inputs(&st, &m.cfg, &B, &x, &t, &y, &context);
        st_close(&st);
    }
    if (rc == 0) {
        int64_t shape[4] = {B, m.cfg.in_chans, m.cfg.img_size, m.cfg.img_size};
        out = xmalloc((size_t)(B * shape[1] * shape[2] * shape[3]) * sizeof(float));
        run_network(&run, &m, B, x, t, y, context, out);
        StWriter *w = st_writer_new();
        st_writer_add(w, "out", DT_F32, 4, shape, out);
        st_writer_meta(w, "model", model);
        rc = st_writer_save(w, output);
        st_writer_free(w);
    }
    free(x);
    free(t);
    free(y);
    free(context);
    free(out);
    uvit_destroy(&m, &run.ctx);
    run_context_close(&run);
    return rc;
}
