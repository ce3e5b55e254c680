/*
 * row_list.h: batch rows on the context's backend, as op_rows_copy reads
 * them (I64), made from the host int lists the early-exit code keeps: one
 * small upload a list, then one op a buffer moved, however many rows.
 */
#ifndef DEEDIFF_ROW_LIST_H
#define DEEDIFF_ROW_LIST_H

#include "../kernels/ops.h"

typedef struct {
    int64_t *host;  /* host [cap], staging */
    int64_t *dev;   /* backend [cap] */
    int cap;
} RowList;

void row_list_create(RowList *l, Ctx *ctx, int cap);
void row_list_destroy(RowList *l, Ctx *ctx);

/* the backend tensor [n] of rows[k] (of map[rows[k]] when map is given),
   valid until the next set */
Tensor row_list_set(RowList *l, Ctx *ctx, const int *rows, const int *map, int n);

/* 1 when rows[k] == k for every k < n: a gather or compaction by them would
   move nothing (the rows that go are all past the ones that stay) */
int rows_in_place(const int *rows, int n);

#endif
