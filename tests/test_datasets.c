/*
 * test_datasets.c: every dataset format from small files written here into
 * a temporary folder (IDX .gz through zlib, CIFAR-10 binary, PNG through
 * libpng, JPEG through libjpeg, U-ViT feature .npy files), exact pixel
 * scaling, the CelebA crop + Pillow bilinear resize, the shuffle / flip /
 * resume rules of the batch cursor, and one error line per bad input. The
 * real Fashion-MNIST is loaded when its Debian package is installed.
 *
 * The CelebA resize was checked bit for bit against Pillow 9.4
 * (Image.crop((25, 57, 153, 185)).resize((64, 64), Image.BILINEAR)) on random
 * RGB and gray PNG and JPEG images when it was written; here a ramp whose
 * exact answer follows from the 1/8, 3/8, 3/8, 1/8 weights guards it.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <jpeglib.h>
#include <png.h>

#include "harness/data/dataset.h"
#include "harness/data/dataset_pickle.h"
#include "kernels/errors.h"
#include "kernels/philox.h"
#include "model/npy.h"
#include "model/safetensors.h"
#include "support/temp_dir.h"

static char tmpdir[256];

static void make_tmpdir(void) { temp_dir_make(tmpdir, sizeof tmpdir, "/tmp/deediff-test-data-XXXXXX"); }

static void remove_tmpdir(void) { temp_dir_remove(tmpdir); }

TestSuite(datasets, .init = make_tmpdir, .fini = remove_tmpdir);

static const char *tmp_path(const char *name) { return temp_dir_path(tmpdir, name); }

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void expect_error(int rc, const char *a, const char *b)
{
    cr_expect_eq(rc, -1);
    cr_expect(strstr(err_msg(), a) != NULL, "error '%s' lacks '%s'", err_msg(), a);
    cr_expect(strstr(err_msg(), b) != NULL, "error '%s' lacks '%s'", err_msg(), b);
    cr_expect(strchr(err_msg(), '\n') == NULL);
}

/* ---- Fashion-MNIST IDX .gz -------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static void write_gz(const char *path, const uint8_t *data, size_t n)
{
    gzFile f = gzopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(gzwrite(f, data, (unsigned)n), (int)n);
    cr_assert_eq(gzclose(f), Z_OK);
}

/* n images whose pixel (r, c) of image i is (i*31 + r*28 + c) % 256;
   images_count/label_count let a test lie in the header */
static void write_fmnist(const char *split, int n, uint32_t img_magic, uint32_t images_count,
                         int label_count, int drop_bytes)
{
    size_t isz = 16 + (size_t)n * 784;
    uint8_t *img = malloc(isz);
    put_be32(img, img_magic); put_be32(img + 4, images_count); put_be32(img + 8, 28); put_be32(img + 12, 28);
    for (int i = 0; i < n; i++)
        for (int p = 0; p < 784; p++) img[16 + i * 784 + p] = (uint8_t)((i * 31 + p) % 256);
    char name[128];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte.gz", split);
    write_gz(tmp_path(name), img, isz - (size_t)drop_bytes);
    free(img);
    uint8_t lab[8 + 64];
    put_be32(lab, 2049); put_be32(lab + 4, (uint32_t)label_count);
    for (int i = 0; i < label_count; i++) lab[8 + i] = (uint8_t)(i % 10);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte.gz", split);
    write_gz(tmp_path(name), lab, 8 + (size_t)label_count);
}

static Dataset *open_fmnist(int pad32)
{
    DatasetSpec spec = {.format = DATA_FMNIST, .path = tmpdir, .pad32 = pad32};
    Dataset *ds;
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    return ds;
}

Test(datasets, fmnist_pixels_and_labels)
{
    write_fmnist("train", 12, 2051, 12, 12, 0);
    Dataset *ds = open_fmnist(0);
    cr_assert_eq(ds->n, 12);
    cr_assert(ds->c == 1 && ds->h == 28 && ds->w == 28 && ds->num_classes == 10);
    float img[784];
    int64_t y;
    cr_assert_eq(dataset_get(ds, 3, img, &y), 0);
    cr_expect_eq(y, 3);
    for (int p = 0; p < 784; p++) {
        uint8_t u = (uint8_t)((3 * 31 + p) % 256);
        cr_assert_eq(img[p], ((float)u / 255.0f - 0.5f) / 0.5f, "pixel %d", p);
    }
    /* exact ends of the scale */
    cr_expect_eq(dataset_pixel_to_float(0), -1.0f);
    cr_expect_eq(dataset_pixel_to_float(255), 1.0f);
    cr_expect(fabsf(dataset_pixel_to_float(51) - (-0.6f)) < 1e-7f);
    dataset_close(ds);

    ds = open_fmnist(1); /* padded: 2 black pixels on every side */
    cr_assert(ds->h == 32 && ds->w == 32);
    float pad[1024];
    cr_assert_eq(dataset_get(ds, 3, pad, &y), 0);
    for (int r = 0; r < 32; r++)
        for (int c = 0; c < 32; c++) {
            float want = (r < 2 || r >= 30 || c < 2 || c >= 30) ? -1.0f : img[(r - 2) * 28 + c - 2];
            cr_assert_eq(pad[r * 32 + c], want, "(%d, %d)", r, c);
        }
    dataset_close(ds);
}

