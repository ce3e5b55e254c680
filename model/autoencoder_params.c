/*
 * autoencoder_params.c: the KL autoencoder's parameters (model/autoencoder.h):
 * the buffer over the name table of autoencoder_graph.c, PyTorch's default
 * initialisation, and safetensors files with the configuration in their
 * metadata.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../kernels/philox.h"
#include "autoencoder.h"
#include "autoencoder_graph.h"

void autoencoder_create(Autoencoder *m, Ctx *ctx, const AutoencoderConfig *cfg)
{
    CHECK(autoencoder_config_check(cfg, "autoencoder_create") == 0, "%s", err_msg());
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    ae_build_params(cfg, &m->params, &m->num_params, &m->num_encoder_params, &m->total);
    m->weights = ctx_alloc(ctx, m->total * sizeof(float));
    ctx_zero(ctx, tensor1(m->weights, DT_F32, (int64_t)m->total));
}

void autoencoder_destroy(Autoencoder *m, Ctx *ctx)
{
    ctx_free(ctx, m->weights);
    ctx_free(ctx, m->grads);
    free(m->params);
    memset(m, 0, sizeof *m);
}

void autoencoder_enable_grads(Autoencoder *m, Ctx *ctx)
{
    if (!m->grads) m->grads = ctx_alloc(ctx, m->total * sizeof(float));
    autoencoder_zero_grads(m, ctx);
}

void autoencoder_zero_grads(Autoencoder *m, Ctx *ctx)
{
    if (m->grads) ctx_zero(ctx, tensor1(m->grads, DT_F32, (int64_t)m->total));
}

int autoencoder_find_param(const Autoencoder *m, const char *name)
{
    for (int i = 0; i < m->num_params; i++)
        if (!strcmp(m->params[i].name, name)) return i;
    return -1;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && !strcmp(s + n - k, tail);
}

void autoencoder_init_random(Autoencoder *m, Ctx *ctx, uint64_t seed)
{
    float *host = xcalloc(m->total, sizeof(float));
    for (int i = 0; i < m->num_params; i++) {
        const ParamInfo *p = &m->params[i];
        float *v = host + p->offset;
        if (strstr(p->name, ".norm")) {  // norm1, norm2, norm, norm_out: GroupNorm (1, 0)
            float fill = ends_with(p->name, ".weight") ? 1.0f : 0.0f;
            for (size_t k = 0; k < p->numel; k++) v[k] = fill;
            continue;
        }
        /* a conv: a bias's fan-in is its weight's */
        int64_t fan_in = p->ndim == 4 ? p->shape[1] * p->shape[2] * p->shape[3] : 0;
        if (p->ndim == 1) {
            char weight[sizeof p->name];
            snprintf(weight, sizeof weight, "%.*s.weight", (int)(strlen(p->name) - strlen(".bias")), p->name);
            int k = autoencoder_find_param(m, weight);
            CHECK(k >= 0 && ends_with(p->name, ".bias"), "autoencoder_init_random: no weight for %s", p->name);
            fan_in = m->params[k].shape[1] * m->params[k].shape[2] * m->params[k].shape[3];
        }
        double bound = 1.0 / sqrt((double)fan_in);
        philox_fill_uniform(v, (int64_t)p->numel, seed, RNG_INIT_WEIGHTS, (uint32_t)i, 0);
        for (size_t k = 0; k < p->numel; k++) v[k] = (float)((2.0 * v[k] - 1.0) * bound);
    }
    ctx_upload(ctx, m->weights, host, m->total * sizeof(float));
    free(host);
}

/* ---- files ------------------------------------------------------------------------------- */

int autoencoder_save(const Autoencoder *m, Ctx *ctx, const char *path, int n_meta, const char *const *keys,
                     const char *const *values)
{
    float *host = xmalloc(m->total * sizeof(float));
    ctx_download(ctx, host, m->weights, m->total * sizeof(float));
    StWriter *w = st_writer_new();
    param_table_write(w, m->params, m->num_params, "", host);
    char *json = autoencoder_config_to_json(&m->cfg);
    for (int k = 0; k < n_meta; k++) {
        CHECK(strcmp(keys[k], "config") != 0, "autoencoder_save: metadata key 'config' is the configuration's");
        st_writer_meta(w, keys[k], values[k]);
    }
    st_writer_meta(w, "config", json);
    int rc = st_writer_save(w, path);
    st_writer_free(w);
    free(json);
    free(host);
    return rc;
}

int autoencoder_load(Autoencoder *m, Ctx *ctx, const char *path)
{
    memset(m, 0, sizeof *m);
    SafeTensors st;
    if (st_open(&st, path)) return -1;
    char source[1100];
    snprintf(source, sizeof source, "%s: __metadata__", path);
    const char *json = st_metadata(&st, "config");
    AutoencoderConfig cfg;
    int rc = 0;
    if (!json)
        rc = err_set("%s: missing \"config\" (the autoencoder configuration as JSON; "
                     "tests/reference/convert_autoencoder_pth.py writes it)", source);
    else rc = autoencoder_config_parse(&cfg, json, source);
    if (rc) {
        st_close(&st);
        return -1;
    }
    autoencoder_create(m, ctx, &cfg);
    /* exactly the configuration's tensors, as load_state_dict(strict=True) */
    for (int i = 0; rc == 0 && i < st.count; i++)
        if (autoencoder_find_param(m, st.entries[i].name) < 0)
            rc = err_set("%s: tensor '%s': not a parameter of this configuration (check the config metadata)",
                         path, st.entries[i].name);
    if (rc == 0) rc = param_table_read(&st, m->params, m->num_params, "", ctx, m->weights);
    st_close(&st);
    if (rc) autoencoder_destroy(m, ctx);
    return rc;
}
