/*
 * test_cuda_vision.c: the CUDA backend's image ops against the CPU
 * reference, forward and backward: conv2d (im2col + cuBLAS, the shapes of
 * the FID Inception and U-ViT's final conv), max/average/global pooling,
 * the token mean, bilinear resize and eval-mode BatchNorm, and the KL
 * autoencoder's group norm, nearest upsampling and zero padding
 * (tests/support/cuda_compare.h has the rules). Every backward starts from
 * nonzero gradients: ops must add.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "tests/support/cuda_compare.h"

/* ---- conv2d ------------------------------------------------------------------------------ */

static void check_conv(int64_t B, int64_t Ci, int64_t H, int64_t W, int64_t Co, int64_t kh, int64_t kw,
                       Conv2dParams p, DType in_dt, DType out_dt, const char *what)
{
    int64_t Ho = (H + 2 * p.pad_h - kh) / p.stride_h + 1, Wo = (W + 2 * p.pad_w - kw) / p.stride_w + 1;
    double tol = in_dt == DT_F32 && out_dt == DT_F32 ? CC_TOL_GEMM_F32 : CC_TOL_BF16;
    float *x = cc_values(B * Ci * H * W, -1, 1, 70, in_dt), *w = cc_values(Co * Ci * kh * kw, -0.3f, 0.3f, 71, DT_F32);
    float *b = cc_values(Co, -1, 1, 72, DT_F32), *y = cc_values(B * Co * Ho * Wo, 0, 0, 0, DT_F32);
    Tensor hx = tensor4(x, DT_F32, B, Ci, H, W), hw = tensor4(w, DT_F32, Co, Ci, kh, kw);
    Tensor hb = tensor1(b, DT_F32, Co), hy = tensor4(y, DT_F32, B, Co, Ho, Wo);
    op_conv2d_forward(&cc_cpu, hy, hx, hw, hb, p);
    Tensor dx = cc_upload(hx, in_dt), dw = cc_upload(hw, DT_F32), db = cc_upload(hb, DT_F32);
    Tensor dy = cc_zeros(hy, out_dt);
    op_conv2d_forward(&cc_gpu, dy, dx, dw, db, p);
    cc_expect_close(what, dy, y, tol);

    float *g = cc_values(B * Co * Ho * Wo, -1, 1, 73, out_dt), *gx = cc_values(B * Ci * H * W, -1, 1, 74, in_dt);
    float *gw = cc_values(Co * Ci * kh * kw, -1, 1, 75, DT_F32), *gb = cc_values(Co, -1, 1, 76, DT_F32);
    Tensor hg = tensor4(g, DT_F32, B, Co, Ho, Wo), hgx = tensor4(gx, DT_F32, B, Ci, H, W);
    Tensor hgw = tensor4(gw, DT_F32, Co, Ci, kh, kw), hgb = tensor1(gb, DT_F32, Co);
    Tensor dg = cc_upload(hg, out_dt), dgx = cc_upload(hgx, in_dt), dgw = cc_upload(hgw, DT_F32);
    Tensor dgb = cc_upload(hgb, DT_F32);
    op_conv2d_backward(&cc_cpu, hgx, hgw, hgb, hg, hx, hw, p);
    op_conv2d_backward(&cc_gpu, dgx, dgw, dgb, dg, dx, dw, p);
    char label[160];
    snprintf(label, sizeof label, "%s: din", what);
    cc_expect_close(label, dgx, gx, tol);
    snprintf(label, sizeof label, "%s: dw", what);
    cc_expect_close(label, dgw, gw, tol);
    snprintf(label, sizeof label, "%s: db", what);
    cc_expect_close(label, dgb, gb, CC_TOL_F32);
}

static void conv_cases(DType dt)
{
    cc_start();
    check_conv(3, 5, 9, 9, 7, 3, 3, (Conv2dParams){1, 1, 1, 1}, dt, dt, "conv 3x3 pad 1");
    check_conv(2, 16, 6, 7, 8, 1, 1, (Conv2dParams){1, 1, 0, 0}, dt, dt, "conv 1x1 (no im2col)");
    check_conv(2, 4, 11, 11, 6, 3, 3, (Conv2dParams){2, 2, 0, 0}, dt, dt, "conv 3x3 stride 2");
    check_conv(2, 6, 8, 9, 5, 1, 7, (Conv2dParams){1, 1, 0, 3}, dt, dt, "conv 1x7 pad (0,3)");
    check_conv(2, 6, 9, 8, 5, 7, 1, (Conv2dParams){1, 1, 3, 0}, dt, dt, "conv 7x1 pad (3,0)");
    cc_finish();
}

