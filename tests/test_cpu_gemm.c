/*
 * test_cpu_gemm.c: the CPU backend's GEMM libraries and their start-up
 * settings (kernels/cpu/cpu_gemm.h, kernels/cpu/cpu_startup.h), and the
 * benchmark pieces built on them (harness/bench_ceiling.c, bench_busy.c).
 *
 *   - cpu_sgemm and cpu_sgemm_with (oneDNN and OpenBLAS alike) against a
 *     naive double-precision product on odd shapes: every transpose pair,
 *     M, N or K of 1, 65 tokens (U-ViT's 64 patches + 1), row strides wider
 *     than the matrix, alpha and beta, beta = 0 over NaN, K = 0;
 *   - the tiles schedule's packed blocks (cpu_matmul.h) likewise;
 *   - the OpenBLAS core-type rule, and the library auto picks, on tables of
 *     CPU flag sets;
 *   - provenance lines, the environment bookkeeping, the DEEDIFF_GEMM
 *     refusal, and the CLI showing the settings;
 *   - a batch run as pieces at once (ctx_split_run): one one-thread worker
 *     per piece, all at the same time, none on a bf16 context.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/bench/bench_util.h"
#include "kernels/cpu/cpu_gemm.h"
#include "kernels/cpu/cpu_matmul.h"
#include "kernels/cpu/cpu_startup.h"
#include "tests/support/cli_run.h"
#include "tests/support/gradcheck.h"

/* ---- the product against double loops ----------------------------------------- */

typedef struct {
    GemmTrans ta, tb;
    int64_t M, N, K;
    int64_t pad;       /* extra columns of every row stride */
    float alpha, beta;
} GemmCase;

/* element (i, k) of op(A) stored with row stride ld */
static double at(const float *A, GemmTrans t, int64_t ld, int64_t i, int64_t k)
{
    return t == GEMM_T ? A[k * ld + i] : A[i * ld + k];
}

/* runs one case through lib (or the chosen library when lib < 0) and checks
   every element within a relative bound of K float roundings */
static void check_case(int lib, GemmCase g)
{
    // op(A) is (M,K), op(B) is (K,N), C is (M,N)
    int64_t ar = g.ta == GEMM_T ? g.K : g.M, ac = g.ta == GEMM_T ? g.M : g.K;
    int64_t br = g.tb == GEMM_T ? g.N : g.K, bc = g.tb == GEMM_T ? g.K : g.N;
    int64_t lda = ac + g.pad, ldb = bc + g.pad, ldc = g.N + g.pad;
    float *A = malloc(sizeof(float) * (size_t)(ar * lda + 1));
    float *B = malloc(sizeof(float) * (size_t)(br * ldb + 1));
    float *C = malloc(sizeof(float) * (size_t)(g.M * ldc + 1));
    fill_uniform(A, ar * lda, -1, 1, 11);
    fill_uniform(B, br * ldb, -1, 1, 12);
    fill_uniform(C, g.M * ldc, -1, 1, 13);
    if (g.beta == 0.0f)  /* beta = 0 must not read C: NaN there stays out */
        for (int64_t i = 0; i < g.M * ldc; i++) C[i] = NAN;
    double *want = malloc(sizeof(double) * (size_t)(g.M * g.N + 1));
    for (int64_t i = 0; i < g.M; i++)
        for (int64_t j = 0; j < g.N; j++) {
            double s = 0;
            for (int64_t k = 0; k < g.K; k++) s += at(A, g.ta, lda, i, k) * at(B, g.tb, ldb, k, j);
            want[i * g.N + j] = g.alpha * s + (g.beta == 0.0f ? 0.0 : g.beta * (double)C[i * ldc + j]);
        }
    float guard = C[g.M * ldc - 1];  /* the padding of the last row is never written */
    if (lib < 0)
        cpu_sgemm(g.ta, g.tb, g.M, g.N, g.K, g.alpha, A, lda, B, ldb, g.beta, C, ldc);
    else
        cpu_sgemm_with((GemmLibrary)lib, g.ta, g.tb, g.M, g.N, g.K, g.alpha, A, lda, B, ldb, g.beta, C, ldc);
    double tol = 4e-7 * (g.K + 4);
    for (int64_t i = 0; i < g.M; i++)
        for (int64_t j = 0; j < g.N; j++) {
            double w = want[i * g.N + j], got = C[i * ldc + j];
            cr_assert(fabs(got - w) <= tol * (1 + fabs(w)),
                      "lib %d %c%c %lldx%lldx%lld: C[%lld,%lld] = %.9g, want %.9g", lib,
                      g.ta ? 'T' : 'N', g.tb ? 'T' : 'N', (long long)g.M, (long long)g.N,
                      (long long)g.K, (long long)i, (long long)j, got, w);
        }
    if (g.pad && g.N > 0) cr_assert(isnan(guard) ? isnan(C[g.M * ldc - 1]) : C[g.M * ldc - 1] == guard,
                                    "the row padding of C was written");
    free(A), free(B), free(C), free(want);
}

