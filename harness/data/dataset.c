/*
 * dataset.c: what every format shares: opening by format, uint8 -> [-1, 1]
 * conversion, the epoch permutation, flips and the batch cursor (the rules
 * are written at the top of dataset.h).
 */
#include <string.h>

#include "harness/data/dataset.h"
#include "kernels/errors.h"
#include "kernels/philox.h"

float dataset_pixel_to_float(uint8_t u)
{
    /* torchvision ToTensor (u / 255 in float) then Normalize(0.5, 0.5) */
    return ((float)u / 255.0f - 0.5f) / 0.5f;
}

Dataset *dataset_alloc_pixels(const char *name, int64_t n, int c, int h, int w, int num_classes)
{
    Dataset *ds = xcalloc(1, sizeof *ds);
    snprintf(ds->name, sizeof ds->name, "%s", name);
    ds->n = n;
    ds->c = c; ds->h = h; ds->w = w;
    ds->num_classes = num_classes;
    ds->can_flip = 1;
    ds->pixels = xmalloc((size_t)n * (size_t)c * (size_t)h * (size_t)w);
    if (num_classes > 0) ds->labels = xmalloc((size_t)n * sizeof *ds->labels);
    ds->perm_epoch = -1;
    return ds;
}

int dataset_open(const DatasetSpec *spec, Dataset **out)
{
    *out = NULL;
    switch (spec->format) {
    case DATA_FMNIST: return dataset_open_fmnist(spec, out);
    case DATA_CIFAR10: return dataset_open_cifar10(spec, out);
    case DATA_IMAGES: return dataset_open_images(spec, out);
    case DATA_LATENTS: return dataset_open_latents(spec, out);
    }
    return err_set("dataset: format: unknown format %d", (int)spec->format);
}

void dataset_close(Dataset *ds)
{
    if (!ds) return;
    if (ds->impl_free) ds->impl_free(ds->impl);
    free(ds->pixels);
    free(ds->labels);
    free(ds->perm);
    free(ds);
}

/* the permutation of epoch `epoch`, computed once per (seed, epoch) */
static const int64_t *epoch_perm(Dataset *ds, uint64_t seed, int64_t epoch)
{
    if (ds->perm && ds->perm_seed == seed && ds->perm_epoch == epoch) return ds->perm;
    if (!ds->perm) ds->perm = xmalloc((size_t)ds->n * sizeof *ds->perm);
    int64_t *p = ds->perm;
    for (int64_t i = 0; i < ds->n; i++) p[i] = i;
    for (int64_t i = ds->n - 1; i > 0; i--) {
        int64_t j = (int64_t)philox_below(seed, RNG_DATA_SHUFFLE, (uint32_t)epoch, (uint64_t)i,
                                          (uint64_t)i + 1);
        int64_t t = p[i]; p[i] = p[j]; p[j] = t;
    }
    ds->perm_seed = seed;
    ds->perm_epoch = epoch;
    return p;
}

int64_t dataset_order(Dataset *ds, uint64_t seed, int64_t epoch, int64_t pos)
{
    CHECK(pos >= 0 && pos < ds->n, "position %lld outside 0..%lld", (long long)pos,
          (long long)ds->n - 1);
    return epoch_perm(ds, seed, epoch)[pos];
}

/* item `index` into img_chw (and label, ctx); draw identifies the random
   choices of disk-backed formats (seed, epoch, pos), pos < 0 = none */
static int load_item(Dataset *ds, int64_t index, uint64_t seed, int64_t epoch, int64_t pos,
                     float *img_chw, int64_t *label, float *ctx)
{
    CHECK(index >= 0 && index < ds->n, "item %lld outside 0..%lld", (long long)index,
          (long long)ds->n - 1);
    if (ds->load) return ds->load(ds, index, seed, epoch, pos, img_chw, label, ctx);
    size_t chw = (size_t)ds->c * ds->h * ds->w;
    const uint8_t *src = ds->pixels + (size_t)index * chw;
    for (size_t i = 0; i < chw; i++) img_chw[i] = dataset_pixel_to_float(src[i]);
    if (label) *label = ds->labels ? ds->labels[index] : -1;
    return 0;
}

int dataset_get_ctx(Dataset *ds, int64_t index, float *img_chw, int64_t *label, float *ctx)
{
    return load_item(ds, index, 0, 0, -1, img_chw, label, ctx);
}

int dataset_get(Dataset *ds, int64_t index, float *img_chw, int64_t *label)
{
    return load_item(ds, index, 0, 0, -1, img_chw, label, NULL);
}

/* reverses every row of a [C, H, W] image in place */
static void flip_lr(float *img, int c, int h, int w)
{
    for (int r = 0; r < c * h; r++) {
        float *row = img + (size_t)r * w;
        for (int i = 0, j = w - 1; i < j; i++, j--) {
            float t = row[i]; row[i] = row[j]; row[j] = t;
        }
    }
}

int dataset_next_batch(Dataset *ds, DataCursor *cursor, uint64_t seed, int B, int flip,
                       float *x, int64_t *y, float *ctx)
{
    if (B < 1 || B > ds->n)
        return err_set("%s: batch size: %d is not in 1..%lld", ds->name, B, (long long)ds->n);
    if (flip && !ds->can_flip)
        return err_set("%s: flip: this dataset's items cannot be flipped", ds->name);
    if (cursor->pos < 0 || cursor->pos > ds->n || cursor->epoch < 0)
        return err_set("%s: cursor: epoch %lld position %lld is outside the dataset", ds->name,
                       (long long)cursor->epoch, (long long)cursor->pos);
    if (cursor->pos + B > ds->n) { /* drop_last: the epoch's remainder is skipped */
        cursor->epoch++;
        cursor->pos = 0;
    }
    const int64_t *perm = epoch_perm(ds, seed, cursor->epoch);
    size_t chw = (size_t)ds->c * ds->h * ds->w, ctxn = (size_t)ds->ctx_len * ds->ctx_dim;
    for (int b = 0; b < B; b++) {
        int64_t pos = cursor->pos + b;
        float *img = x + (size_t)b * chw;
        if (load_item(ds, perm[pos], seed, cursor->epoch, pos, img, y ? &y[b] : NULL,
                      ctx ? ctx + (size_t)b * ctxn : NULL) < 0)
            return -1;
        if (flip && (philox_u32_at(seed, RNG_DATA_FLIP, (uint32_t)cursor->epoch, (uint64_t)pos) >> 31))
            flip_lr(img, ds->c, ds->h, ds->w);
    }
    cursor->pos += B;
    return 0;
}
