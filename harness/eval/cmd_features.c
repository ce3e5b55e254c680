/*
 * cmd_features.c: `deediff features`: pytorch-fid's pool3 features of
 * images, computed with the FID Inception network (model/inception.h), or
 * with --features fmnist[:W] the FD-FMNIST features of the project's
 * Fashion-MNIST classifier (harness/eval/fmnist_features.c, image_features.h).
 *
 * Images come from a safetensors file (`images` F32 [N,3,H,W], values in
 * [0,1]) or from a folder of PNG files (8-bit gray, RGB or RGBA; alpha is
 * dropped as PIL's convert('RGB') does; value u8 / 255), taken in name
 * order and all of one size. OUT receives `pool3` F32 [N,2048] (Inception)
 * or `features` F32 [N,D] (FD-FMNIST), written atomically. Bad input
 * (files, tensors, values) exits 2 with one line.
 */
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "../../model/fmnist_net.h"
#include "../../model/inception.h"
#include "../cli/cli.h"
#include "image_features.h"
#include "../cli/run_context.h"

/* images per network call: bounds the activation arena (13.8 MB per image) */
#define FEATURES_CHUNK 32

typedef struct {
    int64_t n, h, w;
    float *pixels;   /* [n,3,h,w] in [0,1] */
} ImageSet;

/* ---- images from safetensors ----------------------------------------------------- */

static int read_images_st(const char *path, ImageSet *out)
{
    SafeTensors st;
    if (st_open(&st, path)) return -1;
    int rc = 0;
    const StEntry *e = st_find(&st, "images");
    if (!e) rc = err_set("%s: missing tensor 'images' (F32 [N,3,H,W] in [0,1])", path);
    else if (e->dtype != DT_F32)
        rc = err_set("%s: tensor 'images': dtype %s, expected F32", path, dtype_name(e->dtype));
    else if (e->ndim != 4 || e->shape[0] < 1 || e->shape[1] != 3 || e->shape[2] < 1 || e->shape[3] < 1)
        rc = err_set("%s: tensor 'images': expected shape [N,3,H,W] with N >= 1", path);
    if (rc == 0) {
        out->n = e->shape[0], out->h = e->shape[2], out->w = e->shape[3];
        int64_t numel = out->n * 3 * out->h * out->w;
        out->pixels = xmalloc((size_t)numel * sizeof(float));
        rc = st_read_f32(&st, "images", out->pixels, 4, e->shape);
        for (int64_t i = 0; rc == 0 && i < numel; i++) {
            float v = out->pixels[i];
            if (!(v >= 0.0f && v <= 1.0f))
                rc = err_set("%s: tensor 'images': element %lld is %g, expected a value in [0,1]",
                             path, (long long)i, v);
        }
    }
    st_close(&st);
    return rc;
}

/* ---- images from a PNG folder ------------------------------------------------------ */

static int is_png_name(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && !strcasecmp(name + n - 4, ".png");
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* decodes one PNG into dst[3,h,w] (dst NULL: only reads the size) */
static int read_png(const char *path, int64_t *h, int64_t *w, float *dst, int64_t want_h,
                    int64_t want_w)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path))
        return err_set("%s: not a readable PNG (%s)", path, img.message);
    if (img.format & PNG_FORMAT_FLAG_LINEAR) {
        png_image_free(&img);
        return err_set("%s: 16-bit PNG, expected 8-bit gray, RGB or RGBA", path);
    }
    *h = img.height, *w = img.width;
    if (want_h > 0 && (*h != want_h || *w != want_w)) {
        png_image_free(&img);
        return err_set("%s: size %lldx%lld (HxW), expected %lldx%lld like the first image", path,
                       (long long)*h, (long long)*w, (long long)want_h, (long long)want_w);
    }
    img.format = PNG_FORMAT_RGBA;  // gray is replicated; alpha is dropped below, not blended
    size_t npx = (size_t)img.width * img.height;
    uint8_t *rgba = xmalloc(npx * 4);
    int ok = png_image_finish_read(&img, NULL, rgba, 0, NULL);
    if (!ok) {
        free(rgba);
        int rc = err_set("%s: corrupt PNG (%s)", path, img.message);
        png_image_free(&img);
        return rc;
    }
    for (size_t p = 0; p < npx; p++)
        for (int c = 0; c < 3; c++) dst[c * npx + p] = rgba[p * 4 + c] / 255.0f;
    free(rgba);
    return 0;
}

