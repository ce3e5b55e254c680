/*
 * uvit_prune.h: structural pruning of a U-ViT as Diff-Pruning does it
 * (Fang et al. 2023, VainF/Diff-Pruning; REFERENCE.md section 3), the
 * S-Pruning baseline of the DeeDiff paper (baselines/spruning.c is the
 * method that fine-tunes and samples the result).
 *
 * Groups. In block b, MLP hidden unit j is fc1's row j (weight and bias)
 * and fc2's column j; attention head h is the q, k and v rows of that head
 * in qkv ([3A, D], rows s*A + h*hd + d for s = q, k, v; its bias rows when
 * qkv_bias) and proj's input columns h*hd .. h*hd + hd-1 ([D, A]). Removing
 * a group removes exactly these weights; removing a head is the same
 * function as zeroing its proj columns (the other heads' softmax does not
 * see it), removing a unit the same as zeroing its fc1 row and bias.
 *
 * Importance (Diff-Pruning's TaylorImportance(multivariable=False)): with
 * g = dL/dw accumulated (summed) over the timesteps of the gradient pass,
 * a group's score is the sum over its weights of |w * g|.
 *
 * The gradient pass: one fixed batch x0 and one fixed noise eps (Philox
 * (seed, RNG_NOISE_TRAIN_EPS, step 0), the same eps at every t, as
 * Diff-Pruning draws its noise once); for k = 0, 1, 2, ...: every image at
 * t_k = (k+1)/N (VPSDE, the network sees t*999; discrete schedule: n = k+1),
 * L_simple, backward into the model's gradients (never zeroed in between);
 * stop after the first k whose loss < thr * (the largest loss so far), its
 * gradient included (Diff-Pruning's order: backward, then the test), or
 * after max_steps.
 *
 * Selection: one fraction p for the whole network. Every block keeps
 * prune_kept(n, p) = max(1, floor(n (1 - p) + 0.5)) of its n heads and of
 * its n MLP units (n (1 - p) rounded half up, at least one), the
 * highest-scoring ones (ties: the lower index), in their original order.
 * p is the smallest fraction whose network's uvit_macs total is at most
 * ratio times the original's (bisection to 2^-50 on the step function).
 * ratio 1 keeps everything: the pruned network is the original, bit for bit.
 *
 * Using it (what `deediff prune` does):
 *   uvit_enable_grads(&m, ctx);
 *   prune_accumulate(ctx, &m, TRAIN_NOISE_VPSDE, x0, NULL, &opt, &res);
 *   prune_scores(ctx, &m, &scores);
 *   prune_fraction(&m.cfg, 0.56, &p, &cfg);
 *   prune_plan(&scores, &cfg, &plan);
 *   prune_apply(ctx, &m, &plan, &pruned);      // a new UViT of cfg
 */
#ifndef DEEDIFF_UVIT_PRUNE_H
#define DEEDIFF_UVIT_PRUNE_H

#include <stdint.h>

#include "uvit.h"
#include "vpsde_train.h"

/* ---- importance ------------------------------------------------------------------ */

typedef struct {
    int num_blocks;
    int mlp_hidden[UVIT_MAX_BLOCKS], heads[UVIT_MAX_BLOCKS];  /* groups of each block */
    double *mlp[UVIT_MAX_BLOCKS];    /* [mlp_hidden[b]] score of each MLP hidden unit */
    double *head[UVIT_MAX_BLOCKS];   /* [heads[b]] score of each attention head */
} PruneScores;

/* the Taylor scores from m's weights and its accumulated gradients (m->grads) */
void prune_scores(Ctx *ctx, const UViT *m, PruneScores *s);
void prune_scores_free(PruneScores *s);

/* ---- selection ------------------------------------------------------------------- */

/* groups kept of n when a fraction p in [0, 1] is removed (see the top) */
int prune_kept(int n, double p);
/* base with the fraction p of every block's heads and MLP units removed */
void prune_config(const UViTConfig *base, double p, UViTConfig *out);
/* the smallest p whose network costs at most ratio times base's multiply-adds,
   and its configuration; -1 + err_set("--ratio: ...") when even one head and
   one unit per block cost more, or ratio is outside (0, 1] */
int prune_fraction(const UViTConfig *base, double ratio, double *p, UViTConfig *out);

/* c with every block at its default widths (num_heads, embed_dim * mlp_ratio):
   the network a uniformly pruned one came from */
void prune_base_config(const UViTConfig *c, UViTConfig *out);

typedef struct {
    UViTConfig cfg;                   /* the pruned network's */
    int *mlp_keep[UVIT_MAX_BLOCKS];   /* [cfg.block_mlp_hidden[b]] kept units, ascending */
    int *head_keep[UVIT_MAX_BLOCKS];  /* [cfg.block_num_heads[b]] kept heads, ascending */
} PrunePlan;

/* the highest-scoring groups of each block, as many as pruned's widths say */
void prune_plan(const PruneScores *s, const UViTConfig *pruned, PrunePlan *plan);
void prune_plan_free(PrunePlan *plan);
/* creates dst with the plan's configuration and src's weights, the kept
   groups' rows and columns gathered, everything else copied */
void prune_apply(Ctx *ctx, const UViT *src, const PrunePlan *plan, UViT *dst);

/* ---- the gradient pass ----------------------------------------------------------- */

/* the stopping rule alone: max_loss starts at 0 */
typedef struct {
    double thr, max_loss;
} PruneStop;
/* takes one timestep's loss: updates the maximum, then 1 when loss < thr * max */
int prune_stop_after(PruneStop *st, double loss);

typedef struct {
    double thr;        /* 0.05 */
    int max_steps;     /* at most this many timesteps (1000) */
    int num_steps;     /* N of t_k = (k+1)/N (1000) */
    uint64_t seed;     /* the noise */
} PruneGradOptions;

PruneGradOptions prune_grad_defaults(void);

typedef struct {
    int timesteps_used;    /* k + 1 of the last timestep taken */
    int stopped;           /* 1: by the rule; 0: max_steps (or t = 1) reached */
    double max_loss, last_loss;
} PruneGradResult;

/* accumulates dL/dw over the timesteps into m->grads (enabled and zeroed by
   the caller) for the batch x0[B,C,H,W] (backend) with labels[B] (host;
   NULL when m is unconditional); -1 + err_set when a loss is not finite */
int prune_accumulate(Ctx *ctx, UViT *m, TrainNoiseKind kind, Tensor x0, const int64_t *labels,
                     const PruneGradOptions *o, PruneGradResult *r);

#endif
