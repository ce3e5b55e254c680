/*
 * npy.c: NumPy .npy and .npz files (see npy.h for the format).
 *
 * One reader serves files, memory and zip members: it pulls bytes through a
 * small read callback and knows the total size up front, so the header's
 * claims (shape x itemsize) are checked against the real size before any
 * data buffer is allocated, and the data is read straight into its buffer.
 * A zip member's size is the entry's own claim, so npz_read first checks it
 * against the member's compressed size.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "../kernels/errors.h"
#include "npy.h"

static const uint8_t NPY_MAGIC[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
#define NPY_MAX_HEADER (1u << 20)   /* NumPy itself refuses headers over 10 kB by default */

/* ---- small helpers ------------------------------------------------------------ */

NpyArray npy_view(char kind, int itemsize, int ndim, const int64_t *shape, const void *data)
{
    CHECK(ndim >= 0 && ndim <= NPY_MAX_DIMS, "npy_view: ndim %d out of range", ndim);
    NpyArray a = {.kind = kind, .itemsize = itemsize, .ndim = ndim, .data = (void *)data};
    for (int i = 0; i < ndim; i++) a.shape[i] = shape[i];
    a.nbytes = (size_t)npy_numel(&a) * (size_t)itemsize;
    return a;
}

int64_t npy_numel(const NpyArray *a)
{
    int64_t n = 1;
    for (int i = 0; i < a->ndim; i++) n *= a->shape[i];
    return n;
}

const char *npy_descr(const NpyArray *a, char buf[8])
{
    snprintf(buf, 8, "%c%c%d", a->itemsize == 1 ? '|' : '<', a->kind, a->itemsize);
    return buf;
}

