/*
 * train.c: the U-ViT training loop (VPSDE noise prediction, AdamW, EMA),
 * with progress, SQLite logging, atomic checkpoints and exact resume, for
 * the plain backbone and for any method (model/method.h) trained with it.
 *
 * Order of one step k (1-based): next batch from the data cursor; noise
 * (t, eps, label dropout) keyed by (seed, k); the method's train_step
 * (forward, loss, backward); optimizer updates of the backbone (unless
 * train.freeze_backbone) and of the method's parameters (AdamW and EMA with
 * the same settings, each refused on a non-finite gradient; clipping, when
 * set, is per buffer); log; checkpoint.
 * Everything is checked before the first write: a bad configuration, data
 * set or resume checkpoint leaves no folder, row or file behind.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "../../kernels/phase.h"
#include "../../model/denoiser.h"
#include "../../model/method.h"
#include "../bench/bench_util.h"
#include "../cli/progress.h"
#include "../data/context_source.h"
#include "../store/store.h"
#include "train.h"
#include "train_checkpoint.h"

typedef struct {
    RunContext *run;
    const TrainConfig *tc;
    Dataset *ds;
    UViT m;
    Optimizer o;
    Method *me;
    Optimizer om;          /* the method's parameters (om.m NULL when it has none) */
    TrainPosition pos;
    int conditional;
    int64_t saved_step;    /* the step of the last checkpoint written (-1: none) */
    float *empty;          /* text-to-image with p_uncond: the empty prompt [L, Dc] (host) */
    char ckpt_path[1100];
} Trainer;

int train_check_data(const TrainConfig *tc, const Dataset *ds)
{
    const UViTConfig *c = &tc->model;
    const char *src = tc->source;
    int conditional = c->num_classes > 0;
    if (ds->c != c->in_chans || ds->h != c->img_size || ds->w != c->img_size)
        return err_set("%s: data.dataset: %s items are %dx%dx%d, the model takes %dx%dx%d", src, ds->name,
                       ds->c, ds->h, ds->w, c->in_chans, c->img_size, c->img_size);
    if (c->clip_dim > 0 && (ds->ctx_len != c->num_clip_token || ds->ctx_dim != c->clip_dim))
        return err_set("%s: data.dataset: %s has prompts of %d x %d token features, the model reads %d x %d "
                       "(num_clip_token x clip_dim)", src, ds->name, ds->ctx_len, ds->ctx_dim, c->num_clip_token,
                       c->clip_dim);
    if (conditional && ds->num_classes == 0)
        return err_set("%s: data.dataset: %s has no labels, the model is class-conditional",
                       src, ds->name);
    if (conditional && ds->num_classes > c->num_classes - (tc->p_uncond > 0))
        return err_set("%s: model.num_classes: %d is too few for %s's %d classes%s", src,
                       c->num_classes,
                       ds->name, ds->num_classes, tc->p_uncond > 0 ? " plus the null class" : "");
    if (tc->batch > ds->n)
        return err_set("%s: train.batch: %d is more than the %lld items of %s", src, tc->batch,
                       (long long)ds->n, ds->name);
    if (tc->flip && !ds->can_flip)
        return err_set("%s: data.flip: %s cannot be flipped", src, ds->name);
    return 0;
}

/* the starting weights: a pretrained backbone, or U-ViT's init */
static int init_weights(Trainer *t)
{
    Ctx *ctx = &t->run->ctx;
    if (!t->tc->init[0]) {
        uvit_init_random(&t->m, ctx, t->tc->seed);
        return 0;
    }
    SafeTensors st;
    if (st_open(&st, t->tc->init)) return -1;
    const char *json = st_metadata(&st, "config");
    UViTConfig cfg;
    char source[1100];
    snprintf(source, sizeof source, "%s: __metadata__: config", t->tc->init);
    int rc = json ? uvit_config_parse(&cfg, json, source)
                  : err_set("%s: __metadata__: config: missing (the backbone's U-ViT configuration)", t->tc->init);
    if (rc == 0 && !uvit_config_equal(&cfg, &t->m.cfg)) {
        char *want = uvit_config_to_json(&t->m.cfg);
        rc = err_set("%s: __metadata__: config: a backbone of another shape (%s; this run trains %s)",
                     t->tc->init, json, want);
        free(want);
    }
    if (rc == 0) rc = uvit_load_weights(&t->m, ctx, &st, uvit_default_prefix(&st));
    st_close(&st);
    return rc;
}

