/*
 * frechet.c: the Fréchet distance with two symmetric eigendecompositions
 * (see frechet.h for the method and how singular covariances are handled).
 *
 * Cost at dim n: one dsyevd with vectors (S1), two values-only dsyevd (S2 for
 * its rank, M for the trace), one dsymm and one dgemm; a second
 * dsymm+dgemm+dsyevd only when the offset is applied.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "../kernels/errors.h"
#include "frechet.h"
#include "lapack.h"

/* the upper triangle of a (n, n) must be finite */
static int check_finite(const char *mu_name, const char *what, int n, const double *mu, const double *sigma)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(mu[i])) return err_set("%s: element %d is not finite (%g)", mu_name, i, mu[i]);
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++)
            if (!isfinite(sigma[(size_t)i * n + j]))
                return err_set("%s: element (%d, %d) is not finite (%g)", what, i, j, sigma[(size_t)i * n + j]);
    return 0;
}

/* eigenvalues (ascending) of the symmetric a (n, n), upper triangle used;
   a is destroyed; with vectors, column k of a becomes eigenvector k */
static int eig_sym(const char *what, int n, double *a, double *w, int vectors)
{
    int info = lapack_eig_sym(n, a, w, vectors);
    CHECK(info >= 0, "dsyevd: argument %d is invalid", (int)-info);
    if (info > 0) return err_set("%s: the eigendecomposition did not converge (dsyevd info %d)", what, (int)info);
    return 0;
}

/* count of eigenvalues above numpy.linalg.matrix_rank's tolerance */
static int rank_of(int n, const double *w)
{
    double wmax = fmax(fabs(w[0]), fabs(w[n - 1]));
    double tol = wmax * n * DBL_EPSILON;
    int r = 0;
    for (int i = 0; i < n; i++) r += w[i] > tol;
    return r;
}

/* sum_ij A_ij B_ij over symmetric matrices, from their upper triangles */
static double frobenius_dot_upper(int n, const double *a, const double *b)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        const double *ar = a + (size_t)i * n, *br = b + (size_t)i * n;
        double row = 0;
        for (int j = i + 1; j < n; j++) row += ar[j] * br[j];
        s += 2 * row + ar[i] * br[i];
    }
    return s;
}

/* Workspace for one distance at dim n: four (n, n) buffers. */
typedef struct {
    int n;
    double *v1;   /* eigenvectors of S1, as columns */
    double *w1;   /* eigenvalues of S1 (n) */
    double *l;    /* L = V diag(sqrt(l + shift)) */
    double *t;    /* (S2 + shift I) L */
    double *m;    /* L^T (S2 + shift I) L, then destroyed by dsyevd */
    double *wm;   /* eigenvalues of M (n) */
} FrechetWork;

/* tr sqrt((S1 + shift I)(S2 + shift I)) from S1's eigenpairs; also sets
   the residual and M's smallest relative eigenvalue in r */
static int trace_sqrt_product(FrechetWork *wk, const double *sigma2, double shift,
                              double s1_dot_s2, double norms, FrechetResult *r)
{
    int n = wk->n;
    // l is (n, n): column k = eigenvector k * sqrt(eigenvalue k + shift); wm is scratch here
    for (int k = 0; k < n; k++) wk->wm[k] = sqrt(fmax(wk->w1[k] + shift, 0.0));
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++)
            wk->l[(size_t)i * n + k] = wk->v1[(size_t)i * n + k] * wk->wm[k];
    // t = S2 l + shift l, from the upper triangle of S2
    if (shift != 0) memcpy(wk->t, wk->l, sizeof(double) * (size_t)n * n);
    cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, n, n, 1.0, sigma2, n, wk->l, n,
                shift, wk->t, n);
    // m = l^T t, then made exactly symmetric
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, n, 1.0, wk->l, n, wk->t, n, 0.0, wk->m, n);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double s = 0.5 * (wk->m[(size_t)i * n + j] + wk->m[(size_t)j * n + i]);
            wk->m[(size_t)i * n + j] = wk->m[(size_t)j * n + i] = s;
        }
    if (eig_sym("S1 S2 product", n, wk->m, wk->wm, 0)) return -1;
    double sum_sqrt = 0, sum = 0;
    for (int k = 0; k < n; k++) {
        sum_sqrt += sqrt(fmax(wk->wm[k], 0.0));
        sum += wk->wm[k];
    }
    r->trace_sqrt = sum_sqrt;
    double expect = s1_dot_s2 + shift * (r->trace1 + r->trace2) + (double)n * shift * shift;
    r->residual = norms > 0 ? fabs(sum - expect) / norms : fabs(sum - expect);
    r->min_eig_m_rel = wk->wm[n - 1] > 0 ? wk->wm[0] / wk->wm[n - 1] : 0;
    return 0;
}