/* the odd shapes, each with all four transpose pairs */
static const GemmCase shapes[] = {
    {0, 0, 65, 64, 65, 0, 1.0f, 0.0f},     /* attention: 65 tokens, head dim 64 */
    {0, 0, 65, 65, 64, 3, 0.125f, 0.0f},   /* scores with a scale, strided */
    {0, 0, 1, 37, 19, 0, 1.0f, 1.0f},      /* M = 1, accumulate */
    {0, 0, 23, 1, 29, 2, 1.0f, 0.5f},      /* N = 1 */
    {0, 0, 31, 17, 1, 0, -2.0f, 1.0f},     /* K = 1 */
    {0, 0, 1, 1, 1, 0, 1.0f, 0.0f},
    {0, 0, 130, 96, 257, 5, 1.0f, 1.0f},   /* K past a blocking edge, odd ld */
    {0, 0, 260, 384, 128, 0, 1.0f, 0.0f},  /* big enough for both threads */
};

static void check_all(int lib)
{
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            GemmCase g = shapes[s];
            g.ta = (GemmTrans)(t & 1), g.tb = (GemmTrans)(t >> 1);
            check_case(lib, g);
        }
}

Test(cpu_gemm, onednn_matches_double) { check_all(GEMM_ONEDNN); }
Test(cpu_gemm, openblas_matches_double) { check_all(GEMM_OPENBLAS); }
Test(cpu_gemm, chosen_library_matches_double) { check_all(-1); }

/* K = 0 leaves beta C (zeros for beta 0 even over NaN); M or N = 0 writes nothing */
Test(cpu_gemm, empty_products)
{
    for (int lib = 0; lib < 2; lib++) {
        float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {7}, B[1] = {8};
        cpu_sgemm_with((GemmLibrary)lib, GEMM_N, GEMM_N, 2, 3, 0, 1.0f, A, 1, B, 3, 0.5f, C, 3);
        for (int i = 0; i < 6; i++) cr_assert_float_eq(C[i], 0.5f * (i + 1), 0);
        float D[2] = {NAN, NAN};
        cpu_sgemm_with((GemmLibrary)lib, GEMM_N, GEMM_N, 1, 2, 0, 1.0f, A, 1, B, 2, 0.0f, D, 2);
        cr_assert(D[0] == 0.0f && D[1] == 0.0f);
        cpu_sgemm_with((GemmLibrary)lib, GEMM_N, GEMM_N, 0, 2, 1, 1.0f, A, 1, B, 2, 0.0f, D, 2);
        cpu_sgemm_with((GemmLibrary)lib, GEMM_N, GEMM_N, 1, 0, 1, 1.0f, A, 1, B, 2, 0.0f, D, 2);
        cr_assert(D[0] == 0.0f && D[1] == 0.0f);
    }
}