Test(datasets, fmnist_bad_inputs)
{
    DatasetSpec spec = {.format = DATA_FMNIST, .path = tmp_path("nowhere")};
    Dataset *ds;
    expect_error(dataset_open(&spec, &ds), "nowhere/train-images-idx3-ubyte.gz", "file");
    cr_expect_null(ds);

    spec.path = tmpdir;
    write_fmnist("train", 4, 2049, 4, 4, 0);
    expect_error(dataset_open(&spec, &ds), "train-images-idx3-ubyte.gz", "magic: 2049, expected 2051");

    write_fmnist("train", 4, 2051, 5, 4, 0); /* header says 5 images, data holds 4 */
    expect_error(dataset_open(&spec, &ds), "train-images-idx3-ubyte.gz", "data:");
    cr_expect(strstr(err_msg(), "truncated"));

    write_fmnist("train", 4, 2051, 4, 3, 0);
    expect_error(dataset_open(&spec, &ds), "train-labels-idx1-ubyte.gz", "count: 3 labels for 4 images");

    /* a gzip stream cut short */
    write_fmnist("train", 4, 2051, 4, 4, 0);
    FILE *f = fopen(tmp_path("train-images-idx3-ubyte.gz"), "rb");
    uint8_t buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_file(tmp_path("train-images-idx3-ubyte.gz"), buf, n / 2);
    expect_error(dataset_open(&spec, &ds), "train-images-idx3-ubyte.gz", "gzip");

    /* a corrupt gzip stream */
    for (size_t i = 20; i < n - 8; i += 7) buf[i] ^= 0x5a;
    write_file(tmp_path("train-images-idx3-ubyte.gz"), buf, n);
    expect_error(dataset_open(&spec, &ds), "train-images-idx3-ubyte.gz", "gzip");
}

Test(datasets, fmnist_real_set)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0)
        cr_skip_test("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)");
    DatasetSpec spec = {.format = DATA_FMNIST, .path = NULL};
    Dataset *ds;
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    cr_expect_eq(ds->n, 60000);
    int64_t counts[10] = {0};
    for (int64_t i = 0; i < ds->n; i++) {
        cr_assert(ds->labels[i] >= 0 && ds->labels[i] <= 9);
        counts[ds->labels[i]]++;
    }
    for (int k = 0; k < 10; k++) cr_expect_eq(counts[k], 6000);
    dataset_close(ds);
    spec.path = dir;
    spec.test_split = 1;
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    cr_expect_eq(ds->n, 10000);
    dataset_close(ds);
}

/* ---- CIFAR-10 binary ---------------------------------------------------------- */

static void write_cifar(const char *name, int records, int first, int bad_label, int extra_bytes)
{
    size_t n = (size_t)records * 3073 + (size_t)extra_bytes;
    uint8_t *b = calloc(1, n);
    for (int r = 0; r < records; r++) {
        int item = first + r;
        b[r * 3073] = (uint8_t)(bad_label ? 10 : item % 10);
        for (int p = 0; p < 3072; p++) b[r * 3073 + 1 + p] = (uint8_t)((item * 7 + p) % 256);
    }
    write_file(tmp_path(name), b, n);
    free(b);
}

Test(datasets, cifar10_records)
{
    char name[64];
    for (int k = 1; k <= 5; k++) {
        snprintf(name, sizeof name, "data_batch_%d.bin", k);
        write_cifar(name, 3, (k - 1) * 3, 0, 0);
    }
    write_cifar("test_batch.bin", 2, 100, 0, 0);
    DatasetSpec spec = {.format = DATA_CIFAR10, .path = tmpdir};
    Dataset *ds;
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    cr_assert(ds->n == 15 && ds->c == 3 && ds->h == 32 && ds->w == 32);
    float img[3072];
    int64_t y;
    cr_assert_eq(dataset_get(ds, 13, img, &y), 0); /* batch 5, record 1 */
    cr_expect_eq(y, 3);
    /* channel-major R, G, B planes, as stored */
    for (int p = 0; p < 3072; p++)
        cr_assert_eq(img[p], dataset_pixel_to_float((uint8_t)((13 * 7 + p) % 256)));
    dataset_close(ds);
    spec.test_split = 1;
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    cr_expect_eq(ds->n, 2);
    cr_assert_eq(dataset_get(ds, 1, img, &y), 0);
    cr_expect_eq(y, 1);
    dataset_close(ds);
}

