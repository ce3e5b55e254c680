/*
 * profile.c: the profiler of profile.h: the phase stack behind the hooks of
 * kernels/phase.h, the choice of CUPTI or CUDA events, and the table written
 * at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../store/store_kernels.h"
#include "profile_internal.h"

static void on_begin(void *user, PhaseKind kind, int index)
{
    Profiler *p = user;
    CHECK(p->depth < PROFILE_MAX_DEPTH, "profile: phases nest deeper than %d", PROFILE_MAX_DEPTH);
    if (kind == PHASE_TRAIN_STEP) index = -1;   /* thousands of steps of one shape: summed as one */
    pthread_mutex_lock(&p->lock);
    uint32_t path = kagg_path(p->agg, p->path[p->depth], kind, index);
    pthread_mutex_unlock(&p->lock);
    p->depth++;
    p->path[p->depth] = path;
    p->kind[p->depth] = kind;
    p->be->push(p, path);
}

static void on_end(void *user, PhaseKind kind)
{
    Profiler *p = user;
    CHECK(p->depth > 0 && p->kind[p->depth] == kind, "profile: phase_end(%s) closes %s: the marks do not pair",
          phase_kind_name(kind), phase_kind_name(p->depth > 0 ? p->kind[p->depth] : PHASE_RUN));
    uint32_t path = p->path[p->depth--];
    p->be->pop(p, path);
    if (p->depth == 0) p->be->tidy(p);
}

int profile_start(Profiler **out, Ctx *ctx)
{
    *out = NULL;
    if (ctx->backend != BACKEND_CUDA)
        return err_set("--profile: kernel timings need the CUDA backend, and this run is on the CPU "
                       "(--backend cpu, or no usable GPU)");
    Profiler *p = xcalloc(1, sizeof *p);
    p->ctx = ctx;
    p->agg = kagg_new();
    pthread_mutex_init(&p->lock, NULL);
    const char *force = getenv(PROFILE_ENV);
    if (force && !strcmp(force, "cuda-events")) {
        snprintf(p->note, sizeof p->note, "%s=cuda-events in the environment", PROFILE_ENV);
    } else if (force && *force && strcmp(force, "cupti")) {
        profile_free(p);
        return err_set("%s: '%s' is not cupti or cuda-events", PROFILE_ENV, force);
    } else if (profile_cupti_start(p) == 0) {
        p->note[0] = 0;
    }
    if (!p->be && profile_events_start(p)) {
        profile_free(p);
        return -1;
    }
    p->hooks = (struct PhaseHooks){on_begin, on_end, p};
    ctx->phases = &p->hooks;
    *out = p;
    return 0;
}

const char *profile_source(const Profiler *p) { return p->be->source; }
const char *profile_note(const Profiler *p) { return p->note[0] ? p->note : NULL; }

/* closes what a failed step left open, stops the backend, removes the hooks */
static void stop(Profiler *p)
{
    while (p->depth > 0) {
        uint32_t path = p->path[p->depth--];
        p->be->pop(p, path);
    }
    p->be->stop(p);
    p->ctx->phases = NULL;
}

int profile_finish(Profiler *p, Store *s, int64_t run_id, int64_t *rows)
{
    stop(p);
    const KernelTiming *t = kagg_rows(p->agg, rows);
    int rc = store_kernel_timings(s, run_id, profile_source(p), profile_note(p), t, *rows);
    p->be = NULL;
    profile_free(p);
    return rc;
}

void profile_free(Profiler *p)
{
    if (!p) return;
    if (p->be) stop(p);
    kagg_free(p->agg);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