/* ---- which library, and its provenance ------------------------------------------ */

Test(cpu_gemm, provenance_names_library_version_and_kernels)
{
    for (int lib = 0; lib < 2; lib++) {
        const char *p = cpu_gemm_provenance_of((GemmLibrary)lib), *name = cpu_gemm_library_name((GemmLibrary)lib);
        cr_assert(!strncmp(p, name, strlen(name)) && p[strlen(name)] == ' ', "%s", p);
        char lib_s[32], ver[32], kern[64], extra[8];
        cr_assert_eq(sscanf(p, "%31s %31s %63s %7s", lib_s, ver, kern, extra), 3, "not 3 words: %s", p);
        cr_assert(strchr(ver, '.') != NULL, "no version in %s", p);
    }
    cr_assert_str_eq(cpu_gemm_library_name(GEMM_ONEDNN), "onednn");
    cr_assert_str_eq(cpu_gemm_library_name(GEMM_OPENBLAS), "openblas");
    const char *threaded = cpu_gemm_provenance_of(cpu_gemm_library());
    cr_assert(!strncmp(cpu_gemm_provenance(), threaded, strlen(threaded)), "%s", cpu_gemm_provenance());
    if (cpu_gemm_library_one_thread() != cpu_gemm_library())
        cr_assert(strstr(cpu_gemm_provenance(), "; on one thread onednn ") != NULL, "%s", cpu_gemm_provenance());
    else
        cr_assert_str_eq(cpu_gemm_provenance(), threaded);
}

/* each test runs in its own process, so the environment decides afresh */
Test(cpu_gemm, environment_chooses_the_library)
{
    setenv("DEEDIFF_GEMM", "openblas", 1);
    cr_assert_eq(cpu_gemm_library(), GEMM_OPENBLAS);
    cr_assert_eq(cpu_gemm_library_one_thread(), GEMM_OPENBLAS);  /* named: everywhere */
    cr_assert(!strncmp(cpu_gemm_provenance(), "openblas ", 9));
    cr_assert(strchr(cpu_gemm_provenance(), ';') == NULL, "%s", cpu_gemm_provenance());
}

Test(cpu_gemm, auto_rule)
{
    cr_assert_eq(cpu_gemm_auto(0, "SkylakeX"), GEMM_OPENBLAS);  /* detected or forced best */
    cr_assert_eq(cpu_gemm_auto(1, "SkylakeX"), GEMM_ONEDNN);    /* pinned below best */
    cr_assert_eq(cpu_gemm_auto(0, NULL), GEMM_ONEDNN);          /* no AVX: no known best */
    setenv("DEEDIFF_GEMM", "auto", 1);
    cr_assert_eq(cpu_gemm_library(), cpu_gemm_auto(cpu_openblas_below_best(), cpu_openblas_best_coretype()));
    cr_assert_eq(cpu_gemm_library_one_thread(), GEMM_ONEDNN);
}

/* a product made inside a parallel region runs on its thread alone, by the
   one-thread library; outside, by the threaded one: the same bits as those
   libraries called by name in the same place (the bits tell the libraries
   apart only where they differ: OpenBLAS at its best core, which this test
   process, not re-executed by cpu_startup, rarely runs; the rule and the
   thread count it is given are checked on their own) */
