/*
 * dataset_latents.c: U-ViT's extracted Stable-Diffusion feature folders
 * (baofff/U-ViT datasets.py, scripts/extract_imagenet_feature.py,
 * scripts/extract_mscoco_feature.py), read item by item from disk.
 *
 * What is stored is not a latent but the autoencoder's "moments"
 * (encode_moments = quant_conv(encoder(x))): F32 [8, 32, 32] at 256 px, the
 * mean (channels 0..3) and log-variance (4..7) of the latent. U-ViT's
 * training draws the latent afresh every time (autoencoder.sample):
 *   z = 0.18215 * (mean + exp(0.5 * clamp(logvar, -30, 20)) * eps),  [4, 32, 32]
 * and so do we, with eps from Philox stream (seed, RNG_LATENT_SAMPLE, epoch),
 * element pos*CHW + j (pos = position in the epoch). spec.latent_moments = 1
 * hands out the raw moments instead. Without a draw (dataset_get) an item is
 * 0.18215 * mean.
 *
 * Two layouts, told apart by 0.npy:
 *   ImageNet  {i}.npy for i = 0..N-1, each np.save(path, (moments, label)):
 *             a pickled object array [moments F32 [8,H,W], numpy int64 label]
 *             (read by dataset_pickle.c). Labels 0..999 (1000 classes; the
 *             folder holds every image and its flipped copy, 2 x 1,281,167,
 *             so no flip is applied here).
 *   MS-COCO   {i}.npy = moments F32 [8,H,W] (a plain .npy), and
 *             {i}_{k}.npy for k = 0..n_i-1 = CLIP ViT-L/14 token features
 *             F32 [77, 768] of caption k. The folder is the split folder
 *             (U-ViT's <path>/train or <path>/val). Each draw takes caption
 *             k = philox_below(seed, RNG_DATA_CAPTION, epoch, pos, n_i),
 *             U-ViT's random.randint(0, n_i - 1); dataset_get takes caption 0.
 * Every index 0..N-1 must be present (captions too, 0..n_i-1); every file
 * must have the first file's shapes. Names other than these are ignored.
 * A path ending in .safetensors is one latent file instead
 * (dataset_latent_file.c: the project's own autoencoders).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/data/dataset.h"
#include "harness/data/dataset_pickle.h"
#include "kernels/errors.h"
#include "kernels/philox.h"
#include "model/npy.h"

#define SD_SCALE_FACTOR 0.18215f
#define IMAGENET_CLASSES 1000

typedef struct {
    char *dir;
    int imagenet;             /* 1: pickled (moments, label) items */
    int64_t mshape[3];        /* moments [2 zc, H, W] */
    int raw_moments;
    int *ncap;                /* MS-COCO: captions per item; NULL for ImageNet */
    int64_t cshape[2];        /* caption features [ctx_len, ctx_dim] */
} Latents;

static void latents_free(void *p)
{
    Latents *L = p;
    if (!L) return;
    free(L->dir);
    free(L->ncap);
    free(L);
}

static int read_all(const char *path, uint8_t **buf, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: file: cannot open", path);
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
        fclose(f);
        return err_set("%s: file: cannot stat", path);
    }
    *size = (size_t)st.st_size;
    *buf = xmalloc(*size ? *size : 1);
    size_t got = fread(*buf, 1, *size, f);
    fclose(f);
    if (got != *size) {
        free(*buf);
        return err_set("%s: file: short read", path);
    }
    return 0;
}

static int shape_is(const NpyArray *a, int ndim, const int64_t *shape)
{
    if (a->ndim != ndim) return 0;
    for (int d = 0; d < ndim; d++)
        if (a->shape[d] != shape[d]) return 0;
    return 1;
}

/* the moments (and label) of item i; a->data is F32 [2 zc, H, W] */
static int read_moments(const Latents *L, int64_t i, NpyArray *m, int64_t *label, int learn_shape)
{
    char path[4096], sbuf[64];
    snprintf(path, sizeof path, "%s/%lld.npy", L->dir, (long long)i);
    *label = -1;
    if (L->imagenet) {
        uint8_t *buf;
        size_t size;
        if (read_all(path, &buf, &size) < 0) return -1;
        PickleItem items[2];
        int count;
        int rc = pickle_npy_object_items(path, buf, size, items, 2, &count);
        free(buf);
        if (rc < 0) return -1;
        if (count != 2 || !items[0].is_array || items[1].is_array) {
            pickle_items_free(items, count);
            return err_set("%s: items: expected (moments array, integer label)", path);
        }
        *m = items[0].array;
        *label = items[1].value;
        if (*label < 0 || *label >= IMAGENET_CLASSES) {
            npy_free(m);
            return err_set("%s: label: %lld outside 0..%d", path, (long long)*label, IMAGENET_CLASSES - 1);
        }
    } else if (npy_read_file(path, m) < 0) {
        return -1;
    }
    if (m->kind != 'f' || m->itemsize != 4 || m->ndim != 3 || m->shape[0] % 2 != 0 ||
        (!learn_shape && !shape_is(m, 3, L->mshape))) {
        char want[64];
        if (learn_shape) snprintf(want, sizeof want, "F32 [2*C, H, W]");
        else snprintf(want, sizeof want, "F32 [%lld, %lld, %lld]", (long long)L->mshape[0],
                      (long long)L->mshape[1], (long long)L->mshape[2]);
        char descr[8];
        err_set("%s: moments: %s %s, expected %s", path, npy_descr(m, descr),
                npy_shape_str(m, sbuf, sizeof sbuf), want);
        npy_free(m);
        return -1;
    }
    return 0;
}

