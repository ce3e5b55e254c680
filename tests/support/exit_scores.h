/*
 * exit_scores.h: what the early-exit tests share (test support): moving a
 * parameter table off its init, and reading exits off per-block scores
 * s[rows, L] (row b's score after block i at s[b L + i]) by the rule of
 * model/early_exit.h (a row leaves at the first block whose score < T).
 */
#ifndef DEEDIFF_TEST_EXIT_SCORES_H
#define DEEDIFF_TEST_EXIT_SCORES_H

#include <stdint.h>

#include "model/param_table.h"

/* adds uniform(-amp, amp) noise to every parameter (not to the padding
   between them, which files do not hold), so no norm, bias or gradient is
   trivially at its init */
void move_params(const ParamInfo *params, int num_params, float *weights, float amp, uint64_t seed);

/* the exit block of row b under threshold T (L - 1: the full network) */
int exit_of(const float *s, int L, int b, double T);

/* qsort's order of floats, ascending */
int cmp_float(const void *a, const void *b);

/* a threshold halfway between two scores at least 1e-4 apart that sends
   the rows to the most different exit blocks; their number in *distinct */
double spread_threshold(const float *s, int L, int rows, int *distinct);

#endif