/* a method started from another method's model takes what the file holds
   of its parameters (calm-meta: calm's heads); the rest keep their init */
static int take_method_params(Trainer *t)
{
    if (!t->tc->init[0] || !t->me->num_params) return 0;
    SafeTensors st;
    if (st_open(&st, t->tc->init)) return -1;
    int taken = method_take_params(t->me, &t->run->ctx, &st, uvit_default_prefix(&st));
    st_close(&st);
    if (taken > 0)
        fprintf(stderr, "train: %d of the %d %s parameters from %s\n", taken, t->me->num_params,
                t->me->kind->name, t->tc->init);
    return taken < 0 ? -1 : 0;
}

/* everything that can fail on input, before anything is written */
static int prepare(Trainer *t, const char *resume)
{
    Ctx *ctx = &t->run->ctx;
    DatasetSpec spec;
    train_config_dataset(t->tc, &spec);
    if (dataset_open(&spec, &t->ds)) return -1;
    t->conditional = t->tc->model.num_classes > 0;
    if (train_check_data(t->tc, t->ds)) return -1;
    const UViTConfig *mc = &t->tc->model;
    if (t->tc->empty_context[0]) {
        t->empty = xmalloc((size_t)mc->num_clip_token * mc->clip_dim * sizeof(float));
        if (empty_context_read(t->tc->empty_context, mc->num_clip_token, mc->clip_dim, t->empty)) return -1;
    }
    uvit_create(&t->m, ctx, &t->tc->model);
    if (init_weights(t)) return -1;
    if (method_new(&t->me, t->tc->method)) return -1;
    if (method_set_options_json(t->me, t->tc->method_options, t->tc->source)) return -1;
    method_create_params(t->me, ctx, &t->m);
    method_init_from_backbone(t->me, ctx, &t->m, t->tc->seed);
    if (take_method_params(t)) return -1;
    optim_create(&t->o, ctx, &t->tc->optim, t->m.weights, t->m.total);
    if (t->me->total) optim_create(&t->om, ctx, &t->tc->optim, t->me->weights, t->me->total);
    t->saved_step = -1;
    TrainState ts = {&t->m, &t->o, t->me, t->me->total ? &t->om : NULL};
    if (resume && train_checkpoint_load(resume, ctx, &ts, &t->pos)) return -1;
    if (t->pos.step > t->tc->steps)
        return err_set("%s: the checkpoint is at step %lld, past train.steps = %lld", resume,
                       (long long)t->pos.step, (long long)t->tc->steps);
    if (mkdir(t->tc->out_dir, 0777) && errno != EEXIST)
        return err_set("%s: output.dir: %s: cannot create: %s", t->tc->source, t->tc->out_dir,
                       strerror(errno));
    snprintf(t->ckpt_path, sizeof t->ckpt_path, "%s/checkpoint.safetensors", t->tc->out_dir);
    /* resuming in place: the file we resumed from is the last good checkpoint */
    char a[PATH_MAX], b[PATH_MAX];
    if (resume && realpath(resume, a) && realpath(t->ckpt_path, b) && !strcmp(a, b))
        t->saved_step = t->pos.step;
    return 0;
}

/* the EMA weights as a plain model file, with how they were made */
static int export_model(Trainer *t, const char *command, double wall_s)
{
    Ctx *ctx = &t->run->ctx;
    StWriter *w = method_model_writer(t->me, ctx, &t->m, t->o.ema, t->om.ema);
    char steps[32], loss[32], wall[32];
    snprintf(steps, sizeof steps, "%lld", (long long)t->pos.step);
    snprintf(loss, sizeof loss, "%.6g", t->pos.loss);
    snprintf(wall, sizeof wall, "%.0f", wall_s);
    st_writer_meta(w, "weights", "ema");
    st_writer_meta(w, "command", command);
    st_writer_meta(w, "train_config", t->tc->json);
    st_writer_meta(w, "steps", steps);
    st_writer_meta(w, "final_loss", loss);
    st_writer_meta(w, "wall_seconds", wall);
    int rc = st_writer_save(w, t->tc->export_path);
    st_writer_free(w);
    return rc;
}

