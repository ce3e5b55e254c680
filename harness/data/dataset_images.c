/*
 * dataset_images.c: a folder of PNG / JPEG images as an unlabelled dataset.
 *
 * Files: every *.png, *.jpg, *.jpeg (any case) directly in the folder, sorted
 * by name (strcmp) so the item order never depends on the file system;
 * spec.max_items keeps only the first ones. CelebA's img_align_celeba names
 * its files 000001.jpg .. 202599.jpg and its train split is 000001..162770,
 * so max_items = 162770 selects exactly the split U-ViT trains on.
 *
 * Colour (what PIL's convert() does): the decoder expands palettes, low-bit
 * gray and tRNS, strips 16-bit samples to 8 and DROPS alpha without
 * compositing (RGBA -> RGB as PIL's convert("RGB")); gray images become RGB
 * by repeating the value; with spec.channels = 1 colour becomes gray with
 * PIL's "L" rule (R*19595 + G*38470 + B*7471 + 0x8000) >> 16. CMYK JPEGs are
 * refused.
 *
 * Transforms:
 *   IMAGES_PLAIN   every image must be size x size (size from the spec, or
 *                  the first file's when 0); anything else is refused with
 *                  the file's name and its size.
 *   IMAGES_CELEBA  U-ViT's CelebA 64 pipeline (datasets.py: Crop(57, 185, 25,
 *                  153) then transforms.Resize(64)): the image must be the
 *                  aligned 178 x 218 (width x height); rows 57..184 and columns
 *                  25..152 are cut (128 x 128), then resized to 64 x 64 exactly
 *                  as Pillow's Image.resize(BILINEAR) does it (torchvision
 *                  hands PIL images to Pillow): a triangle filter whose support
 *                  is scaled by the factor 2, i.e. weights 1/8, 3/8, 3/8, 1/8
 *                  over 4 input pixels per axis (renormalised at the borders:
 *                  3/7, 3/7, 1/7), coefficients in 22-bit fixed point rounded
 *                  half away from zero, horizontal pass first with its result
 *                  rounded to uint8, then the vertical pass (Pillow 9,
 *                  libImaging/Resample.c). It is not a 2x2 box filter.
 */
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <png.h>

#include "harness/data/dataset.h"
#include "kernels/errors.h"

/* a decoded image: h x w x c uint8, c = 1 or 3 */
typedef struct {
    uint8_t *px;
    int w, h, c;
} Image8;

/* ---- what a header may claim ------------------------------------------------ */

/* Both decoders allocate w x h x c bytes from the header before reading a
   pixel, so a 100-byte file could ask for gigabytes. A file of n bytes gets at
   most 2048 n + 64 KiB pixel bytes: PNG data is deflated, which expands at
   most ~1032:1; a baseline JPEG spends at least one bit per 8x8 block and
   component, ~512:1 for gray, ~1024:1 for 4:2:0 colour and ~1400:1 at the
   most extreme sampling factors (4x4 luma, 1x1 chroma). Only
   near-blank 1-bit PNGs or arithmetic-coded JPEGs far above dataset sizes could
   exceed it; the 64 KiB keeps small images of any content. Beyond that, never
   more than 1 GiB. */
#define PIXELS_PER_FILE_BYTE 2048u
#define PIXELS_SLACK 65536u
#define PIXELS_MAX ((uint64_t)1 << 30)

/* 0 when f's size can justify w x h x c pixel bytes; else -1 with the reason
   (without the path) in why */
static int pixels_plausible(FILE *f, uint64_t w, uint64_t h, uint64_t c, char *why, size_t n)
{
    struct stat st;
    uint64_t file_bytes = fstat(fileno(f), &st) ? 0 : (uint64_t)st.st_size;
    uint64_t need = w * h * c;   /* each side is below 2^32, c <= 4: no overflow */
    uint64_t most = PIXELS_PER_FILE_BYTE * file_bytes + PIXELS_SLACK;
    if (need <= most && need <= PIXELS_MAX) return 0;
    snprintf(why, n, "declares %" PRIu64 "x%" PRIu64 "x%" PRIu64 " pixels, more than its %" PRIu64
             " bytes can hold", w, h, c, file_bytes);
    return -1;
}

