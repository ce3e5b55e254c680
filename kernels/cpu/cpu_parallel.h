/*
 * cpu_parallel.h: how the CPU kernels split work across threads (internal).
 *
 * Every parallel loop uses num_threads(cpu_threads(ctx)) so a context's
 * thread count holds even when the process-wide OpenMP default differs, and
 * skips the thread team for work too small to pay for waking it.
 * Elementwise loops run over chunks of CPU_CHUNK floats: a multiple of 16
 * floats, so two threads never write the same 64-byte cache line.
 */
#ifndef DEEDIFF_CPU_PARALLEL_H
#define DEEDIFF_CPU_PARALLEL_H

#include <omp.h>

#include "../ops.h"

/* elements per chunk of an elementwise loop (64 KiB of floats) */
#define CPU_CHUNK 16384
/* below this many floats of work a loop runs on the calling thread */
#define CPU_PARALLEL_MIN 32768

static inline int cpu_threads(const Ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

static inline int64_t cpu_chunks(int64_t n) { return (n + CPU_CHUNK - 1) / CPU_CHUNK; }

/* rounds a count of floats up to whole 64-byte lines */
static inline int64_t cpu_pad16(int64_t n) { return (n + 15) & ~(int64_t)15; }

#endif
