/*
 * cuda_linear_gelu.cu: the backward of the fused linear + GELU (a
 * transformer block's MLP fc1) on the GPU; the forward is ops.c's
 * composition, see below.
 *
 *   backward  dpre[M,N] = dout * gelu'(pre), WRITTEN by one pass (the
 *             caller's scratch: no zeroing pass and no read of dpre, as the
 *             composition's zero + accumulate needs), then the linear
 *             backward on dpre (cuda_linear.cu; the _set form writes din)
 *
 * Why no cuBLASLt epilogue: the op is the exact GELU x Phi(x) (erf form,
 * kernels/ops.h, the CPU's and PyTorch's F.gelu default); cuBLASLt's
 * GELU, GELU_AUX(_BIAS) and DGELU epilogues compute the tanh approximation.
 * A separate bias + GELU kernel after a bias-free GEMM would round the GEMM
 * to BF16 once more and, in training, write pre twice; so the forward stays
 * "GEMM with the bias epilogue into pre, then one GELU pass" (8 BF16 values
 * per thread, cuda_elementwise.h), which is exactly ops.c's composition:
 * the table leaves linear_gelu_forward NULL (kernels/cuda/NOTES.md).
 */
#include "cuda_elementwise.h"
#include "cuda_gelu.h"
#include "cuda_ops.h"

static void linear_gelu_backward(Ctx *ctx, int set, Tensor din, Tensor dw, Tensor db, Tensor dpre, Tensor dout,
                                 Tensor in, Tensor w, Tensor pre)
{
    // dout, pre, dpre are (M,N); in is (M,K), w is (N,K); din (M,K), dw (N,K), db (N)
    const char *op = set ? "linear_gelu_backward_set" : "linear_gelu_backward";
    cuda_map_grad_set(ctx, op, dpre, dout, pre, Gelu{});
    (set ? cuda_linear_backward_set : cuda_linear_backward)(ctx, din, dw, db, dpre, in, w);
}

void cuda_linear_gelu_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dpre, Tensor dout, Tensor in,
                               Tensor w, Tensor pre)
{
    linear_gelu_backward(ctx, 0, din, dw, db, dpre, dout, in, w, pre);
}

void cuda_linear_gelu_backward_set(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dpre, Tensor dout,
                                   Tensor in, Tensor w, Tensor pre)
{
    linear_gelu_backward(ctx, 1, din, dw, db, dpre, dout, in, w, pre);
}
