/*
 * dataset_pickle.c: a restricted unpickler for np.save'd object arrays (see
 * dataset_pickle.h). It runs the pickle opcodes over a small value arena: the
 * only callables are numpy's _reconstruct (an empty ndarray, then BUILD sets
 * shape, dtype and data), dtype (then BUILD sets the byte order) and scalar
 * (dtype + raw bytes). Byte strings point into the input, never copied until
 * an array is handed out.
 */
#include <string.h>

#include "harness/data/dataset_pickle.h"
#include "kernels/errors.h"

typedef enum {
    PV_NONE, PV_BOOL, PV_INT, PV_STR, PV_BYTES, PV_TUPLE, PV_LIST, PV_GLOBAL,
    PV_DTYPE, PV_ARRAY, PV_SCALAR, PV_MARK
} PvKind;

typedef enum { G_RECONSTRUCT = 1, G_NDARRAY, G_DTYPE, G_SCALAR } GlobalId;

typedef struct {
    PvKind kind;
    int64_t i;              /* INT, BOOL, GLOBAL id; SCALAR value; DTYPE itemsize */
    const uint8_t *s;       /* STR, BYTES */
    size_t len;
    int *kids;              /* TUPLE, LIST elements; ARRAY: [shape tuple, dtype, data] */
    int nkids, cap;
    char dkind, order;      /* DTYPE: 'f','i','u','b','O'; '<', '>', '|', '=' */
    int built;              /* ARRAY: BUILD seen */
} Pv;

typedef struct {
    const char *name;
    Pv *v; int nv, capv;
    int *stack; int nstack, capstack;
    int *memo; int nmemo;
} Vm;

#define PICKLE_MAX_MEMO 4096
#define PICKLE_MAX_VALUES (1 << 20)

static int vm_new(Vm *vm, PvKind kind)
{
    if (vm->nv == PICKLE_MAX_VALUES) return -1;
    if (vm->nv == vm->capv) vm->v = xrealloc(vm->v, (size_t)(vm->capv = vm->capv * 2 + 64) * sizeof *vm->v);
    memset(&vm->v[vm->nv], 0, sizeof *vm->v);
    vm->v[vm->nv].kind = kind;
    return vm->nv++;
}

static void vm_push(Vm *vm, int id)
{
    if (vm->nstack == vm->capstack)
        vm->stack = xrealloc(vm->stack, (size_t)(vm->capstack = vm->capstack * 2 + 64) * sizeof *vm->stack);
    vm->stack[vm->nstack++] = id;
}

static void pv_add_kid(Pv *p, int id)
{
    if (p->nkids == p->cap) p->kids = xrealloc(p->kids, (size_t)(p->cap = p->cap * 2 + 4) * sizeof *p->kids);
    p->kids[p->nkids++] = id;
}

static void vm_free(Vm *vm)
{
    for (int i = 0; i < vm->nv; i++) free(vm->v[i].kids);
    free(vm->v);
    free(vm->stack);
    free(vm->memo);
}

/* index of the topmost MARK, or -1 */
static int vm_mark(Vm *vm)
{
    for (int k = vm->nstack - 1; k >= 0; k--)
        if (vm->v[vm->stack[k]].kind == PV_MARK) return k;
    return -1;
}

static int global_id(const uint8_t *mod, size_t modlen, const uint8_t *nm, size_t nmlen)
{
    #define EQ(a, alen, lit) ((alen) == strlen(lit) && memcmp((a), (lit), (alen)) == 0)
    int multiarray = EQ(mod, modlen, "numpy.core.multiarray") || EQ(mod, modlen, "numpy._core.multiarray");
    if (multiarray && EQ(nm, nmlen, "_reconstruct")) return G_RECONSTRUCT;
    if (multiarray && EQ(nm, nmlen, "scalar")) return G_SCALAR;
    if (EQ(mod, modlen, "numpy") && EQ(nm, nmlen, "ndarray")) return G_NDARRAY;
    if (EQ(mod, modlen, "numpy") && EQ(nm, nmlen, "dtype")) return G_DTYPE;
    #undef EQ
    return 0;
}

