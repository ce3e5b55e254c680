/*
 * row_list.c: host row lists uploaded as I64 tensors (row_list.h).
 */
#include <stdlib.h>

#include "../kernels/errors.h"
#include "row_list.h"

void row_list_create(RowList *l, Ctx *ctx, int cap)
{
    l->cap = cap > 0 ? cap : 1;
    l->host = xmalloc(sizeof(int64_t) * (size_t)l->cap);
    l->dev = ctx_alloc(ctx, sizeof(int64_t) * (size_t)l->cap);
}

void row_list_destroy(RowList *l, Ctx *ctx)
{
    free(l->host);
    ctx_free(ctx, l->dev);
    *l = (RowList){0};
}

int rows_in_place(const int *rows, int n)
{
    for (int k = 0; k < n; k++)
        if (rows[k] != k) return 0;
    return 1;
}

Tensor row_list_set(RowList *l, Ctx *ctx, const int *rows, const int *map, int n)
{
    CHECK(n >= 0 && n <= l->cap, "row_list_set: %d rows for a list of %d", n, l->cap);
    for (int k = 0; k < n; k++) l->host[k] = map ? map[rows[k]] : rows[k];
    /* a pageable upload is staged before it returns, so host may change after */
    ctx_upload(ctx, l->dev, l->host, sizeof(int64_t) * (size_t)n);
    return tensor1(l->dev, DT_I64, n);
}
