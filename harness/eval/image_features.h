/*
 * image_features.h: feature vectors of images, for the Frechet distances
 * (deediff features, fid, stats).
 *
 *   Inception (FID): pool3 [N,2048] of a PNG folder or an `images`
 *     safetensors, F32 [N,3,H,W] in [0,1] (harness/eval/cmd_features.c).
 *   FD-FMNIST: the penultimate features [N,D] of the project's Fashion-MNIST
 *     classifier (model/fmnist_net.h; harness/eval/fmnist_features.c), of an
 *     "fmnist source":
 *       DIR/                a folder of 28x28 PNGs (gray; colour becomes gray
 *                           with PIL's "L" rule), in name order; u8 -> u8/255*2-1
 *                           (dataset_pixel_to_float, the inverse of
 *                           harness/data/png_write.h's rule)
 *       X.safetensors       tensor `images` F32 [N,1,28,28] in [0,1] (the
 *                           convention of deediff features), x = 2v - 1
 *       fmnist-train        the embedded Fashion-MNIST training set (60,000)
 *       fmnist-test         its test set (10,000)
 *     A dataset name may carry one degradation, for sanity checks:
 *       fmnist-test+blur3     3x3 box blur (op_avg_pool2d, stride 1, padding 1,
 *                             dividing by the cells inside the image)
 *       fmnist-test+noise0.2  x + 0.2 z clamped to [-1,1], z the standard normal
 *                             element i*784+j of Philox stream (0, RNG_TEST, 0)
 *                             for image i, pixel j (any sigma in (0, 10])
 * Both return -1 with err_msg() on bad input; *features is malloc'd.
 */
#ifndef DEEDIFF_IMAGE_FEATURES_H
#define DEEDIFF_IMAGE_FEATURES_H

#include <stdint.h>

#include "../../kernels/ops.h"

int inception_features_of(Ctx *ctx, const char *weights, const char *images, float **pool3, int64_t *n);
/* the same of images already in memory: pixels[n,3,h,w] (host) in [0,1] */
int inception_features_of_pixels(Ctx *ctx, const char *weights, const float *pixels, int64_t n, int h, int w,
                                 float **pool3);

/* 1 when `source` names images for the FD-FMNIST network (a folder or a
   dataset name above), 0 otherwise (e.g. a features or statistics file) */
int fmnist_source_is_images(const char *source);
/* weights NULL: FMNIST_NET_DEFAULT_WEIGHTS */
int fmnist_features_of(Ctx *ctx, const char *weights, const char *source, float **features, int64_t *n,
                       int *dim);

#endif
