/*
 * profile_internal.h: the profiler's state and its two timing backends
 * (profile_cupti.c, profile_events.c), shared by the files of
 * harness/profile/ only.
 */
#ifndef DEEDIFF_PROFILE_INTERNAL_H
#define DEEDIFF_PROFILE_INTERNAL_H

#include <pthread.h>

#include "../../kernels/phase.h"
#include "kernel_agg.h"
#include "profile.h"

#define PROFILE_MAX_DEPTH 16

typedef struct ProfileBackend ProfileBackend;

struct Profiler {
    Ctx *ctx;
    struct PhaseHooks hooks;
    KernelAgg *agg;
    pthread_mutex_t lock;                   /* over agg: CUPTI delivers records on its own thread */
    uint32_t path[PROFILE_MAX_DEPTH + 1];   /* path[0] = 0, the run; path[depth] the innermost */
    PhaseKind kind[PROFILE_MAX_DEPTH + 1];
    int depth;
    const ProfileBackend *be;
    void *state;                            /* the backend's */
    char note[512];                         /* why CUPTI did not start; "" under cupti */
};

struct ProfileBackend {
    const char *source;                         /* runs.kernel_timing */
    void (*push)(Profiler *p, uint32_t path);   /* path is now the innermost phase */
    void (*pop)(Profiler *p, uint32_t path);    /* path ended; its parent is innermost again */
    /* at the end of an outermost phase: fold records into p->agg if many are held */
    void (*tidy)(Profiler *p);
    /* waits for the GPU, folds every record into p->agg, releases the backend */
    void (*stop)(Profiler *p);
};

/* 0 and p->be, p->state set; or -1 with why in p->note */
int profile_cupti_start(Profiler *p);
/* 0, or -1 + err_msg() */
int profile_events_start(Profiler *p);

#endif
