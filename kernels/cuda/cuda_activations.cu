/*
 * cuda_activations.cu: GELU (exact erf form), SiLU and sigmoid, forward and
 * backward, as functors of cuda_elementwise.h:
 *
 *   gelu(x)  = x Phi(x),          Phi(x) = (1 + erf(x / sqrt 2)) / 2
 *   gelu'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
 *   silu(x)  = x s(x),            s(x) = 1 / (1 + exp(-x))
 *   silu'(x) = s(x) (1 + x (1 - s(x)))
 *   s'(x)    = s(x) (1 - s(x))
 *
 * F32 arithmetic on F32 or BF16 tensors; backward passes ACCUMULATE into din.
 */
#include "cuda_elementwise.h"
#include "cuda_gelu.h"
#include "cuda_ops.h"

__device__ __forceinline__ float sigmoid_f32(float x) { return 1.0f / (1.0f + expf(-x)); }

struct Silu {
    __device__ float value(float x) const { return x * sigmoid_f32(x); }
    __device__ float grad(float dy, float x) const
    {
        float s = sigmoid_f32(x);
        return dy * s * (1.0f + x * (1.0f - s));
    }
};

struct Sigmoid {
    __device__ float value(float x) const { return sigmoid_f32(x); }
    __device__ float grad(float dy, float x) const
    {
        float s = sigmoid_f32(x);
        return dy * s * (1.0f - s);
    }
};

void cuda_gelu_forward(Ctx *ctx, Tensor out, Tensor in) { cuda_map_forward(ctx, "gelu_forward", out, in, Gelu{}); }
void cuda_gelu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in)
{
    cuda_map_backward(ctx, "gelu_backward", din, dout, in, Gelu{});
}
void cuda_silu_forward(Ctx *ctx, Tensor out, Tensor in) { cuda_map_forward(ctx, "silu_forward", out, in, Silu{}); }
void cuda_silu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in)
{
    cuda_map_backward(ctx, "silu_backward", din, dout, in, Silu{});
}
void cuda_sigmoid_forward(Ctx *ctx, Tensor out, Tensor in)
{
    cuda_map_forward(ctx, "sigmoid_forward", out, in, Sigmoid{});
}
void cuda_sigmoid_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in)
{
    cuda_map_backward(ctx, "sigmoid_backward", din, dout, in, Sigmoid{});
}