Test(datasets, cifar10_bad_inputs)
{
    DatasetSpec spec = {.format = DATA_CIFAR10, .path = tmpdir, .test_split = 1};
    Dataset *ds;
    expect_error(dataset_open(&spec, &ds), "test_batch.bin", "file");
    write_cifar("test_batch.bin", 2, 0, 0, 5);
    expect_error(dataset_open(&spec, &ds), "test_batch.bin", "size: 6151 bytes");
    write_cifar("test_batch.bin", 2, 0, 1, 0);
    expect_error(dataset_open(&spec, &ds), "test_batch.bin", "label");
}

/* ---- PNG and JPEG folders ------------------------------------------------------- */

/* hwc uint8 with c = 1 (gray), 3 (RGB) or 4 (RGBA) */
static void write_png(const char *name, const uint8_t *px, int w, int h, int c)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = c == 1 ? PNG_FORMAT_GRAY : c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
    cr_assert(png_image_write_to_file(&img, tmp_path(name), 0, px, 0, NULL), "%s", img.message);
}

static void write_jpeg(const char *name, const uint8_t *px, int w, int h)
{
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    FILE *f = fopen(tmp_path(name), "wb");
    cr_assert(f);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 100, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)cinfo.next_scanline * w * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    fclose(f);
}

Test(datasets, images_plain_png_jpeg)
{
    enum { S = 8 };
    uint8_t rgb[S * S * 3], gray[S * S], rgba[S * S * 4], flat[S * S * 3];
    for (int p = 0; p < S * S; p++) {
        for (int ch = 0; ch < 3; ch++) rgb[p * 3 + ch] = (uint8_t)(p * 4 + ch * 50);
        gray[p] = (uint8_t)(255 - p);
        for (int ch = 0; ch < 3; ch++) rgba[p * 4 + ch] = (uint8_t)(p + ch);
        rgba[p * 4 + 3] = 7; /* alpha is dropped, not composited */
        flat[p * 3] = 200; flat[p * 3 + 1] = 100; flat[p * 3 + 2] = 50;
    }
    write_png("a.png", rgb, S, S, 3);
    write_png("b.PNG", gray, S, S, 1);
    write_png("c.png", rgba, S, S, 4);
    write_jpeg("d.jpg", flat, S, S);
    write_file(tmp_path("notes.txt"), "x", 1); /* ignored */
    DatasetSpec spec = {.format = DATA_IMAGES, .path = tmpdir};
    Dataset *ds;
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    /* sorted by strcmp: "a.png" < "b.PNG" < "c.png" < "d.jpg" */
    cr_assert(ds->n == 4 && ds->c == 3 && ds->h == S && ds->w == S && ds->num_classes == 0);
    float img[3 * S * S];
    int64_t y;
    cr_assert_eq(dataset_get(ds, 0, img, &y), 0);
    cr_expect_eq(y, -1);
    for (int ch = 0; ch < 3; ch++)
        for (int p = 0; p < S * S; p++)
            cr_assert_eq(img[ch * S * S + p], dataset_pixel_to_float(rgb[p * 3 + ch]));
    cr_assert_eq(dataset_get(ds, 1, img, &y), 0); /* gray -> RGB by repetition */
    for (int ch = 0; ch < 3; ch++)
        for (int p = 0; p < S * S; p++) cr_assert_eq(img[ch * S * S + p], dataset_pixel_to_float(gray[p]));
    cr_assert_eq(dataset_get(ds, 2, img, &y), 0);
    for (int ch = 0; ch < 3; ch++)
        for (int p = 0; p < S * S; p++)
            cr_assert_eq(img[ch * S * S + p], dataset_pixel_to_float(rgba[p * 4 + ch]));
    cr_assert_eq(dataset_get(ds, 3, img, &y), 0); /* JPEG q100 of a flat colour: within 2 levels */
    for (int ch = 0; ch < 3; ch++)
        for (int p = 0; p < S * S; p++)
            cr_assert(fabsf(img[ch * S * S + p] - dataset_pixel_to_float(flat[ch])) <= 2.0f / 127.5f);
    dataset_close(ds);

    /* grayscale output: PIL's "L" rule */
    spec.channels = 1;
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    cr_assert_eq(ds->c, 1);
    cr_assert_eq(dataset_get(ds, 0, img, &y), 0);
    for (int p = 0; p < S * S; p++) {
        const uint8_t *s = &rgb[p * 3];
        uint8_t L = (uint8_t)((s[0] * 19595u + s[1] * 38470u + s[2] * 7471u + 0x8000u) >> 16);
        cr_assert_eq(img[p], dataset_pixel_to_float(L));
    }
    dataset_close(ds);
}

