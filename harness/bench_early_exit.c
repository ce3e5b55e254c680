/*
 * bench_early_exit.c: does early exit save time as it saves blocks?
 * (`deediff bench --only early-exit`)
 *
 * The committed DeeDiff model samples the same 64 images with DPM-Solver
 * (50 evaluations) under several settings, each timed `reps` times in turn
 * (interleaved, so a slow minute of a shared machine hits every setting
 * alike) and summarised by its median:
 *   plain      method none: the backbone alone (the reference time)
 *   T = 0      the early-exit predictor without exits (must cost the same)
 *   scored     a threshold no image reaches: every estimator runs, nothing
 *              leaves (the estimators' overhead alone)
 *   T = ...    thresholds that skip blocks
 * and prints, per setting, the layer saving, the wall-clock saving against
 * the plain backbone, and their ratio (1.0: time falls exactly as blocks do).
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../kernels/errors.h"
#include "../model/method.h"
#include "bench_util.h"

#define EE_MODEL "results/weights/fmnist-deediff.safetensors"
#define EE_IMAGES 64
#define EE_REPS 3

typedef struct {
    const char *label;
    const char *method;   /* NULL: the file's own */
    double threshold;
    double seconds[EE_REPS];
    double layers;
} EeSetting;

/* one timed sampling run of the setting; its layers ratio */
static int run_setting(Ctx *ctx, const UViT *m, Method *me, Method *none, const SamplerConfig *sc, EeSetting *s,
                       int rep, float *imgs)
{
    const UViTConfig *c = &m->cfg;
    Method *use = s->method ? none : me;
    SampleAccount acc = {0};
    NoisePredictor *p = method_predictor(use, ctx, m, EE_IMAGES, sc->schedule, s->threshold, &acc);
    int64_t ids[EE_IMAGES];
    for (int i = 0; i < EE_IMAGES; i++) ids[i] = i;
    double t0 = bench_now();
    int rc = sample_run(ctx, p, sc, c->in_chans, c->img_size, c->img_size, EE_IMAGES, ids, NULL, imgs);
    ctx_sync(ctx);
    s->seconds[rep] = bench_now() - t0;
    s->layers = (double)acc.blocks_run / ((double)acc.image_evals * c->num_blocks);
    method_predictor_free(use, ctx, p);
    return rc;
}

int bench_early_exit(FILE *out, Ctx *ctx)
{
    if (access(EE_MODEL, R_OK)) {
        fprintf(out, "early exit: %s is missing (make train-deediff): skipped\n", EE_MODEL);
        return 0;
    }
    UViT m;
    Method *me, *none;
    if (method_load(EE_MODEL, NULL, NULL, ctx, &m, &me)) return -1;
    if (method_new(&none, "none")) return -1;
    method_create_params(none, ctx, &m);
    EeSetting set[] = {
        {"plain (method none)", "none", 0, {0}, 0},
        {"T = 0", NULL, 0, {0}, 0},
        {"scored, no exit (T = 1e-6)", NULL, 1e-6, {0}, 0},
        {"T = 0.15", NULL, 0.15, {0}, 0},
        {"T = 0.2", NULL, 0.2, {0}, 0},
        {"T = 0.25", NULL, 0.25, {0}, 0},
    };
    int ns = sizeof set / sizeof set[0];
    SamplerConfig sc = sampler_config_default(SAMPLER_DPM, SCHEDULE_VPSDE);
    sc.seed = 0;
    const UViTConfig *c = &m.cfg;
    float *imgs = xmalloc(sizeof(float) * EE_IMAGES * c->in_chans * c->img_size * c->img_size);
    int rc = 0;
    for (int rep = 0; rc == 0 && rep < EE_REPS; rep++)
        for (int i = 0; rc == 0 && i < ns; i++) rc = run_setting(ctx, &m, me, none, &sc, &set[i], rep, imgs);
    if (rc == 0) {
        double ref = bench_median(set[0].seconds, EE_REPS);
        fprintf(out, "\nearly exit: %s, %d images, DPM-Solver 50 evaluations, %s, %d threads; median of %d "
                     "interleaved runs\n", EE_MODEL, EE_IMAGES, bench_cpu_name(), ctx->threads > 0 ? ctx->threads : omp_get_max_threads(), EE_REPS);
        fprintf(out, "  %-28s %8s %12s %14s %12s %8s\n", "setting", "layers", "layer saving", "time vs plain",
                "wall saving", "ratio");
        for (int i = 0; i < ns; i++) {
            double t = bench_median(set[i].seconds, EE_REPS), saved = 1 - set[i].layers, wall = 1 - t / ref;
            fprintf(out, "  %-28s %8.3f %11.1f%% %13.3fx %11.1f%% ", set[i].label, set[i].layers, 100 * saved,
                    t / ref, 100 * wall);
            if (saved > 0.005) fprintf(out, "%8.2f\n", wall / saved);
            else fprintf(out, "%8s\n", "-");
        }
    }
    free(imgs);
    method_free(none, ctx);
    method_free(me, ctx);
    uvit_destroy(&m, ctx);
    return rc;
}
