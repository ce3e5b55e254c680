/*
 * bf16_host.h: BF16 <-> F32 on the host, for the CUDA test and benchmark
 * (they fill BF16 device tensors from F32 values and read them back).
 * BF16 is the top half of an IEEE F32; rounding is to nearest, ties to even.
 * Inputs are finite (NaN is not handled).
 */
#ifndef DEEDIFF_BF16_HOST_H
#define DEEDIFF_BF16_HOST_H

#include <stdint.h>
#include <string.h>

static inline uint16_t bf16_from_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static inline float f32_from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#endif
