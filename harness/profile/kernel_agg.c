/*
 * kernel_agg.c: kernel records summed by phase (kernel_agg.h).
 *
 * Three interning tables (paths, kernel names, table rows) share one open
 * addressing map from a 64-bit key to a 32-bit id; path and row keys pack
 * (parent or name id << 36 | kind << 32 | index as uint32).
 */
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "kernel_agg.h"

#define KEY_EMPTY UINT64_MAX   /* kind < PHASE_KINDS < 15, so no packed key is all ones */
#define ID_LIMIT (1u << 28)

typedef struct {
    uint64_t *keys;
    uint32_t *ids;
    size_t cap, used;          /* cap a power of two, used <= cap / 2 */
} Map;

typedef struct { uint32_t parent; PhaseKind kind; int index; } PathNode;
typedef struct { PhaseKind kind; int index; uint32_t name; int64_t count, total, min, max; } Row;
typedef struct { uint32_t corr, name; uint64_t ns; } HeldKernel;
typedef struct { uint32_t corr, path; } HeldCorr;

struct KernelAgg {
    PathNode *paths;
    size_t npaths, cap_paths;
    Map path_map;
    char **names;
    size_t nnames, cap_names;
    Map name_map;              /* key: the name's hash; collisions probe on */
    Row *rows;
    size_t nrows, cap_rows;
    Map row_map;
    HeldKernel *kernels;
    size_t nkernels, cap_kernels;
    HeldCorr *corrs;
    size_t ncorrs, cap_corrs;
    KernelTiming *out;         /* kagg_rows() */
};

/* ---- the map ---------------------------------------------------------------- */

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static void map_grow(Map *m)
{
    Map n = {xmalloc((m->cap ? 2 * m->cap : 64) * sizeof(uint64_t)), NULL, m->cap ? 2 * m->cap : 64, m->used};
    n.ids = xmalloc(n.cap * sizeof(uint32_t));
    for (size_t i = 0; i < n.cap; i++) n.keys[i] = KEY_EMPTY;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == KEY_EMPTY) continue;
        size_t j = mix(m->keys[i]) & (n.cap - 1);
        while (n.keys[j] != KEY_EMPTY) j = (j + 1) & (n.cap - 1);
        n.keys[j] = m->keys[i];
        n.ids[j] = m->ids[i];
    }
    free(m->keys);
    free(m->ids);
    *m = n;
}

/* the slot of key: where it is, or the empty slot where it would go */
static size_t map_slot(const Map *m, uint64_t key)
{
    size_t j = mix(key) & (m->cap - 1);
    while (m->keys[j] != KEY_EMPTY && m->keys[j] != key) j = (j + 1) & (m->cap - 1);
    return j;
}

static void map_put(Map *m, size_t slot, uint64_t key, uint32_t id)
{
    m->keys[slot] = key;
    m->ids[slot] = id;
    if (++m->used * 2 > m->cap) map_grow(m);
}

static void map_free(Map *m)
{
    free(m->keys);
    free(m->ids);
}

#define GROW(ptr, n, cap)                                                        \
    do {                                                                         \
        if ((n) == (cap)) {                                                      \
            (cap) = (cap) ? 2 * (cap) : 64;                                      \
            (ptr) = xrealloc((ptr), (cap) * sizeof *(ptr));                      \
        }                                                                        \
    } while (0)

static uint64_t pack(uint32_t high, PhaseKind kind, int index)
{
    return (uint64_t)high << 36 | (uint64_t)kind << 32 | (uint32_t)index;
}

/* ---- interning ----------------------------------------------------------------- */

KernelAgg *kagg_new(void)
{
    KernelAgg *a = xcalloc(1, sizeof *a);
    map_grow(&a->path_map);
    map_grow(&a->name_map);
    map_grow(&a->row_map);
    GROW(a->paths, a->npaths, a->cap_paths);
    a->paths[a->npaths++] = (PathNode){0, PHASE_RUN, -1};
    return a;
}

void kagg_free(KernelAgg *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->nnames; i++) free(a->names[i]);
    map_free(&a->path_map);
    map_free(&a->name_map);
    map_free(&a->row_map);
    free(a->paths);
    free(a->names);
    free(a->rows);
    free(a->kernels);
    free(a->corrs);
    free(a->out);
    free(a);
}

uint32_t kagg_path(KernelAgg *a, uint32_t parent, PhaseKind kind, int index)
{
    CHECK(parent < a->npaths && kind > PHASE_RUN && kind < PHASE_KINDS, "kagg_path: parent %u, kind %d", parent,
          (int)kind);
    uint64_t key = pack(parent, kind, index);
    size_t slot = map_slot(&a->path_map, key);
    if (a->path_map.keys[slot] == key) return a->path_map.ids[slot];
    CHECK(a->npaths < ID_LIMIT, "kagg_path: more than %u distinct phase paths", ID_LIMIT);
    GROW(a->paths, a->npaths, a->cap_paths);
    uint32_t id = (uint32_t)a->npaths++;
    a->paths[id] = (PathNode){parent, kind, index};
    map_put(&a->path_map, slot, key, id);
    return id;
}