/* "the last good checkpoint ... is untouched", or that none was written */
static const char *checkpoint_note(const Trainer *t, char *buf, size_t n)
{
    if (t->saved_step < 0) snprintf(buf, n, "no checkpoint was written by this run");
    else snprintf(buf, n, "the last good checkpoint, step %lld in %s, is untouched",
                  (long long)t->saved_step, t->ckpt_path);
    return buf;
}

/* a method's loss terms, averaged over the logging window, as metrics of the
   step (train.loss_simple, train.loss_u, train.loss_layers) */
static int log_loss_parts(Store *store, int64_t run_id, int64_t step, const double *sum, int64_t n)
{
    Metric m[] = {
        {"train.loss_simple", sum[0] / n, "", "{\"what\":\"L_simple, mean over the logging window\"}", step},
        {"train.loss_u", sum[1] / n, "", "{\"what\":\"the estimator loss (deediff: L_u), window mean\"}", step},
        {"train.loss_layers", sum[2] / n, "", "{\"what\":\"the layer-wise loss (deediff: L_UAL), window mean\"}", step},
    };
    return store_metrics(store, run_id, m, 3);
}

/* the loop itself; -1 + err_msg() when a step fails */
static int loop(Trainer *t, Store *store, int64_t run_id, const char *command, double *wall)
{
    Ctx *ctx = &t->run->ctx;
    const TrainConfig *tc = t->tc;
    const UViTConfig *c = &t->m.cfg;
    int B = tc->batch;
    size_t per = (size_t)c->in_chans * c->img_size * c->img_size;
    float *x_host = xmalloc((size_t)B * per * sizeof(float));
    int64_t *y_host = xmalloc((size_t)B * sizeof(int64_t));
    float *x_dev = ctx_alloc(ctx, (size_t)B * per * sizeof(float));
    TrainNoise tn;
    train_noise_create(&tn, ctx, tc->noise, B, c->in_chans, c->img_size, c->img_size);
    float *prompts = NULL;   // text-to-image: [B, num_clip_token, clip_dim] host
    if (c->clip_dim > 0) {
        train_noise_enable_context(&tn, ctx, c->num_clip_token, c->clip_dim);
        prompts = xmalloc((size_t)B * c->num_clip_token * c->clip_dim * sizeof(float));
    }
    UViTActs *acts = uvit_acts_create(ctx, &t->m, B, 1);
    uvit_enable_grads(&t->m, ctx);
    method_enable_grads(t->me, ctx);
    if (t->me->kind->train_begin) t->me->kind->train_begin(t->me, ctx, &t->m, B);
    TrainState ts = {&t->m, &t->o, t->me, t->me->total ? &t->om : NULL};
    TrainLog log;
    train_log_init(&log, store, run_id, 10);
    Progress prog;
    progress_init(&prog, stderr, t->pos.step, tc->steps, tc->log_every, B);
    double t0 = bench_now(), loss_sum = 0, last_log = t0;
    double parts[3] = {0, 0, 0};   /* the method's L_simple, estimator and layer-wise losses */
    int64_t loss_n = 0, log_from = t->pos.step;
    int rc = 0;
    for (int64_t k = t->pos.step + 1; rc == 0 && k <= tc->steps; k++) {
        /* a failed step leaves its phase open: the profiler closes it at the end */
        phase_begin(ctx, PHASE_TRAIN_STEP, (int)(k < INT_MAX ? k : INT_MAX));
        rc = dataset_next_batch(t->ds, &t->pos.cursor, tc->seed, B, tc->flip, x_host, y_host, prompts);
        if (rc) break;
        ctx_upload(ctx, x_dev, x_host, (size_t)B * per * sizeof(float));
        Tensor x0 = tensor4(x_dev, DT_F32, B, c->in_chans, c->img_size, c->img_size);
        train_noise_draw(ctx, &tn, x0, tc->seed, (uint32_t)k);
        if (t->conditional)
            train_noise_labels(ctx, &tn, y_host, tc->p_uncond, uvit_null_class(c), tc->seed, (uint32_t)k);
        if (prompts) train_noise_context(ctx, &tn, prompts, t->empty, tc->p_uncond, tc->seed, (uint32_t)k);
        uvit_zero_grads(&t->m, ctx);
        method_zero_grads(t->me, ctx);
        MethodStep ms = {.backbone = &t->m, .acts = acts, .tn = &tn, .conditional = t->conditional,
                         .train_backbone = !tc->freeze_backbone, .step = k};
        rc = t->me->kind->train_step(t->me, ctx, &ms);
        if (rc) break;
        float loss = (float)ms.loss;
        if (!isfinite(loss)) {
            char note[1300];
            rc = err_set("step %lld: the loss is %s; training stopped (%s)", (long long)k,
                         isnan(loss) ? "NaN" : "infinite", checkpoint_note(t, note, sizeof note));
            break;
        }
        int bad = !tc->freeze_backbone && optim_step(ctx, &t->o, &t->m);
        if (!bad && t->me->total) bad = optim_step_buffers(ctx, &t->om, t->me->weights, t->me->grads);
        if (bad) {
            char note[1300], why[1100];
            snprintf(why, sizeof why, "%s", err_msg());
            rc = err_set("step %lld: %s; training stopped (%s)", (long long)k, why,
                         checkpoint_note(t, note, sizeof note));
            break;
        }
        phase_end(ctx, PHASE_TRAIN_STEP);
        t->pos.step = k;
        t->pos.loss = loss;
        loss_sum += loss, loss_n++;
        parts[0] += ms.loss_simple, parts[1] += ms.loss_u, parts[2] += ms.loss_layers;
        progress_update(&prog, k, loss);
        if (k % tc->log_every == 0 || k == tc->steps) {
            double now = bench_now();
            TrainRow row = {k, loss_sum / loss_n, t->o.last_lr, t->o.last_grad_norm,
                            B * (double)(k - log_from) / (now - last_log), now - t0};
            rc = train_log_add(&log, &row);
            if (rc == 0 && strcmp(t->me->kind->name, "none")) rc = log_loss_parts(store, run_id, k, parts, loss_n);
            loss_sum = 0, loss_n = 0, log_from = k, last_log = now;
            parts[0] = parts[1] = parts[2] = 0;
        }
        if (rc == 0 && (k % tc->ckpt_every == 0 || k == tc->steps)) {
            rc = train_checkpoint_save(t->ckpt_path, ctx, &ts, &t->pos, tc->seed, tc->json, command);
            if (rc == 0) t->saved_step = k;
        }
    }
    *wall = bench_now() - t0;
    if (rc == 0) progress_finish(&prog);
    else fputc('\n', stderr);
    int flush = train_log_close(&log);
    if (rc == 0) rc = flush;
    train_noise_destroy(&tn, ctx);
    if (t->me->kind->train_end) t->me->kind->train_end(t->me, ctx);
    uvit_acts_destroy(ctx, acts);
    ctx_free(ctx, x_dev);
    free(x_host);
    free(y_host);
    free(prompts);
    return rc;
}

