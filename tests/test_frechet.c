/*
 * test_frechet.c: feature statistics and the Fréchet distance (suite "frechet").
 *
 * Exact checks use covariances whose tr sqrt(S1 S2) is known in closed form:
 *   commuting:  S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T -> sum sqrt(a_i b_i)
 *   congruent:  S2 = T S1 T with T symmetric positive definite, so
 *               S1 S2 = (S1 T)^2 and tr sqrt(S1 S2) = tr(S1 T)
 * Sampled Gaussians check the statistics and the distance together, within
 * sampling error; tests/fixtures/npz/frechet_ref.npz holds distances that
 * NumPy computed by an independent route (eigenvalues of the non-symmetric
 * product), including a rank-deficient case with pytorch-fid's offset.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "../kernels/errors.h"
#include "../kernels/philox.h"
#include "../model/fid_stats.h"
#include "../model/frechet.h"
#include "../model/lapack.h"
#include "../model/npy.h"

static double *normal_matrix(int rows, int cols, uint32_t step)
{
    float *f = malloc(sizeof(float) * (size_t)rows * cols);
    double *d = malloc(sizeof(double) * (size_t)rows * cols);
    philox_fill_normal(f, (int64_t)rows * cols, 7, RNG_TEST, step, 0);
    for (int i = 0; i < rows * cols; i++) d[i] = f[i];
    free(f);
    return d;
}

/* a random symmetric positive definite (n, n): B B^T / n + floor I */
static double *random_spd(int n, uint32_t step, double floor)
{
    double *b = normal_matrix(n, n, step), *s = calloc((size_t)n * n, sizeof(double));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0 / n, b, n, b, n, 0.0, s, n);
    for (int i = 0; i < n; i++) s[i * n + i] += floor;
    free(b);
    return s;
}

/* a random orthogonal (n, n) from the QR factorisation of a normal matrix */
static double *random_orthogonal(int n, uint32_t step)
{
    double *q = normal_matrix(n, n, step);
    cr_assert_eq(lapack_orthogonal_from_qr(n, q), 0);
    return q;
}

/* q diag(v) q^T */
static double *rotate_diag(int n, const double *q, const double *v)
{
    double *qv = malloc(sizeof(double) * n * n), *s = malloc(sizeof(double) * n * n);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) qv[i * n + k] = q[i * n + k] * v[k];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0, qv, n, q, n, 0.0, s, n);
    free(qv);
    return s;
}

static double sqdist(int n, const double *a, const double *b)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
    return s;
}

static double trace(int n, const double *s)
{
    double t = 0;
    for (int i = 0; i < n; i++) t += s[i * n + i];
    return t;
}

Test(frechet, commuting_exact)
{
    int dims[] = {1, 8, 33, 64};
    for (int c = 0; c < 4; c++) {
        int n = dims[c];
        double *q = random_orthogonal(n, 10 + c), *a = malloc(sizeof(double) * n), *b = malloc(sizeof(double) * n);
        double *mu1 = normal_matrix(1, n, 20 + c), *mu2 = normal_matrix(1, n, 30 + c);
        double expect = sqdist(n, mu1, mu2);
        for (int i = 0; i < n; i++) {
            a[i] = 0.05 + i % 7;
            b[i] = 0.3 + (i * 5) % 11 * 0.5;
            expect += a[i] + b[i] - 2 * sqrt(a[i] * b[i]);
        }
        double *s1 = rotate_diag(n, q, a), *s2 = rotate_diag(n, q, b);
        FrechetResult r;
        cr_assert_eq(frechet_distance(n, mu1, s1, mu2, s2, &r), 0, "%s", err_msg());
        double scale = trace(n, s1) + trace(n, s2);
        cr_assert(fabs(r.distance - expect) <= 1e-12 * scale, "dim %d: %.17g vs %.17g", n, r.distance, expect);
        cr_assert_eq(r.rank1, n);
        cr_assert_eq(r.rank2, n);
        cr_assert_eq(r.offset_applied, 0);
        cr_assert_eq(r.distance, r.distance_plain);
        cr_assert(r.residual < 1e-12, "residual %g", r.residual);
        /* the distance of a Gaussian to itself */
        cr_assert_eq(frechet_distance(n, mu1, s1, mu1, s1, &r), 0);
        cr_assert(fabs(r.distance) <= 1e-12 * scale, "self distance %g", r.distance);
        free(q), free(a), free(b), free(mu1), free(mu2), free(s1), free(s2);
    }
}

