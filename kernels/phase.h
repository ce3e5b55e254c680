/*
 * phase.h: where the model is, told to whoever times its kernels.
 *
 * The training loop, the sampler, the U-ViT block loop and the exit heads
 * and estimators mark the phases they run:
 *
 *   phase_begin(ctx, PHASE_BLOCK, i);
 *   ... the ops of block i ...
 *   phase_end(ctx, PHASE_BLOCK);
 *
 * A context carries no hooks (ctx->phases NULL) unless a profiler installed
 * them (harness/profile/profile.h, `--profile`): then a mark is one branch,
 * nothing on the CPU backend can measure it. Phases nest; begin and end pair
 * like parentheses, and an end names the kind it closes (checked by the
 * profiler). Where each mark sits:
 *
 *   train_step       harness/train/train.c: one optimizer step, data to update
 *   sample_step      model/sampler_run.c: one network evaluation of a sampler
 *                    (its index is the evaluation's number, as in table exits)
 *   block            model/uvit.c: U-ViT block i forward (any caller)
 *   block_backward   model/uvit.c: block i backward
 *   head             exit head i: its decode when images leave after block i
 *                    (model/early_exit.c), or in training exit i's whole loss,
 *                    forward and backward (model/deediff.c, model/exit_heads.c)
 *   exit_rule        the exit decision's estimator after block i: DeeDiff's UEM,
 *                    BERxiT's LTE, CALM's saturation or meta-classifier; beside
 *                    the head when sampling, inside head i in training
 *
 * The index is the block or exit number, the step or evaluation number; the
 * profiler may fold it (every train_step under one index).
 */
#ifndef DEEDIFF_PHASE_H
#define DEEDIFF_PHASE_H

#include "ops.h"

typedef enum {
    PHASE_RUN = 0,           /* the whole run: the profiler's root, never marked by the model */
    PHASE_TRAIN_STEP,
    PHASE_SAMPLE_STEP,
    PHASE_BLOCK,
    PHASE_BLOCK_BACKWARD,
    PHASE_HEAD,
    PHASE_EXIT_RULE,
    PHASE_KINDS
} PhaseKind;

struct PhaseHooks {
    void (*begin)(void *user, PhaseKind kind, int index);
    void (*end)(void *user, PhaseKind kind);
    void *user;
};

/* "run", "train_step", "sample_step", "block", "block_backward", "head", "exit_rule" */
const char *phase_kind_name(PhaseKind kind);

static inline void phase_begin(Ctx *ctx, PhaseKind kind, int index)
{
    if (ctx->phases) ctx->phases->begin(ctx->phases->user, kind, index);
}

static inline void phase_end(Ctx *ctx, PhaseKind kind)
{
    if (ctx->phases) ctx->phases->end(ctx->phases->user, kind);
}

#endif