/* callable(args): the three numpy constructors */
static int vm_reduce(Vm *vm, int fn, int args)
{
    Pv *f = &vm->v[fn], *a = &vm->v[args];
    if (f->kind != PV_GLOBAL || a->kind != PV_TUPLE) return -1;
    if (f->i == G_RECONSTRUCT) {
        if (a->nkids < 1 || vm->v[a->kids[0]].kind != PV_GLOBAL || vm->v[a->kids[0]].i != G_NDARRAY)
            return -1;
        return vm_new(vm, PV_ARRAY);
    }
    if (f->i == G_DTYPE) {
        if (a->nkids < 1 || vm->v[a->kids[0]].kind != PV_STR) return -1;
        const Pv *s = &vm->v[a->kids[0]];
        if (s->len < 2 || s->len > 3) return -1;
        char k = (char)s->s[0];
        int size = 0;
        for (size_t c = 1; c < s->len; c++) {
            if (s->s[c] < '0' || s->s[c] > '9') return -1;
            size = size * 10 + (s->s[c] - '0');
        }
        if (!k || !strchr("fiubO", k) || size < 1 || size > 16) return -1;   // strchr finds a NUL too
        int d = vm_new(vm, PV_DTYPE);
        if (d < 0) return -1;
        vm->v[d].dkind = k; vm->v[d].i = size; vm->v[d].order = '=';
        return d;
    }
    if (f->i == G_SCALAR) {
        if (a->nkids != 2) return -1;
        const Pv *dt = &vm->v[a->kids[0]], *raw = &vm->v[a->kids[1]];
        if (dt->kind != PV_DTYPE || raw->kind != PV_BYTES || (dt->dkind != 'i' && dt->dkind != 'u') ||
            dt->order == '>' || raw->len != (size_t)dt->i || dt->i > 8)
            return -1;
        uint64_t u = 0;
        for (int b = (int)raw->len - 1; b >= 0; b--) u = u << 8 | raw->s[b];
        int64_t val = (int64_t)u;
        if (dt->dkind == 'i' && dt->i < 8 && (u >> (8 * dt->i - 1)) & 1) val = (int64_t)(u | (~0ull << (8 * dt->i)));
        int s = vm_new(vm, PV_SCALAR);
        if (s < 0) return -1;
        vm->v[s].i = val;
        return s;
    }
    return -1;
}

/* obj.__setstate__(state) for dtypes and arrays */
static int vm_build(Vm *vm, int obj, int state)
{
    Pv *o = &vm->v[obj], *st = &vm->v[state];
    if (st->kind != PV_TUPLE) return -1;
    if (o->kind == PV_DTYPE) { /* (3, '<', None, None, None, -1, -1, flags) */
        if (st->nkids < 2 || vm->v[st->kids[1]].kind != PV_STR || vm->v[st->kids[1]].len != 1) return -1;
        o->order = (char)vm->v[st->kids[1]].s[0];
        return 0;
    }
    if (o->kind == PV_ARRAY) { /* (1, shape, dtype, fortran, data) */
        if (st->nkids != 5 || o->built) return -1;
        int shape = st->kids[1], dtype = st->kids[2], fortran = st->kids[3], data = st->kids[4];
        if (vm->v[shape].kind != PV_TUPLE || vm->v[dtype].kind != PV_DTYPE ||
            vm->v[fortran].kind != PV_BOOL || vm->v[fortran].i != 0)
            return -1;
        if (vm->v[data].kind != PV_BYTES && vm->v[data].kind != PV_LIST) return -1;
        pv_add_kid(o, shape); /* kids = [shape, dtype, data] */
        pv_add_kid(o, dtype);
        pv_add_kid(o, data);
        o->built = 1;
        return 0;
    }
    return -1;
}

static int rd(const uint8_t *p, size_t n, size_t *at, size_t k, const uint8_t **out)
{
    if (n - *at < k) return -1;
    *out = p + *at;
    *at += k;
    return 0;
}

