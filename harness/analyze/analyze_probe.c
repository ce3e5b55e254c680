/*
 * analyze_probe.c: figures 1 and 4 of `deediff analyze` (analyze_figures.h).
 *
 * The n images are sampled with the full model through a predictor that
 * runs the plain U-ViT (model/denoiser.h) in an inference arena, so every
 * block's hidden state is still there after the forward; then, at every
 * evaluation, each exit is probed (the method's probe hook, model/method.h)
 * for its prediction g and its uncertainty map u:
 *   fig 1: MSE(g_i, final output), mean over the n images, against t;
 *   fig 4: the mean of u_i over images 0..k-1 against t, and the whole maps
 *          of those images at the chosen evaluations (points, and one PNG
 *          grid per evaluation).
 * The predictor also keeps the state x it is called with (the sampler's
 * trajectory) and the samples, for fig 6 (analyze_error.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "../../model/denoiser.h"
#include "analyze_figures.h"
#include "../store/file_hash.h"
#include "../data/png_write.h"

typedef struct {
    NoisePredictor base;
    UViTDenoiser den;           /* the full model; its arena keeps every hidden state */
    const AnalyzeSampling *s;
    ProbeResult *r;
    float *g, *u;               /* backend [batch, C, H, W]: one exit's prediction and map */
    float *u_mean;              /* backend [batch]: each map's mean, DeeDiff's exit score */
    float *score;               /* host [batch] */
} ProbePredictor;

/* the index of eval in maps_at, or -1 */
static int map_slot(const ProbeResult *r, int eval)
{
    for (int i = 0; i < r->n_maps; i++)
        if (r->maps_at[i] == eval) return i;
    return -1;
}

/* image id's map u_row[C,H,W] (backend) of exit `exit` at evaluation eval,
   whose mean is `mean` (op_row_mean: the score early exit compares): the
   mean into map_mean, the map itself into maps at a chosen evaluation */
static void record_map(Ctx *ctx, ProbePredictor *p, int eval, int exit, int64_t id, const float *u_row, float mean)
{
    ProbeResult *r = p->r;
    int64_t chw = r->chw;
    r->map_mean[(size_t)eval * r->exits + exit] += (double)mean / r->map_images;
    int slot = map_slot(r, eval);
    if (slot >= 0)
        ctx_download(ctx, r->maps + (((size_t)slot * r->exits + exit) * r->map_images + id) * chw, u_row,
                     (size_t)chw * sizeof(float));
}

static int probe_predict(NoisePredictor *self, Ctx *ctx, Tensor x, const double *t, Conditioning cond,
                         const int64_t *ids, int eval, Tensor eps_out)
{
    ProbePredictor *p = self->state;
    const AnalyzeSampling *s = p->s;
    ProbeResult *r = p->r;
    int64_t B = x.shape[0], chw = r->chw;
    CHECK(eval >= 0 && eval < s->evals, "analyze: evaluation %d of %d", eval, s->evals);
    if (p->den.base.predict(&p->den.base, ctx, x, t, cond, ids, eval, eps_out)) return -1;
    r->t[eval] = t[0];
    // x is (B, C, H, W): the state this evaluation sees, kept for fig 6
    for (int64_t b = 0; b < B; b++) {
        CHECK(ids[b] >= 0 && ids[b] < s->n, "analyze: image id %lld of %lld", (long long)ids[b], (long long)s->n);
        ctx_download(ctx, r->traj + ((size_t)eval * s->n + ids[b]) * chw, (const float *)x.data + b * chw,
                     (size_t)chw * sizeof(float));
    }
    // g, u are (B, C, H, W) like x; the network's time input is (B)
    Tensor g = x, u = x, net_t = tensor1(p->den.t_dev, DT_F32, B);
    g.data = p->g;
    u.data = p->u;
    for (int i = 0; i < r->exits; i++) {
        method_probe(s->me, ctx, s->m, p->den.acts, i, t, net_t, g, u);
        r->layer_mse[(size_t)eval * r->exits + i] += (double)op_mse_forward(ctx, g, eps_out) * B / s->n;
        op_row_mean(ctx, tensor1(p->u_mean, DT_F32, B), u);
        ctx_download(ctx, p->score, p->u_mean, (size_t)B * sizeof(float));
        for (int64_t b = 0; b < B; b++)
            if (ids[b] < r->map_images) record_map(ctx, p, eval, i, ids[b], p->u + b * chw, p->score[b]);
    }
    return 0;
}

