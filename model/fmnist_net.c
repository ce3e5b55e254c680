/*
 * fmnist_net.c: the FD-FMNIST feature network (see fmnist_net.h): its
 * parameter table, initialisation, safetensors files, and the forward and
 * backward passes as a sequence of ops.
 */
#include "fmnist_net.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../kernels/philox.h"
#include "safetensors.h"

static const Conv2dParams CONV_SAME = {1, 1, 1, 1};              /* 3x3, stride 1, pad 1 */
static const Pool2dParams POOL_2X2 = {2, 2, 2, 2, 0, 0, 0};       /* 2x2, stride 2 */

/* ---- configuration ---------------------------------------------------------- */

FmnistNetConfig fmnist_net_config_default(void)
{
    FmnistNetConfig c = {32, 64, 128, 10};
    return c;
}

char *fmnist_net_config_json(const FmnistNetConfig *c)
{
    char buf[160];
    snprintf(buf, sizeof buf, "{\"arch\":\"fmnist-cnn\",\"c1\":%d,\"c2\":%d,\"c3\":%d,\"classes\":%d}",
             c->c1, c->c2, c->c3, c->classes);
    return xstrdup(buf);
}

int fmnist_net_config_parse(const char *json, const char *where, FmnistNetConfig *c)
{
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set("%s: architecture: not a JSON object", where);
    }
    static const char *const keys[] = {"c1", "c2", "c3", "classes"};
    int *dst[] = {&c->c1, &c->c2, &c->c3, &c->classes};
    int rc = 0, seen = 0;
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "arch");
    if (!cJSON_IsString(arch) || strcmp(arch->valuestring, "fmnist-cnn"))
        rc = err_set("%s: architecture: \"arch\" must be \"fmnist-cnn\"", where);
    for (int k = 0; rc == 0 && k < 4; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[k]);
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
            v->valuedouble > 1024)
            rc = err_set("%s: architecture: \"%s\" must be an integer in 1..1024", where, keys[k]);
        else *dst[k] = (int)v->valuedouble, seen++;
    }
    if (rc == 0 && cJSON_GetArraySize(root) != seen + 1)
        rc = err_set("%s: architecture: unknown keys (expected arch, c1, c2, c3, classes)", where);
    cJSON_Delete(root);
    return rc;
}

/* ---- parameters -------------------------------------------------------------- */

static void add_param(FmnistNet *m, int i, const char *name, int ndim, int64_t d0, int64_t d1,
                      int64_t d2, int64_t d3)
{
    FmnistParam *p = &m->params[i];
    snprintf(p->name, sizeof p->name, "%s", name);
    param_place(p, ndim, (int64_t[4]){d0, d1, d2, d3}, &m->n_floats);
}

void fmnist_net_create(FmnistNet *m, Ctx *ctx, const FmnistNetConfig *cfg, int with_grads)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    const FmnistNetConfig *c = cfg;
    add_param(m, 0, "conv1.weight", 4, c->c1, 1, 3, 3);
    add_param(m, 1, "conv1.bias", 1, c->c1, 0, 0, 0);
    add_param(m, 2, "conv2.weight", 4, c->c2, c->c1, 3, 3);
    add_param(m, 3, "conv2.bias", 1, c->c2, 0, 0, 0);
    add_param(m, 4, "conv3.weight", 4, c->c3, c->c2, 3, 3);
    add_param(m, 5, "conv3.bias", 1, c->c3, 0, 0, 0);
    add_param(m, 6, "norm.weight", 1, c->c3, 0, 0, 0);
    add_param(m, 7, "norm.bias", 1, c->c3, 0, 0, 0);
    add_param(m, 8, "head.weight", 2, c->classes, c->c3, 0, 0);
    add_param(m, 9, "head.bias", 1, c->classes, 0, 0, 0);
    size_t bytes = m->n_floats * sizeof(float);
    m->weights = ctx_alloc(ctx, bytes);
    ctx_zero(ctx, tensor1(m->weights, DT_F32, (int64_t)m->n_floats));
    if (with_grads) {
        m->grads = ctx_alloc(ctx, bytes);
        ctx_zero(ctx, tensor1(m->grads, DT_F32, (int64_t)m->n_floats));
    }
}

void fmnist_net_destroy(FmnistNet *m, Ctx *ctx)
{
    ctx_free(ctx, m->weights);
    if (m->grads) ctx_free(ctx, m->grads);
    memset(m, 0, sizeof *m);
}