static int read_images_dir(const char *dir, ImageSet *out)
{
    DIR *d = opendir(dir);
    if (!d) return err_set("%s: cannot open the folder", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_png_name(e->d_name)) continue;
        if (n == cap) names = xrealloc(names, (cap = cap ? 2 * cap : 256) * sizeof *names);
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    int rc = 0;
    if (n == 0) rc = err_set("%s: no .png files in the folder", dir);
    else qsort(names, n, sizeof *names, by_name);
    size_t plen = strlen(dir) + 2;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *path = xmalloc(plen + strlen(names[i]));
        sprintf(path, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", names[i]);
        if (i == 0) {
            /* the first image sets the size: read its header, then allocate */
            png_image probe;
            memset(&probe, 0, sizeof probe);
            probe.version = PNG_IMAGE_VERSION;
            if (!png_image_begin_read_from_file(&probe, path)) {
                rc = err_set("%s: not a readable PNG (%s)", path, probe.message);
            } else {
                out->n = (int64_t)n, out->h = probe.height, out->w = probe.width;
                png_image_free(&probe);
                out->pixels = xmalloc((size_t)n * 3 * out->h * out->w * sizeof(float));
            }
        }
        int64_t h, w;
        if (rc == 0)
            rc = read_png(path, &h, &w, out->pixels + i * 3 * out->h * out->w, out->h, out->w);
        free(path);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

/* ---- the command ---------------------------------------------------------------------- */

/* pool3[n,2048] of every image, FEATURES_CHUNK at a time */
static void run_features(Ctx *ctx, const Inception *m, const ImageSet *set, float *pool3)
{
    int chunk = set->n < FEATURES_CHUNK ? (int)set->n : FEATURES_CHUNK;
    size_t per_img = (size_t)3 * set->h * set->w;
    InceptionActs acts;
    inception_acts_create(&acts, ctx, m, chunk);
    float *dx = ctx_alloc(ctx, (size_t)chunk * per_img * sizeof(float));
    float *df = ctx_alloc(ctx, (size_t)chunk * INCEPTION_FEATURES * sizeof(float));
    for (int64_t at = 0; at < set->n; at += chunk) {
        int64_t n = set->n - at < chunk ? set->n - at : chunk;
        ctx_upload(ctx, dx, set->pixels + at * per_img, n * per_img * sizeof(float));
        inception_forward(ctx, m, &acts, tensor4(dx, DT_F32, n, 3, set->h, set->w),
                          tensor2(df, DT_F32, n, INCEPTION_FEATURES));
        ctx_download(ctx, pool3 + at * INCEPTION_FEATURES, df,
                     (size_t)n * INCEPTION_FEATURES * sizeof(float));
    }
    ctx_free(ctx, dx);
    ctx_free(ctx, df);
    inception_acts_destroy(&acts, ctx);
}

int inception_features_of(Ctx *ctx, const char *weights, const char *images, float **pool3, int64_t *n)
{
    Inception m;
    ImageSet set = {0};
    *pool3 = NULL;
    if (inception_load(&m, ctx, weights)) return -1;
    int rc;
    struct stat sb;
    if (stat(images, &sb) != 0) rc = err_set("%s: no such file or folder", images);
    else if (S_ISDIR(sb.st_mode)) rc = read_images_dir(images, &set);
    else rc = read_images_st(images, &set);
    if (rc == 0) {
        *n = set.n;
        *pool3 = xmalloc((size_t)set.n * INCEPTION_FEATURES * sizeof(float));
        run_features(ctx, &m, &set, *pool3);
    }
    free(set.pixels);
    inception_destroy(&m, ctx);
    return rc;
}

int inception_features_of_pixels(Ctx *ctx, const char *weights, const float *pixels, int64_t n, int h, int w,
                                 float **pool3)
{
    Inception m;
    *pool3 = NULL;
    if (inception_load(&m, ctx, weights)) return -1;
    ImageSet set = {n, h, w, (float *)pixels};  // read only
    *pool3 = xmalloc((size_t)n * INCEPTION_FEATURES * sizeof(float));
    run_features(ctx, &m, &set, *pool3);
    inception_destroy(&m, ctx);
    return 0;
}

/* --features fmnist[:W]: `features` [N,D] of an fmnist source */
static int features_fmnist(Ctx *ctx, const char *net, const char *images, const char *output)
{
    const char *weights = net[6] == ':' ? net + 7 : FMNIST_NET_DEFAULT_WEIGHTS;
    float *feat;
    int64_t n;
    int dim;
    if (fmnist_features_of(ctx, weights, images, &feat, &n, &dim)) return -1;
    StWriter *w = st_writer_new();
    int64_t shape[2] = {n, dim};
    st_writer_add(w, "features", DT_F32, 2, shape, feat);
    st_writer_meta(w, "feature_network", "fmnist (FD-FMNIST)");
    st_writer_meta(w, "fmnist_weights", weights);
    st_writer_meta(w, "images", images);
    int rc = st_writer_save(w, output);
    st_writer_free(w);
    if (rc == 0) printf("%s: features [%lld, %d] (FD-FMNIST network %s) of %s\n", output, (long long)n, dim,
                        weights, images);
    free(feat);
    return rc;
}

int cmd_features(int argc, char **argv)
{
    const char *weights = NULL, *images = NULL, *output = NULL, *net = "inception";
    RunOptions ro = run_options_default();
    CliOpt opts[] = {
        {"--inception", "W.safetensors", "pytorch-fid Inception weights (tests/reference/convert_inception.py)", &weights, NULL, 0},
        {"--features", "NET", "inception (default) or fmnist[:W.safetensors], the FD-FMNIST network "
                              "(images: DIR/, [N,1,28,28] safetensors, fmnist-train, fmnist-test)", &net, NULL, 0},
        {"--images", "IN.safetensors|DIR/", "images F32 [N,3,H,W] in [0,1], or a folder of PNG files", &images, NULL, 1},
        {"--output", "OUT.safetensors", "receives pool3 F32 [N,2048] (features F32 [N,D] for fmnist)", &output, NULL, 1},
        RUN_OPTIONS(ro),
    };
    int rc = cli_parse("features", "(--inception W | --features fmnist[:W]) --images IN|DIR/ --output OUT [options]",
                       "Computes pytorch-fid's 2048-d pool3 features of every image (resized to "
                       "299x299 bilinearly) with the FID Inception-v3 network.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : -1;
    int fmnist = !strcmp(net, "fmnist") || (!strncmp(net, "fmnist:", 7) && net[7]);
    if (!fmnist && strcmp(net, "inception") != 0)
        return err_set("--features: '%s' is not inception, fmnist or fmnist:W.safetensors", net);
    if (!fmnist && !weights) return err_set("features: missing required option --inception (see deediff features --help)");
    if (run_options_cpu_only(&ro, "the feature networks run on the CPU only for now")) return -1;
    RunContext run;
    if (run_context_open(&run, &ro)) return -1;
    if (fmnist) {
        rc = features_fmnist(&run.ctx, net, images, output);
        run_context_close(&run);
        return rc;
    }
    float *pool3 = NULL;
    int64_t n = 0;
    rc = inception_features_of(&run.ctx, weights, images, &pool3, &n);
    if (rc == 0) {
        StWriter *w = st_writer_new();
        int64_t shape[2] = {n, INCEPTION_FEATURES};
        st_writer_add(w, "pool3", DT_F32, 2, shape, pool3);
        st_writer_meta(w, "inception", weights);
        st_writer_meta(w, "images", images);
        rc = st_writer_save(w, output);
        st_writer_free(w);
    }
    free(pool3);
    run_context_close(&run);
    return rc;
}
