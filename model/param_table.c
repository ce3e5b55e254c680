/*
 * param_table.c: placing parameters in one buffer, their tensor views, and
 * writing a table to safetensors and reading it back (see param_table.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../kernels/errors.h"
#include "param_table.h"

void param_place(ParamInfo *p, int ndim, const int64_t *shape, size_t *total)
{
    CHECK(ndim >= 1 && ndim <= 4, "param_place: %s: %d dimensions", p->name, ndim);
    p->ndim = ndim;
    p->numel = 1;
    for (int k = 0; k < 4; k++) {
        p->shape[k] = k < ndim ? shape[k] : 0;
        if (k < ndim) p->numel *= (size_t)shape[k];
    }
    p->offset = *total;
    *total += (p->numel + 15) & ~(size_t)15;  /* each tensor on its own 64-byte line */
}

void param_place_packed(ParamInfo *p, int n, int ndim, const int64_t *shape, size_t *total)
{
    CHECK(n >= 1, "param_place_packed: %d tensors", n);
    size_t start = *total, at = start;
    for (int i = 0; i < n; i++) {
        param_place(&p[i], ndim, shape, &at);
        p[i].offset = start + (size_t)i * p[i].numel;
    }
    *total = start + ((n * p[0].numel + 15) & ~(size_t)15);
}

Tensor param_view(const ParamInfo *p, const float *base)
{
    Tensor t = {(void *)(base + p->offset), DT_F32, p->ndim, {0}};
    for (int k = 0; k < p->ndim; k++) t.shape[k] = p->shape[k];
    return t;
}

void param_table_write(StWriter *w, const ParamInfo *table, int n, const char *prefix,
                       const float *host)
{
    char name[256];
    for (int i = 0; i < n; i++) {
        const ParamInfo *p = &table[i];
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        st_writer_add(w, name, DT_F32, p->ndim, p->shape, host + p->offset);
    }
}

int param_table_read(const SafeTensors *st, const ParamInfo *table, int n, const char *prefix, Ctx *ctx,
                     float *dst)
{
    size_t biggest = 1;
    for (int i = 0; i < n; i++)
        if (table[i].numel > biggest) biggest = table[i].numel;
    float *host = xmalloc(biggest * sizeof(float));
    char name[256];
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const ParamInfo *p = &table[i];
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        rc = st_read_f32(st, name, host, p->ndim, p->shape);
        for (size_t k = 0; rc == 0 && k < p->numel; k++)
            if (!isfinite(host[k])) rc = err_set("%s: tensor '%s': element %zu is not finite", st->path, name, k);
        if (rc == 0) ctx_upload(ctx, dst + p->offset, host, p->numel * sizeof(float));
    }
    free(host);
    return rc;
}