const FmnistParam *fmnist_net_param(const FmnistNet *m, const char *name)
{
    for (int i = 0; i < FMNIST_NET_PARAMS; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    return NULL;
}

/* a parameter's view in the weight (or gradient) buffer */
#define W(i) param_view(&m->params[i], m->weights)
#define G(i) param_view(&m->params[i], m->grads)

void fmnist_net_init(FmnistNet *m, Ctx *ctx, uint64_t seed)
{
    float *host = xcalloc(m->n_floats, sizeof(float));
    for (int i = 0; i < FMNIST_NET_PARAMS; i++) {
        const FmnistParam *p = &m->params[i];
        float *v = host + p->offset;
        int is_weight = strstr(p->name, ".weight") != NULL;
        if (!strcmp(p->name, "norm.weight")) {
            for (size_t j = 0; j < p->numel; j++) v[j] = 1.0f;
        } else if (is_weight) {
            int64_t fan_in = (int64_t)p->numel / p->shape[0];
            double bound = !strncmp(p->name, "conv", 4) ? sqrt(6.0 / fan_in) : 1.0 / sqrt((double)fan_in);
            philox_fill_uniform(v, (int64_t)p->numel, seed, RNG_INIT_WEIGHTS, (uint32_t)i, 0);
            for (size_t j = 0; j < p->numel; j++) v[j] = (float)((2.0 * v[j] - 1.0) * bound);
        }
    }
    ctx_upload(ctx, m->weights, host, m->n_floats * sizeof(float));
    free(host);
}

/* ---- files -------------------------------------------------------------------------- */

int fmnist_net_save(const FmnistNet *m, Ctx *ctx, const char *path, int n_meta,
                    const char *const *keys, const char *const *values)
{
    float *host = xmalloc(m->n_floats * sizeof(float));
    ctx_download(ctx, host, m->weights, m->n_floats * sizeof(float));
    StWriter *w = st_writer_new();
    param_table_write(w, m->params, FMNIST_NET_PARAMS, "", host);
    char *arch = fmnist_net_config_json(&m->cfg);
    st_writer_meta(w, "architecture", arch);
    for (int k = 0; k < n_meta; k++) st_writer_meta(w, keys[k], values[k]);
    int rc = st_writer_save(w, path);
    st_writer_free(w);
    free(arch);
    free(host);
    return rc;
}

int fmnist_net_load(FmnistNet *m, Ctx *ctx, const char *path)
{
    memset(m, 0, sizeof *m);
    SafeTensors st;
    if (st_open(&st, path)) return -1;
    const char *arch = st_metadata(&st, "architecture");
    FmnistNetConfig cfg;
    char where[600];
    snprintf(where, sizeof where, "%s: metadata", path);
    if (!arch) {
        st_close(&st);
        return err_set("%s: metadata: architecture: missing (not an FD-FMNIST feature network file; "
                       "deediff train-fmnist-features writes one)", path);
    }
    if (fmnist_net_config_parse(arch, where, &cfg)) {
        st_close(&st);
        return -1;
    }
    fmnist_net_create(m, ctx, &cfg, 0);
    float *host = xcalloc(m->n_floats, sizeof(float));
    int rc = 0;
    for (int i = 0; rc == 0 && i < FMNIST_NET_PARAMS; i++) {
        const FmnistParam *p = &m->params[i];
        rc = st_read_f32(&st, p->name, host + p->offset, p->ndim, p->shape);
    }
    for (size_t j = 0; rc == 0 && j < m->n_floats; j++)
        if (!isfinite(host[j])) rc = err_set("%s: weights: a value is NaN or Inf", path);
    st_close(&st);
    if (rc == 0) ctx_upload(ctx, m->weights, host, m->n_floats * sizeof(float));
    else fmnist_net_destroy(m, ctx);
    free(host);
    return rc;
}

/* ---- activations -------------------------------------------------------------------- */

/* floats per image of each activation */
typedef struct { size_t h1, p1, h2, p2, h3, d; } ActSizes;

static ActSizes act_sizes(const FmnistNetConfig *c)
{
    const int s = FMNIST_NET_SIDE, s2 = s / 2, s4 = s / 4;
    ActSizes z = {(size_t)c->c1 * s * s, (size_t)c->c1 * s2 * s2, (size_t)c->c2 * s2 * s2,
                  (size_t)c->c2 * s4 * s4, (size_t)c->c3 * s4 * s4, (size_t)c->c3};
    return z;
}

static float *act_alloc(Ctx *ctx, int B, size_t per_image)
{
    return ctx_alloc(ctx, (size_t)B * per_image * sizeof(float));
}

void fmnist_acts_create(FmnistActs *a, Ctx *ctx, const FmnistNet *m, int max_batch, int with_grads)
{
    memset(a, 0, sizeof *a);
    ActSizes z = act_sizes(&m->cfg);
    int B = max_batch;
    a->max_batch = B, a->with_grads = with_grads;
    a->h1 = act_alloc(ctx, B, z.h1), a->p1 = act_alloc(ctx, B, z.p1);
    a->h2 = act_alloc(ctx, B, z.h2), a->p2 = act_alloc(ctx, B, z.p2);
    a->h3 = act_alloc(ctx, B, z.h3), a->pooled = act_alloc(ctx, B, z.d);
    a->mean = act_alloc(ctx, B, 1), a->rstd = act_alloc(ctx, B, 1);
    a->feat = act_alloc(ctx, B, z.d), a->logits = act_alloc(ctx, B, (size_t)m->cfg.classes);
    if (!with_grads) return;
    a->dh1 = act_alloc(ctx, B, z.h1), a->dc1 = act_alloc(ctx, B, z.h1), a->dp1 = act_alloc(ctx, B, z.p1);
    a->dh2 = act_alloc(ctx, B, z.h2), a->dc2 = act_alloc(ctx, B, z.h2), a->dp2 = act_alloc(ctx, B, z.p2);
    a->dh3 = act_alloc(ctx, B, z.h3), a->dc3 = act_alloc(ctx, B, z.h3), a->dpooled = act_alloc(ctx, B, z.d);
    a->dfeat = act_alloc(ctx, B, z.d), a->dlogits = act_alloc(ctx, B, (size_t)m->cfg.classes);
}

void fmnist_acts_destroy(FmnistActs *a, Ctx *ctx)
{
    float *all[] = {a->h1, a->p1, a->h2, a->p2, a->h3, a->pooled, a->mean, a->rstd, a->feat, a->logits,
                    a->dh1, a->dc1, a->dp1, a->dh2, a->dc2, a->dp2, a->dh3, a->dc3, a->dpooled,
                    a->dfeat, a->dlogits};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) ctx_free(ctx, all[i]);
    memset(a, 0, sizeof *a);
}