/* caption k of item i into ctx (or only checked/learned when ctx is NULL) */
static int read_caption(Latents *L, int64_t i, int k, float *ctx, int learn_shape)
{
    char path[4096], sbuf[64];
    snprintf(path, sizeof path, "%s/%lld_%d.npy", L->dir, (long long)i, k);
    NpyArray c;
    if (npy_read_file(path, &c) < 0) return -1;
    if (c.kind != 'f' || c.itemsize != 4 || c.ndim != 2 || (!learn_shape && !shape_is(&c, 2, L->cshape))) {
        char descr[8];
        err_set("%s: context: %s %s, expected F32 [%lld, %lld]", path, npy_descr(&c, descr),
                npy_shape_str(&c, sbuf, sizeof sbuf), (long long)(learn_shape ? 77 : L->cshape[0]),
                (long long)(learn_shape ? 768 : L->cshape[1]));
        npy_free(&c);
        return -1;
    }
    if (learn_shape) { L->cshape[0] = c.shape[0]; L->cshape[1] = c.shape[1]; }
    if (ctx) memcpy(ctx, c.data, c.nbytes);
    npy_free(&c);
    return 0;
}

void dataset_latent_from_moments(const float *moments, size_t chw, float scale, int raw, uint64_t seed,
                                 int64_t epoch, int64_t pos, float *out)
{
    if (raw) {
        memcpy(out, moments, chw * sizeof *out);
        return;
    }
    const float *mean = moments, *logvar = moments + chw;
    if (pos >= 0) philox_fill_normal(out, (int64_t)chw, seed, RNG_LATENT_SAMPLE, (uint32_t)epoch, (uint64_t)pos * chw);
    for (size_t j = 0; j < chw; j++) {
        float lv = fminf(fmaxf(logvar[j], -30.0f), 20.0f);
        float eps = pos >= 0 ? out[j] : 0.0f;
        out[j] = scale * (mean[j] + expf(0.5f * lv) * eps);
    }
}

static int latents_load(Dataset *ds, int64_t index, uint64_t seed, int64_t epoch, int64_t pos,
                        float *img_chw, int64_t *label, float *ctx)
{
    Latents *L = ds->impl;
    NpyArray m;
    int64_t lab;
    if (read_moments(L, index, &m, &lab, 0) < 0) return -1;
    dataset_latent_from_moments(m.data, (size_t)ds->c * ds->h * ds->w, SD_SCALE_FACTOR, L->raw_moments, seed,
                                epoch, pos, img_chw);
    npy_free(&m);
    if (label) *label = lab;
    if (ctx && L->ncap) {
        int k = pos >= 0 ? (int)philox_below(seed, RNG_DATA_CAPTION, (uint32_t)epoch, (uint64_t)pos,
                                             (uint64_t)L->ncap[index])
                         : 0;
        if (read_caption(L, index, k, ctx, 0) < 0) return -1;
    }
    return 0;
}

/* parses "<i>.npy" (cap = -1) or "<i>_<k>.npy"; 0 when the name is neither */
static int parse_name(const char *s, int64_t *i, int64_t *cap)
{
    int64_t a = 0, b = -1;
    const char *p = s;
    if (*p < '0' || *p > '9') return 0;
    for (; *p >= '0' && *p <= '9'; p++) { a = a * 10 + (*p - '0'); if (a > (1ll << 40)) return 0; }
    if (*p == '_') {
        p++;
        if (*p < '0' || *p > '9') return 0;
        for (b = 0; *p >= '0' && *p <= '9'; p++) { b = b * 10 + (*p - '0'); if (b > (1 << 20)) return 0; }
    }
    if (strcmp(p, ".npy") != 0) return 0;
    *i = a;
    *cap = b;
    return 1;
}

