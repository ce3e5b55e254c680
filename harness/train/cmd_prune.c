/*
 * cmd_prune.c: `deediff prune`: the S-Pruning baseline's pruning step
 * (Diff-Pruning, model/uvit_prune.h) on a plain U-ViT file:
 *   deediff prune --model IN --ratio R --output OUT [--config C.json]
 *                 [--batch 64] [--seed 1] [--thr 0.05] [--max-steps 1000] [data.key=value ...]
 * One batch of the training data (a training configuration's data section,
 * Fashion-MNIST by default; the first batch of epoch 0 in the order
 * `deediff train` with this seed reads), the gradient pass over t from 0
 * upward with the threshold stopping rule, Taylor scores per MLP unit and
 * attention head, the smallest uniform fraction whose network costs at most
 * R times IN's multiply-adds. OUT (written atomically) holds the pruned
 * backbone under U-ViT's names with its per-block widths in the config, and
 * metadata "method" = "spruning", "method_options" (ratio, base_gmacs, thr,
 * timesteps_used), "prune" (what the pass measured), the source file and
 * its sha256, and the command. `deediff train --method spruning --backbone
 * OUT` fine-tunes it; `deediff sample|eval --model OUT` needs nothing else.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../../model/method.h"
#include "../../model/uvit_prune.h"
#include "../cli/cli.h"
#include "../store/file_hash.h"
#include "../cli/run_context.h"
#include "../cli/text_file.h"
#include "train.h"

#define MAX_OVERRIDES 32

typedef struct {
    const char *model, *output, *config;
    double ratio;
    PruneGradOptions grad;
    int batch;
    const char *overrides[MAX_OVERRIDES + 3];
    int n_overrides;
    RunOptions ro;
} PruneArgs;

/* the flags' values; 1 when --help was printed */
static int parse_args(int argc, char **argv, PruneArgs *a)
{
    const char *ratio = NULL, *batch = "64", *seed = "1", *thr = "0.05", *steps = "1000";
    memset(a, 0, sizeof *a);
    a->ro = run_options_default();
    CliOpt opts[] = {
        {"--model", "IN.safetensors", "the plain U-ViT to prune", &a->model, NULL, 1},
        {"--ratio", "R", "target compute ratio in (0, 1]: pruned GMAC / IN's GMAC (0.56 = -44%)", &ratio, NULL, 1},
        {"--output", "OUT.safetensors", "the pruned model file", &a->output, NULL, 1},
        {"--config", "C.json", "a training configuration whose data section to read (default: Fashion-MNIST)",
         &a->config, NULL, 0},
        {"--batch", "B", "images in the gradient pass's batch (default 64)", &batch, NULL, 0},
        {"--seed", "S", "which batch (the training order of seed S) and its noise (default 1)", &seed, NULL, 0},
        {"--thr", "X", "stop after the first t whose loss < X * the largest loss so far (default 0.05)", &thr,
         NULL, 0},
        {"--max-steps", "K", "at most K timesteps t = 1/1000, 2/1000, ... (default 1000)", &steps, NULL, 0},
        RUN_OPTIONS(a->ro),
    };
    int rc = cli_parse("prune", "--model IN --ratio R --output OUT [--config C.json] [data.key=value ...]",
                       "Prunes a U-ViT as Diff-Pruning does (S-Pruning): Taylor importance |w * dL/dw| per MLP "
                       "unit and\nattention head from gradients of the noise-prediction loss accumulated over t "
                       "from 0 upward\nuntil the loss falls below thr times its maximum; the same fraction of "
                       "heads and units is\nremoved in every block, the smallest that brings the multiply-adds to "
                       "R times the original's.\nFine-tune the result with deediff train --method spruning "
                       "--backbone OUT.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], a->overrides, MAX_OVERRIDES,
                       &a->n_overrides);
    if (rc) return rc;
    long b, s, k;
    a->grad = prune_grad_defaults();
    if (cli_double("--ratio", ratio, &a->ratio)) return -1;
    if (!(a->ratio > 0 && a->ratio <= 1)) return err_set("--ratio: %s is not in (0, 1]", ratio);
    if (cli_int("--batch", batch, 1, 65536, &b) || cli_int("--seed", seed, 0, 2000000000L, &s) ||
        cli_int("--max-steps", steps, 1, a->grad.num_steps, &k) || cli_double("--thr", thr, &a->grad.thr))
        return -1;
    if (!(a->grad.thr > 0 && a->grad.thr < 1)) return err_set("--thr: %s is not in (0, 1)", thr);
    a->batch = (int)b;
    a->grad.seed = (uint64_t)s;
    a->grad.max_steps = (int)k;
    return 0;
}

