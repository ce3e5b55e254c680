/*
 * gradcheck.c: finite differences and small numeric helpers for tests.
 */
#include <stdlib.h>
#include <math.h>

#include "gradcheck.h"

double gradcheck_loss(const GradCheck *g)
{
    g->forward(g->user);
    double s = 0;
    for (int64_t i = 0; i < g->nout; i++) s += (double)g->out[i] * g->r[i];
    return s;
}

/* The sanitizer build checks memory and undefined behaviour, which a probe
   or two per tensor reaches as well as fifty; the optimised build checks
   the numbers with every probe asked for. (Its whole-model gradient checks
   took 200 of the sanitizer run's 420 s.) */
#ifdef __SANITIZE_ADDRESS__
#define SANITIZER_PROBES 2
#endif

double gradcheck_max_error(const GradCheck *g, float *x, int64_t n,
                           const float *analytic, float eps, int max_probes)
{
#ifdef SANITIZER_PROBES
    if (max_probes > SANITIZER_PROBES) max_probes = SANITIZER_PROBES;
#endif
    double worst = 0;
    int64_t step = n > max_probes ? n / max_probes : 1;
    for (int64_t i = 0; i < n; i += step) {
        float keep = x[i];
        x[i] = keep + eps;
        double lp = gradcheck_loss(g);
        x[i] = keep - eps;
        double lm = gradcheck_loss(g);
        x[i] = keep;
        double numeric = (lp - lm) / (2.0 * eps);
        double a = analytic[i];
        double scale = fmax(1.0, fmax(fabs(numeric), fabs(a)));
        double e = fabs(numeric - a) / scale;
        if (e > worst) worst = e;
    }
    g->forward(g->user);
    return worst;
}

/* splitmix64: a tiny deterministic generator, enough for test data */
static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (float)((splitmix(&s) >> 40) * (1.0 / 16777216.0));
}

float *new_uniform(int64_t n, float lo, float hi, uint64_t *seed)
{
    float *x = malloc((size_t)(n ? n : 1) * sizeof(float));
    fill_uniform(x, n, lo, hi, (*seed)++);
    return x;
}

float *new_filled(int64_t n, float v)
{
    float *x = malloc((size_t)(n ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = v;
    return x;
}

double rel_l2(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num) / fmax(sqrt(den), 1e-30);
}
