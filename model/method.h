/*
 * method.h: what an acceleration method adds to a U-ViT backbone, behind one
 * interface, so that the training loop, the samplers, eval and the store
 * never name a method.
 *
 * A Method owns
 *   - its options (key=value, from a training config's "method" section or
 *     the command line; written to checkpoints as JSON),
 *   - its extra parameters: one F32 buffer with a name table, every name
 *     under "method." (e.g. method.heads.3.decoder_pred.weight), so a file
 *     can hold the backbone and the method side by side and U-ViT's loader
 *     passes over them,
 *   - its training loss with forward and backward (one hook, train_step,
 *     the training loop calls once per step),
 *   - its per-image exit rule, as a NoisePredictor (model/sampler.h) that
 *     wraps the backbone: the samplers call it like the plain network (an
 *     early-exit method gives only its rule, model/early_exit.h, and the
 *     block-by-block predictor is built around it).
 *
 * Kinds: "none" (the plain backbone, model/method_none.c), "deediff"
 * (model/deediff.c) and the baselines, one file each in baselines/:
 * "berxit", "calm" and "calm-meta", "static", "spruning". A method that
 * keeps per-image state across sampling steps is one more kind: its
 * predictor sees every image id and the evaluation index of every call.
 *
 * Using it (what `deediff train --method deediff` does):
 *   Method *me;
 *   method_new(&me, "deediff");              // defaults
 *   method_set_option(me, "uem_buckets", "4");
 *   method_create_params(me, ctx, &backbone); // name table + zeroed buffer
 *   method_init_from_backbone(me, ctx, &backbone, seed);
 *   ... per step: loss = me->kind->train_step(me, ctx, &step);
 * and sampling:
 *   NoisePredictor *p = method_predictor(me, ctx, &backbone, 64, schedule, threshold, &account);
 *   sample_run(ctx, p, ...);
 *   method_predictor_free(me, ctx, p);
 */
#ifndef DEEDIFF_METHOD_H
#define DEEDIFF_METHOD_H

#include <stdint.h>

#include "param_table.h"
#include "sampler.h"
#include "uvit.h"
#include "vpsde_train.h"

#define METHOD_PARAM_PREFIX "method."

/* ---- what sampling spent, counted by every method's predictor ----------------
 * One "image evaluation" is one image through one network call. blocks_run
 * counts transformer blocks actually computed; macs the multiply-adds
 * actually spent (embedding, blocks, heads, estimators, tail; the
 * convention of uvit_macs). exits[i] counts image evaluations that ended
 * after block i (i = num_blocks - 1: the full network). When record is set
 * it is called once per image evaluation, in order, with the exit rule's
 * score at the block it left after (NaN when no rule ran).               */
typedef struct {
    int64_t image_evals;
    int64_t blocks_run;
    double macs;
    int64_t exits[UVIT_MAX_BLOCKS];
    void (*record)(void *user, int64_t id, int eval, double t, int exit_block, float uncertainty);
    void *record_user;
} SampleAccount;

/* ---- one training step, as the training loop hands it to the method ---------- */
typedef struct {
    UViT *backbone;         /* grads enabled */
    UViTActs *acts;         /* a training arena of the batch size */
    TrainNoise *tn;         /* this step's draw: x_t, eps, t, labels */
    int conditional;        /* pass labels to the network */
    int train_backbone;     /* 0: the backbone is frozen (its gradients are not needed) */
    int64_t step;           /* the update's number, from 1 (alternating schedules) */
    /* out: the parts of the loss, for the log; loss is what was minimised */
    double loss, loss_simple, loss_u, loss_layers;
} MethodStep;

typedef struct Method Method;
typedef struct EarlyExitRule EarlyExitRule;   /* model/early_exit.h */

