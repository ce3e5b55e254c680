/*
 * cpu_attention_short.h: the register-blocked attention forward and
 * backward for short sequences (attention_short.c), and when attention.c
 * uses them (internal).
 *
 * It takes sequences of at most CPU_ATT_SHORT_MAX_T tokens with head dims
 * a multiple of 16 (one vector of floats); longer sequences go through the
 * GEMM library, whose per-call cost is small beside a T x T product there.
 * Only builds with AVX-512 use it: its 16 accumulators of 16 floats fill
 * half of AVX-512's 32 registers, but would need all 32 of AVX2's 16
 * (spilling on every multiply-add), and it was measured on AVX-512 alone.
 */
#ifndef DEEDIFF_CPU_ATTENTION_SHORT_H
#define DEEDIFF_CPU_ATTENTION_SHORT_H

#include <stdint.h>

#include "../ops.h"

#define CPU_ATT_SHORT_MAX_T 128

static inline int cpu_attention_short_fits(int64_t T, int64_t hd)
{
#ifdef __AVX512F__
    return T <= CPU_ATT_SHORT_MAX_T && hd > 0 && hd % 16 == 0;
#else
    (void)T, (void)hd;
    return 0;
#endif
}

/* op_attention_forward's contract (ops.h), for shapes that fit */
void cpu_attention_short_forward(Ctx *ctx, Tensor out, Tensor probs, Tensor qkv, int heads);
/* op_attention_backward's (set 0) or op_attention_backward_set's (set 1),
   without the dprobs scratch, for shapes that fit */
void cpu_attention_short_backward(Ctx *ctx, int set, Tensor dqkv, Tensor dout, Tensor qkv, Tensor probs,
                                  int heads);

#endif