/* S2 = T S1 T: tr sqrt(S1 S2) = tr(S1 T), a non-commuting closed form */
static void congruent_case(int n, uint32_t step, double **s1, double **s2, double *tr_s1t)
{
    *s1 = random_spd(n, step, 0.2);
    double *t = random_spd(n, step + 1, 0.5), *tmp = malloc(sizeof(double) * n * n);
    *s2 = malloc(sizeof(double) * n * n);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, t, n, *s1, n, 0.0, tmp, n);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, tmp, n, t, n, 0.0, *s2, n);
    for (int i = 0; i < n; i++)   /* exactly symmetric */
        for (int j = i + 1; j < n; j++) (*s2)[j * n + i] = (*s2)[i * n + j];
    *tr_s1t = 0;
    for (int i = 0; i < n * n; i++) *tr_s1t += (*s1)[i] * t[i];   /* tr(S1 T), both symmetric */
    free(t), free(tmp);
}

Test(frechet, congruent_exact)
{
    for (int n = 8; n <= 64; n *= 2) {
        double *s1, *s2, tr_s1t;
        congruent_case(n, 100 + n, &s1, &s2, &tr_s1t);
        double *mu1 = normal_matrix(1, n, 40), *mu2 = normal_matrix(1, n, 41);
        double expect = sqdist(n, mu1, mu2) + trace(n, s1) + trace(n, s2) - 2 * tr_s1t;
        FrechetResult r;
        cr_assert_eq(frechet_distance(n, mu1, s1, mu2, s2, &r), 0, "%s", err_msg());
        cr_assert(fabs(r.distance - expect) <= 1e-11 * (trace(n, s1) + trace(n, s2)),
                  "dim %d: %.17g vs %.17g", n, r.distance, expect);
        free(s1), free(s2), free(mu1), free(mu2);
    }
}

Test(frechet, sampled_gaussians)
{
    /* x = mu + z A^T with z standard normal: covariance A A^T; N large, so the
       estimate's error is a few times (dim^2 / N) relative */
    int dims[] = {8, 24, 64};
    for (int c = 0; c < 3; c++) {
        int n = dims[c];
        int64_t N = 40000;
        double *s1, *s2, tr_s1t;
        congruent_case(n, 200 + n, &s1, &s2, &tr_s1t);
        double *mu1 = normal_matrix(1, n, 50), *mu2 = normal_matrix(1, n, 51);
        double expect = sqdist(n, mu1, mu2) + trace(n, s1) + trace(n, s2) - 2 * tr_s1t;

        FidStats st[2];
        double *sig[2] = {s1, s2}, *mus[2] = {mu1, mu2};
        for (int k = 0; k < 2; k++) {
            // a is the lower Cholesky factor of the true covariance
            double *a = malloc(sizeof(double) * n * n);
            memcpy(a, sig[k], sizeof(double) * n * n);
            cr_assert_eq(lapack_cholesky_lower(n, a), 0);
            for (int i = 0; i < n; i++)
                for (int j = i + 1; j < n; j++) a[i * n + j] = 0;
            // z is (N, n) standard normal; xd = z a^T, x = xd + mu in float
            float *z = malloc(sizeof(float) * N * n), *x = malloc(sizeof(float) * N * n);
            philox_fill_normal(z, N * n, 8 + k, RNG_TEST, (uint32_t)n, 0);
            double *zd = malloc(sizeof(double) * N * n), *xd = malloc(sizeof(double) * N * n);
            for (int64_t i = 0; i < N * n; i++) zd[i] = z[i];
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, n, n, 1.0, zd, n, a, n, 0.0, xd, n);
            for (int64_t i = 0; i < N * n; i++) x[i] = (float)(xd[i] + mus[k][i % n]);
            cr_assert_eq(fid_stats_from_features("x", x, N, n, &st[k]), 0, "%s", err_msg());
            free(a), free(z), free(x), free(zd), free(xd);
        }
        FrechetResult r;
        cr_assert_eq(frechet_distance(n, st[0].mu, st[0].sigma, st[1].mu, st[1].sigma, &r), 0, "%s", err_msg());
        double scale = trace(n, s1) + trace(n, s2);
        double tol = 2.0 * n * n / (double)N * scale / n + 2.0 * sqrt(scale / N);
        cr_assert(fabs(r.distance - expect) < tol, "dim %d: sampled %.6g vs true %.6g (tolerance %.3g)",
                  n, r.distance, expect, tol);
        cr_log_info("dim %d: sampled %.6g true %.6g tolerance %.3g", n, r.distance, expect, tol);
        cr_assert_eq(r.offset_applied, 0);
        fid_stats_free(&st[0]), fid_stats_free(&st[1]);
        free(s1), free(s2), free(mu1), free(mu2);
    }
}

