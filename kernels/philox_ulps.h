/*
 * philox_ulps.h: the CPU's normals, bit for bit, on a GPU.
 *
 * philox_box_muller (philox.h) calls the C library's logf, cosf and sinf,
 * which are not correctly rounded: glibc 2.36 is one ulp away from the
 * correctly rounded value for about 0.7% of the logs and 1.3% of the sines
 * and cosines Box-Muller takes. CUDA's logf/cosf/sinf differ elsewhere. But
 * Box-Muller only ever sees the 2^23 uniforms philox_u01 makes, u = (2k+1)
 * 2^-24 for k = word >> 9, and the angles 2 pi u of those. So the CPU's
 * library is recorded once per process as a table of ulp offsets:
 *
 *   code[k], k < 2^23: bits 0-1 log(u_k), bits 2-3 cos(2 pi u_k), bits 4-5
 *   sin(2 pi u_k), each 0 (the C library's float is the correctly rounded
 *   one), 1 (one ulp above it) or 2 (one ulp below)
 *
 * and philox_box_muller_exact rebuilds the C library's floats from the
 * correctly rounded ones: (float)log((double)u) and the like, then the
 * offset. A double log, cos or sin within a few double ulps of exact (CUDA's:
 * 1 and 2 ulps) rounds to the same float as the host's, because no value
 * here lies within philox_ulps_build's reported margin (at least 9 double
 * ulps with glibc) of a float rounding boundary. The remaining float
 * operations (-2 x, sqrtf, 2 pi u, r cos) are single IEEE operations on both
 * sides. So the GPU's normals equal the CPU's bit for bit, whatever C
 * library the CPU side uses, as long as it is within one ulp
 * (philox_ulps_build reports when not). tests/test_philox_ulps.c checks all
 * of this on the host; the CUDA backend builds the table on its first randn.
 */
#ifndef DEEDIFF_PHILOX_ULPS_H
#define DEEDIFF_PHILOX_ULPS_H

#include <math.h>
#include <stdint.h>

#include "philox.h"

#define PHILOX_ULPS_COUNT (1u << 23) /* the uniforms philox_u01 makes */

/* the table entry of a Philox word: k with u = (2k + 1) 2^-24 */
PHILOX_FN uint32_t philox_ulps_index(uint32_t word) { return word >> 9; }

/* v moved by an offset code: 0 none, 1 one ulp up, 2 one ulp down */
PHILOX_FN float philox_ulps_apply(float v, unsigned code)
{
    return code == 1 ? nextafterf(v, INFINITY) : code == 2 ? nextafterf(v, -INFINITY) : v;
}

/* philox_box_muller's two normals, from correctly rounded functions and the
   CPU library's offsets code[] (PHILOX_ULPS_COUNT entries) */
PHILOX_FN void philox_box_muller_exact(uint32_t a, uint32_t b, const uint8_t *code, float *z0,
                                       float *z1)
{
    float u = philox_u01(a);
    float log_u = philox_ulps_apply((float)log((double)u), code[philox_ulps_index(a)] & 3u);
    float r = sqrtf(-2.0f * log_u);
    float theta = 6.28318530717958647692f * philox_u01(b);
    unsigned cb = code[philox_ulps_index(b)];
    *z0 = r * philox_ulps_apply((float)cos((double)theta), (cb >> 2) & 3u);
    *z1 = r * philox_ulps_apply((float)sin((double)theta), (cb >> 4) & 3u);
}

/* What philox_ulps_build found. */
typedef struct {
    int64_t beyond_one_ulp; /* entries the C library misses by more than one ulp (0 with glibc) */
    double min_margin;      /* the smallest distance, in double ulps, of a double log/cos/sin
                               here from a float rounding boundary */
} PhiloxUlpsReport;

/* fills code[PHILOX_ULPS_COUNT] from this process's logf, cosf and sinf
   (host code, OpenMP-parallel; about 0.3 s of one core) */
PhiloxUlpsReport philox_ulps_build(uint8_t *code);

/* the margin a device's double functions need: their error in double ulps
   plus the host's (1 ulp each side); CUDA's log is within 1, cos and sin 2 */
#define PHILOX_ULPS_MARGIN_NEEDED 4.0

#endif
