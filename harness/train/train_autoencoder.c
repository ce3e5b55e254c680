/*
 * train_autoencoder.c: the training loop of `deediff train-autoencoder`
 * (what it computes: train_autoencoder.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../../kernels/philox.h"
#include "../../model/autoencoder.h"
#include "../../model/optim.h"
#include "../bench/bench_util.h"
#include "../cli/progress.h"
#include "../data/dataset.h"
#include "../store/store.h"
#include "train_autoencoder.h"

#define SCALE_ITEMS 2048   /* images whose latents set the scale factor */
#define TEST_ITEMS 1000    /* test images whose reconstruction is measured */

typedef struct {
    Ctx *ctx;
    const TrainConfig *tc;
    Dataset *ds;
    Autoencoder m;
    AutoencoderActs *enc, *dec;
    int B, C, H, W, c, h, w;         /* batch, image and latent shapes */
    float *x, *moments, *eps, *z, *images;         /* backend buffers of one batch */
    float *dimages, *dz, *dmoments;
    float *host;                     /* [B, C, H, W] */
} AeTrainer;

static size_t img_n(const AeTrainer *t) { return (size_t)t->B * t->C * t->H * t->W; }
static size_t lat_n(const AeTrainer *t) { return (size_t)t->B * t->c * t->h * t->w; }
static Tensor img_t(const AeTrainer *t, float *d, int B) { return tensor4(d, DT_F32, B, t->C, t->H, t->W); }
static Tensor lat_t(const AeTrainer *t, float *d, int B) { return tensor4(d, DT_F32, B, t->c, t->h, t->w); }
static Tensor mom_t(const AeTrainer *t, float *d, int B) { return tensor4(d, DT_F32, B, 2 * t->c, t->h, t->w); }

static int prepare(AeTrainer *t)
{
    const TrainConfig *tc = t->tc;
    const AutoencoderConfig *a = &tc->ae;
    DatasetSpec spec;
    train_config_dataset(tc, &spec);
    if (dataset_open(&spec, &t->ds)) return -1;
    int f = autoencoder_factor(a);
    if (t->ds->c != a->in_channels || t->ds->c != a->out_ch)
        return err_set("%s: model.in_channels: %s has %d channels; in_channels and out_ch must both be %d",
                       tc->source, t->ds->name, t->ds->c, t->ds->c);
    if (t->ds->h % f || t->ds->w % f)
        return err_set("%s: model.ch_mult: %s images are %dx%d, not multiples of the factor %d", tc->source,
                       t->ds->name, t->ds->h, t->ds->w, f);
    if (tc->batch > t->ds->n)
        return err_set("%s: train.batch: %d is more than the %lld items of %s", tc->source, tc->batch,
                       (long long)t->ds->n, t->ds->name);
    if (tc->flip && !t->ds->can_flip) return err_set("%s: data.flip: %s cannot be flipped", tc->source, t->ds->name);
    if (!tc->export_path[0]) return err_set("%s: output.export: where the autoencoder goes must be given", tc->source);
    t->B = tc->batch, t->C = t->ds->c, t->H = t->ds->h, t->W = t->ds->w;
    t->c = a->embed_dim, t->h = t->H / f, t->w = t->W / f;
    AutoencoderConfig train_cfg = *a;
    train_cfg.scale_factor = 1.0;  // decode sees z itself while training; the factor is measured at the end
    autoencoder_create(&t->m, t->ctx, &train_cfg);
    autoencoder_init_random(&t->m, t->ctx, tc->seed);
    autoencoder_enable_grads(&t->m, t->ctx);
    t->enc = autoencoder_acts_create(t->ctx, &t->m, AE_ENCODER, t->B, t->H, t->W, 1);
    t->dec = autoencoder_acts_create(t->ctx, &t->m, AE_DECODER, t->B, t->H, t->W, 1);
    float **img_bufs[] = {&t->x, &t->images, &t->dimages}, **lat_bufs[] = {&t->eps, &t->z, &t->dz};
    for (int i = 0; i < 3; i++) *img_bufs[i] = ctx_alloc(t->ctx, img_n(t) * sizeof(float));
    for (int i = 0; i < 3; i++) *lat_bufs[i] = ctx_alloc(t->ctx, lat_n(t) * sizeof(float));
    t->moments = ctx_alloc(t->ctx, 2 * lat_n(t) * sizeof(float));
    t->dmoments = ctx_alloc(t->ctx, 2 * lat_n(t) * sizeof(float));
    t->host = xmalloc(img_n(t) * sizeof(float));
    return 0;
}

