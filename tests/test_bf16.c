/*
 * test_bf16.c: the CPU backend's bf16 precision (kernels/cpu/cpu_bf16.h,
 * cpu_gemm_bf16.c, --precision bf16).
 *
 *   - fp32 -> bf16 rounding: round to nearest even on the raw bits, as the
 *     CUDA backend's __float2bfloat16_rn: ties, NaN (canonical 0x7fff),
 *     infinities, zeros, subnormals, overflow to infinity, against an
 *     independent reference on every exponent and random bit patterns;
 *   - which CPU flag sets have native bf16 products;
 *   - cpu_gemm_bf16 against fp64 on odd shapes (every transpose pair, M or
 *     N of 1, 65 tokens, alpha and beta). Two bounds, per element:
 *       rounding: |C - exact| <= |alpha| (2^-7 + 2^-16 + (K+1) 2^-24)
 *                 sum_k |a_ik| |b_kj| + 2^-23 |beta c_ij|
 *         (bf16 keeps 8 significant bits, so each operand rounds by at
 *         most u = 2^-8 relative and a product by 2u + u^2 = 2^-7 + 2^-16;
 *         fp32 sums add at most 2^-24 per term; with random signs the
 *         error grows like sqrt(K) u/sqrt(3) |a||b|, far inside);
 *       emulation: C equals the fp64 product of the bf16-rounded operands
 *         within the fp32 accumulation alone, (K+1) 2^-24 of the same sum:
 *         the GEMM rounded exactly as cpu_bf16_from_f32 does;
 *   - the linear op (forward, din, dw) and a U-ViT forward at bf16 against
 *     fp32: relative L2 within 2^-7 and 2^-5 (measured 1.7e-3, 2.2e-3,
 *     2.1e-3 and 2.3e-3: about u/sqrt(3) = 2.3e-3, the rms rounding of one
 *     operand);
 *   - --precision: a bad name, and bf16 on a CPU without bf16 products
 *     (DEEDIFF_CPU_FLAGS plays one), each one line and exit status 2.
 * The products run only where the CPU has bf16 (skipped elsewhere).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_bf16.h"
#include "kernels/cpu/cpu_gemm.h"
#include "kernels/cpu/cpu_startup.h"
#include "kernels/errors.h"
#include "kernels/op_table.h"
#include "kernels/ops.h"
#include "tests/support/cli_run.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_uvit.h"

static uint32_t bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static float from_bits(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* ---- rounding ------------------------------------------------------------------------ */

/* the reference: the two bf16 neighbours of a finite x compared in double,
   ties to the even one; NaN -> 0x7fff */
static uint16_t ref_round(float x)
{
    if (isnan(x)) return 0x7fff;
    uint32_t u = bits(x);
    uint16_t lo = (uint16_t)(u >> 16);
    if (isinf(x) || (u & 0xffffu) == 0) return lo;
    uint16_t hi = (uint16_t)(lo + 1);  /* the next bf16 away from zero (may be inf) */
    double dl = fabs((double)x - cpu_f32_from_bf16(lo));
    double dh = fabs((double)cpu_f32_from_bf16(hi) - x);
    if ((hi & 0x7f80u) == 0x7f80u)  /* hi is inf: the distance to 2^128 decides */
        dh = fabs(ldexp(1.0, 128) - fabs((double)x));
    if (dl < dh) return lo;
    if (dh < dl) return hi;
    return (lo & 1) ? hi : lo;
}

