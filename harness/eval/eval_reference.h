/*
 * eval_reference.h: the reference statistics an evaluation compares its
 * samples with (deediff eval --ref).
 *
 *   fmnist-train, fmnist-test   the embedded Fashion-MNIST split through the
 *       FD-FMNIST network. Computed once and cached as
 *       <stats_dir>/<split>-<network file stem>-<first 12 hex of the network
 *       weights' sha256>.npz (e.g. results/stats/fmnist-train-
 *       fmnist_features-1a2b3c4d5e6f.npz): the key is the weights' content,
 *       so retrained weights never meet stale statistics, and the split is
 *       the fixed Debian dataset. Delete the folder to recompute.
 *   S.npz                       statistics loaded as they are (pytorch-fid's
 *       mu/sigma, plus our n when present); the feature network behind them
 *       is the caller's claim, only the dimension is checked.
 * Either way the file's sha256 is reported, so every distance names the
 * exact statistics it was computed against (REFERENCE.md section 7, item 2).
 */
#ifndef DEEDIFF_EVAL_REFERENCE_H
#define DEEDIFF_EVAL_REFERENCE_H

#include "../../kernels/ops.h"
#include "../../model/fid_stats.h"
#include "../store/file_hash.h"

typedef struct {
    FidStats stats;
    char path[4096];                     /* the .npz read (or written to the cache) */
    char sha256[SHA256_HEX_LEN + 1];     /* of that file */
    int cached;                          /* 1: computed by an earlier run, read from the cache */
    int computed;                        /* 1: computed now (and cached) */
} EvalReference;

/* 1 when ref names an embedded dataset split (fmnist-train, fmnist-test) */
int eval_ref_is_dataset(const char *ref);

/* Loads or computes the statistics of ref. fmnist_weights (the FD-FMNIST
   network file) and its sha256 are needed for a dataset split; an .npz ref
   ignores them. -1 + err_msg() naming the file (a missing ref: "--ref: P:
   cannot open: ..."). */
int eval_reference_load(Ctx *ctx, const char *ref, const char *fmnist_weights,
                        const char *fmnist_sha256, const char *stats_dir, EvalReference *out);
void eval_reference_free(EvalReference *r);

#endif
