/*
 * param_table.h: a model's parameters as a name table over one F32 buffer
 * (shared by U-ViT and the FD-FMNIST feature network).
 *
 * Every parameter has a state-dict name, a shape and an offset in floats
 * into the model's single parameter buffer; each starts on its own 64-byte
 * line, except inside a packed group (param_place_packed), whose tensors lie
 * back to back so that an op can read them as one. The same table serves the
 * weights, the gradients and any other buffer laid out alike (EMA,
 * optimizer moments).
 */
#ifndef DEEDIFF_PARAM_TABLE_H
#define DEEDIFF_PARAM_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/ops.h"
#include "safetensors.h"

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[4];   /* 0 beyond ndim */
    size_t offset;      /* in floats from the start of the parameter buffer */
    size_t numel;
} ParamInfo;

/* sets p's shape (ndim <= 4 dimensions) and numel and places it at *total
   floats; *total then moves past it, rounded up to 16 floats. The caller
   names p. */
void param_place(ParamInfo *p, int ndim, const int64_t *shape, size_t *total);

/* places n parameters of one shape back to back with no padding between
   them (the group starts on a 64-byte line; *total then moves past the
   group, rounded up to 16 floats), so that ops may read them as a single
   [n * shape[0], ...] tensor: the q, k and v of an attention block as one
   qkv projection. The caller names every p[i]. */
void param_place_packed(ParamInfo *p, int n, int ndim, const int64_t *shape, size_t *total);

/* p's F32 tensor inside buffer base */
Tensor param_view(const ParamInfo *p, const float *base);

/* adds the n parameters of table to w under prefix + name, their data at
   host + offset (host is a whole parameter buffer on the host) */
void param_table_write(StWriter *w, const ParamInfo *table, int n, const char *prefix,
                       const float *host);

/* reads prefix + name of every parameter of table (any dtype st_read_f32
   converts, shape checked, every value finite) into dst + offset (a backend
   buffer of the table's layout); -1 + err_set naming the file and tensor */
int param_table_read(const SafeTensors *st, const ParamInfo *table, int n, const char *prefix, Ctx *ctx,
                     float *dst);

#endif