typedef struct {
    const char *name;
    const char *summary;        /* one line */
    const char *options_help;   /* "key=default  meaning" lines, for --help and docs */
    int frozen_backbone_only;   /* trains only with train.freeze_backbone=true (calm-meta) */
    /* the kind's own data with default options (impl), or -1 */
    int (*create)(Method *me);
    void (*destroy)(Method *me);
    /* one option; -1 + err_set("method.KEY: ...") */
    int (*set_option)(Method *me, const char *key, const char *value);
    /* the options as a JSON object (caller frees) */
    char *(*options_json)(const Method *me);
    /* appends the parameters for this backbone configuration (method_add_param) */
    void (*build_params)(Method *me, const UViTConfig *cfg);
    /* the parameters' starting values, given the loaded backbone */
    void (*init_params)(Method *me, Ctx *ctx, const UViT *backbone, uint64_t seed);
    /* training: arena for batches of max_batch; one step (forward, loss,
       backward into backbone->grads when train_backbone and me->grads) */
    void (*train_begin)(Method *me, Ctx *ctx, const UViT *backbone, int max_batch);
    int (*train_step)(Method *me, Ctx *ctx, MethodStep *s);
    void (*train_end)(Method *me, Ctx *ctx);
    /* sampling: a predictor over the backbone with this exit threshold */
    NoisePredictor *(*predictor)(Method *me, Ctx *ctx, const UViT *backbone, int max_batch,
                                 ScheduleKind schedule, double threshold, SampleAccount *account);
    void (*predictor_free)(Method *me, Ctx *ctx, NoisePredictor *p);
    /* or, for a method whose exits are a rule of model/early_exit.h, the
       rule alone (for batches of max_batch at this threshold) and its
       release: method_predictor then runs the block-by-block predictor, and
       method_probe the rule, so the method writes neither */
    EarlyExitRule *(*exit_rule)(Method *me, Ctx *ctx, const UViT *backbone, int max_batch, double threshold);
    void (*exit_rule_free)(Method *me, Ctx *ctx, EarlyExitRule *rule);
    /* analysis (deediff analyze, the paper's figures): after a full forward
       of B images in an inference arena (every hidden state kept), the
       prediction exit `block` would give, g[B,C,H,W], and its score map
       u[B,C,H,W] (NULL when the method has no exits) */
    void (*probe)(Method *me, Ctx *ctx, const UViT *backbone, UViTActs *a, int block, const double *t,
                  Tensor net_t, Tensor g, Tensor u);
    /* multiply-adds per image of what the method adds at exit point i (its
       estimator at every block passed, its head when taken); for deediff info */
    double (*macs_estimator)(const Method *me, const UViTConfig *cfg);
    double (*macs_head)(const Method *me, const UViTConfig *cfg);
    /* multiply-adds per evaluation of the network the method's compute is
       measured against, when it is not cfg's full network (S-Pruning: the
       unpruned one); NULL: uvit_macs of cfg */
    double (*macs_base)(const Method *me, const UViTConfig *cfg);
} MethodKind;

struct Method {
    const MethodKind *kind;
    UViTConfig cfg;           /* the backbone's, once parameters exist */
    int num_params;
    ParamInfo *params;
    size_t total;             /* floats in the buffer (0: the method has none) */
    float *weights, *grads;   /* backend memory; grads NULL until enabled */
    void *impl;               /* the kind's options and views */
};

/* ---- the registry --------------------------------------------------------------- */
/* "none", "deediff", the baselines (baselines/); NULL when unknown */
const MethodKind *method_kind(const char *name);
/* the i-th kind of the registry, NULL past the last */
const MethodKind *method_kind_at(int i);
/* the names, comma-separated, for messages */
const char *method_names(void);

/* ---- lifetime --------------------------------------------------------------------- */
/* a method of kind name with default options; -1 + err_set("--method: ...") */
int method_new(Method **out, const char *name);
void method_free(Method *me, Ctx *ctx);
int method_set_option(Method *me, const char *key, const char *value);
/* options given as a JSON object {"key": value, ...}; source names it in errors */
int method_set_options_json(Method *me, const char *json, const char *source);
char *method_options_json(const Method *me);

/* option values for set_option, -1 + err_set("method.KEY: ...") when bad:
   true|false|1|0; one of two words (is_b: the second); a number in [lo, hi] */
int method_option_bool(const char *key, const char *v, int *out);
int method_option_choice(const char *key, const char *v, const char *a, const char *b, int *is_b);
int method_option_number(const char *key, const char *v, double lo, double hi, double *out);

