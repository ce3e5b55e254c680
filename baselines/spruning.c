/*
 * spruning.c: the method "spruning", the DeeDiff paper's S-Pruning baseline
 * (Diff-Pruning, Fang et al. 2023). The pruning itself is `deediff prune`
 * (harness/train/cmd_prune.c on model/uvit_prune.h): it writes a backbone whose
 * blocks have their own widths, with method "spruning" and these options.
 * This kind is what follows: fine-tuning by U-ViT's L_simple and sampling
 * by the plain network, both exactly method "none"'s, on the pruned
 * backbone. It has no parameters of its own; the options only record how
 * the file was made, and base_gmacs is what its compute is measured against
 * (compute ratio = the pruned network's GMAC / base_gmacs; macs_base).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../model/method.h"
#include "../model/uvit_prune.h"

typedef struct {
    double ratio;        /* the compute ratio asked of deediff prune */
    double base_gmacs;   /* the unpruned network's G multiply-adds per image (0: unknown) */
    double thr;          /* the stopping rule's threshold */
    double timesteps;    /* timesteps of the gradient pass */
} SPruningOptions;

static int spruning_create(Method *me)
{
    SPruningOptions *o = xcalloc(1, sizeof *o);
    *o = (SPruningOptions){.ratio = 1, .base_gmacs = 0, .thr = 0.05, .timesteps = 0};
    me->impl = o;
    return 0;
}

static void spruning_destroy(Method *me) { free(me->impl); }

static int spruning_set_option(Method *me, const char *key, const char *v)
{
    SPruningOptions *o = me->impl;
    if (!strcmp(key, "ratio")) return method_option_number(key, v, 1e-9, 1, &o->ratio);
    if (!strcmp(key, "base_gmacs")) return method_option_number(key, v, 0, 1e12, &o->base_gmacs);
    if (!strcmp(key, "thr")) return method_option_number(key, v, 0, 1, &o->thr);
    if (!strcmp(key, "timesteps_used")) {
        if (method_option_number(key, v, 0, 1e9, &o->timesteps) || o->timesteps != (int)o->timesteps)
            return err_set("method.timesteps_used: '%s' is not a whole number in [0, 1e9]", v);
        return 0;
    }
    return err_set("method.%s: not an option of spruning (ratio, base_gmacs, thr, timesteps_used)", key);
}

static char *spruning_options_json(const Method *me)
{
    const SPruningOptions *o = me->impl;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "ratio", o->ratio);
    cJSON_AddNumberToObject(j, "base_gmacs", o->base_gmacs);
    cJSON_AddNumberToObject(j, "thr", o->thr);
    cJSON_AddNumberToObject(j, "timesteps_used", o->timesteps);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* fine-tuning and sampling are the plain backbone's */
static const MethodKind *plain(void) { return method_kind("none"); }

static int spruning_train_step(Method *me, Ctx *ctx, MethodStep *s) { return plain()->train_step(me, ctx, s); }

static NoisePredictor *spruning_predictor(Method *me, Ctx *ctx, const UViT *backbone, int max_batch,
                                          ScheduleKind schedule, double threshold, SampleAccount *account)
{
    return plain()->predictor(me, ctx, backbone, max_batch, schedule, threshold, account);
}

static void spruning_predictor_free(Method *me, Ctx *ctx, NoisePredictor *p)
{
    plain()->predictor_free(me, ctx, p);
}

/* the compute ratio's denominator: base_gmacs as deediff prune recorded it,
   else the same network at its default widths */
static double spruning_macs_base(const Method *me, const UViTConfig *cfg)
{
    const SPruningOptions *o = me->impl;
    if (o->base_gmacs > 0) return o->base_gmacs * 1e9;
    UViTConfig base;
    UViTMacs m;
    prune_base_config(cfg, &base);
    uvit_macs(&base, &m);
    return m.total;
}

const MethodKind method_spruning_kind = {
    .name = "spruning",
    .summary = "S-Pruning (Diff-Pruning): a backbone pruned by deediff prune, fine-tuned and sampled as it is",
    .options_help = "ratio=1            the compute ratio deediff prune was asked for (pruned / base GMAC)\n"
                    "base_gmacs=0       the unpruned network's G multiply-adds per image: the compute ratio's\n"
                    "                   denominator (0: the same network at its default widths)\n"
                    "thr=0.05           the gradient pass's stopping threshold (loss < thr * max loss)\n"
                    "timesteps_used=0   timesteps the gradient pass took\n"
                    "(recorded by deediff prune; none changes training or sampling)\n",
    .create = spruning_create,
    .destroy = spruning_destroy,
    .set_option = spruning_set_option,
    .options_json = spruning_options_json,
    .train_step = spruning_train_step,
    .predictor = spruning_predictor,
    .predictor_free = spruning_predictor_free,
    .macs_base = spruning_macs_base,
};