static uint64_t le(const uint8_t *p, int k)
{
    uint64_t u = 0;
    for (int b = k - 1; b >= 0; b--) u = u << 8 | p[b];
    return u;
}

/* runs the pickle; returns the value id left by STOP or -1 */
static int vm_run(Vm *vm, const uint8_t *p, size_t n)
{
    size_t at = 0;
    const uint8_t *a;
    vm->memo = xmalloc(PICKLE_MAX_MEMO * sizeof *vm->memo);
    for (int i = 0; i < PICKLE_MAX_MEMO; i++) vm->memo[i] = -1;
    #define NEED(k) do { if (rd(p, n, &at, (k), &a) < 0) return -1; } while (0)
    #define POP(x) do { if (vm->nstack == 0) return -1; (x) = vm->stack[--vm->nstack]; } while (0)
    for (;;) {
        NEED(1);
        uint8_t op = a[0];
        int id, x, y;
        uint64_t len;
        switch (op) {
        case 0x80: NEED(1); if (a[0] < 2 || a[0] > 5) return -1; break;         /* PROTO */
        case 0x95: NEED(8); break;                                               /* FRAME */
        case '.': POP(x); return x;                                              /* STOP */
        case '(': if ((id = vm_new(vm, PV_MARK)) < 0) return -1; vm_push(vm, id); break;
        case 'N': if ((id = vm_new(vm, PV_NONE)) < 0) return -1; vm_push(vm, id); break;
        case 0x88: case 0x89:                                                    /* NEWTRUE/FALSE */
            if ((id = vm_new(vm, PV_BOOL)) < 0) return -1;
            vm->v[id].i = op == 0x88; vm_push(vm, id); break;
        case 'J': case 'K': case 'M': {                                          /* BININT, 1, 2 */
            int k = op == 'J' ? 4 : op == 'K' ? 1 : 2;
            NEED(k);
            uint64_t u = le(a, k);
            if ((id = vm_new(vm, PV_INT)) < 0) return -1;
            vm->v[id].i = op == 'J' ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
            vm_push(vm, id); break;
        }
        case 0x8a: {                                                             /* LONG1 */
            NEED(1); int k = a[0];
            if (k > 8) return -1;
            NEED(k);
            uint64_t u = le(a, k);
            if (k > 0 && k < 8 && (a[k - 1] & 0x80)) u |= ~0ull << (8 * k);
            if ((id = vm_new(vm, PV_INT)) < 0) return -1;
            vm->v[id].i = (int64_t)u; vm_push(vm, id); break;
        }
        case 'X': case 0x8c: case 0x8d: case 'B': case 'C': case 0x8e: {        /* strings, bytes */
            int k = (op == 0x8c || op == 'C') ? 1 : (op == 0x8d || op == 0x8e) ? 8 : 4;
            NEED(k); len = le(a, k);
            if (len > n) return -1;
            NEED((size_t)len);
            if ((id = vm_new(vm, (op == 'B' || op == 'C' || op == 0x8e) ? PV_BYTES : PV_STR)) < 0) return -1;
            vm->v[id].s = a; vm->v[id].len = (size_t)len; vm_push(vm, id); break;
        }
        case 'c': {                                                              /* GLOBAL */
            const uint8_t *mod = p + at, *nl = memchr(mod, '\n', n - at);
            if (!nl) return -1;
            size_t modlen = (size_t)(nl - mod);
            at += modlen + 1;
            const uint8_t *nm = p + at, *nl2 = memchr(nm, '\n', n - at);
            if (!nl2) return -1;
            size_t nmlen = (size_t)(nl2 - nm);
            at += nmlen + 1;
            int g = global_id(mod, modlen, nm, nmlen);
            if (!g) return -1;
            if ((id = vm_new(vm, PV_GLOBAL)) < 0) return -1;
            vm->v[id].i = g; vm_push(vm, id); break;
        }
        case 0x93: {                                                             /* STACK_GLOBAL */
            POP(y); POP(x);
            if (vm->v[x].kind != PV_STR || vm->v[y].kind != PV_STR) return -1;
            int g = global_id(vm->v[x].s, vm->v[x].len, vm->v[y].s, vm->v[y].len);
            if (!g) return -1;
            if ((id = vm_new(vm, PV_GLOBAL)) < 0) return -1;
            vm->v[id].i = g; vm_push(vm, id); break;
        }
        case ')': case ']':                                                      /* EMPTY_TUPLE/LIST */
            if ((id = vm_new(vm, op == ')' ? PV_TUPLE : PV_LIST)) < 0) return -1;
            vm_push(vm, id); break;
        case 't': case 'l': {                                                    /* TUPLE, LIST */
            int m = vm_mark(vm);
            if (m < 0) return -1;
            if ((id = vm_new(vm, op == 't' ? PV_TUPLE : PV_LIST)) < 0) return -1;
            for (int k = m + 1; k < vm->nstack; k++) pv_add_kid(&vm->v[id], vm->stack[k]);
            vm->nstack = m;
            vm_push(vm, id); break;
        }
        case 0x85: case 0x86: case 0x87: {                                       /* TUPLE1..3 */
            int k = op - 0x84;
            if (vm->nstack < k) return -1;
            if ((id = vm_new(vm, PV_TUPLE)) < 0) return -1;
            for (int j = vm->nstack - k; j < vm->nstack; j++) pv_add_kid(&vm->v[id], vm->stack[j]);
            vm->nstack -= k;
            vm_push(vm, id); break;
        }
        case 'a': POP(y); if (vm->nstack == 0) return -1;                        /* APPEND */
            x = vm->stack[vm->nstack - 1];
            if (vm->v[x].kind != PV_LIST) return -1;
            pv_add_kid(&vm->v[x], y); break;
        case 'e': {                                                              /* APPENDS */
            int m = vm_mark(vm);
            if (m < 1 || vm->v[vm->stack[m - 1]].kind != PV_LIST) return -1;
            for (int k = m + 1; k < vm->nstack; k++) pv_add_kid(&vm->v[vm->stack[m - 1]], vm->stack[k]);
            vm->nstack = m; break;
        }
        case 'q': case 'r': case 0x94: {                                         /* BINPUT, LONG_, MEMOIZE */
            uint64_t key;
            if (op == 0x94) key = (uint64_t)vm->nmemo;
            else { int k = op == 'q' ? 1 : 4; NEED(k); key = le(a, k); }
            if (vm->nstack == 0 || key >= PICKLE_MAX_MEMO) return -1;
            vm->memo[key] = vm->stack[vm->nstack - 1];
            if ((int)key >= vm->nmemo) vm->nmemo = (int)key + 1;
            break;
        }
        case 'h': case 'j': {                                                    /* BINGET, LONG_ */
            int k = op == 'h' ? 1 : 4; NEED(k);
            uint64_t key = le(a, k);
            if (key >= PICKLE_MAX_MEMO || vm->memo[key] < 0) return -1;
            vm_push(vm, vm->memo[key]); break;
        }
        case 'R':                                                                /* REDUCE */
            POP(y); POP(x);
            if ((id = vm_reduce(vm, x, y)) < 0) return -1;
            vm_push(vm, id); break;
        case 'b':                                                                /* BUILD */
            POP(y); if (vm->nstack == 0) return -1;
            if (vm_build(vm, vm->stack[vm->nstack - 1], y) < 0) return -1;
            break;
        default:
            return -1;
        }
    }
    #undef NEED
    #undef POP
}

