/*
 * emu.c: a CPU emulation of the CUDA backend, for checking on a machine
 * without a GPU the host side of every path that runs on a CUDA context
 * (tests/cuda_emu/README.md says what it catches and what it cannot).
 *
 * Linked with -Wl,--wrap=ctx_init_cuda -Wl,--wrap=ctx_cuda_available into a
 * CUDA=0 build (make emu-check), so `--backend cuda` and the tests of suite
 * cuda get a context whose table is the CPU kernels behind
 *   - device memory: the host heap shifted by 2^62, a non-canonical address,
 *     so any host dereference of a device pointer faults (a handler prints
 *     where); a host pointer handed to an op as a tensor, or to
 *     upload/download/copy as device memory, aborts naming the op;
 *     cudaMalloc's garbage (0xA5) in every new allocation;
 *   - BF16 activations (ctx->act_dtype), each op's BF16 tensors converted to
 *     F32 for the CPU kernel and its results rounded back to nearest even;
 *     F32 weights rounded to BF16 for BF16 GEMMs (emu_rules.c);
 *   - the CUDA backend's dtype rules (emu_rules.c) and its table's empty
 *     optional entries (below);
 *   - rows_copy as cuda_rows_copy does it, with the checks a GPU cannot make.
 * One emulated device: ctx_init_cuda(ctx, d) fails for d != 0.
 *
 * Environment: EMU_F32=1 F32 activations (the CPU's numbers, on the CUDA
 * paths of the host code); EMU_COUNT=1 counts of copies, transfers and op
 * calls at exit (stderr); EMU_TRACE=FILE one line a call ("op 0", "COPY
 * bytes", "UPLOAD bytes", ...); EMU_ROWS_GENERIC=1 rows_copy through the
 * CPU kernel; EMU_NO_SEGV=1 no fault handler (for a debugger).
 */
#include <execinfo.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/cpu/cpu_bf16.h"
#include "kernels/errors.h"
#include "kernels/op_coverage.h"
#include "tests/cuda_emu/emu.h"
#include "tests/support/cuda_composed.h"

#ifdef DEEDIFF_CUDA
#error "the CUDA emulator replaces the CUDA backend: build it with CUDA=0 (make emu-check)"
#endif

#define DEVICE_OFFSET ((uintptr_t)1 << 62)

typedef struct {
    Ctx inner;   /* the CPU context the kernels run on */
} EmuState;

static OpTable emu_table;

void emu_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\nEMU-FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    void *bt[64];
    backtrace_symbols_fd(bt, backtrace(bt, 64), 2);
    abort();
}

static int is_device(const void *p)
{
    uintptr_t u = (uintptr_t)p;
    return u >= DEVICE_OFFSET && u < DEVICE_OFFSET + ((uintptr_t)1 << 47);
}

void *emu_host(const void *p, const char *what)
{
    if (!p) return NULL;
    if (!is_device(p)) emu_die("host pointer %p passed where device memory is expected (%s)", p, what);
    return (void *)((uintptr_t)p - DEVICE_OFFSET);
}

Ctx *emu_inner(Ctx *ctx) { return &((EmuState *)ctx->backend_state)->inner; }

/* ---- counts and the trace ------------------------------------------------------ */

static struct {
    long copies, copy_bytes, uploads, upload_bytes, downloads, zeros, syncs, calls;
    long rows_in_place, rows_units[17];   /* rows_copy: through scratch; by copy unit */
} emu_n;
#define EMU_MAX_OPS 256
static struct { const char *name; long n; } emu_ops[EMU_MAX_OPS];
static int emu_nops;
static FILE *emu_trace_file;

static void trace(const char *what, size_t n)
{
    if (emu_trace_file) fprintf(emu_trace_file, "%s %zu\n", what, n);
}

static void count_op(const char *op)
{
    emu_n.calls++;
    trace(op, 0);
    for (int i = 0; i < emu_nops; i++)
        if (emu_ops[i].name == op || !strcmp(emu_ops[i].name, op)) {
            emu_ops[i].n++;
            return;
        }
    if (emu_nops < EMU_MAX_OPS) emu_ops[emu_nops].name = op, emu_ops[emu_nops++].n = 1;
}

