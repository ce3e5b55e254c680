/*
 * dataset_fmnist.c: Fashion-MNIST from its IDX .gz files (Debian package
 * dataset-fashion-mnist puts them in /usr/share/datasets/fashion-mnist/).
 *
 * Files: {train,t10k}-images-idx3-ubyte.gz and {train,t10k}-labels-idx1-ubyte.gz.
 * IDX: big-endian u32 magic (2051 images, 2049 labels), u32 counts, for
 * images u32 rows and cols (28, 28), then row-major u8 data; the data must be
 * exactly what the header says (a short or over-long file is refused).
 * Images are 1 x 28 x 28 (the small benchmark configuration: patch 4, one
 * channel); spec.pad32 pads them with black (-1 after scaling) by 2 pixels on
 * every side to 1 x 32 x 32 for patch sizes that need a power of two.
 * Train: 60,000 images; test: 10,000; labels 0..9.
 */
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include "harness/data/dataset.h"
#include "kernels/errors.h"

#define FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define FMNIST_SIDE 28

/* the whole decompressed content of a .gz file into *out (caller frees) */
static int gz_read_all(const char *path, uint8_t **out, size_t *size)
{
    gzFile f = gzopen(path, "rb");
    if (!f) return err_set("%s: file: cannot open", path);
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = xmalloc(cap);
    for (;;) {
        if (cap - n < (1 << 16)) buf = xrealloc(buf, cap *= 2);
        int got = gzread(f, buf + n, (unsigned)(cap - n));
        if (got < 0) {
            int errnum;
            const char *why = gzerror(f, &errnum);
            err_set("%s: gzip: %s", path, why);
            gzclose(f);
            free(buf);
            return -1;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    /* gzread stops quietly at a truncated stream; gzclose_r reports it */
    int rc = gzclose(f);
    if (rc != Z_OK) {
        free(buf);
        return err_set("%s: gzip: stream is truncated or corrupt (zlib error %d)", path, rc);
    }
    *out = buf;
    *size = n;
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* reads and checks one IDX file; *data points inside *buf past the header */
static int idx_read(const char *path, uint32_t magic, int ndims, uint32_t dims[3],
                    uint8_t **buf, const uint8_t **data)
{
    size_t size = 0;
    if (gz_read_all(path, buf, &size) < 0) return -1;
    size_t header = 4 + 4 * (size_t)ndims;
    if (size < header) {
        free(*buf);
        return err_set("%s: header: %zu bytes, an IDX header needs %zu", path, size, header);
    }
    if (be32(*buf) != magic) {
        uint32_t m = be32(*buf);
        free(*buf);
        return err_set("%s: magic: %u, expected %u", path, m, magic);
    }
    size_t want = header, items = 1;
    for (int d = 0; d < ndims; d++) {
        dims[d] = be32(*buf + 4 + 4 * d);
        items *= dims[d];
    }
    want += items;
    if (size != want) {
        free(*buf);
        return err_set("%s: data: %zu bytes, the header's counts need %zu (%s)", path, size,
                       want, size < want ? "truncated" : "trailing bytes");
    }
    *data = *buf + header;
    return 0;
}

int dataset_open_fmnist(const DatasetSpec *spec, Dataset **out)
{
    const char *dir = spec->path ? spec->path : FMNIST_DEFAULT_DIR;
    const char *split = spec->test_split ? "t10k" : "train";
    char img_path[4096], lab_path[4096];
    snprintf(img_path, sizeof img_path, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(lab_path, sizeof lab_path, "%s/%s-labels-idx1-ubyte.gz", dir, split);

    uint8_t *img_buf = NULL, *lab_buf = NULL;
    const uint8_t *imgs = NULL, *labs = NULL;
    uint32_t idims[3] = {0}, ldims[3] = {0};
    if (idx_read(img_path, 2051, 3, idims, &img_buf, &imgs) < 0) return -1;
    if (idims[1] != FMNIST_SIDE || idims[2] != FMNIST_SIDE) {
        free(img_buf);
        return err_set("%s: rows, cols: %u x %u, expected 28 x 28", img_path, idims[1], idims[2]);
    }
    if (idims[0] == 0) {
        free(img_buf);
        return err_set("%s: count: no images", img_path);
    }
    if (idx_read(lab_path, 2049, 1, ldims, &lab_buf, &labs) < 0) {
        free(img_buf);
        return -1;
    }
    if (ldims[0] != idims[0]) {
        err_set("%s: count: %u labels for %u images in %s", lab_path, ldims[0], idims[0], img_path);
        free(img_buf);
        free(lab_buf);
        return -1;
    }
    int64_t n = idims[0];
    for (int64_t i = 0; i < n; i++)
        if (labs[i] > 9) {
            err_set("%s: label: item %lld has label %u, expected 0..9", lab_path, (long long)i,
                    labs[i]);
            free(img_buf);
            free(lab_buf);
            return -1;
        }

    int side = spec->pad32 ? 32 : FMNIST_SIDE, pad = (side - FMNIST_SIDE) / 2;
    char name[64];
    snprintf(name, sizeof name, "fashion-mnist %s%s", spec->test_split ? "test" : "train",
             spec->pad32 ? " pad32" : "");
    Dataset *ds = dataset_alloc_pixels(name, n, 1, side, side, 10);
    memset(ds->pixels, 0, (size_t)n * side * side);
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *src = imgs + (size_t)i * FMNIST_SIDE * FMNIST_SIDE;
        uint8_t *dst = ds->pixels + (size_t)i * side * side;
        for (int r = 0; r < FMNIST_SIDE; r++)
            memcpy(dst + (size_t)(r + pad) * side + pad, src + r * FMNIST_SIDE, FMNIST_SIDE);
        ds->labels[i] = labs[i];
    }
    free(img_buf);
    free(lab_buf);
    *out = ds;
    return 0;
}
