/*
 * profile_events.c: the fallback backend of the profiler (profile.h): a CUDA
 * event recorded on the context's stream where each phase begins and ends,
 * read back when the stream has passed them. A phase's span is GPU time
 * (no host clock), but no kernel is named: kernel_agg.c counts each span in
 * its innermost phase as kernel "(phase)".
 */
#include <stdio.h>

#include "../../kernels/errors.h"
#include "profile_internal.h"

#ifndef DEEDIFF_CUDA

int profile_events_start(Profiler *p)
{
    (void)p;
    return err_set("--profile: this deediff was built without CUDA");
}

#else

#include <cuda_runtime_api.h>
#include <stdlib.h>

#define cudaCheckProfile(call)                                                                   \
    do {                                                                                         \
        cudaError_t e_ = (call);                                                                 \
        CHECK(e_ == cudaSuccess, "profile: %s: %s", #call, cudaGetErrorString(e_));              \
    } while (0)

typedef struct { uint32_t path; cudaEvent_t begin, end; } Span;

typedef struct {
    cudaStream_t stream;
    cudaEvent_t *pool;                      /* events free for reuse */
    size_t npool, cap_pool;
    cudaEvent_t open[PROFILE_MAX_DEPTH + 1];  /* the begin event of each open phase */
    Span *done;                             /* ended, not yet read */
    size_t ndone, cap_done;
} Events;

static cudaEvent_t take(Events *ev)
{
    if (ev->npool) return ev->pool[--ev->npool];
    cudaEvent_t e;
    cudaCheckProfile(cudaEventCreate(&e));
    return e;
}

static void give(Events *ev, cudaEvent_t e)
{
    if (ev->npool == ev->cap_pool) {
        ev->cap_pool = ev->cap_pool ? 2 * ev->cap_pool : 64;
        ev->pool = xrealloc(ev->pool, ev->cap_pool * sizeof *ev->pool);
    }
    ev->pool[ev->npool++] = e;
}

static void push(Profiler *p, uint32_t path)
{
    (void)path;
    Events *ev = p->state;
    cudaEvent_t e = take(ev);
    cudaCheckProfile(cudaEventRecord(e, ev->stream));
    ev->open[p->depth] = e;
}

/* p->depth is already the parent's: the phase ending was at depth + 1 */
static void pop(Profiler *p, uint32_t path)
{
    Events *ev = p->state;
    cudaEvent_t e = take(ev);
    cudaCheckProfile(cudaEventRecord(e, ev->stream));
    if (ev->ndone == ev->cap_done) {
        ev->cap_done = ev->cap_done ? 2 * ev->cap_done : 1024;
        ev->done = xrealloc(ev->done, ev->cap_done * sizeof *ev->done);
    }
    ev->done[ev->ndone++] = (Span){path, ev->open[p->depth + 1], e};
}

/* every ended span into p->agg, its events back to the pool */
static void drain(Profiler *p)
{
    Events *ev = p->state;
    if (!ev->ndone) return;
    cudaCheckProfile(cudaEventSynchronize(ev->done[ev->ndone - 1].end));
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < ev->ndone; i++) {
        float ms = 0;
        cudaCheckProfile(cudaEventElapsedTime(&ms, ev->done[i].begin, ev->done[i].end));
        kagg_span(p->agg, ev->done[i].path, (uint64_t)((double)ms * 1e6 + 0.5));
        give(ev, ev->done[i].begin);
        give(ev, ev->done[i].end);
    }
    pthread_mutex_unlock(&p->lock);
    ev->ndone = 0;
}

static void tidy(Profiler *p)
{
    if (((Events *)p->state)->ndone > PROFILE_HOLD_MAX) drain(p);
}

static void stop(Profiler *p)
{
    Events *ev = p->state;
    p->depth = -1;              /* the run's own span: its begin event is open[0] */
    pop(p, 0);
    p->depth = 0;
    drain(p);
    for (size_t i = 0; i < ev->npool; i++) cudaCheckProfile(cudaEventDestroy(ev->pool[i]));
    free(ev->pool);
    free(ev->done);
    free(ev);
    p->state = NULL;
}

static const ProfileBackend events_backend = {"cuda-events", push, pop, tidy, stop};

int profile_events_start(Profiler *p)
{
    Events *ev = xcalloc(1, sizeof *ev);
    ev->stream = (cudaStream_t)ctx_stream(p->ctx);
    p->state = ev;
    p->be = &events_backend;
    push(p, 0);                 /* the run's span (depth 0): open[0] */
    return 0;
}

#endif
