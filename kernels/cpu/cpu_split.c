/*
 * cpu_split.c: a batch run as pieces at once on the CPU (ctx_split_run,
 * kernels/ops.h): one OpenMP thread per piece, each on a worker context of
 * one thread, so every op inside a piece runs without a thread team (the
 * GEMM libraries run single-threaded inside a parallel region).
 */
#include <stdlib.h>

#include "../errors.h"
#include "../op_table.h"
#include "cpu_parallel.h"

int cpu_split_threads(const Ctx *ctx) { return cpu_threads(ctx); }

/* the workers, one per thread of ctx, made before any piece runs */
static void make_workers(Ctx *ctx)
{
    int n = cpu_threads(ctx);
    ctx->workers = xcalloc((size_t)n, sizeof *ctx->workers);
    for (int i = 0; i < n; i++) {
        ctx_init_cpu(&ctx->workers[i], 1);
        ctx->workers[i].precision = ctx->precision;
    }
    ctx->num_workers = n;
}

void cpu_split_run(Ctx *ctx, int n, CtxPieceFn fn, void *user)
{
    if (!ctx->workers) make_workers(ctx);
    CHECK(n <= ctx->num_workers, "ctx_split_run: %d pieces for %d workers", n, ctx->num_workers);
    #pragma omp parallel for num_threads(n) schedule(static, 1)
    for (int piece = 0; piece < n; piece++) fn(&ctx->workers[piece], piece, user);
}

void cpu_split_destroy(Ctx *ctx)
{
    for (int i = 0; i < ctx->num_workers; i++) ctx_destroy(&ctx->workers[i]);
    free(ctx->workers);
    ctx->workers = NULL;
    ctx->num_workers = 0;
}
