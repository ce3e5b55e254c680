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

/* the three dot products of a row in LANES independent double sums, which
   the compiler vectorises (one running sum would serialise on its adds) */
#define LANES 8
void calm_unsaturation(const float *prev, const float *cur, int B, int64_t n, float *score)
{
    for (int b = 0; b < B; b++) {
        const float *p = prev + b * n, *c = cur + b * n;
        double pc[LANES] = {0}, pp[LANES] = {0}, cc[LANES] = {0};
        int64_t j = 0;
        for (; j + LANES <= n; j += LANES)
            for (int l = 0; l < LANES; l++) {
                double x = p[j + l], y = c[j + l];
                pc[l] += x * y;
                pp[l] += x * x;
                cc[l] += y * y;
            }
        for (; j < n; j++) {
            pc[0] += (double)p[j] * c[j];
            pp[0] += (double)p[j] * p[j];
            cc[0] += (double)c[j] * c[j];
        }
        double spc = 0, spp = 0, scc = 0;
        for (int l = 0; l < LANES; l++) spc += pc[l], spp += pp[l], scc += cc[l];
        score[b] = spp > 0 && scc > 0 ? (float)(1 - spc / sqrt(spp * scc)) : 1.0f;
    }
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
