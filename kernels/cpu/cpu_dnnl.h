/*
 * cpu_dnnl.h: what the CPU backend's oneDNN primitives share (internal):
 * one engine, a stream per thread, a status check, and a table of built
 * plans (primitives and their descriptors) keyed by the problem.
 *
 * Users: the bf16 GEMM (cpu_gemm_bf16.c) and the convolution + ReLU of the
 * FID Inception (conv2d_relu.c). Primitives are built once per problem
 * (JIT code: milliseconds) and kept for the process; past CPU_DNNL_PLANS
 * problems a plan is built for the call and dropped after it.
 */
#ifndef DEEDIFF_CPU_DNNL_H
#define DEEDIFF_CPU_DNNL_H

#include <oneapi/dnnl/dnnl.h>
#include <stddef.h>

#include "../errors.h"

#define CPU_DNNL_PLANS 256

#define DNNL_OK(call, what)                                                                   \
    do {                                                                                      \
        dnnl_status_t st_ = (call);                                                           \
        CHECK(st_ == dnnl_success, "oneDNN: %s failed with status %d", what, (int)st_);       \
    } while (0)

dnnl_engine_t cpu_dnnl_engine(void);
/* this thread's stream on the engine (primitives may run on several
   threads at once, each in its own OpenMP team of one) */
dnnl_stream_t cpu_dnnl_stream(void);

/* the plan for `key` (key_bytes compared with memcmp: zero the key's
   padding), built by build(key) on first use; *keep 0 when the table is
   full and the caller must free the plan with drop(plan) after use */
void *cpu_dnnl_plan(const void *key, size_t key_bytes, void *(*build)(const void *key), int *keep);

/* this thread's scratch bytes for oneDNN calls: grows only, never freed
   (one buffer per thread, reused by every call on it) */
void *cpu_dnnl_scratch(size_t bytes);

/* bytes rounded up to whole 64-byte lines (carving scratch into parts) */
static inline size_t cpu_dnnl_up64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* a memory object of descriptor md over ptr; the caller destroys it */
dnnl_memory_t cpu_dnnl_memory(const dnnl_memory_desc_t *md, void *ptr);

/* runs prim with args[0..n) (n <= 8) on this thread's stream and waits;
   when the descriptor pad (a user scratchpad) has bytes, pad_ptr is passed
   as DNNL_ARG_SCRATCHPAD. pad may be NULL.                                */
void cpu_dnnl_run(dnnl_primitive_t prim, const dnnl_exec_arg_t *args, int n, const dnnl_memory_desc_t *pad,
                  void *pad_ptr);

#endif
