/*
 * cmd_eval.c: `deediff eval`: sample N images, measure their Frechet
 * distance to a reference, the layers they used, the compute and the time,
 * and store all of it with its protocol (one run of kind "eval").
 *
 * The flow (ARCHITECTURE.md, "The flow of one experiment"):
 *   1. images ids 0..N-1 under --seed, drawn exactly as `deediff sample`
 *      draws them (the same noise streams and, by default, the same batches
 *      of 64, so eval's image 12 is sample's 000012.png bit for bit; other
 *      batch sizes may round differently in the GEMMs); the network is timed (wall clock of the sampling loop,
 *      which ends with the download of the images, so the backend is idle);
 *   2. every pixel goes through the project's PNG rule and back:
 *      x -> u8 = png_pixel_u8(x) -> dataset_pixel_to_float(u8) = u8/255*2-1
 *      (Inception: u8/255, gray replicated to RGB), so evaluating from memory
 *      gives the same features as evaluating the PNGs `deediff sample`
 *      writes (REFERENCE.md section 7, item 4); nothing is written to disk;
 *   3. features (FD-FMNIST network, or Inception pool3), mean and covariance,
 *      the reference statistics (harness/eval/eval_reference.h), the distance
 *      (model/frechet.h), named with its N: FD-FMNIST-1k, or FID-1k only for
 *      Inception features;
 *   4. layers ratio = transformer blocks evaluated / blocks available over
 *      every network evaluation of every image, as the method's predictor
 *      counted them (model/method.h SampleAccount: the plain U-ViT runs all
 *      of its blocks, 1.0; an early exit fewer);
 *      GMAC/image = the multiply-adds the predictor actually spent (blocks
 *      run, exit heads and estimators included; uvit_macs' convention, one
 *      multiply-add = 1 MAC) / N / 1e9, and GFLOPs/image = 2 x GMAC/image;
 *      seconds/image = sampling wall time / N;
 *   5. one transaction: the run (its config is the full protocol as JSON:
 *      method, its options and the threshold included), its metrics
 *      fd_fmnist (or fid), layers_ratio, compute_ratio (GMAC spent over
 *      the unpruned full network's: S-Pruning's measure), gmacs_per_image, gflops_per_image,
 *      seconds_per_image, every image's exit at every evaluation (table
 *      exits), and 'done'.
 * Latent models (Table 2) name their autoencoder (--autoencoder W): the
 * samples are latents, decoded into images before step 2 as U-ViT's
 * eval_ldm.py does; the decoder's time is stored apart
 * (decode_seconds_per_image) and the protocol names the autoencoder and its
 * sha256 (harness/eval/eval_decode.h).
 * Guidance (--guidance, --cfg-exit) and a text-to-image model's prompts
 * (--context, --empty-context) are the flags of harness/cli/guidance_options.h;
 * the protocol records the scale, the exit pairing under guidance and the
 * context files (with their sha256), and a run without them keeps exactly
 * the protocol it had before they existed.
 * With --skip-done a run whose exact configuration (the JSON above, which
 * includes the model's and the statistics' sha256) is already stored is not
 * repeated: `make table1` can be run again at no cost.
 * N below the feature dimension is refused (the covariance would be
 * singular); N below 50,000 draws a warning (FID is biased upward at small N).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "../../model/denoiser.h"
#include "../../model/fid_stats.h"
#include "../../model/fmnist_net.h"
#include "../../model/frechet.h"
#include "../../model/inception.h"
#include "../../model/sampler.h"
#include "../../model/uvit.h"
#include "../bench/bench_util.h"
#include "../cli/cli.h"
#include "../data/dataset.h"
#include "eval_decode.h"
#include "eval_reference.h"
#include "fd_name.h"
#include "../store/file_hash.h"
#include "image_features.h"
#include "../cli/guidance_options.h"
#include "../cli/method_options.h"
#include "../data/png_write.h"
#include "../cli/progress.h"
#include "../cli/run_context.h"
#include "../cli/sampler_options.h"
#include "../store/store.h"

#define EVAL_STATS_DIR "results/stats"
#define EVAL_FEATURES_CHUNK 256

typedef struct {
    const char *model, *n, *batch, *features, *ref, *db, *name, *stats_dir, *autoencoder;
    int skip_done;
    SamplerOptions so;
    MethodOptions mo;
    GuidanceOptions go;
} EvalArgs;

/* err_msg() prefixed with the flag whose file it names: "--model: P: cannot open: ..." */
static int flag_error(const char *flag)
{
    char why[1024];
    snprintf(why, sizeof why, "%s", err_msg());
    return err_set("%s: %s", flag, why);
}