int frechet_distance(int n, const double *mu1, const double *sigma1,
                     const double *mu2, const double *sigma2, FrechetResult *r)
{
    memset(r, 0, sizeof *r);
    if (n < 1) return err_set("frechet: dimension %d < 1", n);
    if (check_finite("mu1", "sigma1", n, mu1, sigma1) || check_finite("mu2", "sigma2", n, mu2, sigma2)) return -1;
    r->dim = n;

    double mean = 0, tr1 = 0, tr2 = 0;
    for (int i = 0; i < n; i++) {
        double d = mu1[i] - mu2[i];
        mean += d * d;
        tr1 += sigma1[(size_t)i * n + i];
        tr2 += sigma2[(size_t)i * n + i];
    }
    r->mean_term = mean;
    r->trace1 = tr1;
    r->trace2 = tr2;
    double s1_dot_s2 = frobenius_dot_upper(n, sigma1, sigma2);
    double norms = sqrt(frobenius_dot_upper(n, sigma1, sigma1) * frobenius_dot_upper(n, sigma2, sigma2));

    size_t nn = (size_t)n * n;
    FrechetWork wk = {n, xmalloc(sizeof(double) * nn), xmalloc(sizeof(double) * n),
                      xmalloc(sizeof(double) * nn), xmalloc(sizeof(double) * nn),
                      xmalloc(sizeof(double) * nn), xmalloc(sizeof(double) * n)};
    int rc = -1;

    // eigenpairs of S1; eigenvalues of S2 (in m, as scratch) for its rank
    memcpy(wk.v1, sigma1, sizeof(double) * nn);
    if (eig_sym("sigma1", n, wk.v1, wk.w1, 1)) goto done;
    memcpy(wk.m, sigma2, sizeof(double) * nn);
    if (eig_sym("sigma2", n, wk.m, wk.wm, 0)) goto done;
    r->min_eig1 = wk.w1[0], r->max_eig1 = wk.w1[n - 1];
    r->min_eig2 = wk.wm[0], r->max_eig2 = wk.wm[n - 1];
    r->rank1 = rank_of(n, wk.w1);
    r->rank2 = rank_of(n, wk.wm);
    if (r->min_eig1 < -1e-3 * fabs(r->max_eig1)) {
        err_set("sigma1: not positive semidefinite (smallest eigenvalue %g, largest %g)", r->min_eig1, r->max_eig1);
        goto done;
    }
    if (r->min_eig2 < -1e-3 * fabs(r->max_eig2)) {
        err_set("sigma2: not positive semidefinite (smallest eigenvalue %g, largest %g)", r->min_eig2, r->max_eig2);
        goto done;
    }

    if (trace_sqrt_product(&wk, sigma2, 0.0, s1_dot_s2, norms, r)) goto done;
    r->distance_plain = mean + tr1 + tr2 - 2 * r->trace_sqrt;
    r->distance = r->distance_plain;
    if (r->rank1 < n || r->rank2 < n) {
        // pytorch-fid: covmean = sqrtm((S1 + eps I)(S2 + eps I)); traces stay plain
        if (trace_sqrt_product(&wk, sigma2, FRECHET_EPS, s1_dot_s2, norms, r)) goto done;
        r->offset_applied = 1;
        r->offset = FRECHET_EPS;
        r->distance = mean + tr1 + tr2 - 2 * r->trace_sqrt;
    }
    rc = 0;
done:
    free(wk.v1), free(wk.w1), free(wk.l), free(wk.t), free(wk.m), free(wk.wm);
    return rc;
}
