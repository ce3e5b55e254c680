/*
 * autoencoder_graph.h: the KL autoencoder as a list of ops (internal to
 * model/autoencoder_*.c).
 *
 * One walk over the architecture (autoencoder_graph.c) yields both the
 * parameter table (official names, in walk order) and, for a part and an
 * image side, the graph: a list of steps, each one op of kernels/ops.h
 * reading and writing activations by id. The forward pass runs the steps in
 * order, the backward pass runs their backward ops in reverse; the arena
 * (autoencoder_run.c) places the activations. Activation 0 is the part's
 * input and the last step writes the part's output; both live in the
 * caller's tensors, not in the arena.
 */
#ifndef DEEDIFF_AUTOENCODER_GRAPH_H
#define DEEDIFF_AUTOENCODER_GRAPH_H

#include "autoencoder.h"

typedef enum {
    AE_STEP_CONV,        /* out = conv2d(in, w, b, conv) */
    AE_STEP_GROUP_NORM,  /* out = group_norm(in, w, b, groups); aux = mean then rstd [B, 2G] */
    AE_STEP_SILU,        /* out = silu(in) */
    AE_STEP_ADD,         /* out = in + in2 */
    AE_STEP_UPSAMPLE,    /* out = nearest 2x of in */
    AE_STEP_PAD,         /* out = pad2d(in, pad) */
    AE_STEP_TO_TOKENS,   /* out [N,C] = in [C,H,W] transposed (patchify, p 1) */
    AE_STEP_TO_IMAGE,    /* out [C,H,W] = in [N,C] transposed (unpatchify, p 1) */
    AE_STEP_LINEAR,      /* out = in w^T + b over tokens (a 1x1 conv on [N,C]) */
    AE_STEP_ATTENTION,   /* out [N,C] = one-head attention of in = qkv [N,3C]; aux = probs [1,N,N] */
    AE_STEP_SCALE,       /* out = scale * in */
} AeStepKind;

/* a parameter (or a packed group) as the op sees it: offset in floats into
   the parameter buffer and the op's shape; offset < 0 when absent */
typedef struct {
    int64_t offset;
    int ndim;
    int64_t shape[4];
} AeParamRef;

typedef struct {
    AeStepKind kind;
    int in, in2, out, aux;   /* activation ids, -1 when unused */
    AeParamRef w, b;
    Conv2dParams conv;
    Pad2dParams pad;
    int groups;
    float scale;
} AeStep;

typedef enum {
    AE_ACT_VALUE,   /* a tensor gradients flow through */
    AE_ACT_STATS,   /* GroupNorm's saved mean and rstd: no gradient */
    AE_ACT_PROBS,   /* attention weights; their gradient slot is the backward's dprobs scratch */
} AeActKind;

typedef struct {
    AeActKind kind;
    int ndim;              /* per image: 3 for [C,H,W], 2 for [N,C], 1 for stats [2G] */
    int64_t dims[3];
    size_t floats;         /* per image */
    int first, last;       /* the step writing it and the last step reading it */
} AeAct;

typedef struct {
    int nsteps, nacts;
    AeStep *steps;
    AeAct *acts;
} AeGraph;

/* the parameter table of configuration c (every ParamInfo named and placed);
   *num_encoder gets the count of the encoder's (and quant_conv's) entries;
   the caller frees *params */
void ae_build_params(const AutoencoderConfig *c, ParamInfo **params, int *num_params, int *num_encoder,
                     size_t *total);
/* the graph of one part at image side height x width (multiples of the
   factor); free with ae_graph_free */
void ae_build_graph(const AutoencoderConfig *c, AutoencoderPart part, int64_t height, int64_t width,
                    AeGraph *g);
void ae_graph_free(AeGraph *g);

#endif
