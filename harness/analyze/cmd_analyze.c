/*
 * cmd_analyze.c: `deediff analyze`: the data behind the paper's figures 1,
 * 3, 4 and 6 for a model with exits (DeeDiff or an early-exit baseline), stored as figure points in
 * the results database with the protocol (one run of kind "sample" whose
 * config says "command":"analyze"), and the uncertainty maps as PNG.
 *
 *   fig1_layer_mse           per evaluation of the full model's sampling
 *                            trajectory, MSE(exit i, final output), mean over
 *                            the images: series "block i", x = t
 *   fig3_loss_by_t           on a fixed batch of Fashion-MNIST training
 *                            images, MSE against the true noise by t: series
 *                            "full" and "block i", x = t
 *   fig4_uncertainty         mean of exit i's uncertainty map over images
 *                            0..k-1: "mean block i", x = t; at the chosen
 *                            evaluations the maps: "map eval E block B image I",
 *                            x = pixel index (C,H,W order); PNG grids in --out
 *   fig6_error_accumulation  MSE of the early-exit run's state x to the full
 *                            model's, per evaluation: "threshold T", x = the
 *                            evaluation index; "t" (x = index, y = t); "final
 *                            samples" and "layers ratio", x = T
 * How each is measured: harness/analyze/analyze_figures.h and its analyze_*.c.
 * Everything is computed before anything is stored; the points, the PNGs'
 * artifacts and 'done' go in one transaction.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "analyze_figures.h"
#include "../bench/bench_util.h"
#include "../cli/cli.h"
#include "../cli/text_file.h"
#include "../store/file_hash.h"
#include "../cli/method_options.h"
#include "../cli/run_context.h"
#include "../cli/sampler_options.h"

#define ANALYZE_DEFAULT_MAPS 5
#define ANALYZE_MAX_TRAJECTORY_BYTES ((size_t)16 << 30)

typedef struct {
    const char *model, *out, *db, *name, *method, *n, *batch, *thresholds, *maps_at, *map_images;
    const char *data, *data_items, *loss_times;
    SamplerOptions so;
} AnalyzeArgs;

/* the flags, parsed and checked */
typedef struct {
    SamplerConfig sc;
    long n, batch, map_images, data_items, loss_times;
    double *thresholds;
    int n_thresholds;
    int *maps_at;
    int n_maps;
} Plan;

/* ---- flags ------------------------------------------------------------------------------ */

/* the next comma-separated item of *at into buf (0 after the last); an item
   too long for buf comes back empty, which every parser refuses */
static int next_item(const char **at, char *buf, size_t size)
{
    if (!*at) return 0;
    const char *comma = strchr(*at, ',');
    size_t len = comma ? (size_t)(comma - *at) : strlen(*at);
    snprintf(buf, size, "%.*s", len < size ? (int)len : 0, *at);
    *at = comma ? comma + 1 : NULL;
    return 1;
}

/* "0,0.1,0.2" -> thresholds, each in [0, 1] (method_options.h), none twice */
static int parse_thresholds(const char *text, Plan *p)
{
    char item[64];
    for (const char *at = text; next_item(&at, item, sizeof item);) {
        MethodOptions mo = {.threshold = item};
        double v;
        if (method_options_threshold(&mo, &v)) return -1;
        for (int i = 0; i < p->n_thresholds; i++)
            if (p->thresholds[i] == v) return err_set("--threshold: %g is given twice in '%s'", v, text);
        p->thresholds = xrealloc(p->thresholds, (size_t)(p->n_thresholds + 1) * sizeof *p->thresholds);
        p->thresholds[p->n_thresholds++] = v;
    }
    return 0;
}

