/*
 * cmd_sample.c: `deediff sample`: draw images from a U-ViT checkpoint, with
 * its method (model/method.h) and an early-exit threshold.
 *
 * Writes DIR/<id>.png for every image, DIR/grid.png, and DIR/samples.json
 * (the protocol and, per image, its id, label and the command that redraws
 * it alone). An image is addressed by (seed, id): its starting noise and
 * every step's noise are Philox streams keyed by them (and a text-to-image
 * model's prompt is prompt id of --context), so
 * `deediff sample ... --seed S --ids 12` regenerates image 12 bit for bit.
 * Every PNG also carries its protocol in a tEXt chunk named "deediff".
 * Guidance and text conditioning: harness/cli/guidance_options.h.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "../../model/denoiser.h"
#include "../../model/method.h"
#include "../../model/sampler.h"
#include "../../model/uvit.h"
#include "../cli/cli.h"
#include "../cli/guidance_options.h"
#include "../cli/method_options.h"
#include "../data/png_write.h"
#include "../cli/progress.h"
#include "../cli/run_context.h"
#include "../cli/sampler_options.h"
#include "../cli/text_file.h"

typedef struct {
    const char *model, *out, *n, *first_id, *ids, *label, *batch, *weights;
    const char *db;        /* --profile: where its run is recorded */
    SamplerOptions so;
    MethodOptions mo;
    GuidanceOptions go;
    const char *method;    /* the method that ran */
    double threshold;
} SampleArgs;

/* "3,7,12" -> ids; -1 + err on a bad list */
static int parse_ids(const char *text, int64_t **ids, int64_t *n)
{
    *n = 1;
    for (const char *c = text; *c; c++) *n += *c == ',';
    *ids = xmalloc((size_t)*n * sizeof **ids);
    const char *at = text;
    for (int64_t i = 0; i < *n; i++) {
        char *end;
        errno = 0;
        long long v = strtoll(at, &end, 10);
        if (errno || end == at || v < 0 || v >= ((int64_t)1 << 40) || (*end && *end != ','))
            return err_set("--ids: '%s' is not a comma-separated list of image ids", text);
        (*ids)[i] = v;
        at = end + 1;
    }
    return 0;
}

/* json (freed) with what guidance and the contexts used added (caller frees) */
static char *with_guidance(char *json, const Guidance *g)
{
    cJSON *j = cJSON_Parse(json);
    CHECK(j, "sample: a protocol that is not JSON: %s", json);
    free(json);
    guidance_protocol_add(g, j);
    char *text = cJSON_PrintUnformatted(j);
    CHECK(text, "out of memory");
    cJSON_Delete(j);
    return text;
}

/* the run's protocol, as JSON (caller frees) */
static char *run_protocol(const SampleArgs *a, const SamplerConfig *sc, const char *prefix,
                          const Guidance *g, int64_t n)
{
    char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"model\":\"%s\",\"weights\":\"%s\",\"method\":\"%s\",\"threshold\":%g,\"seed\":%llu,"
             "\"sampler\":\"%s\",\"schedule\":\"%s\",\"steps\":%d,\"eta\":%g,\"guidance\":%g,\"n\":%lld,"
             "\"pixels\":\"u8 = floor((x+1)/2*255+0.5) clamped\"}",
             a->model, *prefix ? prefix : "plain", a->method, a->threshold, (unsigned long long)sc->seed,
             sampler_kind_name(sc->kind), schedule_kind_name(sc->schedule), sc->steps, sc->eta,
             g->scale, (long long)n);
    return with_guidance(xstrdup(buf), g);
}

/* the protocol of one image, as JSON (caller frees) */
static char *image_protocol(const SampleArgs *a, const SamplerConfig *sc, const char *prefix,
                            const Guidance *g, int64_t id, int64_t label)
{
    char buf[4096], flags[2048];
    guidance_redraw_flags(g, flags, sizeof flags);
    snprintf(buf, sizeof buf,
             "{\"model\":\"%s\",\"weights\":\"%s\",\"method\":\"%s\",\"threshold\":%g,\"id\":%lld,"
             "\"seed\":%llu,\"sampler\":\"%s\","
             "\"schedule\":\"%s\",\"steps\":%d,\"eta\":%g,\"guidance\":%g,\"label\":%lld,"
             "\"redraw\":\"deediff sample --model %s --weights %s --method %s --threshold %g --seed %llu --ids %lld "
             "--sampler %s --schedule %s --steps %d --eta %g --guidance %g%s%s%s --out DIR\"}",
             a->model, *prefix ? prefix : "plain", a->method, a->threshold, (long long)id, (unsigned long long)sc->seed,
             sampler_kind_name(sc->kind), schedule_kind_name(sc->schedule), sc->steps, sc->eta,
             g->scale, (long long)label, a->model, *prefix ? prefix : "plain", a->method, a->threshold,
             (unsigned long long)sc->seed, (long long)id, sampler_kind_name(sc->kind),
             schedule_kind_name(sc->schedule), sc->steps, sc->eta, g->scale,
             a->label ? " --label " : "", a->label ? a->label : "", flags);
    return with_guidance(xstrdup(buf), g);
}