/* ---- the feature network ---------------------------------------------------------- */

typedef struct {
    const char *name;       /* "fmnist" or "inception" */
    const char *weights;    /* the file */
    char sha256[SHA256_HEX_LEN + 1];
    int dim;
    FmnistNet fnet;         /* fmnist: loaded */
} FeatureNet;

static int feature_net_open(Ctx *ctx, const char *text, FeatureNet *fn)
{
    memset(fn, 0, sizeof *fn);
    if (!strcmp(text, "fmnist") || (!strncmp(text, "fmnist:", 7) && text[7])) {
        fn->name = "fmnist";
        fn->weights = text[6] == ':' ? text + 7 : FMNIST_NET_DEFAULT_WEIGHTS;
    } else if (!strncmp(text, "inception:", 10) && text[10]) {
        fn->name = "inception";
        fn->weights = text + 10;
        fn->dim = INCEPTION_FEATURES;
    } else {
        return err_set("--features: '%s' is not fmnist, fmnist:W.safetensors or inception:W.safetensors", text);
    }
    if (file_sha256(fn->weights, fn->sha256)) return flag_error("--features");
    if (!strcmp(fn->name, "fmnist")) {
        if (fmnist_net_load(&fn->fnet, ctx, fn->weights)) return -1;
        fn->dim = fn->fnet.cfg.c3;
    }
    return 0;
}

static void feature_net_close(Ctx *ctx, FeatureNet *fn)
{
    if (fn->name && !strcmp(fn->name, "fmnist") && fn->fnet.weights) fmnist_net_destroy(&fn->fnet, ctx);
}

/* features[n,dim] of generated images[n,C,H,W] already on the PNG grid */
static int features_of_samples(Ctx *ctx, FeatureNet *fn, const float *imgs, int64_t n, int C, int H,
                               float **features)
{
    if (!strcmp(fn->name, "fmnist")) {
        *features = xmalloc(sizeof(float) * (size_t)(n * fn->dim));
        fmnist_net_features(ctx, &fn->fnet, imgs, n, *features, EVAL_FEATURES_CHUNK);
        return 0;
    }
    // Inception reads [0,1] RGB: u8/255, a gray image replicated (as a gray PNG is read)
    size_t px = (size_t)H * H;
    float *rgb = xmalloc(sizeof(float) * (size_t)n * 3 * px);
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            for (size_t p = 0; p < px; p++)
                rgb[((size_t)i * 3 + c) * px + p] = png_pixel_u8(imgs[((size_t)i * C + (C == 1 ? 0 : c)) * px + p]) / 255.0f;
    int rc = inception_features_of_pixels(ctx, fn->weights, rgb, n, H, H, features);
    free(rgb);
    return rc;
}

/* ---- the protocol ------------------------------------------------------------------- */

typedef struct {
    const char *model, *weights_kind, *dataset, *method;
    char *method_options;   /* JSON */
    double threshold;
    char model_sha256[SHA256_HEX_LEN + 1];
    char fd_name[64];
    const SamplerConfig *sc;
    int evals_per_image, batch, threads;
    int64_t n;
    const FeatureNet *fn;
    const char *ref;
    const EvalReference *er;
    const char *backend;
    const char *precision;      /* the sampled network's GEMMs (the features are fp32 always) */
    const UViTConfig *cfg;
    const Guidance *guidance;
    const EvalDecoder *dec;   /* NULL: the samples are images */
} Protocol;

