/*
 * fmnist_net.h: the FD-FMNIST feature network, a small CNN classifier of
 * Fashion-MNIST on the op interface.
 *
 * Inception-v3 weights cannot be had here, so for Fashion-MNIST the project
 * trains its own feature network (deediff train-fmnist-features) and the
 * Frechet distance on its features is reported as FD-FMNIST, never FID.
 *
 * The network, for x[B,1,28,28] in [-1,1] (U-ViT's pixel scaling):
 *   h1 = relu(conv3x3(x,  c1, pad 1))    [B,c1,28,28]   p1 = maxpool2(h1)  [B,c1,14,14]
 *   h2 = relu(conv3x3(p1, c2, pad 1))    [B,c2,14,14]   p2 = maxpool2(h2)  [B,c2,7,7]
 *   h3 = relu(conv3x3(p2, c3, pad 1))    [B,c3,7,7]
 *   pooled = global average of h3        [B,c3]
 *   feat   = LayerNorm(pooled)           [B,c3]   <- the features (D = c3)
 *   logits = feat @ head_w^T + head_b    [B,classes]
 * The features are the penultimate activation: pooled and normed, just
 * before the linear head.
 *
 * Parameters live in one flat F32 buffer (and the gradients in a second
 * with the same layout); params[] names each tensor and its offset. Files
 * are safetensors with the tensors by name and metadata "architecture"
 * (the config as JSON, {"arch":"fmnist-cnn","c1":..,"c2":..,"c3":..,
 * "classes":..}) plus whatever the trainer adds (command, accuracy, ...).
 */
#ifndef DEEDIFF_FMNIST_NET_H
#define DEEDIFF_FMNIST_NET_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/ops.h"
#include "param_table.h"

#define FMNIST_NET_SIDE 28
#define FMNIST_NET_PARAMS 10
#define FMNIST_NET_LN_EPS 1e-5f
/* the default weights of `deediff fid/features --features fmnist` */
#define FMNIST_NET_DEFAULT_WEIGHTS "results/weights/fmnist_features.safetensors"

typedef struct {
    int c1, c2, c3;   /* conv widths; the feature dimension is c3 */
    int classes;      /* 10 for Fashion-MNIST */
} FmnistNetConfig;

/* a parameter ("conv1.weight", ...) and its place in the buffer */
typedef ParamInfo FmnistParam;

typedef struct {
    FmnistNetConfig cfg;
    FmnistParam params[FMNIST_NET_PARAMS];
    size_t n_floats;  /* floats in the buffer */
    float *weights;   /* backend memory [n_floats] */
    float *grads;     /* backend memory [n_floats], or NULL (inference) */
} FmnistNet;

/* the configuration trained for results/weights: c 32, 64, 128; 10 classes */
FmnistNetConfig fmnist_net_config_default(void);
/* "{"arch":"fmnist-cnn","c1":32,...}"; the caller frees */
char *fmnist_net_config_json(const FmnistNetConfig *c);
/* parses the JSON above strictly (every key, nothing else, sizes 1..1024);
   `where` names the text in errors; -1 with err_msg() */
int fmnist_net_config_parse(const char *json, const char *where, FmnistNetConfig *c);

/* allocates the buffers (zeroed); grads only when with_grads */
void fmnist_net_create(FmnistNet *m, Ctx *ctx, const FmnistNetConfig *cfg, int with_grads);
void fmnist_net_destroy(FmnistNet *m, Ctx *ctx);
/* He-uniform convolutions (bound sqrt(6 / fan_in)), PyTorch-default head
   (bound 1 / sqrt(fan_in)), zero biases, LayerNorm weight 1 and bias 0;
   parameter i draws from Philox stream (seed, RNG_INIT_WEIGHTS, i) */
void fmnist_net_init(FmnistNet *m, Ctx *ctx, uint64_t seed);
const FmnistParam *fmnist_net_param(const FmnistNet *m, const char *name);

/* saves every tensor plus "architecture" and the n_meta given pairs,
   atomically; -1 with err_msg() */
int fmnist_net_save(const FmnistNet *m, Ctx *ctx, const char *path, int n_meta,
                    const char *const *keys, const char *const *values);
/* reads the architecture from the file's metadata, then every tensor by
   name with its shape checked (no grads); -1 with err_msg() naming the file
   and the field */
int fmnist_net_load(FmnistNet *m, Ctx *ctx, const char *path);

/* the activations of batches of up to max_batch images (backend memory),
   and with_grads: their gradients for the backward pass */
typedef struct {
    int max_batch, with_grads;
    float *h1, *p1, *h2, *p2, *h3, *pooled, *mean, *rstd, *feat, *logits;
    /* dh* at the ReLU outputs, dc* at the convolution outputs (before ReLU) */
    float *dh1, *dc1, *dp1, *dh2, *dc2, *dp2, *dh3, *dc3, *dpooled, *dfeat, *dlogits;
} FmnistActs;

void fmnist_acts_create(FmnistActs *a, Ctx *ctx, const FmnistNet *m, int max_batch, int with_grads);
void fmnist_acts_destroy(FmnistActs *a, Ctx *ctx);

/* x[B,1,28,28] (backend memory), B <= max_batch: fills every activation,
   a->feat [B,D] and a->logits [B,classes] among them */
void fmnist_net_forward(Ctx *ctx, const FmnistNet *m, FmnistActs *a, Tensor x);
/* after fmnist_net_forward on the same x, with a->dlogits [B,classes] set
   by the caller: ADDS the parameter gradients into m->grads */
void fmnist_net_backward(Ctx *ctx, FmnistNet *m, FmnistActs *a, Tensor x);

/* features[n,D] (host) of images[n,1,28,28] (host, in [-1,1]), chunk
   images at a time */
void fmnist_net_features(Ctx *ctx, const FmnistNet *m, const float *images, int64_t n,
                         float *features, int chunk);

#endif
