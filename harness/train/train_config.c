/*
 * train_config.c: parsing and validating `deediff train` configurations.
 *
 * Every known key is one row of a table (section, key, type, where it goes),
 * so parsing, overriding and the unknown-key check share one code path.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../../model/method.h"
#include "../../model/safetensors.h"
#include "train_config.h"

typedef enum { F_INT, F_I64, F_U64, F_DOUBLE, F_BOOL, F_STRING, F_NOISE } FieldType;

typedef struct {
    const char *section, *key;
    FieldType type;
    size_t offset;   /* into TrainConfig */
    size_t size;     /* F_STRING: buffer size */
    double lo, hi;   /* numeric range */
} Field;

#define OFF(f) offsetof(TrainConfig, f)
#define STR(s, k, f) {s, k, F_STRING, OFF(f), sizeof(((TrainConfig *)0)->f), 0, 0}
static const Field fields[] = {
    STR("data", "dataset", dataset),
    STR("data", "path", data_path),
    STR("data", "empty_context", empty_context),
    {"data", "flip", F_BOOL, OFF(flip), 0, 0, 1},
    {"data", "pad32", F_BOOL, OFF(pad32), 0, 0, 1},
    {"data", "max_items", F_I64, OFF(max_items), 0, 0, 1e12},
    {"train", "steps", F_I64, OFF(steps), 0, 0, 1e12},
    {"train", "batch", F_INT, OFF(batch), 0, 1, 65536},
    {"train", "seed", F_U64, OFF(seed), 0, 0, 9e15},
    {"train", "noise", F_NOISE, OFF(noise), 0, 0, 0},
    {"train", "p_uncond", F_DOUBLE, OFF(p_uncond), 0, 0, 1},
    {"train", "log_every", F_I64, OFF(log_every), 0, 1, 1e12},
    {"train", "ckpt_every", F_I64, OFF(ckpt_every), 0, 1, 1e12},
    {"train", "freeze_backbone", F_BOOL, OFF(freeze_backbone), 0, 0, 1},
    {"train", "kl_weight", F_DOUBLE, OFF(kl_weight), 0, 0, 1e6},
    {"optim", "lr", F_DOUBLE, OFF(optim.lr), 0, 0, 1e30},
    {"optim", "beta1", F_DOUBLE, OFF(optim.beta1), 0, 0, 1},
    {"optim", "beta2", F_DOUBLE, OFF(optim.beta2), 0, 0, 1},
    {"optim", "eps", F_DOUBLE, OFF(optim.eps), 0, 0, 1},
    {"optim", "weight_decay", F_DOUBLE, OFF(optim.weight_decay), 0, 0, 1e6},
    {"optim", "warmup_steps", F_I64, OFF(optim.warmup_steps), 0, 0, 1e12},
    {"optim", "ema_decay", F_DOUBLE, OFF(optim.ema_decay), 0, 0, 1},
    {"optim", "max_grad_norm", F_DOUBLE, OFF(optim.max_grad_norm), 0, 0, 1e30},
    STR("output", "dir", out_dir),
    STR("output", "db", db),
    STR("output", "export", export_path),
    STR("output", "init", init),
};
#define NFIELDS ((int)(sizeof fields / sizeof fields[0]))

static const Field *find_field(const char *section, const char *key)
{
    for (int i = 0; i < NFIELDS; i++)
        if (!strcmp(fields[i].section, section) && !strcmp(fields[i].key, key)) return &fields[i];
    return NULL;
}

