/*
 * cuda_patch.cu: cutting images into patch tokens and putting them back, in
 * both value orders of kernels/ops.h (PATCH_CHW, PATCH_HWC).
 *
 * All four ops are one index map between img[B,C,H,W] and tokens[B,N,P]
 * (N = (H/p)(W/p) row-major over the patch grid, P = C p p), walked in one
 * direction or the other, overwriting or adding:
 *   patchify forward    tokens  = img      unpatchify forward   img     = tokens
 *   patchify backward   dimg   += dtokens  unpatchify backward  dtokens += dimg
 * One thread per token element; the map is a bijection, so no two threads
 * touch one element. The two sides may differ in dtype (an F32 image and
 * BF16 tokens): CudaIn/CudaOut, F32 arithmetic.
 */
#include "cuda_common.h"
#include "cuda_ops.h"

typedef enum { TO_TOKENS, TO_IMAGE } PatchDirection;

typedef struct {
    int64_t B, C, H, W, p, gw, N, P;
    int64_t sc, si, sj;  /* strides of (c, i, j) inside one token */
} PatchShape;

// thread e is token element e = (b*N + n)*P + k of tokens (B, N, P)
__global__ void patch_map_kernel(CudaOut dst, CudaIn src, PatchShape s, int to_image, int accumulate)
{
    CUDA_GRID_STRIDE(e, s.B * s.N * s.P) {
        int64_t bn = e / s.P, k = e % s.P, b = bn / s.N, n = bn % s.N;
        /* k = c*sc + i*si + j*sj in the token's layout */
        int64_t c = (k / s.sc) % s.C, i = (k / s.si) % s.p, j = (k / s.sj) % s.p;
        int64_t y = (n / s.gw) * s.p + i, x = (n % s.gw) * s.p + j;
        int64_t pixel = ((b * s.C + c) * s.H + y) * s.W + x;
        int64_t d = to_image ? pixel : e, from = to_image ? e : pixel;
        float v = load_f32(src, from);
        if (accumulate) add_f32(dst, d, v);
        else store_f32(dst, d, v);
    }
}

static void patch_map(Ctx *ctx, const char *op, Tensor img, Tensor tokens, int p, PatchLayout layout,
                      PatchDirection dir, int accumulate)
{
    PatchShape s;
    s.B = img.shape[0], s.C = img.shape[1], s.H = img.shape[2], s.W = img.shape[3], s.p = p;
    s.gw = s.W / p, s.N = (s.H / p) * s.gw, s.P = s.C * p * p;
    s.sc = layout == PATCH_CHW ? (int64_t)p * p : 1;
    s.si = layout == PATCH_CHW ? p : (int64_t)p * s.C;
    s.sj = layout == PATCH_CHW ? 1 : s.C;
    int64_t n = s.B * s.N * s.P;
    if (n == 0) return;
    if (dir == TO_TOKENS)
        CUDA_LAUNCH(ctx, n, patch_map_kernel, cuda_out(op, tokens), cuda_in(op, img), s, 0, accumulate);
    else
        CUDA_LAUNCH(ctx, n, patch_map_kernel, cuda_out(op, img), cuda_in(op, tokens), s, 1, accumulate);
}

void cuda_patchify_forward(Ctx *ctx, Tensor tokens, Tensor img, int p, PatchLayout layout)
{
    patch_map(ctx, "patchify_forward", img, tokens, p, layout, TO_TOKENS, 0);
}

void cuda_patchify_backward(Ctx *ctx, Tensor dimg, Tensor dtokens, int p, PatchLayout layout)
{
    patch_map(ctx, "patchify_backward", dimg, dtokens, p, layout, TO_IMAGE, 1);
}

void cuda_unpatchify_forward(Ctx *ctx, Tensor img, Tensor tokens, int p, PatchLayout layout)
{
    patch_map(ctx, "unpatchify_forward", img, tokens, p, layout, TO_IMAGE, 0);
}

void cuda_unpatchify_backward(Ctx *ctx, Tensor dtokens, Tensor dimg, int p, PatchLayout layout)
{
    patch_map(ctx, "unpatchify_backward", dimg, dtokens, p, layout, TO_TOKENS, 1);
}