static int compare_int(const void *a, const void *b)
{
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* the evaluations whose maps are kept: --maps-at, else ANALYZE_DEFAULT_MAPS
   evenly spaced from the first to the last; ascending, no repeats */
static int parse_maps_at(const char *text, int evals, Plan *p)
{
    int items = ANALYZE_DEFAULT_MAPS;
    if (text)
        for (const char *ch = text, *at = text; (ch = strchr(at, ',')) != NULL; at = ch + 1) items++;
    p->maps_at = xmalloc(sizeof *p->maps_at * (size_t)items);
    char item[64];
    for (const char *at = text; text && next_item(&at, item, sizeof item);) {
        long v;
        if (cli_int("--maps-at", item, 0, evals - 1, &v))
            return err_set("--maps-at: '%s' is not an evaluation index in [0, %d] (the sampler makes %d per image)",
                           item, evals - 1, evals);
        p->maps_at[p->n_maps++] = (int)v;
    }
    for (int i = 0; !text && i < ANALYZE_DEFAULT_MAPS; i++)
        p->maps_at[p->n_maps++] = (int)((long)i * (evals - 1) / (ANALYZE_DEFAULT_MAPS - 1));
    qsort(p->maps_at, (size_t)p->n_maps, sizeof *p->maps_at, compare_int);
    int kept = 0;
    for (int i = 0; i < p->n_maps; i++)
        if (!kept || p->maps_at[kept - 1] != p->maps_at[i]) p->maps_at[kept++] = p->maps_at[i];
    p->n_maps = kept;
    return 0;
}

/* every flag that needs no model */
static int parse_plan(const AnalyzeArgs *a, Plan *p)
{
    memset(p, 0, sizeof *p);
    p->n = 16, p->batch = 64, p->map_images = 4, p->data_items = 256, p->loss_times = 20;
    if (sampler_options_parse(&a->so, &p->sc)) return -1;
    if (a->n && cli_int("--n", a->n, 1, 1 << 20, &p->n)) return -1;
    if (a->batch && cli_int("--batch", a->batch, 1, 4096, &p->batch)) return -1;
    if (a->map_images && cli_int("--map-images", a->map_images, 1, p->n, &p->map_images))
        return err_set("--map-images: '%s' is not an integer in [1, %ld] (at most --n)", a->map_images, p->n);
    if (!a->map_images && p->map_images > p->n) p->map_images = p->n;
    if (a->data_items && cli_int("--data-items", a->data_items, 0, 1 << 24, &p->data_items)) return -1;
    if (a->loss_times && cli_int("--loss-times", a->loss_times, 1, 100000, &p->loss_times)) return -1;
    return parse_thresholds(a->thresholds ? a->thresholds : "0.1", p);
}

static void plan_free(Plan *p)
{
    free(p->thresholds);
    free(p->maps_at);
}

/* ---- the model and the data --------------------------------------------------------------- */

/* the model with its method, refused when the method has no exits */
static int open_model(const AnalyzeArgs *a, Ctx *ctx, UViT *m, Method **me)
{
    if (method_load(a->model, a->method, NULL, ctx, m, me)) return -1;
    if (method_has_probe(*me) && m->cfg.num_blocks >= 2) return 0;
    int rc = err_set("%s: method %s has no exits to analyze (a plain backbone); give a model trained with "
                     "--method deediff or an early-exit baseline", a->model, (*me)->kind->name);
    method_free(*me, ctx);
    uvit_destroy(m, ctx);
    *me = NULL;
    return rc;
}

/* the Fashion-MNIST training set for figure 3 (NULL when --data-items is 0) */
static int open_data(const AnalyzeArgs *a, const Plan *p, const UViTConfig *c, Dataset **ds)
{
    *ds = NULL;
    if (p->data_items == 0) return 0;
    if (c->in_chans != 1 || (c->img_size != 28 && c->img_size != 32))
        return err_set("%s: images %dx%dx%d; figure 3 reads Fashion-MNIST (1x28x28, or 1x32x32 padded); give "
                       "--data-items 0 to leave figure 3 out", a->model, c->in_chans, c->img_size, c->img_size);
    DatasetSpec spec = {.format = DATA_FMNIST, .path = a->data, .pad32 = c->img_size == 32};
    if (dataset_open(&spec, ds)) return -1;
    if (p->data_items <= (*ds)->n) return 0;
    int rc = err_set("--data-items: %ld, but %s has %lld images", p->data_items, (*ds)->name, (long long)(*ds)->n);
    dataset_close(*ds);
    *ds = NULL;
    return rc;
}

/* ---- the protocol ----------------------------------------------------------------------------- */

static cJSON *json_doubles(const double *v, int n)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(v[i]));
    return arr;
}