char *npy_shape_str(const NpyArray *a, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < a->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i ? ", " : "", a->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

void npy_free(NpyArray *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}

static int descr_valid(char kind, int itemsize)
{
    switch (kind) {
    case 'b': return itemsize == 1;
    case 'i': case 'u': return itemsize == 1 || itemsize == 2 || itemsize == 4 || itemsize == 8;
    case 'f': return itemsize == 2 || itemsize == 4 || itemsize == 8;
    default: return 0;
    }
}

/* ---- the header dict ------------------------------------------------------------ */

/* A cursor over the header text (NUL-terminated copy). */
typedef struct {
    const char *name;   /* for errors */
    const char *s;
    size_t pos;
} HeaderCursor;

static void skip_ws(HeaderCursor *c)
{
    while (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' || c->s[c->pos] == '\n' || c->s[c->pos] == '\r')
        c->pos++;
}

static int expect_char(HeaderCursor *c, char ch, const char *where)
{
    skip_ws(c);
    if (c->s[c->pos] != ch)
        return err_set("%s: header: expected '%c' %s at offset %zu", c->name, ch, where, c->pos);
    c->pos++;
    return 0;
}

/* a Python string literal in single or double quotes, without escapes */
static int parse_str(HeaderCursor *c, char *dst, size_t cap, const char *what)
{
    skip_ws(c);
    char q = c->s[c->pos];
    if (q != '\'' && q != '"')
        return err_set("%s: header: %s: expected a quoted string at offset %zu", c->name, what, c->pos);
    size_t start = ++c->pos;
    while (c->s[c->pos] && c->s[c->pos] != q) c->pos++;
    if (!c->s[c->pos]) return err_set("%s: header: %s: unterminated string", c->name, what);
    size_t len = c->pos - start;
    c->pos++;
    if (len >= cap) return err_set("%s: header: %s: string too long", c->name, what);
    memcpy(dst, c->s + start, len);
    dst[len] = 0;
    return 0;
}

static int parse_descr(HeaderCursor *c, NpyArray *out)
{
    skip_ws(c);
    if (c->s[c->pos] == '[')
        return err_set("%s: header: 'descr': structured dtypes are not supported", c->name);
    char d[32];
    if (parse_str(c, d, sizeof d, "'descr'")) return -1;
    char order = d[0], kind = d[1];
    char *end;
    long size = (d[0] && d[1] && d[2] >= '1' && d[2] <= '9') ? strtol(d + 2, &end, 10) : 0;
    if (!size || *end || !strchr("<>|=", order) || !descr_valid(kind, (int)size))
        return err_set("%s: header: 'descr': unsupported dtype '%s' (expected one of b1 i1 i2 i4 i8 "
                       "u1 u2 u4 u8 f2 f4 f8, little-endian)", c->name, d);
    if (order == '>' && size > 1)
        return err_set("%s: header: 'descr': big-endian dtype '%s' is not supported", c->name, d);
    out->kind = kind;
    out->itemsize = (int)size;
    return 0;
}

static int parse_bool(HeaderCursor *c, int *v, const char *what)
{
    skip_ws(c);
    if (!strncmp(c->s + c->pos, "True", 4)) { *v = 1; c->pos += 4; return 0; }
    if (!strncmp(c->s + c->pos, "False", 5)) { *v = 0; c->pos += 5; return 0; }
    return err_set("%s: header: %s: expected True or False at offset %zu", c->name, what, c->pos);
}

/* (), (5,), (3, 4), (3L, 4L) */
static int parse_shape(HeaderCursor *c, NpyArray *out)
{
    if (expect_char(c, '(', "to open 'shape' (a tuple)")) return -1;
    int n = 0, trailing_comma = 0;
    for (;;) {
        skip_ws(c);
        if (c->s[c->pos] == ')') { c->pos++; break; }
        if (n > 0 && !trailing_comma)
            return err_set("%s: header: 'shape': expected ',' or ')' at offset %zu", c->name, c->pos);
        const char *p = c->s + c->pos;
        if (*p < '0' || *p > '9')
            return err_set("%s: header: 'shape': expected a non-negative integer at offset %zu", c->name, c->pos);
        errno = 0;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || v > (unsigned long long)INT64_MAX)
            return err_set("%s: header: 'shape': dimension too large", c->name);
        if (n >= NPY_MAX_DIMS)
            return err_set("%s: header: 'shape': more than %d dimensions", c->name, NPY_MAX_DIMS);
        out->shape[n++] = (int64_t)v;
        c->pos += (size_t)(end - p);
        if (c->s[c->pos] == 'L') c->pos++;   /* Python 2 long */
        skip_ws(c);
        trailing_comma = 0;
        if (c->s[c->pos] == ',') { c->pos++; trailing_comma = 1; }
    }
    if (n == 1 && !trailing_comma)
        return err_set("%s: header: 'shape': (%" PRId64 ") is not a tuple", c->name, out->shape[0]);
    out->ndim = n;
    return 0;
}

/* the dict must hold exactly 'descr', 'fortran_order' and 'shape', as NumPy requires */
static int parse_header(const char *name, const char *text, NpyArray *out)
{
    HeaderCursor c = {name, text, 0};
    skip_ws(&c);
    if (text[c.pos] != '{') return err_set("%s: header: not a Python dict (starts with '%.12s')", name, text + c.pos);
    c.pos++;
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
    for (;;) {
        skip_ws(&c);
        if (text[c.pos] == '}') { c.pos++; break; }
        char key[32];
        if (parse_str(&c, key, sizeof key, "key")) return -1;
        if (expect_char(&c, ':', "after a key")) return -1;
        int *seen = !strcmp(key, "descr") ? &have_descr : !strcmp(key, "fortran_order") ? &have_order
                  : !strcmp(key, "shape") ? &have_shape : NULL;
        if (seen && (*seen)++) return err_set("%s: header: '%s' given twice", name, key);
        if (seen == &have_descr) {
            if (parse_descr(&c, out)) return -1;
        } else if (seen == &have_order) {
            if (parse_bool(&c, &fortran, "'fortran_order'")) return -1;
        } else if (seen == &have_shape) {
            if (parse_shape(&c, out)) return -1;
        } else {
            return err_set("%s: header: unexpected key '%s' (a .npy header holds descr, fortran_order, shape)", name, key);
        }
        skip_ws(&c);
        if (text[c.pos] == ',') { c.pos++; continue; }
        if (text[c.pos] == '}') { c.pos++; break; }
        return err_set("%s: header: expected ',' or '}' at offset %zu", name, c.pos);
    }
    skip_ws(&c);
    if (text[c.pos]) return err_set("%s: header: unexpected text after the dict at offset %zu", name, c.pos);
    if (!have_descr) return err_set("%s: header: 'descr' missing", name);
    if (!have_order) return err_set("%s: header: 'fortran_order' missing", name);
    if (!have_shape) return err_set("%s: header: 'shape' missing", name);
    if (fortran)
        return err_set("%s: header: 'fortran_order': True is not supported (save a C-ordered array, np.ascontiguousarray)", name);
    return 0;
}

/* ---- the reader --------------------------------------------------------------- */

/* reads up to n bytes; returns the count read (short at the end), or -1
   with err_msg() set on an I/O error */
typedef int64_t (*ReadFn)(void *ctx, void *buf, size_t n);

static int read_exact(const char *name, ReadFn fn, void *ctx, void *buf, size_t n, const char *what)
{
    int64_t got = fn(ctx, buf, n);
    if (got < 0) return -1;
    if ((size_t)got != n) return err_set("%s: %s: truncated (read %" PRId64 " of %zu bytes)", name, what, got, n);
    return 0;
}

/* total is the exact size of the .npy image */
static int read_npy(const char *name, ReadFn fn, void *ctx, uint64_t total, NpyArray *out)
{
    memset(out, 0, sizeof *out);
    uint8_t pre[12];
    if (total < 10) return err_set("%s: magic: truncated file (%" PRIu64 " bytes)", name, total);
    if (read_exact(name, fn, ctx, pre, 8, "magic")) return -1;
    if (memcmp(pre, NPY_MAGIC, 6)) return err_set("%s: magic: not a .npy file (no \\x93NUMPY)", name);
    int major = pre[6], minor = pre[7];
    size_t prefix;
    uint32_t hlen;
    if (major == 1) {
        if (read_exact(name, fn, ctx, pre + 8, 2, "header length")) return -1;
        hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
        prefix = 10;
    } else if (major == 2 || major == 3) {
        if (total < 12) return err_set("%s: header length: truncated file", name);
        if (read_exact(name, fn, ctx, pre + 8, 4, "header length")) return -1;
        hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
        prefix = 12;
    } else {
        return err_set("%s: version: %d.%d not supported (1.0, 2.0, 3.0)", name, major, minor);
    }
    if (hlen > NPY_MAX_HEADER) return err_set("%s: header length: %u bytes is implausible", name, hlen);
    if (prefix + hlen > total)
        return err_set("%s: header: truncated (header claims %u bytes, file holds %" PRIu64 ")", name, hlen, total - prefix);
    char *text = xmalloc(hlen + 1);
    if (read_exact(name, fn, ctx, text, hlen, "header")) { free(text); return -1; }
    text[hlen] = 0;
    if (strlen(text) != hlen) { free(text); return err_set("%s: header: contains a NUL byte", name); }
    int rc = parse_header(name, text, out);
    free(text);
    if (rc) return -1;

    /* numel * itemsize, without overflow */
    uint64_t nbytes = (uint64_t)out->itemsize;
    for (int i = 0; i < out->ndim; i++) {
        uint64_t d = (uint64_t)out->shape[i];
        if (d && nbytes > UINT64_MAX / d) return err_set("%s: shape: element count overflows", name);
        nbytes *= d;
    }
    uint64_t have = total - prefix - hlen;
    if (nbytes != have) {
        char sh[160], ds[8];
        return err_set("%s: data: shape %s of %s needs %" PRIu64 " bytes, the file holds %" PRIu64 "%s",
                       name, npy_shape_str(out, sh, sizeof sh), npy_descr(out, ds), nbytes, have,
                       nbytes > have ? " (truncated)" : "");
    }
    out->nbytes = (size_t)nbytes;
    out->data = xmalloc(out->nbytes);
    if (read_exact(name, fn, ctx, out->data, out->nbytes, "data")) { npy_free(out); return -1; }
    return 0;
}

typedef struct { const uint8_t *p; size_t left; } MemCtx;

static int64_t mem_read(void *ctx, void *buf, size_t n)
{
    MemCtx *m = ctx;
    if (n > m->left) n = m->left;
    memcpy(buf, m->p, n);
    m->p += n;
    m->left -= n;
    return (int64_t)n;
}

int npy_parse(const char *name, const uint8_t *bytes, size_t size, NpyArray *out)
{
    MemCtx m = {bytes, size};
    return read_npy(name, mem_read, &m, size, out);
}

typedef struct { FILE *f; const char *name; } FileCtx;

static int64_t file_read(void *ctx, void *buf, size_t n)
{
    FileCtx *fc = ctx;
    size_t got = fread(buf, 1, n, fc->f);
    if (got < n && ferror(fc->f)) return err_set("%s: read error: %s", fc->name, strerror(errno));
    return (int64_t)got;
}

int npy_read_file(const char *path, NpyArray *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return err_set("%s: not a regular file", path);
    }
    FileCtx fc = {f, path};
    int rc = read_npy(path, file_read, &fc, (uint64_t)st.st_size, out);
    fclose(f);
    return rc;
}

