/*
 * method.c: the method registry, the parameter buffer every method shares
 * the handling of, method files, and the accounting of what sampling spent.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/errors.h"
#include "early_exit.h"
#include "method.h"

extern const MethodKind method_none_kind;
extern const MethodKind method_deediff_kind;
extern const MethodKind method_spruning_kind;
extern const MethodKind method_berxit_kind;
extern const MethodKind method_calm_kind;
extern const MethodKind method_calm_meta_kind;
extern const MethodKind method_static_kind;

static const MethodKind *const kinds[] = {&method_none_kind,      &method_deediff_kind, &method_berxit_kind,
                                          &method_calm_kind,      &method_calm_meta_kind,
                                          &method_static_kind,    &method_spruning_kind};
#define NUM_KINDS (int)(sizeof kinds / sizeof kinds[0])

const MethodKind *method_kind(const char *name)
{
    for (int i = 0; name && i < NUM_KINDS; i++)
        if (!strcmp(kinds[i]->name, name)) return kinds[i];
    return NULL;
}

const MethodKind *method_kind_at(int i) { return i >= 0 && i < NUM_KINDS ? kinds[i] : NULL; }

const char *method_names(void)
{
    static char buf[256];
    if (!buf[0])
        for (int i = 0; i < NUM_KINDS; i++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? ", " : "", kinds[i]->name);
    return buf;
}

/* ---- lifetime ------------------------------------------------------------------ */

int method_new(Method **out, const char *name)
{
    const MethodKind *k = method_kind(name);
    *out = NULL;
    if (!k) return err_set("--method: '%s' is not a method (%s)", name, method_names());
    Method *me = xcalloc(1, sizeof *me);
    me->kind = k;
    if (k->create && k->create(me)) {
        free(me);
        return -1;
    }
    *out = me;
    return 0;
}

void method_free(Method *me, Ctx *ctx)
{
    if (!me) return;
    if (me->kind->destroy) me->kind->destroy(me);
    if (me->weights) ctx_free(ctx, me->weights);
    if (me->grads) ctx_free(ctx, me->grads);
    free(me->params);
    free(me);
}

int method_set_option(Method *me, const char *key, const char *value)
{
    if (!me->kind->set_option)
        return err_set("method.%s: method %s takes no options", key, me->kind->name);
    return me->kind->set_option(me, key, value);
}

int method_set_options_json(Method *me, const char *json, const char *source)
{
    cJSON *j = cJSON_Parse(json);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return err_set("%s: method options: not a JSON object", source);
    }
    int rc = 0;
    for (cJSON *it = j->child; it && rc == 0; it = it->next) {
        char text[256];
        if (cJSON_IsString(it)) snprintf(text, sizeof text, "%s", it->valuestring);
        else if (cJSON_IsBool(it)) snprintf(text, sizeof text, "%s", cJSON_IsTrue(it) ? "true" : "false");
        else if (cJSON_IsNumber(it)) snprintf(text, sizeof text, "%.17g", it->valuedouble);
        else rc = err_set("%s: method.%s: not a string, number or boolean", source, it->string);
        if (rc == 0 && method_set_option(me, it->string, text)) {
            char why[1024];
            snprintf(why, sizeof why, "%s", err_msg());
            rc = err_set("%s: %s", source, why);
        }
    }
    cJSON_Delete(j);
    return rc;
}

char *method_options_json(const Method *me)
{
    return me->kind->options_json ? me->kind->options_json(me) : xstrdup("{}");
}

/* ---- option values ------------------------------------------------------------- */

int method_option_bool(const char *key, const char *v, int *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "1")) *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "0")) *out = 0;
    else return err_set("method.%s: '%s' is not true or false", key, v);
    return 0;
}

int method_option_choice(const char *key, const char *v, const char *a, const char *b, int *is_b)
{
    if (!strcmp(v, a)) *is_b = 0;
    else if (!strcmp(v, b)) *is_b = 1;
    else return err_set("method.%s: '%s' is not %s or %s", key, v, a, b);
    return 0;
}

int method_option_number(const char *key, const char *v, double lo, double hi, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi))
        return err_set("method.%s: '%s' is not a number in [%g, %g]", key, v, lo, hi);
    *out = x;
    return 0;
}

/* ---- parameters ------------------------------------------------------------------- */

