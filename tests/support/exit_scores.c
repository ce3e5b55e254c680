/*
 * exit_scores.c: the early-exit tests' shared helpers of exit_scores.h.
 */
#include <stdlib.h>

#include "exit_scores.h"
#include "float_buffers.h"
#include "model/uvit_config.h"

void move_params(const ParamInfo *params, int num_params, float *weights, float amp, uint64_t seed)
{
    for (int i = 0; i < num_params; i++) {
        float *noise = fvec((int64_t)params[i].numel, -amp, amp, seed + (uint64_t)i);
        for (size_t k = 0; k < params[i].numel; k++) weights[params[i].offset + k] += noise[k];
        free(noise);
    }
}

int exit_of(const float *s, int L, int b, double T)
{
    for (int i = 0; i < L - 1; i++)
        if (s[b * L + i] < T) return i;
    return L - 1;
}

int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

double spread_threshold(const float *s, int L, int rows, int *distinct)
{
    int nv = 0;
    float *v = fzeros(rows * L);
    for (int b = 0; b < rows; b++)
        for (int i = 0; i < L - 1; i++) v[nv++] = s[b * L + i];
    qsort(v, (size_t)nv, sizeof *v, cmp_float);
    double best = 0;
    *distinct = 0;
    for (int k = 0; k + 1 < nv; k++) {
        if (v[k + 1] - v[k] < 1e-4f) continue;
        double T = 0.5 * ((double)v[k] + v[k + 1]);
        int used[UVIT_MAX_BLOCKS] = {0}, d = 0;
        for (int b = 0; b < rows; b++) used[exit_of(s, L, b, T)] = 1;
        for (int i = 0; i < L; i++) d += used[i];
        if (d > *distinct) *distinct = d, best = T;
    }
    free(v);
    return best;
}
