/*
 * safetensors.c: reading (with full validation) and atomic writing of
 * safetensors files. The format and the error-message rules are in
 * safetensors.h; the JSON header is parsed with cJSON.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../kernels/errors.h"
#include "safetensors.h"

#define ST_MAX_HEADER (100u * 1024 * 1024)
#define ST_MAX_JSON_INT 9007199254740992.0 /* 2^53: larger doubles skip integers */

/* the format is little-endian; so is every host we build for */
static void check_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    if (first != 1) FATAL("safetensors: big-endian hosts are not supported");
}

/* "[1,65,128]" */
static char *shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

/* ---- half-precision conversions (exact) ------------------------------------- */

static float bits_to_f32(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits */
static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0) {                   /* zero or subnormal: man * 2^-24, exact in F32 */
        float mag = (float)man * 0x1p-24f;
        return sign ? -mag : mag;
    }
    if (exp == 31)                    /* inf, or NaN keeping its payload */
        return bits_to_f32(sign | 0x7f800000u | (man << 13));
    return bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

/* bfloat16 is the top half of an F32 */
static float bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

/* ---- header validation ----------------------------------------------------- */

/* a JSON number that is a non-negative integer below 2^53; else -1 and why */
static int json_count(const cJSON *v, uint64_t *out, const char **why)
{
    if (!cJSON_IsNumber(v)) { *why = "is not a number"; return -1; }
    double d = v->valuedouble;   /* 1e400 reads as inf: "too large", not "not an integer" */
    if (isnan(d) || d != floor(d)) { *why = "is not an integer"; return -1; }
    if (d < 0) { *why = "is negative"; return -1; }
    if (d > ST_MAX_JSON_INT) { *why = "is too large"; return -1; }
    *out = (uint64_t)d;
    return 0;
}

