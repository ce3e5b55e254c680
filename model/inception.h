/*
 * inception.h: pytorch-fid's FID Inception-v3 (pool3 features) on the op
 * interface, inference only.
 *
 * The network is torchvision's Inception-v3 with pytorch-fid's patched
 * blocks (REFERENCE.md section 4): Mixed_5b..5d FIDInceptionA, Mixed_6b..6e
 * FIDInceptionC, Mixed_7b FIDInceptionE_1, Mixed_7c FIDInceptionE_2. Images
 * [N,3,H,W] in [0,1] are resized to 299x299 (bilinear, align_corners false),
 * mapped to [-1,1], and the 2048-d output of the final average pool is the
 * feature vector ("pool3").
 *
 * Weights load by pytorch-fid's state-dict names (Conv2d_1a_3x3.conv.weight,
 * Mixed_5b.branch1x1.bn.running_var, ...); other tensors in the file (fc.*,
 * num_batches_tracked) are ignored. Each BatchNorm (eps 0.001) is folded
 * into its convolution at load time: w' = w g / sqrt(v + eps),
 * b' = beta - mean g / sqrt(v + eps), so a BasicConv2d is conv + bias + ReLU.
 */
#ifndef DEEDIFF_INCEPTION_H
#define DEEDIFF_INCEPTION_H

#include <stddef.h>

#include "../kernels/ops.h"
#include "safetensors.h"

#define INCEPTION_CONVS 94      /* BasicConv2d layers in the network */
#define INCEPTION_SIZE 299      /* the network's input side */
#define INCEPTION_FEATURES 2048 /* pool3 width */
#define INCEPTION_BN_EPS 1e-3f

/* one BasicConv2d: its pytorch-fid name and geometry, folded weights */
typedef struct {
    char name[48];              /* "Mixed_5b.branch5x5_1" */
    int cin, cout, kh, kw;
    Conv2dParams p;
    float *w;                   /* backend memory, [cout, cin, kh, kw] */
    float *b;                   /* backend memory, [cout] */
} InceptionConv;

typedef struct {
    int nconv;
    InceptionConv conv[INCEPTION_CONVS];
    /* floats per image of the activation arena: two stage buffers and the
       scratch stack of a block's branches */
    size_t stage_floats, scratch_floats;
} Inception;

/* loads weights by name from a safetensors file (F32/F16/BF16); -1 with
   err_msg() naming the file and the tensor (missing, wrong shape) */
int inception_load(Inception *m, Ctx *ctx, const char *path);
int inception_load_st(Inception *m, Ctx *ctx, const SafeTensors *st);
void inception_destroy(Inception *m, Ctx *ctx);

#define INCEPTION_MAX_TEAMS 64

/* the activation arena for batches of up to max_batch images. On the CPU a
   batch is split over the context's threads, each running the whole network
   on its share with a one-thread context of its own (one GEMM per image
   either way; this way no thread waits for another between ops). */
typedef struct {
    int max_batch;
    float *arena;               /* backend memory */
    int teams;                  /* CPU: one-thread contexts in team[] */
    Ctx team[INCEPTION_MAX_TEAMS];
} InceptionActs;

void inception_acts_create(InceptionActs *a, Ctx *ctx, const Inception *m, int max_batch);
void inception_acts_destroy(InceptionActs *a, Ctx *ctx);

/* pool3[N,2048] <- images[N,3,H,W] in [0,1] (backend memory), N <= max_batch */
void inception_forward(Ctx *ctx, const Inception *m, InceptionActs *a, Tensor images,
                       Tensor pool3);

/* Writes a full weights file with pytorch-fid's names and shapes and
   deterministic values that tests/reference/make_inception_fixture.py
   computes the same way (no random generator involved): for element i of
   tensor `name`, u = fmix32(i * 0x9E3779B1 + fnv1a32(name)) / 2^32 and
     conv.weight     (u - 0.5) * 2 * sqrt(6 / fan_in)
     bn.weight       0.5 + u          bn.running_var   0.5 + u
     bn.bias         0.2 * (u - 0.5)  bn.running_mean  0.2 * (u - 0.5)
   in double, rounded once to float. -1 with err_msg() when saving fails. */
int inception_write_synthetic(const char *path);

#endif