int analyze_probe_run(Ctx *ctx, const AnalyzeSampling *s, int map_images, const int *maps_at, int n_maps,
                      ProbeResult *r)
{
    const UViTConfig *c = &s->m->cfg;
    int C = c->in_chans, H = c->img_size;
    memset(r, 0, sizeof *r);
    r->exits = c->num_blocks - 1;
    r->chw = (int64_t)C * H * H;
    r->map_images = map_images;
    r->n_maps = n_maps;
    r->maps_at = maps_at;
    size_t evals = (size_t)s->evals, chw = (size_t)r->chw;
    r->t = xcalloc(evals, sizeof *r->t);
    r->layer_mse = xcalloc(evals * r->exits, sizeof *r->layer_mse);
    r->map_mean = xcalloc(evals * r->exits, sizeof *r->map_mean);
    r->maps = xcalloc((size_t)n_maps * r->exits * map_images * chw, sizeof *r->maps);
    r->traj = xmalloc(evals * (size_t)s->n * chw * sizeof *r->traj);
    r->final = xmalloc((size_t)s->n * chw * sizeof *r->final);

    ProbePredictor p = {.s = s, .r = r};
    uvit_denoiser_init(&p.den, ctx, s->m, s->batch, s->sc->schedule);
    p.base = (NoisePredictor){.predict = probe_predict, .state = &p, .max_batch = s->batch};
    p.g = ctx_alloc(ctx, (size_t)s->batch * chw * sizeof(float));
    p.u = ctx_alloc(ctx, (size_t)s->batch * chw * sizeof(float));
    p.u_mean = ctx_alloc(ctx, (size_t)s->batch * sizeof(float));
    p.score = xmalloc((size_t)s->batch * sizeof(float));
    int rc = sample_run(ctx, &p.base, s->sc, C, H, H, s->n, s->ids, s->labels, r->final);
    free(p.score);
    ctx_free(ctx, p.u_mean);
    ctx_free(ctx, p.u);
    ctx_free(ctx, p.g);
    uvit_denoiser_destroy(&p.den, ctx);
    return rc;
}

void probe_result_free(ProbeResult *r)
{
    free(r->t);
    free(r->layer_mse);
    free(r->map_mean);
    free(r->maps);
    free(r->traj);
    free(r->final);
    memset(r, 0, sizeof *r);
}

void analyze_probe_points(const AnalyzeSampling *s, const ProbeResult *r, PointList *pl)
{
    for (int i = 0; i < r->exits; i++) {
        const char *layer = points_series(pl, "block %d", i), *mean = points_series(pl, "mean block %d", i);
        for (int e = 0; e < s->evals; e++) {
            points_add(pl, FIG1, layer, r->t[e], r->layer_mse[(size_t)e * r->exits + i]);
            points_add(pl, FIG4, mean, r->t[e], r->map_mean[(size_t)e * r->exits + i]);
        }
    }
    const float *map = r->maps;   // [n_maps][exits][k][C,H,W]
    for (int m = 0; m < r->n_maps; m++)
        for (int i = 0; i < r->exits; i++)
            for (int k = 0; k < r->map_images; k++) {
                const char *name = points_series(pl, "map eval %d block %d image %d", r->maps_at[m], i, k);
                for (int64_t j = 0; j < r->chw; j++) points_add(pl, FIG4, name, (double)j, *map++);
            }
}

int analyze_map_png(const char *dir, const ProbeResult *r, int slot, int C, int H, Artifact *art)
{
    int64_t cells = (int64_t)r->exits * r->map_images, hw = (int64_t)H * H;
    const float *maps = r->maps + (size_t)slot * cells * r->chw;   // [exits][k][C,H,W]
    float *img = xmalloc((size_t)(cells * hw) * sizeof(float));    // [exits*k][1,H,W]
    for (int64_t cell = 0; cell < cells; cell++)
        for (int64_t px = 0; px < hw; px++) {
            double sum = 0;
            for (int c = 0; c < C; c++) sum += maps[cell * r->chw + c * hw + px];
            img[cell * hw + px] = (float)(2 * sum / C - 1);
        }
    char path[4096];
    snprintf(path, sizeof path, "%s/fig4_uncertainty_eval%d.png", dir, r->maps_at[slot]);
    int rc = png_write_grid(path, img, cells, 1, H, H, r->map_images);
    free(img);
    char *hash = xmalloc(SHA256_HEX_LEN + 1);
    struct stat sb = {0};
    if (rc == 0) rc = file_sha256(path, hash);
    if (rc == 0 && stat(path, &sb)) rc = err_set("%s: %s", path, strerror(errno));
    *art = (Artifact){.kind = "figure", .path = xstrdup(path), .hash = hash, .bytes = rc ? -1 : sb.st_size,
                      .step = -1};
    return rc;
}

void analyze_artifacts_free(Artifact *arts, int n)
{
    for (int i = 0; i < n; i++) {
        free((char *)arts[i].path);
        free((char *)arts[i].hash);
    }
    free(arts);
}