Test(cuda, conv2d_f32) { conv_cases(DT_F32); }
Test(cuda, conv2d_bf16) { conv_cases(DT_BF16); }

/* U-ViT's final conv: a BF16 image in, F32 noise out */
Test(cuda, conv2d_mixed)
{
    cc_start();
    check_conv(2, 3, 8, 8, 3, 3, 3, (Conv2dParams){1, 1, 1, 1}, DT_BF16, DT_F32, "conv BF16 -> F32");
    check_conv(2, 3, 8, 8, 3, 3, 3, (Conv2dParams){1, 1, 1, 1}, DT_F32, DT_BF16, "conv F32 -> BF16");
    cc_finish();
}

/* ---- pooling ------------------------------------------------------------------------------ */

typedef void (*PoolForward)(Ctx *, Tensor, Tensor, Pool2dParams);

static void check_pool(int is_max, Pool2dParams p, DType dt, const char *what)
{
    int64_t B = 2, C = 3, H = 13, W = 10;
    int64_t Ho = (H + 2 * p.pad_h - p.kernel_h) / p.stride_h + 1, Wo = (W + 2 * p.pad_w - p.kernel_w) / p.stride_w + 1;
    float *x = cc_values(B * C * H * W, -1, 1, 80, dt), *y = cc_values(B * C * Ho * Wo, 0, 0, 0, DT_F32);
    Tensor hx = tensor4(x, DT_F32, B, C, H, W), hy = tensor4(y, DT_F32, B, C, Ho, Wo);
    PoolForward fwd = is_max ? op_max_pool2d_forward : op_avg_pool2d_forward;
    fwd(&cc_cpu, hy, hx, p);
    Tensor dx = cc_upload(hx, dt), dy = cc_zeros(hy, dt);
    fwd(&cc_gpu, dy, dx, p);
    cc_expect_close(what, dy, y, is_max && dt == DT_F32 ? 1e-30 : cc_tol(dt));

    float *g = cc_values(B * C * Ho * Wo, -1, 1, 81, dt), *gx = cc_values(B * C * H * W, -1, 1, 82, dt);
    Tensor hg = tensor4(g, DT_F32, B, C, Ho, Wo), hgx = tensor4(gx, DT_F32, B, C, H, W);
    Tensor dg = cc_upload(hg, dt), dgx = cc_upload(hgx, dt);
    if (is_max) {
        op_max_pool2d_backward(&cc_cpu, hgx, hg, hx, p);
        op_max_pool2d_backward(&cc_gpu, dgx, dg, dx, p);
    } else {
        op_avg_pool2d_backward(&cc_cpu, hgx, hg, p);
        op_avg_pool2d_backward(&cc_gpu, dgx, dg, p);
    }
    cc_expect_close("... backward", dgx, gx, cc_tol(dt));
}

static void pool_cases(DType dt)
{
    cc_start();
    check_pool(1, (Pool2dParams){3, 3, 2, 2, 0, 0, 0}, dt, "max_pool 3x3 stride 2 (Inception)");
    check_pool(1, (Pool2dParams){3, 3, 1, 1, 1, 1, 0}, dt, "max_pool 3x3 pad 1");
    check_pool(0, (Pool2dParams){3, 3, 1, 1, 1, 1, 0}, dt, "avg_pool 3x3 pad 1, padding not counted");
    check_pool(0, (Pool2dParams){3, 3, 1, 1, 1, 1, 1}, dt, "avg_pool 3x3 pad 1, padding counted");
    check_pool(0, (Pool2dParams){2, 3, 2, 3, 1, 0, 1}, dt, "avg_pool 2x3 stride (2,3)");

    int64_t B = 3, C = 5, H = 7, W = 9;
    float *x = cc_values(B * C * H * W, -1, 1, 83, dt), *y = cc_values(B * C, 0, 0, 0, DT_F32);
    Tensor hx = tensor4(x, DT_F32, B, C, H, W), hy = tensor2(y, DT_F32, B, C);
    op_global_avg_pool_forward(&cc_cpu, hy, hx);
    Tensor dx = cc_upload(hx, dt), dy = cc_zeros(hy, dt);
    op_global_avg_pool_forward(&cc_gpu, dy, dx);
    cc_expect_close("global_avg_pool", dy, y, cc_tol(dt));
    float *g = cc_values(B * C, -1, 1, 84, dt), *gx = cc_values(B * C * H * W, -1, 1, 85, dt);
    Tensor hg = tensor2(g, DT_F32, B, C), hgx = tensor4(gx, DT_F32, B, C, H, W);
    Tensor dg = cc_upload(hg, dt), dgx = cc_upload(hgx, dt);
    op_global_avg_pool_backward(&cc_cpu, hgx, hg);
    op_global_avg_pool_backward(&cc_gpu, dgx, dg);
    cc_expect_close("global_avg_pool backward", dgx, gx, cc_tol(dt));
    cc_finish();
}

