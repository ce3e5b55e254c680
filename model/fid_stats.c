/*
 * fid_stats.c: mean and covariance of features, and their .npz files.
 *
 * Two passes in double: the mean from per-chunk partial sums added in chunk
 * order, then the covariance as a sum of dsyrk updates over centred chunks
 * (a chunk of 1024 rows is 16 MB at dim 2048, so N may be large). Chunk
 * boundaries are fixed, so results do not depend on the OpenMP thread count.
 */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "../kernels/errors.h"
#include "fid_stats.h"
#include "npy.h"

#define STATS_CHUNK 1024

int fid_stats_from_features(const char *name, const float *x, int64_t n, int dim, FidStats *out)
{
    memset(out, 0, sizeof *out);
    if (dim < 1) return err_set("%s: feature dimension %d < 1", name, dim);
    if (n < 2) return err_set("%s: %lld feature vectors; a covariance needs at least 2", name, (long long)n);

    // x is (n, dim); a non-finite feature is bad input, found before any work
    int64_t bad = INT64_MAX;   // the first non-finite element
    #pragma omp parallel for reduction(min : bad)
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < dim; j++)
            if (!isfinite(x[i * dim + j])) { bad = i * dim + j < bad ? i * dim + j : bad; break; }
    if (bad != INT64_MAX)
        return err_set("%s: row %lld, column %d is not finite (%g)", name, (long long)(bad / dim),
                       (int)(bad % dim), x[bad]);

    int64_t nchunks = (n + STATS_CHUNK - 1) / STATS_CHUNK;
    double *partial = xcalloc((size_t)nchunks * dim, sizeof(double));   // (nchunks, dim)
    #pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        double *p = partial + c * dim;
        int64_t end = (c + 1) * STATS_CHUNK < n ? (c + 1) * STATS_CHUNK : n;
        for (int64_t i = c * STATS_CHUNK; i < end; i++)
            for (int j = 0; j < dim; j++) p[j] += x[i * dim + j];
    }
    double *mu = xcalloc((size_t)dim, sizeof(double));
    for (int64_t c = 0; c < nchunks; c++)
        for (int j = 0; j < dim; j++) mu[j] += partial[c * dim + j];
    for (int j = 0; j < dim; j++) mu[j] /= (double)n;
    free(partial);

    // sigma (dim, dim) += xc^T xc over centred chunks xc (rows, dim), upper triangle
    double *sigma = xcalloc((size_t)dim * dim, sizeof(double));
    double *xc = xmalloc(sizeof(double) * STATS_CHUNK * (size_t)dim);
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t start = c * STATS_CHUNK, rows = n - start < STATS_CHUNK ? n - start : STATS_CHUNK;
        #pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < rows; i++)
            for (int j = 0; j < dim; j++) xc[i * dim + j] = (double)x[(start + i) * dim + j] - mu[j];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, dim, (int)rows, 1.0, xc, dim, 1.0, sigma, dim);
    }
    free(xc);
    double scale = 1.0 / (double)(n - 1);
    for (int i = 0; i < dim; i++)
        for (int j = i; j < dim; j++)
            sigma[(size_t)j * dim + i] = sigma[(size_t)i * dim + j] *= scale;

    out->dim = dim;
    out->n = n;
    out->mu = mu;
    out->sigma = sigma;
    return 0;
}

/* reads member `name` of z as doubles with the expected shape */
static double *read_f64(Npz *z, const char *path, const char *name, int ndim, int dim)
{
    NpyArray a;
    if (npz_read(z, name, &a)) return NULL;
    char sh[160];
    int ok = a.ndim == ndim && (a.kind == 'f' || a.kind == 'i' || a.kind == 'u');
    for (int i = 0; ok && i < ndim; i++) ok = a.shape[i] == dim;
    if (!ok) {
        char ds[8];
        err_set("%s: member '%s': %s array of shape %s, expected a float array of shape %s", path, name,
                npy_descr(&a, ds), npy_shape_str(&a, sh, sizeof sh),
                ndim == 1 ? "[dim]" : "[dim, dim] (dim from 'mu')");
        npy_free(&a);
        return NULL;
    }
    double *v = xmalloc(sizeof(double) * (size_t)npy_numel(&a));
    npy_to_f64(&a, v);
    npy_free(&a);
    return v;
}

int fid_stats_load(const char *path, FidStats *out)
{
    memset(out, 0, sizeof *out);
    Npz *z;
    if (npz_open(path, &z)) return -1;
    NpyArray a;
    int rc = -1;
    double *mu = NULL, *sigma = NULL;
    int64_t n = 0;
    if (npz_read(z, "mu", &a)) goto done;
    int dim = a.ndim == 1 && a.shape[0] > 0 && a.shape[0] <= (1 << 20) ? (int)a.shape[0] : -1;
    npy_free(&a);
    if (dim < 0) {
        err_set("%s: member 'mu': expected a non-empty vector", path);
        goto done;
    }
    // mu is read again through the same checks as sigma (a few kB, once)
    if (!(mu = read_f64(z, path, "mu", 1, dim)) || !(sigma = read_f64(z, path, "sigma", 2, dim))) goto done;
    if (npz_has(z, "n")) {
        if (npz_read(z, "n", &a)) goto done;
        double v = 0;
        if (npy_numel(&a) == 1 && (a.kind == 'i' || a.kind == 'u')) npy_to_f64(&a, &v);
        npy_free(&a);
        if (v < 2) {
            err_set("%s: member 'n': expected an integer sample count >= 2", path);
            goto done;
        }
        n = (int64_t)v;
    }
    double maxdiag = 0;
    for (int i = 0; i < dim; i++) {
        if (!isfinite(mu[i])) {
            err_set("%s: member 'mu': element %d is not finite", path, i);
            goto done;
        }
        double d = sigma[(size_t)i * dim + i];
        if (!(d >= 0)) {
            err_set("%s: member 'sigma': diagonal element %d is %g (a variance must be >= 0)", path, i, d);
            goto done;
        }
        maxdiag = fmax(maxdiag, d);
    }
    for (int i = 0; i < dim; i++)
        for (int j = i; j < dim; j++) {
            double *u = &sigma[(size_t)i * dim + j], *l = &sigma[(size_t)j * dim + i];
            if (!isfinite(*u) || !isfinite(*l)) {
                err_set("%s: member 'sigma': element (%d, %d) is not finite", path, i, j);
                goto done;
            }
            if (fabs(*u - *l) > 1e-5 * maxdiag) {
                err_set("%s: member 'sigma': not symmetric: (%d, %d) = %g but (%d, %d) = %g", path, i, j, *u, j, i, *l);
                goto done;
            }
            *u = *l = 0.5 * (*u + *l);
        }
    out->dim = dim;
    out->n = n;
    out->mu = mu;
    out->sigma = sigma;
    mu = sigma = NULL;
    rc = 0;
done:
    free(mu);
    free(sigma);
    npz_close(z);
    return rc;
}

int fid_stats_save(const char *path, const FidStats *s)
{
    int64_t shape[2] = {s->dim, s->dim};
    NpyArray arrays[3] = {
        npy_view('f', 8, 1, shape, s->mu),
        npy_view('f', 8, 2, shape, s->sigma),
        npy_view('i', 8, 0, NULL, &s->n),
    };
    const char *names[3] = {"mu", "sigma", "n"};
    return npz_write(path, s->n > 0 ? 3 : 2, names, arrays);
}

void fid_stats_free(FidStats *s)
{
    free(s->mu);
    free(s->sigma);
    memset(s, 0, sizeof *s);
}