Test(datasets, images_bad_inputs)
{
    enum { S = 8 };
    uint8_t px[S * 6 * 3] = {0};
    DatasetSpec spec = {.format = DATA_IMAGES, .path = tmpdir};
    Dataset *ds;
    expect_error(dataset_open(&spec, &ds), tmpdir, "no .png, .jpg or .jpeg");
    write_png("0.png", px, 6, S, 3);
    spec.size = 8;
    expect_error(dataset_open(&spec, &ds), "0.png", "size: 6 x 8, expected 8 x 8");
    write_png("0.png", px, S, 6, 3);
    spec.transform = IMAGES_CELEBA;
    expect_error(dataset_open(&spec, &ds), "0.png", "size: 8 x 6 (width x height), the CelebA transform needs");
    write_file(tmp_path("0.png"), "\x89PNG\r\n\x1a\n garbage", 17);
    spec.transform = IMAGES_PLAIN;
    expect_error(dataset_open(&spec, &ds), "0.png", "png");
    unlink(tmp_path("0.png"));
    write_file(tmp_path("x.jpg"), "\xff\xd8\xff\xe0 not a jpeg", 15);
    expect_error(dataset_open(&spec, &ds), "x.jpg", "jpeg");
}

/* appends a PNG chunk (length, type, data, CRC over type + data) at p */
static uint8_t *put_png_chunk(uint8_t *p, const char *type, const uint8_t *data, uint32_t n)
{
    put_be32(p, n);
    memcpy(p + 4, type, 4);
    if (n) memcpy(p + 8, data, n);
    put_be32(p + 8 + n, (uint32_t)crc32(0, p + 4, 4 + n));
    return p + 12 + n;
}

Test(datasets, images_header_claiming_more_than_the_file_holds, .timeout = 5)
{
    /* a valid 30000 x 30000 RGB IHDR with a tiny IDAT: refused before 2.7 GB are allocated */
    uint8_t png[256], ihdr[13] = {0}, idat[64], *p = png;
    put_be32(ihdr, 30000);
    put_be32(ihdr + 4, 30000);
    ihdr[8] = 8;   /* bit depth */
    ihdr[9] = 2;   /* RGB */
    uint8_t row[16] = {0};
    uLongf idat_n = sizeof idat;
    cr_assert_eq(compress(idat, &idat_n, row, sizeof row), Z_OK);
    memcpy(p, "\x89PNG\r\n\x1a\n", 8);
    p = put_png_chunk(p + 8, "IHDR", ihdr, sizeof ihdr);
    p = put_png_chunk(p, "IDAT", idat, (uint32_t)idat_n);
    p = put_png_chunk(p, "IEND", NULL, 0);
    size_t n = (size_t)(p - png);
    write_file(tmp_path("big.png"), png, n);
    DatasetSpec spec = {.format = DATA_IMAGES, .path = tmpdir};
    Dataset *ds;
    char want[160];
    snprintf(want, sizeof want, "big.png: png: declares 30000x30000x3 pixels, more than its %zu bytes can hold", n);
    expect_error(dataset_open(&spec, &ds), want, want);
    unlink(tmp_path("big.png"));

    /* a real JPEG whose SOF0 frame header is rewritten to 30000 x 30000 */
    uint8_t px[8 * 8 * 3] = {0};
    write_jpeg("big.jpg", px, 8, 8);
    FILE *f = fopen(tmp_path("big.jpg"), "r+b");
    cr_assert(f);
    uint8_t jpg[4096];
    size_t jn = fread(jpg, 1, sizeof jpg, f);
    size_t sof = 2;
    while (sof + 9 < jn && !(jpg[sof] == 0xff && jpg[sof + 1] == 0xc0)) sof++;
    cr_assert(sof + 9 < jn, "no SOF0 marker");
    jpg[sof + 5] = jpg[sof + 7] = 30000 >> 8;   /* height, width (big-endian) */
    jpg[sof + 6] = jpg[sof + 8] = 30000 & 0xff;
    rewind(f);
    cr_assert_eq(fwrite(jpg, 1, jn, f), jn);
    fclose(f);
    snprintf(want, sizeof want, "big.jpg: jpeg: declares 30000x30000x3 pixels, more than its %zu bytes can hold", jn);
    expect_error(dataset_open(&spec, &ds), want, want);
}

Test(datasets, celeba_crop_and_pillow_resize)
{
    enum { W = 178, H = 218 };
    static uint8_t px[H * W * 3];
    /* inside the crop box: value 2*(col-25) in every channel, the same on
       every row; outside: 255 (must not leak into the output) */
    for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++) {
            int inside = r >= 57 && r < 185 && c >= 25 && c < 153;
            for (int ch = 0; ch < 3; ch++) px[(r * W + c) * 3 + ch] = (uint8_t)(inside ? 2 * (c - 25) : 255);
        }
    write_png("000001.png", px, W, H, 3);
    write_png("000002.png", px, W, H, 3);
    DatasetSpec spec = {.format = DATA_IMAGES, .path = tmpdir, .transform = IMAGES_CELEBA, .max_items = 1};
    Dataset *ds;
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    cr_assert(ds->n == 1 && ds->c == 3 && ds->h == 64 && ds->w == 64);
    float img[3 * 64 * 64];
    int64_t y;
    cr_assert_eq(dataset_get(ds, 0, img, &y), 0);
    for (int ch = 0; ch < 3; ch++)
        for (int r = 0; r < 64; r++) {
            const float *row = img + (ch * 64 + r) * 64;
            /* interior: (1 (2x-1) + 3 (2x) + 3 (2x+1) + 1 (2x+2)) / 8 of 2*col = 4x + 1 */
            for (int x = 1; x < 63; x++)
                cr_assert_eq(row[x], dataset_pixel_to_float((uint8_t)(4 * x + 1)), "(%d, %d)", r, x);
            /* borders renormalised to 3/7, 3/7, 1/7: (0*3 + 2*3 + 4*1)/7 = 1.43 -> 1,
               (250*1 + 252*3 + 254*3)/7 = 252.57 -> 253 */
            cr_assert_eq(row[0], dataset_pixel_to_float(1));
            cr_assert_eq(row[63], dataset_pixel_to_float(253));
        }
    dataset_close(ds);
}