int train_run(RunContext *run, const TrainConfig *tc, const char *resume, const char *command)
{
    Trainer t;
    memset(&t, 0, sizeof t);
    t.run = run;
    t.tc = tc;
    int rc = prepare(&t, resume);
    Store store;
    int64_t run_id = 0;
    if (rc == 0) rc = store_open(&store, tc->db);
    if (rc == 0) {
        RunInfo ri = {.kind = "train", .name = tc->out_dir, .config_json = tc->json,
                      .backend = run->ctx.backend == BACKEND_CUDA ? "cuda" : "cpu"};
        rc = store_run_begin(&store, &ri, &run_id);
        double wall = 0;
        if (rc == 0) rc = loop(&t, &store, run_id, command, &wall);
        if (rc == 0 && tc->export_path[0]) rc = export_model(&t, command, wall);
        if (rc == 0)
            printf("train: %lld steps, final loss %.5f, %.0f s; checkpoint %s%s%s\n",
                   (long long)t.pos.step, t.pos.loss, wall, t.ckpt_path,
                   tc->export_path[0] ? ", model " : "", tc->export_path);
        if (rc == 0) rc = run_context_profile_store(run, &store, run_id);
        rc = store_run_end(&store, run_id, rc);
        store_close(&store);
    }
    if (t.o.m) optim_destroy(&t.o, &run->ctx);
    if (t.om.m) optim_destroy(&t.om, &run->ctx);
    method_free(t.me, &run->ctx);
    if (t.m.weights) uvit_destroy(&t.m, &run->ctx);
    if (t.ds) dataset_close(t.ds);
    free(t.empty);
    return rc;
}