/* ---- conversion ----------------------------------------------------------------- */

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | mant << 13;                /* inf / nan */
    } else if (exp) {
        bits = sign | (exp + 112) << 23 | mant << 13;           /* normal */
    } else {                                                    /* zero / subnormal */
        float v = (float)mant * (1.0f / 16777216.0f);           /* mant * 2^-24 */
        return sign ? -v : v;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* element i of a as double (every supported type is exact in double except
   64-bit integers above 2^53, which round) */
static inline double elem_f64(const NpyArray *a, int64_t i)
{
    const uint8_t *p = (const uint8_t *)a->data + (size_t)i * (size_t)a->itemsize;
    switch (a->kind) {
    case 'f':
        if (a->itemsize == 8) { double v; memcpy(&v, p, 8); return v; }
        if (a->itemsize == 4) { float v; memcpy(&v, p, 4); return v; }
        { uint16_t h; memcpy(&h, p, 2); return half_to_float(h); }
    case 'i':
        switch (a->itemsize) {
        case 1: return (int8_t)p[0];
        case 2: { int16_t v; memcpy(&v, p, 2); return v; }
        case 4: { int32_t v; memcpy(&v, p, 4); return v; }
        default: { int64_t v; memcpy(&v, p, 8); return (double)v; }
        }
    case 'u': case 'b':
        switch (a->itemsize) {
        case 1: return p[0];
        case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
        case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
        default: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
        }
    }
    FATAL("npy: unknown kind '%c'", a->kind);
}

void npy_to_f64(const NpyArray *a, double *dst)
{
    int64_t n = npy_numel(a);
    if (a->kind == 'f' && a->itemsize == 8) { memcpy(dst, a->data, (size_t)n * 8); return; }
    for (int64_t i = 0; i < n; i++) dst[i] = elem_f64(a, i);
}

void npy_to_f32(const NpyArray *a, float *dst)
{
    int64_t n = npy_numel(a);
    if (a->kind == 'f' && a->itemsize == 4) { memcpy(dst, a->data, (size_t)n * 4); return; }
    for (int64_t i = 0; i < n; i++) dst[i] = (float)elem_f64(a, i);
}

/* ---- .npz ------------------------------------------------------------------------ */

struct Npz {
    zip_t *zip;
    char *path;
    int count;
    char **names;      /* member names without ".npy" */
    zip_uint64_t *index;
};

static const char *zip_strerror_code(int code, char *buf, size_t n)
{
    zip_error_t e;
    zip_error_init_with_code(&e, code);
    snprintf(buf, n, "%s", zip_error_strerror(&e));
    zip_error_fini(&e);
    return buf;
}

int npz_open(const char *path, Npz **out)
{
    *out = NULL;
    int code = 0;
    zip_t *zip = zip_open(path, ZIP_RDONLY, &code);
    if (!zip) {
        char msg[128];
        if (code == ZIP_ER_OPEN || code == ZIP_ER_NOENT || code == ZIP_ER_READ)
            return err_set("%s: cannot open: %s", path, strerror(errno));
        return err_set("%s: zip: not a valid .npz (zip) archive: %s", path, zip_strerror_code(code, msg, sizeof msg));
    }
    zip_int64_t n = zip_get_num_entries(zip, 0);
    Npz *z = xcalloc(1, sizeof *z);
    z->zip = zip;
    z->path = xstrdup(path);
    z->names = xcalloc((size_t)n, sizeof *z->names);
    z->index = xcalloc((size_t)n, sizeof *z->index);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *nm = zip_get_name(zip, (zip_uint64_t)i, ZIP_FL_ENC_GUESS);
        if (!nm) continue;
        size_t len = strlen(nm);
        if (len == 0 || nm[len - 1] == '/') continue;   /* a folder entry */
        char *s = xstrdup(nm);
        if (len > 4 && !strcmp(s + len - 4, ".npy")) s[len - 4] = 0;
        z->index[z->count] = (zip_uint64_t)i;
        z->names[z->count++] = s;
    }
    *out = z;
    return 0;
}