static char *protocol_json(const AnalyzeArgs *a, const Plan *p, const UViT *m, const Method *me,
                           const char *sha256, const char *backend, const char *precision, int threads,
                           int evals)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "command", "analyze");
    cJSON_AddStringToObject(j, "model", a->model);
    cJSON_AddStringToObject(j, "model_sha256", sha256);
    char *s = uvit_config_to_json(&m->cfg);
    cJSON_AddItemToObject(j, "model_config", cJSON_Parse(s));
    free(s);
    cJSON_AddStringToObject(j, "method", me->kind->name);
    s = method_options_json(me);
    cJSON_AddItemToObject(j, "method_options", cJSON_Parse(s));
    free(s);
    cJSON_AddItemToObject(j, "thresholds", json_doubles(p->thresholds, p->n_thresholds));
    cJSON_AddStringToObject(j, "sampler", sampler_kind_name(p->sc.kind));
    cJSON_AddStringToObject(j, "schedule", schedule_kind_name(p->sc.schedule));
    cJSON_AddNumberToObject(j, "steps", p->sc.steps);
    cJSON_AddNumberToObject(j, "evals_per_image", evals);
    cJSON_AddNumberToObject(j, "t_end", p->sc.t_end);
    if (p->sc.kind == SAMPLER_DDIM) cJSON_AddNumberToObject(j, "eta", p->sc.eta);
    cJSON_AddNumberToObject(j, "seed", (double)p->sc.seed);
    cJSON_AddNumberToObject(j, "n", (double)p->n);
    cJSON_AddStringToObject(j, "ids", "0..n-1");
    cJSON_AddNumberToObject(j, "batch", (double)p->batch);
    cJSON *maps = cJSON_AddArrayToObject(j, "maps_at");
    for (int i = 0; i < p->n_maps; i++) cJSON_AddItemToArray(maps, cJSON_CreateNumber(p->maps_at[i]));
    cJSON_AddNumberToObject(j, "map_images", (double)p->map_images);
    cJSON_AddStringToObject(j, "loss_data", p->data_items ? "fashion-mnist train, items 0..data_items-1" : "none");
    cJSON_AddNumberToObject(j, "data_items", (double)p->data_items);
    cJSON_AddNumberToObject(j, "loss_times", (double)p->loss_times);
    cJSON_AddStringToObject(j, "loss_t", "t_k = (k + 0.5) / loss_times");
    cJSON_AddStringToObject(j, "loss_noise", "Philox (seed, RNG_NOISE_TRAIN_EPS, 0), element id*CHW + j");
    cJSON_AddStringToObject(j, "precision", precision);
    cJSON_AddStringToObject(j, "backend", backend);
    cJSON_AddNumberToObject(j, "threads", threads);
    s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* ---- storing ------------------------------------------------------------------------------------- */

static int store_analysis(const char *db, const RunInfo *ri, const PointList *pl, const Artifact *arts, int n_arts,
                          int64_t *run_id)
{
    Store st;
    if (store_open(&st, db)) return -1;
    int rc = store_begin(&st);
    if (rc == 0) rc = store_run_begin(&st, ri, run_id);
    if (rc == 0) rc = store_figure_points(&st, *run_id, pl->p, pl->n);
    for (int i = 0; rc == 0 && i < n_arts; i++) rc = store_artifact(&st, *run_id, &arts[i]);
    if (rc == 0) rc = store_run_done(&st, *run_id);
    if (rc == 0) rc = store_commit(&st);
    else store_rollback(&st);
    store_close(&st);
    return rc;
}

/* ---- the command ---------------------------------------------------------------------------------- */