static void report(void)
{
    if (emu_trace_file) fclose(emu_trace_file), emu_trace_file = NULL;
    if (!getenv("EMU_COUNT")) return;
    fprintf(stderr, "EMU: %ld device copies (%ld bytes); %ld uploads (%ld bytes); %ld downloads; %ld zeros; "
            "%ld syncs; %ld op calls\n", emu_n.copies, emu_n.copy_bytes, emu_n.uploads, emu_n.upload_bytes,
            emu_n.downloads, emu_n.zeros, emu_n.syncs, emu_n.calls);
    fprintf(stderr, "EMU-ROWS: %ld in place (scratch + copy back); units 16:%ld 4:%ld 2:%ld 1:%ld\n",
            emu_n.rows_in_place, emu_n.rows_units[16], emu_n.rows_units[4], emu_n.rows_units[2],
            emu_n.rows_units[1]);
    for (int i = 0; i < emu_nops; i++) fprintf(stderr, "EMU-OP %s %ld\n", emu_ops[i].name, emu_ops[i].n);
}

/* ---- memory ------------------------------------------------------------------------ */

static void *e_alloc(Ctx *ctx, size_t n)
{
    (void)ctx;
    void *p = NULL;
    if (posix_memalign(&p, 256, n ? n : 256)) FATAL("emu: out of memory (%zu bytes)", n);
    memset(p, 0xA5, n ? n : 256);
    return (void *)((uintptr_t)p + DEVICE_OFFSET);
}

static void e_free(Ctx *ctx, void *p)
{
    (void)ctx;
    free(emu_host(p, "free"));
}

static void e_upload(Ctx *ctx, void *dst, const void *src, size_t n)
{
    (void)ctx;
    emu_n.uploads++, emu_n.upload_bytes += (long)n;
    trace("UPLOAD", n);
    if (!n) return;
    if (is_device(src)) emu_die("upload from device memory");
    memcpy(emu_host(dst, "upload dst"), src, n);
}

static void e_download(Ctx *ctx, void *dst, const void *src, size_t n)
{
    (void)ctx;
    emu_n.downloads++;
    trace("DOWNLOAD", n);
    if (!n) return;
    if (is_device(dst)) emu_die("download into device memory");
    memcpy(dst, emu_host(src, "download src"), n);
}

/* cudaMemcpyAsync device to device: overlapping ranges are undefined */
static void e_copy(Ctx *ctx, void *dst, const void *src, size_t n)
{
    (void)ctx;
    emu_n.copies++, emu_n.copy_bytes += (long)n;
    trace("COPY", n);
    if (!n) return;
    char *d = emu_host(dst, "copy dst");
    const char *s = emu_host(src, "copy src");
    if (d < s + n && s < d + n && d != s) emu_die("overlapping device copy (cudaMemcpyAsync D2D)");
    memmove(d, s, n);
}

static void e_zero(Ctx *ctx, void *p, size_t n)
{
    (void)ctx;
    emu_n.zeros++;
    trace("ZERO", n);
    if (n) memset(emu_host(p, "zero"), 0, n);
}

static void e_sync(Ctx *ctx)
{
    (void)ctx;
    emu_n.syncs++;
    trace("SYNC", 0);
}

static void e_destroy(Ctx *ctx)
{
    EmuState *s = ctx->backend_state;
    if (!s) return;
    ctx_destroy(&s->inner);
    free(s);
    ctx->backend_state = NULL;
}

/* ---- one op call: BF16 seen as F32 --------------------------------------------- */

void emu_begin(EmuCall *c, Ctx *ctx, const char *op)
{
    memset(c, 0, sizeof *c);
    c->ctx = ctx;
    c->op = op;
    count_op(op);
}

static EmuTmp *new_tmp(EmuCall *c, int64_t n)
{
    if (c->nt == EMU_MAX_TMP) FATAL("emu: %s has more than %d BF16 tensors", c->op, EMU_MAX_TMP);
    EmuTmp *e = &c->t[c->nt++];
    e->n = n;
    e->tmp = xmalloc((size_t)(n ? n : 1) * 4);
    return e;
}