/* fills e from the JSON entry of tensor `name`; data_size bounds the offsets */
static int parse_entry(StEntry *e, const char *path, const char *name, const cJSON *info,
                       size_t data_size)
{
    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL;
    const char *why;
    char buf[160];

    if (!cJSON_IsObject(info))
        return err_set("%s: tensor '%s': entry is not a JSON object", path, name);
    for (const cJSON *f = info->child; f; f = f->next) {
        const cJSON **slot = strcmp(f->string, "dtype") == 0        ? &dtype
                             : strcmp(f->string, "shape") == 0      ? &shape
                             : strcmp(f->string, "data_offsets") == 0 ? &offsets
                                                                      : NULL;
        if (!slot)
            return err_set("%s: tensor '%s': unknown field '%s'", path, name, f->string);
        if (*slot)
            return err_set("%s: tensor '%s': field '%s' appears twice", path, name, f->string);
        *slot = f;
    }

    if (!dtype) return err_set("%s: tensor '%s': missing dtype", path, name);
    if (!cJSON_IsString(dtype))
        return err_set("%s: tensor '%s': dtype is not a string", path, name);
    if (dtype_from_name(dtype->valuestring, &e->dtype) < 0)
        return err_set("%s: tensor '%s': unsupported dtype '%s' (deediff reads F32, F16, "
                       "BF16, I64, I32)", path, name, dtype->valuestring);

    if (!shape) return err_set("%s: tensor '%s': missing shape", path, name);
    if (!cJSON_IsArray(shape))
        return err_set("%s: tensor '%s': shape is not an array", path, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > TENSOR_MAX_DIMS)
        return err_set("%s: tensor '%s': shape has %d dimensions, at most %d are supported",
                       path, name, ndim, TENSOR_MAX_DIMS);
    e->ndim = ndim;
    uint64_t numel = 1;
    int overflow = 0;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        uint64_t dim;
        if (json_count(d, &dim, &why) < 0)
            return err_set("%s: tensor '%s': shape[%d] %s", path, name, i, why);
        e->shape[i] = (int64_t)dim;
        overflow |= __builtin_mul_overflow(numel, dim, &numel);
    }
    uint64_t nbytes;
    overflow |= __builtin_mul_overflow(numel, (uint64_t)dtype_size(e->dtype), &nbytes);
    if (overflow || numel > (uint64_t)INT64_MAX)
        return err_set("%s: tensor '%s': shape %s has too many elements", path, name,
                       shape_str(ndim, e->shape, buf, sizeof buf));

    if (!offsets) return err_set("%s: tensor '%s': missing data_offsets", path, name);
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return err_set("%s: tensor '%s': data_offsets is not an array of two integers",
                       path, name);
    uint64_t begin, end;
    if (json_count(offsets->child, &begin, &why) < 0)
        return err_set("%s: tensor '%s': data_offsets[0] %s", path, name, why);
    if (json_count(offsets->child->next, &end, &why) < 0)
        return err_set("%s: tensor '%s': data_offsets[1] %s", path, name, why);
    if (begin > end)
        return err_set("%s: tensor '%s': data_offsets [%llu,%llu] begin after end", path, name,
                       (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return err_set("%s: tensor '%s': data_offsets [%llu,%llu] run past the end of the "
                       "data section (%zu bytes)", path, name, (unsigned long long)begin,
                       (unsigned long long)end, data_size);
    if (end - begin != nbytes)
        return err_set("%s: tensor '%s': data_offsets [%llu,%llu] hold %llu bytes, %s shape %s "
                       "needs %llu", path, name, (unsigned long long)begin,
                       (unsigned long long)end, (unsigned long long)(end - begin),
                       dtype_name(e->dtype), shape_str(ndim, e->shape, buf, sizeof buf),
                       (unsigned long long)nbytes);
    e->begin = (size_t)begin;
    e->end = (size_t)end;
    e->name = xstrdup(name);
    return 0;
}

typedef struct { const char *key, *value; } MetaPair;

static int cmp_meta_pairs(const void *a, const void *b)
{
    return strcmp(((const MetaPair *)a)->key, ((const MetaPair *)b)->key);
}

/* __metadata__: string -> string, stored sorted by key (duplicates rejected) */
static int parse_metadata(SafeTensors *st, const cJSON *meta)
{
    if (!cJSON_IsObject(meta))
        return err_set("%s: __metadata__: not a JSON object", st->path);
    int n = 0;
    for (const cJSON *kv = meta->child; kv; kv = kv->next, n++)
        if (!cJSON_IsString(kv))
            return err_set("%s: __metadata__: value of '%s' is not a string", st->path,
                           kv->string);
    MetaPair *pairs = xmalloc((size_t)n * sizeof *pairs);
    n = 0;
    for (const cJSON *kv = meta->child; kv; kv = kv->next, n++)
        pairs[n] = (MetaPair){kv->string, kv->valuestring};
    qsort(pairs, (size_t)n, sizeof *pairs, cmp_meta_pairs);
    for (int i = 1; i < n; i++)
        if (strcmp(pairs[i - 1].key, pairs[i].key) == 0) {
            int rc = err_set("%s: __metadata__: key '%s' appears twice", st->path, pairs[i].key);
            free(pairs);
            return rc;
        }
    st->meta_keys = xmalloc((size_t)n * sizeof(char *));
    st->meta_values = xmalloc((size_t)n * sizeof(char *));
    for (int i = 0; i < n; i++) {
        st->meta_keys[i] = xstrdup(pairs[i].key);
        st->meta_values[i] = xstrdup(pairs[i].value);
    }
    st->meta_count = n;
    free(pairs);
    return 0;
}

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(((const StEntry *)a)->name, ((const StEntry *)b)->name);
}