/* a numeric built ARRAY value -> an owned NpyArray */
static int to_npy(const char *name, Vm *vm, int id, NpyArray *out)
{
    const Pv *o = &vm->v[id];
    if (o->kind != PV_ARRAY || !o->built) return err_set("%s: pickle: element is not an ndarray", name);
    const Pv *shape = &vm->v[o->kids[0]], *dt = &vm->v[o->kids[1]], *data = &vm->v[o->kids[2]];
    if (dt->dkind == 'O' || data->kind != PV_BYTES)
        return err_set("%s: pickle: nested object arrays are not supported", name);
    if (dt->order == '>' || dt->i > 8 || !dt->dkind || !strchr("fiub", dt->dkind))
        return err_set("%s: pickle: dtype %c%lld (order '%c') is not supported", name, dt->dkind,
                       (long long)dt->i, dt->order);
    if (shape->nkids > NPY_MAX_DIMS) return err_set("%s: pickle: too many dimensions", name);
    memset(out, 0, sizeof *out);
    out->kind = dt->dkind;
    out->itemsize = (int)dt->i;
    out->ndim = shape->nkids;
    uint64_t numel = 1;
    for (int d = 0; d < shape->nkids; d++) {
        const Pv *s = &vm->v[shape->kids[d]];
        if (s->kind != PV_INT || s->i < 0 || s->i > (1ll << 40)) return err_set("%s: pickle: bad shape", name);
        out->shape[d] = s->i;
        numel *= (uint64_t)s->i;
        if (numel > (1ull << 40)) return err_set("%s: pickle: bad shape", name);
    }
    if (numel * (uint64_t)out->itemsize != data->len)
        return err_set("%s: pickle: data has %zu bytes, shape and dtype need %llu", name, data->len,
                       (unsigned long long)(numel * (uint64_t)out->itemsize));
    out->nbytes = data->len;
    out->data = xmalloc(data->len ? data->len : 1);
    memcpy(out->data, data->s, data->len);
    return 0;
}