/* the data section (and batch, seed) as a training configuration for IN */
static int load_config(const PruneArgs *a, TrainConfig *tc)
{
    static char init[1100], batch[64], seed[64];
    const char *ov[MAX_OVERRIDES + 3];
    int n = 0;
    for (int i = 0; i < a->n_overrides; i++) ov[n++] = a->overrides[i];
    snprintf(init, sizeof init, "output.init=%s", a->model);
    snprintf(batch, sizeof batch, "train.batch=%d", a->batch);
    snprintf(seed, sizeof seed, "train.seed=%llu", (unsigned long long)a->grad.seed);
    ov[n++] = init, ov[n++] = batch, ov[n++] = seed;
    return train_config_load(tc, a->config, n, ov);
}

/* IN, a plain backbone of the configuration's shape */
static int load_model(const PruneArgs *a, const TrainConfig *tc, Ctx *ctx, UViT *m)
{
    SafeTensors st;
    if (st_open(&st, a->model)) return -1;
    char own[64];
    snprintf(own, sizeof own, "%s", method_of_file(&st));
    st_close(&st);
    if (strcmp(own, "none"))
        return err_set("--model: %s holds a model of method %s; prune a plain U-ViT", a->model, own);
    if (uvit_load(m, ctx, a->model)) return -1;
    if (uvit_config_equal(&m->cfg, &tc->model)) return 0;
    uvit_destroy(m, ctx);
    return err_set("%s: model: not the configuration of %s (leave the model section out)", tc->source, a->model);
}

/* the first batch of epoch 0: x0 [B,C,H,W] on the backend, labels [B] on the host */
static int first_batch(const TrainConfig *tc, Dataset *ds, Ctx *ctx, float **x0, int64_t **labels)
{
    size_t n = (size_t)tc->batch * ds->c * ds->h * ds->w;
    float *x = xmalloc(n * sizeof(float));
    *labels = xmalloc((size_t)tc->batch * sizeof(int64_t));
    DataCursor cur = {0, 0};
    int rc = dataset_next_batch(ds, &cur, tc->seed, tc->batch, tc->flip, x, *labels, NULL);
    *x0 = ctx_alloc(ctx, n * sizeof(float));
    ctx_upload(ctx, *x0, x, n * sizeof(float));
    free(x);
    return rc;
}

static double gmacs(const UViTConfig *c)
{
    UViTMacs m;
    uvit_macs(c, &m);
    return m.total / 1e9;
}

/* the "prune" metadata: what the gradient pass and the search found */
static char *prune_json(const PruneArgs *a, const TrainConfig *tc, const Dataset *ds, double p,
                        const UViTConfig *base, const UViTConfig *pruned, const PruneGradResult *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "data", ds->name);
    cJSON_AddNumberToObject(j, "batch", tc->batch);
    cJSON_AddNumberToObject(j, "seed", (double)tc->seed);
    cJSON_AddNumberToObject(j, "timesteps_used", r->timesteps_used);
    cJSON_AddBoolToObject(j, "stopped_by_rule", r->stopped);
    cJSON_AddNumberToObject(j, "max_loss", r->max_loss);
    cJSON_AddNumberToObject(j, "last_loss", r->last_loss);
    cJSON_AddNumberToObject(j, "fraction", p);
    cJSON_AddNumberToObject(j, "gmacs", gmacs(pruned));
    cJSON_AddNumberToObject(j, "base_gmacs", gmacs(base));
    cJSON_AddNumberToObject(j, "compute_ratio", gmacs(pruned) / gmacs(base));
    cJSON_AddNumberToObject(j, "ratio_asked", a->ratio);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* method spruning's options for OUT, as JSON (caller frees) */
static char *method_json(const PruneArgs *a, const UViTConfig *base, const PruneGradResult *r)
{
    Method *me;
    CHECK(method_new(&me, "spruning") == 0, "prune: %s", err_msg());
    char v[4][64];
    snprintf(v[0], sizeof v[0], "%.17g", a->ratio);
    snprintf(v[1], sizeof v[1], "%.17g", gmacs(base));
    snprintf(v[2], sizeof v[2], "%.17g", a->grad.thr);
    snprintf(v[3], sizeof v[3], "%d", r->timesteps_used);
    static const char *const keys[] = {"ratio", "base_gmacs", "thr", "timesteps_used"};
    for (int i = 0; i < 4; i++) CHECK(method_set_option(me, keys[i], v[i]) == 0, "prune: %s", err_msg());
    char *s = method_options_json(me);
    method_free(me, NULL);
    return s;
}

