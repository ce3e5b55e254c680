/*
 * run_context.c: opening the op context from command-line options.
 */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "cli.h"
#include "run_context.h"

void openblas_set_num_threads(int n);

RunOptions run_options_default(void)
{
    RunOptions ro = {"auto", NULL, NULL, 0};
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
    return precision_name(rc->ctx.precision);
}

int run_context_open(RunContext *rc, RunOptions *ro)
{
    memset(rc, 0, sizeof *rc);
    long threads = 0;
    if (ro->threads && cli_int("--threads", ro->threads, 1, 1024, &threads)) return -1;
    rc->threads = (int)threads;
    Precision p = PRECISION_FP32;
    if (ro->precision && precision_from_name(ro->precision, &p))
        return err_set("--precision: '%s' is not fp32 or bf16", ro->precision);
    set_cpu_threads(rc->threads);
    if (!strcmp(ro->backend, "auto")) ro->backend = ctx_cuda_available() ? "cuda" : "cpu";
    if (!strcmp(ro->backend, "cpu")) ctx_init_cpu(&rc->ctx, rc->threads);
    else if (!strcmp(ro->backend, "cuda")) {
        if (ctx_init_cuda(&rc->ctx, 0)) return -1;
    } else return err_set("--backend: '%s' is not auto, cpu or cuda", ro->backend);
    if ((ro->precision && ctx_set_precision(&rc->ctx, p)) || (ro->profile && profile_start(&rc->profiler, &rc->ctx))) {
        run_context_close(rc);
        return -1;
    }
    return 0;
}

int run_context_profile_store(RunContext *rc, Store *s, int64_t run_id)
{
    if (!rc->profiler) return 0;
    Profiler *p = rc->profiler;
    rc->profiler = NULL;
    char source[32], note[512];
    snprintf(source, sizeof source, "%s", profile_source(p));
    snprintf(note, sizeof note, "%s", profile_note(p) ? profile_note(p) : "");
    int64_t rows = 0;
    if (profile_finish(p, s, run_id, &rows)) return -1;
    fprintf(stderr, "profile: %lld kernel timing rows (%s%s%s) in run %lld of %s; deediff kernels %lld prints them\n",
            (long long)rows, source, note[0] ? ": " : "", note, (long long)run_id, s->path, (long long)run_id);
    return 0;
}

void run_context_close(RunContext *rc)
{
    profile_free(rc->profiler);
    rc->profiler = NULL;
    ctx_destroy(&rc->ctx);
}