static char *protocol_json(const Protocol *p)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "command", "eval");
    cJSON_AddStringToObject(j, "method", p->method);
    cJSON_AddItemToObject(j, "method_options", cJSON_Parse(p->method_options));
    cJSON_AddNumberToObject(j, "threshold", p->threshold);
    cJSON_AddStringToObject(j, "dataset", p->dataset);
    cJSON_AddStringToObject(j, "model", p->model);
    cJSON_AddStringToObject(j, "model_sha256", p->model_sha256);
    cJSON_AddStringToObject(j, "weights", p->weights_kind);
    char *cfg = uvit_config_to_json(p->cfg);
    cJSON_AddItemToObject(j, "model_config", cJSON_Parse(cfg));
    free(cfg);
    cJSON_AddNumberToObject(j, "blocks", p->cfg->num_blocks);
    cJSON_AddStringToObject(j, "sampler", sampler_kind_name(p->sc->kind));
    cJSON_AddStringToObject(j, "schedule", schedule_kind_name(p->sc->schedule));
    cJSON_AddNumberToObject(j, "steps", p->sc->steps);
    cJSON_AddNumberToObject(j, "evals_per_image", p->evals_per_image);
    cJSON_AddNumberToObject(j, "t_end", p->sc->t_end);
    if (p->sc->kind == SAMPLER_DDIM) cJSON_AddNumberToObject(j, "eta", p->sc->eta);
    cJSON_AddNumberToObject(j, "guidance", p->guidance->scale);
    guidance_protocol_add(p->guidance, j);
    if (p->dec) {
        cJSON_AddStringToObject(j, "autoencoder", p->dec->path);
        cJSON_AddStringToObject(j, "autoencoder_sha256", p->dec->sha256);
        cJSON_AddNumberToObject(j, "scale_factor", p->dec->m.cfg.scale_factor);
    }
    cJSON_AddNumberToObject(j, "seed", (double)p->sc->seed);
    cJSON_AddNumberToObject(j, "n", (double)p->n);
    cJSON_AddStringToObject(j, "ids", "0..n-1");
    cJSON_AddNumberToObject(j, "batch", p->batch);
    cJSON_AddStringToObject(j, "pixels", "u8 = clamp(floor((x+1)/2*255+0.5)), evaluated from memory as the PNGs "
                                         "would be read (fmnist: u8/255*2-1, inception: u8/255)");
    cJSON_AddStringToObject(j, "metric", p->fd_name);
    cJSON_AddStringToObject(j, "features", p->fn->name);
    cJSON_AddStringToObject(j, "features_weights", p->fn->weights);
    cJSON_AddStringToObject(j, "features_sha256", p->fn->sha256);
    cJSON_AddNumberToObject(j, "feature_dim", p->fn->dim);
    cJSON_AddStringToObject(j, "ref", p->ref);
    cJSON_AddStringToObject(j, "ref_stats", p->er->path);
    cJSON_AddStringToObject(j, "ref_sha256", p->er->sha256);
    cJSON_AddNumberToObject(j, "ref_n", (double)p->er->stats.n);
    cJSON_AddStringToObject(j, "precision", p->precision);
    cJSON_AddStringToObject(j, "backend", p->backend);
    cJSON_AddNumberToObject(j, "threads", p->threads);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* the dataset the model was trained on: its metadata's train_config
   data.dataset, else the reference's (fmnist-*), else "unknown" */
static const char *model_dataset(const SafeTensors *st, const char *ref, char *buf, size_t size)
{
    const char *tc = st_metadata(st, "train_config");
    cJSON *j = tc ? cJSON_Parse(tc) : NULL;
    cJSON *d = j ? cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "dataset") : NULL;
    if (cJSON_IsString(d)) snprintf(buf, size, "%s", d->valuestring);
    else if (!strncmp(ref, "fmnist-", 7)) snprintf(buf, size, "fmnist");
    else snprintf(buf, size, "unknown");
    cJSON_Delete(j);
    return buf;
}

/* ---- storing -------------------------------------------------------------------------- */

typedef struct {
    double fd, layers_ratio, compute_ratio, gmacs, gflops, seconds;
    double decode_seconds;  /* latent models: the decoder's wall clock / N */
    int64_t blocks_evaluated, blocks_available;
    double base_gmacs;      /* the unpruned full network's, per evaluation */
} EvalResult;

