/*
 * profile.h: `--profile` (train, sample, eval): every GPU kernel of a run
 * timed and summed by phase into results.db (table kernel_timings,
 * harness/store/store_kernels.h).
 *
 *   Profiler *p;
 *   if (profile_start(&p, ctx)) ...      // after the CUDA context exists
 *   ... the run: the model marks its phases (kernels/phase.h) ...
 *   profile_finish(p, &store, run_id);   // before the run is marked done
 *
 * How. CUPTI's activity API (libcupti, dlopen()ed: a CUDA build runs where
 * it is missing) records every kernel (CONCURRENT_KERNEL: name, GPU start
 * and end); each phase pushes an external correlation id naming its path of
 * phases, which ties every launch to the phase that made it
 * (kernel_agg.h has the argument). The runtime and driver API records this
 * needs cost some microseconds per call: a profiled run's wall time is not
 * the unprofiled one's, its kernels' times are.
 *
 * When CUPTI cannot start (no libcupti, no permission to profile, another
 * profiler holding it, DEEDIFF_PROFILE=cuda-events in the environment) the
 * profiler records a CUDA event pair around every phase instead: each
 * phase's span on the stream, no kernel names. runs.kernel_timing says which
 * ('cupti' or 'cuda-events') and runs.kernel_timing_note why CUPTI did not
 * start.
 *
 * The CPU backend has no kernels to time: profile_start() refuses it (one
 * line, exit status 2 from the commands), rather than run a long job
 * without the measurement it was asked for.
 *
 * Memory stays bounded: when the records held pass PROFILE_HOLD_MAX at the
 * end of an outermost phase (a training or sampling step), the profiler
 * waits for the stream, flushes CUPTI and folds them into the table.
 */
#ifndef DEEDIFF_PROFILE_H
#define DEEDIFF_PROFILE_H

#include <stdint.h>

#include "../../kernels/ops.h"
#include "../store/store.h"

typedef struct Profiler Profiler;

#define PROFILE_HOLD_MAX ((size_t)1 << 18)
/* the environment variable that forces the CUDA-events fallback */
#define PROFILE_ENV "DEEDIFF_PROFILE"

/* starts timing ctx's kernels and installs the phase hooks on ctx;
   -1 + err_msg() (one line naming --profile) on the CPU backend */
int profile_start(Profiler **out, Ctx *ctx);
/* "cupti" or "cuda-events"; why CUPTI did not start (NULL under cupti) */
const char *profile_source(const Profiler *p);
const char *profile_note(const Profiler *p);
/* Stops (waits for the GPU, takes the last records, closes phases a failed
   step left open, removes the hooks) and records the table and the source
   for run_id in one transaction; *rows receives the number of rows. Frees
   p, even on failure (-1 + err_msg()). */
int profile_finish(Profiler *p, Store *s, int64_t run_id, int64_t *rows);
/* stops without recording (a run that failed before it had an id); NULL is fine */
void profile_free(Profiler *p);

#endif