void npz_close(Npz *z)
{
    if (!z) return;
    zip_discard(z->zip);   /* read-only: nothing to write back */
    for (int i = 0; i < z->count; i++) free(z->names[i]);
    free(z->names);
    free(z->index);
    free(z->path);
    free(z);
}

int npz_count(const Npz *z) { return z->count; }
const char *npz_name(const Npz *z, int i) { return z->names[i]; }

/* the member called `name` as npz_name gives it, else `name` with its
   ".npy" dropped ("mu.npy" finds "mu"; a member "x.npy.npy", listed as
   "x.npy", is found by either of those names) */
static int npz_find(const Npz *z, const char *name)
{
    for (int i = 0; i < z->count; i++)
        if (!strcmp(z->names[i], name)) return i;
    size_t len = strlen(name);
    if (len <= 4 || strcmp(name + len - 4, ".npy")) return -1;
    len -= 4;
    for (int i = 0; i < z->count; i++)
        if (strlen(z->names[i]) == len && !strncmp(z->names[i], name, len)) return i;
    return -1;
}

int npz_has(const Npz *z, const char *name) { return npz_find(z, name) >= 0; }

typedef struct { zip_file_t *f; const char *name; } ZipCtx;

static int64_t zip_read(void *ctx, void *buf, size_t n)
{
    ZipCtx *zc = ctx;
    size_t done = 0;
    while (done < n) {   /* zip_fread may return less than asked before the end */
        zip_int64_t got = zip_fread(zc->f, (uint8_t *)buf + done, n - done);
        if (got < 0) return err_set("%s: read error: %s", zc->name, zip_file_strerror(zc->f));
        if (got == 0) break;
        done += (size_t)got;
    }
    return (int64_t)done;
}

