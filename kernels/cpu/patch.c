/*
 * patch.c: cutting images into patch tokens and putting them back, on the
 * CPU, in both value orders of kernels/ops.h (PATCH_CHW, PATCH_HWC).
 *
 * All four ops are the same index map between img[B,C,H,W] and
 * tokens[B,N,P] (N = (H/p)(W/p) row-major over the patch grid, P = C p p),
 * walked in one direction or the other, overwriting or adding:
 *   patchify forward    tokens  = img      unpatchify forward   img     = tokens
 *   patchify backward   dimg   += dtokens  unpatchify backward  dtokens += dimg
 * Each patch owns its pixels, so patches run in parallel without races.
 */
#include "cpu_ops.h"
#include "cpu_parallel.h"

typedef enum { TO_TOKENS, TO_IMAGE } PatchDirection;

static void patch_map(Ctx *ctx, Tensor img, Tensor tokens, int p, PatchLayout layout,
                      PatchDirection dir, int accumulate)
{
    int64_t B = img.shape[0], C = img.shape[1], H = img.shape[2], W = img.shape[3];
    int64_t gh = H / p, gw = W / p, N = gh * gw, P = C * p * p;
    float *im = tensor_f32(img);     // im is (B,C,H,W)
    float *tok = tensor_f32(tokens); // tok is (B,N,P)
    /* strides of (c, i, j) inside one token */
    int64_t sc = layout == PATCH_CHW ? (int64_t)p * p : 1;
    int64_t si = layout == PATCH_CHW ? p : (int64_t)p * C;
    int64_t sj = layout == PATCH_CHW ? 1 : C;

    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * N * P > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t bn = 0; bn < B * N; bn++) {
        int64_t b = bn / N, n = bn % N, y0 = (n / gw) * p, x0 = (n % gw) * p;
        float *t = tok + bn * P;
        for (int64_t c = 0; c < C; c++) {
            float *plane = im + (b * C + c) * H * W;
            for (int64_t i = 0; i < p; i++) {
                float *px = plane + (y0 + i) * W + x0;  // p pixels of one image row
                float *tv = t + c * sc + i * si;        // their values, stride sj
                if (dir == TO_TOKENS) {
                    if (accumulate) for (int64_t j = 0; j < p; j++) tv[j * sj] += px[j];
                    else            for (int64_t j = 0; j < p; j++) tv[j * sj] = px[j];
                } else {
                    if (accumulate) for (int64_t j = 0; j < p; j++) px[j] += tv[j * sj];
                    else            for (int64_t j = 0; j < p; j++) px[j] = tv[j * sj];
                }
            }
        }
    }
}

void cpu_patchify_forward(Ctx *ctx, Tensor tokens, Tensor img, int p, PatchLayout layout)
{
    patch_map(ctx, img, tokens, p, layout, TO_TOKENS, 0);
}

void cpu_patchify_backward(Ctx *ctx, Tensor dimg, Tensor dtokens, int p, PatchLayout layout)
{
    patch_map(ctx, dimg, dtokens, p, layout, TO_IMAGE, 1);
}

void cpu_unpatchify_forward(Ctx *ctx, Tensor img, Tensor tokens, int p, PatchLayout layout)
{
    patch_map(ctx, img, tokens, p, layout, TO_IMAGE, 0);
}

void cpu_unpatchify_backward(Ctx *ctx, Tensor dtokens, Tensor dimg, int p, PatchLayout layout)
{
    patch_map(ctx, dimg, dtokens, p, layout, TO_TOKENS, 1);
}