Test(frechet, stats_match_two_pass)
{
    int64_t N = 2500;   /* crosses the 1024-row chunks */
    int dim = 5;
    float *x = malloc(sizeof(float) * N * dim);
    philox_fill_normal(x, N * dim, 3, RNG_TEST, 0, 0);
    for (int64_t i = 0; i < N * dim; i++) x[i] = x[i] * (1 + i % dim) + 100.0f;   /* a large offset */
    FidStats s;
    cr_assert_eq(fid_stats_from_features("x", x, N, dim, &s), 0, "%s", err_msg());
    cr_assert_eq(s.n, N);
    for (int j = 0; j < dim; j++) {
        double m = 0;
        for (int64_t i = 0; i < N; i++) m += x[i * dim + j];
        m /= N;
        cr_assert(fabs(s.mu[j] - m) < 1e-12 * 100, "mu[%d]", j);
        for (int k = 0; k < dim; k++) {
            double mk = 0, c = 0;
            for (int64_t i = 0; i < N; i++) mk += x[i * dim + k];
            mk /= N;
            for (int64_t i = 0; i < N; i++) c += (x[i * dim + j] - m) * (x[i * dim + k] - mk);
            c /= N - 1;
            cr_assert(fabs(s.sigma[j * dim + k] - c) < 1e-10, "sigma[%d,%d] %.17g vs %.17g", j, k, s.sigma[j * dim + k], c);
        }
    }
    fid_stats_free(&s);

    cr_assert_eq(fid_stats_from_features("feats.safetensors: tensor 'pool3'", x, 1, dim, &s), -1);
    cr_assert(strstr(err_msg(), "feats.safetensors: tensor 'pool3'") && strstr(err_msg(), "at least 2"));
    x[7 * dim + 3] = NAN;
    cr_assert_eq(fid_stats_from_features("f", x, N, dim, &s), -1);
    cr_assert(strstr(err_msg(), "row 7, column 3"), "%s", err_msg());
    free(x);
}

static double *member(Npz *z, const char *name, int64_t expect_numel)
{
    NpyArray a;
    cr_assert_eq(npz_read(z, name, &a), 0, "%s", err_msg());
    cr_assert_eq(npy_numel(&a), expect_numel, "%s", name);
    double *v = malloc(sizeof(double) * expect_numel);
    npy_to_f64(&a, v);
    npy_free(&a);
    return v;
}