/* a member's stated size against what its compressed bytes could hold, so a
   lying entry is refused before read_npy allocates that size: a stored member
   holds exactly its bytes, a deflated one expands at most ~1032:1 (deflate's
   limit, 258 bytes from a 2-bit code) plus slack for tiny members */
#define DEFLATE_MAX_RATIO 1032u
#define DEFLATE_SLACK 1024u

static int member_size_plausible(const char *label, const zip_stat_t *st)
{
    if (!(st->valid & ZIP_STAT_COMP_SIZE) || !(st->valid & ZIP_STAT_COMP_METHOD))
        return err_set("%s: cannot stat: compressed size or method unknown", label);
    uint64_t most;
    if (st->comp_method == ZIP_CM_STORE) {
        most = st->comp_size;
    } else if (st->comp_method == ZIP_CM_DEFLATE) {
        most = st->comp_size > (UINT64_MAX - DEFLATE_SLACK) / DEFLATE_MAX_RATIO
                   ? UINT64_MAX : st->comp_size * DEFLATE_MAX_RATIO + DEFLATE_SLACK;
    } else {
        return err_set("%s: compression method %d is not supported (stored or deflated)", label,
                       (int)st->comp_method);
    }
    if (st->size > most)
        return err_set("%s: claims %" PRIu64 " bytes, more than its %" PRIu64 " compressed bytes can hold",
                       label, (uint64_t)st->size, (uint64_t)st->comp_size);
    if (st->comp_method == ZIP_CM_STORE && st->size != st->comp_size)
        return err_set("%s: claims %" PRIu64 " bytes, but is stored in %" PRIu64 " bytes",
                       label, (uint64_t)st->size, (uint64_t)st->comp_size);
    return 0;
}