/* the view the CPU kernel gets for argument idx: host memory, F32 */
Tensor emu_tensor(EmuCall *c, Tensor t, int idx, const Tensor *args)
{
    if (!tensor_present(t)) return t;
    char what[96];
    snprintf(what, sizeof what, "op %s, tensor argument %d", c->op, idx);
    void *h = emu_host(t.data, what);
    int64_t n = tensor_numel(t);
    if (t.dtype == DT_BF16) {
        for (int k = 0; k < c->nt; k++)   /* the same tensor twice (in place): one copy */
            if (c->t[k].host_bf16 == h && c->t[k].n == n && !c->t[k].readonly) {
                t.data = c->t[k].tmp, t.dtype = DT_F32;
                return t;
            }
        EmuTmp *e = new_tmp(c, n);
        e->host_bf16 = h;
        e->orig = xmalloc((size_t)(n ? n : 1) * 4);
        const uint16_t *s = h;
        for (int64_t i = 0; i < n; i++) e->tmp[i] = e->orig[i] = cpu_f32_from_bf16(s[i]);
        t.data = e->tmp, t.dtype = DT_F32;
        return t;
    }
    t.data = h;
    if (t.dtype == DT_F32 && emu_rounds_to_bf16(c, idx, args)) {
        EmuTmp *e = new_tmp(c, n);
        e->readonly = 1;
        const float *s = h;
        for (int64_t i = 0; i < n; i++) e->tmp[i] = cpu_f32_from_bf16(cpu_bf16_from_f32(s[i]));
        t.data = e->tmp;
    }
    return t;
}

/* BF16 results rounded back: only the values the kernel changed, so an
   input is never rewritten */
void emu_end(EmuCall *c)
{
    for (int k = 0; k < c->nt; k++) {
        EmuTmp *e = &c->t[k];
        if (!e->readonly) {
            uint16_t *d = e->host_bf16;
            for (int64_t i = 0; i < e->n; i++)
                if (memcmp(&e->tmp[i], &e->orig[i], 4)) d[i] = cpu_bf16_from_f32(e->tmp[i]);
        }
        free(e->tmp);
        free(e->orig);
    }
}

/* ---- rows_copy, as kernels/cuda/cuda_tokens.cu cuda_rows_copy ------------------ */

/* raw bytes; in place, a gather into scratch and one device copy back. And
   what the GPU cannot check: rows in range, distinct destinations, an in
   place compaction's sources ascending with src[k] >= k */
void emu_rows_copy(Ctx *ctx, Tensor out, Tensor out_rows, Tensor in, Tensor in_rows)
{
    const int64_t *dst = tensor_present(out_rows) ? emu_host(out_rows.data, "rows_copy out_rows") : NULL;
    const int64_t *src = tensor_present(in_rows) ? emu_host(in_rows.data, "rows_copy in_rows") : NULL;
    int64_t n = dst ? out_rows.shape[0] : src ? in_rows.shape[0] : out.shape[0];
    size_t row = tensor_bytes(in) / (size_t)in.shape[0];
    const char *from = emu_host(in.data, "rows_copy in");
    const char *onto = emu_host(out.data, "rows_copy out");
    if (out.data != in.data && onto < from + tensor_bytes(in) && from < onto + tensor_bytes(out))
        emu_die("rows_copy: out and in overlap without being one tensor: the GPU's threads would race");
    for (int64_t k = 0; k < n; k++) {
        if (src && (src[k] < 0 || src[k] >= in.shape[0]))
            emu_die("rows_copy: in_rows[%lld] out of range", (long long)k);
        if (dst && (dst[k] < 0 || dst[k] >= out.shape[0]))
            emu_die("rows_copy: out_rows[%lld] out of range", (long long)k);
        if (out.data == in.data && src && (src[k] < k || (k && src[k] <= src[k - 1])))
            emu_die("rows_copy: in place with in_rows not ascending, or below k, at %lld", (long long)k);
    }
    if (dst)
        for (int64_t k = 0; k < n; k++)
            for (int64_t j = 0; j < k; j++)
                if (dst[j] == dst[k])
                    emu_die("rows_copy: out_rows[%lld] repeats out_rows[%lld]", (long long)k, (long long)j);
    void *to_dev = out.data == in.data ? ctx_scratch(ctx, (size_t)n * row) : out.data;
    char *to = emu_host(to_dev, "rows_copy scratch");
    uintptr_t al = (uintptr_t)to_dev | (uintptr_t)in.data | (uintptr_t)row;
    emu_n.rows_units[al % 16 == 0 ? 16 : al % 4 == 0 ? 4 : al % 2 == 0 ? 2 : 1]++;
    for (int64_t k = 0; k < n; k++)
        memcpy(to + (size_t)(dst ? dst[k] : k) * row, from + (size_t)(src ? src[k] : k) * row, row);
    if (to_dev != out.data) {
        emu_n.rows_in_place++;
        e_copy(ctx, out.data, to_dev, (size_t)n * row);
    }
}

