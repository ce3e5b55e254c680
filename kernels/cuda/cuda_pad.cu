/*
 * cuda_pad.cu: zero padding of images, forward and backward
 * (F.pad(x, (left, right, top, bottom)) with zeros, as the KL autoencoder's
 * Downsample pads (0, 1, 0, 1) before its stride-2 convolution; the CPU
 * reference is kernels/cpu/pad.c).
 *
 * For every plane p = (b, c) of in[B,C,H,W] and out[B,C,Ho,Wo],
 * Ho = top + H + bottom, Wo = left + W + right:
 *   forward:  out[p, y, x] = in[p, y - top, x - left] inside, 0 outside
 *             (one thread per output: the border is written too)
 *   backward: din[p, y, x] += dout[p, top + y, left + x]
 *             (one thread per input: a gather, no atomics)
 * Copies and one addition per element: F32 results equal the CPU's bits.
 * Tensors are F32 or BF16 (CudaIn/CudaOut, any mix).
 */
#include "cuda_common.h"
#include "cuda_ops.h"

typedef struct {
    int64_t H, W, Ho, Wo, top, left;
} PadShape;

static PadShape pad_shape(Tensor in, Tensor out, Pad2dParams p)
{
    PadShape s = {in.shape[2], in.shape[3], out.shape[2], out.shape[3], p.top, p.left};
    return s;
}

// out is (P, Ho, Wo), in (P, H, W); thread i is output element i
__global__ void pad2d_forward_kernel(CudaOut out, CudaIn in, PadShape s, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) {
        int64_t x = i % s.Wo - s.left, t = i / s.Wo, y = t % s.Ho - s.top, p = t / s.Ho;
        int inside = y >= 0 && y < s.H && x >= 0 && x < s.W;
        store_f32(out, i, inside ? load_f32(in, (p * s.H + y) * s.W + x) : 0.0f);
    }
}

// din is (P, H, W), dout (P, Ho, Wo); thread i is input element i
__global__ void pad2d_backward_kernel(CudaOut din, CudaIn dout, PadShape s, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) {
        int64_t x = i % s.W, t = i / s.W, y = t % s.H, p = t / s.H;
        add_f32(din, i, load_f32(dout, (p * s.Ho + s.top + y) * s.Wo + s.left + x));
    }
}

void cuda_pad2d_forward(Ctx *ctx, Tensor out, Tensor in, Pad2dParams p)
{
    const char *op = "pad2d_forward";
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, in);
    int64_t n = tensor_numel(out);
    if (n == 0) return;
    CUDA_LAUNCH(ctx, n, pad2d_forward_kernel, o, x, pad_shape(in, out, p), n);
}

void cuda_pad2d_backward(Ctx *ctx, Tensor din, Tensor dout, Pad2dParams p)
{
    const char *op = "pad2d_backward";
    CudaOut d = cuda_out(op, din);
    CudaIn g = cuda_in(op, dout);
    int64_t n = tensor_numel(din);
    if (n == 0) return;
    CUDA_LAUNCH(ctx, n, pad2d_backward_kernel, d, g, pad_shape(din, dout, p), n);
}
