/*
 * bench_ceiling.c: the machine's fp32 GEMM ceiling, and the environment the
 * PyTorch peer runs in, for `deediff bench`.
 *
 * The ceiling is the best sgemm rate (n x n x n, row-major, no transposes)
 * among every library deediff can use: oneDNN and OpenBLAS as loaded (with
 * the core type cpu_startup fixed, when it did), each timed through
 * cpu_sgemm_with, the same entry our kernels use; and, when OpenBLAS runs a
 * weaker core than the CPU's flags support here (a user's OPENBLAS_CORETYPE
 * said so: this project's machines set Haswell on a Zen 5 with AVX-512),
 * OpenBLAS with its best core, timed in a child deediff (`bench --sgemm N`),
 * since OpenBLAS reads its core type only when it loads. A model's "of ceiling" is
 * its GEMM-equivalent rate over that best rate, so a crippled library can
 * never flatter the ratio (issue 10: 64% "of sgemm" measured against
 * OpenBLAS's generic Prescott kernels).
 *
 * The peer runs twice: "as installed", in the environment the user started
 * deediff with (cpu_startup's changes undone), and "fair", with OpenBLAS's
 * best core type for this CPU's flags and our OpenMP wait policy, the two
 * settings deediff gives itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/cpu/cpu_gemm.h"
#include "../../kernels/cpu/cpu_startup.h"
#include "../../kernels/errors.h"
#include "../../kernels/philox.h"
#include "bench_util.h"

/* GFLOP/s of one library on n^3: the best of `reps` timed runs after a warm-up */
static double library_gflops(GemmLibrary lib, int n, int reps, const float *a, const float *b, float *c)
{
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = bench_now();
        cpu_sgemm_with(lib, GEMM_N, GEMM_N, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = bench_now() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    return 2.0 * n * n * (double)n / best / 1e9;
}

/* `self bench --sgemm n` under OPENBLAS_CORETYPE=core: OpenBLAS's GFLOP/s
   there (0 when it did not run) and its provenance into name[n_name] */
static double child_openblas_gflops(const char *self, const char *core, int n, char *name, size_t n_name)
{
    char cmd[1200], line[256], ver[32], kern[64];
    /* resolved here: in the child's shell /proc/self/exe would be the shell */
    char *path = realpath(self, NULL);
    if (!path) return 0;
    snprintf(cmd, sizeof cmd, "OPENBLAS_CORETYPE=%s '%s' bench --sgemm %d", core, path, n);
    free(path);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    double g = 0, v;
    while (fgets(line, sizeof line, p))
        if (sscanf(line, "sgemm openblas %31s %63s %lf", ver, kern, &v) == 3) {
            g = v;
            snprintf(name, n_name, "openblas %s %s", ver, kern);
        }
    if (pclose(p) != 0) g = 0;
    return g;
}

void bench_print_sgemm(FILE *out, int n, int reps)
{
    float *a = xmalloc((size_t)n * n * sizeof(float)), *b = xmalloc((size_t)n * n * sizeof(float));
    float *c = xmalloc((size_t)n * n * sizeof(float));
    philox_fill_uniform(a, (int64_t)n * n, 1, RNG_TEST, 0, 0);
    philox_fill_uniform(b, (int64_t)n * n, 1, RNG_TEST, 1, 0);
    for (int lib = 0; lib < 2; lib++)
        fprintf(out, "sgemm %s %.1f\n", cpu_gemm_provenance_of((GemmLibrary)lib),
                library_gflops((GemmLibrary)lib, n, reps, a, b, c));
    free(a), free(b), free(c);
}

void bench_sgemm_ceiling(SgemmCeiling *c, int n, int reps, const char *self)
{
    float *a = xmalloc((size_t)n * n * sizeof(float)), *b = xmalloc((size_t)n * n * sizeof(float));
    float *out = xmalloc((size_t)n * n * sizeof(float));
    philox_fill_uniform(a, (int64_t)n * n, 1, RNG_TEST, 0, 0);
    philox_fill_uniform(b, (int64_t)n * n, 1, RNG_TEST, 1, 0);
    c->n = n;
    for (int lib = 0; lib < 2; lib++) {
        double g = library_gflops((GemmLibrary)lib, n, reps, a, b, out);
        if (g > c->gflops[lib]) c->gflops[lib] = g;
        if (g > c->best) {
            c->best = g;
            snprintf(c->best_name, sizeof c->best_name, "%s", cpu_gemm_provenance_of((GemmLibrary)lib));
        }
    }
    free(a), free(b), free(out);
    const char *core = cpu_openblas_best_coretype();
    if (self && core && cpu_openblas_below_best()) {
        char name[sizeof c->child_name];
        double g = child_openblas_gflops(self, core, n, name, sizeof name);
        if (g > c->gflops[2]) {
            c->gflops[2] = g;
            snprintf(c->child_name, sizeof c->child_name, "%s", name);
        }
        if (g > c->best) {
            c->best = g;
            snprintf(c->best_name, sizeof c->best_name, "%s in a child process", name);
        }
    }
}

void bench_print_ceiling(FILE *out, const SgemmCeiling *c)
{
    fprintf(out, "sgemm %d^3, best of this run: ", c->n);
    for (int lib = 0; lib < 2; lib++)
        fprintf(out, "%s%s %.1f", lib ? ", " : "", cpu_gemm_provenance_of((GemmLibrary)lib), c->gflops[lib]);
    if (c->gflops[2] > 0) fprintf(out, ", %s (a child process) %.1f", c->child_name, c->gflops[2]);
    fprintf(out, " GFLOP/s\nceiling: %.1f GFLOP/s (%s); ours uses %s\n", c->best, c->best_name,
            cpu_gemm_provenance());
}

/* sets or (value NULL) unsets an environment variable */
static void put_env(const char *name, const char *value)
{
    if (value) setenv(name, value, 1);
    else unsetenv(name);
}

void bench_peer_env(int fair)
{
    /* the user's values and ours, saved before the first change */
    static char user_core[64], user_wait[64], our_wait[64];
    static int has_core, has_wait, has_ours, saved;
    if (!saved) {
        const char *w = getenv("OMP_WAIT_POLICY");
        if ((has_ours = w != NULL)) snprintf(our_wait, sizeof our_wait, "%s", w);
        cpu_startup_restore_user_env();
        const char *c = getenv("OPENBLAS_CORETYPE");
        if ((has_core = c != NULL)) snprintf(user_core, sizeof user_core, "%s", c);
        w = getenv("OMP_WAIT_POLICY");
        if ((has_wait = w != NULL)) snprintf(user_wait, sizeof user_wait, "%s", w);
        saved = 1;
    }
    if (!fair) {
        put_env("OPENBLAS_CORETYPE", has_core ? user_core : NULL);
        put_env("OMP_WAIT_POLICY", has_wait ? user_wait : NULL);
        return;
    }
    const char *core = cpu_openblas_best_coretype();  /* even over the user's own */
    put_env("OPENBLAS_CORETYPE", core ? core : has_core ? user_core : NULL);
    put_env("OMP_WAIT_POLICY", has_ours ? our_wait : NULL);
}