static int parse_sampler(const SampleArgs *a, SamplerConfig *sc, long *batch)
{
    if (sampler_options_parse(&a->so, sc)) return -1;
    *batch = 64;
    if (a->batch && cli_int("--batch", a->batch, 1, 4096, batch)) return -1;
    return 0;
}

/* writes every PNG, the grid and the manifest */
static int write_outputs(const SampleArgs *a, const SamplerConfig *sc, const char *prefix,
                         const Guidance *g, const UViTConfig *c, const float *imgs,
                         const int64_t *ids, const int64_t *labels, int64_t n)
{
    int C = c->in_chans, H = c->img_size;
    TextBuf manifest;
    text_init(&manifest);
    char *proto = run_protocol(a, sc, prefix, g, n);
    text_printf(&manifest, "{\"protocol\":%s,\n\"images\":[\n", proto);
    free(proto);
    for (int64_t i = 0; i < n; i++) {
        char path[4096], file[64];
        snprintf(file, sizeof file, "%06lld.png", (long long)ids[i]);
        snprintf(path, sizeof path, "%s/%s", a->out, file);
        int64_t label = labels ? labels[i] : -1;
        char *p = image_protocol(a, sc, prefix, g, ids[i], label);
        const char *key = "deediff";
        int rc = png_write_chw(path, imgs + (size_t)i * C * H * H, C, H, H, 1, &key,
                               (const char *const *)&p);
        text_printf(&manifest, "%s{\"file\":\"%s\",\"image\":%s}\n", i ? "," : "", file, p);
        free(p);
        if (rc) {
            text_free(&manifest);
            return -1;
        }
    }
    text_printf(&manifest, "]}\n");
    char path[4096];
    snprintf(path, sizeof path, "%s/grid.png", a->out);
    int cols = (int)ceil(sqrt((double)n));
    int rc = png_write_grid(path, imgs, n, C, H, H, cols);
    snprintf(path, sizeof path, "%s/samples.json", a->out);
    if (rc == 0) rc = text_write_atomic(&manifest, path);
    text_free(&manifest);
    return rc;
}

/* --profile: a run of kind sample in --db, to hold the kernel timings; its
   config is samples.json's protocol */
static int record_begin(const SampleArgs *a, const SamplerConfig *sc, const char *prefix, const Guidance *g,
                        int64_t n, Store *st, int64_t *run_id)
{
    if (store_open(st, a->db)) return -1;
    char *config = run_protocol(a, sc, prefix, g, n);
    RunInfo ri = {.kind = "sample", .name = a->out, .config_json = config, .backend = "cuda"};
    int rc = store_run_begin(st, &ri, run_id);
    free(config);
    if (rc) {
        *run_id = 0;
        store_close(st);
    }
    return rc;
}

