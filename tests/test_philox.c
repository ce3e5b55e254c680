/*
 * test_philox.c: Philox4x32-10 against Random123's known answers, the
 * uniform and normal helpers' ranges and moments, and element addressing
 * (any element regenerated alone equals the bulk fill).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/philox.h"

/* Random123 kat_vectors: "philox4x32 10 CTR[4] KEY[2] EXPECTED[4]" */
static void check_kat(Philox4 ctr, uint32_t k0, uint32_t k1, const uint32_t want[4])
{
    Philox4 got = philox4x32_10(ctr, k0, k1);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(got.v[i], want[i], "word %d: got %08x want %08x", i, got.v[i], want[i]);
}

Test(philox, known_answers)
{
    Philox4 zero = {{0, 0, 0, 0}};
    check_kat(zero, 0, 0, (const uint32_t[]){0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
    Philox4 ones = {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}};
    check_kat(ones, 0xffffffff, 0xffffffff,
              (const uint32_t[]){0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
    Philox4 pi = {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}};
    check_kat(pi, 0xa4093822, 0x299f31d0,
              (const uint32_t[]){0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

Test(philox, key_and_counter_mapping)
{
    /* key = seed (lo, hi); counter = (purpose, step, index lo, index hi) */
    uint64_t seed = 0x299f31d0a4093822ull;
    uint64_t index = 0x0370734413198a2eull;
    Philox4 d = philox_draw(seed, 0x243f6a88, 0x85a308d3, index);
    const uint32_t want[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
    for (int i = 0; i < 4; i++) cr_expect_eq(d.v[i], want[i]);
}

Test(philox, uniform_range)
{
    cr_expect(philox_u01(0) > 0.0f);
    cr_expect(philox_u01(0xffffffffu) < 1.0f);
    cr_expect_eq(philox_u01(0), 1.0f / 16777216.0f);
    cr_expect_eq(philox_u01(0xffffffffu), 1.0f - 1.0f / 16777216.0f);
    enum { N = 1 << 20 };
    float *u = malloc(N * sizeof *u);
    philox_fill_uniform(u, N, 7, RNG_TEST, 0, 0);
    double sum = 0;
    for (int i = 0; i < N; i++) {
        cr_assert(u[i] > 0.0f && u[i] < 1.0f, "u[%d] = %g", i, u[i]);
        sum += u[i];
    }
    cr_expect(fabs(sum / N - 0.5) < 2e-3, "mean %g", sum / N);
    free(u);
}

Test(philox, normal_moments)
{
    enum { N = 1000000 };
    float *z = malloc(N * sizeof *z);
    philox_fill_normal(z, N, 1234, RNG_NOISE_TRAIN_EPS, 17, 0);
    double s1 = 0, s2 = 0, s4 = 0;
    for (int i = 0; i < N; i++) {
        cr_assert(isfinite(z[i]));
        s1 += z[i]; s2 += (double)z[i] * z[i]; s4 += (double)z[i] * z[i] * z[i] * z[i];
    }
    double mean = s1 / N, var = s2 / N - mean * mean, kurt = s4 / N;
    /* standard errors at N = 1e6: mean 0.001, var 0.0014, E z^4 0.0098 */
    cr_expect(fabs(mean) < 5e-3, "mean %g", mean);
    cr_expect(fabs(var - 1.0) < 7e-3, "var %g", var);
    cr_expect(fabs(kurt - 3.0) < 5e-2, "E z^4 %g", kurt);
    free(z);
}

Test(philox, element_addressing)
{
    enum { N = 1003 };
    float z[N], u[N];
    uint64_t first = 4 * 1000 + 3; /* a start that is not a multiple of 4 */
    philox_fill_normal(z, N, 99, RNG_SAMPLE_STEP, 5, first);
    philox_fill_uniform(u, N, 99, RNG_SAMPLE_STEP, 5, first);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(z[i], philox_normal_at(99, RNG_SAMPLE_STEP, 5, first + i), "element %d", i);
        cr_assert_eq(u[i], philox_uniform_at(99, RNG_SAMPLE_STEP, 5, first + i), "element %d", i);
    }
    /* an image's noise is the same whether drawn in a batch or alone:
       image b of per_image values = elements b*per_image .. */
    enum { B = 3, PER = 3 * 5 * 5 };
    float batch[B * PER], one[PER];
    philox_fill_normal(batch, B * PER, 42, RNG_SAMPLE_INIT, 0, 0);
    philox_fill_normal(one, PER, 42, RNG_SAMPLE_INIT, 0, 2 * PER);
    for (int j = 0; j < PER; j++) cr_assert_eq(one[j], batch[2 * PER + j]);
}

Test(philox, streams_differ)
{
    /* seed, purpose, step and index each change the words */
    Philox4 a = philox_draw(1, RNG_DATA_FLIP, 0, 0);
    Philox4 b[4] = {philox_draw(2, RNG_DATA_FLIP, 0, 0), philox_draw(1, RNG_DATA_SHUFFLE, 0, 0),
                    philox_draw(1, RNG_DATA_FLIP, 1, 0), philox_draw(1, RNG_DATA_FLIP, 0, 1)};
    for (int k = 0; k < 4; k++) cr_expect_neq(a.v[0], b[k].v[0], "variant %d", k);
    Philox4 hi = philox_draw(1ull << 32, RNG_TEST, 0, 0), lo = philox_draw(1, RNG_TEST, 0, 0);
    cr_expect_neq(hi.v[0], lo.v[0]);
}

Test(philox, below_in_range)
{
    uint64_t counts[7] = {0};
    for (uint64_t i = 0; i < 70000; i++) {
        uint64_t r = philox_below(3, RNG_TEST, 0, i, 7);
        cr_assert(r < 7);
        counts[r]++;
    }
    for (int k = 0; k < 7; k++) cr_expect(counts[k] > 9500 && counts[k] < 10500, "count %d", k);
    cr_expect_eq(philox_below(3, RNG_TEST, 0, 5, 1), 0);
}