int method_add_param(Method *me, int ndim, const int64_t *shape, const char *fmt, ...)
{
    me->params = xrealloc(me->params, (size_t)(me->num_params + 1) * sizeof *me->params);
    ParamInfo *p = &me->params[me->num_params];
    memset(p, 0, sizeof *p);
    int at = snprintf(p->name, sizeof p->name, "%s", METHOD_PARAM_PREFIX);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name + at, sizeof p->name - (size_t)at, fmt, ap);
    va_end(ap);
    param_place(p, ndim, shape, &me->total);
    return me->num_params++;
}

Tensor method_param(const Method *me, const float *base, int index)
{
    if (index < 0 || !base) return tensor_none();
    return param_view(&me->params[index], base);
}

void method_build_table(Method *me, const UViTConfig *cfg)
{
    CHECK(!me->params, "method_build_table: called twice");
    me->cfg = *cfg;
    if (me->kind->build_params) me->kind->build_params(me, cfg);
}

void method_create_params(Method *me, Ctx *ctx, const UViT *backbone)
{
    method_build_table(me, &backbone->cfg);
    if (me->total) {
        me->weights = ctx_alloc(ctx, me->total * sizeof(float));
        ctx_zero(ctx, tensor1(me->weights, DT_F32, (int64_t)me->total));
    }
}

void method_init_from_backbone(Method *me, Ctx *ctx, const UViT *backbone, uint64_t seed)
{
    if (me->kind->init_params) me->kind->init_params(me, ctx, backbone, seed);
}

void method_enable_grads(Method *me, Ctx *ctx)
{
    if (me->total && !me->grads) me->grads = ctx_alloc(ctx, me->total * sizeof(float));
    method_zero_grads(me, ctx);
}

void method_zero_grads(Method *me, Ctx *ctx)
{
    if (me->grads) ctx_zero(ctx, tensor1(me->grads, DT_F32, (int64_t)me->total));
}

/* ---- files ------------------------------------------------------------------------- */

const char *method_of_file(const SafeTensors *st)
{
    const char *m = st_metadata(st, "method");
    return m && *m ? m : "none";
}

int method_read_params(const Method *me, Ctx *ctx, const SafeTensors *st, const char *prefix, float *dst)
{
    return param_table_read(st, me->params, me->num_params, prefix, ctx, dst);
}

const char *method_missing_param(const Method *me, const SafeTensors *st, const char *prefix)
{
    char name[256];
    for (int i = 0; i < me->num_params; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, me->params[i].name);
        if (!st_find(st, name)) return me->params[i].name;
    }
    return NULL;
}

int method_take_params(Method *me, Ctx *ctx, const SafeTensors *st, const char *prefix)
{
    int taken = 0;
    for (int i = 0; i < me->num_params; i++) {
        const ParamInfo *p = &me->params[i];
        char name[256];
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        const StEntry *e = st_find(st, name);
        if (!e || e->ndim != p->ndim || memcmp(e->shape, p->shape, (size_t)p->ndim * sizeof p->shape[0])) continue;
        if (param_table_read(st, p, 1, prefix, ctx, me->weights)) return -1;
        taken++;
    }
    return taken;
}

void method_write_params(const Method *me, Ctx *ctx, StWriter *w, const char *prefix, const float *src)
{
    if (!me->total) return;
    float *host = xmalloc(me->total * sizeof(float));
    ctx_download(ctx, host, src, me->total * sizeof(float));
    param_table_write(w, me->params, me->num_params, prefix, host);
    free(host);
}

void method_write_meta(const Method *me, StWriter *w)
{
    char *opts = method_options_json(me);
    st_writer_meta(w, "method", me->kind->name);
    st_writer_meta(w, "method_options", opts);
    free(opts);
}

StWriter *method_model_writer(const Method *me, Ctx *ctx, const UViT *backbone, const float *backbone_weights,
                              const float *method_weights)
{
    StWriter *w = st_writer_new();
    uvit_write_params(backbone, ctx, w, "", backbone_weights);
    if (me->total) method_write_params(me, ctx, w, "", method_weights);
    if (strcmp(me->kind->name, "none")) method_write_meta(me, w);
    char *json = uvit_config_to_json(&backbone->cfg);
    st_writer_meta(w, "config", json);
    free(json);
    return w;
}