Test(frechet, numpy_reference)
{
    Npz *z;
    cr_assert_eq(npz_open("tests/fixtures/npz/frechet_ref.npz", &z), 0, "%s", err_msg());
    int n = 24;
    double *mu1 = member(z, "mu1", n), *s1 = member(z, "sigma1", n * n);
    double *mu2 = member(z, "mu2", n), *s2 = member(z, "sigma2", n * n);
    double *mu3 = member(z, "mu3", n), *s3 = member(z, "sigma3", n * n);
    double *d12 = member(z, "d12", 1), *d13 = member(z, "d13_offset", 1);
    npz_close(z);

    FrechetResult r;
    cr_assert_eq(frechet_distance(n, mu1, s1, mu2, s2, &r), 0, "%s", err_msg());
    cr_assert(fabs(r.distance - *d12) < 1e-10 * *d12, "%.17g vs numpy %.17g", r.distance, *d12);
    cr_assert_eq(r.offset_applied, 0);

    /* 10 samples in 24 dimensions: rank 9, the offset is applied as pytorch-fid does */
    cr_assert_eq(frechet_distance(n, mu1, s1, mu3, s3, &r), 0, "%s", err_msg());
    cr_assert_eq(r.rank1, n);
    cr_assert_eq(r.rank2, 9);
    cr_assert_eq(r.offset_applied, 1);
    cr_assert_eq(r.offset, 1e-6);
    cr_assert(isfinite(r.distance) && isfinite(r.distance_plain));
    cr_assert(fabs(r.distance - *d13) < 1e-9 * *d13, "%.17g vs numpy %.17g", r.distance, *d13);
    cr_assert(fabs(r.distance - r.distance_plain) < 1e-3 * *d13);
    free(mu1), free(s1), free(mu2), free(s2), free(mu3), free(s3), free(d12), free(d13);
}

Test(frechet, singular_features)
{
    /* N < dim: rank-deficient covariances give a finite distance; for two
       identical singular Gaussians pytorch-fid's formula gives exactly
       -2 * dim * eps (tr sqrt((S + eps I)^2) = tr S + dim * eps) */
    int n = 48;
    int64_t N = 20;
    float *x = malloc(sizeof(float) * N * n);
    philox_fill_normal(x, N * n, 5, RNG_TEST, 0, 0);
    FidStats s;
    cr_assert_eq(fid_stats_from_features("x", x, N, n, &s), 0, "%s", err_msg());
    FrechetResult r;
    cr_assert_eq(frechet_distance(n, s.mu, s.sigma, s.mu, s.sigma, &r), 0, "%s", err_msg());
    cr_assert_eq(r.rank1, N - 1);
    cr_assert_eq(r.rank2, N - 1);
    cr_assert_eq(r.offset_applied, 1);
    cr_assert(fabs(r.distance_plain) < 1e-9 * r.trace1, "plain %g", r.distance_plain);
    cr_assert(fabs(r.distance - (-2.0 * n * 1e-6)) < 1e-9 * r.trace1, "offset %.17g", r.distance);
    fid_stats_free(&s);
    free(x);
}

Test(frechet, bad_inputs)
{
    int n = 3;
    double mu[3] = {0, 0, 0}, eye[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, neg[9] = {1, 0, 0, 0, 1, 0, 0, 0, -1};
    FrechetResult r;
    cr_assert_eq(frechet_distance(n, mu, eye, mu, neg, &r), -1);
    cr_assert(strstr(err_msg(), "sigma2: not positive semidefinite"), "%s", err_msg());
    double bad_mu[3] = {0, NAN, 0};
    cr_assert_eq(frechet_distance(n, bad_mu, eye, mu, eye, &r), -1);
    cr_assert(strstr(err_msg(), "mu1: element 1"), "%s", err_msg());
    eye[1] = INFINITY;
    cr_assert_eq(frechet_distance(n, mu, eye, mu, eye, &r), -1);
    cr_assert(strstr(err_msg(), "sigma1: element (0, 1)"), "%s", err_msg());
    cr_assert_eq(frechet_distance(0, mu, eye, mu, eye, &r), -1);
}