Test(bf16, rounding_edge_cases)
{
    static const struct { uint32_t in; uint16_t out; const char *what; } rows[] = {
        {0x00000000u, 0x0000, "+0"},
        {0x80000000u, 0x8000, "-0"},
        {0x3f800000u, 0x3f80, "1 exactly"},
        {0x3f808000u, 0x3f80, "tie, even below"},
        {0x3f818000u, 0x3f82, "tie, odd below: up"},
        {0x3f807fffu, 0x3f80, "just below a tie"},
        {0x3f808001u, 0x3f81, "just above a tie"},
        {0xbf808000u, 0xbf80, "negative tie, even"},
        {0xbf818000u, 0xbf82, "negative tie, odd: away from zero"},
        {0x7f800000u, 0x7f80, "+inf"},
        {0xff800000u, 0xff80, "-inf"},
        {0x7fc00000u, 0x7fff, "quiet NaN"},
        {0x7f800001u, 0x7fff, "signalling NaN (would round to inf as bits)"},
        {0xffc12345u, 0x7fff, "negative NaN with payload"},
        {0x7fffffffu, 0x7fff, "NaN, all ones"},
        {0x7f7fffffu, 0x7f80, "largest float: overflows to inf"},
        {0x7f7f7fffu, 0x7f7f, "below the overflow tie"},
        {0x7f7f8000u, 0x7f80, "overflow tie, odd below: inf"},
        {0x00000001u, 0x0000, "smallest subnormal"},
        {0x00008000u, 0x0000, "subnormal tie, even"},
        {0x00018000u, 0x0002, "subnormal tie, odd"},
        {0x00008001u, 0x0001, "subnormal above a tie"},
        {0x007fffffu, 0x0080, "largest subnormal rounds to the smallest normal"},
        {0x80018000u, 0x8002, "negative subnormal tie, odd"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint16_t got = cpu_bf16_from_f32(from_bits(rows[i].in));
        cr_expect_eq(got, rows[i].out, "%s: 0x%08x -> 0x%04x, want 0x%04x", rows[i].what, rows[i].in, got,
                     rows[i].out);
        cr_expect_eq(ref_round(from_bits(rows[i].in)), rows[i].out, "the reference disagrees on %s", rows[i].what);
    }
}

Test(bf16, rounding_matches_the_reference_everywhere)
{
    /* every exponent with the low halves that matter, then random patterns */
    static const uint32_t lows[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff};
    for (uint32_t hi = 0; hi < 0x10000u; hi++)
        for (size_t k = 0; k < sizeof lows / sizeof lows[0]; k++) {
            float x = from_bits(hi << 16 | lows[k]);
            uint16_t got = cpu_bf16_from_f32(x), want = ref_round(x);
            if (got != want) cr_assert_fail("0x%08x -> 0x%04x, want 0x%04x", bits(x), got, want);
        }
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 2000000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        float x = from_bits((uint32_t)s);
        uint16_t got = cpu_bf16_from_f32(x), want = ref_round(x);
        if (got != want) cr_assert_fail("0x%08x -> 0x%04x, want 0x%04x", bits(x), got, want);
    }
    /* bf16 -> fp32 is exact, and every bf16 survives the round trip */
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float x = cpu_f32_from_bf16((uint16_t)h);
        cr_assert_eq(bits(x), h << 16);
        if (!isnan(x)) cr_assert_eq(cpu_bf16_from_f32(x), h);
    }
}

Test(bf16, pack_keeps_the_layout)
{
    float src[3 * 5];
    uint16_t dst[3 * 4];
    for (int i = 0; i < 15; i++) src[i] = 1.0f + i / 256.0f;  /* ld 5, 3 x 4 used */
    cpu_bf16_pack(dst, src, 3, 4, 5);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) cr_assert_eq(dst[r * 4 + c], cpu_bf16_from_f32(src[r * 5 + c]));
}

/* ---- which CPUs ------------------------------------------------------------------------ */