Test(cpu_gemm, products_on_one_thread_use_the_one_thread_library)
{
    setenv("DEEDIFF_GEMM", "auto", 1);
    cr_assert_eq(cpu_gemm_library_for(1, GEMM_OPENBLAS, GEMM_ONEDNN), GEMM_ONEDNN);
    cr_assert_eq(cpu_gemm_library_for(2, GEMM_OPENBLAS, GEMM_ONEDNN), GEMM_OPENBLAS);
    cr_assert_eq(cpu_gemm_library_for(16, GEMM_ONEDNN, GEMM_ONEDNN), GEMM_ONEDNN);
    omp_set_num_threads(3);
    cr_assert_eq(cpu_gemm_threads_here(), 3);
    omp_set_num_threads(1);
    cr_assert_eq(cpu_gemm_threads_here(), 1);
    int inside[2] = {0, 0};
    #pragma omp parallel num_threads(2)
    inside[omp_get_thread_num()] = cpu_gemm_threads_here();
    cr_assert(inside[0] == 1 && inside[1] == 1);
    enum { M = 37, N = 29, K = 800 }; /* K past both libraries' first K block: their bits differ */
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float got[2][M * N], want[2][M * N];
    for (int i = 0; i < M * K; i++) A[i] = sinf(0.37f * (float)i);
    for (int i = 0; i < K * N; i++) B[i] = cosf(0.11f * (float)i);
    omp_set_num_threads(2);
    cpu_sgemm(GEMM_N, GEMM_N, M, N, K, 1.0f, A, K, B, N, 0.0f, got[0], N);
    cpu_sgemm_with(cpu_gemm_library(), GEMM_N, GEMM_N, M, N, K, 1.0f, A, K, B, N, 0.0f, want[0], N);
    #pragma omp parallel num_threads(2)
    if (omp_get_thread_num() == 0) {
        cr_assert(omp_in_parallel());
        cpu_sgemm(GEMM_N, GEMM_N, M, N, K, 1.0f, A, K, B, N, 0.0f, got[1], N);
        cpu_sgemm_with(GEMM_ONEDNN, GEMM_N, GEMM_N, M, N, K, 1.0f, A, K, B, N, 0.0f, want[1], N);
    }
    cr_assert(!memcmp(got[0], want[0], sizeof got[0]), "threaded product: not the threaded library's bits");
    cr_assert(!memcmp(got[1], want[1], sizeof got[1]), "one-thread product: not oneDNN's bits");
    free(A);
    free(B);
}

/* the tiles schedule's packed blocks (cpu_matmul.h) against double loops,
   on one thread of a parallel region as a piece's worker runs them: taken
   exactly when that thread's products go through oneDNN */