static int store_result(RunContext *run, const EvalArgs *a, const Protocol *p, const char *config,
                        const EvalResult *r, const char *run_name, const FrechetResult *fr, const ExitLog *exits,
                        int64_t *run_id)
{
    Store st;
    if (store_open(&st, a->db)) return -1;
    cJSON *fj = cJSON_CreateObject();
    cJSON_AddStringToObject(fj, "name", p->fd_name);
    cJSON_AddNumberToObject(fj, "n", (double)p->n);
    cJSON_AddStringToObject(fj, "features", p->fn->name);
    cJSON_AddStringToObject(fj, "features_sha256", p->fn->sha256);
    cJSON_AddNumberToObject(fj, "dim", p->fn->dim);
    cJSON_AddStringToObject(fj, "ref", p->ref);
    cJSON_AddStringToObject(fj, "ref_stats", p->er->path);
    cJSON_AddStringToObject(fj, "ref_sha256", p->er->sha256);
    cJSON_AddNumberToObject(fj, "ref_n", (double)p->er->stats.n);
    cJSON_AddStringToObject(fj, "weights", p->weights_kind);
    cJSON_AddBoolToObject(fj, "offset_applied", fr->offset_applied);
    cJSON_AddNumberToObject(fj, "residual", fr->residual);
    cJSON_AddNumberToObject(fj, "rank_samples", fr->rank1);
    cJSON_AddNumberToObject(fj, "rank_ref", fr->rank2);
    char *fd_proto = cJSON_PrintUnformatted(fj);
    cJSON_Delete(fj);
    char layers_proto[256], mac_proto[512], time_proto[256], compute_proto[256];
    snprintf(layers_proto, sizeof layers_proto, "{\"blocks_evaluated\":%lld,\"blocks_available\":%lld}",
             (long long)r->blocks_evaluated, (long long)r->blocks_available);
    snprintf(compute_proto, sizeof compute_proto,
             "{\"what\":\"GMAC spent / (evaluations x the unpruned full network's GMAC)\",\"base_gmacs\":%.6g}",
             r->base_gmacs);
    snprintf(mac_proto, sizeof mac_proto,
             "{\"convention\":\"multiply-adds (1 MAC = 1 multiply-add; GFLOPs = 2 x GMAC); GEMMs, attention, "
             "convolutions; elementwise ops and norms not counted\",\"evals_per_image\":%d}",
             p->evals_per_image);
    snprintf(time_proto, sizeof time_proto,
             "{\"what\":\"wall clock of the sampling loop (network + sampler) / N\",\"backend\":\"%s\","
             "\"threads\":%d,\"precision\":\"%s\"}", p->backend, p->threads, p->precision);
    const char *fd_metric = !strcmp(p->fn->name, "inception") ? "fid" : "fd_fmnist";
    Metric m[] = {
        {fd_metric, r->fd, "", fd_proto, -1},
        {"layers_ratio", r->layers_ratio, "", layers_proto, -1},
        {"compute_ratio", r->compute_ratio, "", compute_proto, -1},
        {"gmacs_per_image", r->gmacs, "GMAC", mac_proto, -1},
        {"gflops_per_image", r->gflops, "GFLOP", mac_proto, -1},
        {"seconds_per_image", r->seconds, "s", time_proto, -1},
        {"decode_seconds_per_image", r->decode_seconds, "s",
         "{\"what\":\"wall clock of the autoencoder decoding the latent samples / N, apart from sampling\"}", -1},
    };
    int nm = sizeof m / sizeof m[0] - (p->dec == NULL);
    RunInfo ri = {.kind = "eval", .name = run_name, .config_json = config, .backend = p->backend,
                  .checkpoint_hash = p->model_sha256};
    int rc = store_begin(&st);
    if (rc == 0) rc = store_run_begin(&st, &ri, run_id);
    if (rc == 0) rc = store_metrics(&st, *run_id, m, nm);
    if (rc == 0) rc = store_exits(&st, *run_id, exits->rows, exits->n);
    if (rc == 0) rc = run_context_profile_store(run, &st, *run_id);
    if (rc == 0) rc = store_run_done(&st, *run_id);
    if (rc == 0) rc = store_commit(&st);
    else store_rollback(&st);
    store_close(&st);
    free(fd_proto);
    return rc;
}

/* --skip-done: prints the stored result and sets *found when a finished
   eval run has exactly this configuration (same model bytes, protocol,
   feature network, reference statistics, backend and threads) */
static int find_done(const char *db, const char *config, int *found)
{
    *found = 0;
    struct stat sb;
    if (stat(db, &sb)) return 0;  // no database yet: nothing is done
    Store st;
    if (store_open(&st, db)) return -1;
    sqlite3_stmt *q;
    const char *sql = "SELECT r.id, r.name, json_extract(r.config, '$.metric'), m.value FROM runs r "
                      "JOIN metrics m ON m.run_id = r.id AND m.name IN ('fd_fmnist', 'fid') "
                      "WHERE r.kind = 'eval' AND r.status = 'done' AND r.config = ? ORDER BY r.id DESC LIMIT 1";
    int rc = 0;
    if (sqlite3_prepare_v2(st.db, sql, -1, &q, NULL) != SQLITE_OK) {
        rc = err_set("%s: looking for a finished run: %s", db, sqlite3_errmsg(st.db));
    } else {
        sqlite3_bind_text(q, 1, config, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW) {
            *found = 1;
            printf("eval: already done with this exact protocol: run %lld '%s', %s = %.4f (in %s; deediff table 1 "
                   "shows it)\n", (long long)sqlite3_column_int64(q, 0), (const char *)sqlite3_column_text(q, 1),
                   (const char *)sqlite3_column_text(q, 2), sqlite3_column_double(q, 3), db);
        }
        sqlite3_finalize(q);
    }
    store_close(&st);
    return rc;
}

