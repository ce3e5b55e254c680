/*
 * philox.c: host-side bulk fills over Philox streams (see philox.h for the
 * addressing). A fill computes each 4-word call once and keeps the words that
 * fall inside [first, first+n), so any slice of a stream equals the elements
 * regenerated one by one with philox_*_at.
 */
#include "philox.h"

/* fills out[i] = element first+i; kind 0 = normal, 1 = uniform */
static void fill_stream(float *out, int64_t n, uint64_t seed, uint32_t purpose,
                        uint32_t step, uint64_t first, int kind)
{
    if (n <= 0) return;
    uint64_t call_begin = first >> 2, call_end = (first + (uint64_t)n - 1) >> 2;
    int64_t calls = (int64_t)(call_end - call_begin + 1);
    #pragma omp parallel for schedule(static) if (calls > 4096)
    for (int64_t c = 0; c < calls; c++) {
        uint64_t call = call_begin + (uint64_t)c;
        Philox4 d = philox_draw(seed, purpose, step, call);
        float v[4];
        if (kind == 0) philox_normal4(d, v);
        else for (int w = 0; w < 4; w++) v[w] = philox_u01(d.v[w]);
        for (int w = 0; w < 4; w++) {
            uint64_t e = 4 * call + (uint64_t)w;
            if (e >= first && e - first < (uint64_t)n) out[e - first] = v[w];
        }
    }
}

void philox_fill_normal(float *out, int64_t n, uint64_t seed, uint32_t purpose,
                        uint32_t step, uint64_t first)
{
    fill_stream(out, n, seed, purpose, step, first, 0);
}

void philox_fill_uniform(float *out, int64_t n, uint64_t seed, uint32_t purpose,
                         uint32_t step, uint64_t first)
{
    fill_stream(out, n, seed, purpose, step, first, 1);
}

uint64_t philox_below(uint64_t seed, uint32_t purpose, uint32_t step, uint64_t index,
                      uint64_t n)
{
    Philox4 d = philox_draw(seed, purpose, step, index);
    uint64_t r = ((uint64_t)d.v[1] << 32) | d.v[0];
    return (uint64_t)(((unsigned __int128)r * n) >> 64);
}