int npz_read(Npz *z, const char *name, NpyArray *out)
{
    memset(out, 0, sizeof *out);
    int i = npz_find(z, name);
    if (i < 0) {
        char have[256] = "";
        size_t k = 0;
        for (int j = 0; j < z->count && k < sizeof have; j++)
            k += (size_t)snprintf(have + k, sizeof have - k, "%s'%s'", j ? ", " : "", z->names[j]);
        return err_set("%s: member '%s': missing (the archive holds %s)", z->path, name, z->count ? have : "nothing");
    }
    char label[512];
    snprintf(label, sizeof label, "%s: member '%s'", z->path, z->names[i]);
    zip_stat_t st;
    if (zip_stat_index(z->zip, z->index[i], 0, &st) || !(st.valid & ZIP_STAT_SIZE))
        return err_set("%s: cannot stat: %s", label, zip_strerror(z->zip));
    if (member_size_plausible(label, &st)) return -1;
    zip_file_t *f = zip_fopen_index(z->zip, z->index[i], 0);
    if (!f) return err_set("%s: cannot open: %s", label, zip_strerror(z->zip));
    ZipCtx zc = {f, label};
    int rc = read_npy(label, zip_read, &zc, st.size, out);
    if (!rc) {   /* reading to the end lets libzip verify the CRC */
        uint8_t extra;
        int64_t got = zip_read(&zc, &extra, 1);
        if (got != 0) {
            if (got > 0) err_set("%s: data: longer than its header says", label);
            npy_free(out);
            rc = -1;
        }
    }
    zip_fclose(f);
    return rc;
}

int npz_read_array(const char *path, const char *name, NpyArray *out)
{
    Npz *z;
    memset(out, 0, sizeof *out);
    if (npz_open(path, &z)) return -1;
    int rc = npz_read(z, name, out);
    npz_close(z);
    return rc;
}

/* ---- writing ---------------------------------------------------------------------- */