/* ---- the command -------------------------------------------------------------------------- */

static int parse_sampler(const EvalArgs *a, SamplerConfig *sc, long *n, long *batch)
{
    if (sampler_options_parse(&a->so, sc)) return -1;
    if (cli_int("--n", a->n, 1, 1 << 24, n)) return -1;
    *batch = 64;  // deediff sample's default: the same batches, so the same bits
    if (a->batch && cli_int("--batch", a->batch, 1, 4096, batch)) return -1;
    return 0;
}

/* draws the n images (ids 0..n-1) into imgs[n,C,H,W] with the method's
   predictor (under guidance when g asks for it); times them and counts what
   they spent into *account */
static int draw_samples(Ctx *ctx, const UViT *m, Method *me, double threshold, const SamplerConfig *sc,
                        Guidance *g, int64_t n, int batch, float *imgs, double *seconds, SampleAccount *account)
{
    const UViTConfig *c = &m->cfg;
    int C = c->in_chans, H = c->img_size;
    int64_t *ids = xmalloc(sizeof(int64_t) * (size_t)n), *labels = NULL;
    for (int64_t i = 0; i < n; i++) ids[i] = i;
    if (c->num_classes > 0) {
        labels = xmalloc(sizeof(int64_t) * (size_t)n);
        sample_labels(sc->seed, ids, n, guidance_label_classes(g, c), labels);
    }
    NoisePredictor *inner = method_predictor(me, ctx, m, batch, sc->schedule, threshold, account), *pred;
    CfgPredictor cfg;
    int rc = guidance_wrap(g, ctx, c, inner, &cfg, &pred);
    if (rc) {
        method_predictor_free(me, ctx, inner);
        free(ids);
        free(labels);
        return rc;
    }
    int64_t per_run = pred->max_batch;   // paired exits: half the images per call
    Progress prog;
    progress_init(&prog, stderr, 0, n, per_run, 1);
    double t0 = bench_now();
    for (int64_t at = 0; rc == 0 && at < n; at += per_run) {
        int64_t k = n - at < per_run ? n - at : per_run;
        SampleCond cond;
        rc = guidance_cond(g, ids + at, k, labels ? labels + at : NULL, &cond);
        if (rc == 0) rc = sample_run_cond(ctx, pred, sc, C, H, H, k, ids + at, &cond, imgs + (size_t)at * C * H * H);
        progress_update(&prog, at + k, NAN);
    }
    ctx_sync(ctx);
    *seconds = bench_now() - t0;
    progress_finish(&prog);
    if (pred != inner) cfg_predictor_destroy(&cfg, ctx);
    method_predictor_free(me, ctx, inner);
    free(ids);
    free(labels);
    return rc;
}

/* the run's name when --name is not given: "fmnist/uvit/dpm50/FD-FMNIST-1k/seed0",
   "fmnist/deediff-t0.1/dpm50/FD-FMNIST-1k/seed0", under guidance
   "fmnist/deediff-t0.1-cfg1-paired/dpm50/FD-FMNIST-1k/seed0" */
static void default_name(const Protocol *p, char *buf, size_t size)
{
    char method[64];
    if (!strcmp(p->method, "none")) snprintf(method, sizeof method, "uvit");
    else snprintf(method, sizeof method, "%s-t%g", p->method, p->threshold);
    if (p->guidance->scale != 0)
        snprintf(method + strlen(method), sizeof method - strlen(method), "-cfg%g-%s", p->guidance->scale,
                 cfg_exit_name(p->guidance->exit));
    snprintf(buf, size, "%s/%s/%s%d/%s/seed%llu", p->dataset, method, sampler_kind_name(p->sc->kind),
             p->sc->steps, p->fd_name, (unsigned long long)p->sc->seed);
}