Test(bf16, flag_rule)
{
    static const struct { const char *flags; int want; } rows[] = {
        {"fpu sse2 avx2 fma avx512f avx512bw avx512_bf16 avx512_vnni", 1},  /* Zen 4/5, Cooper Lake */
        {"fpu avx2 avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile", 1}, /* Sapphire/Emerald Rapids */
        {"fpu avx2 amx_bf16 amx_tile", 1},                                  /* AMX alone */
        {"fpu sse2 avx2 fma avx512f avx512bw avx512_vnni", 0},              /* Ice Lake, Zen 3 with AVX-512 */
        {"fpu sse2 avx2 fma", 0},
        {"avx512_bf16x amx_bf16_not", 0},                                   /* whole words only */
        {"", 0},
        {NULL, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        cr_expect_eq(cpu_bf16_supported(rows[i].flags), rows[i].want, "row %zu: %s", i,
                     rows[i].flags ? rows[i].flags : "(null)");
}

Test(bf16, precision_names_and_refusal)
{
    Precision p;
    cr_assert(precision_from_name("bf16", &p) == 0 && p == PRECISION_BF16);
    cr_assert(precision_from_name("fp32", &p) == 0 && p == PRECISION_FP32);
    cr_assert(precision_from_name("fp16", &p) == -1);
    cr_assert_str_eq(precision_name(PRECISION_BF16), "bf16");
    setenv("DEEDIFF_CPU_FLAGS", "fpu sse2 avx avx2 fma", 1);  /* read once: this process is this CPU now */
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    cr_assert_eq(ctx.precision, PRECISION_FP32);
    cr_assert_eq(ctx_set_precision(&ctx, PRECISION_BF16), -1);
    cr_assert(strstr(err_msg(), "avx512_bf16") != NULL, "%s", err_msg());
    cr_assert_eq(ctx.precision, PRECISION_FP32);
    cr_assert_eq(ctx_set_precision(&ctx, PRECISION_FP32), 0);
    ctx_destroy(&ctx);
}

/* ---- the product ---------------------------------------------------------------------- */

static void need_bf16(void)
{
    if (!cpu_precision_supported(PRECISION_BF16)) cr_skip_test("this CPU has no native bf16 products");
}

typedef struct {
    GemmTrans ta, tb;
    int64_t M, N, K, pad;
    float alpha, beta;
} GemmCase;

static double at(const float *A, GemmTrans t, int64_t ld, int64_t i, int64_t k)
{
    return t == GEMM_T ? A[k * ld + i] : A[i * ld + k];
}

static double rounded(double v) { return cpu_f32_from_bf16(cpu_bf16_from_f32((float)v)); }

static void check_case(GemmCase g)
{
    int64_t ar = g.ta == GEMM_T ? g.K : g.M, ac = g.ta == GEMM_T ? g.M : g.K;
    int64_t br = g.tb == GEMM_T ? g.N : g.K, bc = g.tb == GEMM_T ? g.K : g.N;
    int64_t lda = ac + g.pad, ldb = bc + g.pad, ldc = g.N + g.pad;
    float *A = malloc(sizeof(float) * (size_t)(ar * lda + 1)), *B = malloc(sizeof(float) * (size_t)(br * ldb + 1));
    float *C = malloc(sizeof(float) * (size_t)(g.M * ldc + 1)), *C0 = malloc(sizeof(float) * (size_t)(g.M * ldc + 1));
    fill_uniform(A, ar * lda, -1, 1, 21);
    fill_uniform(B, br * ldb, -1, 1, 22);
    fill_uniform(C, g.M * ldc, -1, 1, 23);
    if (g.beta == 0.0f)
        for (int64_t i = 0; i < g.M * ldc; i++) C[i] = NAN;
    memcpy(C0, C, sizeof(float) * (size_t)(g.M * ldc));
    cpu_gemm_bf16(g.ta, g.tb, g.M, g.N, g.K, g.alpha, A, lda, B, ldb, g.beta, C, ldc);
    double worst_exact = 0, worst_emul = 0;
    for (int64_t i = 0; i < g.M; i++)
        for (int64_t j = 0; j < g.N; j++) {
            double exact = 0, emul = 0, mag = 0, mag16 = 0;
            for (int64_t k = 0; k < g.K; k++) {
                double a = at(A, g.ta, lda, i, k), b = at(B, g.tb, ldb, k, j);
                exact += a * b, mag += fabs(a * b);
                double a16 = rounded(a), b16 = rounded(b);
                emul += a16 * b16, mag16 += fabs(a16 * b16);
            }
            double c0 = g.beta == 0.0f ? 0.0 : g.beta * (double)C0[i * ldc + j], got = C[i * ldc + j];
            double bound = fabs(g.alpha) * (0x1p-7 + 0x1p-16 + (g.K + 1) * 0x1p-24) * mag + 0x1p-23 * fabs(c0) + 1e-30;
            double bound16 = fabs(g.alpha) * (g.K + 1) * 0x1p-24 * mag16 + 0x1p-23 * (fabs(c0) + fabs(g.alpha * emul)) + 1e-30;
            double e1 = fabs(got - (g.alpha * exact + c0)), e2 = fabs(got - (g.alpha * emul + c0));
            if (!(e1 <= bound))
                cr_assert_fail("%c%c %lldx%lldx%lld: C[%lld,%lld] = %.9g, exact %.9g, error %.3g > bound %.3g",
                               g.ta ? 'T' : 'N', g.tb ? 'T' : 'N', (long long)g.M, (long long)g.N, (long long)g.K,
                               (long long)i, (long long)j, got, g.alpha * exact + c0, e1, bound);
            if (!(e2 <= bound16))
                cr_assert_fail("%c%c %lldx%lldx%lld: C[%lld,%lld] = %.9g, bf16 operands give %.9g (error %.3g > %.3g)",
                               g.ta ? 'T' : 'N', g.tb ? 'T' : 'N', (long long)g.M, (long long)g.N, (long long)g.K,
                               (long long)i, (long long)j, got, g.alpha * emul + c0, e2, bound16);
            worst_exact = fmax(worst_exact, e1 / bound), worst_emul = fmax(worst_emul, e2 / bound16);
        }
    if (g.pad) cr_assert(g.beta == 0.0f ? isnan(C[g.M * ldc - 1]) : C[g.M * ldc - 1] == C0[g.M * ldc - 1],
                         "the row padding of C was written");
    free(A), free(B), free(C), free(C0);
}

static const GemmCase shapes[] = {
    {0, 0, 65, 64, 65, 0, 1.0f, 0.0f},     /* attention-like: 65 tokens */
    {0, 0, 65, 65, 64, 3, 0.125f, 0.0f},   /* a scale, strided */
    {0, 0, 1, 37, 19, 0, 1.0f, 1.0f},      /* M = 1, accumulate */
    {0, 0, 23, 1, 29, 2, 1.0f, 0.5f},      /* N = 1 */
    {0, 0, 31, 17, 1, 0, -2.0f, 1.0f},     /* K = 1 */
    {0, 0, 130, 96, 257, 5, 1.0f, 1.0f},   /* K past a blocking edge */
    {0, 0, 260, 384, 128, 0, 1.0f, 0.0f},  /* a linear layer's shape, threaded */
};

Test(bf16, gemm_within_the_bound_of_fp64)
{
    need_bf16();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            GemmCase g = shapes[s];
            g.ta = (GemmTrans)(t & 1), g.tb = (GemmTrans)(t >> 1);
            check_case(g);
        }
    float C[2] = {NAN, NAN}, A[1] = {1}, B[1] = {1};  /* K = 0: beta C, zeros for beta 0 */
    cpu_gemm_bf16(GEMM_N, GEMM_N, 1, 2, 0, 1.0f, A, 1, B, 2, 0.0f, C, 2);
    cr_assert(C[0] == 0.0f && C[1] == 0.0f);
}

/* ---- a layer and a network ------------------------------------------------------------- */

static double rel_l2_of(const float *a, const float *b, int64_t n) { return rel_l2(a, b, n); }

Test(bf16, linear_layer_and_uvit_forward_near_fp32)
{
    need_bf16();
    Ctx c32, c16;
    ctx_init_cpu(&c32, 0);
    ctx_init_cpu(&c16, 0);
    cr_assert_eq(ctx_set_precision(&c16, PRECISION_BF16), 0);
    /* a layer: forward and its three gradients */
    int64_t M = 200, N = 96, K = 128;
    float *in = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K), *b = malloc(sizeof(float) * N);
    float *g = malloc(sizeof(float) * M * N);
    fill_uniform(in, M * K, -1, 1, 31), fill_uniform(w, N * K, -0.2f, 0.2f, 32), fill_uniform(b, N, -1, 1, 33);
    fill_uniform(g, M * N, -1, 1, 34);
    float *y[2], *din[2], *dw[2];
    for (int k = 0; k < 2; k++) {
        Ctx *c = k ? &c16 : &c32;
        y[k] = malloc(sizeof(float) * M * N), din[k] = calloc((size_t)(M * K), sizeof(float));
        dw[k] = calloc((size_t)(N * K), sizeof(float));
        Tensor ti = tensor2(in, DT_F32, M, K), tw = tensor2(w, DT_F32, N, K);
        op_linear_forward(c, tensor2(y[k], DT_F32, M, N), ti, tw, tensor1(b, DT_F32, N));
        op_linear_backward(c, tensor2(din[k], DT_F32, M, K), tensor2(dw[k], DT_F32, N, K), tensor_none(),
                           tensor2(g, DT_F32, M, N), ti, tw);
    }
    cr_expect(rel_l2_of(y[1], y[0], M * N) < 0x1p-7, "linear out: %g", rel_l2_of(y[1], y[0], M * N));
    cr_expect(rel_l2_of(din[1], din[0], M * K) < 0x1p-7, "linear din: %g", rel_l2_of(din[1], din[0], M * K));
    cr_expect(rel_l2_of(dw[1], dw[0], N * K) < 0x1p-7, "linear dw: %g", rel_l2_of(dw[1], dw[0], N * K));
    cr_expect(rel_l2_of(y[1], y[0], M * N) > 0, "bf16 must differ from fp32 somewhere");
    /* a U-ViT forward */
    const char *json = "{\"img_size\":16,\"patch_size\":4,\"in_chans\":1,\"embed_dim\":64,\"depth\":4,\"num_heads\":2}";
    UViT m;
    tiny_uvit_create(&m, &c32, json, 5);
    int B = 4, n = B * 16 * 16;
    float *x = malloc(sizeof(float) * n), t[4] = {10, 250, 600, 990}, *out[2];
    fill_uniform(x, n, -1, 1, 35);
    for (int k = 0; k < 2; k++) {
        Ctx *c = k ? &c16 : &c32;
        out[k] = malloc(sizeof(float) * n);
        UViTActs *a = uvit_acts_create(c, &m, B, 0);
        uvit_forward(c, &m, a, tensor4(x, DT_F32, B, 1, 16, 16), tensor1(t, DT_F32, B), cond_none(),
                     tensor4(out[k], DT_F32, B, 1, 16, 16));
        uvit_acts_destroy(c, a);
    }
    double e = rel_l2_of(out[1], out[0], n);
    cr_expect(e < 0x1p-5 && e > 0, "U-ViT forward bf16 vs fp32: relative L2 %g", e);
    uvit_destroy(&m, &c32);
    for (int k = 0; k < 2; k++) free(y[k]), free(din[k]), free(dw[k]), free(out[k]);
    free(in), free(w), free(b), free(g), free(x);
    ctx_destroy(&c32), ctx_destroy(&c16);
}

/* ---- the command line ------------------------------------------------------------------ */

static char out[1 << 14], err[1 << 14];

Test(bf16_cli, bad_precision_and_missing_bf16_are_one_line_and_status_2)
{
    cli_need_binary();
    const char *cmd = "forward --model /nonexistent.safetensors --input /nonexistent --output /tmp/x --precision ";
    char line[512];
    snprintf(line, sizeof line, "%sfp16", cmd);
    int rc = cli_run(line, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 2, "%s", err);
    cr_assert_eq(count_lines(err), 1, "%s", err);
    cr_assert(strstr(err, "--precision") && strstr(err, "fp16"), "%s", err);
    setenv("DEEDIFF_CPU_FLAGS", "fpu sse2 avx avx2 fma avx512f avx512bw", 1);
    snprintf(line, sizeof line, "%sbf16", cmd);
    rc = cli_run(line, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 2, "%s", err);
    cr_assert_eq(count_lines(err), 1, "%s", err);
    cr_assert(strstr(err, "--precision bf16") && strstr(err, "avx512_bf16"), "%s", err);
}
