/*
 * guidance_options.c: --guidance, --cfg-exit, --context and --empty-context
 * checked against a model, the guidance wrapper, each batch's conditioning,
 * and their part of a run's protocol (guidance_options.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "cli.h"
#include "guidance_options.h"

/* err_msg() prefixed with the flag whose file it names: "--context: F: ..." */
static int flag_error(const char *flag)
{
    char why[1024];
    snprintf(why, sizeof why, "%s", err_msg());
    return err_set("%s: %s", flag, why);
}

/* the scale and the exit pairing, checked against the model's kind */
static int parse_scale(const GuidanceOptions *go, const UViTConfig *c, Guidance *g)
{
    if (go->guidance && cli_double("--guidance", go->guidance, &g->scale)) return -1;
    if (!isfinite(g->scale)) return err_set("--guidance: '%s' is not a finite number", go->guidance);
    if (g->scale != 0 && c->num_classes <= 0 && !uvit_is_text(c))
        return err_set("--guidance: the model is unconditional (num_classes -1, clip_dim 0): nothing to guide by");
    if (g->scale != 0 && c->num_classes == 1)
        return err_set("--guidance: the model has 1 class, so no null class to guide against");
    g->exit = CFG_EXIT_INDEPENDENT;
    if (go->cfg_exit) {
        if (g->scale == 0) return err_set("--cfg-exit: applies under guidance only (give --guidance W, W != 0)");
        if (cfg_exit_from_name(go->cfg_exit, &g->exit)) return flag_error("--cfg-exit");
    }
    return 0;
}

/* the contexts and the empty context of a text-to-image model */
static int open_text(const GuidanceOptions *go, const UViTConfig *c, Guidance *g)
{
    if (!uvit_is_text(c)) {
        if (go->context) return err_set("--context: the model is not text-to-image (clip_dim 0)");
        if (go->empty_context) return err_set("--empty-context: the model is not text-to-image (clip_dim 0)");
        return 0;
    }
    g->context_len = c->num_clip_token;
    g->context_dim = c->clip_dim;
    if (!go->context)
        return err_set("--context: the model is text-to-image (num_clip_token %d, clip_dim %d): give each image's "
                       "prompt features (FILE.safetensors with 'context' [N,%d,%d], or U-ViT's MS-COCO feature folder)",
                       c->num_clip_token, c->clip_dim, c->num_clip_token, c->clip_dim);
    if (context_source_open(go->context, g->context_len, g->context_dim, &g->contexts)) return flag_error("--context");
    struct stat sb;
    if (stat(go->context, &sb) == 0 && !S_ISDIR(sb.st_mode) && file_sha256(go->context, g->context_sha256))
        return flag_error("--context");
    if (g->scale == 0) {
        if (go->empty_context)
            return err_set("--empty-context: used by guidance only (give --guidance W, W != 0)");
        return 0;
    }
    if (!go->empty_context)
        return err_set("--empty-context: guidance of a text-to-image model needs the empty prompt's features "
                       "(U-ViT's empty_context.npy, [%d, %d])", c->num_clip_token, c->clip_dim);
    g->empty = xmalloc((size_t)g->context_len * g->context_dim * sizeof(float));
    if (empty_context_read(go->empty_context, g->context_len, g->context_dim, g->empty) ||
        file_sha256(go->empty_context, g->empty_sha256))
        return flag_error("--empty-context");
    return 0;
}

int guidance_open(const GuidanceOptions *go, const UViTConfig *c, Guidance *g)
{
    memset(g, 0, sizeof *g);
    g->go = go;
    if (parse_scale(go, c, g) == 0 && open_text(go, c, g) == 0) return 0;
    guidance_close(g);
    return -1;
}

void guidance_close(Guidance *g)
{
    context_source_close(g->contexts);
    free(g->empty);
    free(g->batch_context);
    memset(g, 0, sizeof *g);
}

int guidance_label_classes(const Guidance *g, const UViTConfig *c)
{
    return c->num_classes - (g->scale != 0);
}

int guidance_wrap(const Guidance *g, Ctx *ctx, const UViTConfig *c, NoisePredictor *inner, CfgPredictor *cfg,
                  NoisePredictor **out)
{
    *out = inner;
    if (!guidance_wraps(g)) return 0;
    CfgSettings s = {.scale = g->scale, .exit = g->exit, .null_class = -1};
    if (uvit_is_text(c)) {
        s.empty_context = g->empty;
        s.context_len = g->context_len;
        s.context_dim = g->context_dim;
    } else {
        s.null_class = uvit_null_class(c);
    }
    if (cfg_predictor_init(cfg, ctx, inner, &s, c->in_chans, c->img_size, c->img_size)) return -1;
    *out = &cfg->base;
    return 0;
}

int guidance_check_ids(const Guidance *g, const int64_t *ids, int64_t n)
{
    if (!g->contexts) return 0;
    int64_t count = context_source_count(g->contexts);
    for (int64_t i = 0; i < n; i++)
        if (ids[i] >= count)
            return err_set("--context: %s: %lld prompts, image id %lld has none (image i takes prompt i)",
                           g->go->context, (long long)count, (long long)ids[i]);
    return 0;
}

int guidance_cond(Guidance *g, const int64_t *ids, int64_t n, const int64_t *labels, SampleCond *out)
{
    *out = (SampleCond){.labels = labels};
    if (!g->contexts) return 0;
    int64_t per = (int64_t)g->context_len * g->context_dim;
    if (n > g->batch_cap) {
        free(g->batch_context);
        g->batch_context = xmalloc((size_t)(n * per) * sizeof(float));
        g->batch_cap = n;
    }
    if (context_source_read(g->contexts, ids, n, g->batch_context)) return flag_error("--context");
    out->context = g->batch_context;
    out->context_len = g->context_len;
    out->context_dim = g->context_dim;
    return 0;
}

void guidance_protocol_add(const Guidance *g, cJSON *j)
{
    if (g->scale != 0) cJSON_AddStringToObject(j, "cfg_exit", cfg_exit_name(g->exit));
    if (g->contexts) {
        cJSON_AddStringToObject(j, "context", g->go->context);
        cJSON_AddStringToObject(j, "context_source", context_source_kind(g->contexts));
        if (g->context_sha256[0]) cJSON_AddStringToObject(j, "context_sha256", g->context_sha256);
        cJSON_AddNumberToObject(j, "context_prompts", (double)context_source_count(g->contexts));
        cJSON_AddStringToObject(j, "context_rule", "image i takes prompt i (a folder: caption 0 of item i)");
    }
    if (g->empty) {
        cJSON_AddStringToObject(j, "empty_context", g->go->empty_context);
        cJSON_AddStringToObject(j, "empty_context_sha256", g->empty_sha256);
    }
}

void guidance_redraw_flags(const Guidance *g, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s%s%s%s%s", g->scale != 0 ? " --cfg-exit " : "", g->scale != 0 ? cfg_exit_name(g->exit) : "",
             g->contexts ? " --context " : "", g->contexts ? g->go->context : "", g->empty ? " --empty-context " : "",
             g->empty ? g->go->empty_context : "");
}