/* figures 1, 4 and 6 (the sampling runs) into pl; the map PNGs into --out */
static int run_sampling_figures(Ctx *ctx, const AnalyzeArgs *a, const Plan *p, const AnalyzeSampling *s,
                                PointList *pl, Artifact **arts)
{
    const UViTConfig *c = &s->m->cfg;
    double t0 = bench_now();
    fprintf(stderr, "analyze: full model, %ld images x %d evaluations, %d exits probed at each\n", p->n, s->evals,
            c->num_blocks - 1);
    ProbeResult ref;
    int rc = analyze_probe_run(ctx, s, (int)p->map_images, p->maps_at, p->n_maps, &ref);
    if (rc == 0) {
        analyze_probe_points(s, &ref, pl);
        analyze_time_points(s, &ref, pl);
        fprintf(stderr, "analyze: figures 1 and 4 in %.1f s\n", bench_now() - t0);
    }
    for (int i = 0; rc == 0 && i < p->n_thresholds; i++) {
        ErrorCurve e;
        t0 = bench_now();
        rc = analyze_error_run(ctx, s, &ref, p->thresholds[i], &e);
        if (rc == 0) {
            analyze_error_points(s, &e, pl);
            printf("  fig 6, threshold %g: layers ratio %.4f, MSE to the full model's trajectory %.4g at the last "
                   "evaluation, %.4g for the samples (%.1f s)\n", e.threshold, e.layers_ratio, e.mse[s->evals - 1],
                   e.final_mse, bench_now() - t0);
            fflush(stdout);   // in order with the progress lines on stderr
        }
        error_curve_free(&e);
    }
    *arts = xcalloc((size_t)p->n_maps, sizeof **arts);
    for (int i = 0; rc == 0 && i < p->n_maps; i++)
        rc = analyze_map_png(a->out, &ref, i, c->in_chans, c->img_size, &(*arts)[i]);
    probe_result_free(&ref);
    return rc;
}

static int run_analyze(RunContext *run, const AnalyzeArgs *a, const RunOptions *ro)
{
    Ctx *ctx = &run->ctx;
    Plan p;
    int rc = parse_plan(a, &p);
    UViT m;
    Method *me = NULL;
    if (rc == 0) rc = open_model(a, ctx, &m, &me);
    int have_model = rc == 0;
    const UViTConfig *c = have_model ? &m.cfg : NULL;
    int evals = rc == 0 ? sampler_num_evals(&p.sc) : 0;
    if (rc == 0) rc = parse_maps_at(a->maps_at, evals, &p);
    size_t traj_bytes = (size_t)evals * (size_t)p.n * (have_model ? (size_t)c->in_chans * c->img_size * c->img_size
                                                                   : 0) * sizeof(float);
    if (rc == 0 && traj_bytes > ANALYZE_MAX_TRAJECTORY_BYTES)
        rc = err_set("--n: %ld images x %d evaluations need %.1f GiB for the full model's trajectory; use fewer "
                     "images or steps", p.n, evals, traj_bytes / 1073741824.0);
    Dataset *ds = NULL;
    if (rc == 0) rc = open_data(a, &p, c, &ds);
    if (rc == 0) rc = make_dirs(a->out);
    char sha256[SHA256_HEX_LEN + 1];
    if (rc == 0 && file_sha256(a->model, sha256)) {
        char why[1024];
        snprintf(why, sizeof why, "%s", err_msg());
        rc = err_set("--model: %s", why);
    }

    int64_t *ids = xmalloc(sizeof(int64_t) * (size_t)p.n), *labels = NULL;
    for (int64_t i = 0; i < p.n; i++) ids[i] = i;
    if (rc == 0 && c->num_classes > 0) {
        labels = xmalloc(sizeof(int64_t) * (size_t)p.n);
        sample_labels(p.sc.seed, ids, p.n, c->num_classes, labels);
    }
    AnalyzeSampling s = {.m = &m, .me = me, .sc = &p.sc, .n = p.n, .ids = ids, .labels = labels,
                         .batch = (int)p.batch, .evals = evals};
    PointList pl = {0};
    Artifact *arts = NULL;
    double t0 = bench_now();
    if (rc == 0) rc = run_sampling_figures(ctx, a, &p, &s, &pl, &arts);
    if (rc == 0 && ds) {
        double t3 = bench_now();
        LossByT lo = {.items = p.data_items, .n_times = (int)p.loss_times, .seed = p.sc.seed, .batch = (int)p.batch,
                      .schedule = p.sc.schedule};
        rc = analyze_loss_by_t(ctx, &m, me, ds, &lo, &pl);
        if (rc == 0) fprintf(stderr, "analyze: figure 3 in %.1f s\n", bench_now() - t3);
    }
    int64_t run_id = 0;
    char name[512];
    const char *db = a->db ? a->db : STORE_DEFAULT_PATH;
    if (rc == 0) {
        const char *base = strrchr(a->model, '/') ? strrchr(a->model, '/') + 1 : a->model;
        if (a->name) snprintf(name, sizeof name, "%s", a->name);
        else snprintf(name, sizeof name, "analyze/%s/%s%d/seed%llu", base, sampler_kind_name(p.sc.kind), p.sc.steps,
                      (unsigned long long)p.sc.seed);
        char *config = protocol_json(a, &p, &m, me, sha256, ro->backend, precision_name(ctx->precision),
                                     run->threads, evals);
        RunInfo ri = {.kind = "sample", .name = name, .config_json = config, .backend = ro->backend,
                      .checkpoint_hash = sha256};
        rc = store_analysis(db, &ri, &pl, arts, p.n_maps, &run_id);
        free(config);
    }
    if (rc == 0) {
        printf("analyze: run %lld '%s' in %s: %s %lld, %s %lld, %s %lld, %s %lld points (%.1f s)\n",
               (long long)run_id, name, db, FIG1, (long long)points_count(&pl, FIG1), FIG3,
               (long long)points_count(&pl, FIG3), FIG4, (long long)points_count(&pl, FIG4), FIG6,
               (long long)points_count(&pl, FIG6), bench_now() - t0);
        for (int i = 0; i < p.n_maps; i++) printf("  uncertainty maps: %s\n", arts[i].path);
    }
    if (arts) analyze_artifacts_free(arts, p.n_maps);
    points_free(&pl);
    free(ids);
    free(labels);
    if (ds) dataset_close(ds);
    if (have_model) {
        method_free(me, ctx);
        uvit_destroy(&m, ctx);
    }
    plan_free(&p);
    return rc;
}

