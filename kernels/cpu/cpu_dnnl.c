/*
 * cpu_dnnl.c: the engine, the per-thread streams and scratch, and the plan
 * table of the CPU backend's oneDNN primitives (cpu_dnnl.h).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_dnnl.h"

static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void engine_init(void) { DNNL_OK(dnnl_engine_create(&engine, dnnl_cpu, 0), "dnnl_engine_create"); }

dnnl_engine_t cpu_dnnl_engine(void)
{
    pthread_once(&engine_once, engine_init);
    return engine;
}

dnnl_stream_t cpu_dnnl_stream(void)
{
    static _Thread_local dnnl_stream_t stream;
    if (!stream)
        DNNL_OK(dnnl_stream_create(&stream, cpu_dnnl_engine(), dnnl_stream_default_flags), "dnnl_stream_create");
    return stream;
}

static struct {
    void *key;
    size_t key_bytes;
    void *plan;
} plans[CPU_DNNL_PLANS];
static int plans_used;
static pthread_mutex_t plans_lock = PTHREAD_MUTEX_INITIALIZER;

void *cpu_dnnl_plan(const void *key, size_t key_bytes, void *(*build)(const void *key), int *keep)
{
    pthread_mutex_lock(&plans_lock);
    void *plan = NULL;
    for (int i = 0; i < plans_used && !plan; i++)
        if (plans[i].key_bytes == key_bytes && !memcmp(plans[i].key, key, key_bytes)) plan = plans[i].plan;
    *keep = 1;
    if (!plan) {
        plan = build(key);
        if (plans_used < CPU_DNNL_PLANS) {
            plans[plans_used].key = xmalloc(key_bytes);
            memcpy(plans[plans_used].key, key, key_bytes);
            plans[plans_used].key_bytes = key_bytes;
            plans[plans_used++].plan = plan;
        } else {
            *keep = 0;
        }
    }
    pthread_mutex_unlock(&plans_lock);
    return plan;
}

dnnl_memory_t cpu_dnnl_memory(const dnnl_memory_desc_t *md, void *ptr)
{
    dnnl_memory_t m;
    DNNL_OK(dnnl_memory_create(&m, md, cpu_dnnl_engine(), ptr), "dnnl_memory_create");
    return m;
}

void cpu_dnnl_run(dnnl_primitive_t prim, const dnnl_exec_arg_t *args, int n, const dnnl_memory_desc_t *pad,
                  void *pad_ptr)
{
    dnnl_exec_arg_t all[9];
    CHECK(n >= 0 && n <= 8, "cpu_dnnl_run: %d arguments", n);
    memcpy(all, args, (size_t)n * sizeof *all);
    dnnl_memory_t pm = NULL;
    if (pad && dnnl_memory_desc_get_size(pad) > 0) {
        pm = cpu_dnnl_memory(pad, pad_ptr);
        all[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, pm};
    }
    DNNL_OK(dnnl_primitive_execute(prim, cpu_dnnl_stream(), n, all), "dnnl_primitive_execute");
    DNNL_OK(dnnl_stream_wait(cpu_dnnl_stream()), "dnnl_stream_wait");
    if (pm) dnnl_memory_destroy(pm);
}

void *cpu_dnnl_scratch(size_t bytes)
{
    static _Thread_local void *buf;
    static _Thread_local size_t size;
    if (bytes > size) {
        free(buf);
        if (posix_memalign(&buf, 64, bytes) != 0) FATAL("out of host memory allocating %zu bytes", bytes);
        size = bytes;
    }
    return buf;
}