static int run_eval(RunContext *run, const EvalArgs *a, const RunOptions *ro)
{
    Ctx *ctx = &run->ctx;
    SamplerConfig sc;
    long n, batch;
    if (parse_sampler(a, &sc, &n, &batch)) return -1;
    FeatureNet fn;
    if (feature_net_open(ctx, a->features, &fn)) return -1;
    int rc = 0;
    if (n < fn.dim)
        rc = err_set("--n: N = %ld is below the feature dimension %d of %s: the covariance would be singular "
                     "and the distance meaningless; use at least %d samples", n, fn.dim, fn.weights, fn.dim);
    EvalReference er = {0};

    // the model, and what the protocol says about it
    Guidance g = {0};
    Protocol p = {.model = a->model, .method = "none", .sc = &sc, .batch = (int)batch, .n = n, .fn = &fn,
                  .ref = a->ref, .er = &er, .backend = ro->backend, .precision = run_context_precision(run),
                  .threads = run->threads, .guidance = &g};
    /* the FD feature network is the metric's reference: fp32 whatever the
       sampled network's precision (restored around the sampling below) */
    Precision sampling_precision = ctx->precision;
    if (ctx->backend == BACKEND_CPU) ctx->precision = PRECISION_FP32;
    char dataset[64];
    UViT m;
    Method *me = NULL;
    int have_model = 0;
    SafeTensors st;
    if (rc == 0) rc = file_sha256(a->model, p.model_sha256) ? flag_error("--model") : 0;
    if (rc == 0) rc = st_open(&st, a->model);
    if (rc == 0) {
        const char *prefix = uvit_default_prefix(&st);
        const char *meta_weights = st_metadata(&st, "weights");
        p.weights_kind = *prefix ? (!strcmp(prefix, "ema.") ? "ema" : "model")
                                 : meta_weights && !strcmp(meta_weights, "ema") ? "ema" : "unstated (plain names)";
        p.dataset = model_dataset(&st, a->ref, dataset, sizeof dataset);
        st_close(&st);
        rc = method_options_open(&a->mo, a->model, prefix, ctx, &m, &me, &p.threshold);
        have_model = rc == 0;
        if (have_model) {
            p.method = me->kind->name;
            p.method_options = method_options_json(me);
        }
    }
    const UViTConfig *c = have_model ? &m.cfg : NULL;
    EvalDecoder dec = {0};
    if (rc == 0 && a->autoencoder) rc = eval_decoder_open(ctx, a->autoencoder, c, &dec);
    if (rc == 0 && a->autoencoder) p.dec = &dec;
    int img_c = p.dec ? dec.channels : c ? c->in_chans : 0, img_side = p.dec ? dec.side : c ? c->img_size : 0;
    if (rc == 0) rc = guidance_open(&a->go, c, &g);
    if (rc == 0 && g.contexts && context_source_count(g.contexts) < n)
        rc = err_set("--context: %s: %lld prompts for N = %ld images (image i takes prompt i)", a->go.context,
                     (long long)context_source_count(g.contexts), n);
    if (rc == 0 && !p.dec && img_c != 1 && img_c != 3)
        rc = err_set("%s: %d-channel samples (latents) cannot be evaluated without the autoencoder that made "
                     "them (--autoencoder W)", a->model, img_c);
    if (rc == 0 && !strcmp(fn.name, "fmnist") && (img_c != 1 || img_side != FMNIST_NET_SIDE))
        rc = err_set("%s: images %dx%dx%d, the FD-FMNIST network reads 1x28x28 (use --features inception:W)",
                     p.dec ? a->autoencoder : a->model, img_c, img_side, img_side);
    if (rc == 0 && p.dec && img_c != 1 && img_c != 3)
        rc = err_set("--autoencoder: %s: config: out_ch %d, images must have 1 or 3 channels", a->autoencoder,
                     img_c);
    // the reference statistics (computed once per feature network, then cached)
    if (rc == 0)
        rc = eval_reference_load(ctx, a->ref, !strcmp(fn.name, "fmnist") ? fn.weights : NULL,
                                 !strcmp(fn.name, "fmnist") ? fn.sha256 : NULL,
                                 a->stats_dir ? a->stats_dir : EVAL_STATS_DIR, &er);
    if (rc == 0 && er.stats.dim != fn.dim)
        rc = err_set("--ref: %s: dimension %d, but the %s features are %d-d", er.path, er.stats.dim, fn.name,
                     fn.dim);
    p.cfg = c;
    p.evals_per_image = sampler_num_evals(&sc);
    fd_name(fn.name, n, p.fd_name, sizeof p.fd_name);
    char *config = rc == 0 ? protocol_json(&p) : NULL;
    int done = 0;
    if (rc == 0 && a->skip_done) rc = find_done(a->db ? a->db : STORE_DEFAULT_PATH, config, &done);
    if (done) rc = 1;  // nothing left to do (returned as 0 below)

    // 1. sample, timed and counted; 2. onto the PNG grid
    float *imgs = NULL, *feats = NULL;
    double seconds = 0;
    SampleAccount account = {0};
    ExitLog exits = {0};
    exit_log_attach(&exits, &account);
    double decode_seconds = 0;
    if (rc == 0) {
        size_t numel = (size_t)n * c->in_chans * c->img_size * c->img_size;
        imgs = xmalloc(sizeof(float) * numel);
        ctx->precision = sampling_precision;
        rc = draw_samples(ctx, &m, me, p.threshold, &sc, &g, n, (int)batch, imgs, &seconds, &account);
        if (ctx->backend == BACKEND_CPU) ctx->precision = PRECISION_FP32;
        if (rc == 0 && p.dec) {   // latents [n, in_chans, img_size, img_size] -> images [n, img_c, img_side, img_side]
            float *decoded = xmalloc(sizeof(float) * (size_t)n * img_c * img_side * img_side);
            decode_seconds = eval_decoder_run(ctx, &dec, imgs, n, (int)batch, decoded);
            free(imgs);
            imgs = decoded;
        }
        numel = (size_t)n * img_c * img_side * img_side;
        for (size_t i = 0; rc == 0 && i < numel; i++) imgs[i] = dataset_pixel_to_float(png_pixel_u8(imgs[i]));
    }
    // 3. features, statistics, distance
    FidStats fs = {0};
    FrechetResult fr;
    if (rc == 0) rc = features_of_samples(ctx, &fn, imgs, n, img_c, img_side, &feats);
    if (rc == 0) rc = fid_stats_from_features("generated samples", feats, n, fn.dim, &fs);
    if (rc == 0) rc = frechet_distance(fn.dim, fs.mu, fs.sigma, er.stats.mu, er.stats.sigma, &fr);

    // 4. cost; 5. store
    EvalResult r = {0};
    int64_t run_id = 0;
    char run_name[512];
    if (rc == 0) {
        r.fd = fr.distance;
        r.blocks_evaluated = account.blocks_run;
        r.blocks_available = account.image_evals * c->num_blocks;
        r.layers_ratio = (double)r.blocks_evaluated / (double)r.blocks_available;
        r.gmacs = account.macs / n / 1e9;
        r.base_gmacs = method_base_macs(me, c) / 1e9;
        r.compute_ratio = account.macs / ((double)account.image_evals * method_base_macs(me, c));
        r.gflops = 2 * r.gmacs;
        r.seconds = seconds / n;
        r.decode_seconds = decode_seconds / n;
        if (a->name) snprintf(run_name, sizeof run_name, "%s", a->name);
        else default_name(&p, run_name, sizeof run_name);
        rc = store_result(run, a, &p, config, &r, run_name, &fr, &exits, &run_id);
    }
    if (rc == 0) {
        char refn[32];
        printf("%s = %.4f (N = %ld, %s features %s, ref %s %s, sampler %s %d steps, seed %llu, %s weights)"
               " layers %.1f%% compute %.1f%% %.3g GMAC/image %.4g s/image\n",
               p.fd_name, r.fd, n, !strcmp(fn.name, "fmnist") ? "proxy" : "Inception", fn.weights, a->ref,
               fd_n_label(er.stats.n, refn, sizeof refn), sampler_kind_name(sc.kind), sc.steps,
               (unsigned long long)sc.seed, !strcmp(p.weights_kind, "ema") ? "EMA" : p.weights_kind, 100 * r.layers_ratio,
               100 * r.compute_ratio, r.gmacs, r.seconds);
        printf("  model %s sha256 %.16s, %d blocks, method %s threshold %g, %.4g GMAC per evaluation x %d "
               "evaluations per image (1 MAC = 1 multiply-add; %.3g GFLOPs/image)\n",
               a->model, p.model_sha256, c->num_blocks, p.method, p.threshold, r.gmacs / p.evals_per_image,
               p.evals_per_image, r.gflops);
        if (g.scale != 0)
            printf("  guidance %g: each evaluation runs every image twice (unconditional: %s), %s exits "
                   "(--cfg-exit); the counts above include both passes\n", g.scale,
                   uvit_is_text(c) ? "the empty context" : "the null class", cfg_exit_name(g.exit));
        exit_histogram_print(stdout, &account, c->num_blocks);
        printf("  features sha256 %.16s (dim %d), reference statistics %s sha256 %.16s%s\n", fn.sha256, fn.dim,
               er.path, er.sha256, er.computed ? " (computed now and cached)" : er.cached ? " (cached)" : "");
        printf("  time: %.1f s sampling wall clock on %s, %d threads, %s; rank %d/%d vs %d/%d, residual %.1e%s\n",
               seconds, ro->backend, run->threads, p.precision, fr.rank1, fn.dim, fr.rank2, fn.dim, fr.residual,
               fr.offset_applied ? ", 1e-6 offset applied (singular covariance)" : "");
        if (p.dec)
            printf("  decoded by %s sha256 %.16s (scale factor %g) into %dx%dx%d images: %.4g s/image apart from "
                   "sampling\n", dec.path, dec.sha256, dec.m.cfg.scale_factor, img_c, img_side, img_side,
                   r.decode_seconds);
        printf("  stored: run %lld '%s' in %s\n", (long long)run_id, run_name, a->db ? a->db : STORE_DEFAULT_PATH);
        if (n < FID_STANDARD_N)
            fprintf(stderr, "warning: N = %ld < %d: the distance is biased upward at small N; compare only "
                            "numbers with equal N\n", n, FID_STANDARD_N);
    }
    free(config);
    free(p.method_options);
    exit_log_free(&exits);
    guidance_close(&g);
    eval_decoder_close(ctx, &dec);
    method_free(me, ctx);
    fid_stats_free(&fs);
    free(feats);
    free(imgs);
    if (have_model) uvit_destroy(&m, ctx);
    eval_reference_free(&er);
    feature_net_close(ctx, &fn);
    return rc > 0 ? 0 : rc;
}