/* ---- PNG ------------------------------------------------------------------ */

/* libpng's messages go into the error line, not to stderr */
static void png_error_jump(png_structp png, png_const_charp msg)
{
    snprintf((char *)png_get_error_ptr(png), 256, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warning_quiet(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static int png_decode(const char *path, Image8 *img)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: file: cannot open", path);
    char why[256] = "not a readable PNG file";
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, why, png_error_jump,
                                             png_warning_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) FATAL("libpng: out of memory");
    uint8_t *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        free(px);
        free(rows);
        return err_set("%s: png: %s", path, why);
    }
    png_init_io(png, f);
    png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_read_info(png, info);
    png_set_expand(png);       /* palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha */
    png_set_strip_16(png);
    png_set_strip_alpha(png);  /* PIL convert("RGB"): alpha dropped, not composited */
    png_read_update_info(png, info);
    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    int c = png_get_channels(png, info);
    if (c != 1 && c != 3) png_error(png, "unexpected channel count");
    char claim[160];
    if (pixels_plausible(f, (uint64_t)w, (uint64_t)h, (uint64_t)c, claim, sizeof claim))
        png_error(png, claim);   /* the setjmp above reports it and cleans up */
    px = xmalloc((size_t)w * h * c);
    rows = xmalloc((size_t)h * sizeof *rows);
    for (int r = 0; r < h; r++) rows[r] = px + (size_t)r * w * c;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    free(rows);
    img->px = px; img->w = w; img->h = h; img->c = c;
    return 0;
}

/* ---- JPEG ----------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
} JpegErr;

static void jpeg_error_jump(j_common_ptr cinfo)
{
    longjmp(((JpegErr *)cinfo->err)->jump, 1);
}

static int jpeg_decode(const char *path, Image8 *img)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: file: cannot open", path);
    struct jpeg_decompress_struct cinfo;
    JpegErr jerr;
    uint8_t *volatile px = NULL;
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_error_jump;
    jerr.pub.output_message = jpeg_error_jump; /* corrupt-data warnings are errors too */
    if (setjmp(jerr.jump)) {
        char why[JMSG_LENGTH_MAX];
        jerr.pub.format_message((j_common_ptr)&cinfo, why);
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        free(px);
        return err_set("%s: jpeg: %s", path, why);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    char refused[160] = "";
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        snprintf(refused, sizeof refused, "CMYK images are not supported");
    } else {
        cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
        jpeg_calc_output_dimensions(&cinfo);   /* before start_decompress allocates by them */
        pixels_plausible(f, cinfo.output_width, cinfo.output_height,
                         (uint64_t)cinfo.output_components, refused, sizeof refused);
    }
    if (refused[0]) {
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        return err_set("%s: jpeg: %s", path, refused);
    }
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, c = cinfo.output_components;
    px = xmalloc((size_t)w * h * c);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = px + (size_t)cinfo.output_scanline * w * c;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    img->px = px; img->w = w; img->h = h; img->c = c;
    return 0;
}

static int has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n > s && strcasecmp(name + n - s, suffix) == 0;
}

static int image_decode(const char *path, Image8 *img)
{
    if (has_suffix(path, ".png")) return png_decode(path, img);
    return jpeg_decode(path, img);
}

/* ---- Pillow's bilinear resize ---------------------------------------------- */

#define PIL_PRECISION_BITS (32 - 8 - 2)

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter
   (support 1): for output pixel o, input pixels bounds[2o] .. +bounds[2o+1]-1
   with fixed-point weights kk[o*ksize + k]; returns ksize */
