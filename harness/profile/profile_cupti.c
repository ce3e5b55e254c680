/*
 * profile_cupti.c: the CUPTI backend of the profiler (profile.h): kernel
 * records and external correlation records from CUPTI's activity API,
 * folded by kernel_agg.c.
 *
 * libcupti is dlopen()ed (libcupti.so.<CUDA major> on the executable's run
 * path, the loader's path, then CUDA_HOME/extras/CUPTI/lib64), so a CUDA
 * build that finds none still runs, timing with CUDA events. CUPTI's buffer
 * callbacks are process-wide: one profiler holds CUPTI at a time.
 */
#include <stdio.h>

#include "profile_internal.h"

#ifndef DEEDIFF_CUDA

int profile_cupti_start(Profiler *p)
{
    snprintf(p->note, sizeof p->note, "this deediff was built without CUDA");
    return -1;
}

#else

#include <cupti.h>
#include <dlfcn.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"

#define CUPTI_SONAME_FMT "libcupti.so.%d"
#ifndef DEEDIFF_CUDA_HOME
#define DEEDIFF_CUDA_HOME "/usr/local/cuda"
#endif
#define BUFFER_BYTES ((size_t)8 << 20)
#define BUFFER_ALIGN 8

#define CUPTI_FUNCTIONS(X)                       \
    X(cuptiGetResultString)                      \
    X(cuptiActivityRegisterCallbacks)            \
    X(cuptiActivityEnable)                       \
    X(cuptiActivityDisable)                      \
    X(cuptiActivityGetNextRecord)                \
    X(cuptiActivityGetNumDroppedRecords)         \
    X(cuptiActivityFlushAll)                     \
    X(cuptiActivityPushExternalCorrelationId)    \
    X(cuptiActivityPopExternalCorrelationId)

static struct {
#define CUPTI_MEMBER(name) __typeof__(&name) name;
    CUPTI_FUNCTIONS(CUPTI_MEMBER)
#undef CUPTI_MEMBER
} cupti;

/* the kinds enabled, in order; the runtime and driver API records are
   what external correlation records precede */
static const CUpti_ActivityKind kinds[] = {
    CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
    CUPTI_ACTIVITY_KIND_RUNTIME, CUPTI_ACTIVITY_KIND_DRIVER,
};
#define NKINDS ((int)(sizeof kinds / sizeof kinds[0]))
#define EXT_KIND CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0

static _Atomic(Profiler *) active; /* the profiler CUPTI's callbacks feed (on CUPTI's thread) */
/* buffer_completed calls in flight: stop() waits for none after clearing
   `active`, so no callback that read the profiler before the clear can
   still lock it once the caller frees it */
static atomic_int in_callback;
static size_t dropped;            /* records CUPTI lost (buffers full) */

static const char *result_name(CUptiResult r)
{
    const char *s = NULL;
    if (cupti.cuptiGetResultString && cupti.cuptiGetResultString(r, &s) == CUPTI_SUCCESS && s) return s;
    return "unknown CUPTI error";
}

/* 0 when libcupti is open and every function found; else why in p->note */
static int load(Profiler *p)
{
    static void *lib;
    if (lib) return 0;
    char soname[64], path[512];
    snprintf(soname, sizeof soname, CUPTI_SONAME_FMT, CUDA_VERSION / 1000);
    snprintf(path, sizeof path, "%s/extras/CUPTI/lib64/%s", DEEDIFF_CUDA_HOME, soname);
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL), *sym;
    if (!h) h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(p->note, sizeof p->note, "cannot load %s (%s)", soname, dlerror());
        return -1;
    }
