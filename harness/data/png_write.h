/*
 * png_write.h: writing generated images as lossless PNG.
 *
 * One float-to-uint8 rule for every image the project writes (and for FID
 * features computed from PNGs): pixels in [-1, 1] map to
 * u8 = clamp(floor((x + 1) / 2 * 255 + 0.5), 0, 255), torchvision's
 * save_image rule applied to (x + 1) / 2, which is what U-ViT's samples go
 * through. Files are written atomically (temporary file, fsync, rename).
 */
#ifndef DEEDIFF_PNG_WRITE_H
#define DEEDIFF_PNG_WRITE_H

#include <stdint.h>

/* the documented rule above, for one value */
uint8_t png_pixel_u8(float x);

/* writes img[C,H,W] (C = 1 gray or 3 RGB, values in [-1,1]) to path with
   the key/value text chunks given (n_text may be 0); -1 + err_msg() */
int png_write_chw(const char *path, const float *img, int C, int H, int W, int n_text,
                  const char *const *keys, const char *const *values);

/* writes n images [n,C,H,W] as one grid of `cols` columns with a 2-pixel
   border; -1 + err_msg() */
int png_write_grid(const char *path, const float *imgs, int64_t n, int C, int H, int W, int cols);

#endif