static int pil_bilinear_coeffs(int in_size, int out_size, int **bounds_out, int **kk_out)
{
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    int *bounds = xmalloc((size_t)out_size * 2 * sizeof *bounds);
    int *kk = xcalloc((size_t)out_size * ksize, sizeof *kk);
    double *pre = xmalloc((size_t)ksize * sizeof *pre);
    for (int o = 0; o < out_size; o++) {
        double center = (o + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double t = fabs((x + xmin - center + 0.5) * ss);
            double wgt = t < 1.0 ? 1.0 - t : 0.0;
            pre[x] = wgt;
            ww += wgt;
        }
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? pre[x] / ww : pre[x];
            kk[o * ksize + x] = (int)(v < 0 ? -0.5 + v * (1 << PIL_PRECISION_BITS)
                                             : 0.5 + v * (1 << PIL_PRECISION_BITS));
        }
        bounds[2 * o] = xmin;
        bounds[2 * o + 1] = xmax;
    }
    free(pre);
    *bounds_out = bounds;
    *kk_out = kk;
    return ksize;
}

static uint8_t pil_clip8(int64_t ss)
{
    int64_t v = ss >> PIL_PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* src is sh x sw x c (row stride sstride bytes), dst is dh x dw x c:
   Pillow's two passes, horizontal (into uint8) then vertical */
static void pil_resize_bilinear(const uint8_t *src, int sw, int sh, size_t sstride, int c,
                                uint8_t *dst, int dw, int dh)
{
    int *hb, *hk, *vb, *vk;
    int hks = pil_bilinear_coeffs(sw, dw, &hb, &hk);
    int vks = pil_bilinear_coeffs(sh, dh, &vb, &vk);
    uint8_t *tmp = xmalloc((size_t)sh * dw * c); /* sh x dw x c */
    for (int y = 0; y < sh; y++)
        for (int x = 0; x < dw; x++)
            for (int ch = 0; ch < c; ch++) {
                int64_t ss = 1 << (PIL_PRECISION_BITS - 1);
                for (int k = 0; k < hb[2 * x + 1]; k++)
                    ss += (int64_t)src[(size_t)y * sstride + (size_t)(hb[2 * x] + k) * c + ch] *
                          hk[x * hks + k];
                tmp[((size_t)y * dw + x) * c + ch] = pil_clip8(ss);
            }
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++)
            for (int ch = 0; ch < c; ch++) {
                int64_t ss = 1 << (PIL_PRECISION_BITS - 1);
                for (int k = 0; k < vb[2 * y + 1]; k++)
                    ss += (int64_t)tmp[((size_t)(vb[2 * y] + k) * dw + x) * c + ch] *
                          vk[y * vks + k];
                dst[((size_t)y * dw + x) * c + ch] = pil_clip8(ss);
            }
    free(tmp);
    free(hb); free(hk); free(vb); free(vk);
}

/* ---- one file -> one item ---------------------------------------------------- */

#define CELEBA_W 178
#define CELEBA_H 218
#define CELEBA_TOP 57
#define CELEBA_LEFT 25
#define CELEBA_CROP 128
#define CELEBA_OUT 64

/* the image with c channels (PIL's convert rules, see the top of the file) */
static void image_to_channels(Image8 *img, int c)
{
    if (img->c == c) return;
    size_t n = (size_t)img->w * img->h;
    uint8_t *px = xmalloc(n * c);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = img->px + i * img->c;
        if (c == 3) {
            px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = s[0];
        } else {
            px[i] = (uint8_t)((s[0] * 19595u + s[1] * 38470u + s[2] * 7471u + 0x8000u) >> 16);
        }
    }
    free(img->px);
    img->px = px;
    img->c = c;
}