/* ---- the cursor: shuffle, flips, resume -------------------------------------- */

Test(datasets, shuffle_resume_and_flip)
{
    write_fmnist("train", 10, 2051, 10, 10, 0);
    Dataset *ds = open_fmnist(0);
    enum { B = 3, STEPS = 8, CHW = 784 };
    static float x[STEPS][B * CHW];
    int64_t y[STEPS][B];
    DataCursor cur = {0, 0}, saved = {0, 0};
    for (int s = 0; s < STEPS; s++) {
        if (s == 4) saved = cur;
        cr_assert_eq(dataset_next_batch(ds, &cur, 77, B, 1, x[s], y[s], NULL), 0, "%s", err_msg());
    }
    /* 10 items, batches of 3: 3 batches per epoch (drop_last), 8 steps end in epoch 2 */
    cr_expect_eq(cur.epoch, 2);
    cr_expect_eq(cur.pos, 6);
    /* each epoch's 9 positions are distinct items, and epochs differ in order */
    for (int e = 0; e < 2; e++) {
        int seen[10] = {0};
        for (int p = 0; p < 9; p++) seen[dataset_order(ds, 77, e, p)]++;
        for (int i = 0; i < 10; i++) cr_expect(seen[i] <= 1);
    }
    int same = 1;
    for (int p = 0; p < 10; p++) same &= dataset_order(ds, 77, 0, p) == dataset_order(ds, 77, 1, p);
    cr_expect(!same, "epochs 0 and 1 have the same order");
    /* labels follow the permutation; flips follow the Philox rule */
    int flips = 0;
    for (int s = 0; s < STEPS; s++)
        for (int b = 0; b < B; b++) {
            int64_t epoch = s / 3, pos = (s % 3) * B + b;
            int64_t item = dataset_order(ds, 77, epoch, pos);
            cr_assert_eq(y[s][b], item % 10);
            float ref[CHW];
            int64_t ly;
            dataset_get(ds, item, ref, &ly);
            int flip = philox_u32_at(77, RNG_DATA_FLIP, (uint32_t)epoch, (uint64_t)pos) >> 31;
            flips += flip;
            for (int r = 0; r < 28; r++)
                for (int c = 0; c < 28; c++)
                    cr_assert_eq(x[s][b * CHW + r * 28 + c], ref[r * 28 + (flip ? 27 - c : c)]);
        }
    cr_expect(flips > 0 && flips < STEPS * B, "flips %d of %d", flips, STEPS * B);
    dataset_close(ds);

    /* a fresh process resuming from the saved cursor continues identically */
    ds = open_fmnist(0);
    float xr[B * CHW];
    int64_t yr[B];
    for (int s = 4; s < STEPS; s++) {
        cr_assert_eq(dataset_next_batch(ds, &saved, 77, B, 1, xr, yr, NULL), 0);
        cr_assert_eq(memcmp(xr, x[s], sizeof xr), 0, "step %d", s);
        cr_assert_eq(memcmp(yr, y[s], sizeof yr), 0, "step %d", s);
    }
    cr_expect(saved.epoch == cur.epoch && saved.pos == cur.pos);
    /* another seed, another order */
    DataCursor other = {0, 0};
    cr_assert_eq(dataset_next_batch(ds, &other, 78, B, 1, xr, yr, NULL), 0);
    int differs = 0;
    for (int p = 0; p < 10; p++) differs |= dataset_order(ds, 78, 0, p) != dataset_order(ds, 77, 0, p);
    cr_expect(differs);
    /* bad batch sizes and cursors */
    expect_error(dataset_next_batch(ds, &other, 78, 11, 0, xr, yr, NULL), "batch size", "11");
    DataCursor wild = {0, 99};
    expect_error(dataset_next_batch(ds, &wild, 78, 2, 0, xr, yr, NULL), "cursor", "99");
    dataset_close(ds);
}

/* ---- U-ViT latent feature folders ---------------------------------------------- */

