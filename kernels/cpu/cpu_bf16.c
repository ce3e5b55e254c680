/*
 * cpu_bf16.c: packing fp32 matrices into bf16 (the rounding of cpu_bf16.h)
 * and the flag rule for native bf16 products.
 */
#include <omp.h>

#include "cpu_bf16.h"
#include "cpu_startup.h"

/* below this many values a pack runs on the calling thread */
#define PACK_PARALLEL_MIN 65536

void cpu_bf16_pack(uint16_t *dst, const float *src, int64_t rows, int64_t cols, int64_t ld)
{
    // src is (rows, cols) with row stride ld; dst is (rows, cols) packed
    #pragma omp parallel for if (rows * cols > PACK_PARALLEL_MIN && !omp_in_parallel()) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *s = src + r * ld;
        uint16_t *d = dst + r * cols;
        #pragma omp simd
        for (int64_t c = 0; c < cols; c++) d[c] = cpu_bf16_from_f32(s[c]);
    }
}

int cpu_bf16_supported(const char *flags)
{
    return cpu_has_flag(flags, "avx512_bf16") || cpu_has_flag(flags, "amx_bf16");
}