/* decodes path and writes its item (c x side x side, CHW) into dst */
static int image_item(const char *path, const DatasetSpec *spec, int c, int side, uint8_t *dst)
{
    Image8 img;
    if (image_decode(path, &img) < 0) return -1;
    image_to_channels(&img, c);
    const uint8_t *hwc;
    uint8_t *resized = NULL;
    if (spec->transform == IMAGES_CELEBA) {
        if (img.w != CELEBA_W || img.h != CELEBA_H) {
            free(img.px);
            return err_set("%s: size: %d x %d (width x height), the CelebA transform needs "
                           "the aligned 178 x 218", path, img.w, img.h);
        }
        resized = xmalloc((size_t)CELEBA_OUT * CELEBA_OUT * c);
        const uint8_t *crop = img.px + ((size_t)CELEBA_TOP * img.w + CELEBA_LEFT) * c;
        pil_resize_bilinear(crop, CELEBA_CROP, CELEBA_CROP, (size_t)img.w * c, c, resized,
                            CELEBA_OUT, CELEBA_OUT);
        hwc = resized;
    } else {
        if (img.w != side || img.h != side) {
            free(img.px);
            return err_set("%s: size: %d x %d, expected %d x %d like every image of the folder",
                           path, img.w, img.h, side, side);
        }
        hwc = img.px;
    }
    for (int ch = 0; ch < c; ch++)
        for (int p = 0; p < side * side; p++) dst[(size_t)ch * side * side + p] = hwc[(size_t)p * c + ch];
    free(resized);
    free(img.px);
    return 0;
}

/* ---- the folder ----------------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the sorted image file names of dir; returns the count or -1 */
static int64_t list_images(const char *dir, char ***names_out)
{
    DIR *d = opendir(dir);
    if (!d) return err_set("%s: folder: cannot open", dir);
    int64_t n = 0, cap = 1024;
    char **names = xmalloc((size_t)cap * sizeof *names);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!has_suffix(e->d_name, ".png") && !has_suffix(e->d_name, ".jpg") &&
            !has_suffix(e->d_name, ".jpeg"))
            continue;
        if (n == cap) names = xrealloc(names, (size_t)(cap *= 2) * sizeof *names);
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, name_cmp);
    *names_out = names;
    return n;
}

int dataset_open_images(const DatasetSpec *spec, Dataset **out)
{
    if (!spec->path) return err_set("images: path: no folder given");
    int c = spec->channels ? spec->channels : 3;
    if (c != 1 && c != 3) return err_set("%s: channels: %d, expected 1 or 3", spec->path, c);
    char **names;
    int64_t total = list_images(spec->path, &names);
    if (total < 0) return -1;
    int64_t n = spec->max_items > 0 && spec->max_items < total ? spec->max_items : total;
    int rc = -1;
    Dataset *ds = NULL;
    if (n == 0) {
        err_set("%s: folder: no .png, .jpg or .jpeg files", spec->path);
        goto done;
    }

    size_t plen = strlen(spec->path) + 2;
    for (int64_t i = 0; i < n; i++) {
        char *p = xmalloc(plen + strlen(names[i]));
        snprintf(p, plen + strlen(names[i]), "%s/%s", spec->path, names[i]);
        free(names[i]);
        names[i] = p;
    }
    int side = spec->transform == IMAGES_CELEBA ? CELEBA_OUT : spec->size;
    if (side <= 0) { /* plain, size from the first file */
        Image8 first;
        if (image_decode(names[0], &first) < 0) goto done;
        side = first.w;
        free(first.px);
    }
    ds = dataset_alloc_pixels(spec->transform == IMAGES_CELEBA ? "celeba 64" : "images", n, c,
                              side, side, 0);
    snprintf(ds->name, sizeof ds->name, "%s", spec->path);
    size_t chw = (size_t)c * side * side;
    int64_t first_bad = n;
    char bad_msg[1024] = "";
    #pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < n; i++) {
        if (image_item(names[i], spec, c, side, ds->pixels + (size_t)i * chw) < 0) {
            #pragma omp critical(dataset_images_error)
            if (i < first_bad) {
                first_bad = i;
                snprintf(bad_msg, sizeof bad_msg, "%s", err_msg());
            }
        }
    }
    if (first_bad < n) {
        err_set("%s", bad_msg);
        dataset_close(ds);
        ds = NULL;
        goto done;
    }
    rc = 0;
done:
    for (int64_t i = 0; i < total; i++) free(names[i]);
    free(names);
    *out = ds;
    return rc;
}
