/*
 * dataset_latent_file.c: latents in one safetensors file, the layout
 * `deediff encode --dataset` writes for the project's own autoencoders
 * (the tiny scale of Table 2: Fashion-MNIST through a small autoencoder).
 *
 * Tensors:
 *   moments  F32 [N, 2 zc, h, w]  the autoencoder's encode_moments: mean
 *                                 (channels 0..zc-1), log-variance (zc..)
 *   labels   I64 [N]              optional: class labels 0..num_classes-1
 * Metadata:
 *   scale_factor   the autoencoder's (z = scale_factor * (mean + std eps));
 *                  required, since an autoencoder of our own is not SD's
 *   num_classes    required with labels (Fashion-MNIST: 10; the network
 *                  adds the null class for guidance itself, as U-ViT does)
 *   autoencoder, autoencoder_sha256, dataset   provenance (not read)
 * An item is drawn exactly as a U-ViT feature folder's (dataset_latents.c,
 * dataset_latent_from_moments), so training is the same for both.
 */
#include <stdlib.h>
#include <string.h>

#include "harness/data/dataset.h"
#include "kernels/errors.h"
#include "model/safetensors.h"

typedef struct {
    SafeTensors st;
    const float *moments;     /* [N, 2 zc, h, w] inside st */
    int64_t *labels;          /* [N] or NULL */
    float scale;
    int raw_moments;
} LatentFile;

static void latent_file_free(void *p)
{
    LatentFile *L = p;
    if (!L) return;
    st_close(&L->st);
    free(L->labels);
    free(L);
}

static int latent_file_load(Dataset *ds, int64_t index, uint64_t seed, int64_t epoch, int64_t pos,
                            float *img_chw, int64_t *label, float *ctx)
{
    (void)ctx;
    LatentFile *L = ds->impl;
    size_t chw = (size_t)ds->c * ds->h * ds->w;  // the latent's; the moments hold twice (or raw: this many)
    size_t mchw = L->raw_moments ? chw : 2 * chw;
    dataset_latent_from_moments(L->moments + (size_t)index * mchw, chw, L->scale, L->raw_moments, seed, epoch,
                                pos, img_chw);
    if (label) *label = L->labels ? L->labels[index] : -1;
    return 0;
}

/* metadata `key` as a number in [lo, hi]; -1 naming the file and the key */
static int meta_number(const SafeTensors *st, const char *key, double lo, double hi, double *out)
{
    const char *s = st_metadata(st, key);
    if (!s) return err_set("%s: __metadata__: %s: missing", st->path, key);
    char *end;
    *out = strtod(s, &end);
    if (end == s || *end || !(*out >= lo && *out <= hi))
        return err_set("%s: __metadata__: %s: '%s' is not a number in [%g, %g]", st->path, key, s, lo, hi);
    return 0;
}

static int latent_file_check(LatentFile *L, int64_t *n, int64_t shape[3], int *num_classes)
{
    const SafeTensors *st = &L->st;
    const StEntry *m = st_find(st, "moments");
    if (!m) return err_set("%s: tensor 'moments': missing", st->path);
    if (m->dtype != DT_F32 || m->ndim != 4 || m->shape[0] < 1 || m->shape[1] < 2 || m->shape[1] % 2)
        return err_set("%s: tensor 'moments': expected F32 [N, 2*C, H, W] with N >= 1", st->path);
    *n = m->shape[0];
    memcpy(shape, m->shape + 1, 3 * sizeof *shape);
    L->moments = st_data(st, m);
    double scale = 0;
    if (meta_number(st, "scale_factor", 1e-6, 1e6, &scale)) return -1;
    L->scale = (float)scale;
    *num_classes = 0;
    if (!st_find(st, "labels")) return 0;
    double k = 0;
    if (meta_number(st, "num_classes", 1, 1 << 20, &k)) return -1;
    *num_classes = (int)k;
    L->labels = xmalloc((size_t)*n * sizeof *L->labels);
    if (st_read_i64(st, "labels", L->labels, 1, (int64_t[]){*n})) return -1;
    for (int64_t i = 0; i < *n; i++)
        if (L->labels[i] < 0 || L->labels[i] >= *num_classes)
            return err_set("%s: tensor 'labels': item %lld is %lld, outside 0..%d", st->path, (long long)i,
                           (long long)L->labels[i], *num_classes - 1);
    return 0;
}

int dataset_open_latent_file(const DatasetSpec *spec, Dataset **out)
{
    LatentFile *L = xcalloc(1, sizeof *L);
    L->raw_moments = spec->latent_moments;
    int64_t n = 0, shape[3] = {0};
    int num_classes = 0;
    if (st_open(&L->st, spec->path) || latent_file_check(L, &n, shape, &num_classes)) {
        latent_file_free(L);
        return -1;
    }
    Dataset *ds = xcalloc(1, sizeof *ds);
    snprintf(ds->name, sizeof ds->name, "%s", spec->path);
    ds->n = spec->max_items > 0 && spec->max_items < n ? spec->max_items : n;
    ds->c = (int)(L->raw_moments ? shape[0] : shape[0] / 2);
    ds->h = (int)shape[1];
    ds->w = (int)shape[2];
    ds->num_classes = num_classes;
    ds->can_flip = 0;
    ds->load = latent_file_load;
    ds->impl = L;
    ds->impl_free = latent_file_free;
    ds->perm_epoch = -1;
    *out = ds;
    return 0;
}