static void release(AeTrainer *t)
{
    float *bufs[] = {t->x, t->images, t->dimages, t->eps, t->z, t->dz, t->moments, t->dmoments};
    for (int i = 0; i < 8; i++)
        if (bufs[i]) ctx_free(t->ctx, bufs[i]);
    if (t->enc) autoencoder_acts_destroy(t->ctx, t->enc);
    if (t->dec) autoencoder_acts_destroy(t->ctx, t->dec);
    if (t->m.weights) autoencoder_destroy(&t->m, t->ctx);
    free(t->host);
    if (t->ds) dataset_close(t->ds);
}

/* one update on the batch in t->x; *rec and *kl get its two terms */
static int step(AeTrainer *t, Optimizer *o, int64_t k, double *rec, double *kl)
{
    Ctx *ctx = t->ctx;
    int B = t->B;
    int64_t ids[4096];
    for (int b = 0; b < B; b++) ids[b] = b;
    float kl_per_value = (float)(t->tc->kl_weight / ((double)t->C * t->H * t->W));
    autoencoder_zero_grads(&t->m, ctx);
    autoencoder_encode_moments(ctx, &t->m, t->enc, img_t(t, t->x, B), mom_t(t, t->moments, B));
    op_randn(ctx, lat_t(t, t->eps, B), ids, t->tc->seed, RNG_AE_POSTERIOR, (uint32_t)k);
    *kl = op_gaussian_sample_forward(ctx, lat_t(t, t->z, B), mom_t(t, t->moments, B), lat_t(t, t->eps, B));
    autoencoder_decode(ctx, &t->m, t->dec, lat_t(t, t->z, B), img_t(t, t->images, B));
    *rec = op_mse_forward(ctx, img_t(t, t->images, B), img_t(t, t->x, B));
    ctx_zero(ctx, img_t(t, t->dimages, B));
    ctx_zero(ctx, lat_t(t, t->dz, B));
    ctx_zero(ctx, mom_t(t, t->dmoments, B));
    op_mse_backward(ctx, img_t(t, t->dimages, B), img_t(t, t->images, B), img_t(t, t->x, B), 1.0f);
    autoencoder_decode_backward(ctx, &t->m, t->dec, lat_t(t, t->z, B), img_t(t, t->dimages, B),
                                lat_t(t, t->dz, B));
    op_gaussian_sample_backward(ctx, mom_t(t, t->dmoments, B), lat_t(t, t->dz, B), mom_t(t, t->moments, B),
                                lat_t(t, t->eps, B), kl_per_value);
    autoencoder_encode_backward(ctx, &t->m, t->enc, img_t(t, t->x, B), mom_t(t, t->dmoments, B), tensor_none());
    if (!isfinite(*rec) || !isfinite(*kl))
        return err_set("step %lld: the loss is not finite (reconstruction %g, KL %g); training stopped",
                       (long long)k, *rec, *kl);
    if (optim_step_buffers(ctx, o, t->m.weights, t->m.grads)) {
        char why[1024];
        snprintf(why, sizeof why, "%s", err_msg());
        return err_set("step %lld: %s; training stopped", (long long)k, why);
    }
    return 0;
}

/* items 0..n-1 of ds (no augmentation) into t->x, batch by batch: calls
   each(t, B, user) after each upload */
static int over_items(AeTrainer *t, Dataset *ds, int64_t n, void (*each)(AeTrainer *, int, void *), void *user)
{
    size_t per = (size_t)t->C * t->H * t->W;
    for (int64_t at = 0; at < n; at += t->B) {
        int B = (int)(n - at < t->B ? n - at : t->B);
        for (int b = 0; b < B; b++)
            if (dataset_get(ds, at + b, t->host + (size_t)b * per, NULL)) return -1;
        ctx_upload(t->ctx, t->x, t->host, (size_t)B * per * sizeof(float));
        each(t, B, user);
    }
    return 0;
}

