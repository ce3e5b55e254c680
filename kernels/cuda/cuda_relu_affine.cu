/*
 * cuda_relu_affine.cu: ReLU and the scalar affine map out = a x + b, forward
 * and backward, as functors of cuda_elementwise.h (F32 or BF16 tensors, F32
 * arithmetic; backward passes accumulate into din).
 *
 * ReLU's backward passes dout where in > 0 and adds exactly 0 elsewhere (a
 * select, not a product, so an Inf in dout stays where the CPU keeps it).
 */
#include "cuda_elementwise.h"
#include "cuda_ops.h"

struct Relu {
    __device__ float value(float x) const { return x > 0.0f ? x : 0.0f; }
    __device__ float grad(float dy, float x) const { return x > 0.0f ? dy : 0.0f; }
};

struct Affine {
    float a, b;
    /* rounded as the CPU rounds (no fused multiply-add) */
    __device__ float value(float x) const { return __fadd_rn(__fmul_rn(a, x), b); }
    __device__ float grad(float dy, float) const { return __fmul_rn(a, dy); }
};

void cuda_relu_forward(Ctx *ctx, Tensor out, Tensor in) { cuda_map_forward(ctx, "relu_forward", out, in, Relu{}); }
void cuda_relu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in)
{
    cuda_map_backward(ctx, "relu_backward", din, dout, in, Relu{});
}

void cuda_affine_forward(Ctx *ctx, Tensor out, Tensor in, float a, float b)
{
    cuda_map_forward(ctx, "affine_forward", out, in, Affine{a, b});
}
/* the backward reads no input: dout stands in for it */
void cuda_affine_backward(Ctx *ctx, Tensor din, Tensor dout, float a)
{
    cuda_map_backward(ctx, "affine_backward", din, dout, dout, Affine{a, 0.0f});
}
