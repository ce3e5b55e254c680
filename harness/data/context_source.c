/*
 * context_source.c: per-image text contexts and the empty context from
 * safetensors, .npy and U-ViT's MS-COCO feature folders (context_source.h).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/data/context_source.h"
#include "harness/data/dataset.h"
#include "kernels/errors.h"
#include "model/npy.h"
#include "model/safetensors.h"

struct ContextSource {
    char *path;
    int len, dim;
    int64_t n;
    SafeTensors st;      /* a file: "context" F32 [n, len, dim] */
    const float *rows;   /* into st */
    Dataset *ds;         /* a folder: U-ViT's MS-COCO features */
    float *item;         /* [C, H, W] scratch for the folder's latent, unused */
};

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* "[4, 5, 8]" of a safetensors entry */
static const char *entry_shape(const StEntry *e, char *buf, size_t n)
{
    Tensor g = {NULL, e->dtype, e->ndim, {0}};
    memcpy(g.shape, e->shape, sizeof g.shape);
    return tensor_shape_str(g, buf, n);
}

static int open_file(ContextSource *s)
{
    if (st_open(&s->st, s->path)) return -1;
    const StEntry *e = st_find(&s->st, "context");
    if (!e)
        return err_set("%s: tensor 'context': missing (F32 [N, %d, %d]: the prompts' CLIP token features, "
                       "num_clip_token x clip_dim of the model)", s->path, s->len, s->dim);
    if (e->dtype != DT_F32)
        return err_set("%s: tensor 'context': dtype %s, expected F32", s->path, dtype_name(e->dtype));
    char got[96];
    if (e->ndim != 3 || e->shape[0] < 1 || e->shape[1] != s->len || e->shape[2] != s->dim)
        return err_set("%s: tensor 'context': shape %s, expected [N, %d, %d] (N >= 1 prompts, the model's "
                       "num_clip_token and clip_dim)", s->path, entry_shape(e, got, sizeof got), s->len, s->dim);
    s->n = e->shape[0];
    s->rows = st_data(&s->st, e);
    return 0;
}

static int open_folder(ContextSource *s)
{
    DatasetSpec spec = {.format = DATA_LATENTS, .path = s->path, .latent_moments = 1};
    if (dataset_open(&spec, &s->ds)) return -1;
    if (s->ds->ctx_len == 0)
        return err_set("%s: files: no caption features ({i}_{k}.npy): an ImageNet feature folder holds no "
                       "prompts", s->path);
    if (s->ds->ctx_len != s->len || s->ds->ctx_dim != s->dim)
        return err_set("%s/0_0.npy: context: [%d, %d], expected [%d, %d] (the model's num_clip_token and "
                       "clip_dim)", s->path, s->ds->ctx_len, s->ds->ctx_dim, s->len, s->dim);
    s->n = s->ds->n;
    s->item = xmalloc((size_t)s->ds->c * s->ds->h * s->ds->w * sizeof(float));
    return 0;
}

int context_source_open(const char *path, int len, int dim, ContextSource **out)
{
    CHECK(len > 0 && dim > 0, "context_source_open: contexts of %d x %d", len, dim);
    ContextSource *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(path);
    s->len = len;
    s->dim = dim;
    *out = NULL;
    if ((is_dir(path) ? open_folder(s) : open_file(s)) != 0) {
        context_source_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void context_source_close(ContextSource *s)
{
    if (!s) return;
    st_close(&s->st);
    dataset_close(s->ds);
    free(s->item);
    free(s->path);
    free(s);
}

int64_t context_source_count(const ContextSource *s) { return s->n; }

const char *context_source_kind(const ContextSource *s) { return s->ds ? "mscoco-features" : "safetensors"; }

static int check_finite(const char *path, const char *field, const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return err_set("%s: %s: element %lld is %s", path, field, (long long)i, isnan(v[i]) ? "NaN" : "infinite");
    return 0;
}

int context_source_read(ContextSource *s, const int64_t *ids, int64_t n, float *out)
{
    size_t per = (size_t)s->len * s->dim;
    for (int64_t k = 0; k < n; k++) {
        int64_t id = ids[k];
        if (id < 0 || id >= s->n)
            return err_set("%s: context: %lld prompts, image id %lld has none (image i takes prompt i)", s->path,
                           (long long)s->n, (long long)id);
        float *dst = out + (size_t)k * per;   // [len, dim]
        if (s->ds) {
            if (dataset_get_ctx(s->ds, id, s->item, NULL, dst)) return -1;
        } else {
            memcpy(dst, s->rows + (size_t)id * per, per * sizeof(float));
        }
        char field[64];
        snprintf(field, sizeof field, "context of prompt %lld", (long long)id);
        if (check_finite(s->path, field, dst, (int64_t)per)) return -1;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

int empty_context_read(const char *path, int len, int dim, float *out)
{
    size_t per = (size_t)len * dim;
    if (ends_with(path, ".npy")) {
        NpyArray a;
        if (npy_read_file(path, &a)) return -1;
        int ok = a.kind == 'f' && a.itemsize == 4 && a.ndim == 2 && a.shape[0] == len && a.shape[1] == dim;
        if (!ok) {
            char descr[8], shape[64];
            err_set("%s: array: %s %s, expected <f4 [%d, %d] (the empty prompt's CLIP token features: the model's "
                    "num_clip_token x clip_dim)", path, npy_descr(&a, descr), npy_shape_str(&a, shape, sizeof shape),
                    len, dim);
            npy_free(&a);
            return -1;
        }
        memcpy(out, a.data, per * sizeof(float));
        npy_free(&a);
    } else {
        SafeTensors st;
        if (st_open(&st, path)) return -1;
        const StEntry *e = st_find(&st, "empty_context");
        char got[96];
        int rc = 0;
        if (!e)
            rc = err_set("%s: tensor 'empty_context': missing (F32 [%d, %d]: the empty prompt's CLIP token "
                         "features; U-ViT's empty_context.npy works as it is)", path, len, dim);
        else if (e->ndim != 2 || e->shape[0] != len || e->shape[1] != dim)
            rc = err_set("%s: tensor 'empty_context': shape %s, expected [%d, %d] (the model's num_clip_token and "
                         "clip_dim)", path, entry_shape(e, got, sizeof got), len, dim);
        int64_t shape[2] = {len, dim};
        if (rc == 0) rc = st_read_f32(&st, "empty_context", out, 2, shape);
        st_close(&st);
        if (rc) return -1;
    }
    return check_finite(path, "empty context", out, (int64_t)per);
}
