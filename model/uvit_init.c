/*
 * uvit_init.c: U-ViT's parameter initialisation (libs/uvit.py _init_weights
 * plus PyTorch's defaults for the modules it leaves alone), drawn from
 * Philox streams (RNG_INIT_WEIGHTS, step = parameter index), so a seed gives
 * the same model on every machine and backend.
 *
 *   Linear weights, pos_embed   normal(0, 0.02) (timm's trunc_normal_ cuts at
 *                               +-2 absolute = 100 sigma: never reached)
 *   Linear biases               0
 *   LayerNorm                   weight 1, bias 0
 *   patch_embed, final_layer    PyTorch Conv2d default: U(-1/sqrt(fan_in), +)
 *   label_emb                   PyTorch Embedding default: normal(0, 1)
 */
#include <math.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../kernels/philox.h"
#include "uvit.h"

static int starts_with(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }
static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static void init_param(const ParamInfo *p, int index, float *v, uint64_t seed)
{
    const char *name = p->name;
    int64_t n = (int64_t)p->numel;
    if (starts_with(name, "patch_embed.") || starts_with(name, "final_layer.")) {
        /* conv weight [Co, Ci, kh, kw]: fan_in = Ci kh kw; the bias shares it */
        double fan_in = 1;
        if (p->ndim == 4) fan_in = (double)p->shape[1] * p->shape[2] * p->shape[3];
        else {
            /* the bias: fan_in of the weight registered just before it */
            const ParamInfo *w = p - 1;
            fan_in = (double)w->shape[1] * w->shape[2] * w->shape[3];
        }
        float bound = (float)(1.0 / sqrt(fan_in));
        philox_fill_uniform(v, n, seed, RNG_INIT_WEIGHTS, (uint32_t)index, 0);
        for (int64_t i = 0; i < n; i++) v[i] = (2 * v[i] - 1) * bound;
    } else if (!strcmp(name, "label_emb.weight")) {
        philox_fill_normal(v, n, seed, RNG_INIT_WEIGHTS, (uint32_t)index, 0);
    } else if (strstr(name, "norm") && ends_with(name, ".weight")) {
        for (int64_t i = 0; i < n; i++) v[i] = 1.0f;
    } else if (ends_with(name, ".bias")) {
        memset(v, 0, (size_t)n * sizeof *v);
    } else {
        /* Linear weights and pos_embed */
        philox_fill_normal(v, n, seed, RNG_INIT_WEIGHTS, (uint32_t)index, 0);
        for (int64_t i = 0; i < n; i++) v[i] *= 0.02f;
    }
}

void uvit_init_random(UViT *m, Ctx *ctx, uint64_t seed)
{
    float *host = xcalloc(m->total, sizeof(float));
    for (int i = 0; i < m->num_params; i++)
        init_param(&m->params[i], i, host + m->params[i].offset, seed);
    ctx_upload(ctx, m->weights, host, m->total * sizeof(float));
    free(host);
}
