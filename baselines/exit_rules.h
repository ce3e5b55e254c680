/*
 * exit_rules.h: the pure arithmetic of the baselines' training schedules
 * and exit rules (berxit.c, calm.c, static_exit.c), apart from their
 * buffers, so the tests can check each on constructed values.
 */
#ifndef DEEDIFF_EXIT_RULES_H
#define DEEDIFF_EXIT_RULES_H

#include <stdint.h>

/* BERxiT's alternation: 1 when step k trains the final output (even k),
   0 when it trains the exits (odd k) */
int berxit_step_is_final(int64_t step);

/* CALM's anytime weights for L blocks: w[i] = (i+1) / (L (L+1) / 2) for the
   exits i < L-1, and the final output's L / (L (L+1) / 2), returned */
float calm_anytime_weights(int L, float *w_exit);

/* CALM's original batch rule: every row gets the batch's largest score, so
   the batch leaves only when every image is confident */
void calm_batch_rule(float *score, int B);

/* calm-meta's label: 1 ("consistent") when mean((g - final)^2) <= tol */
int calm_meta_label(const float *g, const float *final, int64_t n, double tol);

/* the static exit's block for threshold T of L blocks: L - 1 - round(T L),
   clamped to [0, L-1] (T = 0: the full network; T = 1: block 0), so the
   layers ratio is about 1 - T */
int static_exit_block(double threshold, int L);

#endif
