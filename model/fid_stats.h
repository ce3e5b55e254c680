/*
 * fid_stats.h: feature statistics for FID: the mean and covariance of a set
 * of feature vectors, computed in double, and their .npz files.
 *
 * Files follow pytorch-fid: an .npz with arrays 'mu' (dim) and 'sigma'
 * (dim, dim); its files hold f8 or f4 arrays and both are read. We write f8
 * and add 'n' (int64 scalar, the number of samples) so that a FID computed
 * from our statistics can state its N; pytorch-fid ignores the extra array.
 */
#ifndef DEEDIFF_FID_STATS_H
#define DEEDIFF_FID_STATS_H

#include <stdint.h>

typedef struct {
    int dim;
    int64_t n;        /* samples behind the statistics; 0 when unknown */
    double *mu;       /* (dim) */
    double *sigma;    /* (dim, dim) row-major, symmetric, covariance with N-1 */
} FidStats;

/* features is (n, dim) row-major float. mu = mean, sigma = (X-mu)^T (X-mu) / (n-1),
   accumulated in double over fixed 1024-row chunks (the result does not depend
   on the thread count). `name` names the features in errors. Refuses n < 2
   and non-finite features (-1 with err_msg()). */
int fid_stats_from_features(const char *name, const float *features, int64_t n, int dim,
                            FidStats *out);

/* Reads 'mu' and 'sigma' (and 'n' when present); checks shapes, finiteness,
   non-negative variances and symmetry (|s_ij - s_ji| <= 1e-5 * max diag), and
   stores the symmetrised matrix. */
int fid_stats_load(const char *path, FidStats *out);
/* Writes 'mu', 'sigma' (f8) and 'n' (when known) atomically. */
int fid_stats_save(const char *path, const FidStats *s);
void fid_stats_free(FidStats *s);

#endif
