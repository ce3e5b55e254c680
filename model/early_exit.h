/*
 * early_exit.h: the sampling side of every early-exit method: a noise
 * predictor that runs U-ViT block by block and lets each image leave the
 * batch at the first exit its method's rule allows.
 *
 * One network evaluation of B images:
 *   embed all B; for block i = 0, 1, ...:
 *     run block i on the n rows still in the batch;
 *     if i is not the last block and threshold > 0:
 *       score[n] = the rule's confidence score of each row (lower = surer);
 *       a row leaves when score < threshold (threshold >= 1: every row at the
 *       first exit) or, when the call pairs its rows (cond.exit_partner:
 *       guidance's two passes of an image, CFG_EXIT_PAIRED in
 *       model/denoiser.h), once both rows of the pair have had a score below
 *       the threshold at this block or an earlier one, so a pair leaves
 *       together at the later of its two decisions (the account records
 *       each row's own score there); leaving rows take head i's prediction, written to their
 *       place in eps_out; the rest are compacted (uvit_keep_rows: the hidden
 *       state and the pending long skips together, never masked), so every
 *       later block runs on fewer rows: skipped blocks are skipped arithmetic;
 *   rows left after the last block take the backbone's own tail.
 * With threshold <= 0 no score is computed and nothing leaves: the same
 * calls on the same rows as the plain U-ViT, so the same bits.
 *
 * A rule (DeeDiff's UEM, BERxiT's learning-to-exit module, CALM's
 * saturation) is four callbacks over the rows now in the arena; it keeps
 * any per-row state of its own and compacts it in keep().
 */
#ifndef DEEDIFF_EARLY_EXIT_H
#define DEEDIFF_EARLY_EXIT_H

#include "method.h"

typedef struct EarlyExitRule EarlyExitRule;
struct EarlyExitRule {
    /* a new evaluation of B rows: t[B] continuous times, net_t[B] (backend)
       what the network sees */
    void (*begin)(EarlyExitRule *r, Ctx *ctx, int B, const double *t, Tensor net_t);
    /* after block `block` ran on the B rows now in the arena: score[B] (host) */
    void (*score)(EarlyExitRule *r, Ctx *ctx, UViTActs *a, int block, int B, float *score);
    /* optional: the same for rows [r0, r0 + n) of them only, into score[n];
       called at once from pieces of disjoint rows, each on its own worker
       context (ctx_split_run), as the predictor's blocks run; NULL: score
       is called for all rows on the calling context */
    void (*score_rows)(EarlyExitRule *r, Ctx *ctx, UViTActs *a, int block, int r0, int n, float *score);
    /* head `block`'s prediction for rows[n] of the last score call -> out[n,C,H,W] */
    void (*head)(EarlyExitRule *r, Ctx *ctx, UViTActs *a, int block, const int *rows, int n, Tensor out);
    /* only rows keep[n] (ascending) of the last score call stay */
    void (*keep)(EarlyExitRule *r, Ctx *ctx, const int *keep, int n);
    double macs_score;   /* per image per block scored */
    double macs_head;    /* per image taking an exit head */
    void *state;
};

/* a predictor over backbone m with the rule; account may be NULL */
NoisePredictor *early_exit_predictor_new(Ctx *ctx, const UViT *m, int max_batch,
                                         ScheduleKind schedule, double threshold, EarlyExitRule *rule,
                                         SampleAccount *account);
/* frees the predictor (not the rule, which is the caller's) */
void early_exit_predictor_free(Ctx *ctx, NoisePredictor *p);
/* the rule a predictor was made with */
EarlyExitRule *early_exit_rule(NoisePredictor *p);

/* a method's probe hook through its rule (model/method.h): after a full
   forward of the arena's B rows, head `block`'s prediction g[B,C,H,W] for
   every row, and u[B,C,H,W] filled with each row's score (a rule without a
   map of its own scores the whole image) */
void early_exit_rule_probe(EarlyExitRule *r, Ctx *ctx, UViTActs *a, int block, const double *t, Tensor net_t,
                           Tensor g, Tensor u);

#endif
