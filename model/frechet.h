/*
 * frechet.h: the Fréchet distance between two Gaussians, the number behind FID.
 *
 *   d^2 = |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2)
 *
 * computed in double with symmetric eigendecompositions only (no general
 * matrix square root, no complex arithmetic):
 *   S1 = V diag(l) V^T           (LAPACK dsyevd, with vectors)
 *   L  = V diag(sqrt(max(l, 0)))  so S1 = L L^T (tiny negative l clamped)
 *   M  = L^T S2 L                 symmetric PSD, same eigenvalues as S1 S2
 *   tr sqrt(S1 S2) = sum sqrt(max(eig(M), 0))   (dsyevd, values only)
 * S2's eigenvalues (values only) give its rank. Only the upper triangles of
 * S1 and S2 are read.
 *
 * Singular covariances: pytorch-fid adds eps = 1e-6 to the diagonal of both
 * covariances inside the square root when scipy's sqrtm of the product fails,
 * which happens when the product is singular. We mirror it: when S1 or S2 is
 * rank-deficient (eigenvalues <= dim * DBL_EPSILON * largest, the tolerance
 * of numpy.linalg.matrix_rank) the distance uses tr sqrt((S1+eps I)(S2+eps I))
 * with the plain traces, exactly as pytorch-fid's formula does, and the
 * result says so. The value without the offset is always returned as well:
 * our route is finite for singular inputs, so both can be shown.
 */
#ifndef DEEDIFF_FRECHET_H
#define DEEDIFF_FRECHET_H

#define FRECHET_EPS 1e-6

typedef struct {
    double distance;        /* d^2 as pytorch-fid defines it (offset when applied) */
    double distance_plain;  /* d^2 without any offset */
    double mean_term;       /* |mu1 - mu2|^2 */
    double trace1, trace2;  /* tr S1, tr S2 */
    double trace_sqrt;      /* tr sqrt(S1 S2) used in distance */
    int dim;
    int rank1, rank2;       /* numerical ranks of S1 and S2 */
    double min_eig1, max_eig1, min_eig2, max_eig2;  /* eigenvalue range, before clamping */
    int offset_applied;     /* 1 when eps I was added (S1 or S2 rank-deficient) */
    double offset;          /* FRECHET_EPS when applied, else 0 */
    double residual;        /* |sum eig(M) - tr(S1 S2)| / (|S1|_F |S2|_F): how much
                               clamping and rounding moved the product (<1e-10 is clean) */
    double min_eig_m_rel;   /* smallest eigenvalue of M / largest (negative ones clamped) */
} FrechetResult;

/* mu1, mu2 are (dim); sigma1, sigma2 are (dim, dim) row-major, symmetric.
   Returns 0, or -1 with err_msg() set ("sigma2: ...") when an input is not
   finite or not positive semidefinite (an eigenvalue below -1e-3 of the
   largest), or dim < 1. Prints nothing. */
int frechet_distance(int dim, const double *mu1, const double *sigma1,
                     const double *mu2, const double *sigma2, FrechetResult *out);

#endif
