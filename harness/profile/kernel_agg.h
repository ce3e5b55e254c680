/*
 * kernel_agg.h: GPU kernel records summed by phase, the arithmetic of
 * `--profile` (profile.h), with no GPU in it: the tests feed it made-up
 * records.
 *
 * Phases. The phases open at a moment form a path from the run (path 0)
 * down the nesting of kernels/phase.h's marks: sample_step 3 > block 5 is
 * the node (block, 5) under the node (sample_step, 3) under the run.
 * kagg_path() interns a node, so a path is one integer, small enough to be
 * CUPTI's external correlation id.
 *
 * Attribution (CUPTI). While a path is open the profiler keeps it pushed as
 * the thread's external correlation id, so CUPTI writes, ahead of each CUDA
 * API call's record, an external correlation record: (that call's
 * correlation id, the path). Correlation ids grow with every call of the
 * process, so the path in force is a step function of the correlation id,
 * and a kernel's record (name, start, end, the correlation id of the launch
 * that queued it) finds its path as the last correlation record at or
 * before its own id. This ties a kernel to the phase that launched it,
 * whenever it ran on the GPU: no host clock, no synchronisation at phase
 * boundaries. A kernel counts in every phase of its path and in the run.
 *
 * Records arrive in buffers, in any order. kagg_resolve() attributes the
 * kernels held and forgets every correlation record but the last; it is
 * exact when every kernel launched so far has been delivered (the profiler
 * waits for the stream and flushes CUPTI first), so memory stays bounded by
 * what arrives between two resolves.
 *
 * Attribution (CUDA events). kagg_span(): one instance of a path's
 * innermost phase took ns on the stream; it counts there only, as kernel
 * KERNEL_TIMING_SPAN.
 *
 * Not thread-safe: the profiler serialises the calls.
 */
#ifndef DEEDIFF_KERNEL_AGG_H
#define DEEDIFF_KERNEL_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "../../kernels/phase.h"
#include "../store/store_kernels.h"

typedef struct KernelAgg KernelAgg;

KernelAgg *kagg_new(void);
void kagg_free(KernelAgg *a);

/* the path parent + (kind, index); the same arguments give the same id */
uint32_t kagg_path(KernelAgg *a, uint32_t parent, PhaseKind kind, int index);

/* CUPTI's records: an external correlation record, a kernel record (the
   name is copied) */
void kagg_correlation(KernelAgg *a, uint32_t correlation_id, uint64_t path);
void kagg_kernel(KernelAgg *a, const char *name, uint64_t start_ns, uint64_t end_ns, uint32_t correlation_id);
/* kernels and correlation records held until the next kagg_resolve() */
size_t kagg_held(const KernelAgg *a);
/* attributes the kernels held (see above) */
void kagg_resolve(KernelAgg *a);

/* CUDA events: an instance of path's innermost phase lasted ns */
void kagg_span(KernelAgg *a, uint32_t path, uint64_t ns);

/* the table so far (after a kagg_resolve()), by phase kind, phase index
   and total time, largest first; *n rows, valid until the next call or
   kagg_free() */
const KernelTiming *kagg_rows(KernelAgg *a, int64_t *n);

#endif