Test(cuda, pool_f32) { pool_cases(DT_F32); }
Test(cuda, pool_bf16) { pool_cases(DT_BF16); }

static void token_mean_case(DType dt)
{
    cc_start();
    int64_t B = 3, T = 65, D = 48;
    float *x = cc_values(B * T * D, -1, 1, 86, dt), *y = cc_values(B * D, 0, 0, 0, DT_F32);
    Tensor hx = tensor3(x, DT_F32, B, T, D), hy = tensor2(y, DT_F32, B, D);
    op_token_mean_forward(&cc_cpu, hy, hx);
    Tensor dx = cc_upload(hx, dt), dy = cc_zeros(hy, dt);
    op_token_mean_forward(&cc_gpu, dy, dx);
    cc_expect_close("token_mean", dy, y, cc_tol(dt));
    float *g = cc_values(B * D, -1, 1, 87, dt), *gx = cc_values(B * T * D, -1, 1, 88, dt);
    Tensor hg = tensor2(g, DT_F32, B, D), hgx = tensor3(gx, DT_F32, B, T, D);
    Tensor dg = cc_upload(hg, dt), dgx = cc_upload(hgx, dt);
    op_token_mean_backward(&cc_cpu, hgx, hg);
    op_token_mean_backward(&cc_gpu, dgx, dg);
    cc_expect_close("token_mean backward", dgx, gx, cc_tol(dt));
    cc_finish();
}

Test(cuda, token_mean_f32) { token_mean_case(DT_F32); }
Test(cuda, token_mean_bf16) { token_mean_case(DT_BF16); }

/* ---- resize ------------------------------------------------------------------------------ */

static void check_resize(int64_t H, int64_t W, int64_t Ho, int64_t Wo, DType dt, const char *what)
{
    int64_t B = 2, C = 3;
    float *x = cc_values(B * C * H * W, -1, 1, 90, dt), *y = cc_values(B * C * Ho * Wo, 0, 0, 0, DT_F32);
    Tensor hx = tensor4(x, DT_F32, B, C, H, W), hy = tensor4(y, DT_F32, B, C, Ho, Wo);
    op_resize_bilinear_forward(&cc_cpu, hy, hx);
    Tensor dx = cc_upload(hx, dt), dy = cc_zeros(hy, dt);
    op_resize_bilinear_forward(&cc_gpu, dy, dx);
    cc_expect_close(what, dy, y, cc_tol(dt));
    float *g = cc_values(B * C * Ho * Wo, -1, 1, 91, dt), *gx = cc_values(B * C * H * W, -1, 1, 92, dt);
    Tensor hg = tensor4(g, DT_F32, B, C, Ho, Wo), hgx = tensor4(gx, DT_F32, B, C, H, W);
    Tensor dg = cc_upload(hg, dt), dgx = cc_upload(hgx, dt);
    op_resize_bilinear_backward(&cc_cpu, hgx, hg);
    op_resize_bilinear_backward(&cc_gpu, dgx, dg);
    cc_expect_close("... backward", dgx, gx, cc_tol(dt));
}

static void resize_cases(DType dt)
{
    cc_start();
    check_resize(8, 8, 19, 23, dt, "resize up 8x8 -> 19x23");
    check_resize(28, 28, 299, 299, dt, "resize up 28 -> 299 (FD-FMNIST to Inception)");
    check_resize(32, 32, 15, 13, dt, "resize down 32x32 -> 15x13");
    check_resize(5, 7, 5, 7, dt, "resize to the same size");
    cc_finish();
}

Test(cuda, resize_f32) { resize_cases(DT_F32); }
Test(cuda, resize_bf16) { resize_cases(DT_BF16); }

/* ---- batchnorm ------------------------------------------------------------------------------ */