uint8_t *npy_encode(const NpyArray *a, size_t *size)
{
    CHECK(descr_valid(a->kind, a->itemsize), "npy_encode: bad dtype %c%d", a->kind, a->itemsize);
    char dict[512], ds[8];
    int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", npy_descr(a, ds));
    for (int i = 0; i < a->ndim; i++)
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%s%" PRId64, i ? ", " : "", a->shape[i]);
    k += snprintf(dict + k, sizeof dict - (size_t)k, "%s), }", a->ndim == 1 ? "," : "");
    /* prefix + dict + padding + '\n' is a multiple of 64, as NumPy writes it */
    size_t prefix = 10;
    size_t hlen = ((prefix + (size_t)k + 1 + 63) / 64) * 64 - prefix;
    int major = 1;
    if (hlen > 65535) {
        major = 2;
        prefix = 12;
        hlen = ((prefix + (size_t)k + 1 + 63) / 64) * 64 - prefix;
    }
    *size = prefix + hlen + a->nbytes;
    uint8_t *buf = xmalloc(*size);
    memcpy(buf, NPY_MAGIC, 6);
    buf[6] = (uint8_t)major;
    buf[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++) buf[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(buf + prefix, dict, (size_t)k);
    memset(buf + prefix + k, ' ', hlen - (size_t)k - 1);
    buf[prefix + hlen - 1] = '\n';
    if (a->nbytes) memcpy(buf + prefix + hlen, a->data, a->nbytes);
    return buf;
}

/* fsyncs a file and the folder holding it, then renames tmp over path */
static int sync_and_rename(const char *tmp, const char *path)
{
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd)) {
        int e = errno;
        if (fd >= 0) close(fd);
        unlink(tmp);
        return err_set("%s: cannot sync: %s", path, strerror(e));
    }
    close(fd);
    if (rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return err_set("%s: cannot rename into place: %s", path, strerror(e));
    }
    char *copy = xstrdup(path);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (dfd >= 0) {
        fsync(dfd);   /* best effort: the rename is already visible */
        close(dfd);
    }
    return 0;
}

static char *tmp_path_for(const char *path)
{
    size_t n = strlen(path) + 32;
    char *tmp = xmalloc(n);
    snprintf(tmp, n, "%s.tmp-%ld", path, (long)getpid());
    return tmp;
}

int npy_write_file(const char *path, const NpyArray *a)
{
    size_t size;
    uint8_t *buf = npy_encode(a, &size);
    char *tmp = tmp_path_for(path);
    FILE *f = fopen(tmp, "wb");
    int rc = 0;
    if (!f) {
        rc = err_set("%s: cannot create: %s", tmp, strerror(errno));
    } else {
        int bad = fwrite(buf, 1, size, f) != size;
        bad |= fclose(f) != 0;
        if (bad) {
            rc = err_set("%s: write failed: %s", path, strerror(errno));
            unlink(tmp);
        } else {
            rc = sync_and_rename(tmp, path);
        }
    }
    free(buf);
    free(tmp);
    return rc;
}

int npz_write(const char *path, int n, const char *const *names, const NpyArray *arrays)
{
    char *tmp = tmp_path_for(path);
    int code = 0;
    zip_t *zip = zip_open(tmp, ZIP_CREATE | ZIP_TRUNCATE, &code);
    if (!zip) {
        char msg[128];
        int rc = err_set("%s: cannot create: %s", tmp, zip_strerror_code(code, msg, sizeof msg));
        free(tmp);
        return rc;
    }
    for (int i = 0; i < n; i++) {
        size_t size;
        uint8_t *buf = npy_encode(&arrays[i], &size);
        zip_source_t *src = zip_source_buffer(zip, buf, size, 1);   /* libzip frees buf */
        char member[256];
        snprintf(member, sizeof member, "%s.npy", names[i]);
        zip_int64_t idx = src ? zip_file_add(zip, member, src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE) : -1;
        if (idx < 0 || zip_set_file_compression(zip, (zip_uint64_t)idx, ZIP_CM_STORE, 0)) {
            int rc = err_set("%s: member '%s': cannot add: %s", path, names[i], zip_strerror(zip));
            if (src && idx < 0) zip_source_free(src);
            else if (!src) free(buf);
            zip_discard(zip);
            free(tmp);
            return rc;
        }
    }
    if (zip_close(zip)) {
        int rc = err_set("%s: cannot write: %s", path, zip_strerror(zip));
        zip_discard(zip);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    int rc = sync_and_rename(tmp, path);
    free(tmp);
    return rc;
}
