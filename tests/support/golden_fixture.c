/*
 * golden_fixture.c: the reference fixtures' io files in golden tests (see
 * golden_fixture.h).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden_fixture.h"
#include "gradcheck.h"
#include "kernels/errors.h"

void fixture_paths(const char *kind, const char *name, char model_path[FIXTURE_PATH_MAX],
                   char io_path[FIXTURE_PATH_MAX])
{
    snprintf(model_path, FIXTURE_PATH_MAX, "tests/fixtures/%s_%s.model.safetensors", kind, name);
    snprintf(io_path, FIXTURE_PATH_MAX, "tests/fixtures/%s_%s.io.safetensors", kind, name);
}

float *fixture_f32(const SafeTensors *io, const char *name, int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *dst = xmalloc((size_t)n * sizeof(float));
    cr_assert_eq(st_read_f32(io, name, dst, ndim, shape), 0, "%s", err_msg());
    return dst;
}

int fixture_grad_count(const SafeTensors *io)
{
    int n = 0;
    for (int k = 0; k < io->count; k++) n += strncmp(io->entries[k].name, "grad.", 5) == 0;
    return n;
}

double fixture_worst_grad(const SafeTensors *io, const ParamInfo *params, int n, const float *grads,
                          const char **worst_name)
{
    double worst = -1;
    *worst_name = "";
    for (int i = 0; i < n; i++) {
        const ParamInfo *p = &params[i];
        char key[160];
        snprintf(key, sizeof key, "grad.%s", p->name);
        float *want = fixture_f32(io, key, p->ndim, p->shape);
        double err = rel_l2(grads + p->offset, want, (int64_t)p->numel);
        if (!isnan(worst) && (isnan(err) || err > worst)) {
            worst = err;
            *worst_name = p->name;
        }
        free(want);
    }
    return worst;
}