static int cmp_by_offsets(const void *a, const void *b)
{
    const StEntry *x = *(const StEntry *const *)a, *y = *(const StEntry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* names unique; offsets, in order, tile [0, data_size) with no gap or overlap */
static int check_layout(const SafeTensors *st, size_t data_size)
{
    for (int i = 1; i < st->count; i++)
        if (strcmp(st->entries[i - 1].name, st->entries[i].name) == 0)
            return err_set("%s: tensor '%s': name appears twice", st->path, st->entries[i].name);

    const StEntry **order = xmalloc((size_t)st->count * sizeof *order);
    for (int i = 0; i < st->count; i++) order[i] = &st->entries[i];
    qsort(order, (size_t)st->count, sizeof *order, cmp_by_offsets);
    size_t pos = 0;
    int rc = 0;
    for (int i = 0; i < st->count && rc == 0; i++) {
        const StEntry *e = order[i];
        if (e->begin < pos)
            rc = err_set("%s: tensor '%s': data_offsets [%zu,%zu] overlap tensor '%s' [%zu,%zu]",
                         st->path, e->name, e->begin, e->end, order[i - 1]->name,
                         order[i - 1]->begin, order[i - 1]->end);
        else if (e->begin > pos)
            rc = err_set("%s: tensor '%s': data_offsets [%zu,%zu] leave a gap of %zu bytes "
                         "after offset %zu", st->path, e->name, e->begin, e->end,
                         e->begin - pos, pos);
        pos = e->end;
    }
    free(order);
    if (rc == 0 && pos != data_size)
        rc = err_set("%s: header: tensors cover %zu of the %zu data bytes", st->path, pos,
                     data_size);
    return rc;
}

static int parse_header(SafeTensors *st, const char *text, size_t n, size_t data_size)
{
    /* JSON allows no control bytes; cJSON would skip them (and NULs) silently */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return err_set("%s: header: control byte 0x%02x at offset %zu", st->path, c, 8 + i);
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - text) : 0;
        return err_set("%s: header: not valid JSON (near byte %zu)", st->path, 8 + at);
    }
    for (const char *c = end; c < text + n; c++)
        if (*c != ' ' && *c != '\t' && *c != '\n' && *c != '\r') {
            cJSON_Delete(root);
            return err_set("%s: header: text after the JSON object at byte %zu", st->path,
                           8 + (size_t)(c - text));
        }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set("%s: header: not a JSON object", st->path);
    }

    int rc = 0;
    const cJSON *meta = NULL;
    st->entries = xcalloc((size_t)cJSON_GetArraySize(root), sizeof(StEntry));
    for (const cJSON *item = root->child; item && rc == 0; item = item->next) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (meta) rc = err_set("%s: __metadata__: appears twice", st->path);
            else rc = parse_metadata(st, meta = item);
        } else {
            rc = parse_entry(&st->entries[st->count], st->path, item->string, item, data_size);
            if (rc == 0) st->count++;
        }
    }
    cJSON_Delete(root);
    if (rc) return rc;
    qsort(st->entries, (size_t)st->count, sizeof(StEntry), cmp_by_name);
    return check_layout(st, data_size);
}

int st_parse(SafeTensors *st, const char *path, uint8_t *bytes, size_t size, int owned)
{
    check_little_endian();
    memset(st, 0, sizeof *st);
    st->path = xstrdup(path);
    st->bytes = bytes;
    st->size = size;
    st->owned = owned;

    int rc;
    uint64_t n = 0;
    if (size < 8) {
        rc = err_set("%s: header: file is %zu bytes, too short for the 8-byte header length",
                     path, size);
    } else {
        memcpy(&n, bytes, 8);
        if (n > ST_MAX_HEADER)
            rc = err_set("%s: header: length %llu is absurd (more than 100 MB)", path,
                         (unsigned long long)n);
        else if (n > size - 8)
            rc = err_set("%s: header: length %llu runs past the end of the file (%zu bytes)",
                         path, (unsigned long long)n, size);
        else {
            st->data_start = 8 + (size_t)n;
            rc = parse_header(st, (const char *)bytes + 8, (size_t)n, size - st->data_start);
        }
    }
    if (rc) st_close(st);
    return rc;
}

