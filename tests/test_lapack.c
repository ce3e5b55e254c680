/*
 * test_lapack.c: the row-major LAPACK wrappers of model/lapack.h (suite
 * "lapack"), each checked by what it promises, on non-symmetric input where
 * the layout matters: A V = V diag(w) by columns, L L^T = A with L lower,
 * A inv(A) = I with log|det A| against a triangular matrix's, Q Q^T = I,
 * and LAPACK's info on singular and indefinite input.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/philox.h"
#include "../model/lapack.h"

enum { N = 7 };

/* a (N, N) standard normal matrix */
static void normal_matrix(double *a, uint32_t step)
{
    float f[N * N];
    philox_fill_normal(f, N * N, 31, RNG_TEST, step, 0);
    for (int i = 0; i < N * N; i++) a[i] = f[i];
}

/* c = a b for (N, N) row-major matrices; bt: b transposed */
static void matmul(double *c, const double *a, const double *b, int bt)
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < N; k++) s += a[i * N + k] * (bt ? b[j * N + k] : b[k * N + j]);
            c[i * N + j] = s;
        }
}

static void assert_identity(const double *a, double tol)
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            cr_assert(fabs(a[i * N + j] - (i == j)) < tol, "(%d, %d) = %g", i, j, a[i * N + j]);
}

/* a symmetric positive definite (N, N): g g^T + I */
static void spd_matrix(double *s, uint32_t step)
{
    double g[N * N];
    normal_matrix(g, step);
    matmul(s, g, g, 1);
    for (int i = 0; i < N; i++) s[i * N + i] += 1;
}

Test(lapack, eig_sym_vectors_are_columns)
{
    double s[N * N], v[N * N], w[N];
    spd_matrix(s, 1);
    /* only the upper triangle is read: spoil the lower */
    memcpy(v, s, sizeof s);
    for (int i = 1; i < N; i++)
        for (int j = 0; j < i; j++) v[i * N + j] = 1e9;
    cr_assert_eq(lapack_eig_sym(N, v, w, 1), 0);
    for (int k = 0; k < N; k++) {
        if (k > 0) cr_assert(w[k] >= w[k - 1], "eigenvalues ascend");
        for (int i = 0; i < N; i++) {
            double sv = 0;
            for (int j = 0; j < N; j++) sv += s[i * N + j] * v[j * N + k];
            cr_assert(fabs(sv - w[k] * v[i * N + k]) < 1e-10 * w[N - 1], "S v_%d row %d", k, i);
        }
    }
    double values_only[N * N], w2[N];
    memcpy(values_only, s, sizeof s);
    cr_assert_eq(lapack_eig_sym(N, values_only, w2, 0), 0);
    for (int k = 0; k < N; k++) cr_assert(fabs(w2[k] - w[k]) < 1e-12 * w[N - 1]);
}

Test(lapack, cholesky_lower_reads_the_lower_triangle)
{
    double s[N * N], l[N * N], llt[N * N];
    spd_matrix(s, 2);
    memcpy(l, s, sizeof s);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) l[i * N + j] = -7;
    cr_assert_eq(lapack_cholesky_lower(N, l), 0);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) {
            cr_assert_eq(l[i * N + j], -7, "the upper triangle is left as it was");
            l[i * N + j] = 0;
        }
    matmul(llt, l, l, 1);
    for (int i = 0; i < N * N; i++) cr_assert(fabs(llt[i] - s[i]) < 1e-12 * (1 + fabs(s[i])));
    double indefinite[N * N] = {0};
    for (int i = 0; i < N; i++) indefinite[i * N + i] = i == 3 ? -1 : 1;
    cr_assert_eq(lapack_cholesky_lower(N, indefinite), 4, "info names the first non-positive minor");
}

Test(lapack, invert_a_non_symmetric_matrix)
{
    double a[N * N], inv[N * N], prod[N * N], logdet;
    normal_matrix(a, 3);
    for (int i = 0; i < N; i++) a[i * N + i] += 4;
    memcpy(inv, a, sizeof a);
    cr_assert_eq(lapack_invert(N, inv, &logdet), 0);
    matmul(prod, a, inv, 0);
    assert_identity(prod, 1e-12);
    matmul(prod, inv, a, 0);
    assert_identity(prod, 1e-12);

    /* upper triangular: log|det| is the sum of log|diagonal| */
    double t[N * N] = {0}, expect = 0;
    for (int i = 0; i < N; i++) {
        for (int j = i; j < N; j++) t[i * N + j] = a[i * N + j];
        expect += log(fabs(t[i * N + i]));
    }
    cr_assert_eq(lapack_invert(N, t, &logdet), 0);
    cr_assert(fabs(logdet - expect) < 1e-12 * (1 + fabs(expect)), "%g vs %g", logdet, expect);

    double singular[N * N] = {0};
    cr_assert(lapack_invert(N, singular, &logdet) > 0, "a singular matrix is refused");
}

Test(lapack, orthogonal_from_qr)
{
    double q[N * N], qqt[N * N];
    normal_matrix(q, 4);
    cr_assert_eq(lapack_orthogonal_from_qr(N, q), 0);
    matmul(qqt, q, q, 1);
    assert_identity(qqt, 1e-13);
}
