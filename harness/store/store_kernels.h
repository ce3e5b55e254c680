/*
 * store_kernels.h: table kernel_timings and runs.kernel_timing (schema.sql,
 * version 4): what `--profile` measured of a run's GPU kernels, by phase
 * (harness/profile/profile.h).
 */
#ifndef DEEDIFF_STORE_KERNELS_H
#define DEEDIFF_STORE_KERNELS_H

#include "store.h"

typedef struct {
    const char *phase;           /* kernels/phase.h's phase_kind_name(): "run", "block", ... */
    int phase_index;             /* the block, exit, step or evaluation; -1: every instance */
    const char *kernel;          /* CUPTI's name of the kernel; "(phase)" for a CUDA-events span */
    int64_t count, total_ns, min_ns, max_ns;
} KernelTiming;

/* the name of a cuda-events row's kernel: the phase's own span */
#define KERNEL_TIMING_SPAN "(phase)"

/* Records how the run's kernels were timed (source "none", "cupti" or
   "cuda-events"; note: why CUPTI could not start, or NULL) and its n rows,
   in one transaction: rows the run already has are replaced, all or none. */
int store_kernel_timings(Store *s, int64_t run_id, const char *source, const char *note,
                         const KernelTiming *rows, int64_t n);

/* a run's rows, by phase, phase index and total time (largest first);
   row() gets each (a nonzero return stops and is returned); -1 + err_msg() */
int store_kernel_timings_read(Store *s, int64_t run_id, int (*row)(void *user, const KernelTiming *r),
                              void *user);

/* the run's runs.kernel_timing and kernel_timing_note into source[n] and
   note[n] (note "" when NULL); -1 + err_msg() when there is no such run */
int store_kernel_timing_source(Store *s, int64_t run_id, char *source, char *note, size_t n);

#endif
