/*
 * cuda_upsample.cu: nearest-neighbour upsampling by integer factors, forward
 * and backward (F.interpolate(mode='nearest', scale_factor=s), the KL
 * autoencoder's Upsample with s = 2; the CPU reference is
 * kernels/cpu/upsample.c).
 *
 * For every plane p = (b, c) of in[B,C,H,W] and out[B,C,Ho,Wo], with the
 * factors s_h = Ho/H, s_w = Wo/W:
 *   forward:  out[p, y, x] = in[p, y / s_h, x / s_w]      one thread per output
 *   backward: din[p, y, x] += the sum of the s_h x s_w block of dout at
 *             (y s_h, x s_w), rows then columns, in F32 as the CPU sums it
 *                                                         one thread per input
 * The backward gathers (each input pixel reads its own block), so no
 * atomics, and its additions run in the CPU's order: F32 results equal the
 * CPU's bits. Tensors are F32 or BF16 (CudaIn/CudaOut, any mix).
 */
#include "cuda_common.h"
#include "cuda_ops.h"

typedef struct {
    int64_t H, W, Ho, Wo, sh, sw;  /* input, output sizes and the factors */
} UpsampleShape;

static UpsampleShape upsample_shape(Tensor in, Tensor out)
{
    UpsampleShape s = {in.shape[2], in.shape[3], out.shape[2], out.shape[3], 0, 0};
    s.sh = s.Ho / s.H, s.sw = s.Wo / s.W;
    return s;
}

// out is (P, Ho, Wo), in (P, H, W); thread i is output element i
__global__ void upsample_nearest_forward_kernel(CudaOut out, CudaIn in, UpsampleShape s, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) {
        int64_t x = i % s.Wo, t = i / s.Wo, y = t % s.Ho, p = t / s.Ho;
        store_f32(out, i, load_f32(in, (p * s.H + y / s.sh) * s.W + x / s.sw));
    }
}

// din is (P, H, W), dout (P, Ho, Wo); thread i is input element i
__global__ void upsample_nearest_backward_kernel(CudaOut din, CudaIn dout, UpsampleShape s, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) {
        int64_t x = i % s.W, t = i / s.W, y = t % s.H, p = t / s.H;
        int64_t base = (p * s.Ho + y * s.sh) * s.Wo + x * s.sw;  // the block's top-left output
        float acc = 0.0f;
        for (int64_t a = 0; a < s.sh; a++)
            for (int64_t k = 0; k < s.sw; k++) acc += load_f32(dout, base + a * s.Wo + k);
        add_f32(din, i, acc);
    }
}

void cuda_upsample_nearest_forward(Ctx *ctx, Tensor out, Tensor in)
{
    const char *op = "upsample_nearest_forward";
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, in);
    int64_t n = tensor_numel(out);
    if (n == 0) return;
    CUDA_LAUNCH(ctx, n, upsample_nearest_forward_kernel, o, x, upsample_shape(in, out), n);
}

void cuda_upsample_nearest_backward(Ctx *ctx, Tensor din, Tensor dout)
{
    const char *op = "upsample_nearest_backward";
    CudaOut d = cuda_out(op, din);
    CudaIn g = cuda_in(op, dout);
    int64_t n = tensor_numel(din);
    if (n == 0) return;
    CUDA_LAUNCH(ctx, n, upsample_nearest_backward_kernel, d, g, upsample_shape(din, dout), n);
}
