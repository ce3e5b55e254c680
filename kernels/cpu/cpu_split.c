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

/* at least n workers, one per thread of ctx, made outside any piece: a
   context whose thread count rose since its first split gets more */
static void make_workers(Ctx *ctx, int n)
{
    int want = cpu_threads(ctx) > n ? cpu_threads(ctx) : n;
    if (ctx->num_workers >= want) return;
    ctx->workers = xrealloc(ctx->workers, (size_t)want * sizeof *ctx->workers);
    for (int i = ctx->num_workers; i < want; i++) ctx_init_cpu(&ctx->workers[i], 1);
    ctx->num_workers = want;
}

void cpu_split_run(Ctx *ctx, int n, CtxPieceFn fn, void *user)
{
    make_workers(ctx, n);
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
