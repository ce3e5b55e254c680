/*
 * lapack.c: row-major wrappers over OpenBLAS's Fortran LAPACK (lapack.h).
 *
 * Fortran passes every argument by reference and, after the last one, the
 * length of each character argument (gfortran's hidden size_t lengths);
 * the prototypes below say so. Workspaces come from a query first
 * (lwork = -1), as LAPACK recommends, then one allocation.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "../kernels/errors.h"
#include "lapack.h"

void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len,
             size_t uplo_len);
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
void dgetrf_(const int *m, const int *n, double *a, const int *lda, int *ipiv, int *info);
void dgetri_(const int *n, double *a, const int *lda, const int *ipiv, double *work, const int *lwork,
             int *info);
void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau, double *work,
             const int *lwork, int *info);
void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda, const double *tau,
             double *work, const int *lwork, int *info);

/* a workspace size LAPACK answered in a double, at least 1 */
static int work_size(double answer)
{
    return answer < 1 ? 1 : (int)ceil(answer);
}

int lapack_eig_sym(int n, double *a, double *w, int vectors)
{
    /* the upper triangle mirrored into the lower: a is then exactly its
       transpose, read the same in either layout, and dsyevd sees the very
       matrix LAPACKE's row-major call would pass it */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) a[(size_t)j * n + i] = a[(size_t)i * n + j];
    const char jobz = vectors ? 'V' : 'N', uplo = 'U';
    int lda = n > 1 ? n : 1, info, query = -1, liwork_answer;
    double lwork_answer;
    dsyevd_(&jobz, &uplo, &n, a, &lda, w, &lwork_answer, &query, &liwork_answer, &query, &info, 1, 1);
    if (info != 0) return info;
    int lwork = work_size(lwork_answer), liwork = liwork_answer < 1 ? 1 : liwork_answer;
    double *work = xmalloc(sizeof(double) * (size_t)lwork);
    int *iwork = xmalloc(sizeof(int) * (size_t)liwork);
    dsyevd_(&jobz, &uplo, &n, a, &lda, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work), free(iwork);
    if (info != 0 || !vectors) return info;
    /* column-major eigenvector k is row k here: transpose to columns */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double t = a[(size_t)i * n + j];
            a[(size_t)i * n + j] = a[(size_t)j * n + i];
            a[(size_t)j * n + i] = t;
        }
    return 0;
}

int lapack_cholesky_lower(int n, double *a)
{
    /* the lower triangle row-major is the upper column-major, and U^T U
       there is L L^T here */
    const char uplo = 'U';
    int lda = n > 1 ? n : 1, info;
    dpotrf_(&uplo, &n, a, &lda, &info, 1);
    return info;
}

int lapack_invert(int n, double *a, double *log_abs_det)
{
    /* the buffer read column-major is a^T, and inv(a^T) = inv(a)^T: the
       inverse comes back row-major with no transposes */
    int lda = n > 1 ? n : 1, info, query = -1;
    int *ipiv = xmalloc(sizeof(int) * (size_t)lda);
    dgetrf_(&n, &n, a, &lda, ipiv, &info);
    if (info == 0) {
        double logdet = 0, answer;
        for (int i = 0; i < n; i++) logdet += log(fabs(a[(size_t)i * n + i]));
        *log_abs_det = logdet;
        dgetri_(&n, a, &lda, ipiv, &answer, &query, &info);
        if (info == 0) {
            int lwork = work_size(answer);
            double *work = xmalloc(sizeof(double) * (size_t)lwork);
            dgetri_(&n, a, &lda, ipiv, work, &lwork, &info);
            free(work);
        }
    }
    free(ipiv);
    return info;
}

int lapack_orthogonal_from_qr(int n, double *a)
{
    int lda = n > 1 ? n : 1, info, query = -1;
    double *tau = xmalloc(sizeof(double) * (size_t)lda), qr_answer, q_answer;
    /* one workspace, the larger of the two routines' answers */
    dgeqrf_(&n, &n, a, &lda, tau, &qr_answer, &query, &info);
    if (info == 0) dorgqr_(&n, &n, &n, a, &lda, tau, &q_answer, &query, &info);
    if (info == 0) {
        int lwork = work_size(qr_answer > q_answer ? qr_answer : q_answer);
        double *work = xmalloc(sizeof(double) * (size_t)lwork);
        dgeqrf_(&n, &n, a, &lda, tau, work, &lwork, &info);
        if (info == 0) dorgqr_(&n, &n, &n, a, &lda, tau, work, &lwork, &info);
        free(work);
    }
    free(tau);
    return info;
}
