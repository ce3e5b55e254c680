/*
 * cpu_bf16.h: bfloat16 on the CPU backend (internal): the fp32 -> bf16
 * rounding, and whether a CPU computes bf16 products natively.
 *
 * Rounding is the CUDA backend's __float2bfloat16_rn, bit for bit
 * (kernels/cuda/cuda_linear.cu; cuda_bf16.hpp): round to nearest, ties to
 * even, on the raw bits (subnormals rounded like any value, never
 * flushed; a value past the largest bf16 rounds to infinity); every NaN
 * becomes the canonical 0x7fff. bf16 -> fp32 is exact (the top half of
 * an fp32).
 */
#ifndef DEEDIFF_CPU_BF16_H
#define DEEDIFF_CPU_BF16_H

#include <stdint.h>
#include <string.h>

static inline uint16_t cpu_bf16_from_f32(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;  /* NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float cpu_f32_from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* dst[r, c] = bf16(src[r * ld + c]) for rows x cols, dst packed (row
   stride cols); threaded over rows when outside a parallel region */
void cpu_bf16_pack(uint16_t *dst, const float *src, int64_t rows, int64_t cols, int64_t ld);

/* 1 when the flags (a /proc/cpuinfo "flags" line) name native bf16
   products: AVX512-BF16 (avx512_bf16) or AMX (amx_bf16); pure            */
int cpu_bf16_supported(const char *flags);

#endif
