/*
 * tensor.h: the small tensor view every op takes.
 *
 * A Tensor is a view, not an owner: a data pointer (host memory on the CPU
 * backend, device memory on the CUDA backend), a dtype and a row-major shape.
 * Views are passed by value. Model code builds views and hands them to ops;
 * it never dereferences device data. All views are contiguous.
 */
#ifndef DEEDIFF_TENSOR_H
#define DEEDIFF_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define TENSOR_MAX_DIMS 6

typedef enum {
    DT_F32 = 0,
    DT_BF16,
    DT_F16,
    DT_I64,
    DT_I32,
    DT_COUNT
} DType;

typedef struct {
    void *data;
    DType dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
} Tensor;

/* bytes per element of a dtype */
size_t dtype_size(DType dt);
/* "F32", "BF16", ... (safetensors spelling) */
const char *dtype_name(DType dt);
/* parse a safetensors dtype name; returns -1 when unknown */
int dtype_from_name(const char *name, DType *out);

/* number of elements (1 for a 0-d tensor) */
int64_t tensor_numel(Tensor t);
size_t tensor_bytes(Tensor t);
/* product of all dimensions but the first (one item's elements of a [B, ...]
   tensor: an image, or an early-exit row); 1 for a 1-d tensor */
int64_t tensor_item_numel(Tensor t);
/* product of all dimensions but the last (the "rows" of a [..., C] tensor) */
int64_t tensor_rows(Tensor t);
/* size of the last dimension */
int64_t tensor_cols(Tensor t);

/* view constructors; unused trailing dims are ignored */
Tensor tensor1(void *data, DType dt, int64_t d0);
Tensor tensor2(void *data, DType dt, int64_t d0, int64_t d1);
Tensor tensor3(void *data, DType dt, int64_t d0, int64_t d1, int64_t d2);
Tensor tensor4(void *data, DType dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
/* a view with no data: an optional argument that is absent (e.g. no bias) */
Tensor tensor_none(void);
static inline int tensor_present(Tensor t) { return t.data != NULL; }

/* F32 shortcuts, the common case on the CPU reference */
static inline float *tensor_f32(Tensor t) { return (float *)t.data; }

/* writes "[2, 3, 4]" into buf; returns buf */
char *tensor_shape_str(Tensor t, char *buf, size_t n);

#endif