static void put_u32le(uint8_t **p, uint32_t v) { for (int i = 0; i < 4; i++) *(*p)++ = (uint8_t)(v >> (8 * i)); }
static void put_op(uint8_t **p, const char *bytes, size_t n) { memcpy(*p, bytes, n); *p += n; }
#define OP(p, lit) put_op(&(p), lit, sizeof lit - 1)

/* np.save(path, (moments, np.int64(label))) as NumPy 1.24 writes it
   (pickle protocol 3; the opcode sequence copied from a real file and
   checked to load with np.load(allow_pickle=True)) */
static void write_imagenet_item(const char *name, const float *moments, int c, int h, int w, int64_t label)
{
    size_t nbytes = (size_t)c * h * w * 4;
    uint8_t *buf = malloc(nbytes + 1024), *p = buf;
    const char *hdr = "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }";
    size_t hl = 128 - 10;
    OP(p, "\x93NUMPY\x01\x00");
    *p++ = (uint8_t)hl; *p++ = 0;
    memset(p, ' ', hl);
    memcpy(p, hdr, strlen(hdr));
    p[hl - 1] = '\n';
    p += hl;
    OP(p, "\x80\x03" "cnumpy.core.multiarray\n_reconstruct\nq\x00" "cnumpy\nndarray\nq\x01"
          "K\x00\x85q\x02" "C\x01" "bq\x03\x87q\x04Rq\x05(K\x01K\x02\x85q\x06"
          "cnumpy\ndtype\nq\x07X\x02\x00\x00\x00O8q\x08\x89\x88\x87q\x09Rq\x0a"
          "(K\x03X\x01\x00\x00\x00|q\x0bNNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tq\x0c"
          "b\x89]q\x0d(h\x00h\x01K\x00\x85q\x0eh\x03\x87q\x0fRq\x10(K\x01");
    *p++ = 'K'; *p++ = (uint8_t)c; *p++ = 'K'; *p++ = (uint8_t)h; *p++ = 'K'; *p++ = (uint8_t)w;
    OP(p, "\x87q\x11h\x07X\x02\x00\x00\x00" "f4q\x12\x89\x88\x87q\x13Rq\x14"
          "(K\x03X\x01\x00\x00\x00<q\x15NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tq\x16" "b\x89");
    *p++ = 'B';
    put_u32le(&p, (uint32_t)nbytes);
    memcpy(p, moments, nbytes);
    p += nbytes;
    OP(p, "q\x17tq\x18" "b" "cnumpy.core.multiarray\nscalar\nq\x19h\x07X\x02\x00\x00\x00i8q\x1a"
          "\x89\x88\x87q\x1bRq\x1c(K\x03h\x15NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tq\x1d" "b"
          "C\x08");
    for (int i = 0; i < 8; i++) *p++ = (uint8_t)((uint64_t)label >> (8 * i));
    OP(p, "q\x1e\x86q\x1fRq e" "tq!b.");
    write_file(tmp_path(name), buf, (size_t)(p - buf));
    free(buf);
}

static void fill_moments(float *m, int c, int hw, int item)
{
    for (int j = 0; j < c * hw; j++)
        m[j] = j < c / 2 * hw ? (float)(item + 1) * 0.01f * (float)(j % 17) : -1.0f - 0.1f * (float)(j % 5);
}