static void rows_copy_op(Ctx *ctx, Tensor out, Tensor out_rows, Tensor in, Tensor in_rows)
{
    EmuCall c;
    emu_begin(&c, ctx, "rows_copy");
    Tensor args[5] = {{0}, out, out_rows, in, in_rows};
    emu_check(&c, args, 5);
    emu_rows_copy(ctx, out, out_rows, in, in_rows);
    emu_end(&c);
}

/* ---- conv2d_backward: db from dout as it is -------------------------------------- */

/* cuda_conv2d.cu sums db from dout unrounded, and rounds an F32 dout to
   BF16 only for the GEMMs of din and dw: two calls (counted as two), so the
   rounding (which emu_rules.c applies to dout when din or dw is asked)
   misses db */
static void (*conv2d_backward_wrapped)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Conv2dParams);

static void conv2d_backward_op(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout, Tensor in, Tensor w,
                               Conv2dParams p)
{
    if (tensor_present(db) && (tensor_present(din) || tensor_present(dw))) {
        conv2d_backward_wrapped(ctx, din, dw, tensor_none(), dout, in, w, p);
        conv2d_backward_wrapped(ctx, tensor_none(), tensor_none(), db, dout, in, w, p);
    } else conv2d_backward_wrapped(ctx, din, dw, db, dout, in, w, p);
}

/* ---- the context ------------------------------------------------------------------ */

int __wrap_ctx_cuda_available(void) { return 1; }

int __wrap_ctx_init_cuda(Ctx *ctx, int device)
{
    memset(ctx, 0, sizeof *ctx);
    if (device != 0)
        return err_set("--device: %d is out of range, this machine has 1 CUDA device(s) (the CPU emulation)", device);
    if (!emu_table.name) {
        emu_table = cpu_op_table;
        emu_table.name = "cuda";
        emu_table.alloc = e_alloc, emu_table.free = e_free, emu_table.upload = e_upload;
        emu_table.download = e_download, emu_table.copy = e_copy, emu_table.zero = e_zero;
        emu_table.sync = e_sync, emu_table.destroy = e_destroy;
        emu_fill_table(&emu_table);
        const char *generic = getenv("EMU_ROWS_GENERIC");
        if (!(generic && *generic == '1')) emu_table.rows_copy = rows_copy_op;
        conv2d_backward_wrapped = emu_table.conv2d_backward;
        emu_table.conv2d_backward = conv2d_backward_op;
        /* what kernels/cuda/cuda_context.cu's cuda_op_table leaves to
           ops.c's composition (the list tests/test_cuda_ops.c checks) */
        for (int i = 0; cuda_composed[i]; i++)
            *(void **)((char *)&emu_table + op_entry_find(cuda_composed[i])->offset) = NULL;
    }
    EmuState *s = xcalloc(1, sizeof *s);
    ctx_init_cpu(&s->inner, 0);
    const char *f32 = getenv("EMU_F32");
    ctx->backend = BACKEND_CUDA;
    ctx->ops = &emu_table;
    ctx->act_dtype = f32 && *f32 == '1' ? DT_F32 : DT_BF16;
    ctx->backend_state = s;
    ctx->precision = PRECISION_BF16;
    return 0;
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    char msg[160];
    int n = snprintf(msg, sizeof msg, "\nEMU-SEGV: signal %d at address %p (a host dereference of device memory?)\n",
                     sig, si->si_addr);
    if (write(2, msg, (size_t)n) < 0) _exit(139);
    void *bt[64];
    backtrace_symbols_fd(bt, backtrace(bt, 64), 2);
    _exit(139);
}

__attribute__((constructor)) static void emu_install(void)
{
    const char *t = getenv("EMU_TRACE");
    if (t && !(emu_trace_file = fopen(t, "w"))) FATAL("EMU_TRACE: cannot write %s", t);
    atexit(report);
    if (getenv("EMU_NO_SEGV")) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}