int cmd_analyze(int argc, char **argv)
{
    AnalyzeArgs a = {0};
    RunOptions ro = run_options_default();
    CliOpt opts[] = {
        {"--model", "M.safetensors",
         "a model with exits (DeeDiff, or an early-exit baseline: its maps are each image's score) or its training "
         "checkpoint (EMA weights)", &a.model,
         NULL, 1},
        {"--out", "DIR", "folder for the uncertainty-map PNGs (fig4_uncertainty_evalE.png)", &a.out, NULL, 1},
        {"--db", "PATH", "results database (default " STORE_DEFAULT_PATH ")", &a.db, NULL, 0},
        {"--name", "NAME", "the run's name (default analyze/MODEL-FILE/samplerSTEPS/seedS)", &a.name, NULL, 0},
        {"--method", "NAME", "the method (default: the model file's own; it must have exits)", &a.method, NULL, 0},
        {"--n", "N", "images sampled for figures 1, 4 and 6, ids 0..N-1 (default 16)", &a.n, NULL, 0},
        {"--threshold", "T[,T..]", "early-exit thresholds in [0, 1] compared with the full model in figure 6 "
         "(default 0.1)", &a.thresholds, NULL, 0},
        {"--maps-at", "E[,E..]", "evaluations (from 0) whose uncertainty maps are kept whole (default 5 evenly "
         "spaced, first to last)", &a.maps_at, NULL, 0},
        {"--map-images", "K", "images 0..K-1 in the maps and their means (default 4, at most N)", &a.map_images,
         NULL, 0},
        {"--data-items", "N", "Fashion-MNIST training images 0..N-1 for figure 3 (default 256; 0 leaves it out)",
         &a.data_items, NULL, 0},
        {"--loss-times", "K", "times t_k = (k + 0.5) / K of figure 3 (default 20)", &a.loss_times, NULL, 0},
        {"--data", "DIR", "the Fashion-MNIST folder (default: the installed one)", &a.data, NULL, 0},
        SAMPLER_OPTIONS(a.so),
        {"--batch", "B", "images per network call (default 64)", &a.batch, NULL, 0},
        RUN_OPTIONS(ro),
    };
    int rc = cli_parse("analyze", "--model M --out DIR [options]",
                       "Measures the data of the paper's figures 1 (each exit's MSE to the final output along the "
                       "sampling\ntrajectory), 3 (loss by timestep), 4 (uncertainty maps) and 6 (error accumulation "
                       "of early exit)\nfor a model with exits, and stores them as figure points (one run of kind "
                       "sample, config\n\"command\":\"analyze\") with the maps as PNG.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : -1;
    RunContext run;
    if (run_context_open(&run, &ro)) return -1;
    if (run.threads <= 0) run.threads = omp_get_max_threads();
    rc = run_analyze(&run, &a, &ro);
    run_context_close(&run);
    return rc;
}