int cmd_eval(int argc, char **argv)
{
    EvalArgs a = {0};
    a.features = "fmnist";
    RunOptions ro = run_options_default();
    CliOpt opts[] = {
        {"--model", "M.safetensors", "U-ViT model or training checkpoint (EMA weights when it has them)", &a.model,
         NULL, 1},
        {"--n", "N", "number of images, ids 0..N-1 (at least the feature dimension)", &a.n, NULL, 1},
        {"--ref", "REF", "reference: fmnist-train, fmnist-test (FD-FMNIST network) or statistics S.npz", &a.ref,
         NULL, 1},
        {"--features", "NET", "fmnist[:W.safetensors] (FD-FMNIST, default) or inception:W.safetensors (FID)",
         &a.features, NULL, 0},
        SAMPLER_OPTIONS(a.so),
        METHOD_OPTIONS(a.mo),
        GUIDANCE_OPTIONS(a.go),
        {"--batch", "B", "images per network call (default 64, as deediff sample)", &a.batch, NULL, 0},
        {"--autoencoder", "W.safetensors", "latent models: decode the samples with this KL autoencoder first",
         &a.autoencoder, NULL, 0},
        {"--db", "PATH", "results database (default " STORE_DEFAULT_PATH ")", &a.db, NULL, 0},
        {"--name", "NAME", "the run's name (default dataset/method/samplerSTEPS/metric/seedS)", &a.name, NULL, 0},
        {"--stats-dir", "DIR", "cache of reference statistics (default " EVAL_STATS_DIR ")", &a.stats_dir, NULL, 0},
        {"--skip-done", NULL, "do nothing when a finished run with exactly this protocol is in the database",
         NULL, &a.skip_done, 0},
        RUN_OPTIONS(ro),
        PROFILE_OPTION(ro),
    };
    int rc = cli_parse("eval", "--model M --n N --ref REF [options]",
                       "Samples N images, computes their Frechet distance to the reference (FD-FMNIST-<N> with "
                       "the\nproject's Fashion-MNIST network, FID-<N> only with Inception), the layers ratio, "
                       "GMAC/GFLOPs and\nseconds per image, and stores them with the full protocol in the "
                       "results database (a run of kind eval).",
                       argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : -1;
    if (a.autoencoder &&
        run_options_cpu_only(&ro, "--autoencoder: the autoencoder has not run on a GPU yet (its CUDA kernels await "
                                  "make gpu-check): CPU only"))
        return -1;
    RunContext run;
    if (run_context_open(&run, &ro)) return -1;
    if (run.threads <= 0) run.threads = omp_get_max_threads();
    rc = run_eval(&run, &a, &ro);
    run_context_close(&run);
    return rc;
}