/* stores one JSON value into tc per the field's type */
static int set_field(TrainConfig *tc, const Field *f, const cJSON *v, const char *where)
{
    char *p = (char *)tc + f->offset;
    if (f->type == F_NOISE) {
        if (!cJSON_IsString(v) || (strcmp(v->valuestring, "vpsde") && strcmp(v->valuestring, "discrete")))
            return err_set("%s: train.noise: must be \"vpsde\" or \"discrete\"", where);
        tc->noise = strcmp(v->valuestring, "vpsde") ? TRAIN_NOISE_DISCRETE : TRAIN_NOISE_VPSDE;
        return 0;
    }
    if (f->type == F_STRING) {
        if (!cJSON_IsString(v)) return err_set("%s: %s.%s: must be a string", where, f->section, f->key);
        if (strlen(v->valuestring) >= f->size)
            return err_set("%s: %s.%s: longer than %zu characters", where, f->section, f->key, f->size - 1);
        strcpy(p, v->valuestring);
        return 0;
    }
    if (f->type == F_BOOL) {
        if (!cJSON_IsBool(v)) return err_set("%s: %s.%s: must be true or false", where, f->section, f->key);
        *(int *)p = cJSON_IsTrue(v);
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return err_set("%s: %s.%s: must be a number", where, f->section, f->key);
    double d = v->valuedouble;
    if (d < f->lo || d > f->hi)
        return err_set("%s: %s.%s: %g is outside [%g, %g]", where, f->section, f->key, d, f->lo, f->hi);
    if (f->type != F_DOUBLE && d != floor(d))
        return err_set("%s: %s.%s: must be an integer", where, f->section, f->key);
    switch (f->type) {
    case F_INT: *(int *)p = (int)d; break;
    case F_I64: *(int64_t *)p = (int64_t)d; break;
    case F_U64: *(uint64_t *)p = (uint64_t)d; break;
    default: *(double *)p = d; break;
    }
    return 0;
}

static void defaults(TrainConfig *tc)
{
    memset(tc, 0, sizeof *tc);
    strcpy(tc->dataset, "fmnist");
    tc->steps = 1000;
    tc->batch = 128;
    tc->noise = TRAIN_NOISE_VPSDE;
    tc->log_every = 50;
    tc->ckpt_every = 500;
    tc->optim = optim_config_uvit(1);
    strcpy(tc->out_dir, "results/runs/train");
    strcpy(tc->db, "results/results.db");
    strcpy(tc->method, "none");
    tc->kl_weight = -1;
}

/* "method": {"name": ..., options...}: the name, and the options checked by
   the method itself */
static int parse_method(TrainConfig *tc, const cJSON *sec, const char *path)
{
    if (!cJSON_IsObject(sec)) return err_set("%s: method: must be an object", path);
    cJSON *opts = cJSON_Duplicate(sec, 1);
    cJSON *name = cJSON_DetachItemFromObjectCaseSensitive(opts, "name");
    int rc = 0;
    if (name && (!cJSON_IsString(name) || strlen(name->valuestring) >= sizeof tc->method))
        rc = err_set("%s: method.name: must be a method's name (%s)", path, method_names());
    else if (name)
        strcpy(tc->method, name->valuestring);
    char *text = cJSON_PrintUnformatted(opts);
    Method *me = NULL;
    char where[1100];
    snprintf(where, sizeof where, "%s", path);
    if (rc == 0 && method_new(&me, tc->method)) rc = err_set("%s: method.name: '%s' is not a method (%s)", path,
                                                             tc->method, method_names());
    if (rc == 0) rc = method_set_options_json(me, text, where);
    method_free(me, NULL);
    cJSON_Delete(name);
    cJSON_Delete(opts);
    free(tc->method_options);
    tc->method_options = text;
    return rc;
}

/* the configuration of the backbone named by output.init, into "model" */
static int model_from_backbone(cJSON *root, const char *init, const char *path)
{
    if (!init[0]) return err_set("%s: model: missing (the U-ViT configuration, or --backbone)", path);
    SafeTensors st;
    if (st_open(&st, init)) return -1;
    const char *json = st_metadata(&st, "config");
    cJSON *model = json ? cJSON_Parse(json) : NULL;
    st_close(&st);
    if (!cJSON_IsObject(model)) {
        cJSON_Delete(model);
        return err_set("%s: __metadata__: config: missing or not JSON (the backbone's U-ViT configuration)", init);
    }
    cJSON_AddItemToObject(root, "model", model);
    return 0;
}

/* a backbone file of the run's own method (output.init) lends the run the
   options it was made with (spruning: its ratio and base GMAC); keys the
   configuration gives win */
static int inherit_method_options(cJSON *root)
{
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "output"), "init");
    cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, "method");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(sec, "name");
    if (!cJSON_IsString(init) || !init->valuestring[0] || !cJSON_IsObject(sec) || !cJSON_IsString(name) ||
        !strcmp(name->valuestring, "none"))
        return 0;
    SafeTensors st;
    if (st_open(&st, init->valuestring)) return -1;
    const char *json = strcmp(method_of_file(&st), name->valuestring) ? NULL : st_metadata(&st, "method_options");
    cJSON *opts = json ? cJSON_Parse(json) : NULL;
    st_close(&st);
    if (json && !cJSON_IsObject(opts)) {
        cJSON_Delete(opts);
        return err_set("%s: __metadata__: method_options: not a JSON object", init->valuestring);
    }
    for (const cJSON *it = opts ? opts->child : NULL; it; it = it->next)
        if (!cJSON_GetObjectItemCaseSensitive(sec, it->string))
            cJSON_AddItemToObject(sec, it->string, cJSON_Duplicate(it, 1));
    cJSON_Delete(opts);
    return 0;
}

