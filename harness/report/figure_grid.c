/*
 * figure_grid.c: figure 7's data file (figure_export_grid(), figure_data.h):
 * sample grids read from PNG (as `deediff sample` writes grid.png), a block
 * of RGB pixels per panel, for gnuplot's `with rgbimage`, which draws every
 * pixel as a square however large the panel is (no smoothing).
 */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "figure_data.h"
#include "figure_io.h"

/* an 8-bit RGB copy of any PNG (libpng's simplified API converts) */
static int read_rgb(const char *path, unsigned char **rgb, int *w, int *h)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path))
        return err_set("%s: cannot read the PNG: %s", path, img.message);
    img.format = PNG_FORMAT_RGB;
    *w = (int)img.width, *h = (int)img.height;
    *rgb = xmalloc(PNG_IMAGE_SIZE(img));
    if (!png_image_finish_read(&img, NULL, *rgb, 0, NULL)) {
        int rc = err_set("%s: cannot read the PNG: %s", path, img.message);
        png_image_free(&img);
        free(*rgb);
        *rgb = NULL;
        return rc;
    }
    return 0;
}

int figure_export_grid(const char *const *png_paths, const char *const *titles, int n, const char *path)
{
    if (n <= 0) return err_set("%s: no sample grids to draw", path);
    TextBuf t;
    text_init(&t);
    text_printf(&t, "# figure 7: %d sample grids, a block each: x (column) y (row from the top) r g b\n", n);
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) text_printf(&t, "# %s: %s\n", titles[i], png_paths[i]);
    for (int i = 0; rc == 0 && i < n; i++) {
        unsigned char *rgb;
        int w = 0, h = 0;
        rc = read_rgb(png_paths[i], &rgb, &w, &h);
        if (rc) break;
        const char *columns[5] = {"x", "y", titles[i], "g", "b"};
        figure_block_begin(&t, i, titles[i], 5, columns);
        for (int y = 0; y < h; y++) {
            if (y > 0) text_printf(&t, "\n");   // a scan line ends
            for (int x = 0; x < w; x++) {
                const unsigned char *p = rgb + ((size_t)y * w + x) * 3;
                text_printf(&t, "%d %d %d %d %d\n", x, y, p[0], p[1], p[2]);
            }
        }
        free(rgb);
    }
    if (rc == 0) rc = text_write_atomic(&t, path);
    text_free(&t);
    return rc;
}