/* the views of one batch of B images */
typedef struct { Tensor h1, p1, h2, p2, h3, pooled, mean, rstd, feat, logits; } ActViews;

static ActViews views(const FmnistNet *m, float *h1, float *p1, float *h2, float *p2, float *h3,
                      float *pooled, float *mean, float *rstd, float *feat, float *logits, int64_t B)
{
    const FmnistNetConfig *c = &m->cfg;
    const int s = FMNIST_NET_SIDE;
    ActViews v;
    v.h1 = tensor4(h1, DT_F32, B, c->c1, s, s);
    v.p1 = tensor4(p1, DT_F32, B, c->c1, s / 2, s / 2);
    v.h2 = tensor4(h2, DT_F32, B, c->c2, s / 2, s / 2);
    v.p2 = tensor4(p2, DT_F32, B, c->c2, s / 4, s / 4);
    v.h3 = tensor4(h3, DT_F32, B, c->c3, s / 4, s / 4);
    v.pooled = tensor2(pooled, DT_F32, B, c->c3);
    v.mean = mean ? tensor1(mean, DT_F32, B) : tensor_none();
    v.rstd = rstd ? tensor1(rstd, DT_F32, B) : tensor_none();
    v.feat = tensor2(feat, DT_F32, B, c->c3);
    v.logits = tensor2(logits, DT_F32, B, c->classes);
    return v;
}

static void check_input(const FmnistActs *a, Tensor x)
{
    CHECK(x.ndim == 4 && x.shape[1] == 1 && x.shape[2] == FMNIST_NET_SIDE && x.shape[3] == FMNIST_NET_SIDE &&
              x.shape[0] >= 1 && x.shape[0] <= a->max_batch,
          "fmnist_net: input must be [B<=%d,1,28,28]", a->max_batch);
}

/* ---- forward and backward ------------------------------------------------------------ */

