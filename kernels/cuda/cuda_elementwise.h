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
 * kernel and check the launch; cuda_map_grad_set writes din = grad(dout, in)
 * instead of adding (a scratch gradient: no zeroing pass, no read of din).
 * Tensors are F32 or BF16 (CudaIn/CudaOut), in any mix; arithmetic is F32.
 * out may alias in. When every tensor is BF16, 16-byte aligned and n is a
 * multiple of 8, the set forms (cuda_map_forward, cuda_map_grad_set) move 8
 * values per thread in one 16-byte load or store (the same values bit for
 * bit: each element is rounded once, __float2bfloat16_rn, either way).
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

// din, dout, in are (n,): din written
template <typename F>
__global__ void map_grad_set_kernel(CudaOut din, CudaIn dout, CudaIn in, int64_t n, F f)
{
    CUDA_GRID_STRIDE(i, n) store_f32(din, i, f.grad(load_f32(dout, i), load_f32(in, i)));
}

/* ---- BF16, 8 values per thread ------------------------------------------------ */

/* the 8 BF16 values of a 16-byte word, as 4 pairs */
__device__ __forceinline__ __nv_bfloat162 *bf16_pairs(uint4 *w) { return reinterpret_cast<__nv_bfloat162 *>(w); }

// out, in are (8 n8,) BF16
template <typename F>
__global__ void map_forward_bf16x8_kernel(uint4 *out, const uint4 *in, int64_t n8, F f)
{
    CUDA_GRID_STRIDE(i, n8)
    {
        uint4 v = in[i];
        __nv_bfloat162 *h = bf16_pairs(&v);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 a = __bfloat1622float2(h[k]);
            h[k] = __floats2bfloat162_rn(f.value(a.x), f.value(a.y));
        }
        out[i] = v;
    }
}

// din, dout, in are (8 n8,) BF16: din written
template <typename F>
__global__ void map_grad_set_bf16x8_kernel(uint4 *din, const uint4 *dout, const uint4 *in, int64_t n8, F f)
{
    CUDA_GRID_STRIDE(i, n8)
    {
        uint4 g = dout[i], x = in[i];
        __nv_bfloat162 *gh = bf16_pairs(&g), *xh = bf16_pairs(&x);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 dy = __bfloat1622float2(gh[k]), a = __bfloat1622float2(xh[k]);
            gh[k] = __floats2bfloat162_rn(f.grad(dy.x, a.x), f.grad(dy.y, a.y));
        }
        din[i] = g;
    }
}

/* 1 when t is BF16, its data 16-byte aligned and n a multiple of 8 */
static inline int cuda_bf16x8_ok(Tensor t, int64_t n)
{
    return t.dtype == DT_BF16 && n % 8 == 0 && (uintptr_t)t.data % 16 == 0;
}

template <typename F>
void cuda_map_forward(Ctx *ctx, const char *op, Tensor out, Tensor in, F f)
{
    int64_t n = tensor_numel(in);
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, in);
    if (n == 0) return;
    if (cuda_bf16x8_ok(out, n) && cuda_bf16x8_ok(in, n))
        CUDA_LAUNCH(ctx, n / 8, map_forward_bf16x8_kernel<F>, (uint4 *)out.data, (const uint4 *)in.data, n / 8, f);
    else
        CUDA_LAUNCH(ctx, n, map_forward_kernel<F>, o, x, n, f);
}

/* din = f.grad(dout, in), written; nothing when din is absent */
template <typename F>
void cuda_map_grad_set(Ctx *ctx, const char *op, Tensor din, Tensor dout, Tensor in, F f)
{
    if (!tensor_present(din)) return;
    int64_t n = tensor_numel(in);
    CudaOut d = cuda_out(op, din);
    CudaIn g = cuda_in(op, dout), x = cuda_in(op, in);
    if (n == 0) return;
    if (cuda_bf16x8_ok(din, n) && cuda_bf16x8_ok(dout, n) && cuda_bf16x8_ok(in, n))
        CUDA_LAUNCH(ctx, n / 8, map_grad_set_bf16x8_kernel<F>, (uint4 *)din.data, (const uint4 *)dout.data,
                    (const uint4 *)in.data, n / 8, f);
    else
        CUDA_LAUNCH(ctx, n, map_grad_set_kernel<F>, d, g, x, n, f);
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