static int run_sampling(RunContext *run, SampleArgs *a)
{
    Ctx *ctx = &run->ctx;
    UViT m;
    const char *prefix = NULL;
    if (a->weights) {
        if (!strcmp(a->weights, "plain")) prefix = "";
        else if (!strcmp(a->weights, "ema")) prefix = "ema.";
        else if (!strcmp(a->weights, "model")) prefix = "model.";
        else return err_set("--weights: '%s' is not ema, model or plain", a->weights);
    } else {
        SafeTensors st;
        if (st_open(&st, a->model)) return -1;
        prefix = uvit_default_prefix(&st);
        st_close(&st);
    }
    Method *me;
    if (method_options_open(&a->mo, a->model, prefix, ctx, &m, &me, &a->threshold)) return -1;
    a->method = me->kind->name;
    const UViTConfig *c = &m.cfg;
    SamplerConfig sc;
    Guidance g = {0};
    long batch;
    int64_t n = 16, *ids = NULL, *labels = NULL;
    float *imgs = NULL;
    int rc = parse_sampler(a, &sc, &batch);
    if (rc == 0) rc = guidance_open(&a->go, c, &g);
    if (rc == 0 && a->ids) {
        rc = parse_ids(a->ids, &ids, &n);
    } else if (rc == 0) {
        long first = 0, count = 16;
        if (a->n) rc = cli_int("--n", a->n, 1, 1 << 24, &count);
        if (rc == 0 && a->first_id) rc = cli_int("--first-id", a->first_id, 0, 1L << 40, &first);
        n = count;
        ids = xmalloc((size_t)n * sizeof *ids);
        for (int64_t i = 0; i < n; i++) ids[i] = first + i;
    }
    if (rc == 0 && c->num_classes > 0) {
        labels = xmalloc((size_t)n * sizeof *labels);
        sample_labels(sc.seed, ids, n, guidance_label_classes(&g, c), labels);
        if (a->label) {
            long l;
            rc = cli_int("--label", a->label, 0, c->num_classes - 1, &l);
            for (int64_t i = 0; i < n; i++) labels[i] = l;
        }
    } else if (rc == 0 && a->label) {
        rc = err_set("--label: the model is not class-conditional (num_classes -1)");
    }
    if (rc == 0 && c->in_chans != 1 && c->in_chans != 3)
        rc = err_set("%s: %d-channel samples (latents) cannot be written as PNG without the "
                     "autoencoder", a->model, c->in_chans);
    if (rc == 0) rc = guidance_check_ids(&g, ids, n);
    /* the predictors before the output folder: a setting they refuse writes nothing */
    SampleAccount account = {0};
    NoisePredictor *inner = NULL, *pred = NULL;
    CfgPredictor cfg;
    if (rc == 0) {
        inner = method_predictor(me, ctx, &m, (int)batch, sc.schedule, a->threshold, &account);
        rc = guidance_wrap(&g, ctx, c, inner, &cfg, &pred);
    }
    if (rc == 0) rc = make_dirs(a->out);
    Store st;
    int64_t run_id = 0;
    if (rc == 0 && run->profiler) rc = record_begin(a, &sc, prefix, &g, n, &st, &run_id);
    if (rc == 0) {
        int C = c->in_chans, H = c->img_size;
        imgs = xmalloc((size_t)n * C * H * H * sizeof(float));
        /* paired exits halve the images per call: each image's two passes share one */
        int64_t per_run = pred->max_batch;
        Progress prog;
        progress_init(&prog, stderr, 0, n, per_run, 1);
        for (int64_t at = 0; rc == 0 && at < n; at += per_run) {
            int64_t k = n - at < per_run ? n - at : per_run;
            SampleCond cond;
            rc = guidance_cond(&g, ids + at, k, labels ? labels + at : NULL, &cond);
            if (rc == 0) rc = sample_run_cond(ctx, pred, &sc, C, H, H, k, ids + at, &cond, imgs + (size_t)at * C * H * H);
            progress_update(&prog, at + k, NAN);
        }
        progress_finish(&prog);
        if (rc == 0 && strcmp(me->kind->name, "none")) exit_histogram_print(stdout, &account, c->num_blocks);
    }
    if (pred && pred != inner) cfg_predictor_destroy(&cfg, ctx);
    if (inner) method_predictor_free(me, ctx, inner);
    if (rc == 0) rc = write_outputs(a, &sc, prefix, &g, c, imgs, ids, labels, n);
    if (run_id) {
        if (rc == 0) rc = run_context_profile_store(run, &st, run_id);
        rc = store_run_end(&st, run_id, rc);
        store_close(&st);
    }
    if (rc == 0) printf("sample: %lld images in %s (grid.png, samples.json)\n", (long long)n, a->out);
    free(imgs);
    free(ids);
    free(labels);
    guidance_close(&g);
    method_free(me, ctx);
    uvit_destroy(&m, ctx);
    return rc;
}

int cmd_sample(int argc, char **argv)
{
    SampleArgs a = {0};
    RunOptions ro = run_options_default();
    CliOpt opts[] = {
        {"--model", "M.safetensors", "U-ViT model or training checkpoint (a method's too)", &a.model, NULL, 1},
        {"--out", "DIR", "folder for the PNGs, grid.png and samples.json", &a.out, NULL, 1},
        {"--n", "N", "number of images, ids first-id.. (default 16)", &a.n, NULL, 0},
        {"--first-id", "K", "id of the first image (default 0)", &a.first_id, NULL, 0},
        {"--ids", "I,J,..", "exactly these image ids (redraw single images)", &a.ids, NULL, 0},
        SAMPLER_OPTIONS(a.so),
        METHOD_OPTIONS(a.mo),
        GUIDANCE_OPTIONS(a.go),
        {"--label", "L", "class of every image (default: drawn per image)", &a.label, NULL, 0},
        {"--weights", "ema|model|plain", "which weights of a checkpoint (default ema)", &a.weights, NULL, 0},
        {"--batch", "B", "images per network call (default 64)", &a.batch, NULL, 0},
        RUN_OPTIONS(ro),
        PROFILE_OPTION(ro),
        {"--db", "PATH", "with --profile: the results database its run goes to (default " STORE_DEFAULT_PATH ")",
         &a.db, NULL, 0},
    };
    int rc = cli_parse("sample", "--model M --out DIR [options]",
                       "Draws images from a U-ViT checkpoint with a diffusion sampler and writes "
                       "them as PNG with a grid and a manifest that can redraw any one of them.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : -1;
    RunContext run;
    if (run_context_open(&run, &ro)) return -1;
    rc = run_sampling(&run, &a);
    run_context_close(&run);
    return rc;
}