void pickle_items_free(PickleItem *items, int count)
{
    for (int i = 0; i < count; i++)
        if (items[i].is_array) npy_free(&items[i].array);
}

int pickle_npy_object_items(const char *name, const uint8_t *bytes, size_t size,
                            PickleItem *items, int max_items, int *count)
{
    *count = 0;
    if (size < 10 || memcmp(bytes, "\x93NUMPY", 6) != 0)
        return err_set("%s: magic: not a .npy file", name);
    size_t hstart = bytes[6] == 1 ? 10 : 12;
    if (bytes[6] < 1 || bytes[6] > 3 || size < hstart)
        return err_set("%s: header: bad version or length", name);
    size_t hl = (size_t)le(bytes + 8, bytes[6] == 1 ? 2 : 4);
    if (hl > size - hstart) return err_set("%s: header: bad version or length", name);
    const char *h = (const char *)bytes + hstart;
    if (!memmem(h, hl, "'descr': '|O'", 13))
        return err_set("%s: descr: expected a pickled object array ('|O')", name);

    Vm vm = {.name = name};
    int top = vm_run(&vm, bytes + hstart + hl, size - hstart - hl);
    if (top < 0) {
        vm_free(&vm);
        return err_set("%s: pickle: malformed or not an np.save'd object array", name);
    }
    const Pv *o = &vm.v[top];
    if (o->kind != PV_ARRAY || !o->built || vm.v[o->kids[1]].dkind != 'O' ||
        vm.v[o->kids[2]].kind != PV_LIST || vm.v[o->kids[0]].nkids != 1) {
        vm_free(&vm);
        return err_set("%s: pickle: expected a 1-d object array", name);
    }
    const Pv *list = &vm.v[o->kids[2]];
    if (list->nkids > max_items) {
        int nkids = list->nkids;
        vm_free(&vm);
        return err_set("%s: pickle: %d elements, expected at most %d", name, nkids, max_items);
    }
    for (int k = 0; k < list->nkids; k++) {
        const Pv *e = &vm.v[list->kids[k]];
        memset(&items[k], 0, sizeof items[k]);
        if (e->kind == PV_SCALAR || e->kind == PV_INT) {
            items[k].value = e->i;
        } else if (to_npy(name, &vm, list->kids[k], &items[k].array) == 0) {
            items[k].is_array = 1;
        } else {
            pickle_items_free(items, k);
            vm_free(&vm);
            return -1;
        }
    }
    *count = list->nkids;
    vm_free(&vm);
    return 0;
}
