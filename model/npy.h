/*
 * npy.h: NumPy's .npy and .npz files, read and written.
 *
 * .npy: the magic "\x93NUMPY", a version byte pair (1.0: 2-byte header
 * length; 2.0 and 3.0: 4-byte length, 3.0 allows UTF-8), then a Python dict
 * literal {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded
 * with spaces to a 64-byte boundary and ended by '\n', then the raw
 * row-major data. Every malformation is bad input with one line that names
 * the file and the field: "x.npy: header: 'shape': expected a tuple".
 *
 * .npz: a zip archive whose members are .npy files named "<array>.npy",
 * stored (np.savez) or deflated (np.savez_compressed); read through libzip.
 * Members are looked up by name with or without the ".npy" suffix.
 *
 * Supported descr: little-endian ('<') or byte-order-free ('|') bool b1,
 * signed i1 i2 i4 i8, unsigned u1 u2 u4 u8, float f2 f4 f8. Fortran order,
 * big-endian data and structured dtypes are refused with a clear message.
 */
#ifndef DEEDIFF_NPY_H
#define DEEDIFF_NPY_H

#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_DIMS 8

typedef struct {
    char kind;                      /* 'f' float, 'i' signed, 'u' unsigned, 'b' bool */
    int itemsize;                   /* bytes per element: 1, 2, 4 or 8 */
    int ndim;                       /* 0 for a scalar array */
    int64_t shape[NPY_MAX_DIMS];
    void *data;                     /* row-major, little-endian; owned when read */
    size_t nbytes;                  /* numel * itemsize */
} NpyArray;

/* a view of caller-owned data, for writing (data is not copied or freed) */
NpyArray npy_view(char kind, int itemsize, int ndim, const int64_t *shape, const void *data);
/* number of elements (1 for a 0-d array) */
int64_t npy_numel(const NpyArray *a);
/* "<f4", "|u1", ... */
const char *npy_descr(const NpyArray *a, char buf[8]);
/* "[3, 4]" into buf; returns buf */
char *npy_shape_str(const NpyArray *a, char *buf, size_t n);
/* frees what a reader allocated and zeroes the struct */
void npy_free(NpyArray *a);

/* ---- reading -------------------------------------------------------------- */

/* Parses a whole .npy image held in memory; `name` only names it in errors.
   The data is copied into out->data. -1 with err_msg() on bad input. */
int npy_parse(const char *name, const uint8_t *bytes, size_t size, NpyArray *out);
/* Reads a .npy file (data read straight into its buffer, no second copy). */
int npy_read_file(const char *path, NpyArray *out);

/* Converts any numeric array to double / float (exact for every supported
   type into double; f8 and 64-bit integers round into float). */
void npy_to_f64(const NpyArray *a, double *dst);
void npy_to_f32(const NpyArray *a, float *dst);

/* An open .npz archive (reads several members with one open). */
typedef struct Npz Npz;
int npz_open(const char *path, Npz **out);
void npz_close(Npz *z);
/* number of members, and the array name of member i ("mu" for "mu.npy") */
int npz_count(const Npz *z);
const char *npz_name(const Npz *z, int i);
/* 1 if the archive holds array `name` ("mu" or "mu.npy"), else 0 */
int npz_has(const Npz *z, const char *name);
/* Reads member `name`; errors read "path: member 'mu': ...". */
int npz_read(Npz *z, const char *name, NpyArray *out);
/* open + read one member + close */
int npz_read_array(const char *path, const char *name, NpyArray *out);

/* ---- writing -------------------------------------------------------------- */

/* The .npy image of a: header (version 1.0, or 2.0 when the header needs it,
   padded to 64 bytes as NumPy does) followed by the data. *size is set;
   the caller frees the result. */
uint8_t *npy_encode(const NpyArray *a, size_t *size);
/* Writes a .npy file atomically (path.tmp-<pid>, fsync, rename). */
int npy_write_file(const char *path, const NpyArray *a);
/* Writes an .npz of n stored members "<names[i]>.npy" atomically: the zip
   is written to a temporary path in the same folder, fsynced and renamed.
   np.load() reads it. */
int npz_write(const char *path, int n, const char *const *names, const NpyArray *arrays);

#endif
