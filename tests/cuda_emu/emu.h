/*
 * emu.h: the pieces of the CUDA-backend emulator (tests/cuda_emu/README.md)
 * and how one emulated op call goes.
 *
 * Every op of the emulated "cuda" table is a wrapper generated from
 * kernels/op_table.h (gen_ops.awk, into $(BUILD)/gen/emu_ops.c) that does
 *
 *     EmuCall c;
 *     emu_begin(&c, ctx, "linear_forward");     counts the call
 *     emu_check(&c, args, n);                   the CUDA backend's dtype rules
 *     arg_i = emu_tensor(&c, arg_i, i, args);   device -> host, BF16 -> F32
 *     cpu_op_table.linear_forward(emu_inner(ctx), ...);
 *     emu_end(&c);                              F32 results rounded back to BF16
 *
 * args[i] is the i-th argument as the caller passed it (args[0] unused, the
 * context; a non-tensor argument absent): emu_check and emu_tensor read the
 * dtypes of the call from it, not from the converted views.
 */
#ifndef DEEDIFF_EMU_H
#define DEEDIFF_EMU_H

#include "kernels/op_table.h"

/* one BF16 tensor seen as F32 for one call, or one F32 weight rounded to
   BF16 for a BF16 GEMM (readonly: never written back) */
#define EMU_MAX_TMP 16
typedef struct {
    void *host_bf16;   /* the BF16 data (host side of the device pointer) */
    float *tmp;        /* what the CPU kernel reads and writes */
    float *orig;       /* tmp as it was before the call: changed values are written back */
    int64_t n;
    int readonly;
} EmuTmp;

typedef struct {
    Ctx *ctx;
    const char *op;    /* the op table entry's name */
    EmuTmp t[EMU_MAX_TMP];
    int nt;
} EmuCall;

/* emu_ops.c (generated): every entry the CPU table fills, wrapped */
void emu_fill_table(OpTable *t);

/* emu.c: a call, and the CPU context behind an emulated one */
void emu_begin(EmuCall *c, Ctx *ctx, const char *op);
Tensor emu_tensor(EmuCall *c, Tensor t, int idx, const Tensor *args);
void emu_end(EmuCall *c);
Ctx *emu_inner(Ctx *ctx);
/* the host address behind a device pointer (NULL stays NULL); a host
   pointer aborts, naming `what` */
void *emu_host(const void *p, const char *what);
/* rows_copy as kernels/cuda/cuda_tokens.cu does it, with the checks the GPU
   cannot make (emu.c) */
void emu_rows_copy(Ctx *ctx, Tensor out, Tensor out_rows, Tensor in, Tensor in_rows);
/* prints EMU-FAIL, the message and a backtrace, then aborts */
void emu_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* emu_rules.c: the CUDA backend's dtype rules, and which F32 arguments its
   BF16 GEMMs round */
void emu_check(const EmuCall *c, const Tensor *args, int n);
int emu_rounds_to_bf16(const EmuCall *c, int i, const Tensor *args);

#endif
