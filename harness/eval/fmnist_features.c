/*
 * fmnist_features.c: FD-FMNIST features of an "fmnist source" (a PNG
 * folder, an images safetensors, or the embedded Fashion-MNIST train/test
 * set, optionally blurred or noised): see image_features.h for the rules.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "../../kernels/philox.h"
#include "../../model/fmnist_net.h"
#include "../../model/safetensors.h"
#include "../data/dataset.h"
#include "image_features.h"

#define PX (FMNIST_NET_SIDE * FMNIST_NET_SIDE)
#define FEATURES_CHUNK 256

typedef enum { DEGRADE_NONE = 0, DEGRADE_BLUR3, DEGRADE_NOISE } Degrade;

/* "fmnist-train[+...]" / "fmnist-test[+...]": the split and the degradation;
   0 when it is not a dataset name, 1 when it is, -1 when it is a bad one */
static int parse_dataset_name(const char *s, int *test_split, Degrade *dg, double *sigma)
{
    const char *rest;
    if (!strncmp(s, "fmnist-train", 12)) *test_split = 0, rest = s + 12;
    else if (!strncmp(s, "fmnist-test", 11)) *test_split = 1, rest = s + 11;
    else return 0;
    *dg = DEGRADE_NONE, *sigma = 0;
    if (!*rest) return 1;
    if (!strcmp(rest, "+blur3")) { *dg = DEGRADE_BLUR3; return 1; }
    if (!strncmp(rest, "+noise", 6)) {
        char *end;
        errno = 0;
        double v = strtod(rest + 6, &end);
        if (rest[6] && !*end && !errno && v > 0 && v <= 10) {
            *dg = DEGRADE_NOISE, *sigma = v;
            return 1;
        }
    }
    err_set("%s: dataset: expected fmnist-train or fmnist-test, optionally with +blur3 or +noiseSIGMA "
            "(SIGMA in (0, 10])", s);
    return -1;
}

int fmnist_source_is_images(const char *source)
{
    int split;
    Degrade dg;
    double sigma;
    if (parse_dataset_name(source, &split, &dg, &sigma) != 0) return 1;
    struct stat sb;
    return stat(source, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* every item of a dataset as floats [n,1,28,28] in [-1,1] */
static int read_dataset(const DatasetSpec *spec, float **x, int64_t *n)
{
    Dataset *ds;
    if (dataset_open(spec, &ds)) return -1;
    int rc = 0;
    if (ds->c != 1 || ds->h != FMNIST_NET_SIDE || ds->w != FMNIST_NET_SIDE)
        rc = err_set("%s: images: %dx%dx%d, the FD-FMNIST network reads 1x28x28", spec->path ? spec->path : ds->name,
                     ds->c, ds->h, ds->w);
    if (rc == 0) {
        *n = ds->n;
        *x = xmalloc(sizeof(float) * (size_t)(ds->n * PX));
        for (int64_t i = 0; rc == 0 && i < ds->n; i++) rc = dataset_get(ds, i, *x + i * PX, NULL);
        if (rc) free(*x), *x = NULL;
    }
    dataset_close(ds);
    return rc;
}

/* tensor `images` F32 [N,1,28,28] in [0,1] -> x = 2v - 1 */
static int read_images_st(const char *path, float **x, int64_t *n)
{
    SafeTensors st;
    if (st_open(&st, path)) return -1;
    int rc = 0;
    const StEntry *e = st_find(&st, "images");
    if (!e) rc = err_set("%s: tensor 'images': missing (F32 [N,1,28,28] in [0,1])", path);
    else if (e->dtype != DT_F32) rc = err_set("%s: tensor 'images': dtype %s, expected F32", path, dtype_name(e->dtype));
    else if (e->ndim != 4 || e->shape[0] < 1 || e->shape[1] != 1 || e->shape[2] != FMNIST_NET_SIDE ||
             e->shape[3] != FMNIST_NET_SIDE)
        rc = err_set("%s: tensor 'images': expected shape [N,1,28,28] with N >= 1", path);
    if (rc == 0) {
        *n = e->shape[0];
        *x = xmalloc(sizeof(float) * (size_t)(*n * PX));
        rc = st_read_f32(&st, "images", *x, 4, e->shape);
        for (int64_t i = 0; rc == 0 && i < *n * PX; i++) {
            float v = (*x)[i];
            if (!(v >= 0.0f && v <= 1.0f))
                rc = err_set("%s: tensor 'images': element %lld is %g, expected a value in [0,1]", path,
                             (long long)i, v);
            (*x)[i] = 2.0f * v - 1.0f;
        }
        if (rc) free(*x), *x = NULL;
    }
    st_close(&st);
    return rc;
}

/* the sanity-check degradations (image_features.h), in place on x[n,1,28,28] */
static void degrade(Ctx *ctx, float *x, int64_t n, Degrade dg, double sigma)
{
    if (dg == DEGRADE_BLUR3) {
        Pool2dParams box = {3, 3, 1, 1, 1, 1, 0};
        size_t bytes = sizeof(float) * (size_t)(n * PX);
        float *din = ctx_alloc(ctx, bytes), *dout = ctx_alloc(ctx, bytes);
        ctx_upload(ctx, din, x, bytes);
        op_avg_pool2d_forward(ctx, tensor4(dout, DT_F32, n, 1, FMNIST_NET_SIDE, FMNIST_NET_SIDE),
                              tensor4(din, DT_F32, n, 1, FMNIST_NET_SIDE, FMNIST_NET_SIDE), box);
        ctx_download(ctx, x, dout, bytes);
        ctx_free(ctx, din), ctx_free(ctx, dout);
    } else if (dg == DEGRADE_NOISE) {
        float *z = xmalloc(sizeof(float) * (size_t)(n * PX));
        philox_fill_normal(z, n * PX, 0, RNG_TEST, 0, 0);
        for (int64_t i = 0; i < n * PX; i++) {
            float v = x[i] + (float)sigma * z[i];
            x[i] = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
        }
        free(z);
    }
}

int fmnist_features_of(Ctx *ctx, const char *weights, const char *source, float **features, int64_t *n,
                       int *dim)
{
    if (!weights) weights = FMNIST_NET_DEFAULT_WEIGHTS;
    *features = NULL;
    float *x = NULL;
    int split;
    Degrade dg = DEGRADE_NONE;
    double sigma = 0;
    int named = parse_dataset_name(source, &split, &dg, &sigma);
    if (named < 0) return -1;
    int rc;
    if (named) {
        DatasetSpec spec = {.format = DATA_FMNIST, .test_split = split};
        rc = read_dataset(&spec, &x, n);
    } else {
        struct stat sb;
        if (stat(source, &sb)) return err_set("%s: cannot open: %s", source, strerror(errno));
        if (S_ISDIR(sb.st_mode)) {
            DatasetSpec spec = {.format = DATA_IMAGES, .path = source, .transform = IMAGES_PLAIN,
                                .size = FMNIST_NET_SIDE, .channels = 1};
            rc = read_dataset(&spec, &x, n);
        } else {
            rc = read_images_st(source, &x, n);
        }
    }
    if (rc) return -1;
    FmnistNet m;
    if (fmnist_net_load(&m, ctx, weights)) {
        free(x);
        return -1;
    }
    degrade(ctx, x, *n, dg, sigma);
    *dim = m.cfg.c3;
    *features = xmalloc(sizeof(float) * (size_t)(*n * *dim));
    fmnist_net_features(ctx, &m, x, *n, *features, FEATURES_CHUNK);
    fmnist_net_destroy(&m, ctx);
    free(x);
    return 0;
}
