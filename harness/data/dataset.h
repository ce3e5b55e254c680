/*
 * dataset.h: training data, one interface for every format, and the
 * deterministic batch iterator.
 *
 * A Dataset is N items. An item is an image (or latent) of C x H x W floats,
 * optionally with an int64 class label and/or a context tensor (text-to-image:
 * ctx_len x ctx_dim CLIP tokens). Pixel formats keep every image in memory as
 * uint8 [N, C, H, W] and convert per batch with U-ViT's rule (ToTensor then
 * Normalize(0.5, 0.5)): x = (u / 255 - 0.5) / 0.5 in float, so 0 -> -1,
 * 255 -> 1. Latent folders are read from disk item by item.
 *
 * Formats (spec.format):
 *   DATA_FMNIST   Fashion-MNIST IDX .gz (dataset_fmnist.c): 1 x 28 x 28, 10 classes
 *   DATA_CIFAR10  CIFAR-10 binary batches (dataset_cifar10.c): 3 x 32 x 32, 10 classes
 *   DATA_IMAGES   a folder of PNG/JPEG files (dataset_images.c), unlabelled,
 *                 plain (all one size) or U-ViT's CelebA crop + resize to 64
 *   DATA_LATENTS  U-ViT's extracted feature folders (dataset_latents.c):
 *                 ImageNet (moments + label) or MS-COCO (moments + captions),
 *                 or one .safetensors file of moments (+ labels) written by
 *                 `deediff encode --dataset` (dataset_latent_file.c)
 *
 * The iterator. Training reads batches through a DataCursor {epoch, pos}:
 * epoch e visits the items in the order of a permutation drawn from Philox
 * stream (seed, RNG_DATA_SHUFFLE, e) by Fisher-Yates (for i = N-1 .. 1, swap
 * i with philox_below(seed, SHUFFLE, e, i, i+1)); pos is the position in that
 * order. A batch takes positions pos .. pos+B-1; when fewer than B remain the
 * rest of the epoch is skipped and the batch starts epoch e+1 at 0 (PyTorch's
 * drop_last=True, what U-ViT trains with). The item at position p of epoch e
 * is flipped left-right when flip is on and the top bit of element p of
 * stream (seed, RNG_DATA_FLIP, e) is set (probability 1/2). The cursor is all
 * the state: saving {epoch, pos} in a checkpoint and handing it back resumes
 * the exact batch sequence.
 */
#ifndef DEEDIFF_DATASET_H
#define DEEDIFF_DATASET_H

#include <stdint.h>

typedef enum {
    DATA_FMNIST = 0,
    DATA_CIFAR10,
    DATA_IMAGES,
    DATA_LATENTS,
} DataFormat;

/* How to resize a folder of images (DATA_IMAGES). */
typedef enum {
    IMAGES_PLAIN = 0,   /* every image must already be size x size */
    IMAGES_CELEBA,      /* U-ViT CelebA: 178x218 -> crop rows 57..184, cols 25..152
                           (128 x 128) -> PIL bilinear resize to 64 x 64 */
} ImagesTransform;

typedef struct {
    DataFormat format;
    const char *path;      /* folder (or NULL: the format's default folder) */
    int test_split;        /* FMNIST / CIFAR10: 0 = train set, 1 = test set */
    int pad32;             /* FMNIST: 0 = 28 x 28 (default), 1 = padded with -1 to 32 x 32 */
    ImagesTransform transform; /* IMAGES */
    int size;              /* IMAGES plain: required side; 0 = the first image's */
    int channels;          /* IMAGES: 3 (RGB, default when 0) or 1 (grayscale) */
    int64_t max_items;     /* IMAGES / LATENTS: use only the first max_items (sorted); 0 = all */
    int latent_moments;    /* LATENTS: 0 = items are z = 0.18215 (mean + std eps) [4,32,32]
                              (default, what U-ViT trains on); 1 = the raw moments [8,32,32] */
} DatasetSpec;

