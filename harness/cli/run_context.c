/*
 * run_context.c: opening the op context from command-line options.
 */
#include <omp.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "cli.h"
#include "run_context.h"

void openblas_set_num_threads(int n);

RunOptions run_options_default(void)
{
    RunOptions ro = {"auto", NULL};
    return ro;
}

void set_cpu_threads(int n)
{
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int run_options_cpu_only(RunOptions *ro, const char *why)
{
    if (!strcmp(ro->backend, "auto")) ro->backend = "cpu";
    if (strcmp(ro->backend, "cpu") != 0) return err_set("--backend %s: %s", ro->backend, why);
    return 0;
}

const char *run_context_precision(const RunContext *rc)
{
    return rc->ctx.act_dtype == DT_BF16 ? "bf16" : "fp32";
}

int run_context_open(RunContext *rc, RunOptions *ro)
{
    memset(rc, 0, sizeof *rc);
    long threads = 0;
    if (ro->threads && cli_int("--threads", ro->threads, 1, 1024, &threads)) return -1;
    rc->threads = (int)threads;
    set_cpu_threads(rc->threads);
    if (!strcmp(ro->backend, "auto")) ro->backend = ctx_cuda_available() ? "cuda" : "cpu";
    if (!strcmp(ro->backend, "cpu")) {
        ctx_init_cpu(&rc->ctx, rc->threads);
        return 0;
    }
    if (!strcmp(ro->backend, "cuda")) return ctx_init_cuda(&rc->ctx, 0);
    return err_set("--backend: '%s' is not auto, cpu or cuda", ro->backend);
}

void run_context_close(RunContext *rc) { ctx_destroy(&rc->ctx); }