/* the name table alone (no buffer), for counting */
void method_build_table(Method *me, const UViTConfig *cfg);
/* the name table and a zeroed buffer for the backbone's configuration */
void method_create_params(Method *me, Ctx *ctx, const UViT *backbone);
void method_init_from_backbone(Method *me, Ctx *ctx, const UViT *backbone, uint64_t seed);
void method_enable_grads(Method *me, Ctx *ctx);
void method_zero_grads(Method *me, Ctx *ctx);
/* for build_params: appends a parameter named METHOD_PARAM_PREFIX + printf(fmt) */
int method_add_param(Method *me, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
Tensor method_param(const Method *me, const float *base, int index);

/* ---- files --------------------------------------------------------------------------
 * A model file of a method holds the backbone's parameters under their U-ViT
 * names, the method's under "method.", and metadata "method" (its kind) and
 * "method_options" (JSON). A training checkpoint holds both under "model."
 * and "ema."; method_optim.m / .v hold the method's AdamW moments.       */
/* the method a file was made for ("none" when it names none) */
const char *method_of_file(const SafeTensors *st);
/* the first method parameter the file lacks under prefix (NULL: none) */
const char *method_missing_param(const Method *me, const SafeTensors *st, const char *prefix);
/* takes every parameter the file holds under prefix with the same name and
   shape into me->weights (a method trained from another's model: calm-meta
   from calm's heads); the count taken, or -1 + err_set on a bad tensor */
int method_take_params(Method *me, Ctx *ctx, const SafeTensors *st, const char *prefix);
/* reads prefix + every method parameter into dst (a buffer of the method's layout) */
int method_read_params(const Method *me, Ctx *ctx, const SafeTensors *st, const char *prefix, float *dst);
void method_write_params(const Method *me, Ctx *ctx, StWriter *w, const char *prefix, const float *src);
/* the metadata pairs "method" and "method_options" */
void method_write_meta(const Method *me, StWriter *w);

/* a writer holding a model file of the backbone and the method: their
   parameters (from the given buffers: weights or EMA), metadata "config",
   and "method" / "method_options" unless the method is none; the caller
   adds its own metadata, then st_writer_save + st_writer_free */
StWriter *method_model_writer(const Method *me, Ctx *ctx, const UViT *backbone, const float *backbone_weights,
                              const float *method_weights);

/* Opens a model file for sampling: the backbone and the method, both under
 * prefix ("", "ema.", "model."; NULL: the file's default, plain, else EMA,
 * else raw). `requested` NULL takes the file's own method (with the file's
 * options); "none" runs any file's backbone alone; another kind (with its
 * default options) runs when the file holds every parameter it needs, as
 * the static exit on DeeDiff's heads. -1 + err_set naming the file or the
 * flag. */
int method_load(const char *path, const char *requested, const char *prefix, Ctx *ctx, UViT *backbone,
                Method **me);

/* ---- sampling ------------------------------------------------------------------------ */
NoisePredictor *method_predictor(Method *me, Ctx *ctx, const UViT *backbone, int max_batch,
                                 ScheduleKind schedule, double threshold, SampleAccount *account);
void method_predictor_free(Method *me, Ctx *ctx, NoisePredictor *p);

/* analysis (the kind's probe hook, or its exit rule's: model/method.h
   MethodKind.probe); method_has_probe: whether the method has exits to probe */
int method_has_probe(const Method *me);
void method_probe(Method *me, Ctx *ctx, const UViT *backbone, UViTActs *a, int block, const double *t,
                  Tensor net_t, Tensor g, Tensor u);

/* ---- shared by the kinds -------------------------------------------------------------- */
/* the multiply-adds one image evaluation spends when it leaves after block
   `exit_block` (num_blocks - 1: the full network through the backbone's
   tail), with the method's estimator at each block passed (as exit rules
   run: blocks 0..exit_block, none after the last) and its head taken */
double method_macs_of_exit(const Method *me, const UViTConfig *cfg, int exit_block, int estimated);
/* the same for given costs: embedding, blocks 0..exit_block, `scored` scores
   of macs_score each, and macs_head (or U-ViT's tail after the last block) */
double exit_path_macs(const UViTConfig *cfg, int exit_block, int scored, double macs_score, double macs_head);
/* multiply-adds of one full evaluation of the network this method is
   measured against (compute ratio = spent / this per evaluation) */
double method_base_macs(const Method *me, const UViTConfig *cfg);
/* counts one image evaluation into an account (NULL: nothing) */
void sample_account_add(SampleAccount *acc, int64_t id, int eval, double t, int exit_block,
                        double macs, float uncertainty);

#endif
