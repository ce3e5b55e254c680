/*
 * test_philox_ulps.c: the table that lets the CUDA backend draw the CPU's
 * normals bit for bit (kernels/philox_ulps.h), checked on the host, where
 * it is built: every offset within one ulp, every double far enough from a
 * float rounding boundary that a GPU's double log/cos/sin rounds the same,
 * and the rebuilt Box-Muller equal to philox_box_muller, bit for bit, for
 * every uniform Box-Muller can take, as the log's word and as the angle's,
 * and to the CPU backend's bulk fill (philox_fill_normal).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/philox_ulps.h"

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

Test(philox_ulps, table_reproduces_the_c_library, .timeout = 120)
{
    uint8_t *code = malloc(PHILOX_ULPS_COUNT);
    cr_assert(code);
    PhiloxUlpsReport r = philox_ulps_build(code);
    cr_expect_eq(r.beyond_one_ulp, 0, "%lld values more than one ulp off", (long long)r.beyond_one_ulp);
    cr_expect(r.min_margin >= PHILOX_ULPS_MARGIN_NEEDED, "margin %.2f double ulps", r.min_margin);

    int64_t offsets[3] = {0, 0, 0}, mismatches = 0;
    const uint32_t other = 0x9e3779b9u; /* any fixed partner word */
    for (uint32_t k = 0; k < PHILOX_ULPS_COUNT; k++) {
        for (int part = 0; part < 3; part++) offsets[part] += ((code[k] >> (2 * part)) & 3u) != 0;
        uint32_t word = k << 9 | (k & 0x1ffu); /* bits below 9 must not matter */
        float a0, a1, b0, b1;
        philox_box_muller(word, other, &a0, &a1);
        philox_box_muller_exact(word, other, code, &b0, &b1);
        mismatches += !same_bits(a0, b0) + !same_bits(a1, b1);
        philox_box_muller(other, word, &a0, &a1);
        philox_box_muller_exact(other, word, code, &b0, &b1);
        mismatches += !same_bits(a0, b0) + !same_bits(a1, b1);
    }
    cr_log_info("C library one ulp off correctly rounded: log %lld, cos %lld, sin %lld of %u; margin %.1f",
                (long long)offsets[0], (long long)offsets[1], (long long)offsets[2], PHILOX_ULPS_COUNT,
                r.min_margin);
    cr_expect_eq(mismatches, 0, "%lld normals differ from philox_box_muller", (long long)mismatches);

    /* and the CPU backend's own path (philox.c's bulk fill, another translation unit) */
    enum { N = 1 << 20 };
    float *fill = malloc(N * sizeof *fill);
    cr_assert(fill);
    philox_fill_normal(fill, N, 1234567, RNG_SAMPLE_STEP, 17, 3);
    int64_t fill_mismatches = 0;
    for (int64_t i = 0; i < N; i++) {
        uint64_t e = 3 + (uint64_t)i; /* element e: word e & 3 of call e >> 2 */
        Philox4 d = philox_draw(1234567, RNG_SAMPLE_STEP, 17, e >> 2);
        int pair = (int)(e & 2);
        float z0, z1;
        philox_box_muller_exact(d.v[pair], d.v[pair + 1], code, &z0, &z1);
        fill_mismatches += !same_bits(fill[i], (e & 1) ? z1 : z0);
    }
    cr_expect_eq(fill_mismatches, 0, "%lld normals differ from philox_fill_normal", (long long)fill_mismatches);
    free(fill);
    free(code);
}
