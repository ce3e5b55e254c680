/*
 * bench_early_exit.c: does early exit save time as it saves blocks?
 * (`deediff bench --only early-exit`)
 *
 * For each committed early-exit model (DeeDiff, BERxiT, CALM, CALM's
 * meta-classifier, the static exit on DeeDiff's heads), the same 64 images
 * (512 on a GPU, where 64 would leave the card launch-bound) are sampled with DPM-Solver (50 evaluations) under several settings, each
 * timed `reps` times in turn (interleaved, so a slow minute of a shared
 * machine hits every setting alike) and summarised by its median:
 *   plain      method none: the file's backbone alone (the reference time)
 *   T = 0      the early-exit predictor without exits (must cost the same)
 *   scored     a threshold no image reaches: every exit rule runs, nothing
 *              leaves (the rule's overhead alone)
 *   T = ...    thresholds that skip blocks
 * and prints, per setting, the layer saving, the wall-clock saving against
 * the plain backbone, and their ratio (1.0: time falls exactly as blocks do).
 * A model whose file is missing is skipped with a line saying so. Any
 * backend: on CUDA every setting's time ends with a device synchronize.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../kernels/errors.h"
#include "../../model/method.h"
#include "bench_util.h"

#define EE_IMAGES_CPU 64
#define EE_IMAGES_GPU 512
#define EE_REPS 3
#define EE_MAX_SETTINGS 8

/* a model and the thresholds to time it at (0-terminated) */
typedef struct {
    const char *model, *method, *make;
    double thresholds[4];
} EeModel;

static const EeModel ee_models[] = {
    {"results/weights/fmnist-deediff.safetensors", "deediff", "train-deediff", {0.15, 0.2, 0.25}},
    {"results/weights/fmnist-berxit.safetensors", "berxit", "train-berxit", {0.1, 0.15}},
    {"results/weights/fmnist-calm.safetensors", "calm", "train-calm", {0.035, 0.05}},
    {"results/weights/fmnist-calm-meta.safetensors", "calm-meta", "train-calm-meta", {0.05, 0.3}},
    {"results/weights/fmnist-deediff.safetensors", "static", "train-deediff", {0.4, 0.5}},
};

typedef struct {
    char label[48];
    int plain;            /* method none */
    double threshold;
    double seconds[EE_REPS];
    double layers;
} EeSetting;

static int ee_images(const Ctx *ctx) { return ctx->backend == BACKEND_CUDA ? EE_IMAGES_GPU : EE_IMAGES_CPU; }

/* one timed sampling run of the setting; its layers ratio */
static int run_setting(Ctx *ctx, const UViT *m, Method *me, Method *none, const SamplerConfig *sc, EeSetting *s,
                       int rep, float *imgs, const int64_t *ids)
{
    const UViTConfig *c = &m->cfg;
    Method *use = s->plain ? none : me;
    SampleAccount acc = {0};
    int n = ee_images(ctx);
    NoisePredictor *p = method_predictor(use, ctx, m, n, sc->schedule, s->threshold, &acc);
    ctx_sync(ctx);
    double t0 = bench_now();
    int rc = sample_run(ctx, p, sc, c->in_chans, c->img_size, c->img_size, n, ids, NULL, imgs);
    ctx_sync(ctx);
    s->seconds[rep] = bench_now() - t0;
    s->layers = (double)acc.blocks_run / ((double)acc.image_evals * c->num_blocks);
    method_predictor_free(use, ctx, p);
    return rc;
}

static void print_settings(FILE *out, const EeModel *em, EeSetting *set, int ns, Ctx *ctx)
{
    double ref = bench_median(set[0].seconds, EE_REPS);
    char threads[32] = "";
    if (ctx->backend == BACKEND_CPU)
        snprintf(threads, sizeof threads, ", %d threads", ctx->threads > 0 ? ctx->threads : omp_get_max_threads());
    fprintf(out, "\nearly exit: %s on %s, %d images, DPM-Solver 50 evaluations, %s%s; median of %d "
                 "interleaved runs\n", em->method, em->model, ee_images(ctx), bench_device_name(ctx), threads,
            EE_REPS);
    fprintf(out, "  %-28s %8s %12s %14s %12s %8s\n", "setting", "layers", "layer saving", "time vs plain",
            "wall saving", "ratio");
    for (int i = 0; i < ns; i++) {
        double t = bench_median(set[i].seconds, EE_REPS), saved = 1 - set[i].layers, wall = 1 - t / ref;
        fprintf(out, "  %-28s %8.3f %11.1f%% %13.3fx %11.1f%% ", set[i].label, set[i].layers, 100 * saved, t / ref,
                100 * wall);
        if (saved > 0.005) fprintf(out, "%8.2f\n", wall / saved);
        else fprintf(out, "%8s\n", "-");
    }
    fflush(out);
}

static int bench_model(FILE *out, Ctx *ctx, const EeModel *em)
{
    if (access(em->model, R_OK)) {
        fprintf(out, "\nearly exit: %s is missing (make %s): %s skipped\n", em->model, em->make, em->method);
        return 0;
    }
    UViT m;
    Method *me, *none;
    if (method_load(em->model, em->method, NULL, ctx, &m, &me)) return -1;
    if (method_new(&none, "none")) return -1;
    method_create_params(none, ctx, &m);
    EeSetting set[EE_MAX_SETTINGS] = {{"plain (method none)", 1, 0, {0}, 0}, {"T = 0", 0, 0, {0}, 0},
                                      {"scored, no exit (T = 1e-6)", 0, 1e-6, {0}, 0}};
    int ns = 3;
    for (int k = 0; k < 4 && em->thresholds[k] > 0; k++, ns++) {
        set[ns] = (EeSetting){.threshold = em->thresholds[k]};
        snprintf(set[ns].label, sizeof set[ns].label, "T = %g", em->thresholds[k]);
    }
    SamplerConfig sc = sampler_config_default(SAMPLER_DPM, SCHEDULE_VPSDE);
    sc.seed = 0;
    const UViTConfig *c = &m.cfg;
    int n = ee_images(ctx);
    float *imgs = xmalloc(sizeof(float) * n * c->in_chans * c->img_size * c->img_size);
    int64_t *ids = xmalloc(sizeof(int64_t) * n);
    for (int i = 0; i < n; i++) ids[i] = i;
    int rc = 0;
    for (int rep = 0; rc == 0 && rep < EE_REPS; rep++)
        for (int i = 0; rc == 0 && i < ns; i++) rc = run_setting(ctx, &m, me, none, &sc, &set[i], rep, imgs, ids);
    if (rc == 0) print_settings(out, em, set, ns, ctx);
    free(imgs), free(ids);
    method_free(none, ctx);
    method_free(me, ctx);
    uvit_destroy(&m, ctx);
    return rc;
}

int bench_early_exit(FILE *out, Ctx *ctx)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof ee_models / sizeof ee_models[0]; i++)
        rc = bench_model(out, ctx, &ee_models[i]);
    return rc;
}
