/*
 * png_write.c: PNG output through libpng, atomically.
 */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../kernels/errors.h"
#include "png_write.h"

uint8_t png_pixel_u8(float x)
{
    float v = floorf((x + 1.0f) * 0.5f * 255.0f + 0.5f);
    if (!(v >= 0)) v = 0; /* NaN lands on 0 too */
    if (v > 255) v = 255;
    return (uint8_t)v;
}

/* rows[H][W*C] interleaved u8 -> path; writes path.tmp-<pid> then renames */
static int write_rows(const char *path, uint8_t *pixels, int C, int H, int W, int n_text,
                      const char *const *keys, const char *const *values)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return err_set("%s: cannot write: %s", path, strerror(errno));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *rows = xmalloc((size_t)H * sizeof *rows);
    png_textp text = xcalloc((size_t)(n_text ? n_text : 1), sizeof *text);
    volatile int ok = png && info;
    if (ok && setjmp(png_jmpbuf(png))) ok = 0;
    if (ok) {
        png_init_io(png, f);
        png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8,
                     C == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        for (int i = 0; i < n_text; i++) {
            text[i].compression = PNG_TEXT_COMPRESSION_NONE;
            text[i].key = (png_charp)keys[i];
            text[i].text = (png_charp)values[i];
        }
        if (n_text) png_set_text(png, info, text, n_text);
        for (int y = 0; y < H; y++) rows[y] = pixels + (size_t)y * W * C;
        png_write_info(png, info);
        png_write_image(png, rows);
        png_write_end(png, info);
    }
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(text);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return err_set("%s: cannot write the PNG: %s", path, strerror(errno ? errno : EIO));
    }
    return 0;
}

int png_write_chw(const char *path, const float *img, int C, int H, int W, int n_text,
                  const char *const *keys, const char *const *values)
{
    CHECK(C == 1 || C == 3, "png_write_chw: %d channels", C);
    uint8_t *px = xmalloc((size_t)C * H * W);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H * W; i++) px[(size_t)i * C + c] = png_pixel_u8(img[(size_t)c * H * W + i]);
    int rc = write_rows(path, px, C, H, W, n_text, keys, values);
    free(px);
    return rc;
}

int png_write_grid(const char *path, const float *imgs, int64_t n, int C, int H, int W, int cols)
{
    CHECK(C == 1 || C == 3, "png_write_grid: %d channels", C);
    const int pad = 2;
    int rows = (int)((n + cols - 1) / cols);
    int GW = cols * (W + pad) + pad, GH = rows * (H + pad) + pad;
    uint8_t *px = xmalloc((size_t)GW * GH * C);
    memset(px, 255, (size_t)GW * GH * C);
    for (int64_t k = 0; k < n; k++) {
        int gx = pad + (int)(k % cols) * (W + pad), gy = pad + (int)(k / cols) * (H + pad);
        const float *img = imgs + (size_t)k * C * H * W;
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    px[((size_t)(gy + y) * GW + gx + x) * C + c] =
                        png_pixel_u8(img[((size_t)c * H + y) * W + x]);
    }
    int rc = write_rows(path, px, C, GH, GW, 0, NULL, NULL);
    free(px);
    return rc;
}