/* sums of z and z^2 over the latents drawn from the first images */
typedef struct { double sum, sum2; int64_t count, batches; } ZMoments;

static void add_latents(AeTrainer *t, int B, void *user)
{
    ZMoments *zm = user;
    int64_t ids[4096];
    for (int b = 0; b < B; b++) ids[b] = zm->count / ((int64_t)t->c * t->h * t->w) + b;
    autoencoder_encode_moments(t->ctx, &t->m, t->enc, img_t(t, t->x, B), mom_t(t, t->moments, B));
    op_randn(t->ctx, lat_t(t, t->eps, B), ids, t->tc->seed, RNG_AE_POSTERIOR, 0);
    op_gaussian_sample_forward(t->ctx, lat_t(t, t->z, B), mom_t(t, t->moments, B), lat_t(t, t->eps, B));
    size_t n = (size_t)B * t->c * t->h * t->w;
    float *z = xmalloc(n * sizeof(float));
    ctx_download(t->ctx, z, t->z, n * sizeof(float));
    for (size_t i = 0; i < n; i++) zm->sum += z[i], zm->sum2 += (double)z[i] * z[i];
    zm->count += (int64_t)n;
    free(z);
}

/* the squared error of reconstructions from the posterior mean */
typedef struct { double sq; int64_t count; } Recon;

static void add_recon(AeTrainer *t, int B, void *user)
{
    Recon *r = user;
    autoencoder_encode_moments(t->ctx, &t->m, t->enc, img_t(t, t->x, B), mom_t(t, t->moments, B));
    ctx_zero(t->ctx, lat_t(t, t->eps, B));  // eps = 0: z is the posterior mean
    op_gaussian_sample_forward(t->ctx, lat_t(t, t->z, B), mom_t(t, t->moments, B), lat_t(t, t->eps, B));
    autoencoder_decode(t->ctx, &t->m, t->dec, lat_t(t, t->z, B), img_t(t, t->images, B));
    r->sq += op_mse_forward(t->ctx, img_t(t, t->images, B), img_t(t, t->x, B)) * (double)B;
    r->count += B;
}

/* the scale factor and the test reconstruction error of the trained weights */
static int measure(AeTrainer *t, double *scale, double *recon_mse)
{
    ZMoments zm = {0};
    int64_t n = t->ds->n < SCALE_ITEMS ? t->ds->n : SCALE_ITEMS;
    if (over_items(t, t->ds, n, add_latents, &zm)) return -1;
    double mean = zm.sum / zm.count, var = zm.sum2 / zm.count - mean * mean;
    if (!(var > 0)) return err_set("%s: the trained latents have no variance; no scale factor", t->tc->source);
    *scale = 1.0 / sqrt(var);
    DatasetSpec spec;
    train_config_dataset(t->tc, &spec);
    spec.test_split = 1;
    Dataset *test = NULL;
    *recon_mse = NAN;
    if (spec.format == DATA_FMNIST || spec.format == DATA_CIFAR10) {
        if (dataset_open(&spec, &test)) return -1;
        Recon r = {0};
        int rc = over_items(t, test, test->n < TEST_ITEMS ? test->n : TEST_ITEMS, add_recon, &r);
        dataset_close(test);
        if (rc) return -1;
        *recon_mse = r.sq / r.count;
    }
    return 0;
}

static int save(AeTrainer *t, const char *command, double wall, double final_loss)
{
    char steps[32], loss[32], wall_s[32];
    snprintf(steps, sizeof steps, "%lld", (long long)t->tc->steps);
    snprintf(loss, sizeof loss, "%.6g", final_loss);
    snprintf(wall_s, sizeof wall_s, "%.0f", wall);
    const char *keys[] = {"command", "train_config", "steps", "final_loss", "wall_seconds", "weights"};
    const char *values[] = {command, t->tc->json, steps, loss, wall_s, "raw (no EMA)"};
    return autoencoder_save(&t->m, t->ctx, t->tc->export_path, 6, keys, values);
}

