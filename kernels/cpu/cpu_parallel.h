/*
 * cpu_parallel.h: how the CPU kernels split work across threads (internal).
 *
 * Every parallel loop uses num_threads(cpu_threads(ctx)) so a context's
 * thread count holds even when the process-wide OpenMP default differs, and
 * skips the thread team for work too small to pay for waking it.
 * Elementwise loops run over chunks of CPU_CHUNK floats: a multiple of 16
 * floats, so two threads never write the same 64-byte cache line;
 * cpu_run_unary and cpu_run_backward drive such a loop for any one-input op.
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

/* threads for n independent work items (attention's (b, h) pairs): never
   more threads than items */
static inline int cpu_pair_threads(const Ctx *ctx, int64_t n)
{
    int nt = cpu_threads(ctx);
    return n < nt ? (int)(n > 0 ? n : 1) : nt;
}

static inline int64_t cpu_chunks(int64_t n) { return (n + CPU_CHUNK - 1) / CPU_CHUNK; }

/* rounds a count of floats up to whole 64-byte lines */
static inline int64_t cpu_pad16(int64_t n) { return (n + 15) & ~(int64_t)15; }

/* ---- elementwise loops in chunks --------------------------------------------- */

/* a loop over n floats of one chunk: y[i] = f(x[i]), or dx[i] += f'(x[i]) dy[i] */
typedef void (*cpu_unary_span)(float *y, const float *x, int64_t n);
typedef void (*cpu_backward_span)(float *dx, const float *dy, const float *x, int64_t n);

/* runs span(out, in) over all of in in CPU_CHUNK pieces across threads;
   out has in's element count */
static inline void cpu_run_unary(Ctx *ctx, cpu_unary_span span, Tensor out, Tensor in)
{
    int64_t n = tensor_numel(in);
    float *y = tensor_f32(out);
    const float *x = tensor_f32(in);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < cpu_chunks(n); c++) {
        int64_t lo = c * CPU_CHUNK, len = n - lo < CPU_CHUNK ? n - lo : CPU_CHUNK;
        span(y + lo, x + lo, len);
    }
}

/* runs span(din, dout, in) likewise; nothing when din is absent */
static inline void cpu_run_backward(Ctx *ctx, cpu_backward_span span, Tensor din, Tensor dout,
                                    Tensor in)
{
    if (!tensor_present(din)) return;
    int64_t n = tensor_numel(in);
    float *dx = tensor_f32(din);
    const float *dy = tensor_f32(dout), *x = tensor_f32(in);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < cpu_chunks(n); c++) {
        int64_t lo = c * CPU_CHUNK, len = n - lo < CPU_CHUNK ? n - lo : CPU_CHUNK;
        span(dx + lo, dy + lo, x + lo, len);
    }
}

#endif