Test(datasets, latents_imagenet_pickles)
{
    enum { C = 8, H = 4, W = 4, HW = H * W };
    float m[3][C * HW];
    for (int i = 0; i < 3; i++) {
        fill_moments(m[i], C, HW, i);
        char name[32];
        snprintf(name, sizeof name, "%d.npy", i);
        write_imagenet_item(name, m[i], C, H, W, 100 + 400 * i);
    }
    DatasetSpec spec = {.format = DATA_LATENTS, .path = tmpdir};
    Dataset *ds;
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    cr_assert(ds->n == 3 && ds->c == 4 && ds->h == H && ds->w == W && ds->num_classes == 1000 && !ds->can_flip);
    float z[4 * HW];
    int64_t y;
    cr_assert_eq(dataset_get(ds, 2, z, &y), 0);
    cr_expect_eq(y, 900);
    for (int j = 0; j < 4 * HW; j++) cr_assert_eq(z[j], 0.18215f * m[2][j]);
    /* a batch draws z = 0.18215 (mean + exp(logvar / 2) eps) with Philox eps */
    DataCursor cur = {0, 0};
    float zb[2 * 4 * HW];
    int64_t yb[2];
    cr_assert_eq(dataset_next_batch(ds, &cur, 5, 2, 0, zb, yb, NULL), 0, "%s", err_msg());
    for (int b = 0; b < 2; b++) {
        int64_t item = dataset_order(ds, 5, 0, b);
        cr_expect_eq(yb[b], 100 + 400 * item);
        for (int j = 0; j < 4 * HW; j++) {
            float eps = philox_normal_at(5, RNG_LATENT_SAMPLE, 0, (uint64_t)b * 4 * HW + j);
            float want = 0.18215f * (m[item][j] + expf(0.5f * m[item][4 * HW + j]) * eps);
            cr_assert_eq(zb[b * 4 * HW + j], want, "b %d j %d", b, j);
        }
    }
    expect_error(dataset_next_batch(ds, &cur, 5, 1, 1, zb, yb, NULL), tmpdir, "flip");
    dataset_close(ds);

    spec.latent_moments = 1;
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    cr_assert_eq(ds->c, 8);
    float raw[C * HW];
    cr_assert_eq(dataset_get(ds, 1, raw, &y), 0);
    cr_expect_eq(memcmp(raw, m[1], sizeof raw), 0);
    dataset_close(ds);

    /* wrong shape in a later file: found when that item is read */
    float small[8 * 9];
    fill_moments(small, 8, 9, 0);
    write_imagenet_item("1.npy", small, 8, 3, 3, 5);
    spec.latent_moments = 0;
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    expect_error(dataset_get(ds, 1, z, &y), "1.npy", "moments: <f4 [8, 3, 3], expected F32 [8, 4, 4]");
    dataset_close(ds);
    /* a label outside ImageNet's classes; a missing item */
    write_imagenet_item("1.npy", m[1], C, H, W, 1000);
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    expect_error(dataset_get(ds, 1, z, &y), "1.npy", "label: 1000");
    dataset_close(ds);
    unlink(tmp_path("1.npy"));
    expect_error(dataset_open(&spec, &ds), tmpdir, "1.npy is missing");
    /* a pickle cut short */
    write_file(tmp_path("1.npy"), "\x93NUMPY\x01\x00\x10\x00{'descr': '|O'}\n\x80\x03" "cos\nsystem\n", 40);
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    expect_error(dataset_get(ds, 1, z, &y), "1.npy", "pickle");
    dataset_close(ds);
}

static void write_npy_f32(const char *name, const float *data, int ndim, const int64_t *shape)
{
    NpyArray a = npy_view('f', 4, ndim, shape, data);
    cr_assert_eq(npy_write_file(tmp_path(name), &a), 0, "%s", err_msg());
}

Test(datasets, latents_coco_captions)
{
    enum { C = 8, H = 2, W = 2, HW = H * W, T = 3, D = 5 };
    const int ncap[3] = {2, 1, 3};
    float m[3][C * HW];
    int64_t mshape[3] = {C, H, W}, cshape[2] = {T, D};
    for (int i = 0; i < 3; i++) {
        char name[32];
        fill_moments(m[i], C, HW, i);
        snprintf(name, sizeof name, "%d.npy", i);
        write_npy_f32(name, m[i], 3, mshape);
        for (int k = 0; k < ncap[i]; k++) {
            float ctx[T * D];
            for (int j = 0; j < T * D; j++) ctx[j] = (float)(100 * i + 10 * k) + (float)j * 0.5f;
            snprintf(name, sizeof name, "%d_%d.npy", i, k);
            write_npy_f32(name, ctx, 2, cshape);
        }
    }
    DatasetSpec spec = {.format = DATA_LATENTS, .path = tmpdir};
    Dataset *ds;
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    cr_assert(ds->n == 3 && ds->c == 4 && ds->ctx_len == T && ds->ctx_dim == D && ds->num_classes == 0);
    DataCursor cur = {0, 0};
    float z[3 * 4 * HW], ctx[3 * T * D];
    int64_t y[3];
    cr_assert_eq(dataset_next_batch(ds, &cur, 9, 3, 0, z, y, ctx), 0, "%s", err_msg());
    for (int b = 0; b < 3; b++) {
        int64_t item = dataset_order(ds, 9, 0, b);
        int k = (int)philox_below(9, RNG_DATA_CAPTION, 0, (uint64_t)b, (uint64_t)ncap[item]);
        cr_expect_eq(y[b], -1);
        for (int j = 0; j < T * D; j++)
            cr_assert_eq(ctx[b * T * D + j], (float)(100 * item + 10 * k) + (float)j * 0.5f);
    }
    dataset_close(ds);

    /* a caption of the wrong shape (found when read); a gap in the captions */
    int64_t bad[2] = {T, D + 1};
    float wide[T * (D + 1)] = {0};
    write_npy_f32("1_0.npy", wide, 2, bad);
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    expect_error(dataset_get_ctx(ds, 1, z, y, ctx), "1_0.npy", "context: <f4 [3, 6], expected F32 [3, 5]");
    dataset_close(ds);
    unlink(tmp_path("0_0.npy"));
    expect_error(dataset_open(&spec, &ds), tmpdir, "captions of item 0");
}

/* a pickled numpy.dtype built from the string "\0" "2": strchr finds the
   terminator for a NUL kind, so it once passed and aborted in npy_to_f32
   (found by fuzz_pickle; the input is its seed dtype_nul_kind.npy) */