static void batchnorm_case(DType dt)
{
    cc_start();
    int64_t B = 3, C = 6, H = 5, W = 7, n = B * C * H * W;
    float *x = cc_values(n, -2, 2, 93, dt), *mean = cc_values(C, -0.5f, 0.5f, 94, DT_F32);
    float *var = cc_values(C, 0.2f, 2, 95, DT_F32), *w = cc_values(C, 0.5f, 1.5f, 96, DT_F32);
    float *b = cc_values(C, -1, 1, 97, DT_F32), *y = cc_values(n, 0, 0, 0, DT_F32);
    Tensor hx = tensor4(x, DT_F32, B, C, H, W), hm = tensor1(mean, DT_F32, C), hv = tensor1(var, DT_F32, C);
    Tensor hw = tensor1(w, DT_F32, C), hb = tensor1(b, DT_F32, C), hy = tensor4(y, DT_F32, B, C, H, W);
    op_batchnorm_forward(&cc_cpu, hy, hx, hm, hv, hw, hb, 1e-3f);
    Tensor dx = cc_upload(hx, dt), dm = cc_upload(hm, DT_F32), dv = cc_upload(hv, DT_F32);
    Tensor dw = cc_upload(hw, DT_F32), db = cc_upload(hb, DT_F32), dy = cc_zeros(hy, dt);
    op_batchnorm_forward(&cc_gpu, dy, dx, dm, dv, dw, db, 1e-3f);
    cc_expect_close("batchnorm", dy, y, cc_tol(dt));

    float *g = cc_values(n, -1, 1, 98, dt), *gx = cc_values(n, -1, 1, 99, dt);
    float *gw = cc_values(C, -1, 1, 100, DT_F32), *gb = cc_values(C, -1, 1, 101, DT_F32);
    Tensor hg = tensor4(g, DT_F32, B, C, H, W), hgx = tensor4(gx, DT_F32, B, C, H, W);
    Tensor hgw = tensor1(gw, DT_F32, C), hgb = tensor1(gb, DT_F32, C);
    Tensor dg = cc_upload(hg, dt), dgx = cc_upload(hgx, dt), dgw = cc_upload(hgw, DT_F32), dgb = cc_upload(hgb, DT_F32);
    op_batchnorm_backward(&cc_cpu, hgx, hgw, hgb, hg, hx, hm, hv, hw, 1e-3f);
    op_batchnorm_backward(&cc_gpu, dgx, dgw, dgb, dg, dx, dm, dv, dw, 1e-3f);
    cc_expect_close("batchnorm din", dgx, gx, cc_tol(dt));
    cc_expect_close("batchnorm dw", dgw, gw, CC_TOL_F32);
    cc_expect_close("batchnorm db", dgb, gb, CC_TOL_F32);
    cc_finish();
}

Test(cuda, batchnorm_f32) { batchnorm_case(DT_F32); }
Test(cuda, batchnorm_bf16) { batchnorm_case(DT_BF16); }

/* ---- the KL autoencoder's ops: group norm, nearest upsampling, zero padding --------------- */