/* applies "section.key=value" to the JSON tree (creating the section) */
static int apply_override(cJSON *root, const char *ov)
{
    const char *dot = strchr(ov, '.'), *eq = strchr(ov, '=');
    if (!dot || !eq || dot > eq || dot == ov || eq == dot + 1)
        return err_set("override '%s': expected section.key=value (e.g. train.steps=200)", ov);
    char section[64], key[64];
    snprintf(section, sizeof section, "%.*s", (int)(dot - ov), ov);
    snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
    cJSON *value = cJSON_Parse(eq + 1);
    if (!value) value = cJSON_CreateString(eq + 1);
    cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, section);
    if (!sec) sec = cJSON_AddObjectToObject(root, section);
    if (!cJSON_IsObject(sec)) {
        cJSON_Delete(value);
        return err_set("override '%s': '%s' is not a section", ov, section);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(sec, key);
    cJSON_AddItemToObject(sec, key, value);
    return 0;
}

static int read_text(const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += k;
        if (len + 1 == cap) buf = xrealloc(buf, cap *= 2);
        if (len > (64u << 20)) {
            fclose(f);
            free(buf);
            return err_set("%s: larger than 64 MB, not a configuration", path);
        }
    }
    fclose(f);
    buf[len] = 0;
    *out = buf;
    return 0;
}

static int parse_tree(TrainConfig *tc, cJSON *root, const char *path)
{
    if (!cJSON_IsObject(root)) return err_set("%s: not a JSON object", path);
    const cJSON *sec;
    cJSON_ArrayForEach(sec, root) {
        if (!strcmp(sec->string, "model")) {
            char *model = cJSON_PrintUnformatted(sec);
            char where[1100];
            snprintf(where, sizeof where, "%s: model", path);
            int rc = !cJSON_IsObject(sec) ? err_set("%s: must be an object", where)
                     : tc->kind == TRAIN_MODEL_AUTOENCODER ? autoencoder_config_parse(&tc->ae, model, where)
                                                           : uvit_config_parse(&tc->model, model, where);
            free(model);
            if (rc) return -1;
            continue;
        }
        if (!strcmp(sec->string, "method")) {
            if (parse_method(tc, sec, path)) return -1;
            continue;
        }
        int known = 0;
        for (int i = 0; i < NFIELDS; i++) known |= !strcmp(fields[i].section, sec->string);
        if (!known) return err_set("%s: unknown section '%s'", path, sec->string);
        if (!cJSON_IsObject(sec)) return err_set("%s: %s: must be an object", path, sec->string);
        const cJSON *v;
        cJSON_ArrayForEach(v, sec) {
            const Field *f = find_field(sec->string, v->string);
            if (!f) return err_set("%s: %s.%s: unknown key", path, sec->string, v->string);
            if (set_field(tc, f, v, path)) return -1;
        }
    }
    if (!cJSON_GetObjectItemCaseSensitive(root, "model"))
        return err_set("%s: model: missing (the %s configuration)", path,
                       tc->kind == TRAIN_MODEL_AUTOENCODER ? "autoencoder" : "U-ViT");
    if (!tc->method_options) tc->method_options = xstrdup("{}");
    return 0;
}

/* what an autoencoder's training takes, and the defaults of its own key */
static int validate_autoencoder(TrainConfig *tc, const char *path)
{
    if (!strcmp(tc->dataset, "latents"))
        return err_set("%s: data.dataset: an autoencoder trains on images, not latents", path);
    if (strcmp(tc->method, "none")) return err_set("%s: method: an autoencoder has no early-exit method", path);
    if (tc->init[0]) return err_set("%s: output.init: an autoencoder trains from scratch", path);
    if (tc->p_uncond > 0) return err_set("%s: train.p_uncond: an autoencoder has no labels to drop", path);
    if (tc->kl_weight < 0) tc->kl_weight = 1e-6;
    return 0;
}

