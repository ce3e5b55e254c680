/*
 * exit_rules.c: the baselines' schedule and exit-rule arithmetic of
 * exit_rules.h.
 */
#include <math.h>

#include "exit_rules.h"

int berxit_step_is_final(int64_t step) { return step % 2 == 0; }

float calm_anytime_weights(int L, float *w_exit)
{
    float sum = (float)L * (float)(L + 1) / 2.0f;
    for (int i = 0; i < L - 1; i++) w_exit[i] = (float)(i + 1) / sum;
    return (float)L / sum;
}

void calm_batch_rule(float *score, int B)
{
    float worst = score[0];
    for (int b = 1; b < B; b++) worst = score[b] > worst ? score[b] : worst;
    for (int b = 0; b < B; b++) score[b] = worst;
}

int calm_meta_label(const float *g, const float *final, int64_t n, double tol)
{
    double sum = 0;
    for (int64_t j = 0; j < n; j++) sum += ((double)g[j] - final[j]) * ((double)g[j] - final[j]);
    return sum / (double)n <= tol;
}

int static_exit_block(double threshold, int L)
{
    int k = L - 1 - (int)lround(threshold * L);
    return k < 0 ? 0 : k > L - 1 ? L - 1 : k;
}
