/*
 * train_checkpoint.h: everything a training run needs to continue exactly,
 * in one safetensors file written atomically.
 *
 * Tensors: model.<param> and ema.<param> (U-ViT names, so `deediff sample`
 * and `deediff forward` read the file directly; EMA by default),
 * optim.m and optim.v (AdamW moments, flat, the weights' layout),
 * state.step I64 [1] (updates done), state.cursor I64 [2] (data epoch,
 * position). A method's parameters (model/method.h) sit beside the
 * backbone's as model.method.* and ema.method.*, their AdamW moments in
 * method_optim.m / method_optim.v, and the metadata names the method and its
 * options ("method", "method_options"). The noise of step k is a pure function of (seed, k), so no
 * generator state exists beyond the step. Metadata: "format"
 * ("deediff-train-checkpoint-1"), "config" (U-ViT JSON), "train_config"
 * (the whole training configuration), "command", "seed", "loss".
 */
#ifndef DEEDIFF_TRAIN_CHECKPOINT_H
#define DEEDIFF_TRAIN_CHECKPOINT_H

#include <stdint.h>

#include "../../model/method.h"
#include "../../model/optim.h"
#include "../../model/uvit.h"
#include "../data/dataset.h"

#define TRAIN_CHECKPOINT_FORMAT "deediff-train-checkpoint-1"

typedef struct {
    int64_t step;          /* optimizer updates done */
    DataCursor cursor;     /* where the next batch starts */
    double loss;           /* the last step's loss (metadata only) */
} TrainPosition;

/* what a training run updates: the backbone and its optimizer, and the
   method with its optimizer (om NULL when the method has no parameters) */
typedef struct {
    UViT *m;
    Optimizer *o;
    Method *me;
    Optimizer *om;
} TrainState;

int train_checkpoint_save(const char *path, Ctx *ctx, const TrainState *s, const TrainPosition *pos,
                          uint64_t seed, const char *train_json, const char *command);

/* restores the weights, moments, EMA and step of the backbone and the
   method, and pos, from path; the file must be a training checkpoint of
   exactly this configuration and method (else a one-line error naming the
   file and what differs) */
int train_checkpoint_load(const char *path, Ctx *ctx, const TrainState *s, TrainPosition *pos);

#endif
