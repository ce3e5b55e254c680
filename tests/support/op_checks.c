/*
 * op_checks.c: the checks op tests share (see op_checks.h).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "float_buffers.h"
#include "op_checks.h"

void expect_close(const char *what, const float *got, const double *want, int64_t n, double tol)
{
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i])), "%s[%lld] = %.9g, want %.9g",
                  what, (long long)i, got[i], want[i]);
}

void expect_accumulates(const char *what, backward_into bw, void *user, int64_t n)
{
    float *fresh = fzeros(n), *pre = fvec(n, -2, 2, 99), *after = fvec(n, -2, 2, 99);
    bw(user, fresh);
    bw(user, after);
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabs(after[i] - (pre[i] + fresh[i])) <= 1e-5 * (1 + fabs(pre[i] + fresh[i])),
                  "%s[%lld]: %g, want %g + %g", what, (long long)i, after[i], pre[i], fresh[i]);
    free(fresh), free(pre), free(after);
}