/* in[B,C,S...] given as ndim 3 ([B,C,L]) or 4 ([B,C,H,W]); affine or not */
static void check_group_norm(int ndim, int64_t B, int64_t C, int64_t H, int64_t W, int G, int affine,
                             DType dt, const char *what)
{
    int64_t n = B * C * H * W;
    float *x = cc_values(n, -2, 3, 110, dt); /* a nonzero mean */
    float *w = cc_values(C, 0.5f, 1.5f, 111, DT_F32), *b = cc_values(C, -0.5f, 0.5f, 112, DT_F32);
    float *y = cc_values(n, 0, 0, 0, DT_F32), *mean = cc_values(B * G, 0, 0, 0, DT_F32);
    float *rstd = cc_values(B * G, 0, 0, 0, DT_F32);
    Tensor hx = ndim == 3 ? tensor3(x, DT_F32, B, C, H * W) : tensor4(x, DT_F32, B, C, H, W);
    Tensor hy = hx, hm = tensor2(mean, DT_F32, B, G), hr = tensor2(rstd, DT_F32, B, G);
    hy.data = y;
    Tensor hw = affine ? tensor1(w, DT_F32, C) : tensor_none(), hb = affine ? tensor1(b, DT_F32, C) : tensor_none();
    op_group_norm_forward(&cc_cpu, hy, hm, hr, hx, hw, hb, G, 1e-6f);
    Tensor dx = cc_upload(hx, dt), dy = cc_zeros(hy, dt), dm = cc_zeros(hm, DT_F32), dr = cc_zeros(hr, DT_F32);
    Tensor dw = affine ? cc_upload(hw, DT_F32) : tensor_none(), db = affine ? cc_upload(hb, DT_F32) : tensor_none();
    op_group_norm_forward(&cc_gpu, dy, dm, dr, dx, dw, db, G, 1e-6f);
    char label[160];
    cc_expect_close(what, dy, y, cc_tol(dt));
    snprintf(label, sizeof label, "%s: mean", what);
    cc_expect_close(label, dm, mean, CC_TOL_F32);
    snprintf(label, sizeof label, "%s: rstd", what);
    cc_expect_close(label, dr, rstd, CC_TOL_F32);

    /* backward from the CPU's statistics; every gradient starts nonzero */
    float *g = cc_values(n, -1, 1, 113, dt), *gx = cc_values(n, -1, 1, 114, dt);
    float *gw = cc_values(C, -1, 1, 115, DT_F32), *gb = cc_values(C, -1, 1, 116, DT_F32);
    Tensor hg = hx, hgx = hx;
    hg.data = g, hgx.data = gx;
    Tensor hgw = affine ? tensor1(gw, DT_F32, C) : tensor_none(), hgb = affine ? tensor1(gb, DT_F32, C) : tensor_none();
    Tensor dg = cc_upload(hg, dt), dgx = cc_upload(hgx, dt), dm2 = cc_upload(hm, DT_F32), dr2 = cc_upload(hr, DT_F32);
    Tensor dgw = affine ? cc_upload(hgw, DT_F32) : tensor_none(), dgb = affine ? cc_upload(hgb, DT_F32) : tensor_none();
    op_group_norm_backward(&cc_cpu, hgx, hgw, hgb, hg, hx, hw, hm, hr, G);
    op_group_norm_backward(&cc_gpu, dgx, dgw, dgb, dg, dx, dw, dm2, dr2, G);
    snprintf(label, sizeof label, "%s: din", what);
    cc_expect_close(label, dgx, gx, cc_tol(dt));
    if (!affine) return;
    snprintf(label, sizeof label, "%s: dw", what);
    cc_expect_close(label, dgw, gw, CC_TOL_F32);
    snprintf(label, sizeof label, "%s: db", what);
    cc_expect_close(label, dgb, gb, CC_TOL_F32);

    /* din alone (dw, db absent), then dw and db alone */
    float *gx2 = cc_copy(gx, n);
    Tensor hgx2 = hx;
    hgx2.data = gx2;
    Tensor dgx2 = cc_upload(hgx2, dt);
    op_group_norm_backward(&cc_cpu, hgx2, tensor_none(), tensor_none(), hg, hx, hw, hm, hr, G);
    op_group_norm_backward(&cc_gpu, dgx2, tensor_none(), tensor_none(), dg, dx, dw, dm2, dr2, G);
    snprintf(label, sizeof label, "%s: din without dw, db", what);
    cc_expect_close(label, dgx2, gx2, cc_tol(dt));
    op_group_norm_backward(&cc_cpu, tensor_none(), hgw, hgb, hg, hx, hw, hm, hr, G);
    op_group_norm_backward(&cc_gpu, tensor_none(), dgw, dgb, dg, dx, dw, dm2, dr2, G);
    snprintf(label, sizeof label, "%s: dw without din", what);
    cc_expect_close(label, dgw, gw, CC_TOL_F32);
}

static void group_norm_cases(DType dt)
{
    cc_start();
    check_group_norm(4, 2, 12, 5, 7, 4, 1, dt, "group_norm 12 channels in 4 groups");
    check_group_norm(4, 3, 8, 9, 9, 8, 0, dt, "group_norm one channel per group, no affine");
    check_group_norm(4, 1, 6, 4, 3, 1, 1, dt, "group_norm one group");
    check_group_norm(3, 2, 10, 1, 33, 5, 1, dt, "group_norm [B,C,L]");
    check_group_norm(4, 2, 64, 16, 16, 32, 1, dt, "group_norm 64 channels in 32 groups (the autoencoder's)");
    check_group_norm(4, 1, 32, 32, 32, 4, 1, dt, "group_norm 8192 values per group");
    cc_finish();
}

Test(cuda, group_norm_f32) { group_norm_cases(DT_F32); }
Test(cuda, group_norm_bf16) { group_norm_cases(DT_BF16); }