static int validate(TrainConfig *tc, const char *path)
{
    if (tc->kind == TRAIN_MODEL_AUTOENCODER) {
        if (validate_autoencoder(tc, path)) return -1;
    } else if (tc->kl_weight >= 0) {
        return err_set("%s: train.kl_weight: only an autoencoder's training has a KL term", path);
    }
    static const char *const sets[] = {"fmnist", "cifar10", "images", "celeba", "latents"};
    int ok = 0;
    for (int i = 0; i < 5; i++) ok |= !strcmp(tc->dataset, sets[i]);
    if (!ok) return err_set("%s: data.dataset: '%s' is not fmnist, cifar10, images, celeba or latents",
                            path, tc->dataset);
    int text = tc->model.clip_dim > 0;
    if (tc->p_uncond > 0 && tc->model.num_classes <= 0 && !text)
        return err_set("%s: train.p_uncond: dropout needs a class-conditional or text-to-image model", path);
    if (tc->p_uncond > 0 && text && !tc->empty_context[0])
        return err_set("%s: data.empty_context: a text-to-image model's prompt dropout (train.p_uncond) needs the "
                       "empty prompt's features", path);
    if (tc->empty_context[0] && !text)
        return err_set("%s: data.empty_context: only a text-to-image model reads prompts", path);
    if (tc->optim.beta1 >= 1 || tc->optim.beta2 >= 1)
        return err_set("%s: optim: betas must be below 1", path);
    if (!tc->out_dir[0]) return err_set("%s: output.dir: must not be empty", path);
    if (tc->freeze_backbone && !strcmp(tc->method, "none"))
        return err_set("%s: train.freeze_backbone: method none has no parameters of its own to train", path);
    const MethodKind *kind = method_kind(tc->method);
    if (kind && kind->frozen_backbone_only && !tc->freeze_backbone)
        return err_set("%s: train.freeze_backbone: method %s trains with the backbone frozen (set it to true)", path,
                       tc->method);
    return 0;
}

int train_config_load(TrainConfig *tc, const char *path, int n_overrides,
                      const char *const *overrides)
{
    return train_config_load_kind(tc, TRAIN_MODEL_UVIT, path, n_overrides, overrides);
}

int train_config_load_kind(TrainConfig *tc, TrainModelKind kind, const char *path, int n_overrides,
                           const char *const *overrides)
{
    defaults(tc);
    tc->kind = kind;
    snprintf(tc->source, sizeof tc->source, "%s", path ? path : "(no --config)");
    char *text = NULL;
    if (!path) text = xstrdup("{}");
    else if (read_text(path, &text)) return -1;
    cJSON *root = cJSON_Parse(text);
    /* the error position points into text: take it before text is freed */
    long near = root || !cJSON_GetErrorPtr() ? 0 : (long)(cJSON_GetErrorPtr() - text);
    free(text);
    if (!root) return err_set("%s: not valid JSON (near byte %ld)", tc->source, near);
    path = tc->source;
    int rc = 0;
    for (int i = 0; rc == 0 && i < n_overrides; i++) rc = apply_override(root, overrides[i]);
    if (rc == 0 && kind == TRAIN_MODEL_UVIT && !cJSON_GetObjectItemCaseSensitive(root, "model")) {
        const cJSON *out = cJSON_GetObjectItemCaseSensitive(root, "output");
        const cJSON *init = cJSON_GetObjectItemCaseSensitive(out, "init");
        rc = model_from_backbone(root, cJSON_IsString(init) ? init->valuestring : "", path);
    }
    if (rc == 0) rc = inherit_method_options(root);
    if (rc == 0) rc = parse_tree(tc, root, path);
    if (rc == 0) rc = validate(tc, path);
    if (rc == 0) tc->json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return rc;
}

void train_config_free(TrainConfig *tc)
{
    free(tc->json);
    free(tc->method_options);
    tc->json = NULL;
    tc->method_options = NULL;
}

int train_config_dataset(const TrainConfig *tc, DatasetSpec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->path = tc->data_path[0] ? tc->data_path : NULL;
    spec->max_items = tc->max_items;
    spec->pad32 = tc->pad32;
    if (!strcmp(tc->dataset, "fmnist")) spec->format = DATA_FMNIST;
    else if (!strcmp(tc->dataset, "cifar10")) spec->format = DATA_CIFAR10;
    else if (!strcmp(tc->dataset, "latents")) spec->format = DATA_LATENTS;
    else {
        spec->format = DATA_IMAGES;
        spec->transform = strcmp(tc->dataset, "celeba") ? IMAGES_PLAIN : IMAGES_CELEBA;
        spec->channels = tc->kind == TRAIN_MODEL_AUTOENCODER ? tc->ae.in_channels : tc->model.in_chans;
    }
    return 0;
}
