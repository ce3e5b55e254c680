/*
 * op_coverage.h: which backend implements which op, read from the backends'
 * op tables themselves (for `deediff ops`), with no context and no GPU: a
 * table is a constant, and the CUDA table exists in every CUDA build.
 *
 * The list of entries is not written by hand: the Makefile generates it
 * from struct OpTable in kernels/op_table.h (every field after the memory
 * functions) and the op_<name>_backward functions of kernels/ops.h, so an op
 * added to the table appears in `deediff ops` with no other change.
 */
#ifndef DEEDIFF_OP_COVERAGE_H
#define DEEDIFF_OP_COVERAGE_H

#include <stddef.h>

#include "ops.h"

/* one op entry of struct OpTable: its field name and offset */
typedef struct {
    const char *name;  /* "linear_forward", "adamw_step", ... */
    size_t offset;
    int optional;      /* 1: a fused or overwriting form ops.c composes when NULL */
} OpEntry;

/* every op entry of struct OpTable in declaration order, then {NULL, 0, 0}
   (generated: $(BUILD)/gen/op_entries.c) */
extern const OpEntry op_entries[];

/* the <name> of every op_<name>_backward declared in kernels/ops.h, then NULL
   (generated); a name without a <name>_backward table entry is a backward
   kernels/ops.c builds from other ops (add's, from accumulate) */
extern const char *const op_backward_names[];

/* the table of backend b, or NULL when this build has none (CUDA without nvcc) */
const OpTable *op_backend_table(Backend b);

/* 1 when table t fills entry e, else 0 */
int op_entry_filled(const OpTable *t, const OpEntry *e);

/* the entry named name, or NULL */
const OpEntry *op_entry_find(const char *name);

#endif
