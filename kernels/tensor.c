/*
 * tensor.c: dtype facts and tensor-view helpers.
 */
#include <stdio.h>
#include <string.h>

#include "tensor.h"

static const struct { const char *name; size_t size; } dtype_info[DT_COUNT] = {
    [DT_F32] = {"F32", 4},  [DT_BF16] = {"BF16", 2}, [DT_F16] = {"F16", 2},
    [DT_I64] = {"I64", 8},  [DT_I32] = {"I32", 4},
};

size_t dtype_size(DType dt) { return (unsigned)dt < DT_COUNT ? dtype_info[dt].size : 0; }
const char *dtype_name(DType dt) { return (unsigned)dt < DT_COUNT ? dtype_info[dt].name : "?"; }

int dtype_from_name(const char *name, DType *out)
{
    for (int i = 0; i < DT_COUNT; i++)
        if (strcmp(name, dtype_info[i].name) == 0) { *out = (DType)i; return 0; }
    return -1;
}

int64_t tensor_numel(Tensor t)
{
    int64_t n = 1;
    for (int i = 0; i < t.ndim; i++) n *= t.shape[i];
    return n;
}
int64_t tensor_item_numel(Tensor t)
{
    int64_t n = 1;
    for (int i = 1; i < t.ndim; i++) n *= t.shape[i];
    return n;
}
size_t tensor_bytes(Tensor t) { return (size_t)tensor_numel(t) * dtype_size(t.dtype); }
int64_t tensor_cols(Tensor t) { return t.ndim ? t.shape[t.ndim - 1] : 1; }
int64_t tensor_rows(Tensor t)
{
    int64_t n = 1;
    for (int i = 0; i + 1 < t.ndim; i++) n *= t.shape[i];
    return n;
}

static Tensor make(void *data, DType dt, int nd, int64_t a, int64_t b, int64_t c, int64_t d)
{
    Tensor t = {data, dt, nd, {a, b, c, d, 0, 0}};
    return t;
}
Tensor tensor1(void *p, DType dt, int64_t a) { return make(p, dt, 1, a, 0, 0, 0); }
Tensor tensor2(void *p, DType dt, int64_t a, int64_t b) { return make(p, dt, 2, a, b, 0, 0); }
Tensor tensor3(void *p, DType dt, int64_t a, int64_t b, int64_t c) { return make(p, dt, 3, a, b, c, 0); }
Tensor tensor4(void *p, DType dt, int64_t a, int64_t b, int64_t c, int64_t d)
{
    return make(p, dt, 4, a, b, c, d);
}
Tensor tensor_none(void) { return make(NULL, DT_F32, 0, 0, 0, 0, 0); }

char *tensor_shape_str(Tensor t, char *buf, size_t n)
{
    size_t used = 0;
    used += (size_t)snprintf(buf + used, n - used, "[");
    for (int i = 0; i < t.ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)t.shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}