Test(datasets, pickle_dtype_of_kind_nul_is_refused)
{
    FILE *f = fopen("tests/fuzz/seeds/fuzz_pickle/dtype_nul_kind.npy", "rb");
    cr_assert_not_null(f);
    uint8_t bytes[4096];
    size_t n = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    PickleItem items[4];
    int count = -1;
    cr_assert_eq(pickle_npy_object_items("nul.npy", bytes, n, items, 4, &count), -1);
    cr_expect_eq(count, 0);
    cr_expect_eq(strncmp(err_msg(), "nul.npy: ", 9), 0, "%s", err_msg());
}

/* ---- one latent file (deediff encode --dataset) --------------------------------- */

/* latents.safetensors with moments [3, 8, 2, 2] of fill_moments, labels (when
   given), and metadata pairs meta[0..2k) */
static void write_latent_file(const int64_t *labels, const char *const *meta, int nmeta)
{
    enum { C = 8, HW = 4 };
    float m[3][C * HW];
    for (int i = 0; i < 3; i++) fill_moments(m[i], C, HW, i);
    StWriter *w = st_writer_new();
    st_writer_add(w, "moments", DT_F32, 4, (int64_t[]){3, C, 2, 2}, m);
    if (labels) st_writer_add(w, "labels", DT_I64, 1, (int64_t[]){3}, labels);
    for (int k = 0; k < nmeta; k++) st_writer_meta(w, meta[2 * k], meta[2 * k + 1]);
    cr_assert_eq(st_writer_save(w, tmp_path("latents.safetensors")), 0, "%s", err_msg());
    st_writer_free(w);
}

Test(datasets, latent_file_moments_labels_and_errors)
{
    enum { HW = 4 };
    const int64_t labels[3] = {2, 0, 9};
    write_latent_file(labels, (const char *[]){"scale_factor", "0.5", "num_classes", "10"}, 2);
    DatasetSpec spec = {.format = DATA_LATENTS, .path = tmp_path("latents.safetensors")};
    Dataset *ds;
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    cr_assert(ds->n == 3 && ds->c == 4 && ds->h == 2 && ds->w == 2 && ds->num_classes == 10 && !ds->can_flip);
    float m[8 * HW], z[4 * HW];
    int64_t y;
    fill_moments(m, 8, HW, 2);
    cr_assert_eq(dataset_get(ds, 2, z, &y), 0);
    cr_expect_eq(y, 9);
    for (int j = 0; j < 4 * HW; j++) cr_assert_eq(z[j], 0.5f * m[j]);
    /* a batch draws as a U-ViT folder does, with the file's scale factor */
    DataCursor cur = {0, 0};
    float zb[4 * HW];
    int64_t yb;
    cr_assert_eq(dataset_next_batch(ds, &cur, 7, 1, 0, zb, &yb, NULL), 0, "%s", err_msg());
    int64_t item = dataset_order(ds, 7, 0, 0);
    fill_moments(m, 8, HW, (int)item);
    cr_expect_eq(yb, labels[item]);
    for (int j = 0; j < 4 * HW; j++) {
        float eps = philox_normal_at(7, RNG_LATENT_SAMPLE, 0, (uint64_t)j);
        cr_assert_eq(zb[j], 0.5f * (m[j] + expf(0.5f * m[4 * HW + j]) * eps), "j %d", j);
    }
    dataset_close(ds);

    /* unlabelled is fine; bad files name the file and the field */
    write_latent_file(NULL, (const char *[]){"scale_factor", "0.5"}, 1);
    cr_assert_eq(dataset_open(&spec, &ds), 0, "%s", err_msg());
    cr_expect_eq(ds->num_classes, 0);
    dataset_close(ds);
    write_latent_file(NULL, NULL, 0);
    expect_error(dataset_open(&spec, &ds), "latents.safetensors", "scale_factor: missing");
    write_latent_file(labels, (const char *[]){"scale_factor", "0.5"}, 1);
    expect_error(dataset_open(&spec, &ds), "latents.safetensors", "num_classes: missing");
    write_latent_file(labels, (const char *[]){"scale_factor", "0.5", "num_classes", "9"}, 2);
    expect_error(dataset_open(&spec, &ds), "latents.safetensors", "'labels': item 2 is 9, outside 0..8");
    write_latent_file(labels, (const char *[]){"scale_factor", "big", "num_classes", "10"}, 2);
    expect_error(dataset_open(&spec, &ds), "latents.safetensors", "scale_factor: 'big' is not a number");
    StWriter *w = st_writer_new();
    st_writer_add(w, "moments", DT_F32, 3, (int64_t[]){3, 8, 4}, (float[96]){0});
    st_writer_meta(w, "scale_factor", "1");
    cr_assert_eq(st_writer_save(w, tmp_path("latents.safetensors")), 0);
    st_writer_free(w);
    expect_error(dataset_open(&spec, &ds), "latents.safetensors", "'moments': expected F32 [N, 2*C, H, W]");
}