static int loop(AeTrainer *t, Store *store, int64_t run_id, double *wall, double *final_loss)
{
    const TrainConfig *tc = t->tc;
    Optimizer o;
    optim_create(&o, t->ctx, &tc->optim, t->m.weights, t->m.total);
    TrainLog log;
    train_log_init(&log, store, run_id, 10);
    Progress prog;
    progress_init(&prog, stderr, 0, tc->steps, tc->log_every, t->B);
    DataCursor cursor = {0, 0};
    double t0 = bench_now(), last = t0, sum = 0, rec = 0, kl = 0;
    int64_t n = 0, from = 0;
    int rc = 0;
    for (int64_t k = 1; rc == 0 && k <= tc->steps; k++) {
        rc = dataset_next_batch(t->ds, &cursor, tc->seed, t->B, tc->flip, t->host, NULL, NULL);
        if (rc) break;
        ctx_upload(t->ctx, t->x, t->host, img_n(t) * sizeof(float));
        rc = step(t, &o, k, &rec, &kl);
        if (rc) break;
        double loss = rec + tc->kl_weight * kl / ((double)t->C * t->H * t->W);
        sum += loss, n++;
        *final_loss = loss;
        progress_update(&prog, k, loss);
        if (k % tc->log_every == 0 || k == tc->steps) {
            double now = bench_now();
            TrainRow row = {k, sum / n, o.last_lr, o.last_grad_norm, t->B * (double)(k - from) / (now - last), now - t0};
            Metric parts[] = {{"train.ae_reconstruction", rec, "", "{\"what\":\"mean squared error, this step\"}", k},
                              {"train.ae_kl", kl, "", "{\"what\":\"KL per image, this step\"}", k}};
            rc = train_log_add(&log, &row);
            if (rc == 0) rc = store_metrics(store, run_id, parts, 2);
            sum = 0, n = 0, from = k, last = now;
        }
    }
    *wall = bench_now() - t0;
    if (rc == 0) progress_finish(&prog);
    else fputc('\n', stderr);
    int flush = train_log_close(&log);
    optim_destroy(&o, t->ctx);
    return rc ? rc : flush;
}

int train_autoencoder_run(RunContext *run, const TrainConfig *tc, const char *command)
{
    AeTrainer t;
    memset(&t, 0, sizeof t);
    t.ctx = &run->ctx;
    t.tc = tc;
    if (tc->batch > 4096) return err_set("%s: train.batch: at most 4096 for an autoencoder", tc->source);
    int rc = prepare(&t);
    Store store;
    int64_t run_id = 0;
    if (rc == 0) rc = store_open(&store, tc->db);
    if (rc == 0) {
        RunInfo ri = {.kind = "train", .name = tc->out_dir, .config_json = tc->json,
                      .backend = run->ctx.backend == BACKEND_CUDA ? "cuda" : "cpu"};
        rc = store_run_begin(&store, &ri, &run_id);
        double wall = 0, loss = NAN, scale = 0, recon = NAN;
        if (rc == 0) rc = loop(&t, &store, run_id, &wall, &loss);
        if (rc == 0) rc = measure(&t, &scale, &recon);
        if (rc == 0) {
            t.m.cfg.scale_factor = scale;
            rc = save(&t, command, wall, loss);
        }
        if (rc == 0) {
            Metric m[] = {
                {"ae.scale_factor", scale, "", "{\"what\":\"1 / std of z over the first training images\"}", -1},
                {"ae.recon_mse_test", recon, "",
                 "{\"what\":\"mean squared error in [-1,1] of the first 1000 test images decoded from the posterior mean\"}",
                 -1}};
            rc = store_metrics(&store, run_id, m, isnan(recon) ? 1 : 2);
        }
        if (rc == 0)
            printf("train-autoencoder: %lld steps, final loss %.5f, %.0f s; scale factor %.5f, test reconstruction "
                   "MSE %.5f; model %s\n", (long long)tc->steps, loss, wall, scale, recon, tc->export_path);
        rc = store_run_end(&store, run_id, rc);
        store_close(&store);
    }
    release(&t);
    return rc;
}