typedef struct Dataset Dataset;

/* per-format item reader for data that is not held in memory */
typedef int (*DatasetLoadFn)(Dataset *ds, int64_t index, uint64_t seed, int64_t epoch,
                             int64_t pos, float *img_chw, int64_t *label, float *ctx);

struct Dataset {
    char name[64];          /* "fashion-mnist train", ... (for logs and errors) */
    int64_t n;              /* number of items */
    int c, h, w;            /* item shape */
    int num_classes;        /* 0 = unlabelled */
    int ctx_len, ctx_dim;   /* context tensor per item; 0 = none */
    int can_flip;           /* 0 for latents: a flipped latent is not a flipped image's latent */
    /* in-memory pixel formats */
    uint8_t *pixels;        /* [n, c, h, w] */
    int64_t *labels;        /* [n] or NULL */
    /* disk-backed formats */
    DatasetLoadFn load;
    void *impl;
    void (*impl_free)(void *impl);
    /* the cached permutation of one (seed, epoch) */
    int64_t *perm;
    uint64_t perm_seed;
    int64_t perm_epoch;
};

typedef struct {
    int64_t epoch;
    int64_t pos;
} DataCursor;

/* Opens a dataset; -1 with err_msg() ("<file>: <field>: <what>") on bad input. */
int dataset_open(const DatasetSpec *spec, Dataset **out);
void dataset_close(Dataset *ds);

/* Item `index` without augmentation. img_chw gets C*H*W floats; label (may be
   NULL) the class or -1 when unlabelled. Latent items without a draw give the
   mean 0.18215 * mean (or the raw moments) and, for text, caption 0; ctx
   (may be NULL) gets ctx_len*ctx_dim floats. -1 on a bad file. */
int dataset_get(Dataset *ds, int64_t index, float *img_chw, int64_t *label);
int dataset_get_ctx(Dataset *ds, int64_t index, float *img_chw, int64_t *label, float *ctx);

/* The next batch of B items (see the top of this file). x is [B, C, H, W];
   y (may be NULL) is [B] (-1 when unlabelled); ctx (may be NULL) is
   [B, ctx_len, ctx_dim]. The cursor advances. -1 on a bad file or when flip
   is asked of a dataset that cannot flip, or B is not in 1..N. */
int dataset_next_batch(Dataset *ds, DataCursor *cursor, uint64_t seed, int B, int flip,
                       float *x, int64_t *y, float *ctx);

/* The dataset index at position pos of epoch `epoch` (the permutation). */
int64_t dataset_order(Dataset *ds, uint64_t seed, int64_t epoch, int64_t pos);

/* U-ViT's pixel scaling of one uint8 value to [-1, 1]. */
float dataset_pixel_to_float(uint8_t u);

/* ---- used by the format readers ------------------------------------------ */

/* a new in-memory dataset with room for n items of c x h x w (and labels) */
Dataset *dataset_alloc_pixels(const char *name, int64_t n, int c, int h, int w, int num_classes);

int dataset_open_fmnist(const DatasetSpec *spec, Dataset **out);
int dataset_open_cifar10(const DatasetSpec *spec, Dataset **out);
int dataset_open_images(const DatasetSpec *spec, Dataset **out);
int dataset_open_latents(const DatasetSpec *spec, Dataset **out);
int dataset_open_latent_file(const DatasetSpec *spec, Dataset **out);

/* a latent item from the autoencoder's moments[2*chw] (mean, then log-variance):
   out[chw] = scale * (mean + exp(0.5 clamp(logvar, -30, 20)) eps), eps from
   Philox (seed, RNG_LATENT_SAMPLE, epoch) elements pos*chw.. (pos < 0: eps = 0);
   raw: the moments' first chw values as they are */
void dataset_latent_from_moments(const float *moments, size_t chw, float scale, int raw, uint64_t seed,
                                 int64_t epoch, int64_t pos, float *out);

#endif
