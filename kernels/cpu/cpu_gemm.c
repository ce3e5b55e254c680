/*
 * cpu_gemm.c: cpu_sgemm and the choice of the library behind it (see
 * cpu_gemm.h): oneDNN's dnnl_sgemm or OpenBLAS's cblas_sgemm, both
 * row-major, chosen once per process.
 */
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../errors.h"
#include "cpu_gemm.h"
#include "cpu_startup.h"

/* OpenBLAS's own functions (cblas.h of Debian's OpenBLAS declares them, the
   reference cblas.h does not: declared here for either) */
char *openblas_get_corename(void);
char *openblas_get_config(void);

static GemmLibrary chosen = GEMM_ONEDNN, chosen_one_thread = GEMM_ONEDNN;
static pthread_once_t choose_once = PTHREAD_ONCE_INIT;

GemmLibrary cpu_gemm_auto(int openblas_below_best, const char *openblas_best_core)
{
    return openblas_below_best || !openblas_best_core ? GEMM_ONEDNN : GEMM_OPENBLAS;
}

static void choose(void)
{
    const char *env = getenv("DEEDIFF_GEMM");
    if (!env || !*env || !strcmp(env, "auto")) {
        chosen = cpu_gemm_auto(cpu_openblas_below_best(), cpu_openblas_best_coretype());
        chosen_one_thread = GEMM_ONEDNN;
    } else if (!strcmp(env, "onednn")) chosen = chosen_one_thread = GEMM_ONEDNN;
    else if (!strcmp(env, "openblas")) chosen = chosen_one_thread = GEMM_OPENBLAS;
    else {
        fprintf(stderr, "deediff: DEEDIFF_GEMM: '%s' is not auto, onednn or openblas\n", env);
        exit(EXIT_BAD_INPUT);
    }
}

GemmLibrary cpu_gemm_library(void)
{
    pthread_once(&choose_once, choose);
    return chosen;
}

GemmLibrary cpu_gemm_library_one_thread(void)
{
    pthread_once(&choose_once, choose);
    return chosen_one_thread;
}

int cpu_gemm_threads_here(void)
{
    return omp_in_parallel() ? 1 : omp_get_max_threads();
}

GemmLibrary cpu_gemm_library_for(int threads, GemmLibrary threaded, GemmLibrary one_thread)
{
    return threads <= 1 ? one_thread : threaded;
}

const char *cpu_gemm_library_name(GemmLibrary lib)
{
    return lib == GEMM_ONEDNN ? "onednn" : "openblas";
}

/* oneDNN's name for the instruction set its kernels use on this CPU */
static const char *dnnl_isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "isa?";
    }
}

/* "0.3.21" out of "OpenBLAS 0.3.21 DYNAMIC_ARCH ..." */
static void openblas_version(char *buf, size_t n)
{
    const char *cfg = openblas_get_config();
    const char *v = cfg && !strncmp(cfg, "OpenBLAS ", 9) ? cfg + 9 : "?";
    snprintf(buf, n, "%.*s", (int)strcspn(v, " "), v);
}

static char provenance[2][128];

static void fill_provenance(void)
{
    const dnnl_version_t *v = dnnl_version();
    snprintf(provenance[GEMM_ONEDNN], sizeof provenance[0], "onednn %d.%d.%d %s", v->major,
             v->minor, v->patch, dnnl_isa_name(dnnl_get_effective_cpu_isa()));
    char ver[32];
    openblas_version(ver, sizeof ver);
    snprintf(provenance[GEMM_OPENBLAS], sizeof provenance[1], "openblas %s %s", ver,
             openblas_get_corename());
}

const char *cpu_gemm_provenance_of(GemmLibrary lib)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fill_provenance);
    return provenance[lib == GEMM_ONEDNN ? GEMM_ONEDNN : GEMM_OPENBLAS];
}

static char provenance_both[300];

static void fill_provenance_both(void)
{
    GemmLibrary many = cpu_gemm_library(), one = cpu_gemm_library_one_thread();
    if (many == one)
        snprintf(provenance_both, sizeof provenance_both, "%s", cpu_gemm_provenance_of(many));
    else
        snprintf(provenance_both, sizeof provenance_both, "%s; on one thread %s", cpu_gemm_provenance_of(many),
                 cpu_gemm_provenance_of(one));
}

const char *cpu_gemm_provenance(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fill_provenance_both);
    return provenance_both;
}

void cpu_sgemm_with(GemmLibrary lib, GemmTrans ta, GemmTrans tb, int64_t M, int64_t N, int64_t K,
                    float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                    float beta, float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {  /* no products: C = beta C, and beta = 0 writes zeros over any NaN */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    if (lib == GEMM_ONEDNN) {
        dnnl_status_t st = dnnl_sgemm(ta == GEMM_T ? 'T' : 'N', tb == GEMM_T ? 'T' : 'N', M, N, K,
                                      alpha, A, lda, B, ldb, beta, C, ldc);
        CHECK(st == dnnl_success, "dnnl_sgemm(%c%c, %lld x %lld x %lld) failed with status %d",
              ta == GEMM_T ? 'T' : 'N', tb == GEMM_T ? 'T' : 'N', (long long)M, (long long)N,
              (long long)K, (int)st);
        return;
    }
    CHECK(M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX && lda <= INT32_MAX &&
              ldb <= INT32_MAX && ldc <= INT32_MAX,
          "cblas_sgemm: %lld x %lld x %lld exceeds OpenBLAS's 32-bit sizes", (long long)M,
          (long long)N, (long long)K);
    cblas_sgemm(CblasRowMajor, ta == GEMM_T ? CblasTrans : CblasNoTrans,
                tb == GEMM_T ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A,
                (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void cpu_sgemm(GemmTrans ta, GemmTrans tb, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
               int64_t ldc)
{
    GemmLibrary lib = cpu_gemm_library_for(cpu_gemm_threads_here(), cpu_gemm_library(), cpu_gemm_library_one_thread());
    cpu_sgemm_with(lib, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void cpu_gemm(const Ctx *ctx, GemmTrans ta, GemmTrans tb, int64_t M, int64_t N, int64_t K,
              float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
              float *C, int64_t ldc)
{
    if (ctx->precision == PRECISION_BF16)
        cpu_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        cpu_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
