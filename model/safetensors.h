/*
 * safetensors.h: read and write safetensors files.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON, then the
 * data. The JSON maps each tensor name to {"dtype", "shape", "data_offsets":
 * [begin, end]} (offsets relative to the data start) and may hold
 * "__metadata__": {string: string}. Validation follows the format's rules:
 * offsets contiguous, non-overlapping, covering the whole data buffer,
 * end - begin = numel * dtype size, no duplicate names.
 *
 * Reading: F32, F16, BF16, I64, I32. Writing: any of these (the caller's
 * bytes as they are); tensors go in name order, metadata keys sorted, the
 * header padded with spaces to a multiple of 8 bytes.
 * Every error message starts with the file name and names the tensor or
 * field: "m.safetensors: tensor 'pos_embed': shape [1,65,128], expected [1,66,128]".
 */
#ifndef DEEDIFF_SAFETENSORS_H
#define DEEDIFF_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/tensor.h"

typedef struct {
    char *name;
    DType dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    size_t begin, end;        /* byte offsets into the data section */
} StEntry;

typedef struct {
    char *path;               /* for error messages */
    uint8_t *bytes;           /* the whole file */
    size_t size;
    size_t data_start;        /* 8 + N */
    int count;
    StEntry *entries;
    int meta_count;
    char **meta_keys, **meta_values;  /* sorted by key */
    int owned;                /* st_close frees bytes */
} SafeTensors;

/* reads and validates a whole file; -1 with err_msg() set on bad input */
int st_open(SafeTensors *st, const char *path);
/* validates an in-memory file; `path` only names it in errors. Takes a copy
   of nothing: `bytes` must outlive st unless owned is true (then st frees it,
   also when parsing fails). On failure st is left empty, and st_close on it
   is harmless. Entries are sorted by name. */
int st_parse(SafeTensors *st, const char *path, uint8_t *bytes, size_t size,
             int owned);
void st_close(SafeTensors *st);

const StEntry *st_find(const SafeTensors *st, const char *name);
const void *st_data(const SafeTensors *st, const StEntry *e);
/* the metadata value for key, or NULL */
const char *st_metadata(const SafeTensors *st, const char *key);

/* Reads tensor `name` as F32 into dst, converting F16/BF16; checks the
   shape against shape[ndim] (pass ndim < 0 to skip the shape check; then
   dst must hold the tensor's numel). Errors name the file and the tensor:
   missing, wrong dtype (integer), wrong shape. */
int st_read_f32(const SafeTensors *st, const char *name, float *dst, int ndim,
                const int64_t *shape);
/* Reads an integer tensor (I64 or I32) as int64 into dst, same checks. */
int st_read_i64(const SafeTensors *st, const char *name, int64_t *dst,
                int ndim, const int64_t *shape);

/* ---- writing ------------------------------------------------------------ */

typedef struct StWriter StWriter;

StWriter *st_writer_new(void);
/* adds a tensor; data is copied, so the caller may reuse its buffer. A name
   added twice is a bug (FATAL at save) */
void st_writer_add(StWriter *w, const char *name, DType dtype, int ndim,
                   const int64_t *shape, const void *data);
/* sets a metadata pair; the last value given for a key wins */
void st_writer_meta(StWriter *w, const char *key, const char *value);
/* writes atomically: path.tmp-<pid>, fsync, rename; -1 with err_msg() set
   (the destination is untouched on failure) */
int st_writer_save(StWriter *w, const char *path);
void st_writer_free(StWriter *w);

#endif