static uint32_t name_id(KernelAgg *a, const char *name)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) h = (h ^ *c) * 1099511628211ULL;
    if (h == KEY_EMPTY) h = 0;
    Map *m = &a->name_map;
    size_t j = mix(h) & (m->cap - 1);
    for (; m->keys[j] != KEY_EMPTY; j = (j + 1) & (m->cap - 1))
        if (m->keys[j] == h && !strcmp(a->names[m->ids[j]], name)) return m->ids[j];
    CHECK(a->nnames < ID_LIMIT, "kernel_agg: more than %u kernel names", ID_LIMIT);
    GROW(a->names, a->nnames, a->cap_names);
    uint32_t id = (uint32_t)a->nnames++;
    a->names[id] = xstrdup(name);
    map_put(m, j, h, id);
    return id;
}

static void add_row(KernelAgg *a, PhaseKind kind, int index, uint32_t name, uint64_t ns)
{
    uint64_t key = pack(name, kind, index);
    size_t slot = map_slot(&a->row_map, key);
    int64_t t = ns > INT64_MAX ? INT64_MAX : (int64_t)ns;
    if (a->row_map.keys[slot] == key) {
        Row *r = &a->rows[a->row_map.ids[slot]];
        r->count++;
        r->total += t;
        if (t < r->min) r->min = t;
        if (t > r->max) r->max = t;
        return;
    }
    GROW(a->rows, a->nrows, a->cap_rows);
    a->rows[a->nrows] = (Row){kind, index, name, 1, t, t, t};
    map_put(&a->row_map, slot, key, (uint32_t)a->nrows++);
}

/* ---- records --------------------------------------------------------------------- */

void kagg_correlation(KernelAgg *a, uint32_t correlation_id, uint64_t path)
{
    CHECK(path < a->npaths, "kagg_correlation: path %llu was never made", (unsigned long long)path);
    /* a run of calls in one phase needs its first record only (kagg_resolve sorts) */
    if (a->ncorrs && a->corrs[a->ncorrs - 1].path == path && a->corrs[a->ncorrs - 1].corr < correlation_id) return;
    GROW(a->corrs, a->ncorrs, a->cap_corrs);
    a->corrs[a->ncorrs++] = (HeldCorr){correlation_id, (uint32_t)path};
}

void kagg_kernel(KernelAgg *a, const char *name, uint64_t start_ns, uint64_t end_ns, uint32_t correlation_id)
{
    GROW(a->kernels, a->nkernels, a->cap_kernels);
    uint64_t ns = end_ns > start_ns ? end_ns - start_ns : 0;
    a->kernels[a->nkernels++] = (HeldKernel){correlation_id, name_id(a, name), ns};
}

size_t kagg_held(const KernelAgg *a) { return a->nkernels + a->ncorrs; }

static int by_corr_kernel(const void *x, const void *y)
{
    uint32_t a = ((const HeldKernel *)x)->corr, b = ((const HeldKernel *)y)->corr;
    return (a > b) - (a < b);
}

static int by_corr(const void *x, const void *y)
{
    uint32_t a = ((const HeldCorr *)x)->corr, b = ((const HeldCorr *)y)->corr;
    return (a > b) - (a < b);
}

void kagg_resolve(KernelAgg *a)
{
    if (a->nkernels) qsort(a->kernels, a->nkernels, sizeof *a->kernels, by_corr_kernel);
    if (a->ncorrs) qsort(a->corrs, a->ncorrs, sizeof *a->corrs, by_corr);
    size_t j = 0;
    uint32_t path = 0;   /* before any correlation record: the run */
    for (size_t i = 0; i < a->nkernels; i++) {
        const HeldKernel *k = &a->kernels[i];
        while (j < a->ncorrs && a->corrs[j].corr <= k->corr) path = a->corrs[j++].path;
        for (uint32_t p = path; p != 0; p = a->paths[p].parent)
            add_row(a, a->paths[p].kind, a->paths[p].index, k->name, k->ns);
        add_row(a, PHASE_RUN, -1, k->name, k->ns);
    }
    a->nkernels = 0;
    if (a->ncorrs) {
        a->corrs[0] = a->corrs[a->ncorrs - 1];   /* the phase in force now */
        a->ncorrs = 1;
    }
}

void kagg_span(KernelAgg *a, uint32_t path, uint64_t ns)
{
    CHECK(path < a->npaths, "kagg_span: path %u was never made", path);
    add_row(a, a->paths[path].kind, a->paths[path].index, name_id(a, KERNEL_TIMING_SPAN), ns);
}

/* ---- the table --------------------------------------------------------------------- */

/* kind, index, total time (largest first), then the name's id: a stable order */
static int by_phase(const void *x, const void *y)
{
    const Row *a = x, *b = y;
    if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
    if (a->index != b->index) return a->index < b->index ? -1 : 1;
    if (a->total != b->total) return a->total > b->total ? -1 : 1;
    return (a->name > b->name) - (a->name < b->name);
}

const KernelTiming *kagg_rows(KernelAgg *a, int64_t *n)
{
    free(a->out);
    size_t n_rows = a->nrows ? a->nrows : 1;
    Row *sorted = xmalloc(n_rows * sizeof *sorted);   /* a->rows stays in the order row_map knows */
    if (a->nrows) {
        memcpy(sorted, a->rows, a->nrows * sizeof *sorted);
        qsort(sorted, a->nrows, sizeof *sorted, by_phase);
    }
    a->out = xmalloc(n_rows * sizeof *a->out);
    for (size_t i = 0; i < a->nrows; i++) {
        const Row *r = &sorted[i];
        a->out[i] = (KernelTiming){phase_kind_name(r->kind), r->index, a->names[r->name], r->count, r->total, r->min,
                                   r->max};
    }
    free(sorted);
    *n = (int64_t)a->nrows;
    return a->out;
}
