/*
 * bench_frechet.c: the Fréchet distance at dim 2048, timed against a general
 * matrix square root in the same run: the "frechet" section of
 * `deediff bench`.
 *
 * The reference is what pytorch-fid does (scipy.linalg.sqrtm of S1 S2),
 * written the straightforward way in double with BLAS/LAPACK: the product
 * S1 S2, then the Denman–Beavers iteration with determinant scaling (Higham,
 * "Functions of Matrices", 6.3):
 *   Y0 = S1 S2, Z0 = I;  g = |det Y det Z|^(-1/(2n));
 *   Y <- (g Y + (g Z)^-1) / 2,  Z <- (g Z + (g Y)^-1) / 2   -> Y = sqrt(S1 S2)
 * two LU inversions per step, until the relative change of Y is below 1e-12
 * or stops shrinking (the rounding floor of a 2048-d product is near 1e-12).
 * scipy uses a Schur method instead (complex Schur form, then a triangular
 * recurrence); both are O(n^3) general-matrix algorithms, and the iteration
 * is the one that runs on BLAS.
 *
 * The covariances come from 4096 synthetic feature vectors with a spread of
 * column scales, so both are full rank and not trivially conditioned.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "../../kernels/errors.h"
#include "../../kernels/philox.h"
#include "../../model/lapack.h"
#include "../../model/fid_stats.h"
#include "../../model/frechet.h"
#include "bench_util.h"
#include "../cli/cli.h"

/* statistics of n_samples synthetic features (n_samples, dim) */
static void synthetic_stats(int dim, int n_samples, uint32_t step, double decay, FidStats *s)
{
    float *x = xmalloc(sizeof(float) * (size_t)n_samples * dim);
    philox_fill_normal(x, (int64_t)n_samples * dim, 11, RNG_TEST, step, 0);
    for (int64_t i = 0; i < (int64_t)n_samples; i++)
        for (int j = 0; j < dim; j++) {
            float *v = &x[i * dim + j];
            // a shared component couples the columns; scales spread the spectrum
            *v = (float)((0.1 + exp(-decay * j / dim)) * *v + 0.3 * x[i * dim]);
        }
    CHECK(fid_stats_from_features("synthetic", x, n_samples, dim, s) == 0, "%s", err_msg());
    free(x);
}

/* inverse of a (n, n) in place; returns log|det a| */
static double invert(int n, double *a)
{
    double logdet;
    CHECK(lapack_invert(n, a, &logdet) == 0, "dgetrf/dgetri: singular matrix");
    return logdet;
}

/* tr sqrt(S1 S2) by Denman–Beavers; *iters gets the step count */
static double trace_sqrt_denman_beavers(int n, const double *s1, const double *s2, int *iters)
{
    size_t nn = (size_t)n * n;
    double *y = xmalloc(sizeof(double) * nn), *z = xcalloc(nn, sizeof(double));
    double *yi = xmalloc(sizeof(double) * nn), *zi = xmalloc(sizeof(double) * nn);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, s1, n, s2, n, 0.0, y, n);
    for (int i = 0; i < n; i++) z[(size_t)i * n + i] = 1;
    int k;
    double prev = INFINITY;
    for (k = 1; k <= 100; k++) {
        memcpy(yi, y, sizeof(double) * nn);
        memcpy(zi, z, sizeof(double) * nn);
        double logdet = invert(n, yi) + invert(n, zi);
        double g = exp(-logdet / (2.0 * n));
        double change = 0, norm = 0;
        for (size_t i = 0; i < nn; i++) {
            double ynew = 0.5 * (g * y[i] + zi[i] / g);
            z[i] = 0.5 * (g * z[i] + yi[i] / g);
            change += (ynew - y[i]) * (ynew - y[i]);
            norm += ynew * ynew;
            y[i] = ynew;
        }
        // converged, or stalled at the rounding floor (quadratic convergence over)
        double rel = sqrt(change / norm);
        if (rel <= 1e-12 || (rel < 1e-8 && rel > 0.5 * prev)) break;
        prev = rel;
    }
    *iters = k;
    double tr = 0;
    for (int i = 0; i < n; i++) tr += y[(size_t)i * n + i];
    free(y), free(z), free(yi), free(zi);
    return tr;
}

static int bench_frechet_dim(FILE *out, int dim, int repeats)
{
    FidStats a, b;
    synthetic_stats(dim, 2 * dim, 1, 3.0, &a);
    synthetic_stats(dim, 2 * dim, 2, 5.0, &b);

    FrechetResult r;
    double times[16];
    for (int i = 0; i < repeats; i++) {
        double t0 = bench_now();
        if (frechet_distance(dim, a.mu, a.sigma, b.mu, b.sigma, &r)) return -1;
        times[i] = bench_now() - t0;
    }
    double ours = bench_median(times, repeats);

    double t0 = bench_now();
    int iters;
    double tr_db = trace_sqrt_denman_beavers(dim, a.sigma, b.sigma, &iters);
    double reference = bench_now() - t0;

    fprintf(out, "frechet distance, dim %d, float64, %s\n", dim, bench_cpu_name());
    fprintf(out, "  ours: symmetric eigendecompositions    %8.3f s (median of %d)  tr sqrt = %.12g\n", ours,
            repeats, r.trace_sqrt);
    fprintf(out, "  reference: S1 S2 + Denman-Beavers sqrtm %8.3f s (%d iterations)   tr sqrt = %.12g\n",
            reference, iters, tr_db);
    fprintf(out, "  speedup %.1fx, relative difference of tr sqrt %.1e, rank %d/%d, residual %.1e\n",
            reference / ours, fabs(r.trace_sqrt - tr_db) / fabs(tr_db), r.rank1, dim, r.residual);
    fid_stats_free(&a);
    fid_stats_free(&b);
    return 0;
}

int bench_frechet(FILE *out) { return bench_frechet_dim(out, 2048, 3); }