int method_load(const char *path, const char *requested, const char *prefix, Ctx *ctx, UViT *backbone,
                Method **out)
{
    *out = NULL;
    SafeTensors st;
    if (st_open(&st, path)) return -1;
    const char *own = method_of_file(&st);
    if (!prefix) prefix = uvit_default_prefix(&st);
    const char *name = requested ? requested : own;
    int rc = 0;
    if (!method_kind(own))
        rc = err_set("%s: __metadata__: method: '%s' is not a method of this deediff (%s)", path, own,
                     method_names());
    else if (!method_kind(name))
        rc = err_set("--method: '%s' is not a method (%s)", name, method_names());
    if (rc == 0) rc = uvit_load_prefixed(backbone, ctx, path, prefix);
    int have_backbone = rc == 0;
    Method *me = NULL;
    if (rc == 0) rc = method_new(&me, name);
    const char *opts = st_metadata(&st, "method_options");
    char source[1100];
    snprintf(source, sizeof source, "%s: __metadata__: method_options", path);
    if (rc == 0 && !strcmp(name, own) && strcmp(name, "none") && opts)
        rc = method_set_options_json(me, opts, source);
    if (rc == 0) {
        method_create_params(me, ctx, backbone);
        const char *missing = method_missing_param(me, &st, prefix);
        if (missing)
            rc = err_set("--method: %s: the file holds %s%s, without %s%s that %s needs (train it with deediff "
                         "train --method %s --backbone %s)", path,
                         !strcmp(own, "none") ? "a plain backbone" : "a model of method ",
                         !strcmp(own, "none") ? "" : own, prefix, missing, name, name, path);
        else
            rc = method_read_params(me, ctx, &st, prefix, me->weights);
    }
    st_close(&st);
    if (rc) {
        method_free(me, ctx);
        if (have_backbone) uvit_destroy(backbone, ctx);
        return -1;
    }
    *out = me;
    return 0;
}

/* ---- sampling ------------------------------------------------------------------------ */

NoisePredictor *method_predictor(Method *me, Ctx *ctx, const UViT *backbone, int max_batch,
                                 ScheduleKind schedule, double threshold, SampleAccount *account)
{
    if (!me->kind->exit_rule) return me->kind->predictor(me, ctx, backbone, max_batch, schedule, threshold, account);
    EarlyExitRule *rule = me->kind->exit_rule(me, ctx, backbone, max_batch, threshold);
    return early_exit_predictor_new(ctx, backbone, max_batch, schedule, threshold, rule, account);
}

void method_predictor_free(Method *me, Ctx *ctx, NoisePredictor *p)
{
    if (!p) return;
    if (!me->kind->exit_rule) {
        me->kind->predictor_free(me, ctx, p);
        return;
    }
    EarlyExitRule *rule = early_exit_rule(p);
    early_exit_predictor_free(ctx, p);
    me->kind->exit_rule_free(me, ctx, rule);
}

int method_has_probe(const Method *me) { return me->kind->probe || me->kind->exit_rule; }

void method_probe(Method *me, Ctx *ctx, const UViT *backbone, UViTActs *a, int block, const double *t,
                  Tensor net_t, Tensor g, Tensor u)
{
    if (me->kind->probe) {
        me->kind->probe(me, ctx, backbone, a, block, t, net_t, g, u);
        return;
    }
    EarlyExitRule *rule = me->kind->exit_rule(me, ctx, backbone, uvit_batch(a), 0);
    early_exit_rule_probe(rule, ctx, a, block, t, net_t, g, u);
    me->kind->exit_rule_free(me, ctx, rule);
}

double exit_path_macs(const UViTConfig *cfg, int exit_block, int scored, double macs_score, double macs_head)
{
    UViTMacs m;
    uvit_macs(cfg, &m);
    double macs = m.embed + scored * macs_score;
    for (int i = 0; i <= exit_block; i++) macs += m.per_block[i];
    return macs + (exit_block == cfg->num_blocks - 1 ? m.decode : macs_head);
}

double method_base_macs(const Method *me, const UViTConfig *cfg)
{
    if (me->kind->macs_base) return me->kind->macs_base(me, cfg);
    UViTMacs m;
    uvit_macs(cfg, &m);
    return m.total;
}

double method_macs_of_exit(const Method *me, const UViTConfig *cfg, int exit_block, int estimated)
{
    double score = me->kind->macs_estimator ? me->kind->macs_estimator(me, cfg) : 0;
    double head = me->kind->macs_head ? me->kind->macs_head(me, cfg) : 0;
    return exit_path_macs(cfg, exit_block, estimated, score, head);
}

void sample_account_add(SampleAccount *acc, int64_t id, int eval, double t, int exit_block,
                        double macs, float uncertainty)
{
    if (!acc) return;
    acc->image_evals++;
    acc->blocks_run += exit_block + 1;
    acc->macs += macs;
    acc->exits[exit_block]++;
    if (acc->record) acc->record(acc->record_user, id, eval, t, exit_block, uncertainty);
}
