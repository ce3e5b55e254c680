/*
 * lapack.h: the few LAPACK routines deediff uses, on row-major matrices,
 * from OpenBLAS's own LAPACK (libopenblas exports the Fortran entry points).
 *
 * No LAPACKE and no reference liblapack: one library fewer to install and,
 * for the GPU machine, to carry (kernels/cuda/NOTES.md, "The device run").
 * A row-major (n, n) buffer read as column-major is the transpose, so each
 * routine below either works on symmetric input, where the two are the same
 * matrix (the upper triangle row-major is the lower one column-major), or
 * says what it computes of the transpose. Every function returns LAPACK's
 * info: 0 on success, -i when argument i is invalid, > 0 a numerical failure.
 */
#ifndef DEEDIFF_LAPACK_H
#define DEEDIFF_LAPACK_H

/* eigenvalues (ascending) in w[n] of the symmetric a (n, n), its upper
   triangle read (dsyevd); a is destroyed, and with vectors column k of a
   becomes eigenvector k */
int lapack_eig_sym(int n, double *a, double *w, int vectors);

/* a (n, n), symmetric positive definite, lower triangle read: that
   triangle becomes L with a = L L^T (dpotrf); the upper is left as it was */
int lapack_cholesky_lower(int n, double *a);

/* a (n, n) replaced by its inverse (dgetrf, dgetri); *log_abs_det gets
   log |det a| */
int lapack_invert(int n, double *a, double *log_abs_det);

/* a (n, n) replaced by an orthogonal matrix: the transpose of Q in the QR
   factorisation a^T = Q R (dgeqrf, dorgqr) */
int lapack_orthogonal_from_qr(int n, double *a);

#endif
