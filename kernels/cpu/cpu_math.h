/*
 * cpu_math.h: exp for float, written to vectorise (internal).
 *
 * glibc's scalar expf stops gcc from vectorising a loop, and the vector
 * versions need -ffast-math (which may delete NaN checks). These are plain C
 * with no branches: gcc -O3 -march=native turns a loop calling them into
 * AVX2 code. Clamps are written as `x < lo ? lo : x` so a NaN input passes
 * through unchanged (a NaN compares false) and NaN propagates to the output.
 *
 *   cpu_expf: Cephes' range reduction and polynomial, within 2 ulp.
 * (The GELU's normal CDF builds on it: cpu_gelu.h.)
 */
#ifndef DEEDIFF_CPU_MATH_H
#define DEEDIFF_CPU_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t cpu_f32_bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static inline float cpu_bits_f32(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* e^x; about 1.2e-38 below x = -87.3, about 2.2e38 above x = 88.3 */
static inline float cpu_expf(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    float t = fmaf(x, 1.44269504088896341f, magic);
    float n = t - magic;                          /* round(x / ln 2) */
    float r = fmaf(n, -0.693359375f, x);          /* x - n ln2, in two parts */
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r) + 1.0f;                 /* e^r */
    uint32_t k = cpu_f32_bits(t) - cpu_f32_bits(magic); /* n as an integer */
    float scale = cpu_bits_f32((k + 127u) << 23); /* 2^n */
    return p * scale;
}

#endif