/* the item count and, for captions, n_i (checked contiguous) */
static int scan_folder(Latents *L, int64_t *n_out)
{
    DIR *d = opendir(L->dir);
    if (!d) return err_set("%s: folder: cannot open", L->dir);
    int64_t cap = 1 << 12, nitems = 0, ncaps = 0;
    int64_t *items = xmalloc((size_t)cap * sizeof *items);
    int64_t capc = 1 << 12, *caps = xmalloc((size_t)capc * 2 * sizeof *caps);
    struct dirent *e;
    int64_t n = 0;
    while ((e = readdir(d))) {
        int64_t i, k;
        if (!parse_name(e->d_name, &i, &k)) continue;
        if (k < 0) {
            if (nitems == cap) items = xrealloc(items, (size_t)(cap *= 2) * sizeof *items);
            items[nitems++] = i;
            if (i + 1 > n) n = i + 1;
        } else {
            if (ncaps == capc) caps = xrealloc(caps, (size_t)(capc *= 2) * 2 * sizeof *caps);
            caps[2 * ncaps] = i;
            caps[2 * ncaps + 1] = k;
            ncaps++;
        }
    }
    closedir(d);
    int rc = 0;
    uint8_t *seen = xcalloc((size_t)(n ? n : 1), 1);
    for (int64_t j = 0; j < nitems; j++) seen[items[j]] = 1;
    if (n == 0) rc = err_set("%s: folder: no <i>.npy feature files", L->dir);
    for (int64_t j = 0; rc == 0 && j < n; j++)
        if (!seen[j]) rc = err_set("%s: files: %lld.npy is missing (items run to %lld.npy)", L->dir,
                                   (long long)j, (long long)n - 1);
    if (rc == 0 && ncaps > 0) {
        L->ncap = xcalloc((size_t)n, sizeof *L->ncap);
        int64_t *maxk = xcalloc((size_t)n, sizeof *maxk);
        for (int64_t j = 0; j < ncaps; j++) {
            int64_t i = caps[2 * j], k = caps[2 * j + 1];
            if (i >= n) { rc = err_set("%s: files: %lld_%lld.npy has no %lld.npy", L->dir, (long long)i,
                                       (long long)k, (long long)i); break; }
            L->ncap[i]++;
            if (k + 1 > maxk[i]) maxk[i] = k + 1;
        }
        for (int64_t i = 0; rc == 0 && i < n; i++)
            if (L->ncap[i] == 0 || L->ncap[i] != maxk[i])
                rc = err_set("%s: files: captions of item %lld: %d files, expected %lld_0.npy .. %lld_%lld.npy",
                             L->dir, (long long)i, L->ncap[i], (long long)i, (long long)i,
                             (long long)(maxk[i] ? maxk[i] - 1 : 0));
        free(maxk);
    }
    free(seen);
    free(items);
    free(caps);
    *n_out = n;
    return rc;
}

int dataset_open_latents(const DatasetSpec *spec, Dataset **out)
{
    if (!spec->path) return err_set("latents: path: no folder given");
    size_t len = strlen(spec->path);
    if (len > 12 && !strcmp(spec->path + len - 12, ".safetensors")) return dataset_open_latent_file(spec, out);
    Latents *L = xcalloc(1, sizeof *L);
    L->dir = xstrdup(spec->path);
    L->raw_moments = spec->latent_moments;
    int64_t n = 0;
    if (scan_folder(L, &n) < 0) { latents_free(L); return -1; }
    if (spec->max_items > 0 && spec->max_items < n) n = spec->max_items;

    /* the layout and the shapes, from item 0 */
    char path0[4096];
    snprintf(path0, sizeof path0, "%s/0.npy", L->dir);
    uint8_t *buf;
    size_t size;
    if (read_all(path0, &buf, &size) < 0) { latents_free(L); return -1; }
    L->imagenet = size > 10 && memmem(buf, size < 256 ? size : 256, "'descr': '|O'", 13) != NULL;
    free(buf);
    if (L->imagenet && L->ncap) {
        latents_free(L);
        return err_set("%s: layout: ImageNet-style pickled items next to caption files", spec->path);
    }
    NpyArray m;
    int64_t lab;
    if (read_moments(L, 0, &m, &lab, 1) < 0) { latents_free(L); return -1; }
    memcpy(L->mshape, m.shape, sizeof L->mshape);
    npy_free(&m);
    if (L->ncap && read_caption(L, 0, 0, NULL, 1) < 0) { latents_free(L); return -1; }

    Dataset *ds = xcalloc(1, sizeof *ds);
    snprintf(ds->name, sizeof ds->name, "%s", spec->path);
    ds->n = n;
    ds->c = (int)(L->raw_moments ? L->mshape[0] : L->mshape[0] / 2);
    ds->h = (int)L->mshape[1];
    ds->w = (int)L->mshape[2];
    ds->num_classes = L->imagenet ? IMAGENET_CLASSES : 0;
    ds->ctx_len = L->ncap ? (int)L->cshape[0] : 0;
    ds->ctx_dim = L->ncap ? (int)L->cshape[1] : 0;
    ds->can_flip = 0;
    ds->load = latents_load;
    ds->impl = L;
    ds->impl_free = latents_free;
    ds->perm_epoch = -1;
    *out = ds;
    return 0;
}
