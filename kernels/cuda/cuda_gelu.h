/*
 * cuda_gelu.h: the exact (erf) GELU as a functor of cuda_elementwise.h,
 * shared by the GELU op (cuda_activations.cu) and the fused linear + GELU
 * (cuda_linear_gelu.cu) (internal to kernels/cuda).
 *
 *   gelu(x)  = x Phi(x),          Phi(x) = (1 + erf(x / sqrt 2)) / 2
 *   gelu'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
 *
 * The CPU's form (kernels/ops.h), not the tanh approximation of cuBLASLt's
 * GELU epilogues.
 */
#ifndef DEEDIFF_CUDA_GELU_H
#define DEEDIFF_CUDA_GELU_H

#include "cuda_common.h"

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

struct Gelu {
    __device__ float value(float x) const { return 0.5f * x * (1.0f + erff(x * INV_SQRT2)); }
    __device__ float grad(float dy, float x) const
    {
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
        return dy * (cdf + x * INV_SQRT_2PI * expf(-0.5f * x * x));
    }
};

#endif