#define CUPTI_FIND(name)                                                                    \
    if (!(sym = dlsym(h, #name))) {                                                         \
        snprintf(p->note, sizeof p->note, "%s has no %s", soname, #name);                   \
        return -1;                                                                          \
    }                                                                                       \
    memcpy(&cupti.name, &sym, sizeof sym);   /* a data pointer to a function pointer, as POSIX allows */
    CUPTI_FUNCTIONS(CUPTI_FIND)
#undef CUPTI_FIND
    lib = h;
    return 0;
}

static void CUPTIAPI buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records)
{
    *buffer = aligned_alloc(BUFFER_ALIGN, BUFFER_BYTES);
    CHECK(*buffer, "profile: out of memory for a CUPTI buffer of %zu bytes", BUFFER_BYTES);
    *size = BUFFER_BYTES;
    *max_records = 0;
}

/* on CUPTI's thread, or inside cuptiActivityFlushAll on ours */
static void CUPTIAPI buffer_completed(CUcontext context, uint32_t stream, uint8_t *buffer, size_t size,
                                      size_t valid)
{
    atomic_fetch_add(&in_callback, 1);
    Profiler *p = active;
    if (p && valid > 0) {
        pthread_mutex_lock(&p->lock);
        CUpti_Activity *rec = NULL;
        while (cupti.cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
            if (rec->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || rec->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
                const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)rec;
                kagg_kernel(p->agg, k->name ? k->name : "(unnamed)", k->start, k->end, k->correlationId);
            } else if (rec->kind == CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION) {
                const CUpti_ActivityExternalCorrelation *e = (const CUpti_ActivityExternalCorrelation *)rec;
                if (e->externalKind == EXT_KIND) kagg_correlation(p->agg, e->correlationId, e->externalId);
            }
        }
        size_t lost = 0;
        if (cupti.cuptiActivityGetNumDroppedRecords(context, stream, &lost) == CUPTI_SUCCESS) dropped += lost;
        pthread_mutex_unlock(&p->lock);
    }
    atomic_fetch_sub(&in_callback, 1);
    free(buffer);
}

static void push(Profiler *p, uint32_t path)
{
    CUptiResult r = cupti.cuptiActivityPushExternalCorrelationId(EXT_KIND, path);
    CHECK(r == CUPTI_SUCCESS, "profile: cuptiActivityPushExternalCorrelationId: %s", result_name(r));
}

static void pop(Profiler *p, uint32_t path)
{
    (void)p;
    (void)path;
    CUptiResult r = cupti.cuptiActivityPopExternalCorrelationId(EXT_KIND, NULL);
    CHECK(r == CUPTI_SUCCESS, "profile: cuptiActivityPopExternalCorrelationId: %s", result_name(r));
}

/* every kernel launched so far delivered and folded (kagg_resolve's condition) */
static void drain(Profiler *p)
{
    ctx_sync(p->ctx);
    CUptiResult r = cupti.cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    CHECK(r == CUPTI_SUCCESS, "profile: cuptiActivityFlushAll: %s", result_name(r));
    pthread_mutex_lock(&p->lock);
    kagg_resolve(p->agg);
    pthread_mutex_unlock(&p->lock);
}

static void tidy(Profiler *p)
{
    pthread_mutex_lock(&p->lock);
    size_t held = kagg_held(p->agg);
    pthread_mutex_unlock(&p->lock);
    if (held > PROFILE_HOLD_MAX) drain(p);
}

static void disable(int n)
{
    for (int i = n - 1; i >= 0; i--) cupti.cuptiActivityDisable(kinds[i]);
}

static void stop(Profiler *p)
{
    drain(p);
    pop(p, 0);
    disable(NKINDS);
    active = NULL;
    cupti.cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);   /* frees the buffers left */
    while (atomic_load(&in_callback) > 0) sched_yield();   /* a callback that read p before the clear */
    pthread_mutex_lock(&p->lock);
    if (dropped)
        snprintf(p->note, sizeof p->note, "CUPTI dropped %zu records: the table misses some kernels", dropped);
    pthread_mutex_unlock(&p->lock);
}

static const ProfileBackend cupti_backend = {"cupti", push, pop, tidy, stop};

int profile_cupti_start(Profiler *p)
{
    if (load(p)) return -1;
    if (active) {
        snprintf(p->note, sizeof p->note, "another profiler of this process holds CUPTI");
        return -1;
    }
    CUptiResult r = cupti.cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed);
    if (r != CUPTI_SUCCESS) {
        snprintf(p->note, sizeof p->note, "cuptiActivityRegisterCallbacks: %s", result_name(r));
        return -1;
    }
    active = p;
    dropped = 0;
    for (int i = 0; i < NKINDS; i++) {
        r = cupti.cuptiActivityEnable(kinds[i]);
        if (r != CUPTI_SUCCESS) {
            snprintf(p->note, sizeof p->note, "cuptiActivityEnable(kind %d): %s", (int)kinds[i], result_name(r));
            disable(i);
            active = NULL;
            return -1;
        }
    }
    p->be = &cupti_backend;
    push(p, 0);   /* the run: every call has a correlation record */
    return 0;
}

#endif