int st_open(SafeTensors *st, const char *path)
{
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set("%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        int e = errno;
        close(fd);
        return err_set("%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return err_set("%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size, got = 0;
    uint8_t *bytes = xmalloc(size);
    while (got < size) {
        ssize_t r = read(fd, bytes + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = errno;
            close(fd);
            free(bytes);
            if (r == 0) return err_set("%s: file shrank while reading (%zu of %zu bytes)", path,
                                       got, size);
            return err_set("%s: cannot read: %s", path, strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    return st_parse(st, path, bytes, size, 1);
}

void st_close(SafeTensors *st)
{
    for (int i = 0; i < st->count; i++) free(st->entries[i].name);
    free(st->entries);
    for (int i = 0; i < st->meta_count; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    if (st->owned) free(st->bytes);
    free(st->path);
    memset(st, 0, sizeof *st);
}

/* ---- lookups and reads ---------------------------------------------------------- */

const StEntry *st_find(const SafeTensors *st, const char *name)
{
    StEntry key = {.name = (char *)name};
    if (st->count == 0) return NULL;
    return bsearch(&key, st->entries, (size_t)st->count, sizeof(StEntry), cmp_by_name);
}

const void *st_data(const SafeTensors *st, const StEntry *e)
{
    return st->bytes + st->data_start + e->begin;
}

static int cmp_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

const char *st_metadata(const SafeTensors *st, const char *key)
{
    if (st->meta_count == 0) return NULL;
    char **hit = bsearch(&key, st->meta_keys, (size_t)st->meta_count, sizeof(char *), cmp_strings);
    return hit ? st->meta_values[hit - st->meta_keys] : NULL;
}

/* the entry `name` if it exists and has the expected shape (ndim < 0: any) */
static const StEntry *find_checked(const SafeTensors *st, const char *name, int ndim,
                                   const int64_t *shape)
{
    const StEntry *e = st_find(st, name);
    if (!e) {
        err_set("%s: missing tensor '%s'", st->path, name);
        return NULL;
    }
    if (ndim < 0) return e;
    int same = e->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = e->shape[i] == shape[i];
    if (!same) {
        char got[160], want[160];
        err_set("%s: tensor '%s': shape %s, expected %s", st->path, name,
                shape_str(e->ndim, e->shape, got, sizeof got),
                shape_str(ndim, shape, want, sizeof want));
        return NULL;
    }
    return e;
}

static size_t entry_numel(const StEntry *e) { return (e->end - e->begin) / dtype_size(e->dtype); }

/* the data of tensor `name` (checked as find_checked does; it may be
   unaligned) with its entry *e and element count *n; NULL with err_set */
static const uint8_t *checked_data(const SafeTensors *st, const char *name, int ndim,
                                   const int64_t *shape, const StEntry **e, size_t *n)
{
    *e = find_checked(st, name, ndim, shape);
    if (!*e) return NULL;
    *n = entry_numel(*e);
    return st_data(st, *e);
}

static int wrong_dtype(const SafeTensors *st, const char *name, const StEntry *e,
                       const char *expected)
{
    return err_set("%s: tensor '%s': dtype %s, expected %s", st->path, name,
                   dtype_name(e->dtype), expected);
}

int st_read_f32(const SafeTensors *st, const char *name, float *dst, int ndim,
                const int64_t *shape)
{
    const StEntry *e;
    size_t n;
    const uint8_t *src = checked_data(st, name, ndim, shape, &e, &n);
    if (!src) return -1;
    switch (e->dtype) {
    case DT_F32:
        if (n) memcpy(dst, src, n * 4);   /* the data may be unaligned: copy bytes */
        return 0;
    case DT_F16:
    case DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = e->dtype == DT_F16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
        return 0;
    default:
        return wrong_dtype(st, name, e, "a float dtype (F32, F16, BF16)");
    }
}

int st_read_i64(const SafeTensors *st, const char *name, int64_t *dst, int ndim,
                const int64_t *shape)
{
    const StEntry *e;
    size_t n;
    const uint8_t *src = checked_data(st, name, ndim, shape, &e, &n);
    if (!src) return -1;
    switch (e->dtype) {
    case DT_I64:
        if (n) memcpy(dst, src, n * 8);
        return 0;
    case DT_I32:
        for (size_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, src + 4 * i, 4);
            dst[i] = v;
        }
        return 0;
    default:
        return wrong_dtype(st, name, e, "an integer dtype (I64, I32)");
    }
}

/* ---- writing ---------------------------------------------------------------------- */

typedef struct {
    char *name;
    DType dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    void *data;
    size_t bytes;
} StPending;

struct StWriter {
    int count, cap;
    StPending *tensors;
    int meta_count, meta_cap;
    char **meta_keys, **meta_values;
};

StWriter *st_writer_new(void) { return xcalloc(1, sizeof(StWriter)); }

void st_writer_add(StWriter *w, const char *name, DType dtype, int ndim,
                   const int64_t *shape, const void *data)
{
    CHECK((unsigned)dtype < DT_COUNT, "st_writer_add: '%s': bad dtype %d", name, (int)dtype);
    CHECK(ndim >= 0 && ndim <= TENSOR_MAX_DIMS, "st_writer_add: '%s': ndim %d", name, ndim);
    CHECK(strcmp(name, "__metadata__") != 0, "st_writer_add: '__metadata__' is not a tensor name");
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        CHECK(shape[i] >= 0, "st_writer_add: '%s': negative dimension", name);
        CHECK(!__builtin_mul_overflow(numel, (uint64_t)shape[i], &numel),
              "st_writer_add: '%s': too many elements", name);
    }
    if (w->count == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->tensors = xrealloc(w->tensors, (size_t)w->cap * sizeof(StPending));
    }
    StPending *t = &w->tensors[w->count++];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof(int64_t));
    t->bytes = (size_t)numel * dtype_size(dtype);
    t->data = xmalloc(t->bytes);
    if (t->bytes) memcpy(t->data, data, t->bytes);
}

void st_writer_meta(StWriter *w, const char *key, const char *value)
{
    for (int i = 0; i < w->meta_count; i++)
        if (strcmp(w->meta_keys[i], key) == 0) {   /* the last value given wins */
            free(w->meta_values[i]);
            w->meta_values[i] = xstrdup(value);
            return;
        }
    if (w->meta_count == w->meta_cap) {
        w->meta_cap = w->meta_cap ? 2 * w->meta_cap : 8;
        w->meta_keys = xrealloc(w->meta_keys, (size_t)w->meta_cap * sizeof(char *));
        w->meta_values = xrealloc(w->meta_values, (size_t)w->meta_cap * sizeof(char *));
    }
    w->meta_keys[w->meta_count] = xstrdup(key);
    w->meta_values[w->meta_count] = xstrdup(value);
    w->meta_count++;
}

void st_writer_free(StWriter *w)
{
    if (!w) return;
    for (int i = 0; i < w->count; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }
    free(w->tensors);
    for (int i = 0; i < w->meta_count; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->meta_keys);
    free(w->meta_values);
    free(w);
}

/* a growing text buffer for the JSON header */
typedef struct { char *s; size_t len, cap; } Text;

static void text_put(Text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = xrealloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = 0;
}

static void text_printf(Text *t, const char *fmt, ...) DD_PRINTF(2, 3);
static void text_printf(Text *t, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    CHECK(n >= 0 && (size_t)n < sizeof buf, "text_printf: too long");
    text_put(t, buf, (size_t)n);
}

/* a JSON string literal, escaped as Python's json.dumps does (UTF-8 passes through) */
static void text_json_string(Text *t, const char *s)
{
    text_put(t, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '\b' ? "\\b"
                        : c == '\f' ? "\\f" : NULL;
        if (esc) text_put(t, esc, strlen(esc));
        else if (c < 0x20) text_printf(t, "\\u%04x", c);
        else text_put(t, (const char *)&c, 1);
    }
    text_put(t, "\"", 1);
}

static int cmp_pending(const void *a, const void *b)
{
    return strcmp(((const StPending *)a)->name, ((const StPending *)b)->name);
}

/* the header: compact JSON, metadata first (keys sorted), tensors in name
   order, padded with spaces to a multiple of 8 so the data is 8-aligned */
static Text build_header(StWriter *w)
{
    Text t = {0};
    text_put(&t, "{", 1);
    if (w->meta_count) {
        /* metadata keys in order (insertion sort: a handful of pairs) */
        for (int i = 1; i < w->meta_count; i++)
            for (int j = i; j > 0 && strcmp(w->meta_keys[j - 1], w->meta_keys[j]) > 0; j--) {
                char *k = w->meta_keys[j], *v = w->meta_values[j];
                w->meta_keys[j] = w->meta_keys[j - 1];
                w->meta_values[j] = w->meta_values[j - 1];
                w->meta_keys[j - 1] = k;
                w->meta_values[j - 1] = v;
            }
        text_put(&t, "\"__metadata__\":{", 16);
        for (int i = 0; i < w->meta_count; i++) {
            if (i) text_put(&t, ",", 1);
            text_json_string(&t, w->meta_keys[i]);
            text_put(&t, ":", 1);
            text_json_string(&t, w->meta_values[i]);
        }
        text_put(&t, "}", 1);
    }
    qsort(w->tensors, (size_t)w->count, sizeof(StPending), cmp_pending);
    for (int i = 1; i < w->count; i++)
        CHECK(strcmp(w->tensors[i - 1].name, w->tensors[i].name) != 0,
              "st_writer_save: tensor '%s' added twice", w->tensors[i].name);
    size_t offset = 0;
    for (int i = 0; i < w->count; i++) {
        const StPending *p = &w->tensors[i];
        if (i || w->meta_count) text_put(&t, ",", 1);
        text_json_string(&t, p->name);
        text_printf(&t, ":{\"dtype\":\"%s\",\"shape\":[", dtype_name(p->dtype));
        for (int d = 0; d < p->ndim; d++) text_printf(&t, d ? ",%lld" : "%lld", (long long)p->shape[d]);
        text_printf(&t, "],\"data_offsets\":[%zu,%zu]}", offset, offset + p->bytes);
        offset += p->bytes;
    }
    text_put(&t, "}", 1);
    while (t.len % 8) text_put(&t, " ", 1);
    return t;
}

int st_writer_save(StWriter *w, const char *path)
{
    check_little_endian();
    Text header = build_header(w);
    char *tmp = xmalloc(strlen(path) + 32);
    sprintf(tmp, "%s.tmp-%ld", path, (long)getpid());

    int rc = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = err_set("%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    uint64_t n = header.len;
    int ok = fwrite(&n, 8, 1, f) == 1 && fwrite(header.s, 1, header.len, f) == header.len;
    for (int i = 0; ok && i < w->count; i++)
        ok = fwrite(w->tensors[i].data, 1, w->tensors[i].bytes, f) == w->tensors[i].bytes;
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    if (fclose(f) != 0 && ok) { ok = 0; e = errno; }
    if (!ok) {
        rc = err_set("%s: cannot write %s: %s", path, tmp, strerror(e));
        remove(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        rc = err_set("%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        remove(tmp);
        goto done;
    }
    /* make the rename itself durable; a failure here loses nothing already written */
    char *dir = xstrdup(path), *slash = strrchr(dir, '/');
    if (slash) slash[slash == dir ? 1 : 0] = 0;
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
done:
    free(tmp);
    free(header.s);
    return rc;
}
