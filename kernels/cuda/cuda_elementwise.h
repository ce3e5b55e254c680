/*
 * cuda_elementwise.h: the one-input pointwise ops' kernels, written once
 * (internal to kernels/cuda).
 *
 * An activation (GELU, SiLU, sigmoid, ReLU, the scalar affine map) is a
 * functor with two device functions:
 *   float value(float x) const       the forward:  out[i]  = value(in[i])
 *   float grad(float dy, float x)    the backward: din[i] += grad(dout[i], in[i])
 *                                    (dy times the slope at x, for activations)
 * cuda_map_forward and cuda_map_backward check dtypes, launch one grid-stride
 * kernel and check the launch. Tensors are F32 or BF16 (CudaIn/CudaOut), in
 * any mix; arithmetic is F32. out may alias in.
 */
#ifndef DEEDIFF_CUDA_ELEMENTWISE_H
#define DEEDIFF_CUDA_ELEMENTWISE_H

#include "cuda_common.h"

// out, in are (n,)
template <typename F>
__global__ void map_forward_kernel(CudaOut out, CudaIn in, int64_t n, F f)
{
    CUDA_GRID_STRIDE(i, n) store_f32(out, i, f.value(load_f32(in, i)));
}

// din, dout, in are (n,)
template <typename F>
__global__ void map_backward_kernel(CudaOut din, CudaIn dout, CudaIn in, int64_t n, F f)
{
    CUDA_GRID_STRIDE(i, n) add_f32(din, i, f.grad(load_f32(dout, i), load_f32(in, i)));
}

template <typename F>
void cuda_map_forward(Ctx *ctx, const char *op, Tensor out, Tensor in, F f)
{
    int64_t n = tensor_numel(in);
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, in);
    if (n == 0) return;
    CUDA_LAUNCH(ctx, n, map_forward_kernel<F>, o, x, n, f);
}

/* nothing when din is absent */
template <typename F>
void cuda_map_backward(Ctx *ctx, const char *op, Tensor din, Tensor dout, Tensor in, F f)
{
    if (!tensor_present(din)) return;
    int64_t n = tensor_numel(in);
    CudaOut d = cuda_out(op, din);
    CudaIn g = cuda_in(op, dout), x = cuda_in(op, in);
    if (n == 0) return;
    CUDA_LAUNCH(ctx, n, map_backward_kernel<F>, d, g, x, n, f);
}

#endif