void fmnist_net_forward(Ctx *ctx, const FmnistNet *m, FmnistActs *a, Tensor x)
{
    check_input(a, x);
    ActViews v = views(m, a->h1, a->p1, a->h2, a->p2, a->h3, a->pooled, a->mean, a->rstd, a->feat,
                       a->logits, x.shape[0]);
    op_conv2d_forward(ctx, v.h1, x, W(0), W(1), CONV_SAME);       // h1 [B,c1,28,28]
    op_relu_forward(ctx, v.h1, v.h1);
    op_max_pool2d_forward(ctx, v.p1, v.h1, POOL_2X2);             // p1 [B,c1,14,14]
    op_conv2d_forward(ctx, v.h2, v.p1, W(2), W(3), CONV_SAME);    // h2 [B,c2,14,14]
    op_relu_forward(ctx, v.h2, v.h2);
    op_max_pool2d_forward(ctx, v.p2, v.h2, POOL_2X2);             // p2 [B,c2,7,7]
    op_conv2d_forward(ctx, v.h3, v.p2, W(4), W(5), CONV_SAME);    // h3 [B,c3,7,7]
    op_relu_forward(ctx, v.h3, v.h3);
    op_global_avg_pool_forward(ctx, v.pooled, v.h3);              // pooled [B,c3]
    op_layernorm_forward(ctx, v.feat, v.mean, v.rstd, v.pooled, W(6), W(7), FMNIST_NET_LN_EPS);
    op_linear_forward(ctx, v.logits, v.feat, W(8), W(9));         // logits [B,classes]
}

void fmnist_net_backward(Ctx *ctx, FmnistNet *m, FmnistActs *a, Tensor x)
{
    check_input(a, x);
    CHECK(a->with_grads && m->grads, "fmnist_net_backward: no gradient buffers");
    int64_t B = x.shape[0];
    ActViews v = views(m, a->h1, a->p1, a->h2, a->p2, a->h3, a->pooled, a->mean, a->rstd, a->feat,
                       a->logits, B);
    ActViews d = views(m, a->dh1, a->dp1, a->dh2, a->dp2, a->dh3, a->dpooled, NULL, NULL, a->dfeat,
                       a->dlogits, B);
    /* backward ops add: zero every activation gradient once. dh* (at the
       ReLU outputs) share the views' shapes with dc* (at the conv outputs). */
    Tensor dc1 = d.h1, dc2 = d.h2, dc3 = d.h3;
    dc1.data = a->dc1, dc2.data = a->dc2, dc3.data = a->dc3;
    Tensor zero[] = {d.h1, dc1, d.p1, d.h2, dc2, d.p2, d.h3, dc3, d.pooled, d.feat};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++) ctx_zero(ctx, zero[i]);
    op_linear_backward(ctx, d.feat, G(8), G(9), d.logits, v.feat, W(8));
    op_layernorm_backward(ctx, d.pooled, G(6), G(7), d.feat, v.pooled, W(6), v.mean, v.rstd);
    op_global_avg_pool_backward(ctx, d.h3, d.pooled);
    op_relu_backward(ctx, dc3, d.h3, v.h3);                       // h3 holds relu's output: same sign test
    op_conv2d_backward(ctx, d.p2, G(4), G(5), dc3, v.p2, W(4), CONV_SAME);
    op_max_pool2d_backward(ctx, d.h2, d.p2, v.h2, POOL_2X2);
    op_relu_backward(ctx, dc2, d.h2, v.h2);
    op_conv2d_backward(ctx, d.p1, G(2), G(3), dc2, v.p1, W(2), CONV_SAME);
    op_max_pool2d_backward(ctx, d.h1, d.p1, v.h1, POOL_2X2);
    op_relu_backward(ctx, dc1, d.h1, v.h1);
    op_conv2d_backward(ctx, tensor_none(), G(0), G(1), dc1, x, W(0), CONV_SAME);
}

void fmnist_net_features(Ctx *ctx, const FmnistNet *m, const float *images, int64_t n,
                         float *features, int chunk)
{
    if (n <= 0) return;
    if (chunk > n) chunk = (int)n;
    const int64_t px = FMNIST_NET_SIDE * FMNIST_NET_SIDE, D = m->cfg.c3;
    FmnistActs a;
    fmnist_acts_create(&a, ctx, m, chunk, 0);
    float *dx = ctx_alloc(ctx, (size_t)chunk * px * sizeof(float));
    for (int64_t at = 0; at < n; at += chunk) {
        int64_t b = n - at < chunk ? n - at : chunk;
        ctx_upload(ctx, dx, images + at * px, (size_t)(b * px) * sizeof(float));
        fmnist_net_forward(ctx, m, &a, tensor4(dx, DT_F32, b, 1, FMNIST_NET_SIDE, FMNIST_NET_SIDE));
        ctx_download(ctx, features + at * D, a.feat, (size_t)(b * D) * sizeof(float));
    }
    ctx_free(ctx, dx);
    fmnist_acts_destroy(&a, ctx);
}