/* out[B,C,Ho,Wo] from in[B,C,H,W] and back, through fwd and bwd; copies are
   exact, and the F32 backward adds in the CPU's order: its bits */
typedef void (*ResampleForward)(Ctx *, Tensor, Tensor, const void *);
typedef void (*ResampleBackward)(Ctx *, Tensor, Tensor, const void *);

static void check_resample(ResampleForward fwd, ResampleBackward bwd, const void *arg, int64_t H, int64_t W,
                           int64_t Ho, int64_t Wo, DType dt, const char *what)
{
    int64_t B = 2, C = 3;
    float *x = cc_values(B * C * H * W, -1, 1, 120, dt), *y = cc_values(B * C * Ho * Wo, 0, 0, 0, DT_F32);
    Tensor hx = tensor4(x, DT_F32, B, C, H, W), hy = tensor4(y, DT_F32, B, C, Ho, Wo);
    fwd(&cc_cpu, hy, hx, arg);
    /* the GPU's output starts as garbage: every value must be written, padding too */
    float *junk = cc_values(B * C * Ho * Wo, 5, 6, 121, dt);
    Tensor dx = cc_upload(hx, dt), dy = cc_upload(tensor4(junk, DT_F32, B, C, Ho, Wo), dt);
    fwd(&cc_gpu, dy, dx, arg);
    cc_expect_close(what, dy, y, 1e-30);

    float *g = cc_values(B * C * Ho * Wo, -1, 1, 122, dt), *gx = cc_values(B * C * H * W, -1, 1, 123, dt);
    Tensor hg = tensor4(g, DT_F32, B, C, Ho, Wo), hgx = tensor4(gx, DT_F32, B, C, H, W);
    Tensor dg = cc_upload(hg, dt), dgx = cc_upload(hgx, dt);
    bwd(&cc_cpu, hgx, hg, arg);
    bwd(&cc_gpu, dgx, dg, arg);
    char label[160];
    snprintf(label, sizeof label, "%s: backward", what);
    if (dt == DT_F32) cc_expect_equal(label, dgx, gx);
    else cc_expect_close(label, dgx, gx, cc_tol(dt));
}

static void upsample_fwd(Ctx *c, Tensor out, Tensor in, const void *arg) { (void)arg; op_upsample_nearest_forward(c, out, in); }
static void upsample_bwd(Ctx *c, Tensor din, Tensor dout, const void *arg) { (void)arg; op_upsample_nearest_backward(c, din, dout); }
static void pad_fwd(Ctx *c, Tensor out, Tensor in, const void *arg) { op_pad2d_forward(c, out, in, *(const Pad2dParams *)arg); }
static void pad_bwd(Ctx *c, Tensor din, Tensor dout, const void *arg) { op_pad2d_backward(c, din, dout, *(const Pad2dParams *)arg); }

static void upsample_cases(DType dt)
{
    cc_start();
    check_resample(upsample_fwd, upsample_bwd, NULL, 5, 7, 10, 14, dt, "upsample_nearest x2 (the autoencoder's)");
    check_resample(upsample_fwd, upsample_bwd, NULL, 3, 4, 6, 12, dt, "upsample_nearest x(2,3)");
    check_resample(upsample_fwd, upsample_bwd, NULL, 6, 5, 6, 5, dt, "upsample_nearest x1");
    cc_finish();
}

Test(cuda, upsample_nearest_f32) { upsample_cases(DT_F32); }
Test(cuda, upsample_nearest_bf16) { upsample_cases(DT_BF16); }

static void pad_case(int64_t H, int64_t W, Pad2dParams p, DType dt, const char *what)
{
    check_resample(pad_fwd, pad_bwd, &p, H, W, p.top + H + p.bottom, p.left + W + p.right, dt, what);
}

static void pad_cases(DType dt)
{
    cc_start();
    pad_case(7, 7, (Pad2dParams){0, 1, 0, 1}, dt, "pad2d (0,1,0,1) (the autoencoder's Downsample)");
    pad_case(5, 6, (Pad2dParams){3, 1, 2, 4}, dt, "pad2d top 3 bottom 1 left 2 right 4");
    pad_case(4, 3, (Pad2dParams){0, 0, 0, 0}, dt, "pad2d none");
    cc_finish();
}

Test(cuda, pad2d_f32) { pad_cases(DT_F32); }
Test(cuda, pad2d_bf16) { pad_cases(DT_BF16); }