Test(cpu_gemm, packed_blocks_match_double)
{
    static const int64_t shapes[][3] = {{17, 65, 33}, {128, 384, 128}, {40, 7, 513}, {3, 1, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t R = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *in = malloc(sizeof(float) * (size_t)(R * K)), *w = malloc(sizeof(float) * (size_t)(N * K));
        float *d = malloc(sizeof(float) * (size_t)(R * N));
        fill_uniform(in, R * K, -1, 1, 21);
        fill_uniform(w, N * K, -1, 1, 22);
        int taken = -1;
        #pragma omp parallel num_threads(2)
        if (omp_get_thread_num() == 0) {
            CpuMatmul mm;
            taken = cpu_matmul_begin(&mm, w, R, N, K);
            if (taken) cpu_matmul_block(&mm, in, d);
        }
        cr_assert_eq(taken, cpu_gemm_library_one_thread() == GEMM_ONEDNN, "packed path taken: %d", taken);
        for (int64_t i = 0; taken && i < R; i++)
            for (int64_t j = 0; j < N; j++) {
                double want = 0;
                for (int64_t k = 0; k < K; k++) want += (double)in[i * K + k] * w[j * K + k];
                cr_assert(fabs(d[i * N + j] - want) <= 4e-7 * (K + 4) * (1 + fabs(want)),
                          "%lldx%lldx%lld: d[%lld,%lld] = %.9g, want %.9g", (long long)R, (long long)N,
                          (long long)K, (long long)i, (long long)j, d[i * N + j], want);
            }
        free(in), free(w), free(d);
    }
}

Test(cpu_gemm, bad_library_name_exits_2, .exit_code = 2)
{
    setenv("DEEDIFF_GEMM", "mkl", 1);
    cpu_gemm_library();
}

/* ---- OpenBLAS's core type from the CPU's flags ------------------------------------ */

#define AVX512 "avx512f avx512dq avx512cd avx512bw avx512vl"
/* the flags of CPUs this project has met, and older ones */
#define EMERALD "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 " AVX512 " avx512_bf16 avx512_fp16 amx_bf16"
#define ZEN5 "fpu sse sse2 pni ssse3 fma sse4_1 sse4_2 avx avx2 " AVX512 " avx512_bf16 avx512_vnni"
#define ZEN3 "fpu sse sse2 pni ssse3 fma sse4_1 sse4_2 avx f16c avx2 sha_ni"
#define IVY "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c"
#define NEHALEM "fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt"
#define KNL "fpu sse sse2 fma avx avx2 avx512f avx512cd avx512er avx512pf"

Test(cpu_startup, coretype_decision_table)
{
    static const struct {
        const char *detected, *flags, *want;  /* want NULL: leave OpenBLAS alone */
    } rows[] = {
        {"Prescott", EMERALD, "SkylakeX"},     /* the issue: 0.3.21 on Emerald Rapids */
        {"Haswell", ZEN5, "SkylakeX"},         /* 0.3.21 on Zen 5 (this machine) */
        {"Zen", ZEN5, "SkylakeX"},
        {"SkylakeX", EMERALD, NULL},           /* already the widest */
        {"Cooperlake", EMERALD, NULL},
        {"SapphireRapids", EMERALD, NULL},
        {"Zen", ZEN3, NULL},                   /* AVX2 is all Zen 3 has */
        {"Haswell", ZEN3, NULL},
        {"Prescott", ZEN3, "Haswell"},
        {"Core2", IVY, "Sandybridge"},
        {"Sandybridge", IVY, NULL},
        {"Prescott", NEHALEM, NULL},           /* no AVX: nothing better to force */
        {"Nehalem", NEHALEM, NULL},
        {"Haswell", KNL, NULL},                /* AVX-512 without BW/DQ/VL is not SkylakeX's */
        {"Prescott", KNL, "Haswell"},
        {"Unknown", ZEN5, "SkylakeX"},
        {"prescott", EMERALD, "SkylakeX"},     /* names compare without case */
        {"NoSuchCore", EMERALD, NULL},         /* unknown to the rule: left alone */
        {"Prescott", "", NULL},
        {"Prescott", "avx512fx avx2x fmax", NULL}, /* whole words only */
        {"Prescott", "fma\tavx2", "Haswell"},
        {NULL, EMERALD, NULL},
        {"Prescott", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *got = openblas_coretype_upgrade(rows[i].detected, rows[i].flags);
        if (!rows[i].want) cr_assert_null(got, "row %zu: %s -> %s, want none", i, rows[i].detected, got);
        else cr_assert(got && !strcmp(got, rows[i].want), "row %zu: %s -> %s, want %s", i,
                       rows[i].detected, got ? got : "none", rows[i].want);
    }
}

/* the whole fallback decision for a table of machines: OpenBLAS's best core
   for the flags, whether the core it runs is below that, and the library
   auto then picks */
Test(cpu_startup, gemm_library_for_flag_sets)
{
    static const struct {
        const char *flags, *running;   /* the CPU's flags; the core OpenBLAS runs */
        GemmLibrary want;
    } rows[] = {
        {EMERALD, "SkylakeX", GEMM_OPENBLAS},  /* detected, or forced by the re-exec */
        {EMERALD, "Prescott", GEMM_ONEDNN},    /* a failed re-exec: generic kernels */
        {ZEN5, "SkylakeX", GEMM_OPENBLAS},
        {ZEN5, "Haswell", GEMM_ONEDNN},        /* this project's machines pin Haswell */
        {ZEN3, "Haswell", GEMM_OPENBLAS},      /* Haswell is Zen 3's best */
        {ZEN3, "Zen", GEMM_OPENBLAS},
        {ZEN3, "Prescott", GEMM_ONEDNN},
        {IVY, "Sandybridge", GEMM_OPENBLAS},
        {NEHALEM, "Nehalem", GEMM_ONEDNN},     /* no AVX: no best core known */
        {KNL, "Haswell", GEMM_OPENBLAS},       /* AVX-512 without BW/DQ/VL: Haswell is the best */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *best = openblas_coretype_for_flags(rows[i].flags);
        int below = openblas_coretype_upgrade(rows[i].running, rows[i].flags) != NULL;
        GemmLibrary got = cpu_gemm_auto(below, best);
        cr_expect_eq(got, rows[i].want, "row %zu: running %s, best %s -> %s", i, rows[i].running,
                     best ? best : "none", cpu_gemm_library_name(got));
    }
}

Test(cpu_startup, best_coretype_for_flags)
{
    cr_assert_str_eq(openblas_coretype_for_flags(EMERALD), "SkylakeX");
    cr_assert_str_eq(openblas_coretype_for_flags(ZEN3), "Haswell");
    cr_assert_str_eq(openblas_coretype_for_flags(IVY), "Sandybridge");
    cr_assert_null(openblas_coretype_for_flags(NEHALEM));
    cr_assert_null(openblas_coretype_for_flags(NULL));
    /* this machine: its flags are read, and its best core is the rule's */
    const char *best = cpu_openblas_best_coretype(), *mine = openblas_coretype_for_flags(cpu_flags());
    cr_assert(best == mine);
    cr_assert(strstr(cpu_flags(), "sse2") != NULL, "flags: '%s'", cpu_flags());
    cr_assert(cpu_openblas_detected()[0] != '\0');
}

Test(cpu_startup, detected_core_survives_the_reexec)
{
    setenv("DEEDIFF_OPENBLAS_DETECTED", "Prescott", 1);
    cr_assert_str_eq(cpu_openblas_detected(), "Prescott");
}

/* the peer's environment: as the user had it, or with our settings */
Test(cpu_startup, restore_user_env_and_peer_env)
{
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);          /* as cpu_startup sets it */
    setenv("DEEDIFF_SET_OMP_WAIT_POLICY", "1", 1);
    setenv("OPENBLAS_CORETYPE", "Zen", 1);            /* the user's own */
    const char *best = cpu_openblas_best_coretype();
    for (int round = 0; round < 2; round++) {
        bench_peer_env(1);
        cr_assert_str_eq(getenv("OMP_WAIT_POLICY"), "PASSIVE");
        cr_assert_str_eq(getenv("OPENBLAS_CORETYPE"), best ? best : "Zen");
        bench_peer_env(0);
        cr_assert_null(getenv("OMP_WAIT_POLICY"));
        cr_assert_str_eq(getenv("OPENBLAS_CORETYPE"), "Zen");
    }
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);       /* as cpu_startup forces it */
    setenv("DEEDIFF_SET_OPENBLAS_CORETYPE", "1", 1);
    cpu_startup_restore_user_env();
    cr_assert_null(getenv("OPENBLAS_CORETYPE"));
}