static int write_output(const PruneArgs *a, Ctx *ctx, const UViT *pruned, const char *options,
                        const char *prune, const char *command)
{
    char sha[SHA256_HEX_LEN + 1];
    if (file_sha256(a->model, sha)) return -1;
    const char *keys[] = {"method", "method_options", "prune", "pruned_from", "pruned_from_sha256", "command"};
    const char *values[] = {"spruning", options, prune, a->model, sha, command};
    return uvit_save(pruned, ctx, a->output, 6, keys, values);
}

static void report(const PruneArgs *a, const UViTConfig *base, const UViTConfig *pruned, double p,
                   const PruneGradResult *r)
{
    printf("prune: %d timesteps (t = %g .. %g), %s; max loss %.5f, last %.5f\n", r->timesteps_used,
           1.0 / a->grad.num_steps, (double)r->timesteps_used / a->grad.num_steps,
           r->stopped ? "stopped by the rule" : "stopped at --max-steps", r->max_loss, r->last_loss);
    printf("prune: fraction %.6f removed; kept per block (MLP units / heads):", p);
    for (int b = 0; b < pruned->num_blocks; b++)
        printf(" %d/%d", pruned->block_mlp_hidden[b], pruned->block_num_heads[b]);
    printf(" of %d/%d\n", base->block_mlp_hidden[0], base->block_num_heads[0]);
    printf("prune: %.6f -> %.6f GMAC per image: compute ratio %.4f (asked %g); wrote %s\n", gmacs(base),
           gmacs(pruned), gmacs(pruned) / gmacs(base), a->ratio, a->output);
}

/* the pass, the search and the pruned network, given the model and the data */
static int prune_model(const PruneArgs *a, const TrainConfig *tc, Dataset *ds, Ctx *ctx, UViT *m,
                       const char *command)
{
    double p = 0;
    UViTConfig cfg;
    if (prune_fraction(&m->cfg, a->ratio, &p, &cfg)) return -1;   /* the widths need no gradients */
    float *x0;
    int64_t *labels;
    int rc = first_batch(tc, ds, ctx, &x0, &labels);
    PruneGradResult r;
    uvit_enable_grads(m, ctx);
    Tensor x = tensor4(x0, DT_F32, tc->batch, ds->c, ds->h, ds->w);   // x0 is (B, C, H, W)
    if (rc == 0) rc = prune_accumulate(ctx, m, tc->noise, x, m->cfg.num_classes > 0 ? labels : NULL, &a->grad, &r);
    if (rc == 0) {
        PruneScores s;
        PrunePlan plan;
        UViT pruned;
        prune_scores(ctx, m, &s);
        prune_plan(&s, &cfg, &plan);
        prune_apply(ctx, m, &plan, &pruned);
        char *opts = method_json(a, &m->cfg, &r), *pj = prune_json(a, tc, ds, p, &m->cfg, &cfg, &r);
        rc = write_output(a, ctx, &pruned, opts, pj, command);
        if (rc == 0) report(a, &m->cfg, &cfg, p, &r);
        free(opts);
        free(pj);
        uvit_destroy(&pruned, ctx);
        prune_plan_free(&plan);
        prune_scores_free(&s);
    }
    ctx_free(ctx, x0);
    free(labels);
    return rc;
}

int cmd_prune(int argc, char **argv)
{
    PruneArgs a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc > 0 ? 0 : -1;
    TrainConfig tc;
    if (load_config(&a, &tc)) return -1;
    DatasetSpec spec;
    Dataset *ds = NULL;
    train_config_dataset(&tc, &spec);
    rc = dataset_open(&spec, &ds);
    if (rc == 0) rc = uvit_config_refuse_text(&tc.model, tc.source, "pruning's gradient pass");
    if (rc == 0) rc = train_check_data(&tc, ds);
    RunContext run;
    if (rc == 0) rc = run_context_open(&run, &a.ro);
    if (rc == 0) {
        UViT m;
        TextBuf cmd;
        text_init(&cmd);
        text_printf(&cmd, "deediff");
        for (int i = 0; i < argc; i++) text_printf(&cmd, " %s", argv[i]);
        rc = load_model(&a, &tc, &run.ctx, &m);
        if (rc == 0) {
            rc = prune_model(&a, &tc, ds, &run.ctx, &m, cmd.data);
            uvit_destroy(&m, &run.ctx);
        }
        text_free(&cmd);
        run_context_close(&run);
    }
    if (ds) dataset_close(ds);
    train_config_free(&tc);
    return rc;
}