Test(cpu_startup, describe_names_every_setting)
{
    char buf[2048] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    cpu_describe(f);
    fclose(f);
    cr_assert(strstr(buf, cpu_gemm_provenance()) != NULL, "%s", buf);
    cr_assert(strstr(buf, "openblas ") != NULL && strstr(buf, "omp wait") != NULL, "%s", buf);
}

/* cpu_startup without anything to fix returns (the re-exec itself is seen
   through the CLI below) */
Test(cpu_startup, nothing_to_fix_returns)
{
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    setenv("OMP_WAIT_POLICY", "ACTIVE", 1);
    char *argv[] = {"deediff-tests", NULL};
    cpu_startup(argv);
    cr_assert_str_eq(getenv("OMP_WAIT_POLICY"), "ACTIVE");
}

/* ---- the command line ------------------------------------------------------------- */

static char out[1 << 16], err[1 << 14];

Test(cpu_cli, info_shows_the_libraries_and_the_wait_policy)
{
    cli_need_binary();
    unsetenv("OMP_WAIT_POLICY");
    unsetenv("OPENBLAS_CORETYPE");
    int rc = cli_run("info --config '{\"img_size\":8,\"patch_size\":2,\"in_chans\":1,\"embed_dim\":16,"
                     "\"depth\":2,\"num_heads\":2}'", out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "gemm         onednn ") || strstr(out, "gemm         openblas "), "%s", out);
    cr_assert(strstr(out, "(auto: ") != NULL, "%s", out);
    cr_assert(strstr(out, "PASSIVE (set by deediff") != NULL, "%s", out);
    /* OpenBLAS as it detected the CPU, or forced after the re-exec */
    cr_assert(strstr(out, "(as detected)") || strstr(out, "(forced by deediff: OpenBLAS detected "), "%s", out);
    /* the user's settings win */
    setenv("OMP_WAIT_POLICY", "ACTIVE", 1);
    setenv("DEEDIFF_GEMM", "openblas", 1);
    rc = cli_run("info --config '{\"img_size\":8,\"patch_size\":2,\"in_chans\":1,\"embed_dim\":16,"
                 "\"depth\":2,\"num_heads\":2}'", out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "gemm         openblas ") != NULL, "%s", out);
    cr_assert(strstr(out, "omp wait     ACTIVE") != NULL, "%s", out);
}

/* small blocks as pieces (on a machine of 2 cores or more), U-ViT-S/2's op by op */
Test(cpu_cli, info_says_whether_blocks_run_as_pieces)
{
    cli_need_binary();
    int rc = cli_run("info --config '{\"img_size\":28,\"patch_size\":4,\"in_chans\":1,\"embed_dim\":128,"
                     "\"depth\":12,\"num_heads\":4}'", out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect(strstr(out, "blocks       as pieces of the batch, one per thread") ||
                  strstr(out, "blocks       op by op, on one thread"), "%s", out);
    cr_expect(strstr(out, "weights, 0.88 MiB") != NULL, "%s", out);
    rc = cli_run("info --config '{\"img_size\":32,\"patch_size\":2,\"in_chans\":3,\"embed_dim\":512,"
                 "\"depth\":12,\"num_heads\":8}'", out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect(strstr(out, "blocks       op by op") != NULL, "%s", out);
    cr_expect(strstr(out, "weights, 14.02 MiB") != NULL, "%s", out);
}

Test(cpu_cli, bad_gemm_library_is_one_line_and_status_2)
{
    cli_need_binary();
    setenv("DEEDIFF_GEMM", "blis", 1);
    int rc = cli_run("info --config '{}'", out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 2, "%s", err);
    cr_assert_eq(count_lines(err), 1, "%s", err);
    cr_assert(strstr(err, "DEEDIFF_GEMM") != NULL, "%s", err);
}

/* the ceiling is the best of both libraries and is printed with both */
Test(cpu_bench, ceiling_is_the_best_library)
{
    SgemmCeiling c = {0};
    bench_sgemm_ceiling(&c, 96, 1, NULL);
    cr_assert(c.gflops[0] > 0 && c.gflops[1] > 0 && c.gflops[2] == 0);
    cr_assert_float_eq(c.best, fmax(c.gflops[0], c.gflops[1]), 0);
    double before = c.best;
    bench_sgemm_ceiling(&c, 96, 1, NULL);
    cr_assert(c.best >= before, "a second measurement lowered the ceiling");
    char buf[1024] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    bench_print_ceiling(f, &c);
    fclose(f);
    cr_assert(strstr(buf, "onednn ") && strstr(buf, "openblas ") && strstr(buf, "ceiling: "), "%s", buf);
}

/* a user's weaker OPENBLAS_CORETYPE cannot lower the ceiling: OpenBLAS's
   best core is timed in a child deediff (bench --sgemm) */
Test(cpu_bench, ceiling_includes_openblas_at_its_best_core)
{
    cli_need_binary();
    cr_assert_eq(cli_run("bench --sgemm 64", out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "sgemm onednn ") && strstr(out, "sgemm openblas "), "%s", out);
    cr_assert_eq(cli_run("bench --sgemm 0", out, sizeof out, err, sizeof err), 2);
    SgemmCeiling c = {0};
    bench_sgemm_ceiling(&c, 96, 1, cli_binary());
    if (!cpu_openblas_below_best() || !cpu_openblas_best_coretype()) {
        cr_assert(c.gflops[2] == 0);
        return;
    }
    cr_assert(c.gflops[2] > 0 && strstr(c.child_name, cpu_openblas_best_coretype()), "%s", c.child_name);
    cr_assert(c.best >= c.gflops[2]);
}

Test(cpu_bench, busy_measures_a_slowdown, .timeout = 300)
{
    cli_need_binary();
    int rc = cli_run("bench --busy --quick --threads 2", out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "slowdown busy/idle") != NULL, "%s", out);
}

/* ---- a batch as pieces ---------------------------------------------------------- */

typedef struct {
    Ctx *workers[4];
    int threads[4], in_parallel[4];
} PieceLog;

static void log_piece(Ctx *worker, int piece, void *user)
{
    PieceLog *log = user;
    log->workers[piece] = worker;
    log->threads[piece] = worker->threads;
    log->in_parallel[piece] = omp_in_parallel();
}

Test(cpu_split, each_piece_runs_at_once_on_its_own_one_thread_worker)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 3);
    cr_assert_eq(ctx_split_threads(&ctx), 3);
    /* never more pieces than wanted, than items or than threads; pieces tile the items */
    cr_expect_eq(ctx_split_pieces(&ctx, 2, 5), 2);
    cr_expect_eq(ctx_split_pieces(&ctx, 8, 2), 2);
    cr_expect_eq(ctx_split_pieces(&ctx, 8, 8), 3);
    cr_expect(ctx_piece_start(5, 0, 2) == 0 && ctx_piece_start(5, 1, 2) == 2 && ctx_piece_start(5, 2, 2) == 5);
    PieceLog log = {0};
    ctx_split_run(&ctx, 3, log_piece, &log);
    cr_assert_eq(ctx.num_workers, 3);
    for (int p = 0; p < 3; p++) {
        cr_expect(log.workers[p] == &ctx.workers[p], "piece %d: not worker %d", p, p);
        cr_expect_eq(log.threads[p], 1);
        cr_expect(log.in_parallel[p], "piece %d ran outside a parallel region", p);
    }
    /* more threads since the first split: more workers */
    ctx.threads = 4;
    ctx_split_run(&ctx, 4, log_piece, &log);
    cr_assert_eq(ctx.num_workers, 4);
    for (int p = 0; p < 4; p++) cr_expect(log.workers[p] == &ctx.workers[p] && log.threads[p] == 1);
    /* one piece: the context itself, no thread team */
    memset(&log, 0, sizeof log);
    ctx_split_run(&ctx, 1, log_piece, &log);
    cr_expect(log.workers[0] == &ctx && !log.in_parallel[0]);
    ctx_destroy(&ctx);
    cr_expect(ctx.workers == NULL && ctx.num_workers == 0);
    /* one thread, or bf16: no pieces */
    ctx_init_cpu(&ctx, 1);
    cr_expect_eq(ctx_split_threads(&ctx), 1);
    ctx.threads = 2;
    ctx.precision = PRECISION_BF16;
    cr_expect_eq(ctx_split_threads(&ctx), 1);
    ctx_destroy(&ctx);
}
